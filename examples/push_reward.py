"""An example reward program for `push` (what an LLM or a user writes): only the TaskState
fields that `robreward tasks show push` documents, torch, math; returns (total, terms).

    robreward check-reward --task push examples/push_reward.py
    robreward train --task push --reward examples/push_reward.py --steps 1000000 --out runs/push-mine
"""

import torch


def compute_reward(state, action):
    # get the gripper to the cube, then the cube to the goal; a bonus once it is there
    reach = 1.0 - torch.tanh(torch.linalg.norm(state.ee_to_cube, dim=-1) / 0.1)
    dist = torch.linalg.norm(state.cube_to_goal[:, :2], dim=-1)
    place = 2.0 * (1.0 - torch.tanh(dist / 0.1))
    bonus = 2.0 * (dist < 0.05).float()
    effort = -0.01 * (action ** 2).sum(-1)
    terms = {"reach": reach, "place": place, "bonus": bonus, "effort": effort}
    return reach + place + bonus + effort, terms
