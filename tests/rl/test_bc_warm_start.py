"""`train --init-from-demos`: a BC warm start beats a random init after the same short PPO budget."""

from pathlib import Path

import pytest

from robreward.demos.record import record
from robreward.eval.evaluate import evaluate
from robreward.rl.config import PPOConfig, TrainConfig
from robreward.rl.runner import train


def _train(tmp_path, name, steps, demos=None):
    config = TrainConfig(task="reach", reward="hand", num_envs=32, steps=steps, seed=0, out=str(tmp_path / name),
                         eval_episodes=32, progress=False, init_from_demos=demos,
                         ppo=PPOConfig(num_steps=16))
    return train(config, evaluate=evaluate)["eval"]


def test_bc_warm_start_beats_random_init_on_the_same_budget(tmp_path):
    demos = tmp_path / "reach-expert.h5"
    record("reach", "expert", episodes=20, out=str(demos), seed=0)
    budget = 2 * 32 * 16  # two PPO updates: too little to learn reach from scratch
    warm = _train(tmp_path, "warm", budget, str(demos))
    cold = _train(tmp_path, "cold", budget)
    assert warm["success_rate"] >= 0.5
    assert warm["success_rate"] >= cold["success_rate"] + 0.4
    assert "BC warm start" in (Path(tmp_path / "warm") / "MODEL_CARD.md").read_text()


def test_missing_demo_file_is_a_clear_error(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="nope.h5"):
        _train(tmp_path, "bad", 512, str(tmp_path / "nope.h5"))
