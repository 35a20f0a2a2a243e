"""backend="warp" (MuJoCo Warp on Warp's CPU device) against backend="cpu" (native MuJoCo).

Compiled kernels are cached in ~/.cache/warp, so only the first run pays the compile
(~20-60 s per new kernel set); later runs take well under a minute for the whole file.
"""

import dataclasses
import functools
import warnings

import mujoco
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp", reason="backend='warp' needs the [warp] extra")

import robreward  # noqa: E402
from robreward.envs.registry import get_task  # noqa: E402
from robreward.envs.spec import TaskContext  # noqa: E402

TASKS = robreward.task_names()
N = 8
PREFIX = 12  # control steps on the cpu backend before the compared step
# per-step tolerance: max |cpu - warp| <= TOL * (1 + max |cpu|), per field / reward term
TOL = 2e-4
# Tasks where MuJoCo Warp's algorithms differ (see robreward/envs/warp_backend.py):
#   ant-run: pyramidal friction cones and MJWarp's plane-capsule contact frame (it replaces the
#   capsule-axis tangent by a fixed axis when the capsule is steeper than 60 degrees, MuJoCo
#   does not), so the friction pyramid is rotated for steep legs. With elliptic cones (frame
#   independent) parity is exact; the shipped task is held to a looser bound.
PYRAMID_FRAME = {"ant-run": 0.05}
# Box-box contacts of the manipulation cube (MJWarp's own box-box collision): one or two
# worlds of eight differ after one control step (lift: a cube resting on the table, 4 contacts
# at ~0 penetration, 7e-4 rel. qvel; push: the cube pushed by the gripper, 4e-2 rel. qvel,
# 3e-3 rel. qpos); the other worlds agree to 1e-7. Not diagnosed further yet: elliptic cones do
# NOT remove it (unlike ant-run), so it is not the friction-pyramid frame.
BOX_CONTACT = {"lift": 2e-3, "push": 0.06}


def _elliptic(spec):
    def build():
        model = spec.build_model()
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        return model
    return dataclasses.replace(spec, build_model=build)


@functools.lru_cache(maxsize=None)
def _pair(task, elliptic=False):
    spec = get_task(task)
    spec = _elliptic(spec) if elliptic else spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PGS -> Newton is expected (and tested in the backend)
        cpu = robreward.make(spec, num_envs=N, backend="cpu", seed=0)
        wrp = robreward.make(spec, num_envs=N, backend="warp", device="cpu", seed=0)
    return cpu, wrp


def _actions(env, gen):
    lo, hi = env.action_low, env.action_high
    return lo + (hi - lo) * torch.rand(env.num_envs, env.act_dim, generator=gen)


def _prefix_state(cpu, seed=0):
    """A spread of realistic states: PREFIX steps of the expert (if any) or random actions."""
    gen = torch.Generator().manual_seed(seed)
    cpu.reset(seed)
    for t in range(PREFIX):
        action = _actions(cpu, gen)
        if cpu.spec.expert is not None and t % 2 == 0:
            action = cpu.spec.expert(cpu.state).to(torch.float32) + 0.1 * (action - action.mean())
        cpu.step(action)
    return cpu.get_state(), _actions(cpu, gen)


def _rel_err(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / (1.0 + a.abs().max())) if a.numel() else 0.0


def _one_step_errors(cpu, wrp, seed=0):
    states, action = _prefix_state(cpu, seed)
    cpu.set_state(states)
    wrp.set_state(states)
    out_c = cpu.step(action)
    out_w = wrp.step(action)
    info_c, info_w = out_c[4], out_w[4]
    errs = {f"state.{k}": _rel_err(v, info_w["final_state"][k]) for k, v in info_c["final_state"].items()}
    errs.update({f"term.{k}": _rel_err(v, info_w["reward_terms"][k]) for k, v in info_c["reward_terms"].items()})
    errs["reward"] = _rel_err(out_c[1], out_w[1])
    return errs, out_c, out_w


@pytest.mark.parametrize("task", TASKS)
def test_one_step_parity(task):
    """Same full state (set_state incl. warm start) and action -> same step, float32 tolerance."""
    cpu, wrp = _pair(task)
    errs, out_c, out_w = _one_step_errors(cpu, wrp)
    worst = max(errs, key=errs.get)
    print(f"{task}: worst {worst} {errs[worst]:.2e}; qpos {errs['state.qpos']:.2e} qvel {errs['state.qvel']:.2e}")
    assert not out_w[4]["nan_reset"].any()
    bound = PYRAMID_FRAME.get(task, BOX_CONTACT.get(task, TOL))
    assert errs[worst] <= bound, f"{task}: {worst} differs by {errs[worst]:.3g} (bound {bound:g}); all: {errs}"
    if task not in PYRAMID_FRAME and task not in BOX_CONTACT:
        assert torch.equal(out_c[2], out_w[2]), "terminated differs"
        assert torch.equal(out_c[4]["success"], out_w[4]["success"]), "success differs"


@pytest.mark.parametrize("task", sorted(PYRAMID_FRAME))
def test_one_step_parity_elliptic_cones(task):
    """The documented difference is the only one: with frame-independent elliptic cones the
    same task agrees to float32 tolerance."""
    cpu, wrp = _pair(task, elliptic=True)
    errs, _, _ = _one_step_errors(cpu, wrp)
    worst = max(errs, key=errs.get)
    print(f"{task} (elliptic): worst {worst} {errs[worst]:.2e}")
    assert errs[worst] <= TOL, errs


def test_returns_agree_statistically():
    """cheetah-run, a fixed deterministic policy, the same initial states: the mean return of
    the warp backend is within noise of the cpu backend's (trajectories diverge chaotically)."""
    n, horizon = 32, 150
    spec = dataclasses.replace(get_task("cheetah-run"), episode_length=horizon)
    gen = torch.Generator().manual_seed(3)
    w = 0.5 * torch.randn(spec.obs_dim, spec.act_dim, generator=gen)
    rets = {}
    for backend in ("cpu", "warp"):
        env = robreward.make(spec, num_envs=n, backend=backend, device="cpu", seed=7)
        obs, _ = env.reset(seed=7)
        ret = torch.zeros(n)
        for t in range(horizon):
            obs, reward, term, trunc, info = env.step(torch.tanh(obs @ w))
            ret += reward
            assert not info["nan_reset"].any()
        assert trunc.all()
        rets[backend] = ret
    c, g = rets["cpu"], rets["warp"]
    se = float(torch.sqrt(c.var() / n + g.var() / n))
    print(f"cheetah returns over {horizon} steps: cpu {c.mean():.2f}±{c.std():.2f} warp {g.mean():.2f}±{g.std():.2f}")
    assert abs(float(c.mean() - g.mean())) <= 3 * se + 0.02 * float(c.abs().mean())


def test_state_roundtrip_across_backends():
    cpu, wrp = _pair("cheetah-run")
    states, _ = _prefix_state(cpu, seed=1)
    assert wrp.nstate == cpu.nstate == states.shape[1]
    wrp.set_state(states)
    back = wrp.get_state()
    assert back.dtype == torch.float64 and back.shape == states.shape
    assert _rel_err(states, back) < 1e-6  # float32 storage
    cpu.set_state(back)
    assert _rel_err(back, cpu.get_state()) == 0.0
    # a subset of worlds, the others untouched
    before = wrp.get_state()
    wrp.set_state(states[:2] * 0 + states[5:7], world_ids=[0, 1])
    after = wrp.get_state()
    assert torch.equal(after[2:], before[2:])
    assert _rel_err(states[5:7], after[:2]) < 1e-6


def test_masked_reset_keeps_other_worlds():
    """reset of some worlds leaves the others' state and derived fields (cfrc_ext, xpos) as is."""
    _, wrp = _pair("ant-run")
    wrp.reset(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        wrp.step(_actions(wrp, gen))
    sim = wrp.sim
    raw = sim.read()
    state = sim.get_state()
    sample = wrp.spec.sample_reset(np.random.default_rng(0), 2, wrp.ctx)
    sim.reset(np.array([1, 4]), sample.qpos, sample.qvel)
    raw2, state2 = sim.read(), sim.get_state()
    keep = [0, 2, 3, 5, 6, 7]
    for k in raw:
        assert torch.equal(raw[k][keep], raw2[k][keep]), k
    assert torch.equal(state[keep], state2[keep])
    assert torch.allclose(raw2["qpos"][[1, 4]], torch.as_tensor(sample.qpos), atol=1e-6)
    assert float(state2[1, 0]) == 0.0  # time restarts


def test_broken_worlds_are_flagged_and_reset():
    cpu, wrp = _pair("cheetah-run")
    wrp.reset(0)
    states = wrp.get_state()
    nq = wrp.model.nq
    states[3, 1 + nq:1 + 2 * nq] = 1e9  # qvel blows up: overflow on the way to inf
    wrp.set_state(states)
    obs, reward, terminated, truncated, info = wrp.step(torch.zeros(N, wrp.act_dim))
    assert info["nan_reset"].tolist() == [i == 3 for i in range(N)]
    assert terminated[3] and torch.isfinite(obs).all() and torch.isfinite(reward).all()
    assert float(wrp.get_state()[3, 0]) == 0.0  # world 3 was reset


def test_constraint_overflow_is_flagged():
    """nefc > njmax in a world sets its d.overflow bit: the world is reported broken."""
    from robreward.envs.warp_backend import WarpSimulator

    spec = get_task("cheetah-run")
    model = spec.build_model()
    sim = WarpSimulator(model, 2, (), torch.device("cpu"), nconmax=48, njmax=2)
    sample = spec.sample_reset(np.random.default_rng(0), 2, TaskContext(model, torch.device("cpu")))
    qpos = sample.qpos.copy()
    qpos[0, 1] = 2.0  # world 0 in the air: no contacts; world 1 lies on the ground (many rows)
    qpos[1, 1] = -0.3
    sim.reset(np.arange(2), qpos, np.zeros_like(sample.qvel))
    broken = sim.step(1)
    assert broken.tolist() == [False, True]


def test_per_world_model_fields_match_cpu():
    spec = get_task("cheetah-run")
    model = spec.build_model()
    from robreward.envs.cpu_backend import CpuSimulator
    from robreward.envs.warp_backend import WarpSimulator

    n = 3
    sims = [CpuSimulator(model, n, (), torch.device("cpu"), 1), WarpSimulator(model, n, (), torch.device("cpu"))]
    rng = np.random.default_rng(0)
    mass = model.body_mass[None].repeat(n, 0) * rng.uniform(0.5, 2.0, (n, model.nbody))
    sample = spec.sample_reset(np.random.default_rng(1), n, TaskContext(model, torch.device("cpu")))
    ctrl = torch.as_tensor(rng.uniform(-1, 1, (n, model.nu)), dtype=torch.float32)
    out = []
    for sim in sims:
        sim.reset(np.arange(n), sample.qpos, sample.qvel, None, {"body_mass": mass})
        sim.set_ctrl(ctrl)
        sim.step(5)
        out.append(sim.read()["qvel"])
    assert _rel_err(out[0], out[1]) < TOL
    assert np.allclose(sims[1].model_of(2).body_mass, mass[2], rtol=1e-6)


def test_render_path_data_of():
    cpu, wrp = _pair("cheetah-run")
    wrp.reset(0)
    data = wrp.sim.data_of(2)
    assert np.allclose(data.qpos, wrp.state["qpos"][2].double().numpy(), atol=1e-6)
    assert data.xpos.any()  # derived fields computed for the renderer
