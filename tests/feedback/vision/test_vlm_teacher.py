"""The VLM preference teacher (RL-VLM-F) end to end against a local fake OpenAI-compatible vision endpoint: the
two-stage prompt with both images, good / unsure / malformed answers, 429 and 5xx retried, a text-only endpoint,
the spend cap, the on-disk label cache, key redaction, and a small preference run labelled by it."""

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from robreward.cli.vision import build_vlm_teacher, fold_teacher_flags, register_vlm_teachers
from robreward.feedback.vision.vlm_teacher import parse_label, parse_teacher_spec

KEY = "sk-test-VLMKEY-0123456789abcdef"


class FakeVision:
    """Answers chat completions: the analysis stage with a description, the label stage with the next of
    ``answers``; ``failures`` (HTTP statuses) come first; ``text_only`` refuses images as such servers do."""

    def __init__(self):
        self.answers, self.failures, self.requests = ["1"], [], []
        self.text_only, self.echo_key = False, False
        self._label_calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"body": body, "auth": self.headers.get("Authorization", "")})
                if fake.failures:
                    self._send(fake.failures.pop(0), {"error": {"message": "busy, try again"}}, retry_after="0")
                    return
                content = body["messages"][-1]["content"]
                images = [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
                if fake.text_only and images:
                    self._send(400, {"error": {"message": "This model does not support image input (image_url)"}})
                    return
                text = " ".join(p["text"] for p in content if p.get("type") == "text")
                if "Reply a single line" in text:
                    answer = fake.answers[fake._label_calls % len(fake.answers)]
                    fake._label_calls += 1
                else:
                    answer = "Image 1 shows the arm far from the ball; Image 2 shows it closer."
                    if fake.echo_key:
                        answer += " " + self.headers.get("Authorization", "")
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": answer}}],
                                 "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}})

            def _send(self, status, payload, retry_after=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def label_requests(self):
        return [r for r in self.requests if "Reply a single line" in json.dumps(r["body"])]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = FakeVision()
    yield server
    server.server.shutdown()


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)]


def teacher_for(fake, tmp_path, extra=""):
    teacher = build_vlm_teacher(f"vlm:fake-vlm,base_url={fake.base_url}{extra}")
    teacher.start(tmp_path)
    return teacher


def test_parse_label():
    assert [parse_label(t) for t in ("0", " 1\n", "-1", "Answer: 1.", "1 or 0", "banana", "", "10", "0.5")] == \
        [0, 1, -1, 1, None, None, None, None, None]


def test_two_stage_prompt_labels_and_counts(fake, tmp_path):
    fake.answers = ["0", "1", "-1", "I cannot tell which"]
    teacher = teacher_for(fake, tmp_path)
    first, second = images(4, 0), images(4, 1)
    labels = teacher.label_images(first, second, "touch the red ball", oracle=[0.0, 0.0, 1.0, 1.0])
    assert labels == [0.0, 1.0, None, None]
    stats = teacher.round_stats
    assert (stats["vlm_answered"], stats["vlm_unsure"], stats["vlm_malformed"], stats["vlm_cached"]) == (2, 1, 1, 0)
    assert stats["vlm_oracle_agreement"] == 0.5 and stats["vlm_oracle_compared"] == 2
    assert len(fake.requests) == 8  # analysis + label per query
    label_request = fake.label_requests()[0]["body"]["messages"][-1]["content"]
    pictures = [p["image_url"]["url"] for p in label_request if p["type"] == "image_url"]
    assert len(pictures) == 2 and all(u.startswith("data:image/png;base64,") for u in pictures)
    assert base64.b64decode(pictures[0].split(",", 1)[1])[:4] == b"\x89PNG"
    texts = " ".join(p["text"] for p in label_request if p["type"] == "text")
    assert "Image 2 shows it closer" in texts and "touch the red ball" in texts  # the analysis goes into stage 2
    # the same images again: every label from the on-disk cache, no request
    again = teacher_for(fake, tmp_path).label_images(first, second, "touch the red ball")
    assert again == labels and len(fake.requests) == 8 and len(list((tmp_path / "vlm_labels").glob("*.json"))) == 4


def test_429_and_5xx_are_retried(fake, tmp_path):
    fake.failures = [429, 503, 500]
    labels = teacher_for(fake, tmp_path).label_images(images(1), images(1, 1), "goal")
    assert labels == [1.0] and len(fake.requests) == 5


def test_a_text_only_endpoint_says_so(fake, tmp_path):
    fake.text_only = True
    with pytest.raises(ValueError, match="'fake-vlm' at http.* does not take images"):
        teacher_for(fake, tmp_path).label_images(images(1), images(1, 1), "goal")


def test_spend_cap_stops_labelling(fake, tmp_path):
    from robreward.codegen.llm import BudgetExceeded

    teacher = build_vlm_teacher(f"vlm:gpt-4o,base_url={fake.base_url},max_cost=0.001")  # $0.0026 a request
    teacher.start(tmp_path)
    with pytest.raises(BudgetExceeded, match="spend cap reached"):
        teacher.label_images(images(3), images(3, 1), "goal")
    assert len(fake.requests) == 1
    assert json.loads((tmp_path / "vlm_ledger.json").read_text())["requests"] == 1


def test_the_key_is_never_written(fake, tmp_path):
    fake.echo_key = True
    teacher_for(fake, tmp_path).label_images(images(2), images(2, 1), "goal")
    assert fake.requests[0]["auth"] == f"Bearer {KEY}"
    written = "".join(p.read_text() for p in (tmp_path / "vlm_labels").glob("*.json"))
    assert "Image 1 shows" in written and KEY not in written


def test_teacher_spec_and_flags():
    assert parse_teacher_spec("vlm:gpt-4o,base_url=http://h/v1,max_cost=5,frames=3") == \
        ("openai", "gpt-4o", {"base_url": "http://h/v1", "max_cost": 5.0, "frames": 3})
    assert parse_teacher_spec("anthropic:claude-sonnet-4-6")[:2] == ("anthropic", "claude-sonnet-4-6")
    with pytest.raises(ValueError, match="names no model"):
        parse_teacher_spec("vlm:")
    with pytest.raises(ValueError, match="unknown option 'colour=red'"):
        parse_teacher_spec("vlm:m,colour=red")
    assert fold_teacher_flags("vlm:m", "http://h/v1", 2.0) == "vlm:m,base_url=http://h/v1,max_cost=2"
    from robreward.cli.main import CliError

    with pytest.raises(CliError, match="--base-url and --max-cost configure a vision-language teacher"):
        fold_teacher_flags("oracle", "http://h/v1", None)


def test_no_key_and_no_base_url_says_how_to_configure(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="set OPENAI_API_KEY.*or pass --base-url URL"):
        build_vlm_teacher("vlm:gpt-4o")


@pytest.mark.slow  # a preference run (PPO between rounds): about 30 s
def test_a_preference_run_labelled_by_the_vlm(fake, tmp_path):
    from robreward.feedback.preferences import EnsembleConfig
    from robreward.feedback.preferences.loop import PrefsConfig, train_preferences
    from robreward.rl.config import PPOConfig

    os.environ.setdefault("MUJOCO_GL", "egl")
    register_vlm_teachers()
    fake.answers = ["1", "0", "-1", "what?"]
    config = PrefsConfig(task="reach", teacher=f"vlm:fake-vlm,base_url={fake.base_url},size=32", queries=16,
                         per_round=8, segment=10, steps=2048, num_envs=8, seed=3, eval_episodes=0, progress=False,
                         heldout_pairs=20, out=str(tmp_path / "run"), ensemble=EnsembleConfig(hidden=(32,), epochs=5),
                         ppo=PPOConfig(num_steps=16, actor_hidden=(32,), critic_hidden=(32,)))
    summary = train_preferences(config)
    rounds = json.loads((tmp_path / "run" / "metrics.json").read_text())["rounds"]
    assert len(rounds) == 2 and summary["queries"] == 16
    for r in rounds:
        assert (r["vlm_answered"], r["vlm_unsure"], r["vlm_malformed"]) == (4, 2, 2)
        assert r["skipped"] == 4 and r["vlm_oracle_compared"] <= 4
    assert len(fake.label_requests()) == 16
    assert len(list((tmp_path / "run" / "vlm_labels").glob("*.json"))) == 16


@pytest.mark.slow  # a preference run through the installed command (about 40 s)
def test_prefs_train_cli_with_a_vlm_teacher(fake, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    fake.answers = ["1", "0"]
    command = [str(Path(sys.executable).with_name("robreward")), "prefs", "train", "--task", "reach", "--teacher",
               "vlm:fake-vlm,size=32", "--base-url", fake.base_url, "--max-cost", "1", "--queries", "10",
               "--per-round", "10", "--segment", "10", "--steps", "2048", "--envs", "8", "--eval-episodes", "0",
               "--no-progress", "--out", "run"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "MUJOCO_GL": "egl"})
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["teacher"] == f"vlm:fake-vlm,size=32,base_url={fake.base_url},max_cost=1"
    rounds = json.loads((tmp_path / "run" / "metrics.json").read_text())["rounds"]
    assert rounds[0]["vlm_answered"] == 10 and rounds[0]["labels_answered"] == 10
    assert KEY not in "".join(p.read_text() for p in (tmp_path / "run").rglob("*.json"))
    oracle = subprocess.run([*command[:6], "oracle", "--base-url", fake.base_url, "--queries", "10", "--out", "r2"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert oracle.returncode == 2 and "--base-url and --max-cost configure a vision-language teacher" in oracle.stderr
