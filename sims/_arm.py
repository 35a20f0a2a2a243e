"""The shared manipulation scene of reach, push, lift and drawer-open.

A table (top at z = 0) and a Cartesian gantry arm: three slide joints (x, y, z) carry a hand
with two parallel fingers that close along y. Every joint is driven by a position actuator, so
the policy commands where the hand should go, not torques ("MetaWorld's Sawyer, kept
simple"): a gantry has no inverse kinematics, no singularities and only 5 DoF, which keeps the
simulation fast. The hand body's origin is the grip point (the ``grip`` site, between the
fingertips), so qpos[0:3] is the end-effector position.

Action (4 floats in [-1, 1]): the end-effector displacement for this control step in units of
ACTION_SCALE (target = current position + ACTION_SCALE * a[:3], clipped to the workspace) and
the gripper command a[3] (-1 fully open ... +1 closed; a position target for the fingers).
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from robreward.envs.spec import StateField

TIMESTEP = 0.01
FRAME_SKIP = 4  # 25 Hz control: 0.04 s per action
ACTION_SCALE = 0.03  # m per control step at |a| = 1 (0.75 m/s)
FINGER_OPEN = 0.045  # m, travel of each finger from the centre line (9 cm gap fully open)
WORK_LOW = (-0.25, -0.30, 0.015)  # grip-point workspace; z_min puts the fingertips on the table
WORK_HIGH = (0.25, 0.25, 0.30)
HOME = (0.0, -0.12, 0.18)  # grip position at reset (before noise)
CUBE_HALF = 0.02
DRAWER_OPEN_MAX = 0.16  # m, slide range of the drawer
HANDLE_GAP = 0.05  # m, handle bar centre to drawer front face
CAMERA = "front"

# contype/conaffinity: 1 = ordinary solids; the cabinet (2) only stops the hand, so the drawer
# can slide through it without friction.
_HAND = 'contype="3" conaffinity="1"'

_ARM = f"""
    <body name="hand" pos="0 0 0" gravcomp="1">
      <joint name="x" type="slide" axis="1 0 0" range="{WORK_LOW[0]} {WORK_HIGH[0]}" damping="60"/>
      <joint name="y" type="slide" axis="0 1 0" range="{WORK_LOW[1]} {WORK_HIGH[1]}" damping="60"/>
      <joint name="z" type="slide" axis="0 0 1" range="{WORK_LOW[2] - 0.01} {WORK_HIGH[2]}" damping="60"/>
      <inertial pos="0 0 0.08" mass="0.8" diaginertia="0.01 0.01 0.01"/>
      <geom name="palm" type="box" pos="0 0 0.07" size="0.015 0.06 0.005" {_HAND} rgba=".25 .25 .3 1"/>
      <geom name="wrist" type="cylinder" pos="0 0 0.125" size="0.02 0.05" contype="0" conaffinity="0" rgba=".6 .6 .65 1"/>
      <site name="grip" pos="0 0 0" size="0.006" rgba="1 .5 0 .6" group="2"/>
      <body name="finger_l" pos="0 0 0" gravcomp="1">
        <joint name="finger_l" type="slide" axis="0 1 0" range="0 {FINGER_OPEN}" damping="5"/>
        <geom name="finger_l" type="box" pos="0 0.006 0.025" size="0.008 0.006 0.04" mass="0.05"
              {_HAND} condim="4" friction="1.5 0.01 0.001" rgba=".8 .8 .85 1"/>
        <site name="touch_l" type="box" pos="0 0.003 0.028" size="0.0085 0.0045 0.038" group="4"/>
      </body>
      <body name="finger_r" pos="0 0 0" gravcomp="1">
        <joint name="finger_r" type="slide" axis="0 -1 0" range="0 {FINGER_OPEN}" damping="5"/>
        <geom name="finger_r" type="box" pos="0 -0.006 0.025" size="0.008 0.006 0.04" mass="0.05"
              {_HAND} condim="4" friction="1.5 0.01 0.001" rgba=".8 .8 .85 1"/>
        <site name="touch_r" type="box" pos="0 -0.003 0.028" size="0.0085 0.0045 0.038" group="4"/>
      </body>
    </body>"""

_CUBE = f"""
    <body name="cube" pos="0 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.1" condim="4"
            friction="1 0.01 0.001" rgba=".85 .2 .2 1"/>
    </body>"""

_GOAL = """
    <body name="goal" mocap="true" pos="0 0 0.1">
      <site name="goal" type="sphere" size="0.02" rgba=".2 .8 .2 .5"/>
    </body>"""

# The cabinet rides on a mocap body so its position is part of the integration state (randomized
# per world without per-world model copies). The drawer slides out along -y, towards the camera.
_DRAWER = f"""
    <body name="cabinet" mocap="true" pos="0 0.1 0">
      <geom name="cabinet" type="box" pos="0 0.0035 0.045" size="0.11 0.0825 0.045" contype="0"
            conaffinity="2" rgba=".55 .4 .3 1"/>
      <body name="drawer" pos="0 0 0.045">
        <joint name="drawer" type="slide" axis="0 -1 0" range="0 {DRAWER_OPEN_MAX}" damping="3" frictionloss="0.5"/>
        <geom name="drawer_front" type="box" pos="0 -0.0775 0" size="0.1 0.0025 0.035" mass="0.2" rgba=".75 .6 .4 1"/>
        <geom name="drawer_box" type="box" pos="0 0.005 -0.03" size="0.095 0.08 0.005" mass="0.3" rgba=".7 .55 .35 1"/>
        <geom name="post_l" type="box" pos="-0.065 {-0.08 - HANDLE_GAP / 2} 0" size="0.006 {HANDLE_GAP / 2} 0.006" mass="0.01" rgba=".3 .3 .3 1"/>
        <geom name="post_r" type="box" pos="0.065 {-0.08 - HANDLE_GAP / 2} 0" size="0.006 {HANDLE_GAP / 2} 0.006" mass="0.01" rgba=".3 .3 .3 1"/>
        <geom name="handle" type="capsule" fromto="-0.07 {-0.08 - HANDLE_GAP} 0 0.07 {-0.08 - HANDLE_GAP} 0" size="0.008"
              mass="0.02" rgba=".3 .3 .3 1"/>
        <site name="handle" pos="0 {-0.08 - HANDLE_GAP} 0" size="0.005" rgba="1 1 0 .5" group="2"/>
      </body>
    </body>"""


def scene_xml(cube: bool = False, goal: bool = False, drawer: bool = False) -> str:
    """The MJCF of the scene with the chosen objects (the arm always comes first in qpos)."""
    bodies = _ARM + (_CUBE if cube else "") + (_DRAWER if drawer else "") + (_GOAL if goal else "")
    return f"""
<mujoco model="robreward-arm">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" iterations="20" ls_iterations="8"
          noslip_iterations="0" cone="pyramidal" impratio="10"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256" rgb1=".45 .5 .55" rgb2=".4 .45 .5"/>
    <material name="table" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0 -0.3 1.5" dir="0 0.2 -1" directional="true"/>
    <camera name="{CAMERA}" pos="0 -0.5 0.6" xyaxes="1 0 0 0 0.721 0.693"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="2 2 0.1" rgba=".3 .3 .3 1"/>
    <geom name="table" type="box" pos="0 0 -0.025" size="0.4 0.4 0.025" material="table" friction="0.6 0.005 0.0001"/>
    <geom name="table_leg" type="box" pos="0 0 -0.4" size="0.05 0.05 0.35" contype="0" conaffinity="0" rgba=".3 .25 .2 1"/>
    {bodies}
  </worldbody>
  <contact><exclude body1="finger_l" body2="finger_r"/></contact>
  <actuator>
    <position name="x" joint="x" kp="2000" ctrlrange="{WORK_LOW[0]} {WORK_HIGH[0]}" forcerange="-60 60"/>
    <position name="y" joint="y" kp="2000" ctrlrange="{WORK_LOW[1]} {WORK_HIGH[1]}" forcerange="-60 60"/>
    <position name="z" joint="z" kp="2000" ctrlrange="{WORK_LOW[2]} {WORK_HIGH[2]}" forcerange="-60 60"/>
    <position name="finger_l" joint="finger_l" kp="300" ctrlrange="0 {FINGER_OPEN}" forcerange="-15 15"/>
    <position name="finger_r" joint="finger_r" kp="300" ctrlrange="0 {FINGER_OPEN}" forcerange="-15 15"/>
  </actuator>
  <sensor>
    <touch name="touch_l" site="touch_l"/>
    <touch name="touch_r" site="touch_r"/>
  </sensor>
</mujoco>"""


def build(cube: bool = False, goal: bool = False, drawer: bool = False) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(scene_xml(cube=cube, goal=goal, drawer=drawer))


# -- shared task pieces ----------------------------------------------------------------------

def action_to_ctrl(action: torch.Tensor, raw, ctx) -> torch.Tensor:
    """Position targets: grip + ACTION_SCALE * a[:3] (clipped to the workspace); both fingers
    at FINGER_OPEN * (1 - a[3]) / 2 from the centre line."""
    a = action.to(raw["qpos"].dtype)
    low = torch.as_tensor(WORK_LOW, dtype=a.dtype, device=a.device)
    high = torch.as_tensor(WORK_HIGH, dtype=a.dtype, device=a.device)
    target = torch.clamp(raw["qpos"][:, 0:3] + ACTION_SCALE * a[:, 0:3], low, high)
    finger = FINGER_OPEN * (1.0 - a[:, 3:4]) / 2.0
    return torch.cat([target, finger, finger], dim=-1)


def arm_state(raw) -> dict[str, torch.Tensor]:
    """The arm's TaskState fields from raw qpos/qvel/sensordata (float64)."""
    qpos, qvel = raw["qpos"], raw["qvel"]
    return {
        "ee_pos": qpos[:, 0:3],
        "ee_vel": qvel[:, 0:3],
        "gripper_opening": qpos[:, 3] + qpos[:, 4],
        "finger_force": raw["sensordata"][:, 0:2],
    }


ARM_FIELDS = (
    StateField("ee_pos", (3,), "m", "grip point (between the fingertips) in the world frame; table top is z = 0"),
    StateField("ee_vel", (3,), "m/s", "velocity of the grip point"),
    StateField("gripper_opening", (), "m", f"gap between the two fingers (0 closed, {2 * FINGER_OPEN:g} fully open)"),
    StateField("finger_force", (2,), "N", "normal contact force on the inner side of the left and right finger"),
)


def arm_reset_qpos(rng: np.random.Generator, n: int, home=HOME, noise: float = 0.03) -> np.ndarray:
    """Grip positions near `home` (uniform noise per axis) with the fingers fully open: [n, 5]."""
    q = np.zeros((n, 5))
    q[:, 0:3] = np.asarray(home) + rng.uniform(-noise, noise, size=(n, 3))
    q[:, 3:5] = FINGER_OPEN
    return q


def grasped(ee_pos, obj_pos, finger_force, threshold: float = 0.5) -> torch.Tensor:
    """Both fingers press on something and the object sits between them."""
    near = torch.linalg.norm(obj_pos - ee_pos, dim=-1) < 0.03
    return near & (finger_force > threshold).all(-1)


def closeness(dist: torch.Tensor, scale: float) -> torch.Tensor:
    """1 at distance 0, falling smoothly to 0 (1 - tanh(d / scale)): bounded shaping."""
    return 1.0 - torch.tanh(dist / scale)


def move_toward(ee_pos: torch.Tensor, target: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Expert primitive: the displacement action that brings the grip to `target`."""
    return torch.clamp(gain * (target - ee_pos) / ACTION_SCALE, -1.0, 1.0)


def never(state) -> torch.Tensor:
    return torch.zeros(state.num_envs, dtype=torch.bool, device=state.qpos.device)


def ids(model: mujoco.MjModel, kind, *names: str) -> list[int]:
    return [mujoco.mj_name2id(model, kind, n) for n in names]


ACTION_TEXT = (
    f" Each action moves the grip point by up to {ACTION_SCALE * 100:g} cm along x, y and z (the first "
    "three numbers, position-controlled) and sets the gripper (the fourth: -1 fully open, +1 closed)."
    " The table top is at z = 0."
)
