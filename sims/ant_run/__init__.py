"""ant-run: Gymnasium's Ant-v5, reproduced exactly (same XML, frame skip 5, observation with
cfrc_ext[1:] clipped to [-1, 1], reward terms and weights, healthy-z termination, reset noise:
qpos uniform, qvel normal, scale 0.1). x_velocity is the torso body's xpos (body 1, Gymnasium's
main_body) before/after the step, as Gymnasium computes it."""

from __future__ import annotations

import functools

import torch

from robreward.envs.spec import RewardTerm, StateField, TaskSpec, common_state_fields
from sims._locomotion import ctrl_cost, ctrl_range, load_gymnasium_model, uniform_noise_reset

XML = "ant.xml"
FRAME_SKIP = 5
MAIN_BODY = 1  # the torso
HEALTHY_Z = (0.2, 1.0)  # torso height qpos[2], inclusive
CONTACT_FORCE_RANGE = (-1.0, 1.0)
SUCCESS_SPEED = 1.0  # m/s
_model = functools.lru_cache(maxsize=1)(lambda: load_gymnasium_model(XML))
_M = _model()
_LOW, _HIGH = ctrl_range(_M)
_NB = _M.nbody


def pre_step(raw, ctx):
    return {"xy_position": raw["xpos"][:, MAIN_BODY, :2].clone()}


def compute_state(raw, pre, ctx):
    qpos, qvel = raw["qpos"], raw["qvel"]
    xy = raw["xpos"][:, MAIN_BODY, :2]
    dt = ctx.model.opt.timestep * FRAME_SKIP
    vel = (xy - pre["xy_position"]) / dt if "xy_position" in pre else torch.zeros_like(xy)
    z = qpos[:, 2]
    finite = torch.isfinite(qpos).all(-1) & torch.isfinite(qvel).all(-1)
    healthy = finite & (HEALTHY_Z[0] <= z) & (z <= HEALTHY_Z[1])
    return {
        "x_position": qpos[:, 0],
        "y_position": qpos[:, 1],
        "x_velocity": vel[:, 0],
        "y_velocity": vel[:, 1],
        "torso_height": z,
        "is_healthy": healthy.to(torch.float64),
        "contact_forces": torch.clamp(raw["cfrc_ext"], *CONTACT_FORCE_RANGE),
    }


def contact_cost(state, action):
    return (state.contact_forces ** 2).sum((-2, -1))


def observe(state):
    n = state.qpos.shape[0]
    return torch.cat([state.qpos[:, 2:], state.qvel, state.contact_forces[:, 1:].reshape(n, -1)], dim=-1)


TASK = TaskSpec(
    name="ant-run",
    version=0,
    description=(
        "A four-legged ant robot (a spherical torso with four legs, each with a hip and an ankle "
        "hinge driven by torque motors; the torso moves freely in 3D) stands on flat ground. "
        "The goal is to run forward, in the +x direction, as fast as possible while keeping the "
        "torso between 0.2 m and 1.0 m high (the episode ends otherwise), without wasting "
        "actuator effort or hitting the ground hard."
    ),
    build_model=lambda: load_gymnasium_model(XML),
    frame_skip=FRAME_SKIP,
    episode_length=1000,
    state_fields=common_state_fields(_M, _M.nu) + (
        StateField("x_position", (), "m", "x coordinate of the torso (free joint qpos[0])"),
        StateField("y_position", (), "m", "y coordinate of the torso (free joint qpos[1])"),
        StateField("x_velocity", (), "m/s", "forward velocity of the torso body over the last step: (x_after - x_before) / dt"),
        StateField("y_velocity", (), "m/s", "sideways velocity of the torso body over the last step: (y_after - y_before) / dt"),
        StateField("torso_height", (), "m", "z coordinate of the torso (free joint qpos[2])"),
        StateField("is_healthy", (), "0|1", "1 while the state is finite and the torso height is within [0.2, 1.0] m, else 0"),
        StateField("contact_forces", (_NB, 6), "N·m|N",
                   "external (contact) wrench on each body (MuJoCo cfrc_ext: torque, force), clipped to [-1, 1]"),
    ),
    sim_fields=("xpos", "cfrc_ext"),
    pre_step=pre_step,
    compute_state=compute_state,
    observe=observe,
    obs_layout=(
        ("qpos[2:] (torso z, torso quaternion, 8 joint angles)", _M.nq - 2),
        ("qvel (14)", _M.nv),
        (f"contact_forces[1:] ({_NB - 1} bodies x 6)", (_NB - 1) * 6),
    ),
    reward_terms=(
        RewardTerm("forward", 1.0, lambda s, a: s.x_velocity),
        RewardTerm("ctrl", -0.5, ctrl_cost),
        RewardTerm("contact", -5e-4, contact_cost),
        RewardTerm("survive", 1.0, lambda s, a: s.is_healthy),
    ),
    success=lambda s: s.x_velocity >= SUCCESS_SPEED,
    fitness=lambda s: s.x_velocity,
    success_threshold=SUCCESS_SPEED,
    terminated=lambda s: s.is_healthy < 0.5,
    sample_reset=uniform_noise_reset(0.1, qvel_normal=True),
    action_low=_LOW,
    action_high=_HIGH,
    gymnasium_twin="Ant-v5",
    notes=f"fitness: forward velocity (m/s), averaged over the episode; success: fitness >= {SUCCESS_SPEED:g} m/s",
)
