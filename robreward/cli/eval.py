"""`robreward eval RUN_OR_POLICY --episodes 100 --video push.mp4 [--task T --seed S]`.

RUN_OR_POLICY: a run directory (config.yaml + policy.onnx), a seed group (seed_0/, seed_1/, ...
run dirs: every seed is evaluated and the aggregate written), or a bare policy file (needs
--task unless a config.yaml lies beside it). Writes eval.json into the run dir, or next to
the policy file (eval.local.json where that eval.json is a shipped baseline, never overwritten).
"""

from __future__ import annotations

from pathlib import Path

from robreward.cli.main import CliError

SUMMARY_KEYS = ("return_mean", "return_std", "train_reward_return_mean", "success_rate", "fitness_mean",
                "episode_length_mean")


def _load_policy_fn():
    try:
        from robreward.rl import load_policy
    except ImportError as err:
        raise CliError(f"robreward.rl.load_policy is not available ({err}); "
                       "the PPO module is needed to load policies") from err
    return load_policy


def _config(folder: Path) -> dict:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CliError(f"{str(path)!r} is not valid YAML: {err}") from err
    return data if isinstance(data, dict) else {}


def _train_reward(reward, spec):
    """The training reward to also measure, or None (with a note) when it cannot be rebuilt here."""
    if reward in (None, "", "unknown"):
        return None
    from robreward.rewards.base import resolve_reward

    try:
        resolve_reward(reward, spec)
    except Exception as err:  # a reward file moved, a learned reward not built yet, ...
        print(f"note: training reward {reward!r} cannot be rebuilt here ({type(err).__name__}: {err}); "
              "train_reward_return_mean will be null")
        return None
    return reward


def _seed_dirs(folder: Path):
    from robreward.eval.compare import _seed_dirs

    return _seed_dirs(folder)


def resolve_target(target: str, task: str | None):
    """-> (kind, path, config, out_path) with kind in {"run", "group", "file"}; clear errors."""
    path = Path(target)
    if not path.exists():
        raise FileNotFoundError(f"{target!r} does not exist: pass a run directory (config.yaml + policy.onnx) "
                                "or a policy file (policy.onnx with --task)")
    if path.is_dir():
        subs = _seed_dirs(path)
        if subs:
            config = _config(subs[0][1])
            kind = "group"
        else:
            config = _config(path)
            kind = "run"
            if not config and not task:
                raise CliError(f"{target!r} has no config.yaml: not a run directory; pass --task T to evaluate "
                               "the policy in it, or point at a run directory")
        if not (task or config.get("task")):
            raise CliError(f"config.yaml in {target!r} names no task; pass --task T")
        return kind, path, config, path / "eval.json"
    config = _config(path.parent)
    if not task and not config.get("task"):
        raise CliError(f"policy file {target!r} needs --task (no run config.yaml beside it), "
                       f"e.g. `robreward eval {target} --task push`")
    out = path.parent / "eval.json"
    from robreward.eval.baseline import is_baseline_file

    if is_baseline_file(out):
        out = path.parent / "eval.local.json"
    return "file", path, config, out


def _task(cli_task, config: dict, path: Path):
    """--task (a name or a folder: the user chose it) or the run's config.yaml task, which may
    only name a task of the suite: a file never picks a folder of code to run."""
    from robreward.envs.registry import UnknownTaskError, get_task

    if cli_task:
        return get_task(cli_task)
    try:
        return get_task(str(config["task"]), allow_folder=False)
    except UnknownTaskError as err:
        raise CliError(f"config.yaml of {str(path)!r}: {err}") from None


def run(args) -> int:
    from robreward.eval.evaluate import evaluate, evaluate_seeds, write_eval_json

    if args.episodes < 1:
        raise CliError(f"--episodes must be >= 1, got {args.episodes}")
    kind, path, config, out = resolve_target(args.target, args.task)
    spec = _task(args.task, config, path)
    trained = config.get("task")
    if args.task and trained and str(trained) not in (spec.name, args.task):
        print(f"note: evaluating on --task {spec.name!r}, the run was trained on {str(trained)[:200]!r}")
    reward_name = str(args.reward or config.get("reward") or ("hand" if kind != "file" else "unknown"))
    common = dict(episodes=args.episodes, seed=args.seed, num_envs=args.num_envs,
                  deterministic=not args.stochastic, reward_name=reward_name,
                  train_reward=_train_reward(reward_name, spec), video=args.video, device=args.device)
    load_policy = _load_policy_fn()
    if kind == "group":
        policies = []
        for seed, sub in _seed_dirs(path):
            policies.append((int(_config(sub).get("seed", seed)), load_policy(str(sub), task=spec)))
        result = evaluate_seeds(spec, policies, **common)
    else:
        policy = load_policy(str(path), task=spec)
        result = evaluate(spec, policy, policy_seed=config.get("seed"), **common)
    target = write_eval_json(args.out or out, result)
    print(f"{spec.name} v{spec.version}  reward={reward_name}  episodes={result['episodes']}  seeds={result['seeds']}")
    for key in SUMMARY_KEYS:
        val = result.get(key)
        print(f"  {key:<26} {'-' if val is None else f'{val:.4g}'}")
    for name, val in (result.get("terms") or {}).items():
        print(f"  term {name:<21} {'-' if val is None else f'{val:.4g}'}")
    if args.video:
        print(f"video: {args.video}")
    print(f"wrote {target}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run or a policy file; write eval.json (and optionally a video)")
    p.add_argument("target", metavar="RUN_OR_POLICY", help="run directory, seed-group directory, or policy.onnx")
    p.add_argument("--episodes", type=int, default=100, help="episodes per policy (exact; default 100)")
    p.add_argument("--task", default=None, help="task name or folder (required for a bare policy file, and for a "
                                                "run whose config.yaml names a task folder: a file never picks code)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (initial states; default 0)")
    p.add_argument("--num-envs", type=int, default=None, help="worlds in the batched env (default min(episodes, 64))")
    p.add_argument("--video", default=None, help="mp4 path: world 0's first episode, 320x240")
    p.add_argument("--reward", default=None, help="label of the training reward (default: the run's config.yaml)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic policy")
    p.add_argument("--device", default="cpu", help="env device (default cpu)")
    p.add_argument("--out", default=None, help="eval.json path (default: in the run dir / beside the policy)")
    p.set_defaults(func=run)
