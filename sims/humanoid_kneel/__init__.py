"""humanoid-kneel: the VLM-RM task (Rocamonde et al. 2023, "a humanoid robot kneeling") on
Gymnasium's Humanoid-v5 body. No Gymnasium twin: success is a test on body geometry, and the
hand-engineered reward is a pose reward of named, bounded terms.

Geometry of the Humanoid-v5 body (measured, see tests/sims/test_locomotion.py): standing, the
torso origin is at 1.40 m and the knees (shin body origins) at 0.53 m; kneeling upright with
the shins flat on the floor, the torso is at about 0.93 m and the knees at about 0.08 m;
sitting on the floor with the legs stretched out puts the torso near 0.57 m.
"""

from __future__ import annotations

import functools

import torch

from robreward.envs.spec import RewardTerm, StateField, TaskSpec, common_state_fields
from sims._locomotion import ctrl_cost, ctrl_range, load_gymnasium_model, uniform_noise_reset
from sims.humanoid_run import humanoid_fields, humanoid_obs_layout, humanoid_state_fields
from sims.humanoid_run import observe as humanoid_observe

XML = "humanoid.xml"
FRAME_SKIP = 5
EPISODE_LENGTH = 400

# success: both knees near the floor, torso upright at kneeling height
KNEE_MAX_HEIGHT = 0.2  # m, shin body origins (the knee joints)
TORSO_HEIGHT_RANGE = (0.65, 1.15)  # m: kneeling upright or sitting back on the heels
UPRIGHT_MIN = 0.7  # torso z-axis . world z (cos of the tilt; 0.7 ~ 45 degrees)
FALLEN_HEIGHT = 0.4  # m: torso below this is lying on the floor -> terminated

# hand reward shaping constants
KNEE_SCALE = 0.2  # m
TORSO_TARGET = 0.9  # m
TORSO_SCALE = 0.2  # m

_model = functools.lru_cache(maxsize=1)(lambda: load_gymnasium_model(XML))
_M = _model()
_LOW, _HIGH = ctrl_range(_M)
TORSO, PELVIS = _M.body("torso").id, _M.body("pelvis").id
LEFT_SHIN, RIGHT_SHIN = _M.body("left_shin").id, _M.body("right_shin").id


def compute_state(raw, pre, ctx):
    xpos, xmat = raw["xpos"], raw["xmat"]
    return {
        "torso_height": raw["qpos"][:, 2],
        "torso_upright": xmat[:, TORSO, 8],
        "pelvis_height": xpos[:, PELVIS, 2],
        "left_knee_height": xpos[:, LEFT_SHIN, 2],
        "right_knee_height": xpos[:, RIGHT_SHIN, 2],
        **humanoid_fields(raw, ctx),
    }


def kneeling(state, knee_max_height: float, upright_min: float, torso_height_range: tuple[float, float]):
    """Both knees below knee_max_height, the torso's up-axis . world z above upright_min, the torso
    height inside the open range: the kneeling test of every version, by its constants."""
    knees = torch.maximum(state.left_knee_height, state.right_knee_height)
    return (
        (knees < knee_max_height)
        & (state.torso_upright > upright_min)
        & (state.torso_height > torso_height_range[0])
        & (state.torso_height < torso_height_range[1])
    )


def knees_low(state, scale: float):
    """The mean over both knees of exp(-(height / scale)^2): 1 with the knees on the floor. [0, 1]"""
    left = torch.exp(-(state.left_knee_height / scale) ** 2)
    right = torch.exp(-(state.right_knee_height / scale) ** 2)
    return 0.5 * (left + right)


def torso_height_near(state, target: float, scale: float):
    """exp(-((torso height - target) / scale)^2): 1 at the target height. [0, 1]"""
    return torch.exp(-((state.torso_height - target) / scale) ** 2)


def success(state):
    return kneeling(state, KNEE_MAX_HEIGHT, UPRIGHT_MIN, TORSO_HEIGHT_RANGE)


def _upright(state, action):
    return 0.5 * (1.0 + state.torso_upright)  # [0, 1]


def _knees_low(state, action):
    return knees_low(state, KNEE_SCALE)


def _torso_height(state, action):
    return torso_height_near(state, TORSO_TARGET, TORSO_SCALE)


TASK = TaskSpec(
    name="humanoid-kneel",
    version=0,
    description=(
        "A 3D humanoid robot (torso, abdomen, pelvis, two legs with hips, knees and feet, two "
        "arms with shoulders and elbows; 17 torque-driven joints, the torso moves freely) starts "
        "standing upright on flat ground. The goal is to kneel: bring both knees down onto the "
        "ground and stay there with the upper body upright, as a person kneels, rather than "
        "sitting, crouching on the feet or lying down. The episode ends if the robot falls "
        "over (torso below 0.4 m)."
    ),
    build_model=lambda: load_gymnasium_model(XML),
    frame_skip=FRAME_SKIP,
    episode_length=EPISODE_LENGTH,
    state_fields=common_state_fields(_M, _M.nu) + (
        StateField("torso_height", (), "m", "z coordinate of the torso (free joint qpos[2])"),
        StateField("torso_upright", (), "-", "world-z component of the torso's up axis: 1 upright, 0 horizontal, -1 upside down"),
        StateField("pelvis_height", (), "m", "z coordinate of the pelvis body origin"),
        StateField("left_knee_height", (), "m", "z coordinate of the left knee (left shin body origin)"),
        StateField("right_knee_height", (), "m", "z coordinate of the right knee (right shin body origin)"),
    ) + humanoid_state_fields(_M),
    sim_fields=("xpos", "xmat", "cinert", "cvel", "qfrc_actuator", "cfrc_ext"),
    compute_state=compute_state,
    observe=humanoid_observe,
    obs_layout=humanoid_obs_layout(_M),
    reward_terms=(
        RewardTerm("upright", 1.0, _upright),
        RewardTerm("knees_low", 1.0, _knees_low),
        RewardTerm("torso_height", 1.0, _torso_height),
        RewardTerm("ctrl", -0.1, ctrl_cost),
    ),
    success=success,
    fitness=lambda s: success(s).to(torch.float32),
    terminated=lambda s: s.torso_height < FALLEN_HEIGHT,
    sample_reset=uniform_noise_reset(1e-2, qvel_normal=False),
    action_low=_LOW,
    action_high=_HIGH,
    notes="fitness: 1 when kneeling (success) else 0, per step; success: both knees below "
          f"{KNEE_MAX_HEIGHT} m, torso upright (> {UPRIGHT_MIN}) at {TORSO_HEIGHT_RANGE[0]}-{TORSO_HEIGHT_RANGE[1]} m",
)
