"""drawer-open: pull a drawer out of its cabinet by the handle."""

from __future__ import annotations

import functools

import numpy as np
import torch

from robreward.envs.spec import ResetSample, RewardTerm, StateField, TaskSpec, common_state_fields
from sims import _arm

OPEN_DIST = 0.10  # m, success when the drawer is out this far (of DRAWER_OPEN_MAX)
CABINET_LOW, CABINET_HIGH = (-0.1, 0.08), (0.1, 0.16)  # xy of the cabinet (mocap body)

_model = functools.lru_cache(maxsize=1)(lambda: _arm.build(drawer=True))
_M = _model()
_HANDLE_SITE = _M.site("handle").id
_DRAWER_QPOS = int(_M.jnt_qposadr[_M.joint("drawer").id])


def compute_state(raw, pre, ctx):
    s = _arm.arm_state(raw)
    handle = raw["site_xpos"][:, _HANDLE_SITE]
    s.update(handle_pos=handle, ee_to_handle=handle - s["ee_pos"], drawer_pos=raw["qpos"][:, _DRAWER_QPOS])
    return s


def observe(s):
    return torch.cat([s.ee_pos, s.ee_vel, s.gripper_opening[:, None], s.handle_pos, s.ee_to_handle,
                      s.drawer_pos[:, None]], dim=-1)


def success(s):
    return s.drawer_pos >= OPEN_DIST


def sample_reset(rng: np.random.Generator, n: int, ctx) -> ResetSample:
    qpos = np.zeros((n, _M.nq))
    qpos[:, 0:5] = _arm.arm_reset_qpos(rng, n)
    cabinet = np.zeros((n, 1, 3))
    cabinet[:, 0, :2] = rng.uniform(CABINET_LOW, CABINET_HIGH, size=(n, 2))
    return ResetSample(qpos=qpos, qvel=np.zeros((n, _M.nv)), mocap_pos=cabinet)


def expert(s):
    """Lower the closed fingers into the gap between handle bar and drawer front, then pull."""
    ee, handle = s.ee_pos, s.handle_pos
    rel = ee - handle
    slot = handle + torch.tensor([0.0, _arm.HANDLE_GAP / 2 + 0.004, 0.0], dtype=ee.dtype, device=ee.device)
    in_slot = (rel[:, 0].abs() < 0.03) & (rel[:, 1] > 0.012) & (rel[:, 1] < _arm.HANDLE_GAP) & (rel[:, 2] < 0.02)
    above = (torch.linalg.norm(ee[:, :2] - slot[:, :2], dim=-1) < 0.01)
    high = torch.cat([slot[:, :2], torch.full_like(ee[:, 2:], 0.14)], dim=-1)
    rise = torch.cat([ee[:, :2], torch.full_like(ee[:, 2:], 0.14)], dim=-1)
    target = torch.where(((~above) & (ee[:, 2] < 0.11))[:, None], rise, high)
    target = torch.where(above[:, None], slot, target)
    move = _arm.move_toward(ee, target)
    pull = torch.stack([_arm.move_toward(ee[:, 0], handle[:, 0]), torch.full_like(ee[:, 0], -1.0),
                        _arm.move_toward(ee[:, 2], handle[:, 2])], dim=-1)
    pull[:, 1] = torch.where(s.drawer_pos > _arm.DRAWER_OPEN_MAX - 0.02, 0.0, -1.0)
    move = torch.where(in_slot[:, None], pull, move)
    return torch.cat([move, torch.ones_like(move[:, :1])], dim=-1).float()


TASK = TaskSpec(
    name="drawer-open",
    version=0,
    description=(
        "A table with a small wooden cabinet at a random position; its drawer is closed and "
        "slides out along -y (towards the camera). The drawer front has a horizontal bar handle "
        "held out from the front on two posts. Above the table a position-controlled gantry arm "
        "carries a two-finger parallel gripper whose fingers close along the y axis. The goal "
        f"is to pull the drawer open by at least {OPEN_DIST:g} m (it opens up to "
        f"{_arm.DRAWER_OPEN_MAX:g} m)."
        + _arm.ACTION_TEXT
    ),
    build_model=_model,
    frame_skip=_arm.FRAME_SKIP,
    episode_length=100,
    state_fields=common_state_fields(_M, 4) + _arm.ARM_FIELDS + (
        StateField("handle_pos", (3,), "m", "centre of the handle bar in the world frame"),
        StateField("ee_to_handle", (3,), "m", "handle_pos - ee_pos"),
        StateField("drawer_pos", (), "m", f"how far the drawer is pulled out (0 closed, {_arm.DRAWER_OPEN_MAX:g} fully open)"),
    ),
    sim_fields=("site_xpos", "sensordata"),
    compute_state=compute_state,
    observe=observe,
    obs_layout=(("ee_pos", 3), ("ee_vel", 3), ("gripper_opening", 1), ("handle_pos", 3), ("ee_to_handle", 3),
                ("drawer_pos", 1)),
    reward_terms=(
        RewardTerm("reach", 1.0, lambda s, a: _arm.closeness(torch.linalg.norm(s.ee_to_handle, dim=-1), 0.1)),
        RewardTerm("open", 2.0, lambda s, a: torch.clamp(s.drawer_pos / OPEN_DIST, 0.0, 1.0)),
        RewardTerm("success", 2.0, lambda s, a: success(s).float()),
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
    notes="success: drawer pulled out >= 0.10 m; fitness: success per step",
)
