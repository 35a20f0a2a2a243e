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

This module is the clients (cache, transcript, replay, ``make_client``); its parts, re-exported
here: ``llm_providers`` (one HTTP request through the openai/anthropic SDK, its errors sorted
into retryable or final, ``RetryPolicy``), ``llm_ledger`` (prices, the shared ``Ledger`` and its
spend cap) and ``llm_errors`` (the ``LLMError`` classes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from robreward.codegen.llm_errors import (
    BudgetExceeded,
    LLMConfigError,
    LLMError,
    LLMRequestError,
    ReplayMissError,
)
from robreward.codegen.llm_ledger import PRICES_PER_MILLION, Ledger, price_per_million, write_json_scrubbed
from robreward.codegen.llm_providers import (
    RETRYABLE_STATUS,
    AnthropicBackend,
    OpenAIBackend,
    Reply,
    RetryPolicy,
    TransientError,
    anthropic_content,
)
from robreward.codegen.secrets import clean_text, register_secret

logger = logging.getLogger(__name__)

DUMMY_LOCAL_KEY = "sk-local-no-key"  # local servers ignore the key, but the SDKs require one


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
            write_json_scrubbed(self.directory / f"call-{index:06d}.json", record, self._secrets)


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

    def _request_with_retries(self, messages, n, temperature, max_tokens) -> Reply:
        policy = self.retry
        for attempt in range(policy.max_attempts):
            try:
                return self.backend.request(messages, n, temperature, max_tokens)
            except TransientError as error:
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
            write_json_scrubbed(self.cache_dir / f"{key}.json",
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
    provider, backend_class, env_var = "OpenAI", OpenAIBackend, "OPENAI_API_KEY"
    if spec.startswith("anthropic:"):
        provider, backend_class, env_var = "Anthropic", AnthropicBackend, "ANTHROPIC_API_KEY"
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


__all__ = ["DUMMY_LOCAL_KEY", "PRICES_PER_MILLION", "RETRYABLE_STATUS", "BudgetExceeded", "Completion", "LLMClient",
           "LLMConfigError", "LLMError", "LLMRequestError", "Ledger", "ProviderClient", "ReplayClient",
           "ReplayMissError", "RetryPolicy", "RunClient", "anthropic_content", "make_client", "price_per_million",
           "request_key"]
