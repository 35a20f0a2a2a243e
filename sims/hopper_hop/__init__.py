"""hopper-hop: Gymnasium's Hopper-v5, reproduced exactly (same XML, frame skip 4, observation
with qvel clipped to [-10, 10], reward terms and weights, healthy-range termination, uniform
reset noise of scale 5e-3)."""

from __future__ import annotations

import functools

import torch

from robreward.envs.spec import RewardTerm, StateField, TaskSpec, common_state_fields
from sims._locomotion import ctrl_cost, ctrl_range, load_gymnasium_model, uniform_noise_reset

XML = "hopper.xml"
FRAME_SKIP = 4
HEALTHY_STATE = (-100.0, 100.0)  # every entry of (qpos, qvel)[2:], strict
HEALTHY_Z = (0.7, float("inf"))  # torso height qpos[1], strict
HEALTHY_ANGLE = (-0.2, 0.2)  # torso pitch qpos[2], strict
SUCCESS_SPEED = 1.0  # m/s
_model = functools.lru_cache(maxsize=1)(lambda: load_gymnasium_model(XML))
_M = _model()
_LOW, _HIGH = ctrl_range(_M)


def pre_step(raw, ctx):
    return {"x_position": raw["qpos"][:, 0].clone()}


def compute_state(raw, pre, ctx):
    qpos, qvel = raw["qpos"], raw["qvel"]
    x = qpos[:, 0]
    dt = ctx.model.opt.timestep * FRAME_SKIP
    x_velocity = (x - pre["x_position"]) / dt if "x_position" in pre else torch.zeros_like(x)
    z, angle = qpos[:, 1], qpos[:, 2]
    rest = torch.cat([qpos, qvel], dim=-1)[:, 2:]
    healthy = (
        ((HEALTHY_STATE[0] < rest) & (rest < HEALTHY_STATE[1])).all(-1)
        & (HEALTHY_Z[0] < z) & (z < HEALTHY_Z[1])
        & (HEALTHY_ANGLE[0] < angle) & (angle < HEALTHY_ANGLE[1])
    )
    return {
        "x_position": x,
        "x_velocity": x_velocity,
        "torso_height": z,
        "torso_angle": angle,
        "is_healthy": healthy.to(torch.float64),
    }


def observe(state):
    return torch.cat([state.qpos[:, 1:], torch.clamp(state.qvel, -10.0, 10.0)], dim=-1)


TASK = TaskSpec(
    name="hopper-hop",
    version=0,
    description=(
        "A planar one-legged hopper robot (a torso on a single leg made of thigh, leg and foot, "
        "with hinge joints at hip, knee and ankle driven by torque motors) stands on flat ground. "
        "The goal is to hop forward, in the +x direction, as fast as possible while staying "
        "upright: the episode ends when the torso drops below 0.7 m, tilts more than 0.2 rad, "
        "or any joint position or velocity leaves [-100, 100]."
    ),
    build_model=lambda: load_gymnasium_model(XML),
    frame_skip=FRAME_SKIP,
    episode_length=1000,
    state_fields=common_state_fields(_M, _M.nu) + (
        StateField("x_position", (), "m", "x coordinate of the torso (root slide joint)"),
        StateField("x_velocity", (), "m/s", "forward velocity of the torso over the last step: (x_after - x_before) / dt"),
        StateField("torso_height", (), "m", "z coordinate of the torso (root slide joint qpos[1])"),
        StateField("torso_angle", (), "rad", "pitch angle of the torso (root hinge qpos[2]); 0 is upright"),
        StateField("is_healthy", (), "0|1", "1 while the hopper is within its healthy ranges (height, angle, state bounds), else 0"),
    ),
    sim_fields=(),
    pre_step=pre_step,
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("qpos[1:] (rootz, rooty, thigh, leg, foot)", _M.nq - 1), ("qvel clipped to [-10, 10] (6)", _M.nv)),
    reward_terms=(
        RewardTerm("forward", 1.0, lambda s, a: s.x_velocity),
        RewardTerm("ctrl", -1e-3, ctrl_cost),
        RewardTerm("survive", 1.0, lambda s, a: s.is_healthy),
    ),
    success=lambda s: s.x_velocity >= SUCCESS_SPEED,
    fitness=lambda s: s.x_velocity,
    success_threshold=SUCCESS_SPEED,
    terminated=lambda s: s.is_healthy < 0.5,
    sample_reset=uniform_noise_reset(5e-3, qvel_normal=False),
    action_low=_LOW,
    action_high=_HIGH,
    gymnasium_twin="Hopper-v5",
    notes=f"fitness: forward velocity (m/s), averaged over the episode; success: fitness >= {SUCCESS_SPEED:g} m/s",
)
