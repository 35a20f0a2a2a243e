"""A task folder (docs/howto-add-a-task.md): `reach` with its goals high above the table.

A folder with a task.py defining TASK = TaskSpec(...) works wherever a task name does:

    robreward tasks show examples/tasks/reach-high
    robreward train --task examples/tasks/reach-high --reward hand --out runs/reach-high

This one starts from the suite's reach task and changes only its name, description and reset
distribution; a task of your own can build everything (scene XML, state fields, hand reward,
success) the way sims/reach/__init__.py does.
"""

import dataclasses

import numpy as np

from robreward.envs.registry import get_task
from robreward.envs.spec import ResetSample

REACH = get_task("reach")
GOAL_LOW, GOAL_HIGH = (-0.15, -0.15, 0.20), (0.15, 0.15, 0.30)  # reach draws z from 0.05 to 0.25


def sample_reset(rng: np.random.Generator, n: int, ctx) -> ResetSample:
    start = REACH.sample_reset(rng, n, ctx)  # the arm's start pose as reach draws it
    goal = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 3))
    return dataclasses.replace(start, mocap_pos=goal[:, None, :])


TASK = dataclasses.replace(
    REACH,
    name="reach-high",
    description=REACH.description.replace("at a random place in the space above the table",
                                          "at a random place 20 to 30 cm above the table"),
    sample_reset=sample_reset,
    notes="reach with goals 20-30 cm above the table (examples/tasks/reach-high)",
)
