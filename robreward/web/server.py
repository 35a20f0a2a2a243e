"""Serving a :func:`robreward.web.app.create_web_app` app with uvicorn: in the foreground
(``robreward label``) or from a daemon thread of a training process (the human teacher, the
ICPL chooser). The address it prints holds the page and the run's token."""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Callable, Optional

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class ServeError(RuntimeError):
    """The app cannot start: an occupied or unreachable address, a missing or wrong run directory."""


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
    """http://HOST:PORT/ of a listening socket (no page, no token)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _listen(app, host: str, port: int):
    """The socket and the address to print; the bound host joins the Host allow-list."""
    from robreward.web.app import page_url

    sock = bind_socket(host, port)
    app.state.security.allow_host(host)
    return sock, page_url(app, url_of(sock))


def _server(app):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def serve(app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          announce: Optional[Callable[[str], None]] = None) -> None:
    """Run ``app`` until interrupted. ``announce(url)`` is called once it listens (port 0: any free port)."""
    from robreward.web.app import close_pages

    try:
        sock, url = _listen(app, host, port)
    except BaseException:
        close_pages(app)
        raise
    server = _server(app)
    try:
        if announce is not None:
            announce(url)
        server.run(sockets=[sock])
    finally:
        sock.close()
        close_pages(app)


class BackgroundServer:
    """``app`` served from a daemon thread of this process (``robreward prefs train --teacher human``
    serves the labeling page so the person can label while the loop waits). ``url`` is the address to
    open (page and token); ``stop()`` shuts it down."""

    def __init__(self, app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, start_timeout: float = 30.0):
        from robreward.web.app import close_pages

        self.app = app
        try:
            self._sock, self.url = _listen(app, host, port)  # a busy or bad address fails here, before any thread
        except BaseException:
            close_pages(app)
            raise
        self.base_url = url_of(self._sock)
        self._server = _server(app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="robreward-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"the web app did not start on {self.base_url}")
            time.sleep(0.02)

    def stop(self) -> None:
        from robreward.web.app import close_pages

        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
        close_pages(self.app)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["BackgroundServer", "DEFAULT_HOST", "DEFAULT_PORT", "ServeError", "bind_socket", "serve", "url_of"]
