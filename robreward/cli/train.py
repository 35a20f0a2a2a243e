"""`robreward train`: train a policy with PPO (robreward's batched PPO or SB3) into a run directory.

    robreward train --task push --reward hand --envs 64 --steps 2000000 --seed 0 --out runs/push-hand
    robreward train --task push --reward my_reward.py ...
    robreward train --resume runs/push-hand
    robreward train --resume runs/my-task-run --task path/to/my_task    (a run on a task folder)
    robreward train --task cheetah-run --algo sb3 ...
"""

from __future__ import annotations

import os
from pathlib import Path

from robreward.cli.main import CliError

ALGOS = ("ppo", "sb3")
BACKENDS = ("cpu", "warp")


def _reward_spec(text: str) -> str:
    """The --reward spec as the run's config stores it (robreward.rewards.spec; paths made absolute, so a
    resumed run finds them)."""
    from robreward.rewards.spec import normalize_reward_spec

    try:
        return normalize_reward_spec(text)
    except (ValueError, OSError) as err:
        raise CliError(f"--reward: {err}") from None


def _task_spec(text: str) -> str:
    from robreward.envs.registry import get_task, task_names

    get_task(text)  # raises with the list of tasks
    return text if text in task_names() else str(Path(text).resolve())


def run(args) -> int:
    from robreward.rl.config import PPOConfig, TrainConfig
    from robreward.rl.runner import resume, train

    if args.algo not in ALGOS:
        raise CliError(f"unknown --algo {args.algo!r}: choose one of {', '.join(ALGOS)}")
    if args.backend is not None and args.backend not in BACKENDS:
        raise CliError(f"unknown --backend {args.backend!r}: choose one of {', '.join(BACKENDS)}")
    if args.resume:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise CliError(f"--resume {args.resume!r}: no such run directory (pass the --out DIR of an earlier run)")
        if not os.access(run_dir, os.R_OK | os.X_OK) or not (run_dir / "config.yaml").is_file():
            raise CliError(f"--resume {args.resume!r}: not a readable run directory (config.yaml missing or unreadable)")
        overrides = {} if args.no_progress is False else {"progress": False}
        # a run's config.yaml may name a task folder (code): resume refuses it unless --task names it here
        task = _task_spec(args.task) if args.task else None
        summary = resume(run_dir, steps=args.steps, task=task, **overrides)
    else:
        if not args.task:
            raise CliError("--task is required (or --resume RUN_DIR); see `robreward tasks` for the list")
        out = args.out or f"runs/{Path(args.task).name}-{Path(args.reward).stem}-s{args.seed}"
        num_envs = args.envs if args.envs is not None else (1 if args.algo == "sb3" else 64)
        ppo = PPOConfig(num_steps=args.rollout_steps) if args.rollout_steps else PPOConfig()
        config = TrainConfig(
            task=_task_spec(args.task), reward=_reward_spec(args.reward), num_envs=num_envs,
            steps=args.steps or 1_000_000, seed=args.seed, out=out, algo=args.algo, backend=args.backend or "cpu",
            device=args.device, torch_threads=args.threads, eval_episodes=args.eval_episodes,
            progress=not args.no_progress, ppo=ppo, init_from_demos=args.init_from_demos,
        )
        summary = train(config)
    print(f"trained {summary['steps']:,} steps in {summary['seconds']:.0f} s -> {summary['run_dir']}")
    if summary.get("eval"):
        ev = summary["eval"]
        print(f"eval: return {ev.get('return_mean', float('nan')):.4g}, success {ev.get('success_rate', float('nan')):.3f}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train")
    p.add_argument("--task", help="task name (see `robreward tasks`) or task folder; with --resume, the task folder "
                                  "of a run on one (a run's config.yaml never picks a folder of code by itself)")
    p.add_argument("--reward", default="hand", help="hand | sparse | FILE.py | pref:RUN (default hand)")
    p.add_argument("--envs", type=int, default=None, help="parallel worlds (default 64; 1 for --algo sb3, as rl-zoo3)")
    p.add_argument("--steps", type=int, default=None, help="env steps summed over all worlds (default 1000000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/TASK-REWARD-sSEED)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its latest checkpoint")
    p.add_argument("--algo", default="ppo", help="ppo (robreward, default) | sb3 (Stable-Baselines3, rl-zoo3 hyperparameters)")
    p.add_argument("--backend", default=None, help="cpu (default) | warp")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the simulator uses the others)")
    p.add_argument("--rollout-steps", type=int, default=None, help="PPO steps per world per rollout (default 32)")
    p.add_argument("--eval-episodes", type=int, default=100, help="episodes of the final evaluation (0: skip)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--init-from-demos", metavar="FILE.h5", default=None,
                   help="behaviour-clone the actor from a demo dataset before PPO (BC warm start)")
    p.set_defaults(func=run)
