"""The LLM access layer against local fake OpenAI-compatible and Anthropic servers (conftest.py)."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from robreward.codegen.llm import (
    BudgetExceeded,
    Ledger,
    LLMConfigError,
    LLMRequestError,
    ReplayMissError,
    RetryPolicy,
    make_client,
    price_per_million,
    request_key,
)
from tests.codegen.conftest import ECHO_AUTHORIZATION, ECHO_KEY, Reply

MESSAGES = [{"role": "system", "content": "You write reward functions."},
            {"role": "user", "content": "Write compute_reward for cheetah-run."}]
FAKE_KEY = "sk-test-FAKEKEY-0123456789abcdef"
TOKENS_IN, TOKENS_OUT = 11, 7  # the fake server's usage per request and per choice (conftest.py)
PRICES = {"fake-model": (1_000.0, 10_000.0)}  # USD per 1M tokens: 11 + 7 tokens cost $0.081


class RecordingSleep:
    """An injectable sleep that records the waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep():
    return RecordingSleep()


def openai_client(server, sleep, **kwargs):
    kwargs.setdefault("retry", RetryPolicy(max_attempts=6, sleep=sleep))
    return make_client("fake-model", base_url=server.base_url, timeout=kwargs.pop("timeout", 5.0), **kwargs)


def call(client, n=1, **kwargs):
    return client.complete(MESSAGES, n=n, temperature=0.7, max_tokens=256, **kwargs)


# --- OpenAI-compatible -----------------------------------------------------------------------


def test_n_samples_in_one_request(openai_server, sleep):
    assert (openai_server.PROMPT_TOKENS, openai_server.COMPLETION_TOKENS) == (TOKENS_IN, TOKENS_OUT)
    completion = call(openai_client(openai_server, sleep), n=3)
    assert openai_server.count == 1
    assert openai_server.requests[0]["body"]["n"] == 3
    assert openai_server.requests[0]["body"]["messages"] == MESSAGES
    assert completion.texts == ["text 0.0", "text 0.1", "text 0.2"]
    assert completion.finish_reasons == ["stop"] * 3
    assert completion.model == "fake-model" and not completion.cached


def test_server_that_ignores_n_gets_more_requests(openai_server, sleep):
    openai_server.max_choices = 1
    completion = call(openai_client(openai_server, sleep), n=3)
    assert openai_server.count == 3
    assert [r["body"].get("n", 1) for r in openai_server.requests] == [3, 2, 1]  # asks for what is missing
    assert completion.texts == ["text 0.0", "text 1.0", "text 2.0"]


def test_token_and_cost_accounting(openai_server, sleep):
    ledger = Ledger()
    client = openai_client(openai_server, sleep, ledger=ledger, prices=PRICES)
    first, second = call(client, n=2), call(client, n=1)
    assert (first.prompt_tokens, first.completion_tokens) == (TOKENS_IN, 2 * TOKENS_OUT)
    # hand-computed: (11 * 1000 + 14 * 10000) / 1e6 = 0.151; (11 * 1000 + 7 * 10000) / 1e6 = 0.081
    assert first.cost_usd == pytest.approx(0.151) and second.cost_usd == pytest.approx(0.081)
    assert ledger.prompt_tokens == 2 * TOKENS_IN
    assert ledger.completion_tokens == 3 * TOKENS_OUT
    assert ledger.cost_usd == pytest.approx(0.232)
    assert ledger.requests == 2 and ledger.by_model["fake-model"]["requests"] == 2


def test_price_table_matches_longest_prefix_and_unknown_models_cost_nothing(openai_server, sleep):
    assert price_per_million("gpt-4o-2024-08-06") == price_per_million("gpt-4o")
    assert price_per_million("gpt-4o-mini-2024-07-18") == price_per_million("gpt-4o-mini") != price_per_million("gpt-4o")
    assert price_per_million("qwen2.5-coder") is None
    ledger = Ledger()
    completion = call(make_client("qwen2.5-coder", base_url=openai_server.base_url, ledger=ledger))
    assert completion.cost_usd == 0.0 and completion.prompt_tokens == TOKENS_IN
    assert ledger.unpriced_models == ["qwen2.5-coder"]


def test_retries_on_429_500_503_and_timeout_then_succeeds(openai_server, sleep):
    openai_server.script = [openai_server.error(429, "slow down", {"Retry-After": "2"}),
                            openai_server.error(500, "boom"),
                            openai_server.error(503, "overloaded"),
                            openai_server.slow(1.0)]  # longer than the client's timeout
    client = openai_client(openai_server, sleep, timeout=0.3,
                           retry=RetryPolicy(max_attempts=6, base_delay=1.0, jitter=0.25, sleep=sleep))
    completion = call(client, n=2)
    assert openai_server.count == 5
    assert completion.texts == ["text 4.0", "text 4.1"]
    assert len(sleep.waits) == 4
    assert sleep.waits[0] == 2.0  # the server's Retry-After
    for retry, wait in enumerate(sleep.waits[1:], start=1):  # exponential backoff with jitter
        assert 2**retry <= wait <= 2**retry * 1.25


def test_retry_after_and_backoff_are_capped():
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, max_retry_after=30.0)
    assert policy.delay(20) == 10.0
    assert policy.delay(0, retry_after=3600) == 30.0
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0)


def test_bad_sample_count_is_refused_before_any_request(openai_server, sleep):
    with pytest.raises(ValueError, match="n >= 1 and max_tokens >= 1, got n=0"):
        call(openai_client(openai_server, sleep), n=0)
    assert openai_server.count == 0


def test_401_fails_at_once_with_the_servers_message(openai_server, sleep):
    openai_server.script = [openai_server.error(401, "Incorrect API key provided")]
    with pytest.raises(LLMRequestError, match="HTTP 401.*Incorrect API key provided") as raised:
        call(openai_client(openai_server, sleep))
    assert raised.value.status == 401
    assert openai_server.count == 1 and sleep.waits == []


def test_retries_exhausted_is_a_clear_error(openai_server, sleep):
    openai_server.script = [openai_server.error(503, "overloaded") for _ in range(3)]
    client = openai_client(openai_server, sleep, retry=RetryPolicy(max_attempts=3, sleep=sleep))
    with pytest.raises(LLMRequestError, match="gave up after 3 attempts.*HTTP 503.*overloaded"):
        call(client)
    assert openai_server.count == 3 and len(sleep.waits) == 2


# --- Anthropic -------------------------------------------------------------------------------


def test_anthropic_loops_for_n_and_counts_usage(anthropic_server, sleep, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    ledger = Ledger()
    client = make_client("anthropic:claude-sonnet-4-6", base_url=anthropic_server.base_url, ledger=ledger,
                         retry=RetryPolicy(sleep=sleep))
    completion = client.complete(MESSAGES, n=2, temperature=0.5, max_tokens=128)
    assert anthropic_server.count == 2
    assert all(r["path"] == "/v1/messages" for r in anthropic_server.requests)
    body = anthropic_server.requests[0]["body"]
    assert body["system"] == MESSAGES[0]["content"] and body["messages"] == MESSAGES[1:]
    assert body["temperature"] == 0.5 and body["max_tokens"] == 128
    assert completion.texts == ["text 0.0", "text 1.0"]
    assert completion.finish_reasons == ["end_turn", "end_turn"]
    assert (completion.prompt_tokens, completion.completion_tokens) == (2 * TOKENS_IN, 2 * TOKENS_OUT)
    # claude-sonnet-4* at (3, 15) USD per 1M: (22 * 3 + 14 * 15) / 1e6
    assert completion.cost_usd == pytest.approx(276e-6) and ledger.cost_usd == pytest.approx(276e-6)


def test_anthropic_retries_overloaded(anthropic_server, sleep, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    anthropic_server.script = [anthropic_server.error(529, "Overloaded")]
    client = make_client("anthropic:claude-sonnet-4-6", base_url=anthropic_server.base_url,
                         retry=RetryPolicy(sleep=sleep))
    assert client.complete(MESSAGES, n=1, temperature=1.0, max_tokens=64).texts == ["text 1.0"]
    assert anthropic_server.count == 2 and len(sleep.waits) == 1
    assert "temperature" not in anthropic_server.requests[1]["body"]  # API default, not sent


# --- budget, cache, replay -------------------------------------------------------------------


def test_max_cost_stops_before_the_next_call_and_the_ledger_resumes(openai_server, sleep, tmp_path):
    path = tmp_path / "ledger.json"
    ledger = Ledger.load(path, max_cost=0.1)
    client = openai_client(openai_server, sleep, ledger=ledger, prices=PRICES)
    call(client, seed=0)  # $0.081: under the cap
    call(client, seed=1)  # $0.162: crosses the cap; recorded, since it was paid for
    with pytest.raises(BudgetExceeded, match=r"max_cost \$0.1000.*raise --max-cost and resume"):
        call(client, seed=2)
    assert openai_server.count == 2
    saved = json.loads(path.read_text())
    assert saved["cost_usd"] == pytest.approx(0.162) and saved["requests"] == 2

    resumed = Ledger.load(path, max_cost=1.0)  # a resumed run with a higher cap
    assert resumed.cost_usd == pytest.approx(0.162) and resumed.prompt_tokens == 2 * TOKENS_IN
    call(openai_client(openai_server, sleep, ledger=resumed, prices=PRICES), seed=2)
    assert openai_server.count == 3 and resumed.requests == 3


def test_max_tokens_cap(openai_server, sleep):
    client = openai_client(openai_server, sleep, ledger=Ledger(max_tokens=TOKENS_IN + TOKENS_OUT))
    call(client)
    with pytest.raises(BudgetExceeded, match="max_tokens 18"):
        call(client, seed=1)
    assert openai_server.count == 1


def test_cache_hit_makes_no_request_and_costs_nothing(openai_server, sleep, tmp_path):
    ledger = Ledger()
    client = openai_client(openai_server, sleep, ledger=ledger, prices=PRICES, cache_dir=tmp_path / "cache")
    first = call(client, n=2)
    second = call(openai_client(openai_server, sleep, ledger=ledger, prices=PRICES, cache_dir=tmp_path / "cache"), n=2)
    assert openai_server.count == 1
    assert second.cached and not first.cached
    assert second.texts == first.texts and second.cost_usd == 0.0
    assert ledger.requests == 1 and ledger.cached_calls == 1 and ledger.cost_usd == pytest.approx(first.cost_usd)
    call(client, n=2, seed=7)  # a different seed is a different request
    assert openai_server.count == 2


def test_replay_reproduces_a_recorded_run_without_a_server(openai_server, sleep, tmp_path):
    transcript = tmp_path / "transcript"
    client = openai_client(openai_server, sleep, transcript_dir=transcript)
    openai_server.text_fn = lambda request, choice, body: f"def compute_reward(state, action):  # {request}.{choice}"
    prompts = ["first prompt", "second prompt", "first prompt"]  # the repeat gets its own answer
    recorded = [client.complete([{"role": "user", "content": p}], n=2, temperature=1.0, max_tokens=64).texts
                for p in prompts]
    assert recorded[0] != recorded[2]
    openai_server.stop()

    replay = make_client(f"replay:{transcript}")
    assert replay.model == "fake-model"
    replayed = [replay.complete([{"role": "user", "content": p}], n=2, temperature=1.0, max_tokens=64)
                for p in prompts]
    assert [c.texts for c in replayed] == recorded
    assert all(c.cached and c.cost_usd == 0.0 for c in replayed)
    with pytest.raises(ReplayMissError, match=r"no recorded answer.*n=2, temperature=0.5.*'third prompt'"):
        replay.complete([{"role": "user", "content": "third prompt"}], n=2, temperature=0.5, max_tokens=64)


def test_replay_of_an_empty_directory_is_a_config_error(tmp_path):
    with pytest.raises(LLMConfigError, match="no recorded calls"):
        make_client(f"replay:{tmp_path}")


def test_request_key_covers_every_field():
    base = request_key("m", MESSAGES, 2, 0.7, 256, None)
    assert base == request_key("m", [dict(m) for m in MESSAGES], 2, 0.7, 256, None)
    variants = [("m2", MESSAGES, 2, 0.7, 256, None), ("m", MESSAGES[:1], 2, 0.7, 256, None),
                ("m", MESSAGES, 3, 0.7, 256, None), ("m", MESSAGES, 2, 0.8, 256, None),
                ("m", MESSAGES, 2, 0.7, 512, None), ("m", MESSAGES, 2, 0.7, 256, 0)]
    assert len({base} | {request_key(*v) for v in variants}) == 7


# --- configuration and secrets ---------------------------------------------------------------


def test_no_key_and_no_base_url_says_how_to_configure():
    with pytest.raises(LLMConfigError, match="set OPENAI_API_KEY.*--base-url.*replay:DIR"):
        make_client("gpt-4o")
    with pytest.raises(LLMConfigError, match="set ANTHROPIC_API_KEY.*--base-url.*replay:DIR"):
        make_client("anthropic:claude-sonnet-4-6")


def test_api_keys_are_never_written(openai_server, anthropic_server, sleep, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    handler = logging.FileHandler(tmp_path / "debug.log")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the SDKs' own debug logs included
    try:
        openai_server.script = [openai_server.error(429, "slow down")]
        anthropic_server.script = [anthropic_server.error(500, "boom")]
        ledger = Ledger.load(tmp_path / "ledger.json")
        for spec, server in (("gpt-4o", openai_server), ("anthropic:claude-sonnet-4-6", anthropic_server)):
            client = make_client(spec, base_url=server.base_url, ledger=ledger, retry=RetryPolicy(sleep=sleep),
                                 cache_dir=tmp_path / "cache", transcript_dir=tmp_path / "transcript")
            call(client, n=2)
            call(client, n=2)  # a cache hit, also in the transcript
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 8  # ledger, log, 2 cache entries, 4 transcript calls
    for path in written:
        assert FAKE_KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_a_key_pasted_into_a_prompt_is_scrubbed_from_cache_and_transcript(openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    client = make_client("gpt-4o", base_url=openai_server.base_url, cache_dir=tmp_path / "cache",
                         transcript_dir=tmp_path / "transcript")
    client.complete([{"role": "user", "content": f"my key is {FAKE_KEY}"}], n=1, temperature=1.0, max_tokens=16)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 2
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert FAKE_KEY not in text and "my key is [REDACTED]" in text


# --- secrets: a server that echoes the key ------------------------------------------------------
# the key as a self-hosted server's token may look: nothing key-shaped, only its value gives it away
PLAIN_KEY = "local-token-7f3a9c2e5b1d4f60a8"
ECHOING_401 = f"Incorrect API key provided: {ECHO_KEY}. You sent Authorization: {ECHO_AUTHORIZATION}"


def everything_said(error: BaseException) -> str:
    """An exception as any traceback would show it: its message and every chained exception."""
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize("key", [FAKE_KEY, PLAIN_KEY])
def test_a_401_that_echoes_the_key_never_shows_it(openai_server, sleep, monkeypatch, key):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    openai_server.script = [openai_server.error(401, ECHOING_401)]
    with pytest.raises(LLMRequestError, match=r"HTTP 401: Incorrect API key provided: \[REDACTED\]") as raised:
        call(openai_client(openai_server, sleep))
    assert openai_server.requests[0]["key"] == key  # the server was sent the key, and echoed it
    assert key not in everything_said(raised.value) and "[REDACTED]" in str(raised.value)


def test_anthropic_401_that_echoes_the_key_never_shows_it(anthropic_server, sleep, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLAIN_KEY)
    anthropic_server.script = [anthropic_server.error(401, f"invalid x-api-key {ECHO_KEY}")]
    with pytest.raises(LLMRequestError, match=r"invalid x-api-key \[REDACTED\]") as raised:
        make_client("anthropic:claude-sonnet-4-6", base_url=anthropic_server.base_url,
                    retry=RetryPolicy(sleep=sleep)).complete(MESSAGES, n=1, temperature=1.0, max_tokens=64)
    assert anthropic_server.requests[0]["key"] == PLAIN_KEY and PLAIN_KEY not in everything_said(raised.value)


def test_retried_errors_that_echo_the_key_are_logged_and_raised_redacted(openai_server, sleep, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", PLAIN_KEY)
    openai_server.script = [openai_server.error(503, f"overloaded for {ECHO_KEY}") for _ in range(3)]
    client = openai_client(openai_server, sleep, retry=RetryPolicy(max_attempts=3, sleep=sleep))
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMRequestError, match="gave up after 3") as raised:
        call(client)
    assert caplog.text.count("overloaded for [REDACTED]") == 2  # the two retries' warnings
    assert PLAIN_KEY not in caplog.text and PLAIN_KEY not in everything_said(raised.value)


def test_response_texts_that_echo_the_key_are_redacted_before_anything_sees_them(openai_server, sleep, monkeypatch,
                                                                                  tmp_path):
    import base64
    import urllib.parse

    monkeypatch.setenv("OPENAI_API_KEY", PLAIN_KEY)
    variants = [PLAIN_KEY, urllib.parse.quote(PLAIN_KEY + "/x", safe="").removesuffix("%2Fx"),
                base64.b64encode(f"Bearer {PLAIN_KEY}".encode()).decode(), "sk-proj-" + "A1b2C3d4" * 4]
    openai_server.text_fn = lambda request, choice, body: (f"# {ECHO_KEY}\nkey = '{ECHO_KEY}' "
                                                           + " ".join(variants) + f" {ECHO_AUTHORIZATION}")
    client = openai_client(openai_server, sleep, cache_dir=tmp_path / "cache", transcript_dir=tmp_path / "transcript")
    for completion in (call(client, n=2), call(client, n=2)):  # a fresh answer, then the cache's
        assert completion.texts[0].startswith("# [REDACTED]\nkey = '[REDACTED]' ")
        assert all(variant not in text for text in completion.texts for variant in variants)
        assert completion.texts[0].endswith("Bearer [REDACTED]")
    for path in tmp_path.rglob("*.json"):
        assert PLAIN_KEY not in path.read_text(encoding="utf-8"), path


def test_an_explicit_key_is_redacted_like_the_environments(openai_server, sleep):
    explicit = "explicit-key-0a9b8c7d6e5f4a3b"
    openai_server.text_fn = lambda request, choice, body: f"the key was {ECHO_KEY}"
    completion = call(openai_client(openai_server, sleep, api_key=explicit))
    assert openai_server.requests[0]["key"] == explicit and completion.texts == ["the key was [REDACTED]"]


def test_a_key_too_short_to_be_one_leaves_the_text_alone(openai_server, sleep, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")  # a local server's dummy: redacting it would cut every "x"
    openai_server.text_fn = lambda request, choice, body: "x = 1"
    assert call(openai_client(openai_server, sleep)).texts == ["x = 1"]


# --- hostile responses: an error, never a crash ------------------------------------------------------
@pytest.mark.parametrize("raw", [b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', b"not json at all",
                                 b'{"choices": 7, "usage": "many"}', b"[" * 100_000])
def test_a_malformed_response_is_a_request_error(openai_server, sleep, raw):
    openai_server.script = [Reply(raw=raw)]  # invalid UTF-8, not JSON, wrong types, JSON nested 100k deep
    with pytest.raises(LLMRequestError, match="LLM request failed: [A-Za-z]+Error"):
        call(openai_client(openai_server, sleep))
    assert openai_server.count == 1  # not retried: the same server would send the same


def test_lone_surrogates_and_huge_texts_come_back_writable_and_capped(openai_server, sleep, tmp_path):
    from robreward.codegen.secrets import MAX_TEXT_CHARS

    openai_server.text_fn = lambda request, choice, body: ["bad \ud800 half", "y" * (MAX_TEXT_CHARS + 10)][choice]
    completion = call(openai_client(openai_server, sleep, transcript_dir=tmp_path / "t"), n=2)
    assert completion.texts[0] == "bad \ufffd half" and len(completion.texts[1]) == MAX_TEXT_CHARS
    completion.texts[0].encode("utf-8")  # a lone surrogate would raise here, and in every file write
    assert len(list((tmp_path / "t").glob("call-*.json"))) == 1
