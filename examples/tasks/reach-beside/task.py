"""A task folder: `reach` whose target is 15 cm beside the marker (+x), a variant for one-shot adaptation of a
progress model fitted on reach (docs/progress.md "One-shot adaptation"):

    robreward demos record --task examples/tasks/reach-beside --episodes 1 --seed 5 --out beside.h5
    robreward progress adapt runs/prog-reach --demos beside.h5 --task examples/tasks/reach-beside --out runs/prog-beside

Same observation as reach (the marker's position, not the target's): a reach progress model reads progress
as closeness to the marker, which is wrong here until it is adapted.
"""
import dataclasses

import torch

from robreward.envs.registry import get_task
from sims import _arm

REACH = get_task("reach")
OFFSET = torch.tensor([0.15, 0.0, 0.0])


def _target(s):
    return s.goal_pos + OFFSET.to(s.goal_pos.device)


def success(s):
    return torch.linalg.norm(_target(s) - s.ee_pos, dim=-1) < 0.05


def sample_reset(rng, n, ctx):
    start = REACH.sample_reset(rng, n, ctx)
    mocap = start.mocap_pos.copy()
    mocap[:, 0, 0] = rng.uniform(-0.15, 0.0, size=n)  # the target (marker + 15 cm) stays over the table
    return dataclasses.replace(start, mocap_pos=mocap)


def expert(s):
    move = _arm.move_toward(s.ee_pos, _target(s))
    return torch.cat([move, -torch.ones_like(move[:, :1])], dim=-1).float()


TASK = dataclasses.replace(REACH, name="reach-beside", sample_reset=sample_reset, success=success,
                           fitness=lambda s: success(s).float(), expert=expert,
                           reward_terms=(dataclasses.replace(REACH.reward_terms[1], fn=lambda s, a: success(s).float()),),
                           notes="reach with the goal 15 cm beside the marker")
