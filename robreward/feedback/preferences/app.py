"""The labeling page: two clips side by side, a person says which segment is better.

    robreward label RUN_DIR [--port 8765] [--host 127.0.0.1]

It reads the run's label store (``RUN_DIR/labels.sqlite``) and serves its clips
(``RUN_DIR/clips/*.mp4``): one static page (``label.html``) plus a small JSON API, mounted
under ``/label/`` of robreward's one web app (:mod:`robreward.web`: token, Host, Origin, JSON
and size checks come from there).

    GET  /label/?token=T          the page (HTML + JS, no build step); the token goes into a cookie
    GET  /label/api/next          {"query": {"id", "round", "left", "right"} | null, "labeled": n, "total": m}
    POST /label/api/label         {"query_id": int, "value": 0 | 1 | 0.5 | null}  (left, right, equal, skip)
                                  -> {"ok": true, "labeled", "total"}; 404 for an unknown query id,
                                  400 for a malformed body or value, 409 for a round the loop has used
    GET  /label/clips/NAME.mp4    a clip (only plain file names inside RUN_DIR/clips)

Each label is committed to SQLite before the answer goes back to the browser, so a crash or a
restart of the app loses nothing; the training loop, blocked in ``LabelStore.wait_for_labels``,
picks the labels up from the same file and then closes the round (``LabelStore.close_round``):
from then on a label for it is refused, so labels.sqlite and the loop's labels.npz agree.
While no query is pending the page polls every two seconds, so it can stay open between rounds.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request), and
# those names are imported inside label_page, where string annotations could not be resolved
import json
from pathlib import Path
from typing import Callable, Optional, Union

from robreward.feedback.preferences.store import (
    STORE_NAME,
    LabelStore,
    RoundClosedError,
    UnknownQueryError,
    check_label,
)
from robreward.web.app import NO_STORE, Page, create_web_app, file_response, json_body, read_page
from robreward.web.server import DEFAULT_HOST, DEFAULT_PORT, BackgroundServer, ServeError, bind_socket, url_of

KIND = "label"
PREFS_CONFIG = "config.json"  # a preference run's config (loop.CONFIG_FILE; not imported: it pulls in torch)


def check_label_run(run_dir: Path) -> None:
    """A run directory the labeling page can serve: one with a label store, or a preference run whose
    teacher is human; anything else is a ServeError saying which directory to pass (nothing is created)."""
    hint = "pass the --out folder of `robreward prefs train --teacher human`"
    if not run_dir.is_dir():
        raise ServeError(f"run directory {str(run_dir)!r} does not exist: {hint}")
    if (run_dir / STORE_NAME).is_file():
        return
    config = run_dir / PREFS_CONFIG
    try:
        teacher = json.loads(config.read_text()).get("teacher") if config.is_file() else None
    except (OSError, ValueError, AttributeError):
        raise ServeError(f"{config} is not a readable preference-run config: {hint}") from None
    if teacher is None:
        raise ServeError(f"{str(run_dir)!r} is not a preference run with a human teacher (it has no {STORE_NAME} "
                         f"and no {PREFS_CONFIG} with a teacher): {hint}")
    from robreward.feedback.preferences.human import is_human

    try:
        human = is_human(str(teacher))
    except ValueError:
        human = False
    if not human:
        raise ServeError(f"{str(run_dir)!r} is a preference run with the simulated teacher {teacher!r}: it asks "
                         f"nobody for labels; {hint}")


def label_page(run_dir: Union[str, Path]) -> Page:
    """The labeling page of one run directory (its store is created if the run has none yet)."""
    from fastapi import APIRouter, HTTPException, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    run_dir = Path(run_dir)
    check_label_run(run_dir)
    store = LabelStore(run_dir / STORE_NAME)
    router = APIRouter()

    def progress() -> dict:
        labeled, total = store.progress()
        return {"labeled": labeled, "total": total}

    @router.get("/api/next")
    def next_query():
        query = store.next_pending()
        body = {"query": None if query is None else {
            "id": query.id, "round": query.round,
            "left": f"/{KIND}/clips/{query.left_clip}", "right": f"/{KIND}/clips/{query.right_clip}"}, **progress()}
        return JSONResponse(body, headers=NO_STORE)

    @router.post("/api/label")
    async def post_label(request: Request):
        body = await json_body(request)
        if not isinstance(body, dict) or "query_id" not in body or "value" not in body:
            raise HTTPException(400, "the body must be {\"query_id\": int, \"value\": 0 | 1 | 0.5 | null}")
        query_id = body["query_id"]
        if isinstance(query_id, bool) or not isinstance(query_id, int):
            raise HTTPException(400, f"query_id must be an integer, got {json.dumps(query_id)[:80]}")
        try:
            value = check_label(body["value"])
            await run_in_threadpool(store.label, query_id, value)  # commits before we answer
        except UnknownQueryError as err:
            raise HTTPException(404, str(err)) from None
        except RoundClosedError as err:
            raise HTTPException(409, str(err)) from None
        except ValueError as err:
            raise HTTPException(400, str(err)[:300]) from None
        return JSONResponse({"ok": True, **progress()}, headers=NO_STORE)

    @router.api_route("/clips/{name:path}", methods=["GET", "HEAD"])
    def clip(name: str):
        return file_response(store.clips_dir, name, "clip")

    return Page(kind=KIND, html=read_page(__file__, "label.html"), router=router, close=store.close)


def create_app(run_dir: Union[str, Path]):
    """The web app serving the labeling page of one run directory (token kept in RUN_DIR/web_token)."""
    return create_web_app([label_page(run_dir)], token_dir=run_dir)


def serve(run_dir: Union[str, Path], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          announce: Optional[Callable[[str], None]] = None) -> None:
    """Serve the labeling page until interrupted; ``announce(url)`` gets the address (page + token)."""
    from robreward.web.server import serve as serve_app

    app = create_app(run_dir)  # before binding: a bad run directory is reported first
    serve_app(app, host, port, announce=announce)


def background_server(run_dir: Union[str, Path], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> BackgroundServer:
    """The labeling page served from a daemon thread (``.url``: the address to open; ``.stop()``)."""
    return BackgroundServer(create_app(run_dir), host, port)


__all__ = ["BackgroundServer", "DEFAULT_HOST", "DEFAULT_PORT", "ServeError", "background_server", "bind_socket",
           "check_label_run", "create_app", "label_page", "serve", "url_of"]
