"""DARD (Wulfe et al. 2022): EPIC's canonicalisation with expectations that follow the dynamics, T(s, A)
from the coverage's nearest transitions (robreward.rewards.distance's docstring)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from robreward.rewards.distance.coverage import (
    DEFAULT_GAMMA,
    DEFAULT_MAX_TRANSITIONS,
    DEFAULT_NEIGHBOURS,
    Coverage,
    RewardLike,
    _bound,
    _evaluate,
    _reads_transitions,
    _standardised,
    state_matrix,
)
from robreward.rewards.distance.epic import _check_args, _choose, pearson_distance

Tensor = torch.Tensor


def nearest_transitions(coverage: Coverage, queries: Tensor, k: int) -> Tensor:
    """[Q, k] indices of the transitions whose start state is nearest to states[queries]
    (Euclidean distance of the standardised state fields): DARD's samples of T(s, A)."""
    k_all = coverage.num_transitions
    if k < 1:
        raise ValueError(f"neighbours must be >= 1, got {k}")
    k = min(k, k_all)
    z = _standardised(state_matrix(coverage.states))
    if z.shape[1] == 0:  # every state the same: every transition is a neighbour
        return torch.arange(k).repeat(len(queries), 1)
    starts, points = z[coverage.prev.cpu()], z[queries.cpu()]
    out = torch.empty(len(queries), k, dtype=torch.long)
    rows = max(1, (1 << 24) // max(1, k_all))
    for lo in range(0, len(queries), rows):
        dist = torch.cdist(points[lo:lo + rows], starts)
        out[lo:lo + rows] = dist.topk(k, dim=1, largest=False).indices
    return out


def dard_canonical_rewards(reward: RewardLike, coverage: Coverage, transitions: Tensor, *,
                           gamma: float = DEFAULT_GAMMA, neighbours: int = DEFAULT_NEIGHBOURS) -> Tensor:
    """DARD's C(R) on the given transitions [K] float64, T(s, A) from nearest neighbours."""
    prev, nxt = coverage.prev[transitions], coverage.next[transitions]
    near_s = nearest_transitions(coverage, prev, neighbours).to(coverage.next.device)  # (A, S') ~ T(s, .)
    if not _reads_transitions(reward):
        r_all = _evaluate(reward, coverage, coverage.prev, coverage.next)  # r(s'_j, a_j) of every transition j
        return _evaluate(reward, coverage, prev, nxt) - r_all[near_s.cpu()].mean(1)
    near_s2 = nearest_transitions(coverage, nxt, neighbours).to(coverage.next.device)  # (A, S'') ~ T(s', .)
    k = near_s.shape[1]
    direct = _evaluate(reward, coverage, prev, nxt)
    a2 = s2 = coverage.next[near_s2]  # [K, k] S'' and the action taken into it (actions[next])
    from_next = _evaluate(reward, coverage, nxt.repeat_interleave(k), s2.flatten(),
                          coverage.actions[a2.flatten()]).reshape(-1, k).mean(1)  # E R(s', A, S'')
    s1 = coverage.next[near_s]
    from_prev = _evaluate(reward, coverage, prev.repeat_interleave(k), s1.flatten()).reshape(-1, k).mean(1)
    # E R(S', A, S''): S' from s's neighbours, (A, S'') from s''s neighbours, all k x k pairs
    first = s1.unsqueeze(2).expand(-1, k, k).flatten()
    second = s2.unsqueeze(1).expand(-1, k, k).flatten()
    act = coverage.actions[a2.unsqueeze(1).expand(-1, k, k).flatten()]
    cross = _evaluate(reward, coverage, first, second, act).reshape(-1, k * k).mean(1)
    return direct + gamma * from_next - from_prev - gamma * cross


def dard_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                  neighbours: int = DEFAULT_NEIGHBOURS, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                  rng: Optional[np.random.Generator] = None) -> float:
    """DARD distance in [0, 1]: the Pearson distance of DARD-canonicalised rewards (module docstring)."""
    _check_args(gamma, 1, max_transitions)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    chosen = _choose(coverage, max_transitions, rng)
    return pearson_distance(dard_canonical_rewards(reward_a, coverage, chosen, gamma=gamma, neighbours=neighbours),
                            dard_canonical_rewards(reward_b, coverage, chosen, gamma=gamma, neighbours=neighbours))
