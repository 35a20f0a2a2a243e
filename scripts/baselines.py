"""make baselines: train the hand-reward and sparse-reward PPO baselines of every task over 3
seeds on CPU budgets and publish them as a baselines version.

    v1 (default)  policies/v1/<task>/   today's engine, PPO settings per task family (FAMILY_PPO),
                                        the v1 task list (hopper-hop-v1, humanoid-run-v1, humanoid-kneel-v1, -v2)
    v0            policies/<task>/      the first baselines (rsl_rl's 5 epochs and desired KL 0.01,
                                        no reward scaling), kept as shipped: a published folder is
                                        never overwritten, so v0 is only reproduced into --dest

Each published folder holds policy.onnx (of the median hand seed), config.yaml (its training
config), MODEL_CARD.md (budget, engine settings, per-seed numbers) and eval.json (per-seed hand
and sparse numbers; H and S, the hand and sparse fitness that HNS reads; the schema of
robreward/eval/baseline.py).

Every (task, reward, seed) is one cell, a training run in --runs/<version>/<task>/<reward>/seed_<s>:
a cell with eval.json is done and skipped, a killed one resumes from its checkpoint, so a rerun of
the same command continues where it stopped. A task's cells train at once in one process (one batched
env of 6 x 64 worlds, robreward.codegen.training.train_candidates; --sequential: one by one). With --ray (an address, or "local") the cells are Ray
tasks (robreward.codegen.training, the path `generate --ray` uses), one CPU each.

    python scripts/baselines.py --tasks reach,push --seeds 0,1,2
    python scripts/baselines.py --ray local                   # every cell of v1 on a local Ray
    python scripts/baselines.py --table                       # the markdown table of policies/v1
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

from robreward.envs.registry import task_names
from robreward.eval.evaluate import aggregate_seeds
from robreward.fileio import atomic_write_json, atomic_write_text
from robreward.rl.config import PPOConfig, TrainConfig

VERSIONS = ("v0", "v1")
REWARDS = ("hand", "sparse")
# env steps per seed: what 2 CPU cores afford (each MODEL_CARD.md states its budget). BUDGETS: v0's.
BUDGETS = {
    "reach": 150_000,
    "push": 3_000_000,  # at 1M the deterministic policy stalls (success 0.45; sampled 0.95); 3M: 0.98
    "lift": 1_000_000,
    "drawer-open": 1_000_000,
    "cheetah-run": 1_000_000,
    "hopper-hop": 1_000_000,
    "ant-run": 1_000_000,
    "humanoid-run": 500_000,  # humanoids: 4x slower per step than cheetah on CPU; the 2-core budget
    "humanoid-kneel": 500_000,
}
VERSION_BUDGETS = {
    "v0": BUDGETS,
    # v1: v0's budgets (like for like), on the v1 task versions
    "v1": {
        "reach": 150_000,
        "push": 3_000_000,
        "lift": 1_000_000,
        "drawer-open": 1_000_000,
        "cheetah-run": 1_000_000,
        "hopper-hop-v1": 1_000_000,
        "ant-run": 1_000_000,
        # humanoid-run-v1 (10 m from the start) at 3M steps, where the hand reward runs (docs/baselines.md);
        # humanoid-run at 500k (neither reward runs) was v1's first row, and policies/v1/humanoid-run stays
        "humanoid-run-v1": 3_000_000,
        "humanoid-kneel-v1": 500_000,
        "humanoid-kneel-v2": 500_000,
    },
}
FAMILY = {"reach": "manipulation", "push": "manipulation", "lift": "manipulation", "drawer-open": "manipulation",
          "cheetah-run": "locomotion", "hopper-hop": "locomotion", "hopper-hop-v1": "locomotion",
          "ant-run": "locomotion", "humanoid-run": "locomotion", "humanoid-run-v1": "locomotion",
          "humanoid-kneel": "locomotion",
          "humanoid-kneel-v1": "locomotion", "humanoid-kneel-v2": "locomotion"}
# The PPO of v0 (each policies/<task>/config.yaml records it): rsl_rl's 5 epochs and desired KL
# 0.01, no reward scaling, 64 worlds.
BASELINE_PPO = PPOConfig(num_epochs=5, desired_kl=0.01, normalize_rewards=False)
# v1: (worlds, PPO) per task family, until benchmarks/ppo_defaults.py's grid is run (docs/baselines.md).
# locomotion: today's defaults (cheetah-run 1M steps: 6208 +- 533 over 3 seeds vs v0's 3157);
# manipulation: v0's settings, which on push at 3M reached 0.98/0.95/0.95 where today's defaults
# reached 0.53 and 0.89 (issue 24).
FAMILY_PPO = {
    "manipulation": (64, BASELINE_PPO),
    "locomotion": (64, PPOConfig()),
}
PER_SEED = ("return_mean", "return_std", "train_reward_return_mean", "success_rate", "fitness_mean",
            "episode_length_mean", "terms")


def settings(version: str, task: str) -> tuple[int, PPOConfig]:
    """(worlds, PPOConfig) a baselines version trains `task` with."""
    if version == "v0":
        return 64, BASELINE_PPO
    return FAMILY_PPO[FAMILY.get(task, "locomotion")]


def dest_folder(version: str, dest: Path, task: str) -> Path:
    """policies/<task> for v0, policies/<version>/<task> after (robreward.eval.baseline's layout)."""
    return dest / task if version == "v0" else dest / version / task


def cell_config(version: str, task: str, reward: str, seed: int, steps: int, runs: Path, episodes: int,
                num_envs: int | None = None) -> TrainConfig:
    worlds, ppo = settings(version, task)
    out = runs / version / task / reward / f"seed_{seed}"
    return TrainConfig(task=task, reward=reward, num_envs=num_envs or worlds, steps=steps, seed=seed, out=str(out),
                       eval_episodes=episodes, progress=False, ppo=ppo)


def is_done(config: TrainConfig) -> bool:
    return (Path(config.out) / "eval.json").is_file()


def run_cells(configs: list[TrainConfig], ray: str | None = None, log=print, batched: bool = True) -> list[str]:
    """Train every cell that has no eval.json (resuming a killed one from its checkpoint): with ``batched``
    (the default) the cells of one task at once in one process (robreward.codegen.training.train_candidates,
    one K x worlds env, each cell its own world group, seed and run dir, numbers as a separate run's up to
    float rounding), else one after another, or as Ray tasks (``ray``: an address or "local"). Returns the
    errors of failed cells ("out: error"); the others are done."""
    from robreward.codegen.training import train_candidates, train_one
    from robreward.rundir import RunDir

    todo = [c for c in configs if not is_done(c)]
    for config in configs:
        if is_done(config):
            log(f"  done: {config.out}")
    errors = []
    if ray is None and batched:
        groups: dict[tuple, list[TrainConfig]] = {}
        for config in todo:
            key = (config.task, config.steps, config.num_envs, config.backend, config.eval_episodes, repr(config.ppo))
            groups.setdefault(key, []).append(config)
        for (task, steps, worlds, backend, episodes, _), cells in groups.items():
            for config in cells:  # a failure of an earlier attempt is retried (not one another process is writing)
                if not RunDir(config.out).in_use():
                    (Path(config.out) / "failed.json").unlink(missing_ok=True)
            start = time.time()
            log(f"  {task}: {len(cells)} cell(s) at once, {steps:,} steps x {worlds} worlds each")
            train_candidates(task, [c.reward for c in cells], steps, [c.seed for c in cells], [c.out for c in cells],
                             num_envs=worlds, eval_episodes=episodes, ppo=cells[0].ppo, backend=backend)
            for config in cells:
                failed = Path(config.out) / "failed.json"
                if not is_done(config) and RunDir(config.out).in_use():
                    errors.append(f"{config.out}: being trained by another process (left to it)")
                    log(f"  SKIPPED {config.out}: another process is training it")
                elif not is_done(config):
                    reason = json.loads(failed.read_text()).get("error") if failed.is_file() else "no eval.json"
                    errors.append(f"{config.out}: {reason}")
                    log(f"  FAILED {config.out}: {reason}")
            log(f"  {task}: {time.time() - start:.0f}s")
        return errors
    if ray is None:
        for config in todo:
            start = time.time()
            try:
                train_one(config)
            except Exception as err:  # noqa: BLE001 - one cell's failure is reported; the others still run
                errors.append(f"{config.out}: {type(err).__name__}: {err}")
                log(f"  FAILED {config.out}: {type(err).__name__}: {err}")
                continue
            log(f"  {config.out}: {time.time() - start:.0f}s")
        return errors
    from robreward.codegen.training import _ray_train, connect_ray
    from robreward.rundir import SCHEMA_VERSION

    ray_module = connect_ray(ray)
    remote = ray_module.remote(_ray_train).options(num_cpus=1)
    pending = {remote.remote({"schema_version": SCHEMA_VERSION, **c.to_dict()}): c for c in todo}
    log(f"  {len(pending)} cell(s) on Ray ({ray})")
    while pending:
        ready, _ = ray_module.wait(list(pending), num_returns=1)
        config = pending.pop(ready[0])
        try:
            ray_module.get(ready[0])
            log(f"  {config.out}: done")
        except Exception as err:  # noqa: BLE001 - a RayTaskError wraps the cell's own exception
            cause = getattr(err, "cause", None) or err
            errors.append(f"{config.out}: {type(cause).__name__}: {cause}")
            log(f"  FAILED {config.out}: {type(cause).__name__}: {cause}")
    return errors


def _summaries(configs: dict[str, list[TrainConfig]]) -> dict:
    summary = {}
    for reward, cells in configs.items():
        per_seed, first = [], None
        for config in cells:
            result = json.loads((Path(config.out) / "eval.json").read_text())
            first = first or result
            per_seed.append({"seed": config.seed, **{k: result[k] for k in PER_SEED}})
        base = {k: first[k] for k in ("task", "task_version", "reward", "episodes")}
        summary[reward] = {**aggregate_seeds(per_seed, base), "steps": cells[0].steps}
    return summary


def _engine(config: TrainConfig) -> dict:
    return {"algo": config.algo, "num_envs": config.num_envs, "backend": config.backend, "device": config.device,
            "ppo": config.to_dict()["ppo"]}


def _git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def model_card(version: str, task: str, summary: dict, median_seed: int, config: TrainConfig) -> str:
    hand, sparse = summary["hand"], summary["sparse"]
    steps = config.steps
    rows = ["| reward | seed | success | fitness | return | episode length |", "| --- | --- | --- | --- | --- | --- |"]
    for reward in REWARDS:
        for r in summary[reward]["per_seed"]:
            rows.append(f"| {reward} | {r['seed']} | {r['success_rate']:.2f} | {r['fitness_mean']:.3f} | "
                        f"{r['return_mean']:.1f} | {r['episode_length_mean']:.0f} |")
    ppo = ", ".join(f"{k} {v}" for k, v in _engine(config)["ppo"].items())
    lines = [
        f"# {task}: shipped baselines {version}", "",
        f"Hand-reward and sparse-reward PPO on `{task}` (task version {hand['task_version']}), "
        f"{steps:,} env steps per seed, seeds {hand['seeds']}, trained by `make baselines` "
        f"(`python scripts/baselines.py --version {version} --tasks {task}`).",
        "",
        f"- H (hand fitness, mean over seeds): {hand['fitness_mean']:.4f}; success {hand['success_rate']:.2f}",
        f"- S (sparse fitness, mean over seeds): {sparse['fitness_mean']:.4f}; success {sparse['success_rate']:.2f}",
        f"- policy.onnx: the hand-reward policy of seed {median_seed} (the median hand return); "
        "config.yaml is its training config",
        f"- evaluation: {hand['episodes']} deterministic episodes per seed",
        "",
        "## Engine", "",
        f"- robreward PPO, {config.num_envs} worlds, backend {config.backend}, device {config.device}",
        f"- PPO: {ppo}",
        f"- commit {_git_commit() or 'unknown'}, python {platform.python_version()}, written "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}",
        "",
        "## Per seed", "", *rows, "",
    ]
    return "\n".join(lines)


def publish(version: str, task: str, configs: dict[str, list[TrainConfig]], dest: Path) -> Path:
    """Write the baselines folder of `task` from its finished cells (refused if it exists)."""
    summary = _summaries(configs)
    hand_returns = {c.seed: r["return_mean"] for c, r in zip(configs["hand"], summary["hand"]["per_seed"])}
    median_seed = sorted(hand_returns, key=hand_returns.get)[len(hand_returns) // 2]
    median = next(c for c in configs["hand"] if c.seed == median_seed)
    out = dest_folder(version, dest, task)
    if out.exists():
        raise FileExistsError(f"{out} exists: a published baselines folder is never overwritten")
    staging = out.with_name(f".{out.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    run = Path(median.out)
    for name in ("policy.onnx", "config.yaml"):
        shutil.copy2(run / name, staging / name)
    atomic_write_text(staging / "MODEL_CARD.md", model_card(version, task, summary, median_seed, median))
    data = {**summary["hand"], "policy_seed": median_seed, "baselines_version": version,
            "H": summary["hand"]["fitness_mean"], "S": summary["sparse"]["fitness_mean"],
            "engine": _engine(median), "sparse": summary["sparse"]}
    atomic_write_json(staging / "eval.json", data, indent=2)
    staging.rename(out)  # the folder appears whole or not at all
    return out


def table(version: str, dest: Path) -> str:
    """Markdown table of a shipped baselines version (for the README and docs/baselines.md)."""
    rows = ["| task | env steps / seed | hand: success | hand: return | hand: fitness | sparse: success | sparse: fitness |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, budget in VERSION_BUDGETS[version].items():
        path = dest_folder(version, dest, task) / "eval.json"
        if not path.is_file():
            rows.append(f"| {task} | {budget:,} | not trained yet | | | | |")
            continue
        e = json.loads(path.read_text())
        s = e["sparse"]
        rows.append(f"| {task} | {e.get('steps', budget):,} | {e['success_rate']:.2f} | {e['return_mean']:.1f} "
                    f"± {e['return_std'] or 0:.1f} | {e['fitness_mean']:.3f} | {s['success_rate']:.2f} | "
                    f"{s['fitness_mean']:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="v1", choices=VERSIONS, help="baselines version (default v1)")
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: every task of the version)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None, help="override every task's budget (tests, smoke runs)")
    parser.add_argument("--envs", type=int, default=None, help="override the worlds per run (tests, smoke runs)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per seed")
    parser.add_argument("--runs", default="runs/baselines", help="where the training cells go")
    parser.add_argument("--dest", default="policies", help="the policies/ folder to publish into")
    parser.add_argument("--ray", default=None, metavar="local|ADDRESS",
                        help="run the cells as Ray tasks (local: a Ray instance on this machine)")
    parser.add_argument("--sequential", action="store_true",
                        help="train the cells one after another (default: a task's cells at once in one process)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of the version and exit")
    args = parser.parse_args(argv)
    budgets = VERSION_BUDGETS[args.version]
    dest, runs = Path(args.dest), Path(args.runs)
    if args.table:
        print(table(args.version, dest))
        return 0
    tasks = args.tasks.split(",") if args.tasks else list(budgets)
    for task in tasks:
        if task not in task_names():
            raise SystemExit(f"unknown task {task!r}; tasks: {', '.join(task_names())}")
        if task not in budgets and args.steps is None:
            raise SystemExit(f"{task!r} is not a task of baselines {args.version} ({', '.join(budgets)}); "
                             "pass --steps to train it anyway")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated integers, e.g. 0,1,2 (got {args.seeds!r})") from None
    for name in ("steps", "envs", "episodes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name} must be >= 1, got {value}")
    cells = {task: {reward: [cell_config(args.version, task, reward, seed, args.steps or budgets[task], runs,
                                         args.episodes, args.envs) for seed in seeds] for reward in REWARDS}
             for task in tasks}
    todo = [task for task in tasks if not dest_folder(args.version, dest, task).exists()]
    for task in tasks:
        if task not in todo:
            print(f"{task}: already published in {dest_folder(args.version, dest, task)} (kept)")
    for task in todo:
        steps = cells[task]["hand"][0].steps
        print(f"{task}: {steps:,} steps x seeds {seeds} x {'/'.join(REWARDS)}", flush=True)

    def log(line):
        print(line, flush=True)

    def publish_done(tasks):
        for task in tasks:
            if all(is_done(c) for reward in REWARDS for c in cells[task][reward]):
                log(f"{task} -> {publish(args.version, task, cells[task], dest)}")

    errors = []
    if args.ray is None:  # task by task, each published as soon as its cells are done
        for task in todo:
            errors += run_cells([c for reward in REWARDS for c in cells[task][reward]], log=log,
                                batched=not args.sequential)
            publish_done([task])
    else:  # every cell at once on the cluster
        errors = run_cells([c for task in todo for reward in REWARDS for c in cells[task][reward]], args.ray, log=log)
        publish_done(todo)
    if errors:
        print(f"{len(errors)} cell(s) failed (rerun the same command to retry them):", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
