"""Task versions: hopper-hop-v1, humanoid-kneel-v1 and humanoid-run-v1 beside v0 (kept as it was), and the v1
success tests separating what v0's did not (docs/baselines.md has the measurements)."""

import dataclasses
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


@pytest.mark.parametrize("v0, v1", [("hopper-hop", "hopper-hop-v1"), ("humanoid-kneel", "humanoid-kneel-v1"),
                                    ("humanoid-run", "humanoid-run-v1")])
def test_v1_is_registered_beside_v0_which_is_unchanged(v0, v1):
    assert {v0, v1} <= set(task_names())
    old, new = get_task(v0), get_task(v1)
    assert (old.name, old.version, new.name, new.version) == (v0, 0, v1, 1)
    # same body, observation and reset: the success test differs (and kneel's hand reward and termination)
    assert (new.obs_layout, new.frame_skip, new.episode_length) == (old.obs_layout, old.frame_skip, old.episode_length)
    assert new.sample_reset is old.sample_reset and (new.terminated is old.terminated) == (v0 != "humanoid-kneel")
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


def test_humanoid_run_v1_success_is_reaching_10_m():
    spec = get_task("humanoid-run-v1")
    assert spec.success_threshold is None and spec.reward_terms == get_task("humanoid-run").reward_terms
    env = robreward.make(spec, num_envs=3, seed=0, nthread=1)
    env.reset(seed=0)
    state = env.get_state().numpy().copy()
    state[:, 1] = [0.0, 9.9, 10.2]  # qpos[0]: the torso's x
    env.set_state(state)
    assert env.state.x_position.tolist() == pytest.approx([0.0, 9.9, 10.2])
    assert spec.success(env.state).tolist() == [False, False, True]
    assert spec.fitness(env.state).tolist() == [0.0, 0.0, 1.0]


def test_humanoid_run_v1_is_not_met_by_a_forward_fall():
    """v0's test (mean forward speed >= 1 m/s over the episode) counts a body that lunges and falls: started at
    2 m/s with no action it falls within 30 steps (0.45 s) and passes v0's test, a metre from the start; v1 asks
    for 10 m. Random actions and the 500k hand policy of policies/v1/humanoid-run (which does not run) meet neither."""
    v0, spec = get_task("humanoid-run"), get_task("humanoid-run-v1")  # one body: one rollout, read by both tests
    env = robreward.make(spec, num_envs=1, seed=0, nthread=1)
    env.reset(seed=0)
    state = env.get_state().numpy().copy()
    state[0, 1 + env.model.nq] = 2.0  # qvel[0]: the free joint's forward velocity
    env.set_state(state)
    speed, beyond, x = [], [], []
    for _ in range(spec.episode_length):
        _, _, terminated, truncated, _ = env.step(torch.zeros(1, spec.act_dim))
        if bool(terminated[0] | truncated[0]):
            break
        speed.append(float(v0.fitness(env.state)[0]))
        beyond.append(float(spec.fitness(env.state)[0]))
        x.append(float(env.state.x_position[0]))
    assert bool(terminated[0]) and len(speed) < 40 and max(x) < 1.5  # a fall, about a metre on
    assert np.mean(speed) >= v0.success_threshold  # v0 calls the fall a success
    assert not any(beyond)  # v1: no step beyond 10 m
    rand = evaluate("humanoid-run-v1", random_policy(spec), episodes=8, seed=3)
    assert rand["success_rate"] == 0.0 and rand["fitness_mean"] == 0.0
    shipped = evaluate("humanoid-run-v1", load_policy(POLICIES / "v1" / "humanoid-run" / "policy.onnx"), episodes=4,
                       seed=3)
    assert shipped["success_rate"] == 0.0


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


def test_kneel_v2_is_v1_held_still_with_the_fall_termination_back():
    v1, v2 = get_task("humanoid-kneel-v1"), get_task("humanoid-kneel-v2")
    assert (v2.name, v2.version) == ("humanoid-kneel-v2", 2) and "humanoid-kneel-v2" in task_names()
    assert gymnasium.spec("robreward/humanoid-kneel-v2").kwargs == {"task": "humanoid-kneel-v2"}
    # v1's hand reward, hold share, body and reset; a fall ends the episode, the pose must be still
    assert (v2.reward_terms, v2.success_threshold, v2.sample_reset) == (v1.reward_terms, v1.success_threshold,
                                                                         v1.sample_reset)
    assert v2.fitness_over_episode_length and not v1.fitness_over_episode_length
    env = robreward.make(v2, num_envs=1, seed=0, nthread=1)
    env.reset(seed=0)
    assert not bool(v2.terminated(env.state)[0])  # standing
    still = kneeling_state(env)
    env.set_state(still[None])
    assert not bool(v2.terminated(env.state)[0])  # kneeling is not a fall
    assert bool(v2.success(env.state)[0]) and float(v2.fitness(env.state)[0]) == 1.0
    moving = still.copy()
    moving[1 + env.model.nq + 2] = -2.0  # qvel[2]: the torso dropping at 2 m/s, as a body falling through the pose
    env.set_state(moving[None])
    assert bool(v1.success(env.state)[0]) and not bool(v2.success(env.state)[0])
    lying = still.copy()
    lying[1 + 2] = 0.3  # qpos[2]: the torso's height, on the floor
    env.set_state(lying[None])
    assert bool(v2.terminated(env.state)[0])
    assert "hand" not in v2.describe().lower()


def test_a_fall_counts_its_missing_steps_as_out_of_the_pose():
    """fitness_over_episode_length: the episode's fitness is its sum over the nominal 400 steps.
    With a fitness of 1 on every step, a falling random humanoid scores its length / 400 on v2
    (on a task without the flag, 1.0 whatever the length)."""
    v2 = get_task("humanoid-kneel-v2")
    always = dataclasses.replace(v2, fitness=lambda s: torch.ones_like(s.torso_height, dtype=torch.float32))
    per_step = dataclasses.replace(always, fitness_over_episode_length=False)
    over = evaluate(always, random_policy(v2), episodes=4, seed=2)
    assert over["episode_length_mean"] < 120  # random actions fall within ~100 steps: episodes end early
    assert over["fitness_mean"] == pytest.approx(over["episode_length_mean"] / v2.episode_length)
    assert over["success_rate"] == 0.0  # none reached 200 steps
    assert evaluate(per_step, random_policy(v2), episodes=4, seed=2)["fitness_mean"] == pytest.approx(1.0)
    rand = evaluate("humanoid-kneel-v2", random_policy(v2), episodes=8, seed=1)
    assert rand["success_rate"] == 0.0 and rand["fitness_mean"] == 0.0  # falling through the pose is not still
