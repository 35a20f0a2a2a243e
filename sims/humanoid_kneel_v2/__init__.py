"""humanoid-kneel-v2: humanoid-kneel-v1's upright kneel, held, with v0's fall termination back, so
that PPO's hand-reward humanoid explores the kneel instead of lying on its knees.

v1 ended no episode early, so that kneeling for a moment and then falling could not pass its
"held on half of the episode's steps" test. That choice broke its hand reward: a humanoid that
collapses with its knees on the floor keeps collecting knees_low (about 0.8 a step lying down)
for the rest of the 400 steps, and PPO's hand-reward policies settled there (success 0.00 on 3
seeds at 500k steps, docs/baselines.md). The draft of v1 that still ended the episode on a fall
learned the upright kneel with the same reward terms.

v2 keeps both: a fall (torso below 0.4 m, v0's test) ends the episode, and the episode's fitness
is the number of steps kneeling upright divided by the nominal 400 steps
(`fitness_over_episode_length`), so the steps a fall cuts off count as steps out of the pose:
kneeling for 29 steps and falling scores 29/400, not 29/79. Success, the pose and the hand
reward's terms are v1's. Body, observation and reset are v0's.
"""

from __future__ import annotations

import dataclasses

from sims.humanoid_kneel import FALLEN_HEIGHT
from sims.humanoid_kneel_v1 import HOLD_SHARE, KNEE_MAX_HEIGHT, TORSO_HEIGHT_RANGE, UPRIGHT_MIN
from sims.humanoid_kneel_v1 import TASK as V1


def fallen(state):
    return state.torso_height < FALLEN_HEIGHT


TASK = dataclasses.replace(
    V1,
    name="humanoid-kneel-v2",
    version=2,
    description=(
        "A 3D humanoid robot (torso, abdomen, pelvis, two legs with hips, knees and feet, two "
        "arms with shoulders and elbows; 17 torque-driven joints, the torso moves freely) starts "
        "standing upright on flat ground. The goal is to kneel upright and stay there: both knees "
        "on the ground, hips extended so that the upper body stands straight above the knees "
        "(not sitting back on the heels, not leaning forward), as a person kneels in church, for "
        f"most of the {V1.episode_length}-step episode. Sitting, crouching on the feet, kneeling "
        f"bent over or lying down do not count. The episode ends early when the torso drops below "
        f"{FALLEN_HEIGHT:g} m (a fall); the steps a fall cuts off count as steps not kneeling."
    ),
    terminated=fallen,
    fitness_over_episode_length=True,
    notes=f"fitness: 1 on each step kneeling upright, else 0; the episode's fitness is their sum over the nominal "
          f"{V1.episode_length} steps (a fall ends the episode and its missing steps count as 0); kneeling "
          f"upright: both knees below {KNEE_MAX_HEIGHT} m, torso upright (> {UPRIGHT_MIN}) at "
          f"{TORSO_HEIGHT_RANGE[0]}-{TORSO_HEIGHT_RANGE[1]} m; success: kneeling upright on at least "
          f"{HOLD_SHARE:g} of the {V1.episode_length} steps. v1: the same test, no termination (its hand "
          f"reward let the humanoid lie on its knees); v0: knees below 0.2 m, upright > 0.7 at 0.65-1.15 m, "
          "at any step",
)
