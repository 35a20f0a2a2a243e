"""STARC (Skalse et al. 2024) with Value-Adjusted Levelling: the LSTD value of a reward on the coverage's
transitions, its features, and the L2-normalised distance (robreward.rewards.distance's docstring)."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Union

import numpy as np
import torch

from robreward.envs.spec import TaskState
from robreward.rewards.distance.coverage import (
    DEFAULT_GAMMA,
    Coverage,
    RewardLike,
    _bound,
    _evaluate,
    _standardised,
    state_matrix,
)
from robreward.rewards.distance.epic import _check_args, _choose, _pair

Tensor = torch.Tensor
DEFAULT_VALUE_FEATURES = 64
DEFAULT_RIDGE = 1e-2  # LSTD ridge on the random Fourier features (each of variance 1)
TRIVIAL = 1e-6  # a VAL canonical reward below this x the raw reward's RMS is 0 (the reward was only shaping)
FeatureFn = Callable[[TaskState], Tensor]


@dataclasses.dataclass(frozen=True)
class ValueFeatures:
    """Features of every coverage state [M, F] for the value fit; the first ``free`` columns carry no
    ridge penalty (a shaping whose Phi they span is removed exactly), the rest carry ``ridge``."""

    matrix: Tensor
    free: int
    ridge: float = 0.0


def value_features(coverage: Coverage, num_random: int = DEFAULT_VALUE_FEATURES, seed: int = 0,
                   ridge: float = DEFAULT_RIDGE) -> ValueFeatures:
    """The default value features: unpenalised, a constant and the whitened state fields (their
    principal components, exact linear dependencies such as ee_to_goal = goal_pos - ee_pos dropped);
    ridge-penalised, ``num_random`` random Fourier features of the standardised fields (bandwidth
    sqrt(dims), frequencies drawn with ``seed``) for what is not linear in the state."""
    z = _standardised(state_matrix(coverage.states))
    ones = torch.ones(z.shape[0], 1, dtype=torch.float64)
    if z.shape[1] == 0:
        return ValueFeatures(ones, 1)
    u, sv, _ = torch.linalg.svd(z, full_matrices=False)
    keep = sv > 1e-6 * float(sv[0])
    linear = u[:, keep] * math.sqrt(z.shape[0])  # unit variance, uncorrelated
    parts = [ones, linear]
    if num_random > 0:
        gen = torch.Generator().manual_seed(int(seed))
        w = torch.randn(z.shape[1], num_random, generator=gen, dtype=torch.float64) / math.sqrt(z.shape[1])
        b = 2 * math.pi * torch.rand(num_random, generator=gen, dtype=torch.float64)
        parts.append(math.sqrt(2.0) * torch.cos(z @ w + b))
    return ValueFeatures(torch.cat(parts, 1), 1 + linear.shape[1], ridge)


def lstd_values(features: Union[Tensor, ValueFeatures], prev: Tensor, nxt: Tensor, rewards: Tensor,
                gamma: float, weights: Optional[Tensor] = None) -> Tensor:
    """[M] LSTD(0) value of every state: features [M, F] (or ValueFeatures, whose penalised columns
    get the ridge), transitions (prev, nxt) [K] with rewards [K] (or [K, R]: values [M, R]),
    optionally weighted [K] (a bootstrap resample)."""
    feats = features if isinstance(features, ValueFeatures) else ValueFeatures(torch.as_tensor(features).double(),
                                                                               features.shape[1])
    prev, nxt = prev.cpu(), nxt.cpu()
    w = torch.ones(len(prev), dtype=torch.float64) if weights is None else weights.double()
    keep = w > 0
    w = (w[keep] / w[keep].sum()).unsqueeze(1)
    phi, phi2 = feats.matrix[prev[keep]], feats.matrix[nxt[keep]]
    a = (phi * w).T @ (phi - gamma * phi2)
    b = (phi * w).T @ rewards.reshape(len(prev), -1)[keep]
    penalty = torch.zeros(a.shape[0], dtype=a.dtype)
    penalty[feats.free:] = feats.ridge
    values = feats.matrix @ torch.linalg.lstsq(a + torch.diag(penalty), b, driver="gelsd").solution
    return values if rewards.ndim > 1 else values[:, 0]


def val_canonical_rewards(reward: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                          features: Optional[Union[Tensor, FeatureFn, ValueFeatures]] = None) -> Tensor:
    """STARC's Value-Adjusted Levelling c(R)(s, a, s') = R(s, a, s') + gamma V(s') - V(s) on every
    coverage transition [K] float64, V the LSTD value of R under the coverage's policy.
    ``features``: [M, F] per coverage state (no ridge), fn(TaskState) -> [M, F], or ValueFeatures;
    default value_features(coverage)."""
    feats = _features(coverage, features)
    raw = _evaluate(_bound(reward, coverage), coverage, coverage.prev, coverage.next).unsqueeze(1)
    return _val_from(feats, coverage, raw, gamma)[:, 0]


def _features(coverage: Coverage, features) -> ValueFeatures:
    if features is None:
        return value_features(coverage)
    if isinstance(features, ValueFeatures):
        return features
    feats = features(coverage.states) if callable(features) else features
    feats = torch.as_tensor(feats).double().cpu()
    m = coverage.actions.shape[0]
    if feats.ndim != 2 or feats.shape[0] != m:
        raise ValueError(f"value features must be [M, F] with M={m} coverage states, got {list(feats.shape)}")
    return ValueFeatures(feats, feats.shape[1])


def starc_from_canonical(x: Tensor, y: Tensor) -> float:
    """(1/2) || x / |x| - y / |y| ||, norms the L2 norm over the sample (STARC with n = m = L2); a
    canonical reward of norm 0 (the reward was only shaping and a constant) normalises to 0."""
    x, y = _pair(x, y, "starc_from_canonical")
    return _weighted_starc(x, y, torch.ones_like(x))


def starc_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                   features: Optional[Union[Tensor, FeatureFn]] = None, max_transitions: Optional[int] = None,
                   rng: Optional[np.random.Generator] = None) -> float:
    """STARC distance in [0, 1] with VAL canonicalisation and L2 normalisation and metric (module
    docstring). V is fitted on every coverage transition; the distance is measured on all of them,
    or on ``max_transitions`` drawn with ``rng``."""
    _check_args(gamma)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    canon_a = val_canonical_rewards(reward_a, coverage, gamma=gamma, features=features)
    canon_b = val_canonical_rewards(reward_b, coverage, gamma=gamma, features=features)
    chosen = _choose(coverage, max_transitions or coverage.num_transitions, rng).cpu()
    return starc_from_canonical(canon_a[chosen], canon_b[chosen])


def _val_from(feats: ValueFeatures, coverage: Coverage, raw: Tensor, gamma: float,
              weights: Optional[Tensor] = None) -> Tensor:
    """[K, R] VAL canonical rewards of raw rewards [K, R] on every transition (LSTD weighted by ``weights``)."""
    prev, nxt = coverage.prev.cpu(), coverage.next.cpu()
    values = lstd_values(feats, prev, nxt, raw, gamma, weights)
    return _snap_trivial(raw + gamma * values[nxt] - values[prev], raw)


def _snap_trivial(canonical: Tensor, raw: Tensor) -> Tensor:
    """Columns whose canonical reward is below TRIVIAL x the raw reward's RMS are set to 0: what is
    left of a reward that was only shaping and a constant is the value fit's round-off."""
    rms = lambda v: v.pow(2).mean(0).sqrt()  # noqa: E731
    trivial = rms(canonical) <= TRIVIAL * rms(raw)
    return torch.where(trivial, torch.zeros_like(canonical), canonical)


def _weighted_starc(x: Tensor, y: Tensor, w: Tensor) -> float:
    """STARC of canonical rewards under transition weights w; a zero canonical reward stays 0 (VAL's
    near-zero ones were set to exactly 0 by _snap_trivial)."""
    w = w / w.sum()

    def unit(v):
        norm = math.sqrt(float((w * v * v).sum()))
        return v / norm if norm > 0 else torch.zeros_like(v)

    d = unit(x) - unit(y)
    return 0.5 * math.sqrt(float((w * d * d).sum()))
