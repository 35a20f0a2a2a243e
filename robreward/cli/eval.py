"""`robreward eval RUN_OR_POLICY --episodes 100 --video push.mp4 [--task T --seed S]`.

RUN_OR_POLICY: any run directory robreward writes (robreward.rundir.find_policy_run): a training
run (config.yaml + policy.onnx), a seed group (seed_0/, seed_1/, ...: every seed is evaluated and
the aggregate written), a `prefs train` run (its final policy, ppo/), a `generate` run (its final
seeds, final/, or before the final stage its best policy, best/policy.onnx), or a policy file.
eval.json goes into the run directory of the evaluated policy and its MODEL_CARD.md's evaluation
section is replaced (the training numbers stay). A policy file outside a run directory (a shipped
baseline under policies/, a downloaded file) needs --out: eval never writes into such a folder.

--stochastic is refused: the policy file is the deterministic policy (the Gaussian's mean), and
a number measured from sampled actions would describe a different policy than the one shipped.
"""

from __future__ import annotations

from pathlib import Path

from robreward.cli.main import CliError

SUMMARY_KEYS = ("return_mean", "return_std", "train_reward_return_mean", "success_rate", "fitness_mean",
                "episode_length_mean")


def add_video_args(p, what: str = "world k's first episode") -> None:
    """--video, --video-episodes, --size: shared by eval and expert."""
    p.add_argument("--video", default=None, metavar="MP4",
                   help="write a video: the first episodes of worlds 0..N-1 tiled into one grid, framed on the robot, "
                        "with the step, reward and success drawn on each tile")
    p.add_argument("--video-episodes", type=int, default=1, metavar="N",
                   help=f"episodes in the video grid (tile k: {what}; default 1)")
    p.add_argument("--size", default="480x360", metavar="WxH", help="size of each tile of the video (default 480x360)")


def check_video_args(args, episodes: int, num_envs=None):
    """(W, H) of a tile, after checking --video-episodes and --size; CliError saying what to change."""
    from robreward.eval.video import parse_size

    try:
        size = parse_size(args.size)
    except ValueError as err:
        raise CliError(str(err)) from None
    n = args.video_episodes
    if n < 1:
        raise CliError(f"--video-episodes must be >= 1, got {n}")
    if args.video is None and n != 1:
        raise CliError("--video-episodes needs --video FILE.mp4 (where to write the grid)")
    worlds = min(episodes, num_envs) if num_envs else episodes
    if args.video is not None and n > worlds:
        raise CliError(f"--video-episodes {n} needs {n} worlds running at once (the grid shows worlds 0..{n - 1}); "
                       f"this run has {worlds}: pass --episodes >= {n}" + (f" and --num-envs >= {n}" if num_envs else ""))
    if args.video is not None and not str(args.video).lower().endswith(".mp4"):
        raise CliError(f"--video {args.video!r}: the video is an mp4 file; name it FILE.mp4")
    return size


def _load_policy_fn():
    try:
        from robreward.rl import load_policy
    except ImportError as err:
        raise CliError(f"robreward.rl.load_policy is not available ({err}); "
                       "the PPO module is needed to load policies") from err
    return load_policy


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


def resolve_target(target: str, task: str | None):
    """-> (PolicyRun, eval.json path, or None where --out is needed); clear errors."""
    from robreward.eval.baseline import is_baseline_file
    from robreward.rundir import CONFIG_FILE, EVAL_FILE, find_policy_run

    try:
        found = find_policy_run(target)
    except FileNotFoundError as err:
        raise CliError(str(err)) from None
    if found.kind == "file" and not task and not found.task:
        raise CliError(f"policy file {target!r} needs --task (no run config.yaml beside it), "
                       f"e.g. `robreward eval {target} --task push --out runs/eval.json`")
    if found.kind != "file" and not (task or found.task):
        raise CliError(f"{target!r} names no task (no config.yaml with a task): pass --task T")
    where = found.policy_path
    if where.is_file():  # a policy file: its folder's eval.json only when that folder is a run directory
        folder = where.parent
        run_dir = found.kind == "generate" or (folder / CONFIG_FILE).is_file()
        if not run_dir or is_baseline_file(folder / EVAL_FILE):
            return found, None  # --out is needed (checked once the policy has loaded)
        return found, folder / EVAL_FILE
    return found, where / EVAL_FILE


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


def _evaluated_by(args, result: dict) -> str:
    return (f"Evaluated by `robreward eval` ({result['episodes']} episodes per seed, evaluation seed {args.seed}); "
            "these numbers replace the ones measured at the end of training.")


def run(args) -> int:
    from robreward import rundir
    from robreward.eval.evaluate import evaluate, evaluate_seeds, write_eval_json

    if args.episodes < 1:
        raise CliError(f"--episodes must be >= 1, got {args.episodes}")
    video_size = check_video_args(args, args.episodes, args.num_envs)
    if args.stochastic:
        raise CliError("--stochastic is not offered: the policy robreward ships (policy.onnx) is deterministic, the "
                       "mean of the trained Gaussian, and eval measures that policy; sampled actions are how "
                       "training explores, not the policy you deploy. Drop --stochastic")
    found, out = resolve_target(args.target, args.task)
    where = found.policy_path
    spec = _task(args.task, {"task": found.task}, where)
    trained = found.task
    if args.task and trained and str(trained) not in (spec.name, args.task):
        print(f"note: evaluating on --task {spec.name!r}, the run was trained on {str(trained)[:200]!r}")
    if found.kind in ("prefs", "generate"):
        print(f"note: {found.path} is a {found.kind} run: evaluating its final policy {where}")
    reward_name = str(args.reward or found.config.get("reward") or ("hand" if found.kind != "file" else "unknown"))
    common = dict(episodes=args.episodes, seed=args.seed, num_envs=args.num_envs, deterministic=True,
                  reward_name=reward_name, train_reward=_train_reward(reward_name, spec), video=args.video,
                  video_episodes=args.video_episodes, video_size=video_size, device=args.device)
    load_policy = _load_policy_fn()
    if found.seeds:
        policies = []
        for seed, sub in found.seeds:
            seed = rundir.read_config(sub).get("seed", seed) if (sub / rundir.CONFIG_FILE).is_file() else seed
            policies.append((int(seed), load_policy(str(sub), task=spec)))
        result = evaluate_seeds(spec, policies, **common)
    else:
        policy = load_policy(str(where), task=spec)
        if out is None and args.out is None:
            shipped = (where.parent / rundir.CONFIG_FILE).is_file()
            raise CliError(f"{args.target!r} is not in a run directory robreward writes"
                           f"{' (a shipped baseline)' if shipped else ''}: eval writes nothing beside it; say where "
                           f"eval.json goes with --out, e.g. --out runs/{where.parent.name or 'policy'}-eval.json")
        result = evaluate(spec, policy, policy_seed=found.config.get("seed"), **common)
        invalid = rundir.train_reward_invalid(where) if where.is_dir() else None
        if invalid is not None:
            result["train_reward_invalid"] = invalid
    target = write_eval_json(args.out or out, result)
    card = None
    if args.out is None and target.parent == (where if where.is_dir() else where.parent):
        card = rundir.update_card_eval(target.parent, result, _evaluated_by(args, result))
    print(f"{spec.name} v{spec.version}  reward={reward_name}  episodes={result['episodes']}  seeds={result['seeds']}")
    for key in SUMMARY_KEYS:
        val = result.get(key)
        print(f"  {key:<26} {'-' if val is None else f'{val:.4g}'}")
    for name, val in (result.get("terms") or {}).items():
        print(f"  term {name:<21} {'-' if val is None else f'{val:.4g}'}")
    if args.video:
        print(f"video: {args.video}")
    print(f"wrote {target}" + (f" and the evaluation section of {card}" if card else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run or a policy file; write eval.json (and optionally a video)")
    p.add_argument("target", metavar="RUN_OR_POLICY", help="run directory, seed-group directory, or policy.onnx")
    p.add_argument("--episodes", type=int, default=100, help="episodes per policy (exact; default 100)")
    p.add_argument("--task", default=None, help="task name or folder (required for a bare policy file, and for a "
                                                "run whose config.yaml names a task folder: a file never picks code)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (initial states; default 0)")
    p.add_argument("--num-envs", type=int, default=None, help="worlds in the batched env (default min(episodes, 64))")
    add_video_args(p, "world k's first episode; worlds run at once")
    p.add_argument("--reward", default=None, help="label of the training reward (default: the run's config.yaml)")
    p.add_argument("--stochastic", action="store_true", help="refused with the reason: the shipped policy is deterministic")
    p.add_argument("--device", default="cpu", help="env device (default cpu)")
    p.add_argument("--out", default=None, help="eval.json path (default: the run directory's eval.json; "
                                               "required for a policy file outside a run directory)")
    p.set_defaults(func=run)
