"""The provider side of robreward's LLM access: one HTTP request through the ``openai`` or the
``anthropic`` SDK, its answer normalised (``Reply``), its failure sorted into a retryable
``TransientError`` or a final ``LLMRequestError`` (messages redacted), and the ``RetryPolicy``
that says how long to wait before the next attempt. The SDKs' own retries are off: the cache,
spend cap, retry loop and transcript around these requests are robreward.codegen.llm's
``ProviderClient``."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

from robreward.codegen.llm_errors import LLMConfigError, LLMRequestError
from robreward.codegen.secrets import clean_text, redact

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait between attempts of one HTTP request. The wait before retry
    ``k`` (0-based) is ``min(max_delay, base_delay * 2**k * (1 + jitter * U[0,1)))``, or the
    server's Retry-After capped at ``max_retry_after``. ``sleep`` is injectable for tests;
    jitter only changes wait times, never results."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.25
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1 (1 = no retries), got {self.max_attempts}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.max_delay, self.base_delay * 2 ** retry * (1.0 + self.jitter * self.rng.random()))


class TransientError(Exception):
    """A failed attempt worth retrying (429, 5xx, timeout, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after, self.status = retry_after, status


class Reply(NamedTuple):
    """One HTTP response, normalised across providers."""

    texts: list[str]
    finish_reasons: list[str]
    prompt_tokens: int
    completion_tokens: int


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None."""
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None


def _server_message(error) -> str:
    """The server's own error message: ``{"error": {"message": ...}}`` (both providers)."""
    body = getattr(error, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])
    return str(inner or error.message)


def _translate_sdk_error(sdk, error: BaseException) -> Exception:
    """Map an exception from an SDK call to ``TransientError`` or a final ``LLMRequestError``, its
    message redacted (a 401 body may echo the key). Raise the result ``from None``: the SDK's
    exception, which holds the unredacted body, must not ride along in a traceback."""
    if isinstance(error, sdk.APIConnectionError):  # timeouts included
        kind = "timed out" if isinstance(error, sdk.APITimeoutError) else "could not connect"
        return TransientError(redact(f"request {kind} ({getattr(error.request, 'url', '?')})"))
    if isinstance(error, sdk.APIStatusError):
        status, headers = error.status_code, getattr(error.response, "headers", None)
        message = f"HTTP {status}: {clean_text(_server_message(error), limit=2000)}"
        if status in RETRYABLE_STATUS or status >= 500:
            return TransientError(message, _retry_after_seconds(headers), status)
        hint = " (check the API key environment variable)" if status in (401, 403) else ""
        return LLMRequestError(f"LLM request failed with {message}{hint}", status)
    # a malformed response (not JSON, invalid UTF-8, fields of the wrong type) or an SDK bug
    return LLMRequestError(f"LLM request failed: {type(error).__name__}: {clean_text(error, limit=2000)}")


def _usage(usage, name: str) -> int:
    """A token count from a response's usage, 0 when absent or not a number."""
    value = getattr(usage, name, 0)
    return int(value) if isinstance(value, (int, float)) and value == value and 0 <= value < 1e12 else 0


class OpenAIBackend:
    """One Chat Completions request through the ``openai`` package (OpenAI, vLLM, Ollama,
    llama.cpp, LM Studio). ``n`` is sent as is; servers that ignore it return fewer choices."""

    def __init__(self, model: str, api_key: str, base_url: str | None, timeout: float):
        import openai

        self.model, self._sdk = model, openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def request(self, messages: list[dict], n: int, temperature: float, max_tokens: int) -> Reply:
        try:
            extra = {"n": n} if n > 1 else {}
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens, **extra)
            choices = list(response.choices or [])
            return Reply(texts=[getattr(choice.message, "content", None) or "" for choice in choices],
                          finish_reasons=[str(choice.finish_reason or "") for choice in choices],
                          prompt_tokens=_usage(response.usage, "prompt_tokens"),
                          completion_tokens=_usage(response.usage, "completion_tokens"))
        except Exception as error:  # noqa: BLE001  (every failure becomes a redacted LLM error)
            raise _translate_sdk_error(self._sdk, error) from None


class AnthropicBackend:
    """One Messages request through the ``anthropic`` package: one sample per request (the API
    has no ``n``); system messages go to the ``system`` field. The SDK no longer takes a
    temperature (recent models reject one), so it is sent raw, and only when it differs from
    the API default 1.0."""

    def __init__(self, model: str, api_key: str, base_url: str | None, timeout: float):
        import anthropic

        self.model, self._sdk = model, anthropic
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def request(self, messages: list[dict], n: int, temperature: float, max_tokens: int) -> Reply:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [{"role": m["role"], "content": anthropic_content(m["content"])} for m in messages
                if m["role"] != "system"]
        extra: dict[str, Any] = {"system": system} if system else {}
        if temperature != 1.0:
            extra["extra_body"] = {"temperature": temperature}
        try:
            response = self._client.messages.create(model=self.model, messages=chat, max_tokens=max_tokens, **extra)
            text = "".join(str(block.text) for block in response.content or [] if getattr(block, "type", "") == "text")
            return Reply(texts=[text], finish_reasons=[str(response.stop_reason or "")],
                          prompt_tokens=_usage(response.usage, "input_tokens"),
                          completion_tokens=_usage(response.usage, "output_tokens"))
        except Exception as error:  # noqa: BLE001  (every failure becomes a redacted LLM error)
            raise _translate_sdk_error(self._sdk, error) from None


def anthropic_content(content):
    """A message's content for the Anthropic API: text as is; OpenAI-style parts with their
    ``image_url`` data URLs turned into Anthropic's base64 image blocks."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            if not url.startswith("data:") or ";base64," not in url:
                raise LLMConfigError("the Anthropic client sends images as base64 data URLs only, got "
                                     f"{url[:40]!r}")
            media_type, data = url[len("data:"):].split(";base64,", 1)
            parts.append({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        else:
            parts.append(part)
    return parts
