"""The CLI's one top-level handler (robreward/cli/main.py, cli/common.py): every error is
`robreward VERB: error: MESSAGE` (+ `hint:` lines), never a traceback; exit 2 for bad input,
files and limits, 1 for an internal error (with the --debug advice), 130 on Ctrl-C;
`robreward --debug VERB` shows the traceback. Through `main()` and through the installed command."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import robreward.cli.tasks as tasks_verb
from robreward.cli.main import main
from robreward.codegen.config import GenerateConfig

TRACEBACK = "Traceback (most recent call last)"
DEEP_REWARD = ("import torch\n\n\ndef compute_reward(state, action):\n    deep = " + "-" * 1200 + "1\n"
               "    total = state.ee_pos[:, 0] * 0.0\n    return total, {\"zero\": total}\n")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def robreward(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `robreward` command, as a user runs it."""
    command = Path(sys.executable).with_name("robreward")
    return subprocess.run([str(command), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MUJOCO_GL": "egl", **(env or {})})


@pytest.fixture
def deep_state_run(tmp_path) -> Path:
    """A generate run directory whose state.json is JSON nested 100,000 deep (RecursionError in json)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(GenerateConfig(task="reach", llm="gpt-4o", out=str(run)).to_dict()))
    (run / "state.json").write_text("[" * 100_000)
    return run


def raising(error: BaseException):
    def run(args):
        raise error
    return run


# -- bad input: exit 2, the message, no traceback --------------------------------------------------------------------
def test_a_missing_reward_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "check-reward", "--task", "reach", tmp_path / "missing.py")
    assert code == 2 and err.startswith("robreward check-reward: error: reward file") and "not found" in err
    assert TRACEBACK not in err


def test_a_binary_reward_file_is_rejected_not_raised(capsys, tmp_path):
    bad = tmp_path / "binary.py"
    bad.write_bytes(b"\xff\xfe\x00\x01import torch\n")
    code, out, err = run_cli(capsys, "check-reward", "--task", "reach", bad)
    assert code == 1 and "REJECTED" in out and TRACEBACK not in out + err
    code, _, err = run_cli(capsys, "train", "--task", "reach", "--reward", bad, "--out", tmp_path / "run")
    assert code == 2 and err.startswith("robreward train: error:") and TRACEBACK not in err


def test_a_deeply_nested_reward_file_is_an_error_not_a_crash(capsys, tmp_path):
    deep = tmp_path / "deep.py"
    deep.write_text(DEEP_REWARD)
    code, _, err = run_cli(capsys, "train", "--task", "reach", "--reward", deep, "--steps", 64, "--out", tmp_path / "r")
    assert code == 2 and err.startswith("robreward train: error:") and TRACEBACK not in err


@pytest.mark.parametrize("args, message", [
    (["eval", "no/such/run"], "'no/such/run' does not exist"),
    (["generate", "--resume", "no/such/run"], "not a generate run directory"),
    (["train", "--resume", "no/such/run"], "no/such/run"),
])
def test_a_missing_run_dir(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and err.startswith(f"robreward {args[0]}: error:") and message in err
    assert TRACEBACK not in err


def test_hostile_input_that_raises_deep_inside(capsys, deep_state_run):
    code, _, err = run_cli(capsys, "generate", "--resume", deep_state_run)
    assert code == 2 and TRACEBACK not in err
    assert err.startswith("robreward generate: error: the input is nested too deeply to process")
    assert "robreward generate: hint: " in err and "flatten it" in err


@pytest.mark.parametrize("error, message, hint", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/run"), "no space left on device: /data/run",
     "free some disk space"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), "permission denied: /root/x",
     "check the permissions"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "in.h5"), "no such file or directory: in.h5",
     "check the path"),
    (MemoryError(), "out of memory", "more memory than this machine has"),
    (RuntimeError("the simulator diverged"), "the simulator diverged", None),
    (ValueError("--envs must be >= 1, got 0"), "--envs must be >= 1, got 0", None),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "a file is not valid text", "UTF-8"),
])
def test_each_kind_of_error_is_one_message_and_how_to_fix_it(capsys, monkeypatch, error, message, hint):
    monkeypatch.setattr(tasks_verb, "run", raising(error))
    code, _, err = run_cli(capsys, "tasks")
    assert code == 2 and err.startswith(f"robreward tasks: error: {message}") and TRACEBACK not in err
    assert hint is None or hint in err.split("\nrobreward tasks: hint: ", 1)[1]


def test_an_internal_error_says_to_rerun_with_debug_and_report_it(capsys, monkeypatch):
    monkeypatch.setattr(tasks_verb, "run", raising(KeyError("iterations")))
    code, _, err = run_cli(capsys, "tasks")
    assert code == 1 and err.startswith("robreward tasks: error: internal error (KeyError: 'iterations')")
    assert "robreward --debug VERB" in err and "report it" in err and TRACEBACK not in err


def test_ctrl_c_exits_130(capsys, monkeypatch):
    monkeypatch.setattr(tasks_verb, "run", raising(KeyboardInterrupt()))
    code, _, err = run_cli(capsys, "tasks")
    assert code == 130 and err == "robreward tasks: interrupted\n"


def test_a_key_in_an_error_message_is_redacted_even_with_debug(capsys, monkeypatch):
    key = "cli-test-key-0b1c2d3e4f5a6b7c"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setattr(tasks_verb, "run", raising(ValueError(f"the server said: bad key {key}")))
    for debug in ([], ["--debug"]):
        code, _, err = run_cli(capsys, *debug, "tasks")
        assert code == 2 and "bad key [REDACTED]" in err and key not in err


# -- --debug ---------------------------------------------------------------------------------------------------------
def test_debug_shows_the_traceback(capsys, deep_state_run):
    code, _, err = run_cli(capsys, "--debug", "generate", "--resume", deep_state_run)
    assert code == 2 and TRACEBACK in err and "RecursionError" in err
    assert err.rstrip().splitlines()[-2].startswith("robreward generate: error: the input is nested too deeply")


# -- the installed command -------------------------------------------------------------------------------------------
def test_the_installed_command_prints_no_traceback(tmp_path, deep_state_run):
    deep = tmp_path / "deep.py"
    deep.write_text(DEEP_REWARD)
    cases = [(["check-reward", "--task", "reach", tmp_path / "missing.py"], 2),
             (["eval", tmp_path / "no-such-run"], 2),
             (["generate", "--resume", deep_state_run], 2),
             (["train", "--task", "reach", "--reward", deep, "--steps", 64, "--out", tmp_path / "r"], 2)]
    for args, code in cases:
        result = robreward(*args)
        assert result.returncode == code, (args, result.stderr)
        assert TRACEBACK not in result.stderr + result.stdout, (args, result.stderr)
        assert result.stderr.startswith(f"robreward {args[0]}: error: "), (args, result.stderr)
    debug = robreward("--debug", "generate", "--resume", deep_state_run)
    assert debug.returncode == 2 and TRACEBACK in debug.stderr


def test_robrewards_own_warnings_are_one_line_and_debug_keeps_pythons_format(tmp_path):
    import h5py

    from robreward.demos.record import record

    older = tmp_path / "older-mujoco.h5"
    record("reach", "expert", 1, older, seed=0, num_envs=1, progress=False)
    with h5py.File(older, "a") as f:
        f.attrs["mujoco_version"] = "3.1.0"
    plain = robreward("demos", "replay", older, "--check")
    assert plain.returncode == 0, plain.stderr
    lines = [line for line in plain.stderr.splitlines() if "MuJoCo 3.1.0" in line]
    assert len(lines) == 1 and lines[0].startswith(f"robreward demos: warning: demo dataset {older} was recorded "
                                                   "with MuJoCo 3.1.0"), plain.stderr
    assert "MujocoVersionWarning" not in plain.stderr and "replay.py" not in plain.stderr
    debug = robreward("--debug", "demos", "replay", older, "--check")
    assert "MujocoVersionWarning: demo dataset" in debug.stderr and "replay.py" in debug.stderr


def test_a_warning_repeated_by_the_steps_of_one_command_prints_once(tmp_path):
    """train reads a warm start's dataset in its pre-training check, in the BC warm start and in the demo-state
    resets: a user sees its MuJoCo version warning once."""
    import h5py

    from robreward.demos.record import record

    older = tmp_path / "older-mujoco.h5"
    record("reach", "expert", 2, older, seed=0, num_envs=2, progress=False)
    with h5py.File(older, "a") as f:
        f.attrs["mujoco_version"] = "3.1.0"
    result = robreward("train", "--task", "reach", "--reward", "sparse", "--steps", 64, "--envs", 4,
                       "--init-from-demos", older, "--reset-from-demos", older, "--no-progress",
                       "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "MuJoCo 3.1.0" in line]
    assert len(lines) == 1, result.stderr
    debug = robreward("--debug", "train", "--task", "reach", "--reward", "sparse", "--steps", 64, "--envs", 4,
                      "--init-from-demos", older, "--reset-from-demos", older, "--no-progress",
                      "--out", tmp_path / "run-debug")
    assert debug.stderr.count("MujocoVersionWarning: demo dataset") >= 2, debug.stderr
