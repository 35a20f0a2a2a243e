"""Task versions: hopper-hop-v1 and humanoid-kneel-v1 beside v0 (kept as it was), and the v1
success tests separating what v0's did not (docs/baselines.md has the measurements)."""

from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

import robreward
from robreward.envs.registry import get_task, task_names
from robreward.eval import evaluate
from robreward.rl import load_policy
from tests.sims.test_locomotion import kneeling_state

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def random_policy(spec, seed=0):
    rng = np.random.default_rng(seed)
    return lambda obs: torch.as_tensor(rng.uniform(-1, 1, (obs.shape[0], spec.act_dim)), dtype=torch.float32)


def hand_reward(spec, state) -> float:
    return sum(t.weight * float(t.fn(state, torch.zeros(1, spec.act_dim))[0]) for t in spec.reward_terms)


@pytest.mark.parametrize("v0, v1", [("hopper-hop", "hopper-hop-v1"), ("humanoid-kneel", "humanoid-kneel-v1")])
def test_v1_is_registered_beside_v0_which_is_unchanged(v0, v1):
    assert {v0, v1} <= set(task_names())
    old, new = get_task(v0), get_task(v1)
    assert (old.name, old.version, new.name, new.version) == (v0, 0, v1, 1)
    # same body, observation and reset: the success test differs (and kneel's hand reward and termination)
    assert (new.obs_layout, new.frame_skip, new.episode_length) == (old.obs_layout, old.frame_skip, old.episode_length)
    assert new.sample_reset is old.sample_reset and (new.terminated is old.terminated) == (v0 == "hopper-hop")
    assert new.success is not old.success and "v0" in new.notes
    assert gymnasium.spec(f"robreward/{v1}").kwargs == {"task": v1}
    assert gymnasium.spec(f"robreward/{v0}-v0").kwargs == {"task": v0}
    assert "hand" not in new.describe().lower()


def test_hopper_v1_success_is_reaching_5_m():
    spec = get_task("hopper-hop-v1")
    assert spec.success_threshold is None  # success at any step, not a mean-velocity threshold
    env = robreward.make(spec, num_envs=3, seed=0)
    env.reset(seed=0)
    state = env.get_state().numpy().copy()
    state[:, 1] = [0.0, 4.9, 5.2]  # qpos[0]: the torso's x (mjSTATE_INTEGRATION: time, qpos, ...)
    env.set_state(state)
    assert env.state.x_position.tolist() == pytest.approx([0.0, 4.9, 5.2])
    assert spec.success(env.state).tolist() == [False, False, True]
    assert spec.fitness(env.state).tolist() == [0.0, 0.0, 1.0]


def test_hopper_v1_separates_a_hopping_policy_from_random():
    """v0's shipped hand policy hops past 5 m in every episode; random actions fall within a few
    dozen steps, well short of it, so the v1 sparse reward is never seen by a random policy."""
    spec = get_task("hopper-hop-v1")
    hopping = evaluate("hopper-hop-v1", load_policy(POLICIES / "hopper-hop" / "policy.onnx"), episodes=4, seed=3)
    assert hopping["success_rate"] == 1.0 and hopping["fitness_mean"] > 0.2
    rand = evaluate("hopper-hop-v1", random_policy(spec), episodes=32, seed=3)
    assert rand["success_rate"] == 0.0 and rand["fitness_mean"] == 0.0


def test_kneel_v1_success_is_an_upright_kneel():
    spec, v0 = get_task("humanoid-kneel-v1"), get_task("humanoid-kneel")
    assert spec.success_threshold == 0.5  # held on half of the episode's steps
    env = robreward.make(spec, num_envs=1, seed=0, nthread=1)
    env.reset(seed=0)
    assert not bool(spec.success(env.state)[0])  # standing
    env.set_state(kneeling_state(env)[None])  # kneeling upright, shins flat, torso at 0.93 m
    assert bool(spec.success(env.state)[0]) and float(spec.fitness(env.state)[0]) == 1.0
    upright_reward = hand_reward(spec, env.state)
    # v0's kneel (measured from v0's shipped hand policy: torso 0.85 m, leaning 28 degrees) is not v1's
    state = kneeling_state(env)
    model = env.model
    qpos = state[1:1 + model.nq]
    qpos[2] = 0.85
    tilt = np.arccos(0.88)  # pitch the torso forward about y: quaternion (cos t/2, 0, sin t/2, 0)
    qpos[3:7] = [np.cos(tilt / 2), 0.0, np.sin(tilt / 2), 0.0]
    env.set_state(state[None])
    s = env.state
    assert float(s.torso_upright[0]) == pytest.approx(0.88, abs=0.01)
    assert bool(v0.success(s)[0]) and not bool(spec.success(s)[0])
    assert upright_reward > hand_reward(spec, s) + 0.5  # v1's hand reward asks for the upright kneel


def test_kneel_v1_is_not_met_by_a_falling_body():
    """Random actions collapse the humanoid through v0's kneel in most episodes (why sparse PPO
    solved v0); v1's upright kneel held for half of the 400 steps is never met."""
    spec = get_task("humanoid-kneel-v1")
    rand = evaluate("humanoid-kneel-v1", random_policy(spec), episodes=8, seed=1)
    assert rand["success_rate"] == 0.0 and rand["fitness_mean"] < 0.02
    assert rand["episode_length_mean"] == spec.episode_length  # a fall does not end a v1 episode
    v0 = evaluate("humanoid-kneel", random_policy(spec), episodes=8, seed=1)
    assert v0["success_rate"] >= 0.25  # the same random actions pass v0's test


def test_kneel_v2_is_v1_with_a_hand_reward_that_pays_nothing_lying_down():
    v1, v2 = get_task("humanoid-kneel-v1"), get_task("humanoid-kneel-v2")
    assert (v2.name, v2.version) == ("humanoid-kneel-v2", 2) and "humanoid-kneel-v2" in task_names()
    assert gymnasium.spec("robreward/humanoid-kneel-v2").kwargs == {"task": "humanoid-kneel-v2"}
    # v1's success test, sparse reward (the fitness), episode, body and reset: only the hand reward differs
    assert (v2.success, v2.fitness, v2.success_threshold, v2.terminated, v2.sample_reset, v2.episode_length) == \
        (v1.success, v1.fitness, v1.success_threshold, v1.terminated, v1.sample_reset, v1.episode_length)
    env = robreward.make(v2, num_envs=1, seed=0, nthread=1)
    env.reset(seed=0)
    env.set_state(kneeling_state(env)[None])  # kneeling upright: v1's and v2's hand rewards agree
    assert hand_reward(v2, env.state) == pytest.approx(hand_reward(v1, env.state), abs=0.05)
    assert hand_reward(v2, env.state) > 2.5
    # v1's shipped hand policy ends its episodes lying with its knees on the floor: v1's hand reward pays it
    # knees_low there, v2's next to nothing
    policy = load_policy(POLICIES / "v1" / "humanoid-kneel-v1" / "policy.onnx")
    env = robreward.make(v1, num_envs=4, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(v1.episode_length - 1):
        obs, *_ = env.step(policy(obs))
    s = env.state
    assert (s.torso_height < 0.4).all() and (s.torso_upright < 0.5).all()  # lying
    v1_pay = sum(t.weight * t.fn(s, torch.zeros(4, v1.act_dim)) for t in v1.reward_terms)
    v2_pay = sum(t.weight * t.fn(s, torch.zeros(4, v2.act_dim)) for t in v2.reward_terms)
    assert (v1_pay > 0.5).all() and (v2_pay < 0.1).all(), (v1_pay, v2_pay)
    assert "hand" not in v2.describe().lower()
