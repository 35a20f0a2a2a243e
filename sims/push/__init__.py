"""push: move a cube across the table into a goal region."""

from __future__ import annotations

import functools

import numpy as np
import torch

from robreward.envs.spec import ResetSample, RewardTerm, StateField, TaskSpec, common_state_fields
from sims import _arm

XY_LOW, XY_HIGH = (-0.12, -0.08), (0.12, 0.12)  # cube and goal centres
SUCCESS_DIST = 0.05
MIN_GOAL_DIST = 0.1  # goals closer than this to the cube are redrawn

_model = functools.lru_cache(maxsize=1)(lambda: _arm.build(cube=True, goal=True))
_M = _model()
_CUBE_BODY = _M.body("cube").id


def compute_state(raw, pre, ctx):
    s = _arm.arm_state(raw)
    cube = raw["xpos"][:, _CUBE_BODY]
    goal = raw["mocap_pos"][:, 0]
    s.update(cube_pos=cube, cube_quat=raw["xquat"][:, _CUBE_BODY], goal_pos=goal,
             ee_to_cube=cube - s["ee_pos"], cube_to_goal=goal - cube)
    return s


def observe(s):
    return torch.cat([s.ee_pos, s.ee_vel, s.gripper_opening[:, None], s.cube_pos, s.goal_pos, s.ee_to_cube,
                      s.cube_to_goal], dim=-1)


def success(s):
    return torch.linalg.norm(s.cube_to_goal, dim=-1) < SUCCESS_DIST


def sample_reset(rng: np.random.Generator, n: int, ctx) -> ResetSample:
    qpos = np.zeros((n, _M.nq))
    qpos[:, 0:5] = _arm.arm_reset_qpos(rng, n)
    cube = rng.uniform(XY_LOW, XY_HIGH, size=(n, 2))
    goal = rng.uniform(XY_LOW, XY_HIGH, size=(n, 2))
    near = np.linalg.norm(goal - cube, axis=-1) < MIN_GOAL_DIST
    while near.any():  # rejection sampling: redraw goals that start (almost) solved
        goal[near] = rng.uniform(XY_LOW, XY_HIGH, size=(int(near.sum()), 2))
        near = np.linalg.norm(goal - cube, axis=-1) < MIN_GOAL_DIST
    qpos[:, 5:7] = cube
    qpos[:, 7] = _arm.CUBE_HALF
    yaw = rng.uniform(-0.25, 0.25, size=n)
    qpos[:, 8], qpos[:, 11] = np.cos(yaw / 2), np.sin(yaw / 2)
    mocap = np.concatenate([goal, np.full((n, 1), _arm.CUBE_HALF)], axis=-1)[:, None, :]
    return ResetSample(qpos=qpos, qvel=np.zeros((n, _M.nv)), mocap_pos=mocap)


def _z(ee, v):
    return torch.full_like(ee[:, 2:], v)


def expert(s):
    """Closed fingers as a pusher: get behind the cube on the goal line, descend, push along the
    line while steering back onto it; hop over the cube when on the wrong side."""
    ee, cube, goal = s.ee_pos, s.cube_pos, s.goal_pos
    to_goal = goal[:, :2] - cube[:, :2]
    dist = torch.linalg.norm(to_goal, dim=-1, keepdim=True)
    d = to_goal / dist.clamp_min(1e-6)
    rel = ee[:, :2] - cube[:, :2]
    along = (rel * d).sum(-1, keepdim=True)
    lateral = rel - along * d
    lat = torch.linalg.norm(lateral, dim=-1)
    behind = cube[:, :2] - 0.05 * d
    at_behind = torch.linalg.norm(ee[:, :2] - behind, dim=-1) < 0.012
    ready = (along[:, 0] < -0.015) & (lat < 0.015) & (ee[:, 2] < 0.035)
    near = torch.linalg.norm(rel, dim=-1) < 0.06
    # not ready: over the behind point at a safe height (straight up first if low by the cube)
    target = torch.cat([behind, _z(ee, 0.07)], dim=-1)
    target = torch.where((near & (ee[:, 2] < 0.06) & ~at_behind)[:, None], torch.cat([ee[:, :2], _z(ee, 0.07)], -1), target)
    target = torch.where(at_behind[:, None], torch.cat([behind, _z(ee, 0.02)], -1), target)
    push_xy = ee[:, :2] + d * torch.clamp(0.6 * dist, max=0.02) - 1.5 * lateral  # slow near the goal
    target = torch.where(ready[:, None], torch.cat([push_xy, _z(ee, 0.02)], -1), target)
    # close enough: hold still rather than chase the last millimetres (and overshoot)
    target = torch.where((dist[:, 0] < 0.015)[:, None], ee, target)
    move = _arm.move_toward(ee, target)
    return torch.cat([move, torch.ones_like(move[:, :1])], dim=-1).float()


TASK = TaskSpec(
    name="push",
    version=0,
    description=(
        "A table with a red 4 cm cube lying on it and a green marker showing a goal spot on the "
        "table top, both at random positions. Above the table a position-controlled gantry arm "
        "carries a two-finger parallel gripper whose fingers close along the y axis. The goal is "
        "to move the cube across the table until its centre is within 5 cm of the goal spot."
        + _arm.ACTION_TEXT
    ),
    build_model=_model,
    frame_skip=_arm.FRAME_SKIP,
    episode_length=100,
    state_fields=common_state_fields(_M, 4) + _arm.ARM_FIELDS + (
        StateField("cube_pos", (3,), "m", "centre of the cube in the world frame"),
        StateField("cube_quat", (4,), "-", "orientation of the cube (w, x, y, z)"),
        StateField("goal_pos", (3,), "m", "goal spot (at the height of a resting cube's centre)"),
        StateField("ee_to_cube", (3,), "m", "cube_pos - ee_pos"),
        StateField("cube_to_goal", (3,), "m", "goal_pos - cube_pos"),
    ),
    sim_fields=("xpos", "xquat", "mocap_pos", "sensordata"),
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("ee_pos", 3), ("ee_vel", 3), ("gripper_opening", 1), ("cube_pos", 3), ("goal_pos", 3),
                ("ee_to_cube", 3), ("cube_to_goal", 3)),
    reward_terms=(
        RewardTerm("reach", 1.0, lambda s, a: _arm.closeness(torch.linalg.norm(s.ee_to_cube, dim=-1), 0.1)),
        RewardTerm("place", 2.0, lambda s, a: _arm.closeness(torch.linalg.norm(s.cube_to_goal, dim=-1), 0.1)),
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
    notes="success: cube centre within 5 cm of the goal spot; fitness: success per step",
)
