"""`robreward generate`: user errors as one clear line, the spend cap's exit, the shipped
reach transcript replayed offline (examples/transcripts/reach/), and a key-echoing server whose
key reaches no file and no terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robreward.cli.main import main
from robreward.codegen.extract import extract_program
from tests.codegen.conftest import ECHO_AUTHORIZATION, ECHO_KEY, Reply

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "examples" / "transcripts" / "reach"


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["generate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("llm, variable", [("gpt-4o", "OPENAI_API_KEY"), ("anthropic:claude-sonnet-4-6",
                                                                          "ANTHROPIC_API_KEY")])
def test_without_a_configured_llm_it_says_how_to_configure_one(capsys, tmp_path, llm, variable):
    code, _, err = run_cli(capsys, "--task", "reach", "--llm", llm, "--out", tmp_path / "gen")
    assert code == 2
    assert err.startswith("robreward generate: error: no LLM configured") and err.count("\n") == 1
    assert f"set {variable}" in err and "--base-url URL" in err and "--llm replay:DIR" in err
    assert not (tmp_path / "gen").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("args, message", [
    (["--task", "reach", "--llm", "gpt-4o"], "--out required"),
    (["--task", "reach", "--llm", "gpt-4o", "--out", "X", "--text", "wave at the camera"], "--fitness EXPR"),
    (["--task", "reach", "--llm", "gpt-4o", "--out", "X", "--feedback", "too fast"], "--feedback needs --from RUN"),
    (["--task", "nope", "--llm", "gpt-4o", "--out", "X"], "nope"),
    (["--resume", "no/such/run"], "not a generate run directory"),
    (["--resume", "R", "--samples", "4"], "drop --samples"),
])
def test_user_errors_are_one_clear_line(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and message in err and err.startswith("robreward generate: error:")


def test_spend_cap_exits_with_the_resume_command(capsys, openai_server, tmp_path):
    broken = "```python\nimport torch\n\ndef compute_reward(state, action):\n    return ("
    openai_server.text_fn = lambda request, choice, body: broken  # every answer needs a repair request
    out = tmp_path / "gen"
    code, _, err = run_cli(capsys, "--task", "reach", "--llm", "fake-model", "--base-url", openai_server.base_url,
                           "--samples", 1, "--iterations", 1, "--max-tokens", 1, "--out", out)
    assert code == 3 and openai_server.count == 1
    assert f"--resume {out} --max-cost USD" in err and "token cap reached" in err
    assert json.loads((out / "state.json").read_text())["status"] == "stopped"


def test_shipped_transcript_replays_offline(capsys, tmp_path):
    """The README's demo at a smaller budget: this machine's reflections differ from the recorded
    run's, so later requests are matched by position; the candidates are the recorded ones."""
    recorded = set()
    for call in sorted(SHIPPED.glob("call-*.json")):
        for text in json.loads(call.read_text())["completion"]["texts"]:
            result = extract_program(text)
            if result.ok:
                recorded.add(result.code)
    out = tmp_path / "gen"
    code, stdout, _ = run_cli(capsys, "--task", "reach", "--llm", f"replay:{SHIPPED}", "--samples", 3,
                              "--iterations", 2, "--steps", 2048, "--envs", 16, "--eval-episodes", 8,
                              "--final-seeds", 0, "--out", out)
    assert code == 0 and "best reward:" in stdout
    codes = [p.read_text() for p in sorted(out.glob("iter_*/cand_*/reward.py"))]
    assert len(codes) == 6 and set(codes) <= recorded
    report = (out / "report.md").read_text()
    assert "a recorded transcript, not a live model" in report and "matched by position" in report
    assert json.loads((out / "iter_00" / "cand_01" / "check.json").read_text())["attempts"][0]["stage"] == "static"


def test_an_llm_that_keeps_failing_stops_the_run_resumably(capsys, openai_server, tmp_path):
    openai_server.script = [openai_server.error(400, "model not found")]
    out = tmp_path / "gen"
    code, _, err = run_cli(capsys, "--task", "reach", "--llm", "fake-model", "--base-url", openai_server.base_url,
                           "--out", out)
    assert code == 2 and "HTTP 400: model not found" in err and f"--resume {out}" in err
    assert json.loads((out / "state.json").read_text())["stop_reason"].startswith("LLM error")


def test_a_busy_chooser_port_fails_before_any_training(capsys, openai_server, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, _, err = run_cli(capsys, "--task", "reach", "--llm", "fake-model", "--base-url", openai_server.base_url,
                               "--preferences", "human", "--port", port, "--out", tmp_path / "gen")
    assert code == 2 and err.startswith("robreward generate: error: port ") and "is in use: pass --port" in err
    assert openai_server.requests == []  # no LLM call, no training: the address was checked first


# -- secrets: a server that echoes the key never gets it onto disk or the terminal --------------------
ECHO_KEY_PROGRAM = (f"Your key is {ECHO_KEY}, keep it safe.\n\n```python\nimport torch\n\n# written with key {ECHO_KEY}\n"
                    "def compute_reward(state, action):\n"
                    "    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)\n"
                    f"    reach = torch.exp(-dist / 0.1)  # auth: {ECHO_AUTHORIZATION}\n"
                    "    return reach, {\"reach\": reach}\n```\n\nSent with "
                    f"{ECHO_AUTHORIZATION}.\n")


def robreward(*args, env: dict) -> subprocess.CompletedProcess:
    """The installed `robreward` command, as a user runs it."""
    command = Path(sys.executable).with_name("robreward")
    return subprocess.run([str(command), *map(str, args)], env=env, capture_output=True, timeout=600)


def test_a_server_that_echoes_the_key_puts_it_nowhere(openai_server, tmp_path):
    """The key in a 5xx body (logged on retry), in the response texts (inside the reward program's
    comments and around it), in a 401 that stops the run; then --resume. Every byte of every file of
    the run directory, and all the terminal output, has zero copies of the key."""
    key = "robreward-test-key-5e1f0c3a9b7d2468"  # not key-shaped: only redaction by value catches it
    openai_server.script = [Reply(503, {"error": {"message": f"overloaded; key {ECHO_KEY}"}}, {"Retry-After": "0"}),
                            Reply(),  # iteration 1's programs, with the key in them
                            openai_server.error(401, f"Incorrect API key provided: {ECHO_KEY} "
                                                     f"(Authorization: {ECHO_AUTHORIZATION})")]
    openai_server.text_fn = lambda request, choice, body: ECHO_KEY_PROGRAM
    out = tmp_path / "gen"
    env = {**os.environ, "OPENAI_API_KEY": key, "MUJOCO_GL": "egl"}
    first = robreward("generate", "--task", "reach", "--llm", "fake-model", "--base-url", openai_server.base_url,
                      "--samples", 2, "--iterations", 2, "--steps", 2048, "--envs", 16, "--eval-episodes", 8,
                      "--final-seeds", 0, "--out", out, env=env)
    assert first.returncode == 2, first.stderr.decode()
    assert b"robreward generate: error: LLM request failed with HTTP 401: Incorrect API key provided: [REDACTED]" \
        in first.stderr and b"overloaded; key [REDACTED]" in first.stderr
    resumed = robreward("generate", "--resume", out, env=env)  # the server answers again: the run finishes
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert [r["key"] for r in openai_server.requests] == [key] * 4  # the server had the key all along
    assert "# written with key [REDACTED]" in (out / "iter_00" / "cand_00" / "reward.py").read_text()
    assert "Your key is [REDACTED]" in (out / "iter_00" / "samples_a0.json").read_text()

    files = [path for path in out.rglob("*") if path.is_file()]
    assert {"state.json", "report.md", "samples_a0.json", "check.json", "reward.py"} <= {p.name for p in files}
    leaks = [str(p.relative_to(out)) for p in files if key.encode() in p.read_bytes()]
    leaks += [name for name, output in (("first stdout", first.stdout), ("first stderr", first.stderr),
                                        ("resume stdout", resumed.stdout), ("resume stderr", resumed.stderr))
              if key.encode() in output]
    assert leaks == []
