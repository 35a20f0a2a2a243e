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
    """One PPO mini-batch, flattened over (step, world): every tensor has leading dim B."""

    obs: Tensor  # [B, obs_dim] normalized observations the policy saw
    actions: Tensor  # [B, act_dim] sampled (unclipped) actions
    log_probs: Tensor  # [B] log-prob of the actions under the rollout policy
    values: Tensor  # [B] V(obs) at rollout time
    advantages: Tensor  # [B] GAE advantages
    returns: Tensor  # [B] advantages + values (value targets)
    action_mean: Tensor  # [B, act_dim] rollout policy mean (for the KL of the adaptive lr)
    action_std: Tensor  # [B, act_dim] rollout policy std


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
    """Preallocated [num_steps, num_envs, ...] buffers on `device`; filled step by step."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int, device: torch.device):
        self.num_steps, self.num_envs = num_steps, num_envs
        shape = (num_steps, num_envs)
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
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.dones[t] = dones
        self.action_mean[t] = action_mean
        self.action_std[t] = action_std
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    def compute_returns(self, last_values: Tensor, gamma: float, lam: float) -> None:
        self.advantages, self.returns = compute_gae(self.rewards, self.values, self.dones, last_values, gamma, lam)

    def minibatches(self, num_minibatches: int, num_epochs: int, generator: torch.Generator | None = None
                    ) -> Iterator[Batch]:
        """num_epochs passes, each a fresh random split of all T*N transitions into num_minibatches."""
        total = self.num_steps * self.num_envs
        size = total // num_minibatches
        flat = Batch(
            self.obs.flatten(0, 1), self.actions.flatten(0, 1), self.log_probs.flatten(),
            self.values.flatten(), self.advantages.flatten(), self.returns.flatten(),
            self.action_mean.flatten(0, 1), self.action_std.flatten(0, 1),
        )
        for _ in range(num_epochs):
            order = torch.randperm(total, device=self.obs.device, generator=generator)
            for i in range(num_minibatches):
                idx = order[i * size:(i + 1) * size]
                yield Batch(*(x[idx] for x in flat))
