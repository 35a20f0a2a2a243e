"""Compare runs: a markdown table (return, success, fitness, HNS, significance vs hand) and a
PNG of learning curves.

    compare(["runs/push-hand", "runs/push-llm", "runs/push-sparse"], out="runs/compare")

A run is a run directory (config.yaml, eval.json, progress.csv; ARCHITECTURE.md "Run
directory") or a seed group: a directory holding ``seed_0/``, ``seed_1/``, ... run dirs.
A single run dir whose eval.json has a "per_seed" list counts as several seeds.

H and S (hand and sparse fitness) come from the given runs whose reward is "hand"/"sparse"
(same task), else from the shipped baseline ``policies/<task>/eval.json`` (baseline.py).
The p-value is the one-sided Welch test of "fitness better than the hand reward's" over
seeds (stats.py); the hand side's seeds come from the hand run or the baseline's per_seed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from robreward import rundir
from robreward.eval.baseline import Baseline, load_baseline
from robreward.eval.hns import HNS, hns, mean_hns
from robreward.eval.plots import plot_learning_curves, read_progress
from robreward.eval.stats import better_than_hand, format_p
from robreward.fileio import atomic_write_json, atomic_write_text

SEED_DIR = rundir.SEED_DIR


@dataclasses.dataclass
class Run:
    """One row of the comparison: a run dir or a seed group."""

    label: str
    path: Path
    task: Optional[str]
    reward: str
    seeds: list
    evals: list  # per seed: eval dict (numeric fields) or None
    progress: list  # per seed: {column: array}
    eval_json: Optional[dict] = None  # the run's own eval.json (single run)

    def per_seed(self, key: str) -> list[float]:
        return [e[key] for e in self.evals if e and e.get(key) is not None]

    def mean(self, key: str) -> Optional[float]:
        vals = self.per_seed(key)
        return float(np.mean(vals)) if vals else None


def _read_json(path: Path) -> Optional[dict]:
    return rundir.read_eval(path) if path.is_file() else None


def _seed_dirs(path: Path) -> list[tuple[int, Path]]:
    return rundir.seed_dirs(path)


def _load_single(path: Path) -> tuple[dict, Optional[dict], dict]:
    config = rundir.read_config(path) if (path / rundir.CONFIG_FILE).is_file() else {}
    ev = _read_json(path / rundir.EVAL_FILE)
    progress = read_progress(path / rundir.PROGRESS_FILE)
    if not config and ev is None and not progress:
        raise ValueError(f"{str(path)!r} is not a run directory: no config.yaml, eval.json or progress.csv "
                         "(nor seed_0/, seed_1/, ... sub-runs)")
    return config, ev, progress


def load_run(path) -> Run:
    """Read a run dir or a seed group dir, or a prefs / generate run's final policy run
    (rundir.find_policy_run); clear errors for a missing or empty one."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory: compare takes run directories")
    label = path.name or str(path)
    if not (path / rundir.CONFIG_FILE).is_file() and not rundir.seed_dirs(path):
        try:
            found = rundir.find_policy_run(path)
        except FileNotFoundError:
            found = None
        if found is not None and found.kind in ("prefs", "generate"):
            if found.policy_path.is_file():
                raise ValueError(f"{str(path)!r} is a generate run without its final seeds (final/seed_N/): compare "
                                 "reads training runs; let the run finish its final stage, or resume it")
            run = load_run(found.policy_path)
            run.label, run.path = label, path
            return run
    subs = _seed_dirs(path)
    if subs:
        seeds, evals, progress, task, reward = [], [], [], None, None
        for seed, sub in subs:
            config, ev, prog = _load_single(sub)
            seeds.append(int(config.get("seed", seed)))
            evals.append(ev)
            progress.append(prog)
            task = task or config.get("task") or (ev or {}).get("task")
            reward = reward or config.get("reward") or (ev or {}).get("reward")
        return Run(label, path, task, str(reward or "?"), seeds, evals, progress)
    config, ev, prog = _load_single(path)
    task = config.get("task") or (ev or {}).get("task")
    reward = str(config.get("reward") or (ev or {}).get("reward") or "?")
    if ev and ev.get("per_seed"):
        per = ev["per_seed"]
        return Run(label, path, task, reward, [int(r.get("seed", i)) for i, r in enumerate(per)], list(per),
                   [prog] if prog else [], ev)
    seed = config.get("seed", (ev or {}).get("seeds", [None])[0] if ev else None)
    return Run(label, path, task, reward, [seed], [ev], [prog] if prog else [], ev)


@dataclasses.dataclass
class Reference:
    """H and S for one task, and where they came from."""

    h: Optional[float]
    s: Optional[float]
    hand_seeds: list
    h_source: str
    s_source: str
    hand_path: Optional[str] = None  # the hand run among the compared ones, if any


def _reward_kind(reward: str) -> str:
    return str(reward).strip().lower()


def find_reference(task: Optional[str], runs: Sequence[Run], baseline: Optional[Baseline]) -> Reference:
    same = [r for r in runs if r.task == task]
    hand = next((r for r in same if _reward_kind(r.reward) == "hand" and r.per_seed("fitness_mean")), None)
    sparse = next((r for r in same if _reward_kind(r.reward) == "sparse" and r.per_seed("fitness_mean")), None)
    if hand is not None:
        h, seeds, h_src = hand.mean("fitness_mean"), hand.per_seed("fitness_mean"), f"run {hand.label}"
    elif baseline is not None and baseline.hand_fitness is not None:
        h, seeds, h_src = baseline.hand_fitness, baseline.hand_fitness_per_seed, f"baseline {baseline.path}"
    else:
        h, seeds, h_src = None, [], "none"
    if sparse is not None:
        s, s_src = sparse.mean("fitness_mean"), f"run {sparse.label}"
    elif baseline is not None and baseline.sparse_fitness is not None:
        s, s_src = baseline.sparse_fitness, f"baseline {baseline.path}"
    else:
        s, s_src = None, "none"
    return Reference(h, s, seeds, h_src, s_src, str(hand.path) if hand is not None else None)


def _fmt(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _return_cell(run: Run) -> str:
    vals = run.per_seed("return_mean")
    if len(vals) >= 2:
        return f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"
    if vals:
        std = (run.evals[0] or {}).get("return_std") if len(run.evals) == 1 else None
        return f"{vals[0]:.1f} ± {std:.1f}" if std is not None else f"{vals[0]:.1f}"
    return "-"


def baseline_runs(base: Baseline) -> list[Run]:
    """The shipped baseline's hand and sparse results as table rows (no learning curves)."""
    rows = []
    for kind, data in (("hand", base.hand), ("sparse", base.sparse)):
        if not data or data.get("fitness_mean") is None:
            continue
        per = data.get("per_seed") or [data]
        seeds = [int(r.get("seed", i)) for i, r in enumerate(per)]
        rows.append(Run(f"shipped {kind} baseline", base.path.parent, base.task, kind, seeds, list(per), [], data))
    return rows


def build_rows(runs: Sequence[Run], baseline_root=None) -> tuple[list[dict], dict]:
    """One dict per run (numbers + formatted cells) and the references per task; the shipped
    baselines of the runs' tasks (policies/<task>/) come first, so the table shows H and S."""
    refs, shipped = {}, []
    for task in dict.fromkeys(r.task for r in runs):
        base = load_baseline(task, baseline_root) if task else None
        refs[task] = find_reference(task, runs, base)
        if base is not None:
            shipped += baseline_runs(base)
    rows = []
    for run in [*shipped, *runs]:
        ref = refs[run.task]
        fitness = run.mean("fitness_mean")
        score: HNS = hns(fitness, ref.h, ref.s)
        is_hand = ref.hand_path == str(run.path) or (run.reward == "hand" and any(run is b for b in shipped))
        test = None if is_hand or not ref.hand_seeds else better_than_hand(run.per_seed("fitness_mean"), ref.hand_seeds)
        rows.append({
            "run": run.label, "path": str(run.path), "task": run.task, "reward": run.reward,
            "seeds": len(run.seeds), "return_mean": run.mean("return_mean"),
            "success_rate": run.mean("success_rate"), "fitness_mean": fitness,
            "hns": score.to_dict(), "vs_hand": test,
            "cells": [run.label, str(run.task or "-"), run.reward, str(len(run.seeds)), _return_cell(run),
                      _fmt(run.mean("success_rate")), _fmt(fitness), score.format(),
                      "-" if is_hand else ("no hand seeds" if not ref.hand_seeds else format_p(test))],
        })
    return rows, refs


HEADER = ("run", "task", "reward", "seeds", "return (hand) mean ± std", "success", "fitness", "HNS", "vs hand")


def markdown_table(rows: Sequence[dict], refs: dict) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row["cells"]) + " |" for row in rows]
    notes = []
    for task, ref in refs.items():
        notes.append(f"- {task}: H (hand fitness) = {_fmt(ref.h, 3)} from {ref.h_source}; "
                     f"S (sparse fitness) = {_fmt(ref.s, 3)} from {ref.s_source}")
    undefined: dict[str, list[str]] = {}  # one note per reason, naming its runs
    for row in rows:
        if row["hns"]["reason"]:
            undefined.setdefault(row["hns"]["reason"], []).append(row["run"])
    notes += [f"- {', '.join(names)}: HNS undefined: {reason}" for reason, names in undefined.items()]
    for row in rows:
        if row["vs_hand"] and row["vs_hand"].get("testable"):
            notes.append(f"- {row['run']}: {row['vs_hand']['summary']}")
    avg = mean_hns(row["hns"]["value"] for row in rows if _reward_kind(row["reward"]) not in ("hand", "sparse"))
    if avg is not None:
        notes.append(f"- mean HNS of the non-baseline runs (each clipped to [0, 3], as Eureka): {_fmt(avg)}")
    notes.append("- return: mean ± std over seeds (one seed: over episodes); HNS = (M - S)/|H - S| on fitness; "
                 "vs hand: one-sided Welch t-test on per-seed fitness, * = significant at 0.05")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


COMPARE_FILES = ("compare.md", "compare.json", "curves.png")


def compare(run_dirs: Sequence, out=None, baseline_root=None, overwrite: bool = False) -> dict:
    """Read the runs, write <out>/compare.md, <out>/compare.json and <out>/curves.png.

    out defaults to the first run's parent / "compare". An existing comparison there is refused
    unless ``overwrite`` (FileExistsError). Returns {table, markdown, json, png, rows, out}.
    """
    if not run_dirs:
        raise ValueError("compare needs at least one run directory")
    out = Path(out) if out is not None else Path(run_dirs[0]).resolve().parent / "compare"
    existing = [name for name in COMPARE_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds a comparison ({', '.join(existing)}): pass --overwrite to "
                              "replace it, or --out DIR for a new one")
    runs = [load_run(p) for p in run_dirs]
    rows, refs = build_rows(runs, baseline_root)
    table = markdown_table(rows, refs)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic_write_text(out / "compare.md", "# Comparison\n\n" + table + "\n![learning curves](curves.png)\n")
    payload = {"rows": [{k: v for k, v in r.items() if k != "cells"} for r in rows],
               "references": {str(t): dataclasses.asdict(r) for t, r in refs.items()}}
    js = atomic_write_json(out / "compare.json", payload, indent=2)
    tasks = sorted({str(r.task) for r in runs})
    png = plot_learning_curves([(r.label, r.progress) for r in runs], out / "curves.png",
                               title=", ".join(tasks))
    return {"table": table, "markdown": md, "json": js, "png": png, "rows": rows, "out": out}
