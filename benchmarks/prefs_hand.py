"""The hand reward trained on this machine beside benchmarks/prefs.py's preference cells (--hand-seeds,
--hand-steps): its runs (WORK/TASK/hand/), their mean per task, budget and shipped baseline (what each summary row
is compared with: fraction_of_hand_here), and how often the hand reward itself meets issue 23's bars with a given
budget (hand_spread)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

HAND_DIR = "hand"
LEGACY_MACHINE = "Intel(R) Xeon(R) Processor @ 2.80GHz"
"""The machine of the cells and hand runs saved before they named theirs (before 2026-12-07, evening): the 2-core
Intel VM that benchmarks/RESULTS.md names in each paragraph of those days."""


def machine_of(row: dict) -> str:
    """The CPU a cell or hand run was trained on (training is bit-reproducible on one machine, not across two)."""
    return row.get("machine", LEGACY_MACHINE)


def this_machine() -> str:
    from robreward.envs.bench import machine_info

    return machine_info()["cpu_model"]


def hand_key(row: dict) -> tuple:
    """One hand run per task, seed, PPO budget and machine."""
    return row["task"], row["seed"], row["steps"], machine_of(row)


def run_hand_cell(task: str, seed: int, work: Path, metric: str, steps: int | None = None) -> dict:
    """The hand reward trained on this machine with the shipped baseline's config.yaml at ``seed`` (as `robreward
    train --config policies/.../config.yaml --seed SEED` trains it) into WORK/TASK/hand/sSEED, reading its eval.json's
    ``metric`` (what the task's preference cells are judged by); with ``steps`` other
    than the config's (e.g. the budget a preference run's fresh policy gets), for that many PPO steps into
    WORK/TASK/hand/sSEED-STEPS. A finished run is read back, a killed one resumed from its latest checkpoint."""
    from robreward.codegen.finals import baseline_train_config
    from robreward.codegen.training import train_one
    from robreward.eval.baseline import load_baseline

    found = baseline_train_config(task)
    if found is None:
        raise SystemExit(f"--hand-seeds: no shipped baseline config.yaml for {task!r}")
    shipped, path = found
    steps = shipped.steps if steps is None else steps
    out = work / task / HAND_DIR / (f"s{seed}" if steps == shipped.steps else f"s{seed}-{steps}")
    config = dataclasses.replace(shipped, seed=seed, steps=steps, out=str(out), progress=False)
    if not (out / "eval.json").is_file():
        train_one(config)  # resumed from its checkpoint if it has one
    result, key = json.loads((out / "eval.json").read_text()), metric
    return {"task": task, "seed": seed, "config": path, "steps": config.steps, "run_dir": str(out), "metric": key,
            "policy": result[key], "success_rate": result["success_rate"], "return_mean": result["return_mean"],
            "hand_baseline": load_baseline(task).hand[key],  # the shipped baseline whose config this is
            "machine": this_machine()}


def hand_groups(hand_rows) -> dict[tuple, list[dict]]:
    """The hand runs per (task, steps, shipped baseline's value, machine)."""
    groups: dict[tuple, list[dict]] = {}
    for row in hand_rows:
        groups.setdefault((row["task"], row["steps"], row.get("hand_baseline"), machine_of(row)), []).append(row)
    return groups


def hand_here(hand_rows) -> dict:
    """Per (task, steps, shipped baseline's value, machine): the hand runs' seeds, mean and std of the task's
    metric. A row is compared with them only where its cells were judged against that same shipped baseline (the
    cells of an older baseline version were trained by an older engine) and trained on that machine."""
    return {key: {"seeds": sorted(r["seed"] for r in rows), "mean": float(np.mean([r["policy"] for r in rows])),
                  "std": float(np.std([r["policy"] for r in rows]))} for key, rows in hand_groups(hand_rows).items()}


SEED_GOAL, MEAN_GOAL = 0.8, 0.9
"""Issue 23's goals as fractions of the hand baseline: every one of 3 seeds (noisy teachers), the mean of 5 (oracle)."""


def hand_spread(hand_rows, resamples: int = 10_000) -> list[dict]:
    """Per (task, steps, shipped baseline): the same-machine hand runs as fractions of the shipped baseline, and how
    often the hand reward itself, trained for those steps, meets issue 23's goals: the share of seeds at
    SEED_GOAL or more, the chance that 3 seeds all are (the share cubed, the seeds being independent) and the chance
    that the mean of 5 seeds drawn from these is at least MEAN_GOAL (resampled with a fixed generator). What a
    preference run's fresh policy can be asked for, with the steps it gets."""
    out = []
    for (task, steps, shipped, machine), rows in sorted(hand_groups(hand_rows).items(),
                                                        key=lambda item: (item[0][0], item[0][1], item[0][3])):
        rows = sorted(rows, key=lambda r: r["seed"])
        fractions = np.array([r["policy"] / shipped for r in rows])
        share = float(np.mean(fractions >= SEED_GOAL))
        means = np.random.default_rng(0).choice(fractions, size=(resamples, 5)).mean(axis=1)
        out.append({"task": task, "steps": steps, "hand_baseline": shipped, "machine": machine,
                    "seeds": [r["seed"] for r in rows],
                    "fractions": [round(float(f), 4) for f in fractions], "mean": float(fractions.mean()),
                    "std": float(fractions.std()), "share_at_seed_goal": share, "three_seeds_all_at_seed_goal": share ** 3,
                    "five_seed_mean_at_mean_goal": float(np.mean(means >= MEAN_GOAL))})
    return out
