"""robreward PPO vs Stable-Baselines3 PPO (rl-zoo3's tuned HalfCheetah-v3 hyperparameters) on
cheetah-run, both on CPU on this machine: wall-clock env-steps/s and the deterministic
evaluation return (hand reward) at the end of training, per seed.

    .venv/bin/python benchmarks/ppo_cpu.py                       # 1M steps x 3 seeds (hours for SB3)
    .venv/bin/python benchmarks/ppo_cpu.py --steps 50000 --seeds 0 --out /tmp/ppo_cpu.json

Writes benchmarks/results/ppo_cpu.json (or --out) with machine info.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robreward.rl import TrainConfig, load_policy, train


def machine_info() -> dict:
    import mujoco
    import stable_baselines3

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "mujoco": mujoco.__version__,
            "stable_baselines3": stable_baselines3.__version__, "platform": platform.platform(),
            "load_avg_at_start": os.getloadavg()}


def evaluate_return(run_dir: str, episodes: int, seed: int) -> dict:
    from robreward.eval import evaluate

    result = evaluate("cheetah-run", load_policy(run_dir), episodes=episodes, seed=1000 + seed)
    return {k: result[k] for k in ("return_mean", "return_std", "success_rate", "fitness_mean")}


def run_one(algo: str, steps: int, seed: int, root: Path, episodes: int) -> dict:
    out = root / f"{algo}-s{seed}"
    num_envs = 64 if algo == "ppo" else 1  # rl-zoo3: n_envs 1 for HalfCheetah
    config = TrainConfig(task="cheetah-run", reward="hand", num_envs=num_envs, steps=steps, seed=seed, out=str(out),
                         algo=algo, eval_episodes=0, progress=False)
    start = time.perf_counter()
    summary = train(config)
    wall = time.perf_counter() - start
    row = {"algo": algo, "seed": seed, "steps": summary["steps"], "num_envs": num_envs, "train_seconds": wall,
           "steps_per_s": summary["steps"] / wall}
    row.update(evaluate_return(str(out), episodes, seed))
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per run (default 1000000)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--algos", default="ppo,sb3", help="ppo,sb3 (default both)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per run (default 10)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ppo_cpu.json"))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    algos = [a for a in args.algos.split(",") if a]
    bad = sorted(set(algos) - {"ppo", "sb3"})
    if bad:
        parser.error(f"unknown algos {bad}: choose from ppo, sb3")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ppo_cpu_") as root:
        for seed in seeds:  # interleaved, so both algorithms see the same machine load
            for algo in algos:
                rows.append(run_one(algo, args.steps, seed, Path(root), args.episodes))
    summary = {}
    for algo in algos:
        mine = [r for r in rows if r["algo"] == algo]
        summary[algo] = {"steps_per_s_mean": float(np.mean([r["steps_per_s"] for r in mine])),
                         "return_mean": float(np.mean([r["return_mean"] for r in mine])),
                         "return_std_over_seeds": float(np.std([r["return_mean"] for r in mine]))}
    if {"ppo", "sb3"} <= set(summary):
        summary["speedup"] = summary["ppo"]["steps_per_s_mean"] / summary["sb3"]["steps_per_s_mean"]
    result = {"benchmark": "ppo_cpu", "task": "cheetah-run", "steps": args.steps, "seeds": seeds,
              "sb3_hyperparameters": "rl-zoo3 HalfCheetah-v3 PPO (normalize, n_envs 1, 256x256 ReLU, log_std_init -2)",
              "machine": machine_info(), "summary": summary, "runs": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
