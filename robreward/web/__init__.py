"""robreward's local web pages: one hardened FastAPI app that serves the labeling page
(feedback/preferences/app.py) and the ICPL chooser (codegen/choose.py), each under its own prefix.

Threat model: the server listens on this machine only and trusts the person who opens the address
it prints, nobody else. Every request needs the run's token (in that address, then an HttpOnly
SameSite=Strict cookie), a Host naming this machine, and, to change anything, a same-origin JSON
body of at most 64 KiB; so a web page the user happens to visit can neither read nor label.

    robreward.web.app        Page, create_web_app: the app and its page kinds
    robreward.web.security   the guard every request passes (token, Host, Origin, type, size)
    robreward.web.server     bind_socket, serve, BackgroundServer

FastAPI and uvicorn are imported when an app is built, not when robreward is imported.
"""

from robreward.web.server import DEFAULT_HOST, DEFAULT_PORT, BackgroundServer, ServeError, bind_socket, serve, url_of

__all__ = ["BackgroundServer", "DEFAULT_HOST", "DEFAULT_PORT", "ServeError", "bind_socket", "serve", "url_of"]
