"""The one redaction step at the LLM client boundary: API keys never get past it.

Every response text and every error message that comes back from an LLM/VLM endpoint passes
through ``clean_text`` (texts) or ``redact`` (messages) inside robreward/codegen/llm.py, before
the codegen loop, the report, a log line or the CLI ever sees it. A server that echoes the key
(in a 401 body, or inside the program it writes) therefore cannot put it in state.json,
report.md, samples_*.json, check.json, reward.py or stderr. The CLI's top-level handler runs
``redact`` once more over what it prints (robreward/cli/common.py).

The secrets are the keys in use: ``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` as the environment
holds them now, and every key handed to a client explicitly (``register_secret``; make_client
does it). Each is removed as written, percent-encoded, JSON-escaped and base64-encoded (a
server may echo the Authorization header in any of these), and so is anything shaped like a
provider key (``sk-...``, ``sk-ant-...``, ``Bearer ...``), whoever's it is.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import urllib.parse
from typing import Iterable

REDACTED = "[REDACTED]"
KEY_ENV_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
MIN_SECRET_CHARS = 8
"""Shorter values ("x", "dummy" for a local server) are no real key; redacting them would cut
every "x" out of a reward program."""
MAX_TEXT_CHARS = 1_000_000
"""A response text longer than this is cut (a reward program is a few thousand characters; a
hostile server's 100 MB answer would otherwise be written five times over)."""

# provider-shaped keys: OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), and bearer tokens
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}")

_SURROGATE = re.compile("[\ud800-\udfff]")

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Add a key handed to a client explicitly (not from the environment) to the redacted set."""
    if secret and len(secret) >= MIN_SECRET_CHARS:
        with _lock:
            _registered.add(secret)


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """The keys in use now: the registered ones, the environment's, and ``extra``."""
    values = {os.environ.get(name, "") for name in KEY_ENV_VARS} | set(extra)
    with _lock:
        values |= _registered
    return sorted((v for v in values if v and len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


def _forms(secret: str) -> list[str]:
    """The secret as a server may echo it: raw, stripped, percent-encoded, JSON-escaped, base64."""
    forms = {secret, secret.strip(), urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for value in (secret, f"Bearer {secret}"):
            forms.add(encode(value.encode()).decode().rstrip("="))
    return sorted((f for f in forms if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact(text, extra: Iterable[str] = ()) -> str:
    """``text`` (anything; it is made a str) with every known secret and key-shaped string
    replaced by ``[REDACTED]``."""
    text = text if isinstance(text, str) else str(text)
    for secret in known_secrets(extra):
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, REDACTED)
    return _KEY_SHAPED.sub(REDACTED, text)


def clean_text(text, extra: Iterable[str] = (), limit: int = MAX_TEXT_CHARS) -> str:
    """One response text as the rest of robreward may keep it: a str (None -> ""), valid UTF-8
    (lone surrogates from JSON escapes become U+FFFD: they cannot be written to a file), at
    most ``limit`` characters, redacted."""
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    text = text[:limit]
    text = _SURROGATE.sub("\ufffd", text)
    return redact(text, extra)


__all__ = ["KEY_ENV_VARS", "MAX_TEXT_CHARS", "REDACTED", "clean_text", "known_secrets", "redact", "register_secret"]
