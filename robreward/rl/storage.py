"""Rollout storage on the env's device, and GAE with bootstrapping on time-outs.

Truncation is not termination: a world cut by the time limit would have gone on, so the
runner adds ``gamma * V(final_obs)`` to the reward of that transition (rsl_rl style, but
from the true last observation in ``info["final_obs"]`` rather than the reset one) and the
trace is then cut like at any episode end. A terminated world gets no bootstrap.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch

Tensor = torch.Tensor


class Batch(NamedTuple):
    """One PPO mini-batch per candidate: every tensor has leading dims [K, B] (K candidates, B
    transitions of each, drawn over its (step, world) pairs)."""

    obs: Tensor  # [K, B, obs_dim] normalized observations the policy saw
    actions: Tensor  # [K, B, act_dim] sampled (unclipped) actions
    log_probs: Tensor  # [K, B] log-prob of the actions under the rollout policy
    values: Tensor  # [K, B] V(obs) at rollout time
    advantages: Tensor  # [K, B] GAE advantages
    returns: Tensor  # [K, B] advantages + values (value targets)
    action_mean: Tensor  # [K, B, act_dim] rollout policy mean (for the KL of the adaptive lr)
    action_std: Tensor  # [K, B, act_dim] rollout policy std


def bootstrap_truncated(rewards: Tensor, truncated: Tensor, final_values: Tensor, gamma: float) -> Tensor:
    """rewards [N] + gamma * V(final_obs) [N] where the world hit its time limit (truncated [N] bool)."""
    return rewards + gamma * final_values * truncated.to(rewards.dtype)


def compute_gae(rewards: Tensor, values: Tensor, dones: Tensor, last_values: Tensor, gamma: float,
                lam: float) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation over a rollout.

    rewards, values, dones: [T, N] (dones = terminated | truncated: the step ended an episode;
    time-out bootstraps must already be folded into rewards); last_values: [N] = V(obs after
    the last step). Returns (advantages [T, N], returns [T, N]).
    """
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    not_done = 1.0 - dones.to(rewards.dtype)
    gae = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(num_steps)):
        delta = rewards[t] + gamma * next_values * not_done[t] - values[t]
        gae = delta + gamma * lam * not_done[t] * gae
        advantages[t] = gae
        next_values = values[t]
    return advantages, advantages + values


class RolloutStorage:
    """Preallocated [num_steps, K, M, ...] buffers on `device` (K = groups candidates of M worlds
    each, num_envs = K * M), filled step by step with [num_envs, ...] or [K, M, ...] tensors."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int, device: torch.device,
                 groups: int = 1):
        if groups < 1 or num_envs % groups:
            raise ValueError(f"{num_envs} worlds do not split into {groups} equal groups")
        self.num_steps, self.num_envs, self.groups = num_steps, num_envs, groups
        shape = (num_steps, groups, num_envs // groups)
        self.obs = torch.zeros(*shape, obs_dim, device=device)
        self.actions = torch.zeros(*shape, act_dim, device=device)
        self.action_mean = torch.zeros(*shape, act_dim, device=device)
        self.action_std = torch.zeros(*shape, act_dim, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.advantages = torch.zeros(shape, device=device)
        self.returns = torch.zeros(shape, device=device)
        self.step = 0

    def add(self, obs, actions, log_probs, values, rewards, dones, action_mean, action_std) -> None:
        if self.step >= self.num_steps:
            raise RuntimeError("rollout storage is full: call clear() after the update")
        t = self.step
        for buffer, value in ((self.obs, obs), (self.actions, actions), (self.log_probs, log_probs),
                              (self.values, values), (self.rewards, rewards), (self.dones, dones),
                              (self.action_mean, action_mean), (self.action_std, action_std)):
            buffer[t] = value.view(buffer.shape[1:])
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    def compute_returns(self, last_values: Tensor, gamma: float, lam: float) -> None:
        """GAE over the rollout; last_values: [num_envs] or [K, M] = V(obs after the last step)."""
        advantages, returns = compute_gae(self.rewards.flatten(1), self.values.flatten(1), self.dones.flatten(1),
                                          last_values.reshape(-1), gamma, lam)
        self.advantages, self.returns = advantages.view_as(self.rewards), returns.view_as(self.rewards)

    def minibatches(self, num_minibatches: int, num_epochs: int, generators=None) -> Iterator[Batch]:
        """num_epochs passes, each a fresh random split of every candidate's T*M transitions into
        num_minibatches; candidate k's permutations come from generators[k] (default: torch's global RNG)."""
        num, total = self.groups, self.num_steps * (self.num_envs // self.groups)
        size = total // num_minibatches
        device = self.obs.device
        # [T, K, M, ...] -> [K, T*M, ...] in (step, world) order, every field side by side in one
        # [K, T*M, F] tensor: a mini-batch is then one gather, not one per field
        fields = [self.obs, self.actions, self.log_probs, self.values, self.advantages, self.returns,
                  self.action_mean, self.action_std]
        flat = [x.transpose(0, 1).reshape(num, total, -1) for x in fields]
        packed = torch.cat(flat, dim=2)
        widths = [x.shape[2] for x in flat]
        scalar = [x.dim() == 3 for x in fields]
        rows = torch.arange(num, device=device)[:, None]
        for _ in range(num_epochs):
            if generators is None:
                orders = torch.stack([torch.randperm(total, device=device) for _ in range(num)])
            else:
                orders = torch.stack([torch.randperm(total, generator=g, device=g.device) for g in generators])
            orders = orders.to(device)
            for i in range(num_minibatches):
                parts = packed[rows, orders[:, i * size:(i + 1) * size]].split(widths, dim=2)
                yield Batch(*(part.squeeze(-1) if flat else part for part, flat in zip(parts, scalar)))
