"""PEBBLE's unsupervised pre-training reward (Lee et al. 2021): a k-NN estimate of state entropy,
used by the preference loop before its first queries (``PrefsConfig.pretrain_steps``)."""

from __future__ import annotations

import math
from typing import Optional

import torch


class StateEntropyReward:
    """PEBBLE's unsupervised reward: a k-NN particle estimate of the state entropy.

    r(s) = log(1 + ||o(s) - o_k||), o = the task's observation and o_k its k-th nearest
    neighbour among the last ``buffer_size`` observations (this step's batch included), divided
    by a running std of r (PEBBLE normalizes the intrinsic reward the same way). Stateful: each
    call appends its batch to the buffer. Satisfies the Reward protocol.
    """

    def __init__(self, spec, k: int = 5, buffer_size: int = 8192):
        self.spec, self.k, self.buffer_size = spec, int(k), int(buffer_size)
        self.name = "state-entropy"
        self.buffer: Optional[torch.Tensor] = None
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def __call__(self, state, action):
        obs = self.spec.observe(state).to(torch.float32)
        ref = obs if self.buffer is None else torch.cat([self.buffer.to(obs.device), obs])
        k = min(self.k + 1, ref.shape[0])  # + 1: the observation itself is its own 0-th neighbour
        kth = torch.cdist(obs, ref).topk(k, largest=False).values[:, -1]
        raw = torch.log1p(kth)
        for value in raw.double().cpu().tolist():  # Welford running variance
            self.count += 1
            delta = value - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (value - self.mean)
        std = math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0
        total = (raw / max(std, 1e-6)).to(torch.float32)
        self.buffer = ref[-self.buffer_size:].detach()
        return total, {"state_entropy": total}


__all__ = ["StateEntropyReward"]
