"""`robreward prefs train / eval`: a tiny run end to end, the eval fields, and clear input errors."""

import json
import re

from pathlib import Path

import pytest

from robreward.cli.main import main

DEMOS = Path(__file__).resolve().parents[2] / "demos"
TINY = ["--task", "reach", "--teacher", "oracle", "--queries", "20", "--per-round", "10", "--segment", "10",
        "--steps", "2048", "--envs", "8", "--eval-episodes", "10", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prefs-cli") / "run"
    assert main(["prefs", "train", *TINY, "--select", "entropy", "--out", str(out)]) == 0
    return out


def test_train_writes_a_run(tiny_run, capsys):
    state = json.loads((tiny_run / "state.json").read_text())
    assert state["finished"] and state["queries_used"] == 20 and state["rounds_done"] == 2
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["select"] == "entropy" and config["num_envs"] == 8 and config["ensemble"]["seed"] == 1
    assert json.loads((tiny_run / "ppo" / "eval.json").read_text())["episodes"] == 10
    # resuming a finished run does no more work and says what it has
    assert main(["prefs", "train", "--resume", str(tiny_run), "--no-progress"]) == 0
    assert "2 feedback rounds, 20 queries" in capsys.readouterr().out


def test_the_plain_command_runs_the_defaults_best_at_equal_steps_a_quarter_and_auto_features(tiny_run):
    """Issue 23's defaults (measured on push and cheetah-run): rounds over a quarter of the steps, a fresh policy
    on the final reward kept unless the feedback phase's earns more of it once both have trained as many steps,
    features auto (reach's observation is made of fields: their norms, plus the action)."""
    import torch

    config = json.loads((tiny_run / "config.json").read_text())
    assert (config["final_policy"], config["feedback_fraction"], config["features"]) == ("best", 0.25, ["auto"])
    assert config["choose_at"] == "equal"
    kept = json.loads((tiny_run / "state.json").read_text())["final_choice"]["kept"]
    other = tiny_run / ("ppo-restart" if kept == "feedback" else "ppo-feedback")
    assert (other / "checkpoints").is_dir() and (tiny_run / "ppo" / "eval.json").is_file()
    saved = torch.load(tiny_run / "reward" / "round_001.pt", weights_only=True)
    assert saved["features"]["fields"] == ["|ee_pos|", "|ee_vel|", "gripper_opening", "|goal_pos|", "|ee_to_goal|"]
    assert saved["features"]["action"] is True


def test_train_restarts_the_policy_after_the_feedback_rounds(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["prefs", "train", *TINY, "--final-policy", "restart", "--feedback-fraction", "0.5", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["final_policy"] == "restart" and config["feedback_fraction"] == 0.5
    assert config["choose_at"] == "end"  # --choose-at left at auto: restart has no choice to make
    rounds = json.loads((out / "state.json").read_text())["round_steps"]
    assert rounds == [0, 512]  # 2048 x 0.5 / 2 rounds, in whole updates of 8 worlds x 32 steps
    assert (out / "ppo-feedback" / "checkpoints").is_dir() and (out / "ppo" / "eval.json").is_file()
    assert "2,048 PPO steps" in capsys.readouterr().out  # 512 in the feedback phase + 1536 fresh


def test_train_with_demos_as_free_preferences(tmp_path, monkeypatch):
    monkeypatch.chdir(DEMOS.parent)
    out = tmp_path / "run"
    assert main(["prefs", "train", *TINY, "--demos", "demos/reach-expert.h5", "--demo-pairs", "7", "--eval-episodes",
                 "0", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["demos"] == [str(DEMOS / "reach-expert.h5")] and config["demo_pairs"] == 7  # absolute: resumable
    assert [r["demo_pairs"] for r in json.loads((out / "metrics.json").read_text())["rounds"]] == [7, 14]


@pytest.mark.parametrize("which", ["both", "fresh"])
def test_train_with_a_warm_start_from_demos(which, tmp_path, monkeypatch):
    """--init-from-demos: the PPO policies of the run clone the demos before PPO (both: the feedback phase's and the
    fresh one start at the warm start's small noise; fresh: only the final policy does), and the card says so."""
    import csv

    monkeypatch.chdir(DEMOS.parent)
    out = tmp_path / "run"
    noisier = ["--bc-noise-std", "0.2"] if which == "fresh" else []  # the cloned policy's noise, else 0.1
    assert main(["prefs", "train", *TINY, "--init-from-demos", "demos/reach-expert.h5", "--init-policies", which,
                 *noisier, "--final-policy", "restart", "--eval-episodes", "2", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["init_from_demos"] == str(DEMOS / "reach-expert.h5")  # absolute: resumable from anywhere
    assert config["init_policies"] == which and config["bc_noise_std"] == (0.2 if noisier else 0.1)
    for policy, cloned in (("ppo", True), ("ppo-feedback", which == "both")):
        with open(out / policy / "progress.csv") as f:
            first = next(csv.DictReader(f))
        noise = config["bc_noise_std"] if cloned else 0.3  # the warm start's noise std, or PPO's own start
        assert float(first["noise_std"]) == pytest.approx(noise, abs=0.01), (policy, first["noise_std"])
    card = (out / "ppo" / "MODEL_CARD.md").read_text()
    who = "each PPO policy of the run" if which == "both" else "the fresh policy"
    assert f"BC warm start: {DEMOS / 'reach-expert.h5'}: {who} cloned it" in card, card


def test_train_with_demo_starts(tmp_path, monkeypatch):
    """--reset-from-demos: every PPO phase starts a share of its training episodes at the demos' states (the fields
    reach each phase's config.yaml, absolute), and the card says so."""
    import yaml

    monkeypatch.chdir(DEMOS.parent)
    out = tmp_path / "run"
    assert main(["prefs", "train", *TINY, "--reset-from-demos", "demos/reach-expert.h5", "--final-policy", "restart",
                 "--demo-reset-fraction", "0.4", "--eval-episodes", "2", "--out", str(out)]) == 0
    demos = str(DEMOS / "reach-expert.h5")
    assert json.loads((out / "config.json").read_text())["reset_from_demos"] == demos  # absolute: resumable
    for policy in ("ppo", "ppo-feedback"):
        config = yaml.safe_load((out / policy / "config.yaml").read_text())
        assert config["reset_from_demos"] == demos and config["demo_reset_fraction"] == 0.4
    assert f"demo-state resets: {demos}: 0.4 of each PPO phase's training resets" in (out / "ppo" / "MODEL_CARD.md").read_text()


def test_eval_prints_and_writes_its_fields(tiny_run, capsys):
    assert main(["prefs", "eval", str(tiny_run), "--pairs", "100"]) == 0
    out = capsys.readouterr().out
    for word in ("preference_accuracy", "epic_distance", "success_rate", "return_mean", "fraction", "hand"):
        assert word in out, out
    result = json.loads((tiny_run / "prefs_eval.json").read_text())
    assert result["task"] == "reach" and result["teacher"] == "oracle" and result["queries_used"] == 20
    assert 0 <= result["preference_accuracy"] <= 1 and 0 <= result["epic_distance"] <= 1
    assert result["heldout_pairs"] == 100
    policy = json.loads((tiny_run / "ppo" / "eval.json").read_text())
    assert result["policy"]["success_rate"] == policy["success_rate"]
    assert result["baseline"]["success_rate"] == 1.0  # policies/reach/eval.json
    assert result["fraction_of_baseline"]["return_mean"] == pytest.approx(
        policy["return_mean"] / result["baseline"]["return_mean"])


NO_FITNESS_TASK = """
import dataclasses
from sims.reach import TASK as REACH

TASK = dataclasses.replace(REACH, name="reach-no-fitness", fitness=None)
"""


@pytest.mark.parametrize("args, message", [
    (["--teacher", "wizard"], "unknown teacher 'wizard'"),
    (["--teacher", "human,oracle"], "'human' cannot be combined with simulated teachers"),
    (["--teacher", "human", "--port", "70000"], "--port must be an integer in 0..65535, got 70000"),
    (["--queries", "5"], "query budget 5 is smaller than one round of 10 queries"),
    (["--select", "best"], "unknown --select 'best': choose one of uniform, disagreement, entropy"),
    (["--task", "rech"], "unknown task 'rech'. Did you mean 'reach'"),
    (["--pairing", "same"], "unknown --pairing 'same': choose one of any, episode, mixed"),
    (["--final-policy", "reset"], "unknown --final-policy 'reset': choose one of continue, restart"),
    (["--feedback-fraction", "1.5"], r"--feedback-fraction must be in \(0, 1\], got 1.5"),
    (["--demos", "no-such-demos.h5"], "demo dataset .*no-such-demos.h5' not found"),
    (["--demos", str(DEMOS / "push-expert.h5")], "holds demos of task 'push', not 'reach'"),
    (["--demos", str(DEMOS / "reach-expert.h5"), "--demo-pairs", "0"], "--demo-pairs must be an integer >= 1"),
    (["--init-from-demos", "no-such-demos.h5"], "demo dataset .*no-such-demos.h5' does not exist"),
    (["--init-from-demos", str(DEMOS / "push-expert.h5")], "is for task 'push', not 'reach'"),
    (["--reset-from-demos", str(DEMOS / "push-expert.h5")], "is for task 'push', not 'reach'"),
    (["--reset-from-demos", str(DEMOS / "reach-expert.h5"), "--demo-reset-fraction", "0"],
     r"--demo-reset-fraction must be a share in \(0, 1\], got 0.0"),
    (["--init-from-demos", str(DEMOS / "reach-expert.h5"), "--bc-noise-std", "0"],
     r"--bc-noise-std must be a std > 0, got 0.0"),
    (["--init-policies", "feedback"], "unknown --init-policies 'feedback': choose one of both, fresh"),
    (["--restart-keep", "1"], r"--restart-keep must be a share in \[0, 1\), got 1.0"),
    (["--restart-keep", "0.5", "--final-policy", "continue"], "with continue there is no fresh policy: set it to 0"),
    (["--choose-at", "middle"], "unknown --choose-at 'middle': choose one of auto, end, equal"),
    (["--choose-at", "equal", "--final-policy", "restart"], "--choose-at says when final_policy best chooses; with "
                                                            "restart there is no choice: leave it at end"),
    (["--init-policies", "fresh", "--final-policy", "continue"], "--init-policies 'fresh' needs a policy trained from scratch at the end: final.policy restart or best"),
])
def test_train_input_errors(args, message, tmp_path, capsys):
    argv = list(TINY)
    for flag, value in zip(args[::2], args[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(["prefs", "train", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    # a warning may come first (the shipped demos, recorded with another MuJoCo, say so), then the error
    assert [line for line in err.splitlines() if ": warning: " not in line][0].startswith("robreward prefs: error:"), err
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_task_without_fitness(tmp_path, capsys):
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.py").write_text(NO_FITNESS_TASK)
    assert main(["prefs", "train", *TINY[2:], "--task", str(folder), "--out", str(tmp_path / "run")]) == 2
    assert "task 'reach-no-fitness' defines no fitness" in capsys.readouterr().err


def test_missing_flags_and_bad_run_dirs(tmp_path, capsys):
    assert main(["prefs", "train", "--task", "reach", "--out", str(tmp_path / "run")]) == 2
    assert "--teacher, --queries required (or --resume RUN_DIR)" in capsys.readouterr().err
    assert main(["prefs", "train", "--resume", str(tmp_path)]) == 2
    assert "not a preference run directory (no state.json)" in capsys.readouterr().err
    assert main(["prefs", "eval", str(tmp_path)]) == 2
    assert "not a preference run directory" in capsys.readouterr().err
