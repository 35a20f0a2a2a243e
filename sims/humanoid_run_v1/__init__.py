"""humanoid-run-v1: humanoid-run (v0, Gymnasium's Humanoid-v5) with a success test that a fall does not pass.

v0's success (mean forward velocity of the centre of mass >= 1 m/s over the episode) is met by a body that
lunges forward and falls: the episode ends at the fall, and its few steps are fast ones. The sparse reward
learned exactly that (policies/humanoid-run: sparse success 0.82 where the hand reward's was 0.00). v1 asks
for a distance, as hopper-hop-v1 does: success is the torso reaching x >= 10 m from the start within the
1000-step (15 s) episode, which a fall cannot cover (docs/baselines.md has the measurements), and the fitness,
hence the sparse reward, is 1 on every step spent beyond it, else 0. Body, observation, hand reward,
termination (the torso leaving 1.0-2.0 m) and reset are v0's.
"""

from __future__ import annotations

from sims._locomotion import distance_version
from sims.humanoid_run import TASK as V0

GOAL_DISTANCE = 10.0  # m along +x from the start (the torso starts at x = 0, up to 1 cm of reset noise)

TASK = distance_version(
    V0, "humanoid-run-v1", 1, GOAL_DISTANCE,
    description=(
        "A 3D humanoid robot (torso, abdomen, pelvis, two legs with hips, knees and feet, two arms with "
        "shoulders and elbows; 17 torque-driven joints, the torso moves freely) stands on flat ground at "
        f"x = 0. The goal is to run forward, in the +x direction, to at least {GOAL_DISTANCE:g} m from the "
        "start and keep going, while staying on its feet: the episode ends when the torso leaves the height "
        "band 1.0 m to 2.0 m. Wasted actuator effort and hard contacts are undesirable."
    ),
    v0_test="success was mean forward velocity >= 1 m/s, which a forward fall meets",
)
