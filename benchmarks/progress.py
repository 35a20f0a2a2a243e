"""Progress models from demos (issue 21): held-out quality per task and seed, and optionally one short PPO
comparison on push, sparse vs sparse+progress. Cells are resumable: each finished cell is saved in
benchmarks/results/progress.json at once (with the machine) and skipped on the next run.

    python benchmarks/progress.py                      # quality cells: push, lift, drawer-open x seeds 0,1,2
    python benchmarks/progress.py --ppo --steps 200000 --seeds 0   # + PPO sparse vs sparse+progress on push

Quality: fit on all expert + noisy episodes of a task with 25% of the successes and
failures held out (ProgressConfig defaults, state inputs), value-order correlation (Spearman of Φ vs time up to
the first success, mean and worst held-out episode) and the AUROC of final progress (held-out successes vs
failures). The issue's full target (3M steps x 3 seeds per task, image inputs) is not what this script runs by
default; --ppo records its own budget in each cell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

from robreward.envs.bench import machine_info  # noqa: E402
from robreward.fileio import atomic_write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "progress.json"
TASKS = ("push", "lift", "drawer-open")


def _load() -> dict:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"benchmark": "progress", "cells": {}}


def _save(results: dict) -> None:
    results.update({"machine": machine_info(), "date": time.strftime("%Y-%m-%d")})
    atomic_write_json(RESULTS, results, indent=1)


def quality_cell(task: str, seed: int) -> dict:
    from robreward.feedback.progress import ProgressConfig, fit_progress

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ProgressConfig(task=task, demos=(str(ROOT / f"demos/{task}-expert.h5"),),
                                negatives=(str(ROOT / f"demos/{task}-noisy.h5"),), seed=seed)
        _, report = fit_progress(config)
    held = report["held_out"]
    return {"kind": "quality", "task": task, "seed": seed, "inputs": "state", "epochs": config.epochs,
            "value_order_correlation": held["value_order_correlation"],
            "value_order_correlation_min": held["value_order_correlation_min"],
            "final_progress_auroc": held["final_progress_auroc"], "held_out_successes": held["successes"],
            "held_out_failures": held["failures"], "train_value_order_correlation": report["train"]["value_order_correlation"],
            "fit_seconds": round(time.perf_counter() - start, 1)}


def ppo_cell(reward: str, seed: int, steps: int, run: str | None) -> dict:
    from robreward.eval import evaluate
    from robreward.rl.config import TrainConfig
    from robreward.rl.runner import train

    with tempfile.TemporaryDirectory() as tmp:
        spec = reward.replace("RUN", run or "")
        config = TrainConfig(task="push", reward=spec, steps=steps, seed=seed, out=str(Path(tmp) / "run"), progress=False)
        start = time.perf_counter()
        train(config, evaluate=evaluate)
        result = json.loads((Path(tmp) / "run" / "eval.json").read_text())
    return {"kind": "ppo", "task": "push", "reward": reward, "seed": seed, "steps": steps,
            "success_rate": result["success_rate"], "return_mean": result["return_mean"],
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--ppo", action="store_true", help="also PPO on push: sparse vs sparse+progress")
    parser.add_argument("--steps", type=int, default=200_000, help="PPO env steps per run")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = _load()
    cells = results.setdefault("cells", {})
    for task in args.tasks.split(","):
        for seed in seeds:
            key = f"quality/{task}/seed{seed}"
            if key not in cells:
                cells[key] = quality_cell(task, seed)
                _save(results)
            print(key, json.dumps(cells[key]))
    if args.ppo:
        from robreward.envs.registry import get_task
        from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

        run = ROOT / "runs" / "bench-progress-push"
        if not (run / "progress.json").is_file():
            config = ProgressConfig(task="push", demos=(str(ROOT / "demos/push-expert.h5"),),
                                    negatives=(str(ROOT / "demos/push-noisy.h5"),), seed=0)
            net, report = fit_progress(config)
            save_progress_run(run, net, config, get_task("push"), report)
        for reward in ("sparse", "sparse+progress:RUN"):
            for seed in seeds:
                key = f"ppo/push/{reward.replace(':RUN', '')}/steps{args.steps}/seed{seed}"
                if key not in cells:
                    cells[key] = ppo_cell(reward, seed, args.steps, str(run))
                    _save(results)
                print(key, json.dumps(cells[key]))


if __name__ == "__main__":
    main()
