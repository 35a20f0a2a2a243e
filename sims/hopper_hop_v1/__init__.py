"""hopper-hop-v1: hopper-hop (v0, Gymnasium's Hopper-v5) with a success test the sparse reward
does not solve by itself.

v0's success (mean forward velocity >= 1 m/s) is met by any policy that dives forward: its
fitness, the forward velocity, is a dense reward, so "sparse" PPO solved v0 as well as the hand
reward did (policies/hopper-hop: success 1.00 for both). v1 asks the hopper to cover a distance
instead, as the sparse MuJoCo tasks of the exploration literature do (VIME's SparseHalfCheetah:
reward only beyond 5 m): success is reaching x >= 5 m from the start within the 1000-step (8 s)
episode, and the fitness, hence the sparse reward, is 1 on every step spent beyond 5 m, else 0.
A random policy falls within ~20 steps after moving at most 0.3 m (measured over 100 episodes,
docs/baselines.md), so sparse PPO never sees a reward; Gymnasium's hand reward (forward velocity
+ 1 per healthy step) learns to hop there. Body, observation, hand reward, termination and reset
are v0's.
"""

from __future__ import annotations

from sims._locomotion import distance_version
from sims.hopper_hop import TASK as V0

GOAL_DISTANCE = 5.0  # m along +x from the start (the hopper starts at x = 0)

TASK = distance_version(
    V0, "hopper-hop-v1", 1, GOAL_DISTANCE,
    description=(
        "A planar one-legged hopper robot (a torso on a single leg made of thigh, leg and foot, "
        "with hinge joints at hip, knee and ankle driven by torque motors) stands on flat ground "
        f"at x = 0. The goal is to hop forward, in the +x direction, to at least {GOAL_DISTANCE:g} m "
        "from the start and keep going, while staying upright: the episode ends when the torso "
        "drops below 0.7 m, tilts more than 0.2 rad, or any joint position or velocity leaves "
        "[-100, 100]."
    ),
    v0_test="success was mean forward velocity >= 1 m/s",
)
