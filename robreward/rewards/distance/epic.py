"""EPIC (Gleave et al. 2021): canonical rewards by sampled expectations and the Pearson distance, and
the checks and transition sampling the other distances share (robreward.rewards.distance's docstring)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from robreward.rewards.distance.coverage import (
    DEFAULT_GAMMA,
    DEFAULT_MAX_TRANSITIONS,
    DEFAULT_SAMPLES,
    _CHUNK_ROWS,
    Coverage,
    RewardLike,
    TransitionReward,
    _bound,
    _evaluate,
    _reads_transitions,
)

Tensor = torch.Tensor


def canonical_rewards(reward: RewardLike, coverage: Coverage, transitions: Tensor, *, gamma: float = DEFAULT_GAMMA,
                      num_samples: int = DEFAULT_SAMPLES, rng: Optional[np.random.Generator] = None) -> Tensor:
    """EPIC's C(R) on the given transitions (indices into coverage.prev/next) [K], float64.

    A Reward-protocol reward (state, action) -> (total, terms) is canonicalised exactly
    (r - E[r] over the coverage states and actions); a TransitionReward by Monte Carlo over
    ``num_samples`` independent (S, A, S') draws with ``rng``."""
    prev, nxt = coverage.prev[transitions], coverage.next[transitions]
    if not _reads_transitions(reward):
        on_d = _evaluate(reward, coverage, prev, nxt)
        # every expectation of C(R) is the constant E[r(S', A)]; it only shifts C(R), so its
        # sampling error never reaches the Pearson distance
        gen = rng if rng is not None else np.random.default_rng(0)
        m = coverage.actions.shape[0]
        s_idx, a_idx = (torch.as_tensor(gen.integers(0, m, size=num_samples), device=coverage.actions.device)
                        for _ in range(2))
        return on_d - _evaluate(reward, coverage, s_idx, s_idx, coverage.actions[a_idx]).mean()
    if rng is None:
        raise ValueError("canonicalizing a TransitionReward samples states and actions: "
                         "pass rng=np.random.default_rng(seed)")
    m = coverage.actions.shape[0]
    s_idx, a_idx, s2_idx = (torch.as_tensor(rng.integers(0, m, size=num_samples), device=coverage.actions.device)
                            for _ in range(3))
    sample_a = coverage.actions[a_idx]
    direct = _evaluate(reward, coverage, prev, nxt)
    from_next = _mean_over_samples(reward, coverage, nxt, sample_a, s2_idx)  # E[R(s', A, S')]
    from_prev = _mean_over_samples(reward, coverage, prev, sample_a, s2_idx)  # E[R(s, A, S')]
    constant = _evaluate(reward, coverage, s_idx, s2_idx, sample_a).mean()
    return direct + gamma * from_next - from_prev - gamma * constant


def _mean_over_samples(reward: TransitionReward, coverage: Coverage, first: Tensor, sample_a: Tensor,
                       s2_idx: Tensor) -> Tensor:
    """[K] mean_j R(state[first_k], A_j, state[S'_j])."""
    k, m = len(first), len(s2_idx)
    out = torch.empty(k, dtype=torch.float64)
    per_chunk = max(1, _CHUNK_ROWS // m)
    for lo in range(0, k, per_chunk):
        rows = first[lo:lo + per_chunk]
        b = len(rows)
        values = _evaluate(reward, coverage, rows.repeat_interleave(m), s2_idx.repeat(b), sample_a.repeat(b, 1))
        out[lo:lo + b] = values.reshape(b, m).mean(1)
    return out


def pearson_distance(x: Tensor, y: Tensor) -> float:
    """sqrt((1 - rho) / 2) of two samples [K]; ValueError if either is constant."""
    x, y = _pair(x, y, "pearson_distance")
    xc, yc = x - x.mean(), y - y.mean()
    _check_varies(x, y, xc, yc, "its EPIC/DARD distance is undefined (Pearson correlation of a constant)")
    rho = float((xc @ yc) / (xc.norm() * yc.norm()))
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))


def _weighted_pearson_distance(x: Tensor, y: Tensor, w: Tensor) -> float:
    w = w / w.sum()
    xc, yc = x - (w * x).sum(), y - (w * y).sum()
    denom = math.sqrt(float((w * xc * xc).sum()) * float((w * yc * yc).sum()))
    if denom <= 0:
        return float("nan")
    rho = float((w * xc * yc).sum()) / denom
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))


def _pair(x, y, what: str) -> tuple[Tensor, Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64).flatten()
    y = torch.as_tensor(y, dtype=torch.float64).flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"{what} needs two samples of the same size >= 2, got {x.numel()} and {y.numel()}")
    return x, y


def _check_varies(x: Tensor, y: Tensor, xc: Tensor, yc: Tensor, why: str) -> None:
    scale = max(float(x.abs().max()), float(y.abs().max()), 1e-12) * math.sqrt(x.numel())
    for what, s in (("first", float(xc.norm())), ("second", float(yc.norm()))):
        if s <= 1e-9 * scale:
            raise ValueError(f"the {what} reward is constant on the coverage transitions: {why}; "
                             "use a more varied rollout")


def _choose(coverage: Coverage, max_transitions: int, rng: Optional[np.random.Generator]) -> Tensor:
    k = coverage.num_transitions
    if k < 2:
        raise ValueError(f"the coverage has {k} transitions; a distance needs at least 2: collect a longer rollout")
    if k <= max_transitions:
        return torch.arange(k, device=coverage.next.device)
    if rng is None:
        raise ValueError(f"the coverage has {k} > max_transitions={max_transitions} transitions to sample from: "
                         "pass rng=np.random.default_rng(seed)")
    return torch.as_tensor(np.sort(rng.choice(k, size=max_transitions, replace=False)), device=coverage.next.device)


def _check_args(gamma: float, num_samples: int = 1, max_transitions: int = 2) -> None:
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if num_samples < 1 or max_transitions < 2:
        raise ValueError(f"num_samples must be >= 1 and max_transitions >= 2, got {num_samples}, {max_transitions}")


def epic_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                  num_samples: int = DEFAULT_SAMPLES, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                  rng: Optional[np.random.Generator] = None) -> float:
    """EPIC distance in [0, 1] between two rewards (Reward protocol or TransitionReward) over a
    coverage; see the module docstring for what is sampled. ``rng`` draws the transitions (when
    there are more than ``max_transitions``) and the Monte Carlo samples."""
    _check_args(gamma, num_samples, max_transitions)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    chosen = _choose(coverage, max_transitions, rng)
    canon_a, canon_b = _epic_pair(reward_a, reward_b, coverage, chosen, gamma, num_samples, rng)
    return pearson_distance(canon_a, canon_b)


def _epic_pair(reward_a, reward_b, coverage, chosen, gamma, num_samples, rng) -> tuple[Tensor, Tensor]:
    seed = int(rng.integers(2**31)) if rng is not None else None

    def draws():  # the same sample draws for both rewards: their Monte Carlo errors partly cancel
        return np.random.default_rng(seed) if seed is not None else None

    return (canonical_rewards(reward_a, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws()),
            canonical_rewards(reward_b, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws()))
