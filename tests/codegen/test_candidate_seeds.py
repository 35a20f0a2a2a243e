"""One reward on M seeds at once (generate --candidate-seeds): each (candidate, seed) world group is a
separate run of its own seed, in the one batched env and Trainer (robreward.rl.multi.train_many)."""

import csv

import pytest
import torch

from robreward.envs.batched import BatchedEnv
from robreward.rl import TrainConfig
from robreward.rl.config import PPOConfig
from robreward.rl.multi import train_many
from robreward.rl.runner import train

STEPS, WORLDS = 2048, 16  # 4 updates of 16 worlds x 32 steps
CMP_PPO = PPOConfig(num_epochs=5)  # as tests/rl/test_multi.py: rounding grows with every SGD step
COMPARED = ("step", "episodes", "return_mean", "success_rate", "fitness_mean", "kl", "policy_loss", "value_loss",
            "entropy", "noise_std")


def rows(run_dir) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "progress.csv")))


def test_world_groups_with_their_own_seeds_start_as_separate_envs_of_those_seeds():
    per = 4
    combined = BatchedEnv("push", 3 * per, seed=[0, 1, 2], groups=3)
    obs, _ = combined.reset()
    for k in range(3):
        alone, _ = BatchedEnv("push", per, seed=k).reset()
        assert torch.equal(obs[k * per:(k + 1) * per], alone)
    again, _ = combined.reset(seed=[5, 6, 7])  # a resumed run's reseed: one seed per group again
    assert torch.equal(again[per:2 * per], BatchedEnv("push", per, seed=6).reset()[0])
    assert not torch.equal(again[:per], again[per:2 * per])
    with pytest.raises(ValueError, match="one seed per world group"):
        BatchedEnv("push", 2 * per, seed=[0, 1, 2], groups=2)


def test_one_reward_on_two_seeds_at_once_trains_as_two_separate_runs(tmp_path):
    """hand on seeds 3 and 4 in one Trainer == runner.train with seed 3 and with seed 4 (up to rounding),
    and the two seeds' runs differ from each other (they are not one run twice)."""
    train_many("reach", ["hand", "hand"], STEPS, [3, 4], [tmp_path / "b3", tmp_path / "b4"],
               num_envs_per_candidate=WORLDS, ppo=CMP_PPO, eval_episodes=0)
    for seed in (3, 4):
        train(TrainConfig(task="reach", reward="hand", num_envs=WORLDS, steps=STEPS, seed=seed,
                          out=str(tmp_path / f"s{seed}"), eval_episodes=0, progress=False, ppo=CMP_PPO))
        got, want = rows(tmp_path / f"b{seed}"), rows(tmp_path / f"s{seed}")
        assert len(got) == len(want) == 4
        for a, b in zip(got, want):
            for column in COMPARED:
                if b[column] == "":
                    assert a[column] == "", column
                else:
                    assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-3, abs=1e-6), (seed, column)
    assert rows(tmp_path / "b3")[-1]["policy_loss"] != rows(tmp_path / "b4")[-1]["policy_loss"]


def test_train_many_says_what_to_pass_for_seeds(tmp_path):
    with pytest.raises(ValueError, match="one seed per reward"):
        train_many("reach", ["hand", "hand"], STEPS, [0, 1, 2], [tmp_path / "a", tmp_path / "b"],
                   num_envs_per_candidate=WORLDS, eval_episodes=0)
