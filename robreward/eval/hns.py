"""Human-normalized score on the task's fitness (docs/architecture.md, "Human-normalized score").

    HNS = (M - S) / |H - S|

M: the evaluated policy's fitness, H: the hand reward's trained policies', S: the sparse
reward's; `robreward compare` takes H and S from the shipped baselines (baseline.py: the newest
version under policies/, or the one asked for), a user's own runs only when asked. Where |H - S| < 5% of |H| the sparse reward already solves the task (or both fail
alike): the HNS is undefined (value None, with a reason) and the raw fitness is compared
instead. Averages over tasks/runs clip each HNS to [0, 3] first, as Eureka does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional

UNDEFINED_GAP = 0.05
"""|H - S| below this fraction of |H| makes the HNS undefined."""
EUREKA_CLIP = (0.0, 3.0)


@dataclasses.dataclass(frozen=True)
class HNS:
    """An HNS value, or None with the reason it is undefined."""

    value: Optional[float]
    reason: Optional[str] = None
    fitness: Optional[float] = None  # M, reported raw when the HNS is undefined

    @property
    def defined(self) -> bool:
        return self.value is not None

    def format(self, digits: int = 2) -> str:
        if self.value is not None:
            return f"{self.value:.{digits}f}"
        return "n/a" if self.fitness is None else f"n/a (fitness {self.fitness:.{digits}f})"

    def to_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason, "fitness": self.fitness}


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def hns(m: Optional[float], h: Optional[float], s: Optional[float], gap: float = UNDEFINED_GAP) -> HNS:
    """(M - S) / |H - S|, or undefined (value None + reason) when it cannot be computed."""
    if not _finite(m):
        return HNS(None, "no fitness for this run", None)
    if not _finite(h) or not _finite(s):
        which = " and ".join(n for n, v in (("hand (H)", h), ("sparse (S)", s)) if not _finite(v))
        return HNS(None, f"no {which} baseline fitness; compare raw fitness", float(m))
    spread = abs(h - s)
    if spread < gap * abs(h) or spread == 0.0:
        return HNS(None, f"|H - S| = {spread:.3g} is under {gap:.0%} of |H| = {abs(h):.3g} "
                         "(the sparse reward already matches the hand reward); compare raw fitness", float(m))
    return HNS((m - s) / spread, None, float(m))


def clip_hns(value: float, lo: float = EUREKA_CLIP[0], hi: float = EUREKA_CLIP[1]) -> float:
    return min(max(value, lo), hi)


def mean_hns(scores: Iterable, clip: Optional[tuple[float, float]] = EUREKA_CLIP) -> Optional[float]:
    """Mean of the defined scores (HNS objects or floats/None), each clipped to `clip` first
    (Eureka's [0, 3]); None when no score is defined."""
    vals = []
    for sc in scores:
        v = sc.value if isinstance(sc, HNS) else sc
        if _finite(v):
            vals.append(clip_hns(v, *clip) if clip else float(v))
    return sum(vals) / len(vals) if vals else None


def hns_interval(m_seeds, h_seeds, s_seeds, n_boot: int = 4000, level: float = 0.95, seed: int = 0,
                 gap: float = UNDEFINED_GAP) -> Optional[tuple[float, float]]:
    """Percentile bootstrap interval of the HNS over seeds: the run's per-seed fitness (M), the
    hand baseline's (H) and the sparse baseline's (S) are each resampled with replacement and
    (mean M - mean S) / |mean H - mean S| recomputed. None with fewer than 2 run seeds (an
    interval from the baselines' seeds alone would look like the run's own spread), or when
    more than 5% of the resamples have an undefined HNS (|H - S| too small)."""
    import numpy as np

    m = np.asarray([v for v in m_seeds if _finite(v)], dtype=np.float64)
    h = np.asarray([v for v in h_seeds if _finite(v)], dtype=np.float64)
    s = np.asarray([v for v in s_seeds if _finite(v)], dtype=np.float64)
    if len(m) < 2 or not len(h) or not len(s):
        return None
    rng = np.random.default_rng(seed)
    mb = m[rng.integers(0, len(m), (n_boot, len(m)))].mean(1)
    hb = h[rng.integers(0, len(h), (n_boot, len(h)))].mean(1)
    sb = s[rng.integers(0, len(s), (n_boot, len(s)))].mean(1)
    spread = np.abs(hb - sb)
    ok = (spread >= gap * np.abs(hb)) & (spread > 0)
    if ok.mean() < 0.95:
        return None
    vals = (mb[ok] - sb[ok]) / spread[ok]
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [tail, 1.0 - tail])
    return float(lo), float(hi)
