"""A small HTTP client for robreward's pages in tests: http.client (paths sent exactly as given),
the token in the X-Robreward-Token header unless told otherwise."""

from __future__ import annotations

import dataclasses
import http.client
import json
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass(frozen=True)
class Site:
    """One served page: ``http://HOST:PORT`` + ``/KIND`` and its token, from the address a server printed."""

    host: str
    port: int
    prefix: str
    token: str

    @classmethod
    def from_url(cls, url: str) -> "Site":
        parts = urlsplit(url)
        token = parse_qs(parts.query).get("token", [""])[0]
        assert token, f"no ?token= in the printed address {url!r}"
        return cls(parts.hostname, parts.port, parts.path.rstrip("/"), token)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
                token: Optional[str] = "auto", prefix: bool = True) -> Response:
        """``path`` below the page's prefix (``prefix=False``: from the root); ``token=None`` sends none."""
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("X-Robreward-Token", self.token if token == "auto" else token)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        try:
            conn.request(method, (self.prefix if prefix else "") + path, body=body, headers=sent)
            answer = conn.getresponse()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def get_json(self, path: str, **kwargs) -> tuple[int, Any]:
        response = self.get(path, **kwargs)
        return response.status, response.json()

    def post_json(self, path: str, body: Any = None, *, raw: Optional[bytes] = None, **kwargs) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        data = raw if raw is not None else json.dumps(body).encode()
        response = self.request("POST", path, data, headers=headers, **kwargs)
        return response.status, response.json()
