"""reach: move the gripper to a randomly placed goal point."""

from __future__ import annotations

import functools

import numpy as np
import torch

from robreward.envs.spec import ResetSample, RewardTerm, StateField, TaskSpec, common_state_fields
from sims import _arm

GOAL_LOW, GOAL_HIGH = (-0.15, -0.15, 0.05), (0.15, 0.15, 0.25)
SUCCESS_DIST = 0.05
MIN_START_DIST = 0.1  # goals closer than this to the start grip are redrawn

_model = functools.lru_cache(maxsize=1)(lambda: _arm.build(goal=True))
_M = _model()


def compute_state(raw, pre, ctx):
    s = _arm.arm_state(raw)
    goal = raw["mocap_pos"][:, 0]
    s.update(goal_pos=goal, ee_to_goal=goal - s["ee_pos"])
    return s


def observe(s):
    return torch.cat([s.ee_pos, s.ee_vel, s.gripper_opening[:, None], s.goal_pos, s.ee_to_goal], dim=-1)


def success(s):
    return torch.linalg.norm(s.ee_to_goal, dim=-1) < SUCCESS_DIST


def sample_reset(rng: np.random.Generator, n: int, ctx) -> ResetSample:
    qpos = _arm.arm_reset_qpos(rng, n)
    goal = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 3))
    near = np.linalg.norm(goal - qpos[:, 0:3], axis=-1) < MIN_START_DIST
    while near.any():  # rejection sampling: a fresh draw for the goals that start too close
        goal[near] = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(int(near.sum()), 3))
        near = np.linalg.norm(goal - qpos[:, 0:3], axis=-1) < MIN_START_DIST
    return ResetSample(qpos=qpos, qvel=np.zeros((n, _M.nv)), mocap_pos=goal[:, None, :])


def expert(s):
    move = _arm.move_toward(s.ee_pos, s.goal_pos)
    return torch.cat([move, -torch.ones_like(move[:, :1])], dim=-1).float()


TASK = TaskSpec(
    name="reach",
    version=0,
    description=(
        "A table with a position-controlled gantry arm above it that carries a two-finger "
        "parallel gripper. A small green sphere marks a goal point at a random place in the "
        "space above the table. The goal is to move the gripper's grip point (between the "
        "fingertips) to the goal point and keep it there."
        + _arm.ACTION_TEXT
    ),
    build_model=_model,
    frame_skip=_arm.FRAME_SKIP,
    episode_length=50,
    state_fields=common_state_fields(_M, 4) + _arm.ARM_FIELDS + (
        StateField("goal_pos", (3,), "m", "the goal point in the world frame"),
        StateField("ee_to_goal", (3,), "m", "goal_pos - ee_pos"),
    ),
    sim_fields=("mocap_pos", "sensordata"),
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("ee_pos", 3), ("ee_vel", 3), ("gripper_opening", 1), ("goal_pos", 3), ("ee_to_goal", 3)),
    reward_terms=(
        RewardTerm("reach", 1.0, lambda s, a: _arm.closeness(torch.linalg.norm(s.ee_to_goal, dim=-1), 0.2)),
        RewardTerm("success", 1.0, lambda s, a: success(s).float()),
    ),
    success=success,
    fitness=lambda s: success(s).float(),
    terminated=_arm.never,
    sample_reset=sample_reset,
    action_low=(-1.0,) * 4,
    action_high=(1.0,) * 4,
    action_to_ctrl=_arm.action_to_ctrl,
    expert=expert,
    camera=_arm.CAMERA,
    notes="success: grip point within 5 cm of the goal; fitness: success per step",
)
