"""The manipulation tasks (reach, push, lift, drawer-open): scripted experts reach 95% over 100
seeded worlds, hand reward terms sum to the total, resets are randomized and seeded, and a
random policy does far worse than the expert."""

from __future__ import annotations

import mujoco
import pytest
import torch

import robreward
from robreward.envs.registry import get_task, task_names
from sims import _arm

TASKS = ("reach", "push", "lift", "drawer-open")
N = 100


def rollout(task: str, policy, seed: int = 0, n: int = N) -> dict:
    """One episode in each of n worlds: success at any step, hand return, reward-term sums."""
    env = robreward.make(task, num_envs=n, seed=seed)
    env.reset(seed=seed)
    success = torch.zeros(n, dtype=torch.bool)
    ret = torch.zeros(n)
    worst_sum_err = 0.0
    for _ in range(env.spec.episode_length):
        obs, reward, terminated, truncated, info = env.step(policy(env))
        assert obs.shape == (n, env.obs_dim) and torch.isfinite(obs).all()
        terms = torch.stack(list(info["reward_terms"].values())).sum(0)
        worst_sum_err = max(worst_sum_err, float((terms - reward).abs().max()))
        success |= info["success"]
        ret += reward
        assert not info["nan_reset"].any()
    assert truncated.all(), "every world ends by truncation at episode_length"
    return {"success": success.float().mean().item(), "return": ret.mean().item(), "sum_err": worst_sum_err}


def expert_policy(env):
    return env.spec.expert(env.state)


def random_policy(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return lambda env: torch.rand(env.num_envs, env.act_dim, generator=gen) * 2 - 1


@pytest.fixture(scope="module", params=TASKS)
def results(request):
    task = request.param
    return task, rollout(task, expert_policy), rollout(task, random_policy())


def test_tasks_are_registered():
    assert set(TASKS) <= set(task_names())
    for task in TASKS:
        spec = get_task(task)
        assert spec.name == task and spec.expert is not None and spec.act_dim == 4
        assert mujoco.mj_name2id(spec.build_model(), mujoco.mjtObj.mjOBJ_CAMERA, spec.camera) >= 0


def test_expert_succeeds(results):
    task, expert, _ = results
    assert expert["success"] >= 0.95, f"{task}: expert success {expert['success']:.2f} < 0.95"


def test_random_policy_far_below_expert(results):
    task, expert, rand = results
    assert rand["success"] <= 0.2 and rand["success"] < expert["success"] - 0.7, (task, rand, expert)
    # the dense hand reward ranks the expert well above random behaviour
    assert expert["return"] > 2.0 * rand["return"], (task, expert["return"], rand["return"])


def test_reward_terms_sum_to_total(results):
    task, expert, rand = results
    assert expert["sum_err"] < 1e-4 and rand["sum_err"] < 1e-4


@pytest.mark.parametrize("task", TASKS)
def test_reset_is_randomized_and_seeded(task):
    env = robreward.make(task, num_envs=16, seed=0)
    env.reset(seed=3)
    a = env.get_state().clone()
    env.reset(seed=3)
    assert torch.equal(a, env.get_state()), "same seed, same initial states"
    env.reset(seed=4)
    assert not torch.allclose(a, env.get_state()), "different seed, different initial states"
    # worlds of one batch differ from each other (objects, goals and start pose are drawn)
    assert (a[1:] - a[:1]).abs().amax(-1).min() > 1e-3


@pytest.mark.parametrize("task", TASKS)
def test_reset_observation_and_not_yet_solved(task):
    env = robreward.make(task, num_envs=N, seed=0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (N, env.obs_dim) and obs.dtype == torch.float32
    assert torch.isfinite(obs).all()
    assert env.obs_dim == sum(size for _, size in env.spec.obs_layout)
    assert env.spec.success(info["state"]).float().mean() <= 0.02
    assert not env.spec.terminated(info["state"]).any()


@pytest.mark.parametrize("task", TASKS)
def test_grip_stays_in_workspace(task):
    env = robreward.make(task, num_envs=4, seed=0)
    env.reset(seed=0)
    low = torch.tensor(_arm.WORK_LOW) - 0.02
    high = torch.tensor(_arm.WORK_HIGH) + 0.02
    for signs in ((1, 1, 1), (-1, -1, -1)):
        action = torch.tensor([[*signs, 1.0]] * 4)
        for _ in range(30):
            env.step(action)
            ee = env.state.ee_pos
            assert ((ee >= low) & (ee <= high)).all(), ee


@pytest.mark.parametrize("task", TASKS)
def test_description_hides_reward(task):
    spec = get_task(task)
    text = spec.describe()
    for field in spec.state_fields:
        assert field.name in text
    assert "reward" not in spec.description.lower() and "tanh" not in text
