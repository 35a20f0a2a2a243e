"""ICPL preferences from a person: a video of each candidate's policy, the person picks the best and the worst.

    robreward generate --task push --preferences human ...   # serves the page, waits for each iteration's choice

After an iteration's candidates are trained, one evaluation episode of each candidate's policy is
rendered (``iter_XX/videos/CAND.mp4``, the same reset seed for all, deterministic actions). The
page at the address the loop prints shows them side by side, each with a "best" and a "worst"
button. The choice is written atomically to ``iter_XX/choice.json`` as soon as it is submitted;
the loop, waiting for that file, puts it into the next prompt ("a person who watched the videos
preferred A over B"), as ICPL (Yu et al. 2024) does with its human in the loop. A run killed
while it waits resumes at the same question (``--resume``); videos already rendered are kept.

It is the ``/choose/`` page of robreward's one web app (:mod:`robreward.web`: the token, Host,
Origin, JSON and size checks come from there); ``choose.html`` beside this file is the page.

    GET  /choose/?token=T               the page (HTML + JS, no build step); the token goes into a cookie
    GET  /choose/api/pending            {"iteration": int | null, "candidates": [{"id", "video", "fitness"}]}
    POST /choose/api/choice             {"iteration": int, "best": ID, "worst": ID} -> {"ok": true}
                                        400: a malformed body, best == worst, an id not in the iteration;
                                        409: not the iteration that waits (a stale page, or answered)
    GET  /choose/videos/NAME.mp4        a video of the waiting iteration (plain file names only)
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (see app.py)
import json
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from robreward.fileio import atomic_write_json
from robreward.web.app import CLIP_NAME, NO_STORE, Page, create_web_app, file_response, json_body, read_page

PENDING_FILE, CHOICE_FILE, VIDEOS_DIR = "choose.json", "choice.json", "videos"
KIND = "choose"  # the page's prefix in the web app
DEFAULT_PORT = 8766


def render_candidate_videos(task, policies: dict, out_dir: Path, seed: int = 0) -> dict:
    """One deterministic evaluation episode per candidate policy ({id: policy.onnx}) as out_dir/ID.mp4;
    a video that exists is kept (a resumed run renders nothing twice). Returns {id: path}."""
    from robreward.eval.evaluate import run_episodes
    from robreward.rl import load_policy

    out_dir.mkdir(parents=True, exist_ok=True)
    videos = {}
    for cand_id, policy_path in policies.items():
        path = out_dir / f"{cand_id}.mp4"
        if not path.is_file():
            tmp = out_dir / f".{cand_id}.tmp.mp4"
            run_episodes(task, load_policy(policy_path), episodes=1, seed=seed, num_envs=1, video=str(tmp))
            tmp.replace(path)
        videos[cand_id] = path
    return videos


def ask(iter_dir: Path, iteration: int, candidates: list[dict]) -> None:
    """Pose the question: candidates [{"id", "fitness"}] whose videos are in iter_dir/videos/."""
    atomic_write_json(iter_dir / PENDING_FILE, {"iteration": iteration, "candidates": candidates}, indent=2)


def read_choice(iter_dir: Path) -> Optional[dict]:
    """The person's answer {"best", "worst", "iteration", "time"}, or None while it is not given."""
    path = iter_dir / CHOICE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def check_choice(body, pending: dict) -> dict:
    """The choice in a POST body, checked against the pending question (ValueError / LookupError)."""
    if not isinstance(body, dict) or not {"iteration", "best", "worst"} <= set(body) \
            or isinstance(body["iteration"], bool) or not isinstance(body["iteration"], int) \
            or not isinstance(body["best"], str) or not isinstance(body["worst"], str):
        raise ValueError('the body must be {"iteration": int, "best": "cand_id", "worst": "cand_id"}')
    if body["iteration"] != pending["iteration"]:
        raise LookupError(f"iteration {str(body['iteration'])[:20]} does not wait for a choice (iteration "
                          f"{pending['iteration']} does): reload the page")
    ids = [c["id"] for c in pending["candidates"]]
    for key in ("best", "worst"):
        if body[key] not in ids:
            raise ValueError(f"{key} {body[key][:80]!r} is not a candidate of iteration {pending['iteration']}: "
                             f"choose one of {', '.join(ids)}")
    if body["best"] == body["worst"]:
        raise ValueError(f"best and worst are the same candidate ({body['best']}): pick two different ones")
    return {"iteration": pending["iteration"], "best": body["best"], "worst": body["worst"],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def choose_page(root: Path) -> Page:
    """The chooser of a generate run directory: it serves whichever iter_XX/ has a question and no answer."""
    from fastapi import APIRouter, HTTPException, Request
    from fastapi.responses import JSONResponse

    root = Path(root)
    router = APIRouter()
    lock = threading.Lock()

    def waiting() -> Optional[tuple]:
        for pending in sorted(root.glob(f"iter_*/{PENDING_FILE}")):
            if not (pending.parent / CHOICE_FILE).is_file():
                return pending.parent, json.loads(pending.read_text())
        return None

    @router.get("/api/pending")
    def pending():
        found = waiting()
        if found is None:
            return JSONResponse({"iteration": None, "candidates": []}, headers=NO_STORE)
        _, question = found
        cands = [{"id": c["id"], "fitness": c.get("fitness"), "video": f"/{KIND}/videos/{c['id']}.mp4"}
                 for c in question["candidates"]]
        return JSONResponse({"iteration": question["iteration"], "candidates": cands}, headers=NO_STORE)

    @router.post("/api/choice")
    async def choice(request: Request):
        body = await json_body(request)
        with lock:  # one answer per question, even from two open pages
            found = waiting()
            if found is None:
                raise HTTPException(409, "no iteration waits for a choice")
            iter_dir, question = found
            try:
                answer = check_choice(body, question)
            except LookupError as err:
                raise HTTPException(409, str(err)) from None
            except ValueError as err:
                raise HTTPException(400, str(err)) from None
            atomic_write_json(iter_dir / CHOICE_FILE, answer, indent=2)
        return JSONResponse({"ok": True}, headers=NO_STORE)

    @router.api_route("/videos/{name:path}", methods=["GET", "HEAD"])
    def video(name: str):
        found = waiting()
        if not CLIP_NAME.match(name) or found is None:
            raise HTTPException(404, f"no video {name[:100]!r} waits for a choice")
        return file_response(found[0] / VIDEOS_DIR, name, "video")

    return Page(kind=KIND, html=read_page(__file__, "choose.html"), router=router)


def create_choice_app(root: Path):
    """The web app serving the chooser of a generate run directory (token kept in ROOT/web_token)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return create_web_app([choose_page(root)], token_dir=root)


class HumanChooser:
    """Serves the chooser (unless serve=False: `robreward generate` elsewhere serves it) and waits for answers."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, serve: bool = True,
                 timeout: Optional[float] = None, poll: float = 0.5, announce: Callable[[str], None] = print):
        from robreward.web.server import BackgroundServer

        self.root, self.timeout, self.poll, self.announce = Path(root), timeout, poll, announce
        self.server = BackgroundServer(create_choice_app(self.root), host, port) if serve else None
        self.url = self.server.url if self.server else None  # the page with the run's token (ROOT/web_token)

    def choose(self, iter_dir: Path, iteration: int, task, candidates: list[dict], seed: int = 0) -> dict:
        """The person's {"best", "worst"} among candidates [{"id", "fitness", "policy"}] of one iteration."""
        answer = read_choice(iter_dir)
        if answer is not None:
            return answer
        render_candidate_videos(task, {c["id"]: c["policy"] for c in candidates}, iter_dir / VIDEOS_DIR, seed)
        ask(iter_dir, iteration, [{"id": c["id"], "fitness": c["fitness"]} for c in candidates])
        self.announce(f"iteration {iteration}: pick the best and the worst of {len(candidates)} candidate videos at "
                      f"{self.url or 'the chooser page'}")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while (answer := read_choice(iter_dir)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no choice for iteration {iteration} after {self.timeout:g} s (pick at "
                                   f"{self.url or 'the chooser page'}, then --resume)")
            time.sleep(self.poll)
        return answer

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


__all__ = ["CHOICE_FILE", "DEFAULT_PORT", "HumanChooser", "PENDING_FILE", "ask", "check_choice", "choose_page",
           "create_choice_app", "read_choice", "render_candidate_videos"]
