"""One FastAPI app for robreward's local pages: each page kind (the labeling page, the ICPL chooser)
is mounted under its own prefix, ``/KIND/``, behind the guard of :mod:`robreward.web.security`.

    app = create_web_app([label_page(run_dir)], token_dir=run_dir)
    GET /                   redirects to the page (the query string kept), when one page is served
    GET /KIND/?token=T      the page (sets the token cookie); its API and files are under /KIND/

A page kind is a :class:`Page`: its HTML (a package data file beside the code that serves it)
and an ``APIRouter`` of its routes, written by the package that owns the data (feedback for
labels, codegen for choices); this module imports neither.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations
import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from robreward.web.security import MAX_BODY, Guard, Security, load_or_create_token, parse_json
from robreward.web.server import ServeError

CLIP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.mp4$")
NO_STORE = {"Cache-Control": "no-store"}
# the pages load nothing from elsewhere and may not be framed by another site (clickjacking)
PAGE_HEADERS = {**NO_STORE, "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                           "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"}


@dataclasses.dataclass(frozen=True)
class Page:
    """One page kind: served at ``/KIND/``, its routes (relative paths) under the same prefix."""

    kind: str
    """URL prefix and name: 'label', 'choose'."""
    html: str
    """The page (HTML + JS, no build step); it fetches its API with paths relative to /KIND/."""
    router: Any
    """A fastapi.APIRouter with the page's API and file routes (paths like '/api/next')."""
    close: Optional[Callable[[], None]] = None
    """Called when the server stops (e.g. closes a database)."""


def read_page(package_file: str, name: str) -> str:
    """The HTML file ``name`` beside the module file ``package_file`` (package data)."""
    return (Path(package_file).parent / name).read_text(encoding="utf-8")


def create_web_app(pages: Sequence[Page], *, token_dir, token: Optional[str] = None, max_body: int = MAX_BODY):
    """The app serving ``pages``; the token is ``token`` or the one kept in ``token_dir`` (made if missing)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, RedirectResponse

    kinds = [page.kind for page in pages]
    if not pages or len(set(kinds)) != len(kinds) or not all(re.fullmatch(r"[a-z]+", k) for k in kinds):
        raise ValueError(f"pages need distinct lower-case kinds, got {kinds}")
    if token is None:
        try:
            token = load_or_create_token(token_dir)
        except OSError as err:
            raise ServeError(f"cannot keep the page token in {token_dir}: {err.strerror or err} (the run directory "
                             "must be writable)") from None
    security = Security(token=token,
                        page_paths=frozenset(f"/{kind}/" for kind in kinds), max_body=max_body)
    app = FastAPI(title="robreward", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.security = security
    app.state.pages = list(pages)
    app.state.entry = f"/{kinds[0]}/"  # the page the printed address opens

    @app.get("/")
    def root(request: Request):
        if len(pages) > 1:
            links = "".join(f'<li><a href="/{k}/">{k}</a></li>' for k in kinds)
            return HTMLResponse(f"<!doctype html><title>robreward</title><ul>{links}</ul>", headers=PAGE_HEADERS)
        query = request.url.query
        return RedirectResponse(f"/{kinds[0]}/" + (f"?{query}" if query else ""), status_code=307)

    for page in pages:
        app.add_api_route(f"/{page.kind}/", _page_handler(page.html), methods=["GET", "HEAD"],
                          response_class=HTMLResponse)
        app.include_router(page.router, prefix=f"/{page.kind}")
    app.add_middleware(Guard, security=security)
    return app


def close_pages(app) -> None:
    for page in getattr(app.state, "pages", []):
        if page.close is not None:
            page.close()


def page_url(app, base: str) -> str:
    """The address to print: ``base`` (http://host:port/) + the page + ?token=..."""
    return f"{base.rstrip('/')}{app.state.entry}?token={app.state.security.token}"


async def json_body(request) -> Any:
    """The request's JSON body (the guard has checked its type and size), or HTTPException 400."""
    from fastapi import HTTPException

    try:
        return parse_json(await request.body())
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


def file_response(folder: Path, name: str, what: str):
    """``folder/name`` as video/mp4 when name is a plain NAME.mp4 inside the folder; else HTTPException."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    folder = folder.resolve()
    # only a plain file name, resolved inside the folder (no '..', no '/', no links out)
    if not CLIP_NAME.match(name) or (folder / name).resolve().parent != folder:
        raise HTTPException(400, f"bad {what} name {name[:100]!r}: {what}s are plain NAME.mp4 files")
    path = folder / name
    if not path.is_file():
        raise HTTPException(404, f"no {what} {name!r}")
    return FileResponse(path, media_type="video/mp4")


def _page_handler(html: str):
    from fastapi.responses import HTMLResponse

    def page():
        return HTMLResponse(html, headers=PAGE_HEADERS)

    return page


__all__ = ["CLIP_NAME", "NO_STORE", "Page", "close_pages", "create_web_app", "file_response", "json_body",
           "page_url", "read_page"]
