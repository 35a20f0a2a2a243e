"""`robreward train` speed before and after the one-PPO Trainer (issue 20): env-steps/s of a single run.

BEFORE is a `git worktree` of commit c7e2edc (the two PPOs), AFTER this tree; both run as whole
`python -m robreward.cli.main train` processes with the same .venv, PYTHONPATH pointing at the
tree (each child checks that it imported robreward from there). Per task, `--pairs` pairs in
alternating order (before-after, after-before, ...); a run's speed is its progress.csv's last
step over its time_s (training only: no start-up, export or evaluation). Reported: every pair, the
medians and their ratio after/before (target >= 1.0).

    .venv/bin/python benchmarks/train_speed.py [--tasks push,cheetah-run] [--steps 65536] [--pairs 5]

Writes benchmarks/results/train_speed.json with the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_COMMIT = "c7e2edc"
TARGET = 1.0


def before_tree(path: Path, commit: str) -> Path:
    """A detached git worktree of `commit` at `path` (made once; installed nowhere)."""
    if not (path / "robreward" / "__init__.py").is_file():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                       capture_output=True)
    return path


def run_train(tree: Path, task: str, steps: int, num_envs: int, seed: int, out: Path) -> float:
    """One `robreward train` process from `tree`: its env-steps/s (last step / its training seconds)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out.parent.mkdir(parents=True, exist_ok=True)  # the children run there: the current folder comes first on sys.path
    check = subprocess.run([sys.executable, "-c", "import robreward; print(robreward.__file__)"], env=env,
                           capture_output=True, text=True, check=True, cwd=out.parent)
    if not Path(check.stdout.strip()).is_relative_to(tree):
        raise RuntimeError(f"PYTHONPATH={tree} imported robreward from {check.stdout.strip()}")
    cmd = [sys.executable, "-m", "robreward.cli.main", "train", "--task", task, "--steps", str(steps), "--seed",
           str(seed), "--envs", str(num_envs), "--out", str(out), "--eval-episodes", "0", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    last = list(csv.DictReader(open(out / "progress.csv")))[-1]
    return float(last["step"]) / float(last["time_s"])


def measure(task: str, args, trees: dict[str, Path], scratch: Path) -> dict:
    pairs = []
    for i in range(args.pairs):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        speed = {name: run_train(trees[name], task, args.steps, args.num_envs, args.seed, scratch / f"{task}-{name}-{i}")
                 for name in order}
        pairs.append({"order": "-".join(order), **{f"{name}_steps_per_s": speed[name] for name in order},
                      "ratio": speed["after"] / speed["before"]})
        print(f"{task:>12} pair {i}: before {speed['before']:>8.0f}/s  after {speed['after']:>8.0f}/s  "
              f"ratio {pairs[-1]['ratio']:.3f}", flush=True)
    before = statistics.median(p["before_steps_per_s"] for p in pairs)
    after = statistics.median(p["after_steps_per_s"] for p in pairs)
    return {"task": task, "steps": args.steps, "num_envs": args.num_envs, "pairs": pairs,
            "before_median_steps_per_s": before, "after_median_steps_per_s": after, "ratio": after / before,
            "meets_target": after / before >= TARGET}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="push,cheetah-run", help="comma-separated tasks")
    parser.add_argument("--steps", type=int, default=65_536, help="env steps per run (summed over worlds)")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=5, help="before/after pairs per task, in alternating order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before", default=BEFORE_COMMIT, help="the commit to compare against")
    parser.add_argument("--before-tree", default=None, help="its worktree (default: a temporary folder)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed.json"))
    args = parser.parse_args(argv)

    from robreward.envs.bench import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(args.before_tree) if args.before_tree else Path(tmp) / "before"
        made = not (tree / "robreward").is_dir()
        trees = {"before": before_tree(tree, args.before), "after": ROOT}
        try:
            results = [measure(task, args, trees, Path(tmp) / "runs") for task in args.tasks.split(",")]
        finally:
            if made:  # a worktree made here is removed again (git's list of worktrees too)
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    report = {"benchmark": "train_speed",
              "description": "env-steps/s of `robreward train` (one PPO run, progress.csv last step / time_s), "
                             f"commit {args.before} (before) vs this tree (after), whole processes in alternating "
                             "order; medians and their ratio",
              "before_commit": args.before, "target_ratio": TARGET, "machine": machine_info(), "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
