"""humanoid-kneel v0 and v1: the hand reward's terms, total and success pinned on recorded states.

The states are the reward-relevant fields of humanoid-kneel states recorded from a seeded random
rollout (standing at step 1, falling at steps 21, 36 and 60: seed 0, world 0, uniform actions),
the hand-built kneeling pose of tests/sims/test_locomotion.py, and one pose between v0's and v1's
success tests. The numbers were computed before v1 reused v0's helpers with its own constants:
the shared helpers must give both versions exactly the rewards they had (a published task's
reward never changes in place).
"""

from __future__ import annotations

import pytest
import torch

from robreward.envs.spec import TaskState
from robreward.rewards.base import HandReward
from sims.humanoid_kneel import TASK as V0
from sims.humanoid_kneel_v1 import TASK as V1

FIELDS = ("torso_height", "torso_upright", "left_knee_height", "right_knee_height")
STATES = [
    [1.3897, 0.9992, 0.5253, 0.52],  # standing (step 1)
    [1.0673, 0.9742, 0.2285, 0.348],  # going down (step 21)
    [0.8468, 0.9095, 0.051, 0.0759],  # knees down, leaning (step 36)
    [0.6886, 0.4437, 0.0709, 0.0547],  # fallen over (step 60)
    [0.93, 1.0, 0.0819, 0.0819],  # kneeling upright (the hand-built pose)
    [0.9, 0.96, 0.14, 0.1],  # kneeling near v1's limits
]

PINNED = {
    "humanoid-kneel": {
        "upright": [0.99959999, 0.98710001, 0.95475, 0.72184998, 1.0, 0.98000002],
        "knees_low": [0.0010842627, 0.15976065, 0.90145713, 0.90491629, 0.84561574, 0.69571364],
        "torso_height": [0.0024907924, 0.49671835, 0.93168932, 0.32717878, 0.9777512, 1.0],
        "ctrl": [-1.220047, -0.44945595, -0.064160384, -0.064160384, -0.44945595, -1.2200471],
        "total": [-0.21687198, 1.194123, 2.723736, 1.8897846, 2.3739109, 1.4556664],
        "success": [False, False, True, False, True, True],
    },
    "humanoid-kneel-v1": {
        "upright": [0.99993598, 0.93560308, 0.44086131, 3.6299519e-14, 1.0, 0.85214365],
        "knees_low": [5.3772628e-06, 0.051408459, 0.8324728, 0.83763248, 0.74221522, 0.52983338],
        "torso_height": [4.0134434e-09, 0.25260496, 0.34471986, 0.0010776253, 0.9607895, 0.77880067],
        "ctrl": [-1.220047, -0.44945595, -0.064160384, -0.064160384, -0.44945595, -1.2200471],
        "total": [-0.22010565, 0.79016054, 1.5538937, 0.77454972, 2.2535486, 0.94073069],
        "success": [False, False, False, False, True, True],
    },
}


def recorded():
    table = torch.tensor(STATES, dtype=torch.float32)
    state = TaskState({name: table[:, i] for i, name in enumerate(FIELDS)})
    action = torch.linspace(-1.0, 1.0, len(STATES) * V0.act_dim).reshape(len(STATES), V0.act_dim)
    return state, action


@pytest.mark.parametrize("spec", [V0, V1], ids=lambda spec: spec.name)
def test_hand_reward_terms_and_success_are_pinned(spec):
    state, action = recorded()
    total, terms = HandReward(spec)(state, action)
    pinned = PINNED[spec.name]
    assert list(terms) == ["upright", "knees_low", "torso_height", "ctrl"]
    for name, value in {**terms, "total": total}.items():
        torch.testing.assert_close(value, torch.tensor(pinned[name]), rtol=1e-6, atol=1e-9, msg=name)
    assert spec.success(state).tolist() == pinned["success"]
    assert spec.fitness(state).tolist() == [float(s) for s in pinned["success"]]


def test_v1_is_stricter_than_v0_on_the_recorded_states():
    state, _ = recorded()
    v0, v1 = V0.success(state), V1.success(state)
    assert bool((v1 <= v0).all()) and int(v0.sum()) > int(v1.sum())  # the leaning kneel passes v0 only
