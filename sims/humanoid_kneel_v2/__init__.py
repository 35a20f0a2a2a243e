"""humanoid-kneel-v2: kneel upright and hold still, with v0's fall termination back, so that PPO's
hand-reward humanoid explores the kneel instead of lying on its knees, and the sparse reward still
does not find it by falling through the pose.

v1 ended no episode early, so that kneeling for a moment and then falling could not pass its "held
on half of the episode's steps" test. That broke its hand reward: a humanoid that collapses with its
knees on the floor keeps collecting knees_low (about 0.8 a step lying down) for the rest of the 400
steps, and PPO's hand-reward policies settled there (success 0.00 on 3 seeds at 500k steps).

v2, measured step by step (docs/baselines.md):
- A fall (torso below 0.4 m, v0's test) ends the episode again, and the episode's fitness is the
  number of steps in the pose over the nominal 400 steps (``fitness_over_episode_length``), so the
  steps a fall cuts off count as steps out of the pose: kneeling for 29 steps and falling scores
  29/400, not 29/79. With only that (a draft), the hand reward learned the kneel (success 1.00 on 3
  seeds at 500k steps) and so did the sparse reward (1.00 on 3 seeds): a body falling through the
  pose is paid, the frequent resets let it find the pose, and the task no longer told a hand reward
  from the sparse one.
- So the pose is also **still**: the torso moving at less than 0.5 m/s. A body falling through the
  kneel moves at about 2.2 m/s there (random actions: 11 steps in v1's pose in 25,600, the slowest
  1.9 m/s); the draft's kneeling policies hold it at 0.003-0.16 m/s (median; 90% under 0.32 m/s).
- A hand reward that paid knees_low only with the torso upright and no termination (another draft)
  did not explore at all: the humanoid fell before it learned to stand and then lay still (returns
  -2 to -17, fitness 0.000 on 3 seeds after 125k steps).

The hand reward's terms are v1's. Body, observation and reset are v0's.
"""

from __future__ import annotations

import dataclasses

import torch

from sims.humanoid_kneel import FALLEN_HEIGHT
from sims.humanoid_kneel import TASK as V0
from sims.humanoid_kneel_v1 import HOLD_SHARE, KNEE_MAX_HEIGHT, TORSO_HEIGHT_RANGE, UPRIGHT_MIN, kneeling_upright
from sims.humanoid_kneel_v1 import TASK as V1

STILL_SPEED = 0.5  # m/s: the torso's linear speed (free joint qvel[0:3]) below this is holding still


def kneeling_still(state):
    return kneeling_upright(state) & (torch.linalg.norm(state.qvel[:, :3], dim=-1) < STILL_SPEED)


TASK = dataclasses.replace(
    V1,
    name="humanoid-kneel-v2",
    version=2,
    description=(
        "A 3D humanoid robot (torso, abdomen, pelvis, two legs with hips, knees and feet, two "
        "arms with shoulders and elbows; 17 torque-driven joints, the torso moves freely) starts "
        "standing upright on flat ground. The goal is to kneel upright and hold still there: both "
        "knees on the ground, hips extended so that the upper body stands straight above the knees "
        "(not sitting back on the heels, not leaning forward), as a person kneels in church, the "
        f"torso not moving, for most of the {V1.episode_length}-step episode. Sitting, crouching on "
        "the feet, kneeling bent over, lying down or passing through the pose on the way down do "
        f"not count. The episode ends early when the torso drops below {FALLEN_HEIGHT:g} m (a fall); "
        "the steps a fall cuts off count as steps not kneeling."
    ),
    success=kneeling_still,
    fitness=lambda s: kneeling_still(s).to(torch.float32),
    terminated=V0.terminated,  # a fall: the torso below FALLEN_HEIGHT
    fitness_over_episode_length=True,
    notes=f"fitness: 1 on each step kneeling upright and still, else 0; the episode's fitness is their sum over the "
          f"nominal {V1.episode_length} steps (a fall ends the episode, its missing steps count as 0); kneeling "
          f"upright: both knees below {KNEE_MAX_HEIGHT} m, torso upright (> {UPRIGHT_MIN}) at "
          f"{TORSO_HEIGHT_RANGE[0]}-{TORSO_HEIGHT_RANGE[1]} m; still: the torso's speed below {STILL_SPEED:g} m/s; "
          f"success: kneeling upright and still on at least {HOLD_SHARE:g} of the {V1.episode_length} steps. v1: "
          "kneeling upright, no stillness, no termination; v0 (humanoid-kneel): knees below 0.2 m, upright > 0.7 "
          "at 0.65-1.15 m, at any step",
)
