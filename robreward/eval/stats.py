"""Significance over seeds: is a reward better than the hand reward?

One value per training seed (e.g. each seed's eval fitness_mean) on each side. One-sided
Welch's t-test (H1: mean(candidate) > mean(hand)) plus a percentile bootstrap 95% CI of
the difference of means. With fewer than 2 seeds on a side the test is "not testable".
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

ALPHA = 0.05


def _clean(values) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def welch_one_sided(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(t, p) of Welch's t-test, one-sided H1: mean(a) > mean(b). Needs >= 2 values per side.
    When both samples have zero variance, p is 0 if mean(a) > mean(b), 1 if lower, 0.5 if equal."""
    from scipy import stats

    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's t-test needs >= 2 values per side, got {len(a)} and {len(b)}")
    if np.var(a) == 0.0 and np.var(b) == 0.0:
        d = a.mean() - b.mean()
        return (math.copysign(math.inf, d) if d else 0.0), (0.0 if d > 0 else 1.0 if d < 0 else 0.5)
    res = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    return float(res.statistic), float(res.pvalue)


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 10000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(a) - mean(b), resampling each side independently."""
    a, b = _clean(a), _clean(b)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(n_boot, len(a)))
    ib = rng.integers(0, len(b), size=(n_boot, len(b)))
    diffs = a[ia].mean(1) - b[ib].mean(1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [tail, 1.0 - tail])
    return float(lo), float(hi)


def better_than_hand(candidate: Sequence[float], hand: Sequence[float], alpha: float = ALPHA,
                     n_boot: int = 10000, seed: int = 0) -> dict:
    """Test "candidate is better than the hand reward" over per-seed values.

    Returns {testable, p_value, significant, t, diff_mean, ci_low, ci_high, n_candidate, n_hand,
    alpha, summary}; when testable is False, p_value/significant are None and summary says why.
    """
    a, b = _clean(candidate), _clean(hand)
    out = {"n_candidate": int(len(a)), "n_hand": int(len(b)), "alpha": alpha,
           "diff_mean": float(a.mean() - b.mean()) if len(a) and len(b) else None,
           "testable": False, "p_value": None, "significant": None, "t": None, "ci_low": None, "ci_high": None}
    if len(a) < 2 or len(b) < 2:
        out["summary"] = f"not testable (needs >= 2 seeds per side; got {len(a)} vs {len(b)} hand)"
        return out
    t, p = welch_one_sided(a, b)
    lo, hi = bootstrap_diff_ci(a, b, n_boot=n_boot, seed=seed)
    sig = bool(p < alpha)
    out.update(testable=True, p_value=p, significant=sig, t=t, ci_low=lo, ci_high=hi,
               summary=(f"{'better' if sig else 'not significantly better'} than hand "
                        f"(Welch one-sided p={p:.3g}, diff {out['diff_mean']:+.3g}, 95% CI [{lo:.3g}, {hi:.3g}])"))
    return out


def format_p(result: Optional[dict]) -> str:
    """A table cell: 'p=0.012*' (significant at alpha), 'p=0.40', or 'not testable'."""
    if not result:
        return "-"
    if not result.get("testable"):
        return "not testable"
    p = result["p_value"]
    return f"{'p<0.001' if p < 0.001 else f'p={p:.3f}'}{'*' if result['significant'] else ''}"
