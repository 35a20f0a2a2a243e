"""`robreward prefs`: learn a reward from preferences (PEBBLE-style) and train a policy on it.

    robreward prefs train --task reach --teacher oracle --queries 200 --steps 150000 --out runs/pref-reach
    robreward prefs train --task push --teacher mistake:0.1 --queries 500 --select disagreement --out ...
    robreward prefs train --task push --teacher oracle --queries 200 --final-policy restart --out ...
    robreward prefs train --task cheetah-run --teacher human --queries 100 --out runs/pref-human  # opens the app
    robreward prefs train --task reach --teacher vlm:MODEL --reward-inputs image --image-camera top --out ...
    robreward prefs train --resume runs/pref-reach
    robreward prefs eval runs/pref-reach         # accuracy, EPIC/DARD/STARC to hand, policy vs the hand baseline
    robreward prefs eval runs/pref-* --cached --plot label_efficiency.png   # success against queries
"""

from __future__ import annotations

from pathlib import Path

from robreward.cli.main import CliError

# PrefsConfig field -> its flag where the flag is not --FIELD-NAME
FLAGS = {"num_envs": "--envs", "feature_action": "--no-action", "ensemble.seed": "--seed"}
# flag dest -> PrefsConfig field, for the flags whose dest is not the field's name
FIELDS = {"envs": "num_envs"}


def _task(text: str) -> str:
    from robreward.envs.registry import get_task, task_names
    from robreward.feedback.preferences.loop import check_task

    try:
        get_task(text)
        check_task(text)
    except ValueError as err:
        raise CliError(str(err)) from None
    return text if text in task_names() else str(Path(text).resolve())


def _new_config(args):
    """The PrefsConfig of a new run: --config FILE.yaml, then the flags given; the dataclass has every
    default and check (a bad value is reported with its flag)."""
    from robreward.cli.options import build_config, given_values, merge, read_config_file
    from robreward.feedback.preferences.loop import STATE_FILE, PrefsConfig
    from robreward.rl.config import PPOConfig

    values = read_config_file(args.config) if args.config else {}
    given = {FIELDS.get(name, name): getattr(args, name) for name in
             ("task", "teacher", "queries", "select", "schedule", "pairing", "segment", "per_round", "steps", "envs",
              "pretrain_steps", "feedback_fraction", "final_policy", "seed", "eval_episodes", "device", "out",
             "reward_inputs", "image_size", "image_camera", "image_encoder", "demo_pairs", "init_policies",
             "restart_keep", "choose_at")}
    values = merge(values, {k: v for k, v in given.items() if v is not None})
    if args.features:
        values["features"] = tuple(f.strip() for f in args.features.split(",") if f.strip())
    if args.no_action:
        values["feature_action"] = False
    if args.demos:  # kept absolute, so --resume finds them from anywhere
        values["demos"] = tuple(str(Path(f.strip()).expanduser().resolve()) for f in args.demos.split(",") if f.strip())
    if args.init_from_demos:
        values["init_from_demos"] = str(Path(args.init_from_demos).expanduser().resolve())
    if args.reset_from_demos:
        values["reset_from_demos"] = str(Path(args.reset_from_demos).expanduser().resolve())
    if args.demo_reset_fraction is not None:
        values["demo_reset_fraction"] = args.demo_reset_fraction
    if args.bc_noise_std is not None:
        values["bc_noise_std"] = args.bc_noise_std
    if args.no_progress:
        values["progress"] = False
    if "seed" in values:  # the reward ensemble's seed follows --seed (benchmarks/prefs.py keeps it at 0)
        values["ensemble"] = {**values.get("ensemble", {}), "seed": values["seed"]}
    ppo = given_values(args, PPOConfig, prefix="ppo.")
    if ppo:
        values["ppo"] = merge(values.get("ppo", {}), ppo)
    values.update(_app_settings(args))
    missing = [flag for flag, name in (("--task", "task"), ("--teacher", "teacher"), ("--queries", "queries"),
                                       ("--out", "out")) if values.get(name) is None]
    if missing:
        raise CliError(f"{', '.join(missing)} required (or --resume RUN_DIR)")
    values["task"] = _task(values["task"])
    encoder = values.get("image_encoder")
    if encoder and Path(encoder).expanduser().exists():  # a folder: kept absolute, so --resume finds it anywhere
        values["image_encoder"] = str(Path(encoder).expanduser().resolve())
    from robreward.cli.vision import fold_teacher_flags

    values["teacher"] = fold_teacher_flags(values["teacher"], args.base_url, args.max_cost)  # vlm: teachers
    if (Path(values["out"]) / STATE_FILE).exists():
        raise CliError(f"--out {values['out']!r} already holds a preference run: continue it with "
                       f"`robreward prefs train --resume {values['out']}` or choose a new --out")
    config = build_config(PrefsConfig, values, FLAGS, lambda data: PrefsConfig(**data))
    _check_image_inputs(config)
    return config


def _check_image_inputs(config) -> None:
    """--reward-inputs image|both: a renderer must be there (RendererUnavailable says what to set) and the image
    flags are refused with state inputs (they would be ignored)."""
    if config.reward_inputs == "state":
        given = [flag for flag, value in (("--image-camera", config.image_camera), ("--image-encoder",
                                                                                   config.image_encoder)) if value]
        if given:
            raise CliError(f"{', '.join(given)} configure an image reward model: add --reward-inputs image (or both)")
        return
    from robreward.envs.registry import get_task
    from robreward.envs.render import RendererUnavailable
    from robreward.feedback.preferences.image_model import check_image_inputs

    try:
        check_image_inputs(get_task(config.task), config.image_camera)
    except RendererUnavailable as err:
        raise CliError(f"--reward-inputs {config.reward_inputs} renders frames: {err}") from None
    except ValueError as err:
        raise CliError(f"--image-camera: {err}") from None


def _train(args) -> int:
    from robreward.cli.vision import register_vlm_teachers
    from robreward.feedback.preferences.loop import PrefsConfig, STATE_FILE, load_prefs_config, train_preferences

    register_vlm_teachers()  # --teacher vlm:MODEL / anthropic:MODEL (docs/vision.md)

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / STATE_FILE).is_file():
            raise CliError(f"--resume {args.resume!r}: not a preference run directory (no {STATE_FILE}); "
                           "pass the --out DIR of an earlier `robreward prefs train`")
        config = load_prefs_config(run_dir)
        try:  # what a resumed run may change: the progress bar and where the labeling app is served
            config = PrefsConfig.from_dict({**config.to_dict(), **_app_settings(args),
                                            **({"progress": False} if args.no_progress else {})})
        except ValueError as err:
            raise CliError(str(err)) from None
        summary = _run(train_preferences, config, resume=True)
    else:
        config = _new_config(args)
        summary = _run(train_preferences, config)
    print(f"{summary['rounds']} feedback rounds, {summary['queries']} queries ({summary['labels_answered']} answered), "
          f"{summary['steps']:,} PPO steps in {summary['seconds']:.0f} s -> {summary['run_dir']}")
    last = summary.get("metrics") or {}
    if last.get("heldout_accuracy") is not None:
        epic = last.get("epic_distance")
        print(f"last round: held-out accuracy {last['heldout_accuracy']:.3f}, "
              f"EPIC distance {'-' if epic is None else f'{epic:.3f}'}")
    if summary.get("eval"):
        ev = summary["eval"]
        print(f"eval (hand reward): return {ev['return_mean']:.4g}, success {ev['success_rate']:.3f}")
    return 0


def _app_settings(args) -> dict:
    """The labeling-app flags that were given (teacher human)."""
    given = {"host": args.host, "port": args.port, "label_timeout": args.label_timeout}
    settings = {k: v for k, v in given.items() if v is not None}
    if args.no_app:
        settings["serve_app"] = False
    return settings


def _run(train, config, **kwargs) -> dict:
    """train_preferences with the human teacher's failures (busy port, label timeout) as CLI errors."""
    from robreward.feedback.preferences.app import ServeError

    try:
        return train(config, **kwargs)
    except ServeError as err:
        raise CliError(f"labeling app: {err}") from None
    except TimeoutError as err:
        raise CliError(f"{err}; the labels given so far are saved: continue with "
                       f"`robreward prefs train --resume {config.out}`") from None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _eval(args) -> int:
    from robreward.feedback.preferences.evaluation import evaluate_preferences
    from robreward.feedback.preferences.loop import EVAL_FILE, STATE_FILE

    for run in args.run:
        if not (Path(run) / STATE_FILE).is_file():
            raise CliError(f"{run!r} is not a preference run directory (no {STATE_FILE}); "
                           "pass the --out DIR of `robreward prefs train`")
    if args.episodes < 1 or args.pairs < 2 or args.bootstrap < 0:
        raise CliError(f"--episodes must be >= 1, --pairs >= 2 and --bootstrap >= 0, got {args.episodes}, "
                       f"{args.pairs}, {args.bootstrap}")
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        raise CliError(f"--plot {args.plot!r}: the plot is a PNG file; name it FILE.png")
    results = []
    for run in args.run:
        run_dir = Path(run)
        if args.cached and (run_dir / EVAL_FILE).is_file():
            import json

            result = json.loads((run_dir / EVAL_FILE).read_text())
            print(f"read {run_dir / EVAL_FILE}")
        else:
            result = evaluate_preferences(run_dir, episodes=args.episodes, heldout_pairs=args.pairs, seed=args.seed,
                                          bootstrap=args.bootstrap)
            _print_eval(result)
            print(f"wrote {run_dir / EVAL_FILE}")
        results.append(result)
    if args.plot is not None:
        from robreward.feedback.preferences.evaluation import plot_label_efficiency

        try:
            curves = plot_label_efficiency(results, args.plot, metric=args.metric)
        except ValueError as err:
            raise CliError(str(err)) from None
        points = sum(len(pts) for pts in curves["teachers"].values())
        print(f"wrote {args.plot}: {args.metric} against queries, {len(curves['teachers'])} teacher(s), {points} "
              f"point(s); hand {_fmt(curves['hand'])}, sparse {_fmt(curves['sparse'])}")
    return 0


def _print_eval(result: dict) -> None:
    print(f"{result['task']} v{result['task_version']}  teacher={result['teacher']}  rounds={result['rounds']}  "
          f"queries={result['queries_used']}  PPO steps={result['ppo_steps']:,}")
    print(f"  {'preference_accuracy':<28} {_fmt(result['preference_accuracy'])}   "
          f"({result['heldout_pairs']} fresh pairs, oracle labels)")
    print(f"  {'preference_accuracy_teacher':<28} {_fmt(result['preference_accuracy_teacher'])}")
    distances = result.get("distances") or {}
    print(f"  {'distance to hand':<28} {'preference':>10} {'hand':>10}   (95% interval of the preference reward's)")
    for metric in ("epic", "dard", "starc"):
        pref, hand = distances.get("preference") or {}, distances.get("hand") or {}
        ci = pref.get(f"{metric}_ci")
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {metric + '_distance':<28} {_fmt(pref.get(metric)):>10} {_fmt(hand.get(metric)):>10}   {interval}")
    policy, hand, fraction = result["policy"] or {}, result["baseline"] or {}, result["fraction_of_baseline"] or {}
    sparse = result.get("sparse_baseline") or {}
    print(f"  {'':<28} {'policy':>10} {'hand':>10} {'fraction':>10} {'sparse':>10}")
    for key in ("success_rate", "return_mean", "fitness_mean"):
        print(f"  {key:<28} {_fmt(policy.get(key)):>10} {_fmt(hand.get(key)):>10} {_fmt(fraction.get(key)):>10} "
              f"{_fmt(sparse.get(key)):>10}")
    diagnosis = result.get("diagnosis")
    if diagnosis:
        learned = diagnosis["learned_return"] or {}
        print(f"  {'learned reward, per episode':<28} {_fmt(learned.get('policy')):>10} "
              f"{_fmt(learned.get('hand_policy')):>10}")
        if diagnosis["verdict"] != "none":
            print(f"diagnosis ({diagnosis['verdict']}): {diagnosis['explanation']}")
    if result["baseline"] is None:
        print(f"note: no hand baseline for {result['task']!r} (policies/{result['task']}/eval.json)")
    if result["policy"] is None:
        print("note: the run has no trained policy yet (ppo/policy.onnx)")


def register(sub) -> None:
    from robreward.cli.options import add_config_flags
    from robreward.rl.config import PPOConfig

    p = sub.add_parser("prefs")
    verbs = p.add_subparsers(dest="prefs_verb", metavar="{train,eval}")
    t = verbs.add_parser("train", help="run (or resume) the preference loop into a run directory")
    t.add_argument("--task", help="task name (see `robreward tasks`) or task folder")
    t.add_argument("--teacher", help="oracle | stochastic:BETA | mistake:EPS | skip:EPS | equal:EPS | myopic:GAMMA, "
                                     "comma-separated; or human (you label clips in the browser); or vlm:MODEL / "
                                     "anthropic:MODEL (a vision-language model labels rendered frames)")
    t.add_argument("--base-url", help="teacher vlm:MODEL: an OpenAI-compatible server (vLLM, Ollama, ...)")
    t.add_argument("--max-cost", type=float, help="teacher vlm:/anthropic:MODEL: spend cap in USD (resumable)")
    t.add_argument("--queries", type=int, help="query budget (pairs shown to the teacher)")
    t.add_argument("--select", help="uniform | disagreement (default) | entropy")
    t.add_argument("--schedule", help="constant (default) | linear")
    t.add_argument("--pairing", default=None,
                   help="which segments a query compares: any | episode (two of one episode: same object, goal and "
                        "start) | mixed (half each, the default)")
    t.add_argument("--segment", type=int, help="segment length in steps (default 25)")
    t.add_argument("--per-round", type=int, help="queries per feedback round (default 50)")
    t.add_argument("--steps", type=int, help="PPO env steps summed over worlds (default 1000000)")
    t.add_argument("--envs", type=int, help="parallel worlds (default 32)")
    t.add_argument("--pretrain-steps", type=int,
                   help="PPO steps of unsupervised state-entropy pre-training before the first queries (default 0)")
    t.add_argument("--features", default=None,
                   help="TaskState fields the reward reads, comma-separated, |x| for the norm of field x, x.xy and "
                        "x.z for the horizontal norm and the height of a 3-D position or velocity, obs-norms "
                        "(the observation's fields, vectors as their norms), obs-norms-z (the same, with the "
                        "height of each 3-D position, offset and velocity kept apart), kinematics (the "
                        "observation's joint positions and velocities, no contact forces), offsets (the norms of its "
                        "A_to_B fields "
                        "and every single-value field), observation (the task's observation as it is; beside other "
                        "names, in its place, e.g. observation,|action|) or auto (the default: obs-norms where the "
                        "observation is made of fields, else the observation); plus the action")
    t.add_argument("--no-action", action="store_true", help="the reward reads no action (state-only reward)")
    t.add_argument("--reward-inputs", default=None, choices=("state", "image", "both"),
                   help="what the reward model reads: state (default: the features above), image (rendered frames of "
                        "each step, RL-VLM-F) or both; the policy reads states either way")
    t.add_argument("--image-size", type=int, default=None, help="image inputs: frame side in pixels (default 48)")
    t.add_argument("--image-camera", default=None,
                   help="image inputs: a camera of the task's scene, or top (arm tasks: looking down on the table); "
                        "default the task's camera")
    t.add_argument("--image-encoder", default=None, metavar="PATH_OR_ID",
                   help="image inputs: a transformers vision model (folder or cached hub id), frozen, a reward head "
                        "per member on its features; default a small CNN trained with the heads")
    t.add_argument("--demos", default=None, metavar="FILE.h5[,FILE.h5]",
                   help="demonstrations as free preferences: successful demo segments are preferred to the policy's "
                        "(not queries, never shown to a person; e.g. demos/push-expert.h5)")
    t.add_argument("--demo-pairs", type=int, default=None, help="with --demos: free pairs per round (default 50)")
    t.add_argument("--init-from-demos", default=None, metavar="FILE.h5",
                   help="warm start: each PPO policy of the run behaviour-clones this demo dataset before PPO starts "
                        "(as robreward train --init-from-demos; e.g. demos/lift-expert.h5)")
    t.add_argument("--bc-noise-std", type=float, default=None,
                   help="with --init-from-demos: the cloned policy's noise std before PPO (default 0.1; as robreward "
                        "train --bc-noise-std)")
    t.add_argument("--reset-from-demos", default=None, metavar="FILE.h5",
                   help="each PPO phase starts 0.25 (--demo-reset-fraction) of its training episodes at a state of "
                        "this dataset's successful episodes (as robreward train --reset-from-demos)")
    t.add_argument("--demo-reset-fraction", type=float, default=None,
                   help="with --reset-from-demos: the share of training episodes that start at a demo state, in "
                        "(0, 1] (default 0.25)")
    t.add_argument("--init-policies", default=None,
                   help="with --init-from-demos: both (default: the feedback phase's policy and the fresh one) or "
                        "fresh (the final policy only; the rounds sample an unaided policy)")
    t.add_argument("--feedback-fraction", type=float,
                   help="the feedback rounds are spread over this fraction of the PPO steps (default 0.25)")
    t.add_argument("--final-policy",
                   help="after the last feedback round: best (default) trains a fresh policy from scratch on the "
                        "final reward for the steps left and keeps it or the feedback phase's policy, whichever earns "
                        "more of the final reward; restart keeps the fresh one; continue (PEBBLE) trains the same "
                        "policy on to --steps")
    t.add_argument("--choose-at", default=None,
                   help="best: choose once the fresh policy has trained as many steps as the feedback phase's "
                        "(equal, the default), the one kept training on for the rest of the budget; or at the end "
                        "(end, the default before 2026-12-07)")
    t.add_argument("--restart-keep", type=float, metavar="SHARE",
                   help="best or restart: the fresh policy starts from this share of the feedback phase's weights "
                        "and its observation statistics (shrink and perturb; default 0: from scratch)")
    t.add_argument("--seed", type=int, help="seeds PPO, the envs, the queries, the teacher and the reward ensemble "
                                            "(default 0)")
    t.add_argument("--eval-episodes", type=int, help="episodes of the final evaluation (0: skip)")
    t.add_argument("--device", help="torch device: cpu or cuda[:N]")
    t.add_argument("--out", help="run directory")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run at its last finished round")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--port", type=int, default=None, help="teacher human: port of the labeling app (default 8765)")
    t.add_argument("--host", default=None, help="teacher human: address of the labeling app (default 127.0.0.1)")
    t.add_argument("--no-app", action="store_true",
                   help="teacher human: do not serve the app from this process (run `robreward label RUN_DIR`)")
    t.add_argument("--label-timeout", type=float, default=None,
                   help="teacher human: stop after this many seconds without a round's labels (default: wait)")
    t.add_argument("--config", metavar="FILE.yaml", help="PrefsConfig fields from a YAML file (a run's config.json "
                                                        "works too); flags given override them")
    add_config_flags(t, PPOConfig, prefix="ppo.",
                     group=t.add_argument_group("PPO hyperparameters (--ppo.FIELD; robreward/rl/config.py PPOConfig)"))
    t.set_defaults(func=_train)
    e = verbs.add_parser("eval", help="preference accuracy, EPIC/DARD/STARC distance to hand, policy vs the hand "
                                      "baseline; --plot: label efficiency of several runs")
    e.add_argument("run", metavar="RUN_DIR", nargs="+", help="`robreward prefs train` run directories")
    e.add_argument("--episodes", type=int, default=100, help="policy episodes if the run has no eval.json yet")
    e.add_argument("--pairs", type=int, default=1000, help="fresh segment pairs for the accuracy (default 1000)")
    e.add_argument("--seed", type=int, default=12345, help="seed of the fresh rollout")
    e.add_argument("--bootstrap", type=int, default=100,
                   help="bootstrap resamples for the distances' 95%% intervals (default 100; 0: none)")
    e.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write the label-efficiency plot of the runs: --metric against queries, one line per "
                        "teacher (mean and std over runs at the same budget), hand and sparse baselines as lines")
    e.add_argument("--metric", default="success_rate", choices=("success_rate", "return_mean", "fitness_mean"),
                   help="what the plot shows (default success_rate)")
    e.add_argument("--cached", action="store_true",
                   help="use each run's prefs_eval.json where it exists instead of measuring again")
    e.set_defaults(func=_eval)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])
