"""robreward PPO vs Stable-Baselines3 PPO (rl-zoo3's tuned HalfCheetah-v3 hyperparameters) on
cheetah-run, both on CPU on this machine: wall-clock env-steps/s and the deterministic
evaluation return (hand reward) at the end of training, per seed.

    .venv/bin/python benchmarks/ppo_cpu.py                       # 1M steps x 3 seeds (hours for SB3)
    .venv/bin/python benchmarks/ppo_cpu.py --jobs 3 --resume     # the SB3 seeds side by side; resumable
    .venv/bin/python benchmarks/ppo_cpu.py --steps 50000 --seeds 0 --out /tmp/ppo_cpu.json

Writes benchmarks/results/ppo_cpu.json (or --out) with machine info. Every finished run is also
appended to OUT.partial.jsonl at once, so a killed benchmark loses only the runs in flight;
--resume reuses the finished runs recorded there (same steps) instead of training them again.

Speed is reported two ways: wall-clock env-steps/s, and env-steps per CPU-second of the run's
process (user + system time of all its threads). With --jobs > 1 the runs share the cores, so
wall-clock speeds are lower than on an idle machine; the CPU-time figure is not affected by that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robreward.fileio import atomic_write_json
from robreward.rl import TrainConfig, load_policy, train


def machine_info() -> dict:
    """robreward.envs.bench.machine_info plus the SB3 version and the load at the start."""
    import stable_baselines3

    from robreward.envs import bench

    return {**bench.machine_info(), "stable_baselines3": stable_baselines3.__version__,
            "load_avg_at_start": os.getloadavg()}


def evaluate_return(run_dir: str, episodes: int, seed: int) -> dict:
    from robreward.eval import evaluate

    result = evaluate("cheetah-run", load_policy(run_dir), episodes=episodes, seed=1000 + seed)
    return {k: result[k] for k in ("return_mean", "return_std", "success_rate", "fitness_mean")}


def run_one(algo: str, steps: int, seed: int, root: str, episodes: int) -> dict:
    out = Path(root) / f"{algo}-s{seed}"
    num_envs = 64 if algo == "ppo" else 1  # rl-zoo3: n_envs 1 for HalfCheetah
    config = TrainConfig(task="cheetah-run", reward="hand", num_envs=num_envs, steps=steps, seed=seed, out=str(out),
                         algo=algo, eval_episodes=0, progress=False)
    cpu_start, start = process_cpu_seconds(), time.perf_counter()
    summary = train(config)
    wall, cpu = time.perf_counter() - start, process_cpu_seconds() - cpu_start
    row = {"algo": algo, "seed": seed, "steps": summary["steps"], "requested_steps": steps, "num_envs": num_envs,
           "train_seconds": wall, "train_cpu_seconds": cpu, "steps_per_s": summary["steps"] / wall,
           "steps_per_cpu_s": summary["steps"] / cpu, "load_avg_at_end": os.getloadavg(),
           "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    row.update(evaluate_return(str(out), episodes, seed))
    return row


def process_cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (the simulator's pool included)."""
    times = os.times()
    return times.user + times.system


def _run_in_child(args: tuple) -> dict:
    torch.set_num_threads(1)
    return run_one(*args)


def read_partial(path: Path, steps: int) -> list[dict]:
    """Finished runs recorded by an earlier (killed) invocation with the same step budget."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
        if row.get("requested_steps") == steps:
            rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per run (default 1000000)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--algos", default="ppo,sb3", help="ppo,sb3 (default both)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per run (default 10)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ppo_cpu.json"))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1: one at a time)")
    parser.add_argument("--resume", action="store_true", help="reuse the finished runs in OUT.partial.jsonl")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    algos = [a for a in args.algos.split(",") if a]
    bad = sorted(set(algos) - {"ppo", "sb3"})
    if bad:
        parser.error(f"unknown algos {bad}: choose from ppo, sb3")
    partial = Path(args.out + ".partial.jsonl")
    partial.parent.mkdir(parents=True, exist_ok=True)
    done = read_partial(partial, args.steps) if args.resume else []
    if not args.resume:
        partial.unlink(missing_ok=True)
    done = [r for r in done if r["algo"] in algos and r["seed"] in seeds]
    have = {(r["algo"], r["seed"]) for r in done}
    for row in done:
        print(f"reusing {row['algo']} seed {row['seed']} from {partial} ({row['finished']})", flush=True)
    # interleaved seeds, so both algorithms see the same machine load; the long SB3 runs start first
    todo = sorted(((a, s) for s in seeds for a in algos if (a, s) not in have), key=lambda t: (t[0] != "sb3", t[1]))
    rows = list(done)
    with tempfile.TemporaryDirectory(prefix="ppo_cpu_") as root:
        jobs = [(algo, args.steps, seed, root, args.episodes) for algo, seed in todo]

        def record(row: dict) -> None:
            rows.append(row)
            with open(partial, "a") as f:  # one line per finished run, flushed at once
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

        if args.jobs == 1:
            for job in jobs:
                record(run_one(*job))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
                for future in as_completed([pool.submit(_run_in_child, job) for job in jobs]):
                    record(future.result())
    rows.sort(key=lambda r: (r["algo"], r["seed"]))
    summary = {}
    for algo in algos:
        mine = [r for r in rows if r["algo"] == algo]
        summary[algo] = {"steps_per_s_mean": float(np.mean([r["steps_per_s"] for r in mine])),
                         "steps_per_cpu_s_mean": float(np.mean([r.get("steps_per_cpu_s", np.nan) for r in mine])),
                         "return_mean": float(np.mean([r["return_mean"] for r in mine])),
                         "return_std_over_seeds": float(np.std([r["return_mean"] for r in mine]))}
    if {"ppo", "sb3"} <= set(summary):
        summary["speedup"] = summary["ppo"]["steps_per_s_mean"] / summary["sb3"]["steps_per_s_mean"]
        summary["speedup_cpu_time"] = summary["ppo"]["steps_per_cpu_s_mean"] / summary["sb3"]["steps_per_cpu_s_mean"]
        summary["return_ratio"] = summary["ppo"]["return_mean"] / summary["sb3"]["return_mean"]
    result = {"benchmark": "ppo_cpu", "task": "cheetah-run", "steps": args.steps, "seeds": seeds, "jobs": args.jobs,
              "sb3_hyperparameters": "rl-zoo3 HalfCheetah-v3 PPO (normalize, n_envs 1, 256x256 ReLU, log_std_init -2)",
              "machine": machine_info(), "summary": summary, "runs": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_json(Path(args.out), result)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
