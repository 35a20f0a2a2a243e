"""reward_distances: EPIC, DARD and STARC between two reward specs on one coverage, with percentile
bootstrap intervals over its episodes (robreward.rewards.distance's docstring)."""

from __future__ import annotations

import math

import numpy as np
import torch

from robreward.rewards.distance.coverage import (
    DEFAULT_GAMMA,
    DEFAULT_MAX_TRANSITIONS,
    DEFAULT_NEIGHBOURS,
    DEFAULT_SAMPLES,
    Coverage,
    TransitionReward,
    _evaluate,
)
from robreward.rewards.distance.dard import dard_canonical_rewards
from robreward.rewards.distance.epic import (
    _check_args,
    _choose,
    _epic_pair,
    _weighted_pearson_distance,
    pearson_distance,
)
from robreward.rewards.distance.starc import (
    ValueFeatures,
    _val_from,
    _weighted_starc,
    starc_from_canonical,
    value_features,
)
from robreward.rewards.state_tables import TabledReward, bind_to_coverage, needs_tables

Tensor = torch.Tensor
DEFAULT_BOOTSTRAP = 100
METRICS = ("epic", "dard", "starc")


def reward_distances(spec, reward_a, reward_b, transitions: Coverage, *, gamma: float = DEFAULT_GAMMA,
                     seed: int = 0, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                     num_samples: int = DEFAULT_SAMPLES, neighbours: int = DEFAULT_NEIGHBOURS,
                     bootstrap: int = DEFAULT_BOOTSTRAP, confidence: float = 0.95) -> dict:
    """EPIC, DARD and STARC between two rewards of task ``spec`` on sampled transitions.

    reward_a, reward_b: reward specs (``hand``, ``sparse``, ``FILE.py``, ``pref:RUN``, ``A+B``, ...;
    robreward.rewards.spec) or Reward objects / TransitionRewards. transitions: a Coverage
    (``collect_transitions(env, steps)`` or ``Coverage.from_rollout``).

    Returns {"epic": float | None, "dard": ..., "starc": ..., "epic_ci": [lo, hi] | None, "dard_ci",
    "starc_ci", "transitions": K measured on, "episodes": bootstrap groups, "gamma", "confidence",
    "bootstrap", "notes": {metric: why it is None}}: a metric is None (with its note) where it is
    undefined, e.g. EPIC/DARD of a reward constant on the transitions. The intervals resample
    episodes ``bootstrap`` times (0: none); STARC refits its value function on every resample."""
    from robreward.rewards.base import resolve_reward

    _check_args(gamma, num_samples, max_transitions)
    if bootstrap < 0 or not (0.0 < confidence < 1.0):
        raise ValueError(f"bootstrap must be >= 0 and confidence in (0, 1), got {bootstrap}, {confidence}")
    rewards = [r if isinstance(r, (TransitionReward, TabledReward)) else
               bind_to_coverage(r if needs_tables(r) else resolve_reward(r, spec), transitions, spec)
               for r in (reward_a, reward_b)]
    rng = np.random.default_rng(seed)
    chosen = _choose(transitions, max_transitions, rng)
    canon: dict[str, tuple[Tensor, Tensor]] = {}
    notes: dict[str, str] = {}
    canon["epic"] = _epic_pair(rewards[0], rewards[1], transitions, chosen, gamma, num_samples, rng)
    canon["dard"] = tuple(dard_canonical_rewards(r, transitions, chosen, gamma=gamma, neighbours=neighbours)
                          for r in rewards)  # type: ignore[assignment]
    # STARC: both rewards' values in one LSTD solve, on every transition
    feats = value_features(transitions)
    raw = torch.stack([_evaluate(r, transitions, transitions.prev, transitions.next) for r in rewards], 1)
    pick = chosen.cpu()
    val = _val_from(feats, transitions, raw, gamma)[pick]
    canon["starc"] = (val[:, 0], val[:, 1])
    groups = transitions.groups
    out: dict = {"transitions": len(chosen), "episodes": int(groups[pick].unique().numel()), "gamma": gamma,
                 "confidence": confidence, "bootstrap": bootstrap}
    for metric in METRICS:
        x, y = canon[metric]
        try:
            out[metric] = starc_from_canonical(x, y) if metric == "starc" else pearson_distance(x, y)
        except ValueError as err:
            out[metric], notes[metric] = None, str(err)
    intervals = _bootstrap(canon, feats, transitions, raw, pick, gamma, bootstrap, confidence, rng) if bootstrap else {}
    for metric in METRICS:
        out[f"{metric}_ci"] = intervals.get(metric) if out[metric] is not None else None
    out["notes"] = notes
    return out


def _bootstrap(canon: dict, feats: ValueFeatures, coverage: Coverage, raw: Tensor, pick: Tensor, gamma: float,
               count: int, confidence: float, rng: np.random.Generator) -> dict[str, list[float]]:
    """Percentile intervals over ``count`` resamples of the episodes: each resample weights every
    transition by how often its episode was drawn; EPIC and DARD keep their canonical rewards,
    STARC refits the value function with the weights."""
    groups = coverage.groups
    num_groups = int(groups.max()) + 1
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(count):
        counts = torch.as_tensor(np.bincount(rng.integers(0, num_groups, size=num_groups), minlength=num_groups),
                                 dtype=torch.float64)
        weights = counts[groups]
        w = weights[pick]
        if float(w.sum()) <= 0:
            continue
        for metric in ("epic", "dard"):
            values[metric].append(_weighted_pearson_distance(*canon[metric], w))
        val = _val_from(feats, coverage, raw, gamma, weights)[pick]
        values["starc"].append(_weighted_starc(val[:, 0], val[:, 1], w))
    tail = 100 * (1 - confidence) / 2
    out = {}
    for metric, vals in values.items():
        finite = np.array([v for v in vals if math.isfinite(v)])
        if len(finite):
            out[metric] = [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]
    return out
