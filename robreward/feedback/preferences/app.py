"""The labeling web app: two clips side by side, a person says which segment is better.

    robreward label RUN_DIR [--port 8765] [--host 127.0.0.1]

It reads the run's label store (``RUN_DIR/labels.sqlite``) and serves its clips
(``RUN_DIR/clips/*.mp4``): one static page plus a small JSON API.

    GET  /                  the page (HTML + JS, no build step)
    GET  /api/next          {"query": {"id", "round", "left", "right"} | null, "labeled": n, "total": m}
    POST /api/label         {"query_id": int, "value": 0 | 1 | 0.5 | null}  (left, right, equal, skip)
                            -> {"ok": true, "labeled", "total"}; 404 for an unknown query id,
                            400 for a malformed body or value
    GET  /clips/NAME.mp4    a clip (only plain file names inside RUN_DIR/clips)

Each label is committed to SQLite before the answer goes back to the browser, so a crash or a
restart of the app loses nothing; the training loop, blocked in ``LabelStore.wait_for_labels``,
picks the labels up from the same file. While no query is pending the page polls every two
seconds, so it can stay open between the loop's feedback rounds.

FastAPI and uvicorn are imported when the app is built, not when robreward is imported.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request), and
# those names are imported inside create_app, where string annotations could not be resolved
import errno
import re
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Union

from robreward.feedback.preferences.store import STORE_NAME, LabelStore, UnknownQueryError, check_label

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
CLIP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.mp4$")


class ServeError(RuntimeError):
    """The app cannot start: an occupied or unreachable address, a missing run directory."""


def create_app(run_dir: Union[str, Path]):
    """The FastAPI app for one run directory (its store is created empty if missing)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ServeError(f"run directory {str(run_dir)!r} does not exist: pass the --out folder of "
                         "`robreward prefs train --teacher human`")
    store = LabelStore(run_dir / STORE_NAME)
    clips_dir = store.clips_dir.resolve()
    app = FastAPI(title="robreward labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    no_store = {"Cache-Control": "no-store"}

    def progress() -> dict:
        labeled, total = store.progress()
        return {"labeled": labeled, "total": total}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(PAGE, headers=no_store)

    @app.get("/api/next")
    def next_query():
        query = store.next_pending()
        body = {"query": None if query is None else {
            "id": query.id, "round": query.round,
            "left": f"/clips/{query.left_clip}", "right": f"/clips/{query.right_clip}"}, **progress()}
        return JSONResponse(body, headers=no_store)

    @app.post("/api/label")
    async def post_label(request: Request):
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "the body must be JSON: {\"query_id\": 12, \"value\": 1}") from None
        if not isinstance(body, dict) or "query_id" not in body or "value" not in body:
            raise HTTPException(400, "the body must be {\"query_id\": int, \"value\": 0 | 1 | 0.5 | null}")
        query_id = body["query_id"]
        if isinstance(query_id, bool) or not isinstance(query_id, int):
            raise HTTPException(400, f"query_id must be an integer, got {query_id!r}")
        try:
            value = check_label(body["value"])
            await run_in_threadpool(store.label, query_id, value)  # commits before we answer
        except UnknownQueryError as err:
            raise HTTPException(404, str(err)) from None
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        return JSONResponse({"ok": True, **progress()}, headers=no_store)

    @app.api_route("/clips/{name:path}", methods=["GET", "HEAD"])
    def clip(name: str):
        # only a plain file name, resolved inside the clips folder (no '..', no '/', no links out)
        if not CLIP_NAME.match(name) or (clips_dir / name).resolve().parent != clips_dir:
            raise HTTPException(400, f"bad clip name {name!r}: clips are plain NAME.mp4 files in {clips_dir}")
        path = clips_dir / name
        if not path.is_file():
            raise HTTPException(404, f"no clip {name!r} in {clips_dir}")
        return FileResponse(path, media_type="video/mp4")

    return app


def bind_socket(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening socket on host:port, or a ServeError that says what to pass instead."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ServeError(f"port must be an integer in 0..65535, got {port!r}: pass --port {DEFAULT_PORT}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise ServeError(f"cannot listen on {host}:{port}: unknown host {host!r} ({err.strerror}): "
                         f"pass --host {DEFAULT_HOST}") from None
    sock = socket.socket(family, kind, proto)
    # rebinding right after a restart (connections in TIME_WAIT) is fine; a live listener still blocks it
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} is in use: pass --port with a free one "
                             f"(e.g. --port {port + 1 if port < 65535 else DEFAULT_PORT})") from None
        if err.errno == errno.EACCES:
            raise ServeError(f"cannot listen on port {port}: permission denied (ports below 1024 need root): "
                             f"pass --port {DEFAULT_PORT}") from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise ServeError(f"cannot listen on {host}:{port}: {host} is not an address of this machine: "
                             f"pass --host {DEFAULT_HOST}") from None
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(run_dir: Union[str, Path], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          announce: Optional[Callable[[str], None]] = None) -> None:
    """Run the app until interrupted. ``announce(url)`` is called once it listens (port 0: any free port)."""
    import uvicorn

    app = create_app(run_dir)  # before binding: a bad run directory is reported first
    sock = bind_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        if announce is not None:
            announce(url_of(sock))
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.store.close()


class BackgroundServer:
    """The app served from a daemon thread of this process (``robreward prefs train --teacher human``
    starts one so the person can label while the loop waits). ``stop()`` shuts it down."""

    def __init__(self, run_dir: Union[str, Path, None], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 start_timeout: float = 30.0, app=None):
        import uvicorn

        self.app = app if app is not None else create_app(run_dir)  # app: another page (codegen/choose.py)
        self._sock = bind_socket(host, port)  # a busy or bad address fails here, before any thread
        self.url = url_of(self._sock)
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="robreward-label-app", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"the web app did not start on {self.url}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
        store = getattr(self.app.state, "store", None)
        if store is not None:
            store.close()

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>robreward: which is better?</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f4; color: #222; }
  header { display: flex; justify-content: space-between; align-items: baseline; padding: 12px 24px;
           background: #fff; border-bottom: 1px solid #ddd; }
  h1 { font-size: 18px; margin: 0; }
  #counter { font-variant-numeric: tabular-nums; font-weight: 600; }
  main { max-width: 1100px; margin: 16px auto; padding: 0 16px; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  video { width: 100%; background: #000; border-radius: 6px; aspect-ratio: 4 / 3; }
  .buttons { display: grid; grid-template-columns: 1fr 1fr 1fr 1fr; gap: 12px; margin-top: 16px; }
  button { font-size: 16px; padding: 12px; border: 1px solid #bbb; border-radius: 6px; background: #fff;
           cursor: pointer; }
  button:hover:not(:disabled) { background: #e8f0fe; }
  button:disabled { opacity: 0.5; cursor: default; }
  kbd { font-size: 12px; border: 1px solid #aaa; border-radius: 3px; padding: 0 4px; background: #fafafa; }
  #message { min-height: 1.5em; margin-top: 12px; color: #555; }
  #message.error { color: #b00020; }
</style>
</head>
<body data-state="loading" data-query="">
<header>
  <h1>Which segment is better at the task?</h1>
  <span id="counter">&hellip;</span>
</header>
<main>
  <div class="pair">
    <video id="left-video" autoplay loop muted playsinline></video>
    <video id="right-video" autoplay loop muted playsinline></video>
  </div>
  <div class="buttons">
    <button id="left-btn" data-value="0" disabled>Left is better <kbd>&larr;</kbd> <kbd>1</kbd></button>
    <button id="equal-btn" data-value="0.5" disabled>Equal <kbd>e</kbd></button>
    <button id="skip-btn" data-value="skip" disabled>Skip / can't tell <kbd>s</kbd></button>
    <button id="right-btn" data-value="1" disabled>Right is better <kbd>&rarr;</kbd> <kbd>2</kbd></button>
  </div>
  <div id="message"></div>
</main>
<script>
"use strict";
const body = document.body;
const counter = document.getElementById("counter");
const message = document.getElementById("message");
const videos = [document.getElementById("left-video"), document.getElementById("right-video")];
const buttons = Array.from(document.querySelectorAll("button[data-value]"));
const KEYS = { ArrowLeft: 0, "1": 0, ArrowRight: 1, "2": 1, e: 0.5, E: 0.5, s: null, S: null };
let current = null;
let busy = false;
let pollTimer = null;

function setMessage(text, isError) {
  message.textContent = text;
  message.className = isError ? "error" : "";
}

function setReady(ready) {
  buttons.forEach(b => { b.disabled = !ready; });
}

async function loadNext() {
  clearTimeout(pollTimer);
  let data;
  try {
    const response = await fetch("/api/next", { cache: "no-store" });
    data = await response.json();
  } catch (err) {
    setMessage("The labeling server is not answering; retrying...", true);
    pollTimer = setTimeout(loadNext, 2000);
    return;
  }
  counter.textContent = `${data.labeled} / ${data.total} labeled`;
  current = data.query;
  if (current === null) {
    setReady(false);
    videos.forEach(v => { v.removeAttribute("src"); v.load(); });
    body.dataset.state = "waiting";
    body.dataset.query = "";
    setMessage(data.total ? "All queries labeled. Waiting for the next round..." : "Waiting for queries...");
    pollTimer = setTimeout(loadNext, 2000);
    return;
  }
  videos[0].src = current.left;
  videos[1].src = current.right;
  body.dataset.query = String(current.id);
  body.dataset.state = "ready";
  setMessage(`Round ${current.round}, query ${current.id}`);
  setReady(true);
}

async function answer(value) {
  if (current === null || busy) return;
  busy = true;
  setReady(false);
  body.dataset.state = "busy";
  let error = "";
  try {
    const response = await fetch("/api/label", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query_id: current.id, value: value }),
    });
    if (!response.ok) {
      const detail = (await response.json()).detail || response.statusText;
      error = `Not saved: ${detail}`;
    }
  } catch (err) {
    setMessage("Not saved: the labeling server is not answering; try again.", true);
    setReady(true);
    body.dataset.state = "ready";
    busy = false;
    return;
  }
  busy = false;
  await loadNext();
  if (error) setMessage(error, true);
}

buttons.forEach(b => b.addEventListener("click", () => {
  answer(b.dataset.value === "skip" ? null : Number(b.dataset.value));
}));

document.addEventListener("keydown", event => {
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!(event.key in KEYS)) return;
  event.preventDefault();
  answer(KEYS[event.key]);
});

loadNext();
</script>
</body>
</html>
"""


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "PAGE", "ServeError", "bind_socket", "create_app", "serve", "url_of"]
