"""A local fake LLM server (OpenAI Chat Completions and Anthropic Messages) for the codegen tests.

It runs stdlib ``http.server`` in a thread on 127.0.0.1 (port 0), counts and keeps every
request, and answers from a script: queued ``Reply`` overrides first (errors, delays, raw bytes),
then a generated success whose texts are ``text_fn(request_index, choice_index, body)``.

A hostile server echoes the key: wherever ``ECHO_KEY`` appears in a reply (an error body, a
response text), the server puts the API key that the request carried (Authorization: Bearer,
or x-api-key), and ``ECHO_AUTHORIZATION`` becomes the whole Authorization header value.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest

ECHO_KEY = "<<the API key of this request>>"
ECHO_AUTHORIZATION = "<<the Authorization header of this request>>"


@dataclass
class Reply:
    """A scripted answer: HTTP status, JSON body (None: a generated success), extra headers,
    a delay before answering (to make the client time out), and ``raw`` bytes sent as the body
    instead of any JSON (invalid UTF-8, not JSON at all)."""

    status: int = 200
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


class FakeLLMServer:
    """``kind`` is "openai" or "anthropic". ``max_choices`` caps the choices per response
    (1 = a server that ignores ``n``); ``requests`` holds every request's path and JSON body.
    Usage is ``PROMPT_TOKENS`` per request and ``COMPLETION_TOKENS`` per choice."""

    PROMPT_TOKENS = 11
    COMPLETION_TOKENS = 7

    def __init__(self, kind: str):
        self.kind = kind
        self.script: list[Reply] = []
        self.max_choices: int | None = None
        self.text_fn: Callable[[int, int, dict], str] = lambda request, choice, body: f"text {request}.{choice}"
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}" + ("/v1" if self.kind == "openai" else "")

    def start(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def error(self, status: int, message: str, headers: dict | None = None) -> Reply:
        """A provider-shaped error reply."""
        if self.kind == "openai":
            body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        else:
            body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return Reply(status, body, headers or {})

    def slow(self, delay: float) -> Reply:
        """A success that arrives after ``delay`` seconds."""
        return Reply(delay=delay)

    def _answer(self, index: int, body: dict) -> Reply:
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None and (scripted.status != 200 or scripted.body is not None or scripted.raw is not None):
            return scripted
        reply = scripted or Reply()
        reply.body = self._success(index, body)
        return reply

    def _success(self, index: int, body: dict) -> dict:
        if self.kind == "anthropic":
            return {"id": f"msg_{index}", "type": "message", "role": "assistant", "model": body["model"],
                    "content": [{"type": "text", "text": self.text_fn(index, 0, body)}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": self.PROMPT_TOKENS, "output_tokens": self.COMPLETION_TOKENS}}
        choices = min(body.get("n", 1), self.max_choices or 10**6)
        return {"id": f"chatcmpl-{index}", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": i, "message": {"role": "assistant", "content": self.text_fn(index, i, body)},
                             "finish_reason": "stop"} for i in range(choices)],
                "usage": {"prompt_tokens": self.PROMPT_TOKENS, "completion_tokens": self.COMPLETION_TOKENS * choices,
                          "total_tokens": self.PROMPT_TOKENS + self.COMPLETION_TOKENS * choices}}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                authorization = self.headers.get("Authorization", "")
                key = self.headers.get("x-api-key") or authorization.removeprefix("Bearer ")
                with server._lock:
                    index = len(server.requests)
                    server.requests.append({"path": self.path, "body": body, "key": key})
                reply = server._answer(index, body)
                time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                # a hostile server: the key it was sent, echoed back (JSON-escaped, as a server would)
                payload = payload.replace(ECHO_KEY.encode(), json.dumps(key)[1:-1].encode())
                payload = payload.replace(ECHO_AUTHORIZATION.encode(), json.dumps(authorization)[1:-1].encode())
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up, as the timeout test intends

            def log_message(self, format, *args):  # keep test output quiet
                pass

        return Handler


@pytest.fixture
def openai_server():
    server = FakeLLMServer("openai").start()
    yield server
    server.stop()


@pytest.fixture
def anthropic_server():
    server = FakeLLMServer("anthropic").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_llm_keys(monkeypatch):
    """Tests never see a real key from the developer's shell, nor a proxy for 127.0.0.1."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
