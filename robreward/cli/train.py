"""`robreward train`: train a policy with PPO (robreward's batched PPO or SB3) into a run directory.

    robreward train --task push --reward hand --envs 64 --steps 2000000 --seed 0 --out runs/push-hand
    robreward train --task push --reward my_reward.py ...
    robreward train --resume runs/push-hand
    robreward train --resume runs/my-task-run --task path/to/my_task    (a run on a task folder)
    robreward train --task cheetah-run --algo sb3 ...
    robreward train --task push --ppo.learning-rate 3e-4 --ppo.actor-hidden 256,256
    robreward train --config runs/push-hand/config.yaml --seed 1 --out runs/push-hand-s1
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from robreward.cli.main import CliError



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


def check_reward(config) -> None:
    """Resolve the run's reward on its task (a reward file is checked, compiled and dry-run; the
    compiled graph is cached, so training does not compile it again) and read its demo files. Raises when one is
    rejected; called before --overwrite removes anything of the earlier run."""
    from robreward.envs.registry import get_task
    from robreward.rewards.base import resolve_reward

    spec = get_task(config.task)
    resolve_reward(config.reward, spec)
    if config.init_from_demos or config.reset_from_demos:
        from robreward.demos.resets import check_demo_files

        check_demo_files(spec, config.init_from_demos, config.reset_from_demos)


# TrainConfig field -> its flag where the flag is not --FIELD-NAME (the derived name works too)
FLAGS = {"num_envs": "--envs", "torch_threads": "--threads", "ppo.num_steps": "--rollout-steps"}
# where the command line means more than the field's docstring says
HELP = {"task": "task name (see `robreward tasks`) or task folder; with --resume, the task folder of a run on one "
                "(a run's config.yaml never picks a folder of code by itself)",
        "out": "run directory (default runs/TASK-REWARD-sSEED)",
        "ppo.num_steps": "PPO steps per world per rollout (default 32)"}
# what `--resume` may change: the rest is the run's config.yaml
RESUME_FIELDS = ("steps", "progress", "task")


def config_from_args(args):
    """The TrainConfig of a new run: --config FILE.yaml, then the flags given over it; the dataclass has
    every default and check (a bad value is reported with its flag)."""
    from robreward.cli.options import build_config, given_values, merge, read_config_file
    from robreward.configs import strict_from_dict
    from robreward.rl.config import TrainConfig

    values = given_values(args, TrainConfig)
    if args.config:
        values = merge(read_config_file(args.config), values)
    if not values.get("task"):
        raise CliError("--task is required (or --resume RUN_DIR); see `robreward tasks` for the list")
    values["task"] = _task_spec(values["task"])
    from robreward.cli.vision import fold_train_flags

    folded = fold_train_flags(values.get("reward"), args)  # --goal etc. go into the clip:/roboclip: spec
    if folded != values.get("reward"):
        values["reward"] = folded
    if "reward" in values:
        values["reward"] = _reward_spec(values["reward"])
    for name in ("init_from_demos", "reset_from_demos"):  # the run's config.yaml works from any directory
        if values.get(name):
            values[name] = str(Path(values[name]).expanduser().resolve())
    config = build_config(TrainConfig, values, FLAGS, lambda data: strict_from_dict(TrainConfig, data))
    if "out" not in values:
        config = dataclasses.replace(config, out=f"runs/{Path(config.task).name}-{Path(config.reward).stem}"
                                                 f"-s{config.seed}")
    return config


def run(args) -> int:
    from robreward.cli.options import flag_for, given_values
    from robreward.rl.config import TrainConfig
    from robreward import rundir
    from robreward.eval.evaluate import evaluate  # the final evaluation: eval.json and the model card's numbers
    from robreward.rl.runner import resume, train

    values = given_values(args, TrainConfig)
    if args.resume:
        from robreward.cli.vision import TRAIN_FLAGS

        extra = sorted(set(values) - set(RESUME_FIELDS)) + (["config"] if args.config else []) + [
            name for name in TRAIN_FLAGS if getattr(args, name, None) is not None]  # the reward is the run's
        if extra:
            flags = ", ".join(flag_for(name, FLAGS) for name in extra)
            raise CliError(f"--resume continues the run as configured in {args.resume}/config.yaml; drop {flags} "
                           "(only --steps, --no-progress and --task may be given with --resume)")
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise CliError(f"--resume {args.resume!r}: no such run directory (pass the --out DIR of an earlier run)")
        if not os.access(run_dir, os.R_OK | os.X_OK) or not (run_dir / "config.yaml").is_file():
            raise CliError(f"--resume {args.resume!r}: not a readable run directory (config.yaml missing or unreadable)")
        if values.get("steps") is not None and values["steps"] < 1:
            raise CliError(f"--steps must be >= 1, got {values['steps']}")
        overrides = {"progress": False} if values.get("progress") is False else {}
        # a run's config.yaml may name a task folder (code): resume refuses it unless --task names it here
        task = _task_spec(values["task"]) if values.get("task") else None
        summary = resume(run_dir, steps=values.get("steps"), task=task, evaluate=evaluate, **overrides)
    else:
        config = config_from_args(args)
        summary = rundir.start_new_run(config.out, lambda: train(config, evaluate=evaluate), overwrite=args.overwrite,
                                       check=lambda: check_reward(config))
    print(f"trained {summary['steps']:,} steps in {summary['seconds']:.0f} s -> {summary['run_dir']}")
    if summary.get("eval"):
        ev = summary["eval"]
        print(f"eval: return {ev.get('return_mean', float('nan')):.4g}, success {ev.get('success_rate', float('nan')):.3f}")
    return 0


def register(sub) -> None:
    from robreward.cli.options import add_config_flags
    from robreward.rl.config import TrainConfig

    p = sub.add_parser("train", description=__doc__.split("\n\n")[0],
                       epilog="Every TrainConfig field is a flag (robreward/rl/config.py); PPO hyperparameters are "
                              "--ppo.FIELD, e.g. --ppo.learning-rate 3e-4. --config FILE.yaml gives fields from a "
                              "file (a run's config.yaml works); flags given override it.")
    p.add_argument("--config", metavar="FILE.yaml", help="config fields from a YAML file (flags given override them)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start over in an --out that holds a run: removes only "
                        "robreward's own files of it (a used --out is refused otherwise)")
    from robreward.cli.vision import add_train_flags

    add_train_flags(p)
    add_config_flags(p, TrainConfig, FLAGS, help_overrides=HELP, nested_titles={
        "ppo": "PPO hyperparameters (--ppo.FIELD; robreward/rl/config.py PPOConfig)"})
    p.set_defaults(func=run)
