"""LLM access: one small interface over OpenAI-compatible servers, Anthropic, and replays.

    client = make_client("gpt-4o")                                      # OPENAI_API_KEY
    client = make_client("qwen2.5-coder", base_url="http://localhost:8000/v1")   # vLLM, Ollama, ...
    client = make_client("anthropic:claude-sonnet-4-6")                 # ANTHROPIC_API_KEY
    client = make_client("replay:runs/gen-cheetah/transcript")          # offline, exact
    completion = client.complete(messages, n=16, temperature=1.0, max_tokens=2048)

Every provider call goes through ``ProviderClient``, which adds, in this order: the on-disk
cache (a hit costs nothing), the spend cap (``Ledger``, checked before each HTTP request),
retries with capped exponential backoff on 429/5xx/timeouts/connection errors (the SDKs' own
retries are off so the policy is ours), token and cost accounting, and a transcript (one JSON
file per ``complete`` call) that ``replay:DIR`` plays back. API keys live only inside the SDK
client objects. Every response text and error message passes ``robreward.codegen.secrets``
(the keys in use redacted, valid UTF-8, a size cap) before it leaves this module, so a server
that echoes the key puts it nowhere; every file this module writes is scrubbed again.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence

from robreward.codegen.secrets import clean_text, redact, register_secret
from robreward.fileio import atomic_write_text

logger = logging.getLogger(__name__)

# Approximate list prices in USD per 1M tokens (input, output), matched by longest model-name
# prefix ("gpt-4o-2024-08-06" -> "gpt-4o"; a newer family member without its own row gets the
# family's price). They drift: override with ``prices=`` where it matters. Unknown models
# (local servers) cost 0 and are listed in ``Ledger.unpriced_models``.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "gpt-4-turbo": (10.00, 30.00),
    "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50), "o3-mini": (1.10, 4.40), "o4-mini": (1.10, 4.40),
    "claude-3-haiku": (0.25, 1.25), "claude-3-5-haiku": (0.80, 4.00), "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00), "claude-3-7-sonnet": (3.00, 15.00), "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00), "claude-opus-4-5": (5.00, 25.00),
}
DUMMY_LOCAL_KEY = "sk-local-no-key"  # local servers ignore the key, but the SDKs require one
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class LLMError(RuntimeError):
    """Base class of every error this module raises."""


class LLMConfigError(LLMError, ValueError):
    """The client cannot be built as asked (no key, bad spec, empty replay dir)."""


class LLMRequestError(LLMError):
    """A request failed for good: a non-retryable status, or retries exhausted.
    ``status`` is the HTTP status (None for timeouts and connection errors)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BudgetExceeded(LLMError):
    """The ledger's ``max_cost`` or ``max_tokens`` is reached: stop cleanly, resume later
    with a higher cap (cached calls are free, so nothing already paid for is redone)."""


class ReplayMissError(LLMError):
    """A replay was asked for a request that the transcript does not hold."""


@dataclass(frozen=True)
class Completion:
    """The answer to one ``complete`` call: ``n`` texts (one per sample), summed token counts and
    cost over the HTTP requests it took, and whether it came from the cache or a replay
    (then ``cost_usd`` is 0 and the token counts are those of the original call)."""

    texts: list[str]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model: str
    cached: bool = False
    finish_reasons: list[str] = field(default_factory=list)


class LLMClient(Protocol):
    """What the codegen loop needs from an LLM. ``messages`` are chat messages
    ``{"role": "system"|"user"|"assistant", "content": str}``; ``seed`` only distinguishes
    otherwise identical requests in the cache/replay key (e.g. a redone iteration)."""

    model: str

    def complete(self, messages: list[dict], n: int, temperature: float, max_tokens: int,
                 *, seed: int | None = None) -> Completion: ...


def request_key(model: str, messages: Sequence[Mapping], n: int, temperature: float,
                max_tokens: int, seed: int | None = None) -> str:
    """sha256 of the canonical JSON of a request: the cache and replay key."""
    return _key(_request_record(model, messages, n, temperature, max_tokens, seed))


def _request_record(model, messages, n, temperature, max_tokens, seed) -> dict:
    return {"model": model, "messages": [dict(m) for m in messages], "n": int(n),
            "temperature": float(temperature), "max_tokens": int(max_tokens), "seed": seed}


def _key(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_json_atomic(path: Path, obj: Any, secrets: Sequence[str] = ()) -> None:
    """Write JSON to ``path`` via a temp file + os.replace, with every secret string scrubbed."""
    atomic_write_text(path, redact(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False), secrets))


def price_per_million(model: str, prices: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model`` by longest prefix, or None if unknown."""
    table = {**PRICES_PER_MILLION, **(prices or {})}
    matches = [name for name in table if model == name or model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else None


@dataclass
class Ledger:
    """Running totals of tokens and cost shared by every client of a run, with a spend cap.

    ``check()`` runs before each HTTP request and raises ``BudgetExceeded`` once the accumulated
    totals have reached ``max_cost`` (USD) or ``max_tokens`` (prompt + completion). The cost of
    a request is only known after it, so the request that crosses the cap is recorded (it was
    paid for) and every later one is refused. With a ``path`` the ledger is saved as JSON after
    each request; ``Ledger.load`` resumes from it."""

    max_cost: float | None = None
    max_tokens: int | None = None
    path: Path | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0  # HTTP requests made (a complete() call may take several)
    cached_calls: int = 0  # complete() calls answered by the cache or a replay
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    unpriced_models: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    _SAVED = ("prompt_tokens", "completion_tokens", "cost_usd", "requests", "cached_calls",
              "by_model", "unpriced_models")

    @classmethod
    def load(cls, path: str | Path, max_cost: float | None = None, max_tokens: int | None = None) -> "Ledger":
        """The ledger saved at ``path`` (fresh if none), with the caps given now (so a resumed
        run may raise them)."""
        path = Path(path)
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return cls(max_cost=max_cost, max_tokens=max_tokens, path=path,
                   **{name: saved[name] for name in cls._SAVED if name in saved})

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def check(self) -> None:
        """Raise ``BudgetExceeded`` if the caps leave no room for another request."""
        if self.max_cost is not None and self.cost_usd >= self.max_cost:
            raise BudgetExceeded(f"LLM spend cap reached: ${self.cost_usd:.4f} spent of max_cost "
                                 f"${self.max_cost:.4f}; raise --max-cost and resume to continue")
        if self.max_tokens is not None and self.total_tokens >= self.max_tokens:
            raise BudgetExceeded(f"LLM token cap reached: {self.total_tokens} tokens used of max_tokens "
                                 f"{self.max_tokens}; raise --max-tokens and resume to continue")

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float,
               priced: bool = True) -> None:
        """Add one HTTP request's usage, then save."""
        with self._lock:
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "cost_usd": cost_usd, "requests": 1}
            row = self.by_model.setdefault(model, dict.fromkeys(usage, 0))
            for name, value in usage.items():
                setattr(self, name, getattr(self, name) + value)
                row[name] += value
            if not priced and model not in self.unpriced_models:
                self.unpriced_models.append(model)
            self.save()

    def record_cached(self) -> None:
        with self._lock:
            self.cached_calls += 1
            self.save()

    def to_dict(self) -> dict:
        return {"max_cost": self.max_cost, "max_tokens": self.max_tokens,
                **{name: getattr(self, name) for name in self._SAVED},
                "note": "cost_usd is approximate (robreward.codegen.llm.PRICES_PER_MILLION); "
                        "unpriced_models are counted at 0"}

    def save(self) -> None:
        if self.path is not None:
            _write_json_atomic(Path(self.path), self.to_dict())


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


class _Transient(Exception):
    """A failed attempt worth retrying (429, 5xx, timeout, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after, self.status = retry_after, status


class _Reply(NamedTuple):
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
    """Map an exception from an SDK call to ``_Transient`` or a final ``LLMRequestError``, its
    message redacted (a 401 body may echo the key). Raise the result ``from None``: the SDK's
    exception, which holds the unredacted body, must not ride along in a traceback."""
    if isinstance(error, sdk.APIConnectionError):  # timeouts included
        kind = "timed out" if isinstance(error, sdk.APITimeoutError) else "could not connect"
        return _Transient(redact(f"request {kind} ({getattr(error.request, 'url', '?')})"))
    if isinstance(error, sdk.APIStatusError):
        status, headers = error.status_code, getattr(error.response, "headers", None)
        message = f"HTTP {status}: {clean_text(_server_message(error), limit=2000)}"
        if status in RETRYABLE_STATUS or status >= 500:
            return _Transient(message, _retry_after_seconds(headers), status)
        hint = " (check the API key environment variable)" if status in (401, 403) else ""
        return LLMRequestError(f"LLM request failed with {message}{hint}", status)
    # a malformed response (not JSON, invalid UTF-8, fields of the wrong type) or an SDK bug
    return LLMRequestError(f"LLM request failed: {type(error).__name__}: {clean_text(error, limit=2000)}")


def _usage(usage, name: str) -> int:
    """A token count from a response's usage, 0 when absent or not a number."""
    value = getattr(usage, name, 0)
    return int(value) if isinstance(value, (int, float)) and value == value and 0 <= value < 1e12 else 0


class _OpenAIBackend:
    """One Chat Completions request through the ``openai`` package (OpenAI, vLLM, Ollama,
    llama.cpp, LM Studio). ``n`` is sent as is; servers that ignore it return fewer choices."""

    def __init__(self, model: str, api_key: str, base_url: str | None, timeout: float):
        import openai

        self.model, self._sdk = model, openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def request(self, messages: list[dict], n: int, temperature: float, max_tokens: int) -> _Reply:
        try:
            extra = {"n": n} if n > 1 else {}
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens, **extra)
            choices = list(response.choices or [])
            return _Reply(texts=[getattr(choice.message, "content", None) or "" for choice in choices],
                          finish_reasons=[str(choice.finish_reason or "") for choice in choices],
                          prompt_tokens=_usage(response.usage, "prompt_tokens"),
                          completion_tokens=_usage(response.usage, "completion_tokens"))
        except Exception as error:  # noqa: BLE001  (every failure becomes a redacted LLM error)
            raise _translate_sdk_error(self._sdk, error) from None


class _AnthropicBackend:
    """One Messages request through the ``anthropic`` package: one sample per request (the API
    has no ``n``); system messages go to the ``system`` field. The SDK no longer takes a
    temperature (recent models reject one), so it is sent raw, and only when it differs from
    the API default 1.0."""

    def __init__(self, model: str, api_key: str, base_url: str | None, timeout: float):
        import anthropic

        self.model, self._sdk = model, anthropic
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def request(self, messages: list[dict], n: int, temperature: float, max_tokens: int) -> _Reply:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [{"role": m["role"], "content": anthropic_content(m["content"])} for m in messages
                if m["role"] != "system"]
        extra: dict[str, Any] = {"system": system} if system else {}
        if temperature != 1.0:
            extra["extra_body"] = {"temperature": temperature}
        try:
            response = self._client.messages.create(model=self.model, messages=chat, max_tokens=max_tokens, **extra)
            text = "".join(str(block.text) for block in response.content or [] if getattr(block, "type", "") == "text")
            return _Reply(texts=[text], finish_reasons=[str(response.stop_reason or "")],
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


class _Transcript:
    """A directory of numbered JSON files, one per ``complete`` call: request, key, completion."""

    def __init__(self, directory: str | Path, secrets: Sequence[str] = ()):
        self.directory, self._secrets, self._lock = Path(directory), tuple(secrets), threading.Lock()

    @staticmethod
    def files(directory: Path) -> list[Path]:
        return sorted(directory.glob("call-*.json"))

    def append(self, key: str, request: dict, completion: Completion, http_requests: int) -> None:
        with self._lock:
            existing = self.files(self.directory) if self.directory.exists() else []
            index = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
            record = {"index": index, "key": key, "request": request, "http_requests": http_requests,
                      "completion": dataclasses.asdict(completion)}
            _write_json_atomic(self.directory / f"call-{index:06d}.json", record, self._secrets)


class ProviderClient:
    """An ``LLMClient`` over one provider backend, with cache, spend cap, retries, cost
    accounting and transcript (see the module docstring). Build it with ``make_client``."""

    def __init__(self, backend, *, retry: RetryPolicy | None = None, ledger: Ledger | None = None,
                 cache_dir: str | Path | None = None, transcript_dir: str | Path | None = None,
                 prices: Mapping[str, tuple[float, float]] | None = None, secrets: Sequence[str] = ()):
        self.model = backend.model
        self.backend, self.retry, self.ledger = backend, retry or RetryPolicy(), ledger or Ledger()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.transcript = _Transcript(transcript_dir, secrets) if transcript_dir is not None else None
        self._price = price_per_million(self.model, prices)
        self._secrets = tuple(secrets)
        if self._price is None:
            logger.warning("no price known for model %r: its cost is counted as 0", self.model)

    def complete(self, messages: list[dict], n: int, temperature: float, max_tokens: int,
                 *, seed: int | None = None) -> Completion:
        """``n`` samples for ``messages``; a cache hit makes no request (see ``LLMClient``)."""
        if n < 1 or max_tokens < 1:
            raise ValueError(f"complete() needs n >= 1 and max_tokens >= 1, got n={n}, max_tokens={max_tokens}")
        request = _request_record(self.model, messages, n, temperature, max_tokens, seed)
        key = _key(request)
        completion, http_requests = self._cache_get(key), 0
        if completion is not None:
            self.ledger.record_cached()
        else:
            completion, http_requests = self._sample(request["messages"], n, temperature, max_tokens)
            self._cache_put(key, request, completion)
        if self.transcript is not None:
            self.transcript.append(key, request, completion, http_requests)
        return completion

    def _sample(self, messages: list[dict], n: int, temperature: float, max_tokens: int) -> tuple[Completion, int]:
        """Request until ``n`` texts are in: servers that ignore ``n`` (and Anthropic) give fewer."""
        texts, finish_reasons, prompt_tokens, completion_tokens, cost, requests = [], [], 0, 0, 0.0, 0
        while len(texts) < n:
            self.ledger.check()
            missing = n - len(texts)
            reply = self._request_with_retries(messages, missing, temperature, max_tokens)
            request_cost = self._cost(reply.prompt_tokens, reply.completion_tokens)
            self.ledger.record(self.model, reply.prompt_tokens, reply.completion_tokens, request_cost,
                               priced=self._price is not None)
            if not reply.texts:
                raise LLMRequestError(f"{self.model}: the server returned no choices")
            texts += [clean_text(text, self._secrets) for text in reply.texts[:missing]]  # the redaction step
            finish_reasons += [clean_text(reason, self._secrets, limit=100) for reason in reply.finish_reasons[:missing]]
            prompt_tokens += reply.prompt_tokens
            completion_tokens += reply.completion_tokens
            cost += request_cost
            requests += 1
        logger.info("%s: %d samples in %d request(s), %d+%d tokens, $%.4f (run total $%.4f)", self.model, n,
                    requests, prompt_tokens, completion_tokens, cost, self.ledger.cost_usd)
        return Completion(texts, prompt_tokens, completion_tokens, cost, self.model, False, finish_reasons), requests

    def _request_with_retries(self, messages, n, temperature, max_tokens) -> _Reply:
        policy = self.retry
        for attempt in range(policy.max_attempts):
            try:
                return self.backend.request(messages, n, temperature, max_tokens)
            except _Transient as error:
                if attempt + 1 == policy.max_attempts:
                    raise LLMRequestError(f"{self.model}: gave up after {policy.max_attempts} attempts; "
                                          f"last error: {error}", error.status) from None
                wait = policy.delay(attempt, error.retry_after)
                logger.warning("%s: %s; retry %d/%d in %.1f s", self.model, error, attempt + 1,
                               policy.max_attempts - 1, wait)
                policy.sleep(wait)
        raise AssertionError("unreachable: RetryPolicy.max_attempts >= 1")

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        if self._price is None:
            return 0.0
        return (prompt_tokens * self._price[0] + completion_tokens * self._price[1]) / 1e6

    def _cache_get(self, key: str) -> Completion | None:
        path = self.cache_dir / f"{key}.json" if self.cache_dir is not None else None
        if path is None or not path.exists():
            return None
        stored = json.loads(path.read_text(encoding="utf-8"))["completion"]
        logger.info("%s: cache hit %s", self.model, key[:12])
        return _cleaned(dataclasses.replace(Completion(**stored), cached=True, cost_usd=0.0), self._secrets)

    def _cache_put(self, key: str, request: dict, completion: Completion) -> None:
        if self.cache_dir is not None:
            _write_json_atomic(self.cache_dir / f"{key}.json",
                               {"request": request, "completion": dataclasses.asdict(completion)}, self._secrets)


def _cleaned(completion: Completion, secrets: Sequence[str] = ()) -> Completion:
    """A completion read from a file (cache, transcript) through the same redaction step as a
    server's answer: a file written before, or by someone else, may hold what a server echoed."""
    return dataclasses.replace(completion, texts=[clean_text(t, secrets) for t in completion.texts],
                               finish_reasons=[clean_text(r, secrets, limit=100) for r in completion.finish_reasons])


class ReplayClient:
    """An ``LLMClient`` that answers from a recorded transcript directory, never the network.

    Requests are matched by ``request_key``; the i-th identical request gets the i-th recorded
    answer (the last one again once they run out, as a cache would). A request that was never
    recorded raises ``ReplayMissError``. Answers come back with ``cached=True`` and cost 0."""

    def __init__(self, directory: str | Path, ledger: Ledger | None = None):
        self.directory, self.ledger = Path(directory), ledger
        files = _Transcript.files(self.directory) if self.directory.is_dir() else []
        if not files:
            raise LLMConfigError(f"replay: no recorded calls (call-*.json) in {self.directory}; "
                                 "give the transcript directory of a recorded run")
        self._answers: dict[str, list[Completion]] = {}
        for path in files:
            record = json.loads(path.read_text(encoding="utf-8"))
            self._answers.setdefault(record["key"], []).append(Completion(**record["completion"]))
        self._models = sorted({answers[0].model for answers in self._answers.values()})
        self.model = self._models[0] if len(self._models) == 1 else "replay"
        self._served: dict[str, int] = {}

    def complete(self, messages: list[dict], n: int, temperature: float, max_tokens: int,
                 *, seed: int | None = None) -> Completion:
        """The recorded answer to this exact request (see the class docstring)."""
        for model in self._models:
            key = request_key(model, messages, n, temperature, max_tokens, seed)
            if key in self._answers:
                answers, served = self._answers[key], self._served.get(key, 0)
                self._served[key] = served + 1
                if self.ledger is not None:
                    self.ledger.record_cached()
                return _cleaned(dataclasses.replace(answers[min(served, len(answers) - 1)], cached=True, cost_usd=0.0))
        last = messages[-1]["content"] if messages else ""
        raise ReplayMissError(
            f"replay {self.directory}: no recorded answer for the request (model(s) {self._models}, n={n}, "
            f"temperature={temperature}, max_tokens={max_tokens}, seed={seed}, {len(messages)} messages, "
            f"last message starts {last[:80]!r}); the run asked for something the recorded run did not")


class RunClient:
    """A generate run's LLM client (robreward.codegen.loop). ``replay:DIR`` answers from DIR by exact request first; where this
    run's request differs from the recorded one (training numbers in a reflection differ from
    machine to machine), the recorded call at the same position answers, and it is counted
    (``fallbacks``) so the report can say so. A replayed run writes its own transcript too."""

    def __init__(self, spec: str, base_url: str | None, timeout: float, ledger, out: Path, calls_done: int,
                 transcript: str = "transcript", cache: str = "llm_cache"):
        spec = spec.strip()
        self.fallbacks, self.position = 0, calls_done
        if spec.startswith("replay:"):
            self.replay_dir = Path(spec[len("replay:"):])
            self.client = ReplayClient(self.replay_dir, ledger=ledger)
            self.records = [json.loads(p.read_text()) for p in _Transcript.files(self.replay_dir)]
            self.transcript = _Transcript(out / transcript)
        else:
            self.replay_dir, self.records, self.transcript = None, [], None
            self.client = make_client(spec, base_url, timeout=timeout, ledger=ledger, cache_dir=out / cache,
                                      transcript_dir=out / transcript)
        self.model, self.ledger = self.client.model, ledger

    def complete(self, messages: list[dict], n: int, temperature: float, max_tokens: int, *, seed: int) -> Completion:
        position, self.position = self.position, self.position + 1
        try:
            completion = self.client.complete(messages, n, temperature, max_tokens, seed=seed)
        except ReplayMissError:
            if position >= len(self.records) or self.records[position]["request"]["n"] != n:
                raise
            logger.warning("replay: request %d differs from the recorded one; using the recorded answer at that "
                           "position", position)
            self.fallbacks += 1
            self.ledger.record_cached()
            completion = _cleaned(dataclasses.replace(Completion(**self.records[position]["completion"]), cached=True,
                                                      cost_usd=0.0))
        if self.transcript is not None:
            request = _request_record(completion.model, messages, n, temperature, max_tokens, seed)
            self.transcript.append(request_key(completion.model, messages, n, temperature, max_tokens, seed),
                                   request, completion, 0)
        return completion


def make_client(spec: str, base_url: str | None = None, *, timeout: float = 120.0,
                retry: RetryPolicy | None = None, ledger: Ledger | None = None,
                cache_dir: str | Path | None = None, transcript_dir: str | Path | None = None,
                prices: Mapping[str, tuple[float, float]] | None = None, api_key: str | None = None) -> LLMClient:
    """An ``LLMClient`` for ``spec``:

    - ``"MODEL"`` (``gpt-4o``, ``qwen2.5-coder``, ...): OpenAI-compatible; key from
      ``OPENAI_API_KEY``; with ``base_url`` (vLLM, Ollama, llama.cpp, LM Studio) a dummy key
      is used when none is set.
    - ``"anthropic:MODEL"``: Anthropic Messages API; key from ``ANTHROPIC_API_KEY``.
    - ``"replay:DIR"``: replays the transcript in DIR exactly (``timeout``, ``retry``,
      ``cache_dir``, ``transcript_dir`` and ``prices`` do not apply).

    ``timeout`` is per HTTP request in seconds; ``api_key`` overrides the environment's key
    (it is redacted like one). Raises ``LLMConfigError`` saying how to configure an LLM when no
    key is available."""
    spec = spec.strip()
    if spec.startswith("replay:"):
        return ReplayClient(spec[len("replay:"):], ledger=ledger)
    provider, backend_class, env_var = "OpenAI", _OpenAIBackend, "OPENAI_API_KEY"
    if spec.startswith("anthropic:"):
        provider, backend_class, env_var = "Anthropic", _AnthropicBackend, "ANTHROPIC_API_KEY"
        spec = spec[len("anthropic:"):]
    if not spec:
        raise LLMConfigError("empty model name: use --llm MODEL, --llm anthropic:MODEL or --llm replay:DIR")
    register_secret(api_key)  # redacted from every response and error from now on
    api_key = api_key or os.environ.get(env_var) or (DUMMY_LOCAL_KEY if base_url else None)
    if not api_key:
        raise LLMConfigError(
            f"no LLM configured for {spec!r}: set {env_var} in the environment for the {provider} API, "
            "or pass --base-url URL for a local OpenAI-compatible server (vLLM, Ollama, llama.cpp, "
            "LM Studio), or use --llm replay:DIR to replay a recorded run offline")
    backend = backend_class(spec, api_key, base_url, timeout)
    return ProviderClient(backend, retry=retry, ledger=ledger, cache_dir=cache_dir,
                          transcript_dir=transcript_dir, prices=prices, secrets=(api_key,))
