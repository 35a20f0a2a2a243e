"""PPO defaults per task family (issue 24): a grid of world count x epochs x desired KL on push,
lift and cheetah-run (manipulation and locomotion), each at its baseline budget, several seeds.
Today's defaults were tuned on cheetah-run alone; on push they are weaker than v0's settings
(today's engine at 3M steps: 0.53 and 0.89 success; v0's 64 worlds, 5 epochs, KL 0.01: 0.98,
0.95, 0.95). The grid says which settings serve both families, or which per family.

    .venv/bin/python benchmarks/ppo_defaults.py                          # the whole grid (CPU-days on 2 cores)
    .venv/bin/python benchmarks/ppo_defaults.py --ray local              # cells as Ray tasks, one CPU each
    .venv/bin/python benchmarks/ppo_defaults.py --ray auto --tasks push  # on a Ray cluster
    .venv/bin/python benchmarks/ppo_defaults.py --tasks push --envs 32 --epochs 5 --kl 0.01 --seeds 0 \\
        --steps 20000 --episodes 5                                       # one small cell (a smoke run)

Every (task, worlds, epochs, KL, seed) is one cell, a training run in
--runs/<task>/w<worlds>_e<epochs>_kl<kl>/seed_<s> (the engine's run directory): a cell with
eval.json is done, a killed one resumes from its checkpoint, so rerunning the same command
continues the grid. A setting's seeds train at once in one process (run_cells' batched path);
`--report-only` trains nothing and writes the JSON from every finished cell of the grid asked for
(the way to merge cells that several processes trained). A cell already in --out's report (a row of
an earlier run, e.g. on a machine whose run directories are gone) counts as finished: it is kept
in the new report (marked "earlier_report": true when its run directory is not here) and not
trained again. Cells run in this process or, with --ray, as Ray tasks through
robreward.codegen.training (the path `generate --ray` uses), via scripts/baselines.py's run_cells.

Writes --out (benchmarks/results/ppo_defaults.json) with the machine, the grid and budgets
("full_grid": the issue's grid at the baseline budgets, 3 seeds; "complete": every cell asked for
finished), one
row per finished cell (success, fitness, return, training seconds), and per setting the mean
over seeds per task and its score: the fitness as a share of the best setting's on that task,
averaged over the tasks of a family ("family_score") and over all tasks ("score"). The other
PPO settings are today's defaults (robreward/rl/config.py), reward scaling included.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robreward.envs.bench import machine_info  # noqa: E402
from robreward.fileio import atomic_write_json  # noqa: E402
from robreward.rl.config import PPOConfig, TrainConfig  # noqa: E402
from scripts.baselines import FAMILY, VERSION_BUDGETS, is_done, run_cells  # noqa: E402

TASKS = ("push", "lift", "cheetah-run")
GRID = {"envs": (32, 64, 128), "epochs": (5, 10), "kl": (0.01, 0.02)}


def setting_name(envs: int, epochs: int, kl: float) -> str:
    return f"w{envs}_e{epochs}_kl{kl:g}"


def cell(task: str, envs: int, epochs: int, kl: float, seed: int, steps: int, runs: Path,
         episodes: int) -> TrainConfig:
    return TrainConfig(task=task, reward="hand", num_envs=envs, steps=steps, seed=seed,
                       out=str(runs / task / setting_name(envs, epochs, kl) / f"seed_{seed}"),
                       eval_episodes=episodes, progress=False, ppo=PPOConfig(num_epochs=epochs, desired_kl=kl))


def _train_seconds(run: Path) -> float | None:
    lines = (run / "progress.csv").read_text().strip().splitlines() if (run / "progress.csv").is_file() else []
    if len(lines) < 2:
        return None
    header, last = lines[0].split(","), lines[-1].split(",")
    return float(last[header.index("time_s")]) if "time_s" in header else None


def row(config: TrainConfig) -> dict:
    result = json.loads((Path(config.out) / "eval.json").read_text())
    return {"task": config.task, "setting": setting_name(config.num_envs, config.ppo.num_epochs, config.ppo.desired_kl),
            "num_envs": config.num_envs, "num_epochs": config.ppo.num_epochs, "desired_kl": config.ppo.desired_kl,
            "seed": config.seed, "steps": config.steps, "episodes": result["episodes"],
            "success_rate": result["success_rate"], "fitness_mean": result["fitness_mean"],
            "return_mean": result["return_mean"], "train_seconds": _train_seconds(Path(config.out))}


def _key(row_or_config) -> tuple:
    if isinstance(row_or_config, TrainConfig):
        c = row_or_config
        return (c.task, setting_name(c.num_envs, c.ppo.num_epochs, c.ppo.desired_kl), c.seed, c.steps, c.eval_episodes)
    r = row_or_config
    return (r["task"], r["setting"], r["seed"], r["steps"], r["episodes"])


def earlier_rows(path: Path) -> dict[tuple, dict]:
    """The cells of an earlier report at `path` (none if it is missing or not this benchmark's)."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict) or report.get("benchmark") != "ppo_defaults":
        return {}
    return {_key(r): r for r in report.get("cells", []) if isinstance(r, dict)}


def summarize(rows: list[dict]) -> dict:
    """Per setting: mean success/fitness over seeds per task, and its score (fitness / the best
    setting's fitness on that task, averaged over the family's tasks and over all tasks)."""
    by = {}
    for r in rows:
        by.setdefault(r["setting"], {}).setdefault(r["task"], []).append(r)
    per_task_best = {}
    settings = {}
    for name, tasks in by.items():
        settings[name] = {"tasks": {}}
        for task, cells in tasks.items():
            fitness = sum(c["fitness_mean"] for c in cells) / len(cells)
            settings[name]["tasks"][task] = {"seeds": sorted(c["seed"] for c in cells), "fitness_mean": fitness,
                                             "success_rate": sum(c["success_rate"] for c in cells) / len(cells)}
            per_task_best[task] = max(per_task_best.get(task, float("-inf")), fitness)
    for name, entry in settings.items():
        shares = {task: (t["fitness_mean"] / per_task_best[task] if per_task_best[task] > 0 else None)
                  for task, t in entry["tasks"].items()}
        families = {}
        for task, share in shares.items():
            if share is not None:
                families.setdefault(FAMILY.get(task, "locomotion"), []).append(share)
        entry["family_score"] = {f: sum(v) / len(v) for f, v in families.items()}
        known = [s for s in shares.values() if s is not None]
        entry["score"] = sum(known) / len(known) if known else None
        entry["tasks_measured"] = sorted(entry["tasks"])
    best = {}
    for family in {f for e in settings.values() for f in e["family_score"]}:
        scored = [(e["family_score"][family], n) for n, e in settings.items() if family in e["family_score"]]
        best[family] = max(scored)[1]
    return {"settings": settings, "best_per_family": best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--envs", default=",".join(map(str, GRID["envs"])), help="world counts")
    parser.add_argument("--epochs", default=",".join(map(str, GRID["epochs"])), help="PPO epochs per rollout")
    parser.add_argument("--kl", default=",".join(map(str, GRID["kl"])), help="desired KL of the adaptive schedule")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None, help="override every task's budget (default: v1 baselines')")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    parser.add_argument("--runs", default="runs/ppo_defaults", help="where the cells' run directories go")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ppo_defaults.json"))
    parser.add_argument("--ray", default=None, metavar="local|ADDRESS", help="run the cells as Ray tasks")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write --out from the cells already finished (e.g. by several processes)")
    args = parser.parse_args(argv)
    try:
        tasks = args.tasks.split(",")
        envs = [int(v) for v in args.envs.split(",")]
        epochs = [int(v) for v in args.epochs.split(",")]
        kls = [float(v) for v in args.kl.split(",")]
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError as err:
        raise SystemExit(f"--envs, --epochs, --seeds take comma-separated integers and --kl numbers: {err}") from None
    unknown = [t for t in tasks if t not in VERSION_BUDGETS["v1"]]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}: the grid takes tasks of the v1 baselines ({', '.join(VERSION_BUDGETS['v1'])})")
    runs = Path(args.runs)
    configs = [cell(task, w, e, kl, seed, args.steps or VERSION_BUDGETS["v1"][task], runs, args.episodes)
               for task, w, e, kl, seed in itertools.product(tasks, envs, epochs, kls, seeds)]
    earlier = earlier_rows(Path(args.out))
    todo = [c for c in configs if not is_done(c) and _key(c) not in earlier]
    print(f"{len(configs)} cells ({len(todo)} to run; {sum(_key(c) in earlier and not is_done(c) for c in configs)} "
          f"kept from {args.out})", flush=True)
    errors = [] if args.report_only else run_cells(todo, args.ray, log=lambda line: print(line, flush=True))
    rows = [row(c) if is_done(c) else {**earlier[_key(c)], "earlier_report": True}
            for c in configs if is_done(c) or _key(c) in earlier]
    complete = len(rows) == len(configs)
    full = (tuple(tasks) == TASKS and (tuple(envs), tuple(epochs), tuple(kls)) == tuple(GRID.values())
            and seeds == [0, 1, 2] and args.steps is None)
    report = {"benchmark": "ppo_defaults", "machine": machine_info(), "complete": complete, "full_grid": full,
              "grid": {"tasks": tasks, "envs": envs, "epochs": epochs, "desired_kl": kls, "seeds": seeds},
              "steps": {t: args.steps or VERSION_BUDGETS["v1"][t] for t in tasks}, "episodes": args.episodes,
              "command": "python benchmarks/ppo_defaults.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cells": rows, **summarize(rows)}
    atomic_write_json(args.out, report, indent=1)
    print(f"{len(rows)}/{len(configs)} cells finished -> {args.out}", flush=True)
    for line in errors:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
