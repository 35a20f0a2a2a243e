"""What every request to a robreward page passes before a handler sees it (an ASGI middleware).

A page on another site that the user visits can send requests to 127.0.0.1 (a form, a
``fetch`` with ``text/plain``, an ``<img>``), and a DNS-rebinding site can even read the
answers. So, in this order:

1. the Host header names this machine and port (127.0.0.1, localhost, [::1], the bound host or
   the address the connection came in on): 400 otherwise (DNS rebinding);
2. a request that can change something (any method but GET/HEAD) that carries an Origin
   header must come from this very origin: 403 otherwise;
3. the per-run token: in the ``X-Robreward-Token`` header or the page's cookie (set, HttpOnly and
   SameSite=Strict, by the first load of a page URL ending in ``?token=...``): 403 otherwise;
4. a request with a body is ``application/json`` (415 otherwise: forms and ``text/plain`` are the
   bodies a foreign page can send without asking) and at most ``max_body`` bytes (413), read
   chunk by chunk so an oversized body is refused without being held in memory.

The token lives in ``DIR/web_token`` (mode 0600) of the run it serves, so a restarted server
(``robreward label RUN`` after a crash) keeps the address a person has open.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

TOKEN_FILE = "web_token"
TOKEN_HEADER = "x-robreward-token"
MAX_BODY = 64 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_SAFE_METHODS = ("GET", "HEAD")


def load_or_create_token(directory) -> str:
    """The run's token: read from ``directory/web_token``, or created there (0600, 32 random bytes)."""
    path = Path(directory) / TOKEN_FILE
    for _ in range(3):
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            token = None
        if token is not None and _TOKEN.match(token):
            return token
        if token is not None:  # empty or damaged: a new token replaces it
            path.unlink(missing_ok=True)
        fresh = secrets.token_urlsafe(32)
        fd, tmp = tempfile.mkstemp(prefix=f".{TOKEN_FILE}.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(fresh + "\n")
            os.link(tmp, path)  # never replaces a token another process created meanwhile
            return fresh
        except FileExistsError:
            continue  # lost the race: read theirs
        finally:
            os.unlink(tmp)
    raise RuntimeError(f"could not create the page token {path}: delete it and retry")


@dataclasses.dataclass
class Security:
    """The settings the guard checks against; ``allowed_hosts`` grows by the bound host once it listens."""

    token: str
    page_paths: frozenset
    """Paths of the pages (GET): a ``?token=`` query there sets the cookie."""
    public_paths: frozenset = frozenset({"/"})
    """Paths served without a token (the root only redirects to the page)."""
    allowed_hosts: set = dataclasses.field(default_factory=lambda: set(LOCAL_HOSTS))
    max_body: int = MAX_BODY

    def allow_host(self, host: str) -> None:
        host = host.strip().lower()
        self.allowed_hosts.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)


def cookie_name(port: int) -> str:
    # cookies are shared by every port of a host: one name per port keeps the label app's and the
    # chooser's tokens apart
    return f"robreward_token_{port}"


class Guard:
    """The ASGI middleware of the module docstring (``app.add_middleware(Guard, security=...)``)."""

    def __init__(self, app, security: Security):
        self.app, self.security = app, security

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, set_cookie = self._check_headers(scope)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        if scope["method"] not in _SAFE_METHODS:
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        if set_cookie:
            send = _with_cookie(send, set_cookie)
        await self.app(scope, receive, send)

    def _check_headers(self, scope) -> tuple:
        """(refusal (status, message) or None, Set-Cookie value or None)."""
        headers, repeated = _headers(scope)
        twice = sorted(repeated & {"host", "origin", "content-type", "content-length", TOKEN_HEADER})
        if twice:
            return (400, f"the header {twice[0]} is given more than once: send it once"), None
        port = (scope.get("server") or ("", 0))[1]
        refusal = self._check_host(headers.get("host", ""), scope, port)
        if refusal:
            return (400, refusal), None
        method = scope["method"]
        if method not in _SAFE_METHODS and "origin" in headers:
            expected = f"http://{headers['host'].lower()}"
            if headers["origin"].lower() != expected:
                return (403, f"cross-origin request refused (Origin {headers['origin'][:100]!r}, this page is "
                             f"{expected}): send it from the page itself"), None
        token = self.security.token
        given = [headers.get(TOKEN_HEADER, ""), _cookie(headers.get("cookie", ""), cookie_name(port))]
        if any(secrets.compare_digest(g.encode(), token.encode()) for g in given if g):
            return None, None
        path = scope["path"]
        if method in _SAFE_METHODS and path in self.security.page_paths:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[-1]
            if query and secrets.compare_digest(query.encode(), token.encode()):
                return None, f"{cookie_name(port)}={token}; HttpOnly; SameSite=Strict; Path=/"
        elif path in self.security.public_paths and method in _SAFE_METHODS:
            return None, None
        return (403, "missing or wrong token: open the address that `robreward label` (or `robreward generate "
                     "--preferences human`) printed, it ends in ?token=...; API clients send the token in the "
                     "X-Robreward-Token header"), None

    def _check_host(self, host: str, scope, port: int) -> str:
        host = host.strip().lower()
        name, _, given_port = host.rpartition(":")
        if not name or host.endswith("]"):  # no port (127.0.0.1, [::1]): the default one
            name, given_port = host, "80"
        local = (scope.get("server") or ("",))[0] or ""
        allowed = self.security.allowed_hosts | {f"[{local}]" if ":" in local else local}
        if name not in allowed or given_port != str(port):
            return (f"Host {host[:100]!r} is not this server: open it as http://127.0.0.1:{port}/ (or localhost); "
                    "other names are refused against DNS rebinding")
        return ""

    async def _read_body(self, scope, receive, send):
        """The whole body, or None once a refusal went out (415, 413, 400) or the client left."""
        headers = _headers(scope)[0]
        limit = self.security.max_body
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or len(length.strip()) > 18):
            await _answer(send, 400, f"bad Content-Length {length[:40]!r}")
            return None
        if length is not None and int(length) > limit:
            await _answer(send, 413, f"the body is {int(length)} bytes, the limit is {limit}")
            return None
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            await _answer(send, 415, f"the body must be Content-Type: application/json, got "
                                     f"{headers.get('content-type', 'none')[:80]!r}")
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # a chunked body: stop reading at the limit
                await _answer(send, 413, f"the body is over the limit of {limit} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or ValueError saying why not (bad UTF-8 or syntax, NaN, nesting too deep)."""
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except RecursionError:
        raise ValueError("the body must be JSON nested a few levels deep, this one is nested too deeply") from None
    except ValueError as err:
        raise ValueError(f"the body must be JSON ({str(err)[:120]})") from None


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive) -> Callable:
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes

    return replay


def _with_cookie(send, cookie: str) -> Callable:
    async def send_with_cookie(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
        await send(message)

    return send_with_cookie


def _headers(scope) -> tuple[dict, set]:
    """({lower-case name: value}, names given more than once); Cookie headers are joined."""
    headers, repeated = {}, set()
    for key, raw in scope["headers"]:
        name, value = key.decode("latin-1").lower(), raw.decode("latin-1")
        if name in headers:
            if name != "cookie":
                repeated.add(name)
            value = headers[name] + "; " + value if name == "cookie" else value
        headers[name] = value
    return headers, repeated


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip()
    return ""


__all__ = ["Guard", "LOCAL_HOSTS", "MAX_BODY", "Security", "TOKEN_FILE", "TOKEN_HEADER", "cookie_name",
           "load_or_create_token", "parse_json"]
