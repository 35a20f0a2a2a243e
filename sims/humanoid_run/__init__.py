"""humanoid-run: Gymnasium's Humanoid-v5, reproduced exactly (same XML, frame skip 5,
observation with cinert, cvel, qfrc_actuator and cfrc_ext, reward terms and weights, healthy-z
termination, uniform reset noise of scale 1e-2). x_velocity is the velocity of the mass center
(body masses times xipos), as Gymnasium computes it."""

from __future__ import annotations

import functools

import torch

from robreward.envs.spec import RewardTerm, StateField, TaskSpec, common_state_fields
from sims._locomotion import ctrl_cost, ctrl_range, load_gymnasium_model, uniform_noise_reset

XML = "humanoid.xml"
FRAME_SKIP = 5
HEALTHY_Z = (1.0, 2.0)  # torso height qpos[2], strict
CONTACT_COST_WEIGHT = 5e-7
CONTACT_COST_MAX = 10.0  # Gymnasium clips the weighted contact cost at 10
SUCCESS_SPEED = 1.0  # m/s
_model = functools.lru_cache(maxsize=1)(lambda: load_gymnasium_model(XML))
_M = _model()
_LOW, _HIGH = ctrl_range(_M)
_NB = _M.nbody
SIM_FIELDS = ("xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext")


def mass_center(raw, ctx) -> torch.Tensor:
    """Gymnasium's mass_center: sum(body_mass * xipos) / sum(body_mass), x and y, float64 [N, 2]."""
    mass = ctx.constants.get("body_mass")
    if mass is None:
        mass = ctx.constants["body_mass"] = ctx.tensor(ctx.model.body_mass)
    com = torch.einsum("b,nbj->nj", mass, raw["xipos"]) / mass.sum()
    return com[:, :2]


def pre_step(raw, ctx):
    return {"xy_mass_center": mass_center(raw, ctx)}


def humanoid_fields(raw, ctx) -> dict:
    """The fields Humanoid-v5 observes (shared with humanoid-kneel)."""
    return {
        "cinert": raw["cinert"],
        "cvel": raw["cvel"],
        "qfrc_actuator": raw["qfrc_actuator"],
        "cfrc_ext": raw["cfrc_ext"],
    }


def compute_state(raw, pre, ctx):
    qpos = raw["qpos"]
    xy = mass_center(raw, ctx)
    dt = ctx.model.opt.timestep * FRAME_SKIP
    vel = (xy - pre["xy_mass_center"]) / dt if "xy_mass_center" in pre else torch.zeros_like(xy)
    z = qpos[:, 2]
    healthy = (HEALTHY_Z[0] < z) & (z < HEALTHY_Z[1])
    return {
        "x_position": qpos[:, 0],
        "y_position": qpos[:, 1],
        "x_velocity": vel[:, 0],
        "y_velocity": vel[:, 1],
        "torso_height": z,
        "is_healthy": healthy.to(torch.float64),
        "contact_force_sq": (raw["cfrc_ext"] ** 2).sum((-2, -1)),
        **humanoid_fields(raw, ctx),
    }


def contact_cost(state, action):
    """Gymnasium clips the weighted contact cost at 10: weight * min(sum, 10 / weight)."""
    return torch.clamp(state.contact_force_sq, max=CONTACT_COST_MAX / CONTACT_COST_WEIGHT)


def observe(state):
    n = state.qpos.shape[0]
    return torch.cat([
        state.qpos[:, 2:],
        state.qvel,
        state.cinert[:, 1:].reshape(n, -1),
        state.cvel[:, 1:].reshape(n, -1),
        state.qfrc_actuator[:, 6:],
        state.cfrc_ext[:, 1:].reshape(n, -1),
    ], dim=-1)


def humanoid_state_fields(model) -> tuple[StateField, ...]:
    nb = model.nbody
    return (
        StateField("cinert", (nb, 10), "kg|kg·m|kg·m²", "com-based inertia of each body (MuJoCo cinert)"),
        StateField("cvel", (nb, 6), "rad/s|m/s", "com-based spatial velocity of each body (MuJoCo cvel: angular, linear)"),
        StateField("qfrc_actuator", (model.nv,), "N|N·m", "generalized actuator force on each degree of freedom"),
        StateField("cfrc_ext", (nb, 6), "N·m|N", "external (contact) wrench on each body (MuJoCo cfrc_ext: torque, force)"),
    )


def humanoid_obs_layout(model) -> tuple[tuple[str, int], ...]:
    nb = model.nbody
    return (
        ("qpos[2:] (torso z, torso quaternion, 17 joint angles)", model.nq - 2),
        (f"qvel ({model.nv})", model.nv),
        (f"cinert[1:] ({nb - 1} bodies x 10)", (nb - 1) * 10),
        (f"cvel[1:] ({nb - 1} bodies x 6)", (nb - 1) * 6),
        (f"qfrc_actuator[6:] ({model.nv - 6} joints)", model.nv - 6),
        (f"cfrc_ext[1:] ({nb - 1} bodies x 6)", (nb - 1) * 6),
    )


TASK = TaskSpec(
    name="humanoid-run",
    version=0,
    description=(
        "A 3D humanoid robot (torso, abdomen, pelvis, two legs with hips, knees and "
        "feet, two arms with shoulders and elbows; 17 torque-driven joints, the torso moves "
        "freely) stands on flat ground. The goal is to run forward, in the +x direction, as "
        "fast as possible while staying on its feet: the episode ends when the torso leaves the "
        "height band 1.0 m to 2.0 m. Wasted actuator effort and hard contacts are undesirable."
    ),
    build_model=lambda: load_gymnasium_model(XML),
    frame_skip=FRAME_SKIP,
    episode_length=1000,
    state_fields=common_state_fields(_M, _M.nu) + (
        StateField("x_position", (), "m", "x coordinate of the torso (free joint qpos[0])"),
        StateField("y_position", (), "m", "y coordinate of the torso (free joint qpos[1])"),
        StateField("x_velocity", (), "m/s", "forward velocity of the whole-body center of mass over the last step"),
        StateField("y_velocity", (), "m/s", "sideways velocity of the whole-body center of mass over the last step"),
        StateField("torso_height", (), "m", "z coordinate of the torso (free joint qpos[2])"),
        StateField("is_healthy", (), "0|1", "1 while the torso height is strictly within (1.0, 2.0) m, else 0"),
        StateField("contact_force_sq", (), "(N·m|N)²", "sum over all bodies of the squared external (contact) wrench cfrc_ext"),
    ) + humanoid_state_fields(_M),
    sim_fields=SIM_FIELDS,
    pre_step=pre_step,
    compute_state=compute_state,
    observe=observe,
    obs_layout=humanoid_obs_layout(_M),
    reward_terms=(
        RewardTerm("forward", 1.25, lambda s, a: s.x_velocity),
        RewardTerm("ctrl", -0.1, ctrl_cost),
        RewardTerm("contact", -CONTACT_COST_WEIGHT, contact_cost),
        RewardTerm("survive", 5.0, lambda s, a: s.is_healthy),
    ),
    success=lambda s: s.x_velocity >= SUCCESS_SPEED,
    fitness=lambda s: s.x_velocity,
    success_threshold=SUCCESS_SPEED,
    terminated=lambda s: s.is_healthy < 0.5,
    sample_reset=uniform_noise_reset(1e-2, qvel_normal=False),
    action_low=_LOW,
    action_high=_HIGH,
    gymnasium_twin="Humanoid-v5",
    notes=f"fitness: forward velocity of the center of mass (m/s), averaged over the episode; "
          f"success: fitness >= {SUCCESS_SPEED:g} m/s",
)
