"""PPO learns reach on a small budget, and the run directory has the docs/architecture.md layout."""

import csv
import json

import pytest
import torch
import yaml

from robreward import rundir
from robreward.rl.config import TrainConfig
from tests.rl.conftest import REACH_STEPS

pytestmark = pytest.mark.slow  # a learning test: make test-all


def test_ppo_learns_reach(reach_run):
    out, summary = reach_run
    assert summary["steps"] >= REACH_STEPS
    result = json.loads((out / "eval.json").read_text())
    assert result["task"] == "reach" and result["episodes"] == 100
    assert result["success_rate"] >= 0.9, result  # deterministic policy, 100 episodes
    assert summary["stats"]["success"] >= 0.9  # training episodes (stochastic policy) too


def test_run_directory_layout(reach_run):
    out, summary = reach_run
    for name in ("config.yaml", "progress.csv", "policy.onnx", "MODEL_CARD.md", "eval.json", "checkpoints/latest.pt"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    config = TrainConfig.from_dict(rundir.read_config(out))
    assert config.task == "reach" and config.steps == REACH_STEPS and config.ppo.learning_rate == 1e-3
    rows = list(csv.DictReader(open(out / "progress.csv")))
    assert [int(r["step"]) for r in rows] == [2048 * (i + 1) for i in range(len(rows))]
    success = [float(r["success_rate"]) for r in rows if r["success_rate"]]  # empty until an episode ends
    assert success[-1] > success[0]
    card = (out / "MODEL_CARD.md").read_text()
    assert "`reach` version 0" in card and "success_rate" in card and "reward: `hand`" in card
    ckpt = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["global_step"] == summary["steps"]


def test_tensorboard_has_reward_terms(reach_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = reach_run
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("episode/return", "episode/hand_return", "episode/success", "reward_terms/reach",
                "reward_terms/success", "train/kl", "perf/steps_per_s"):
        assert tag in tags, sorted(tags)


GOOD_REWARD = '''
import torch

def compute_reward(state, action):
    terms = {"near": -torch.linalg.norm(state.ee_to_goal, dim=-1), "ctrl": -0.01 * (action ** 2).sum(-1)}
    return terms["near"] + terms["ctrl"], terms
'''


def test_reward_program_file_trains_and_logs_its_terms(tmp_path):
    from robreward.cli.main import main

    path = tmp_path / "my_reward.py"
    path.write_text(GOOD_REWARD)
    out = tmp_path / "run"
    assert main(["train", "--task", "reach", "--reward", str(path), "--envs", "16", "--steps", "2048",
                 "--out", str(out), "--eval-episodes", "0", "--no-progress"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["reward"] == str(path.resolve())
    header = (out / "progress.csv").read_text().splitlines()[0]
    assert "hand_return_mean" in header
    assert "reward: `" + str(path.resolve()) in (out / "MODEL_CARD.md").read_text()
