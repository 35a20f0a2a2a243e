"""The one rollout collector: num_steps batched env steps of K policies (one stacked network) into
RolloutStorage, with time-out bootstrapping and GAE; every trainer path collects through it."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from robreward.rl.ppo import BatchedActorCritic, RewardNormalizer
from robreward.rl.storage import RolloutStorage, bootstrap_truncated

Tensor = torch.Tensor


class Timers:
    """Wall-clock seconds per stage (policy, env_step, update, overhead), for benchmarks/generate.py."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[key] = self.seconds.get(key, 0.0) + now - start
        return now


@torch.no_grad()
def collect_rollout(env, net: BatchedActorCritic, generators: Sequence[torch.Generator], storage: RolloutStorage,
                    obs: Tensor, track: Callable, reward_scaler: RewardNormalizer | None, gamma: float, lam: float,
                    timers: Timers) -> Tensor:
    """Fill ``storage`` with storage.num_steps steps of all K x M worlds from ``obs`` [K*M, obs_dim]
    (the env's current observation) and compute its returns; the observation after the last step.

    track(reward, info, done) sees every step's raw reward (episode statistics); PPO sees it scaled
    (reward_scaler) and, where a world hit its time limit, bootstrapped from V(final_obs)."""
    num, per = net.num, env.num_envs // net.num
    mark = time.perf_counter()
    for _ in range(storage.num_steps):
        obs_norm = net.normalize(obs.view(num, per, -1), update=True)
        action, log_prob, value, mean, std = net.act(obs_norm, generators)
        mark = timers.add("policy", mark)
        obs, reward, terminated, truncated, info = env.step(action.view(num * per, -1))  # checks the reward
        mark = timers.add("env_step", mark)
        done = terminated | truncated
        track(reward, info, done)
        if reward_scaler is not None:
            reward = reward_scaler(reward, done)
        if bool(truncated.any()):  # time-out: bootstrap from the true last observation
            final_values = net.value(net.normalize(info["final_obs"].view(num, per, -1))).reshape(-1)
            reward = bootstrap_truncated(reward, truncated, final_values, gamma)
        storage.add(obs_norm, action, log_prob, value, reward, done, mean, std)
        mark = timers.add("overhead", mark)
    storage.compute_returns(net.value(net.normalize(obs.view(num, per, -1))), gamma, lam)
    timers.add("overhead", mark)
    return obs


__all__ = ["Timers", "collect_rollout"]
