"""Choosing the best reward candidate from its fitness on several training seeds (generate
--candidate-seeds M, --selection).

PPO on a manipulation task is seed-sensitive (one reward reached 0.54 and 0.92 success on two
seeds of push), and the largest of K one-seed estimates is biased upward: the winner's curse. A
candidate trained on M seeds has a mean fitness and a standard error, and the rules here use both:

- ``lcb`` (the default): the largest lower confidence bound, mean - z * SE (z = 1). A reward whose
  seeds disagree (it learns on some seeds only) ranks below one of the same mean whose seeds agree,
  so the pick is one that works on fresh seeds, which is what the final retrain tests. With 2-3
  seeds a candidate's own standard deviation is itself noisy (two seeds that happen to agree give
  an SE near 0), so each candidate's SD is shrunk towards the SD pooled over all candidates'
  seeds (``PRIOR_DF`` pseudo-degrees of freedom) before SE = SD / sqrt(n).
- ``mean``: the largest mean over seeds (with one seed, Eureka's argmax of one run).

Successive halving that adds seeds to survivors was the alternative; the lower bound was chosen
because it needs no extra rungs (the K x M runs train at once in one batched process) and it
composes with ``--halving`` (a rung ranks by the same rule). benchmarks/generate_quality.py
measures both rules' picks and bias on the recorded transcripts.

How sure the ranking is: ``p_best`` is each candidate's chance of having the highest true mean
under independent normal errors N(mean, SE^2) (Monte Carlo, fixed seed), and ``gap_z`` is the
pick's lead over the runner-up in standard errors of the difference.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

RULES = ("lcb", "mean")
PRIOR_DF = 2.0  # pseudo-degrees of freedom of the pooled SD in each candidate's shrunk SD
Z = 1.0  # the lower bound is mean - Z * SE: one standard error


def seed_stats(values: Sequence[float]) -> dict:
    """mean, SD (ddof 1; None with one value), n of one candidate's per-seed fitness."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("a candidate needs the fitness of at least one seed")
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return {"mean": mean, "sd": sd, "n": len(xs)}


def pooled_sd(groups: Sequence[Sequence[float]]) -> float | None:
    """The SD of a seed's fitness about its candidate's mean, pooled over candidates (None: no candidate has
    two seeds)."""
    ss, df = 0.0, 0
    for values in groups:
        xs = np.asarray(values, dtype=np.float64)
        if len(xs) > 1:
            ss += float(((xs - xs.mean()) ** 2).sum())
            df += len(xs) - 1
    return math.sqrt(ss / df) if df else None


def score(groups: Sequence[Sequence[float]], rule: str = "lcb", z: float = Z) -> list[dict]:
    """Per candidate (its per-seed fitness in ``groups``): mean, sd (its own), se (of the mean, from the shrunk
    SD; None when no candidate has two seeds), lcb (mean - z*se) and the score the rule ranks by, plus
    p_best. With one seed per candidate there is no SE: ``lcb`` ranks by the mean (as ``mean`` does)."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}: choose one of {', '.join(RULES)}")
    pool = pooled_sd(groups)
    rows = []
    for values in groups:
        row = seed_stats(values)
        if pool is None:
            row["se"] = None
        else:
            own_df = row["n"] - 1
            own_var = row["sd"] ** 2 if row["sd"] is not None else 0.0
            shrunk = math.sqrt((own_df * own_var + PRIOR_DF * pool ** 2) / (own_df + PRIOR_DF))
            row["se"] = shrunk / math.sqrt(row["n"])
        row["lcb"] = row["mean"] - z * row["se"] if row["se"] is not None else row["mean"]
        row["score"] = row["lcb"] if rule == "lcb" else row["mean"]
        rows.append(row)
    for row, p in zip(rows, p_best([r["mean"] for r in rows], [r["se"] for r in rows])):
        row["p_best"] = p
    return rows


def pick(rows: Sequence[dict]) -> int:
    """The index of the highest score (the first of equals: deterministic)."""
    best = 0
    for i, row in enumerate(rows):
        if row["score"] > rows[best]["score"]:
            best = i
    return best


def p_best(means: Sequence[float], ses: Sequence[float | None], draws: int = 20_000, seed: int = 0) -> list:
    """Each candidate's chance of the highest true mean if its error is N(0, se^2) (None: no SE known)."""
    if not means:
        return []
    if any(se is None for se in ses):
        return [None] * len(means)
    rng = np.random.default_rng(seed)
    samples = np.asarray(means)[None, :] + rng.standard_normal((draws, len(means))) * np.asarray(ses)[None, :]
    wins = np.bincount(samples.argmax(1), minlength=len(means))
    return [float(w) / draws for w in wins]


def gap_z(rows: Sequence[dict], chosen: int) -> float | None:
    """The chosen candidate's lead in mean over the best other one, in SEs of the difference (None: no SE, or
    a single candidate)."""
    others = [r for i, r in enumerate(rows) if i != chosen]
    if not others or rows[chosen]["se"] is None:
        return None
    runner = max(others, key=lambda r: r["mean"])
    spread = math.hypot(rows[chosen]["se"], runner["se"])
    return (rows[chosen]["mean"] - runner["mean"]) / spread if spread > 0 else None


def summary(ids: Sequence[str], rows: Sequence[dict], chosen: int, rule: str) -> str:
    """One sentence on how sure the ranking is."""
    if len(rows) < 2:
        return "one trained candidate: nothing to rank"
    best = rows[chosen]
    if best["se"] is None:
        return (f"{ids[chosen]} has the highest fitness on one seed ({best['mean']:.3f}); with one seed per candidate "
                "there is no standard error, so how sure this ranking is cannot be said (--candidate-seeds 2 or more)")
    lead = gap_z(rows, chosen)
    how = "lower confidence bound (mean - 1 SE)" if rule == "lcb" else "mean over seeds"
    text = (f"{ids[chosen]} has the highest {how}: {best['mean']:.3f} +- {best['se']:.3f} over {best['n']} seeds; "
            f"chance it is truly the best of these {len(rows)}: {best['p_best']:.0%}")
    if lead is not None:
        text += (f"; its mean leads the next best by {lead:.1f} SE" if lead >= 0
                 else f"; another candidate's mean is {-lead:.1f} SE higher but less consistent over seeds")
    return text


__all__ = ["PRIOR_DF", "RULES", "Z", "gap_z", "p_best", "pick", "pooled_sd", "score", "seed_stats", "summary"]
