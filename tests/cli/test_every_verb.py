"""Every `robreward` verb runs at least once through the installed command: --help for each (the heavy
ones), a real tiny run of each cheap one; the verb table matches the modules; start-up imports no torch."""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import robreward.cli as cli_package
from robreward.cli.main import VERBS

ROOT = Path(__file__).parents[2]
COMMAND = Path(sys.executable).with_name("robreward")


def robreward(*args, timeout=300):
    return subprocess.run([str(COMMAND), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_the_verb_table_lists_every_verb_module():
    modules = {info.name for info in pkgutil.iter_modules(cli_package.__path__)
               if hasattr(importlib.import_module(f"robreward.cli.{info.name}"), "register")}
    assert modules == {module for module, _ in VERBS.values()}


def test_top_level_help_lists_the_verbs():
    result = robreward("--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert verb in result.stdout


def test_start_up_imports_no_torch():
    code = ("import sys\nimport robreward.cli.main as m\nm.build_parser(['--help'])\n"
            "heavy = [name for name in ('torch', 'mujoco', 'matplotlib', 'robreward.envs.batched') if name in sys.modules]\n"
            "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [[verb, "--help"] for verb in VERBS]
                         + [["prefs", "train", "--help"], ["prefs", "eval", "--help"], ["bench", "sim", "--help"],
                            ["demos", "record", "--help"]])
def test_help_of_every_verb(argv):
    result = robreward(*argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: robreward {' '.join(argv[:-1])}")


def test_version():
    result = robreward("--version")
    assert result.returncode == 0 and result.stdout.strip() == "robreward 0.1.0"


@pytest.mark.parametrize("argv, expect", [
    (["tasks"], "reach"),
    (["tasks", "show", "reach"], "reach"),
    (["expert", "--task", "reach", "--episodes", "2"], '"success_rate"'),
    (["bench", "sim", "--task", "reach", "--envs", "4", "--steps", "16", "--repeats", "1"], '"task"'),
    (["demos", "info", "demos/reach-expert.h5"], "reach"),
])
def test_cheap_verbs_run(argv, expect):
    result = robreward(*argv)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout


def test_train_and_eval_a_tiny_run(tmp_path):
    out = tmp_path / "run"
    result = robreward("train", "--task", "reach", "--envs", "4", "--steps", "256", "--rollout-steps", "16",
                       "--eval-episodes", "2", "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "config.yaml").is_file()
    result = robreward("eval", str(out), "--episodes", "2")
    assert result.returncode == 0, result.stderr


def test_check_reward_runs_on_the_example():
    result = robreward("check-reward", "--task", "push", "examples/push_reward.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelled_flag_prints_the_verbs_usage():
    result = robreward("train", "--tsk", "push")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: robreward train ")
    assert "unrecognized arguments: --tsk push (did you mean --task?)" in result.stderr
