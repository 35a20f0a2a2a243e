"""Behaviour cloning warm start: fit a PPO actor to a dataset's (observation, action) pairs.

    stats = bc_pretrain(policy.actor, policy.normalizer, "demos/reach-expert.h5", epochs=50, lr=1e-3)

The actor maps normalized observations to action means (robreward.rl.ppo.ActorCritic.actor);
the normalizer (EmpiricalNormalization or Identity) is first fitted to the demo observations,
so the warm-started policy sees inputs on the scale it was trained on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robreward.demos.format import DemoDataset


def load_pairs(dataset_path, task=None, success_only: bool = False, force: bool = False):
    """(obs [M, obs_dim], actions [M, act_dim]) float32 of every step (of successful episodes only
    if asked); obs[t] is the observation the action at step t was chosen from."""
    with DemoDataset(dataset_path, task=task, force=force) as ds:
        obs, act = [], []
        for i in range(len(ds)):
            if success_only and not ds.episode_attrs(i)["success"]:
                continue
            ep = ds.episode(i, fields=("obs", "actions"))
            obs.append(ep["obs"][:-1])
            act.append(ep["actions"])
    if not obs:
        raise ValueError(f"{dataset_path}: no episodes to clone" + (" (none succeeded)" if success_only else ""))
    return torch.from_numpy(np.concatenate(obs).astype(np.float32)), torch.from_numpy(np.concatenate(act).astype(np.float32))


def bc_pretrain(actor: nn.Module, normalizer: nn.Module | None, dataset_path, epochs: int = 50, lr: float = 1e-3,
                batch_size: int = 256, task=None, success_only: bool = False, update_normalizer: bool = True,
                seed: int = 0, force: bool = False) -> dict:
    """Fit `actor` by MSE between actor(normalizer(obs)) and the demo actions, in place.

    task: check the dataset against this task (name or TaskSpec) first (None: skip the check).
    Returns {"samples", "epochs", "loss_first", "loss_last", "losses"} (mean MSE per epoch).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    obs, actions = load_pairs(dataset_path, task=task, success_only=success_only, force=force)
    param = next(actor.parameters())
    device = param.device
    in_dim = next((m.in_features for m in actor.modules() if isinstance(m, nn.Linear)), obs.shape[1])
    if in_dim != obs.shape[1]:
        raise ValueError(f"{dataset_path}: observations have {obs.shape[1]} dims, the actor takes {in_dim}")
    obs, actions = obs.to(device), actions.to(device)
    normalizer = normalizer if normalizer is not None else nn.Identity()
    if update_normalizer and hasattr(normalizer, "update"):
        normalizer.update(obs)
    with torch.no_grad():
        inputs = normalizer(obs)
    optimizer = torch.optim.Adam(actor.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(obs)
    was_training = actor.training
    actor.train()
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = perm[start:start + batch_size]
            loss = ((actor(inputs[rows]) - actions[rows]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        losses.append(total / n)
    actor.train(was_training)
    with torch.no_grad():
        final = float(((actor(inputs) - actions) ** 2).mean())
    return {"samples": n, "epochs": epochs, "loss_first": losses[0] if losses else final,
            "loss_last": final, "losses": losses}
