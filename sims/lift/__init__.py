"""lift: grasp a cube from the table and hold it above a height."""

from __future__ import annotations

import functools

import numpy as np
import torch

from robreward.envs.spec import ResetSample, RewardTerm, StateField, TaskSpec, common_state_fields
from sims import _arm

LIFT_Z = 0.10  # m, cube centre height for success (8 cm above its resting height)
CUBE_XY_LOW, CUBE_XY_HIGH = (-0.12, -0.08), (0.12, 0.12)

_model = functools.lru_cache(maxsize=1)(lambda: _arm.build(cube=True))
_M = _model()
_CUBE_BODY = _M.body("cube").id


def compute_state(raw, pre, ctx):
    s = _arm.arm_state(raw)
    cube_pos = raw["xpos"][:, _CUBE_BODY]
    s.update(
        cube_pos=cube_pos,
        cube_quat=raw["xquat"][:, _CUBE_BODY],
        ee_to_cube=cube_pos - s["ee_pos"],
        cube_height=cube_pos[:, 2] - _arm.CUBE_HALF,
        grasped=_arm.grasped(s["ee_pos"], cube_pos, s["finger_force"]).to(cube_pos.dtype),
    )
    return s


def observe(s):
    return torch.cat([s.ee_pos, s.ee_vel, s.gripper_opening[:, None], s.cube_pos, s.ee_to_cube,
                      s.grasped[:, None]], dim=-1)


def success(s):
    return (s.cube_pos[:, 2] >= LIFT_Z) & (s.grasped > 0.5)


def sample_reset(rng: np.random.Generator, n: int, ctx) -> ResetSample:
    qpos = np.zeros((n, _M.nq))
    qpos[:, 0:5] = _arm.arm_reset_qpos(rng, n)
    qpos[:, 5:7] = rng.uniform(CUBE_XY_LOW, CUBE_XY_HIGH, size=(n, 2))
    qpos[:, 7] = _arm.CUBE_HALF
    yaw = rng.uniform(-0.25, 0.25, size=n)
    qpos[:, 8], qpos[:, 11] = np.cos(yaw / 2), np.sin(yaw / 2)
    return ResetSample(qpos=qpos, qvel=np.zeros((n, _M.nv)))


def expert(s):
    """Hover over the cube with the fingers open, descend, close, lift once both fingers hold."""
    ee, cube = s.ee_pos, s.cube_pos
    xy_err = torch.linalg.norm(cube[:, :2] - ee[:, :2], dim=-1)
    held = s.grasped > 0.5
    aligned = xy_err < 0.012
    low = ee[:, 2] < cube[:, 2] + 0.012
    hover = torch.cat([cube[:, :2], torch.full_like(cube[:, 2:], 0.08)], dim=-1)
    # far off in xy and down low: go straight up first, so the fingers do not sweep the cube
    rise = torch.cat([ee[:, :2], torch.full_like(ee[:, 2:], 0.08)], dim=-1)
    target = torch.where(((xy_err > 0.03) & (ee[:, 2] < 0.06))[:, None], rise, hover)
    target = torch.where(aligned[:, None], cube, target)
    lift = torch.cat([ee[:, :2], torch.full_like(ee[:, 2:], LIFT_Z + 0.04)], dim=-1)
    target = torch.where(held[:, None], lift, target)
    close = held | (aligned & low)
    # hold still while the fingers close (they need a few steps to reach the cube)
    move = _arm.move_toward(ee, target) * (~(close & ~held))[:, None]
    grip = torch.where(close, 1.0, -1.0).to(ee.dtype)[:, None]
    return torch.cat([move, grip], dim=-1).float()


TASK = TaskSpec(
    name="lift",
    version=0,
    description=(
        "A table with a single red 4 cm cube lying on it at a random position. Above the table a "
        "position-controlled gantry arm carries a two-finger parallel gripper whose fingers close "
        "along the y axis. The goal is to pick the cube up with the gripper and hold it "
        f"so that its centre is at least {LIFT_Z:g} m above the table top (the cube rests at "
        f"{_arm.CUBE_HALF:g} m), still held between the fingers."
        + _arm.ACTION_TEXT
    ),
    build_model=_model,
    frame_skip=_arm.FRAME_SKIP,
    episode_length=100,
    state_fields=common_state_fields(_M, 4) + _arm.ARM_FIELDS + (
        StateField("cube_pos", (3,), "m", "centre of the cube in the world frame"),
        StateField("cube_quat", (4,), "-", "orientation of the cube (w, x, y, z)"),
        StateField("ee_to_cube", (3,), "m", "cube_pos - ee_pos"),
        StateField("cube_height", (), "m", "height of the cube's centre above its resting height"),
        StateField("grasped", (), "0|1", "1 when both fingers press on the cube and it lies between them"),
    ),
    sim_fields=("xpos", "xquat", "sensordata"),
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("ee_pos", 3), ("ee_vel", 3), ("gripper_opening", 1), ("cube_pos", 3), ("ee_to_cube", 3),
                ("grasped", 1)),
    reward_terms=(
        RewardTerm("reach", 1.0, lambda s, a: _arm.closeness(torch.linalg.norm(s.ee_to_cube, dim=-1), 0.1)),
        RewardTerm("grasp", 1.0, lambda s, a: s.grasped),
        RewardTerm("lift", 2.0, lambda s, a: s.grasped * torch.clamp(s.cube_height / (LIFT_Z - _arm.CUBE_HALF), 0.0, 1.0)),
        RewardTerm("success", 2.0, lambda s, a: success(s).float()),
    ),
    success=success,
    fitness=lambda s: success(s).float(),
    terminated=lambda s: s.cube_pos[:, 2] < -0.05,  # knocked off the table
    sample_reset=sample_reset,
    action_low=(-1.0,) * 4,
    action_high=(1.0,) * 4,
    action_to_ctrl=_arm.action_to_ctrl,
    expert=expert,
    camera=_arm.CAMERA,
    notes="success: cube centre >= 0.10 m while grasped; fitness: success per step",
)
