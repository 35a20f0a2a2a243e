"""cheetah-run: Gymnasium's HalfCheetah-v5, reproduced exactly (same XML, frame skip,
observation, reward terms and weights, reset noise)."""

from __future__ import annotations

import functools

import torch

from robreward.envs.spec import RewardTerm, StateField, TaskSpec, common_state_fields
from sims._locomotion import ctrl_cost, ctrl_range, load_gymnasium_model, never, uniform_noise_reset

XML = "half_cheetah.xml"
FRAME_SKIP = 5
_model = functools.lru_cache(maxsize=1)(lambda: load_gymnasium_model(XML))
_M = _model()
_LOW, _HIGH = ctrl_range(_M)


def pre_step(raw, ctx):
    return {"x_position": raw["qpos"][:, 0].clone()}


def compute_state(raw, pre, ctx):
    x = raw["qpos"][:, 0]
    dt = ctx.model.opt.timestep * FRAME_SKIP
    x_velocity = (x - pre["x_position"]) / dt if "x_position" in pre else torch.zeros_like(x)
    return {"x_position": x, "x_velocity": x_velocity}


def observe(state):
    return torch.cat([state.qpos[:, 1:], state.qvel], dim=-1)


TASK = TaskSpec(
    name="cheetah-run",
    version=0,
    description=(
        "A planar two-legged cheetah robot (a torso with a back and a front leg, each with thigh, "
        "shin and foot joints driven by torque motors) lies on flat ground. The goal is to run "
        "forward, in the +x direction, as fast as possible, without wasting actuator effort."
    ),
    build_model=lambda: load_gymnasium_model(XML),
    frame_skip=FRAME_SKIP,
    episode_length=1000,
    state_fields=common_state_fields(_M, _M.nu) + (
        StateField("x_position", (), "m", "x coordinate of the torso (root slide joint)"),
        StateField("x_velocity", (), "m/s", "forward velocity of the torso over the last step: (x_after - x_before) / dt"),
    ),
    sim_fields=(),
    pre_step=pre_step,
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("qpos[1:] (rootz, rooty, 6 joint angles)", _M.nq - 1), ("qvel (9)", _M.nv)),
    reward_terms=(
        RewardTerm("forward", 1.0, lambda s, a: s.x_velocity),
        RewardTerm("ctrl", -0.1, ctrl_cost),
    ),
    success=lambda s: s.x_velocity >= 3.0,
    fitness=lambda s: s.x_velocity,
    success_threshold=3.0,
    terminated=never,
    sample_reset=uniform_noise_reset(0.1, qvel_normal=True),
    action_low=_LOW,
    action_high=_HIGH,
    gymnasium_twin="HalfCheetah-v5",
    notes="fitness: forward velocity (m/s), averaged over the episode; success: fitness >= 3 m/s",
)
