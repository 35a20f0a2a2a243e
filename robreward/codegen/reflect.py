"""Reward reflection (Eureka): what training on a candidate reward did, as numbers and as a
compact text for the next prompt.

    term_statistics(stats) -> dict        numbers (JSON-able; None where undefined)
    reflection_text(stats) -> str         the text an LLM reads

``stats`` holds one value per training iteration (I of them, the same for every series):

    {"terms": {name: [I] mean of the term per step},     required
     "fitness": [I], "success": [I] (rate), "episode_length": [I],                     optional
     "reward_invalid": [I], "reward_invalid_share": [I],                               optional
     "total": [I]}                                      optional; default: the sum of the terms

``reward_invalid`` is the trainer's progress.csv column of that name: per iteration, the
world-steps whose reward was invalid (NaN or inf, or terms not summing to the total) and so was
replaced by 0, that world's episode ended; ``reward_invalid_share`` the same as a share of the
iteration's world-steps. A training fails once they pass robreward.rl.validity's limit.

Per term: mean/std (population)/min/max over training (finite values only), its share of the
total |reward| (sum over iterations of |term mean|, divided by the same summed over all terms),
the Pearson correlation with fitness, the trend (mean of the last third minus the mean of the
first third of the iterations) and how many iterations were NaN or inf.

Hints are given only where the numbers support them (Eureka's reflection tips, made stricter):
a constant term has no effect; a term with over DOMINATES of the |reward| dominates; a term that
is NaN or inf needs guards; a success rate that stays near zero calls for a rewrite; and a term
works against the task only when the policy learned to earn MORE of it while the task score did
not improve: correlation with fitness at or below NEGATIVE_CORRELATION, the term rising and
fitness flat or falling (reward hacking). A negative correlation alone is not evidence: a term
written to fade as the task is solved (an approach reward that pays less once the object is at
the goal) falls while fitness rises, by design; the recorded push run's `reach_push_pos` is one,
and calling it harmful led the LLM to weaken the approach terms of three of its four next programs.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

DOMINATES = 0.9
"""A term with more than this share of the total |reward| dominates the others."""
NEGATIVE_CORRELATION = -0.5
"""A term whose correlation with fitness is at or below this, and that rose while fitness did not,
works against the task (see the module docstring: falling with rising fitness is a fading term)."""
SNAPSHOTS = 10
"""Values shown per series in the text (evenly spaced over training, as Eureka shows them)."""
_SERIES = ("fitness", "success", "episode_length", "reward_invalid", "reward_invalid_share", "total")


def _array(name: str, values, length: int | None = None) -> np.ndarray:
    try:
        x = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"stats[{name!r}] must be a sequence of numbers (one per iteration): {err}") from None
    if length is not None and len(x) != length:
        raise ValueError(f"stats[{name!r}] has {len(x)} values, the terms have {length}: give one value per "
                         "training iteration for every series")
    return x


def _inputs(stats: Mapping) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    if not isinstance(stats, Mapping) or not isinstance(stats.get("terms"), Mapping) or not stats["terms"]:
        raise ValueError("stats must be a dict with 'terms': {name: per-iteration means} (at least one term)")
    unknown = sorted(set(stats) - set(_SERIES) - {"terms"})
    if unknown:
        raise ValueError(f"unknown stats keys {unknown}; valid: terms, {', '.join(_SERIES)}")
    first = next(iter(stats["terms"]))
    n = len(_array(f"terms.{first}", stats["terms"][first]))
    if n == 0:
        raise ValueError("stats['terms'] series are empty: at least one training iteration is needed")
    terms = {str(k): _array(f"terms.{k}", v, n) for k, v in stats["terms"].items()}
    series = {k: _array(k, stats[k], n) for k in _SERIES if stats.get(k) is not None}
    return terms, series, n


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson r over the iterations where both are finite; None if either is constant there."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return None
    x, y = x[ok], y[ok]
    if any(np.ptp(v) <= 1e-12 * (1.0 + abs(float(v.mean()))) for v in (x, y)):
        return None
    dx, dy = x - x.mean(), y - y.mean()
    r = float((dx * dy).sum()) / math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return max(-1.0, min(1.0, r))


def _summary(x: np.ndarray) -> dict:
    finite = x[np.isfinite(x)]
    out = {"nan_count": int(len(x) - len(finite))}
    if len(finite) == 0:
        return {**out, "mean": None, "std": None, "min": None, "max": None, "first": None, "last": None,
                "trend": None, "direction": "n/a"}
    third = max(1, len(x) // 3)
    head, tail = x[:third], x[-third:]
    first = float(np.nanmean(head)) if np.isfinite(head).any() else None
    last = float(np.nanmean(tail)) if np.isfinite(tail).any() else None
    s = {**out, "mean": float(finite.mean()), "std": float(finite.std()), "min": float(finite.min()),
         "max": float(finite.max()), "first": first, "last": last,
         "trend": None if first is None or last is None else last - first}
    s["direction"] = _direction(s)
    return s


def _constant(s: dict) -> bool:
    return s["max"] is not None and s["max"] - s["min"] <= 1e-8 * (1.0 + abs(s["mean"]))


def _direction(s: dict) -> str:
    if s["trend"] is None:
        return "n/a"
    scale = max(abs(s["first"]), abs(s["last"]), s["std"], 1e-12)
    if abs(s["trend"]) <= 0.05 * scale:
        return "flat"
    return "rising" if s["trend"] > 0 else "falling"


def term_statistics(stats: Mapping) -> dict:
    """The reflection's numbers: {"iterations", "terms": {name: {...}}, "total", "fitness",
    "success", "episode_length", "reward_invalid" (world-steps, summed), "reward_invalid_share"
    (mean share), "hints"} (None where a number is undefined; the last two only when given)."""
    terms, series, n = _inputs(stats)
    magnitude = {k: float(np.abs(v[np.isfinite(v)]).sum()) for k, v in terms.items()}
    whole = sum(magnitude.values())
    fitness = series.get("fitness")
    out_terms = {}
    for name, values in terms.items():
        s = _summary(values)
        s["share"] = magnitude[name] / whole if whole > 0 else None
        s["corr_fitness"] = pearson(values, fitness) if fitness is not None else None
        out_terms[name] = s
    total = series.get("total")
    if total is None:
        total = np.sum(np.stack(list(terms.values())), axis=0)
    result = {"iterations": n, "terms": out_terms, "total": _summary(total)}
    for key in ("fitness", "success", "episode_length"):
        if key in series:
            result[key] = _summary(series[key])
    if "reward_invalid" in series:
        result["reward_invalid"] = int(np.nansum(series["reward_invalid"]))
    if "reward_invalid_share" in series:
        result["reward_invalid_share"] = _num(float(np.nanmean(series["reward_invalid_share"])))
    result["hints"] = _hints(result)
    for section in [result["total"], *out_terms.values()] + [result[k] for k in ("fitness", "success", "episode_length")
                                                            if k in result]:
        for k, v in section.items():
            if isinstance(v, float):
                section[k] = _num(v)
    return result


def _hints(result: dict) -> list[str]:
    hints = []
    for name, s in result["terms"].items():
        if s["mean"] is None:
            hints.append(f"'{name}' was NaN or inf in every iteration: guard its divisions, logs and square roots.")
            continue
        if _constant(s):
            hints.append(f"'{name}' is constant over training ({s['mean']:.4g}): it has no effect; rescale it, "
                         "rewrite it so it varies with the behavior, or drop it.")
        if s["share"] is not None and s["share"] > DOMINATES and len(result["terms"]) > 1:
            hints.append(f"'{name}' dominates the reward ({100 * s['share']:.0f}% of |reward|): scale it down "
                         "or the other terms up.")
        if _works_against(s, result.get("fitness")):
            fitness = result["fitness"]
            hints.append(f"'{name}' works against the task: it rose over training ({_g(s['first'])} -> "
                         f"{_g(s['last'])}) while the task score did not improve ({_g(fitness['first'])} -> "
                         f"{_g(fitness['last'])}; r = {s['corr_fitness']:+.2f}): the policy earns it at the task's "
                         "expense; lower its weight or rewrite it so it pays only for progress on the task.")
        if s["nan_count"] and s["mean"] is not None:
            hints.append(f"'{name}' was NaN or inf in {s['nan_count']} iteration(s): guard its divisions, logs "
                         "and square roots.")
    success = result.get("success")
    if success is not None and success["max"] is not None and success["max"] < 0.05:
        hints.append("The success rate stayed near zero: rewrite the reward function "
                     "rather than retuning it.")
    if result.get("reward_invalid"):
        share = result.get("reward_invalid_share")
        share_text = f" ({100 * share:.2g}% of the steps)" if share is not None else ""
        hints.append(f"The reward was invalid (NaN or inf, or terms that do not sum to the total) in "
                     f"{result['reward_invalid']} world-step(s){share_text}: those steps got reward 0 and ended their "
                     "episode. Guard divisions, logs and square roots, and return the total as the sum of the terms.")
    return hints


def _works_against(s: dict, fitness: dict | None) -> bool:
    """Reward hacking's signature: anti-correlated with fitness, the term rising, fitness not."""
    return (fitness is not None and s["corr_fitness"] is not None and s["corr_fitness"] <= NEGATIVE_CORRELATION
            and s["direction"] == "rising" and fitness["direction"] in ("flat", "falling"))


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _snapshots(x: np.ndarray, k: int = SNAPSHOTS) -> str:
    idx = np.unique(np.linspace(0, len(x) - 1, min(k, len(x))).round().astype(int))
    return "[" + ", ".join(_g(_num(float(v))) for v in x[idx]) + "]"


def _series_line(label: str, s: dict, values: np.ndarray) -> str:
    return (f"{label}: {_snapshots(values)}, mean {_g(s['mean'])}, min {_g(s['min'])}, max {_g(s['max'])}, "
            f"{s['direction']} ({_g(s['first'])} -> {_g(s['last'])})")


def reflection_text(stats: Mapping) -> str:
    """A compact text of term_statistics for the next prompt (Eureka's reward reflection)."""
    numbers = term_statistics(stats)
    terms, series, n = _inputs(stats)
    lines = [f"Training statistics over {n} iterations (per-step means; trend: last third vs first third; "
             f"{min(SNAPSHOTS, n)} snapshots):"]
    header = ("term", "mean", "std", "min", "max", "share", "r(fitness)", "trend", "NaN")
    rows = []
    for name, s in numbers["terms"].items():
        share = "n/a" if s["share"] is None else f"{100 * s['share']:.1f}%"
        corr = "n/a" if s["corr_fitness"] is None else f"{s['corr_fitness']:+.2f}"
        trend = f"{s['direction']} {_g(s['first'])} -> {_g(s['last'])}"
        rows.append((name, _g(s["mean"]), _g(s["std"]), _g(s["min"]), _g(s["max"]), share, corr, trend,
                     str(s["nan_count"])))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    for name, values in terms.items():
        lines.append(f"  {name}: {_snapshots(values)}")
    total = series.get("total", np.sum(np.stack(list(terms.values())), axis=0))
    lines.append(_series_line("total reward", numbers["total"], total))
    labels = {"fitness": "task_score (fitness)", "success": "success rate", "episode_length": "episode length"}
    for key, label in labels.items():
        if key in numbers:
            lines.append(_series_line(label, numbers[key], series[key]))
    if "reward_invalid" in numbers:
        share = numbers.get("reward_invalid_share")
        lines.append(f"invalid reward (NaN/inf, or terms not summing to the total; replaced by 0): "
                     f"{numbers['reward_invalid']} world-step(s)"
                     + (f", {100 * share:.2g}% of the steps" if share is not None else ""))
    if numbers["hints"]:
        lines.append("Hints:")
        lines += [f"- {h}" for h in numbers["hints"]]
    return "\n".join(lines)


__all__ = ["DOMINATES", "NEGATIVE_CORRELATION", "pearson", "reflection_text", "term_statistics"]
