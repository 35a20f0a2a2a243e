"""Gymnasium parity of the locomotion twins, and the humanoid-kneel success test.

From the same MuJoCo state and the same actions, robreward's observation, reward, every reward
term and the termination flag must match Gymnasium v5 within float32 rounding for 1000 steps:
|a - b| <= 1e-5 * max(1, |b|) elementwise.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

import robreward
from robreward.envs.registry import get_task

gymnasium = pytest.importorskip("gymnasium")

TWINS = {
    "cheetah-run": "HalfCheetah-v5",
    "hopper-hop": "Hopper-v5",
    "ant-run": "Ant-v5",
    "humanoid-run": "Humanoid-v5",
}
TOL = 1e-5
STEPS = 1000


def _err(a, b) -> float:
    """max over elements of |a - b| / max(1, |b|) (relative, absolute near zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)), initial=0.0))


def _gym_state(gym_env) -> np.ndarray:
    inner = gym_env.unwrapped
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(inner.model, spec))
    mujoco.mj_getState(inner.model, inner.data, state, spec)
    return state


def run_parity(task: str, steps: int = STEPS, seed: int = 0) -> dict:
    """Step Gymnasium's twin and robreward side by side; return the max errors seen."""
    gym_env = gymnasium.make(TWINS[task])
    env = robreward.make(task, num_envs=1, seed=seed, nthread=1)
    assert env.obs_dim == gym_env.observation_space.shape[0]
    assert env.act_dim == gym_env.action_space.shape[0]
    np.testing.assert_allclose(env.action_low.numpy(), gym_env.action_space.low)
    np.testing.assert_allclose(env.action_high.numpy(), gym_env.action_space.high)
    term_names = {t.name for t in env.spec.reward_terms}

    # same seed, same reset distribution: the very same initial state
    gym_obs, _ = gym_env.reset(seed=seed)
    obs, _ = env.reset(seed=seed)
    errors = {"reset_state": _err(env.get_state()[0].numpy(), _gym_state(gym_env)),
              "obs": _err(obs[0].numpy(), gym_obs), "reward": 0.0}
    errors.update({f"reward_{k}": 0.0 for k in term_names})
    rng = np.random.default_rng(seed + 1)
    low, high = gym_env.action_space.low, gym_env.action_space.high
    episodes = 1
    for t in range(steps):
        action = rng.uniform(low, high).astype(np.float32)
        gym_obs, gym_reward, gym_term, gym_trunc, gym_info = gym_env.step(action)
        obs, reward, term, trunc, info = env.step(torch.from_numpy(action)[None])
        final_obs = info["final_obs"][0].numpy()
        errors["obs"] = max(errors["obs"], _err(final_obs, gym_obs))
        errors["reward"] = max(errors["reward"], _err(reward[0].item(), gym_reward))
        for name, value in info["reward_terms"].items():
            key = f"reward_{name}"
            errors[key] = max(errors[key], _err(value[0].item(), gym_info[key]))
        assert bool(term[0]) == gym_term, f"{task} step {t}: terminated {bool(term[0])} vs gymnasium {gym_term}"
        assert bool(trunc[0]) == gym_trunc, f"{task} step {t}: truncated {bool(trunc[0])} vs gymnasium {gym_trunc}"
        assert max(errors.values()) <= TOL, f"{task} step {t}: {errors}"
        if gym_term or gym_trunc:
            # both draw the reset from the same generator stream: compare, then re-sync exactly
            gym_obs, _ = gym_env.reset()
            errors["reset_state"] = max(errors["reset_state"], _err(env.get_state()[0].numpy(), _gym_state(gym_env)))
            env.set_state(_gym_state(gym_env)[None])
            episodes += 1
    gym_env.close()
    errors["episodes"] = episodes
    return errors


@pytest.mark.parametrize("task", list(TWINS))
def test_gymnasium_parity(task):
    assert get_task(task).gymnasium_twin == TWINS[task]
    errors = run_parity(task)
    assert set(k for k in errors if k.startswith("reward_")) == {f"reward_{t.name}" for t in get_task(task).reward_terms}
    worst = {k: v for k, v in errors.items() if k != "episodes" and v > TOL}
    assert not worst, f"{task}: {worst}"


@pytest.mark.parametrize("task", ["ant-run", "humanoid-run"])
def test_cfrc_ext_is_rne_post_constraint_after_step(task):
    """cfrc_ext of every world, stepped in a threaded batch, equals what Gymnasium reads:
    mj_rnePostConstraint called after mj_step on that world's own MjData."""
    n = 3
    env = robreward.make(task, num_envs=n, seed=5, nthread=2)
    env.reset()
    model = env.model
    datas = []
    for state in env.get_state().numpy():
        data = mujoco.MjData(model)
        mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        datas.append(data)
    rng = np.random.default_rng(0)
    low, high = env.action_low.numpy(), env.action_high.numpy()
    live, biggest = set(range(n)), 0.0
    for _ in range(40):
        action = rng.uniform(low, high, size=(n, env.act_dim)).astype(np.float32)
        _, _, term, trunc, info = env.step(torch.from_numpy(action))
        live -= set(torch.nonzero(term | trunc).flatten().tolist())  # those were reset: stop there
        raw = env.sim.read()  # the backend's float64 fields
        for k, data in enumerate(datas):
            if k not in live:
                continue
            data.ctrl[:] = action[k]
            mujoco.mj_step(model, data, nstep=env.spec.frame_skip)
            mujoco.mj_rnePostConstraint(model, data)
            np.testing.assert_array_equal(raw["cfrc_ext"][k].numpy(), data.cfrc_ext)
            np.testing.assert_array_equal(raw["qpos"][k].numpy(), data.qpos)
            biggest = max(biggest, float(np.abs(data.cfrc_ext).max()))
    assert biggest > 1.0  # contacts happened


def _kneel_env():
    return robreward.make("humanoid-kneel", num_envs=1, seed=0, nthread=1)


def kneeling_state(env) -> np.ndarray:
    """A hand-built kneeling pose of the Humanoid-v5 body: thighs upright, shins flat on the
    ground behind (knees bent 90 degrees), torso upright, at rest."""
    model = env.model
    qpos = model.qpos0.copy()
    qpos[2] = 0.93  # torso height at which the shins rest on the floor (found by lowering the body)
    for knee in ("left_knee", "right_knee"):
        qpos[model.jnt_qposadr[model.joint(knee).id]] = -np.pi / 2
    state = env.get_state()[0].numpy().copy()
    state[1:1 + model.nq] = qpos  # mjSTATE_INTEGRATION: time, qpos, qvel, ...
    state[1 + model.nq:1 + model.nq + model.nv] = 0.0
    return state


def test_kneel_success_standing_vs_kneeling():
    env = _kneel_env()
    env.reset(seed=0)
    assert not bool(env.spec.success(env.state)[0]), "standing at reset must not count as kneeling"
    obs, reward, term, trunc, info = env.step(torch.zeros(1, env.act_dim))
    assert not bool(info["success"][0])
    total = torch.stack(list(info["reward_terms"].values())).sum(0)
    torch.testing.assert_close(total, reward)

    env.set_state(kneeling_state(env)[None])
    s = env.state
    assert float(s.left_knee_height[0]) < 0.15 and float(s.right_knee_height[0]) < 0.15
    assert float(s.torso_upright[0]) > 0.95
    assert bool(env.spec.success(s)[0]), f"kneeling pose not recognized: {dict((k, v[0]) for k, v in s.items() if v.dim() == 1)}"
    assert float(env.spec.fitness(s)[0]) == 1.0
    obs, reward, term, trunc, info = env.step(torch.zeros(1, env.act_dim))
    assert not bool(term[0])
    total = torch.stack(list(info["reward_terms"].values())).sum(0)
    torch.testing.assert_close(total, reward)
    # the kneeling pose is rewarded more than standing
    stand = _kneel_env()
    stand.reset(seed=0)
    _, stand_reward, *_ = stand.step(torch.zeros(1, stand.act_dim))
    assert float(reward[0]) > float(stand_reward[0]) + 0.5


def test_kneel_terminates_when_fallen_and_description_hides_reward():
    env = _kneel_env()
    env.reset(seed=0)
    state = env.get_state()[0].numpy().copy()
    nq = env.model.nq
    state[3] = 0.15  # torso lying on the ground
    state[4:8] = [np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0]  # pitched 90 degrees
    env.set_state(state[None])
    _, _, term, _, info = env.step(torch.zeros(1, env.act_dim))
    assert bool(term[0]) and not bool(info["success"][0])
    text = env.spec.describe().lower()
    for secret in ("weight", "reward", "exp(", "tanh"):
        assert secret not in text
    assert nq == 24
