"""`robreward progress`: progress reward models from demonstrations, used as potential-based shaping.

    robreward progress fit --task push --demos demos/push-expert.h5 --negatives demos/push-noisy.h5 \\
                           --inputs state --out runs/prog-push          # or --inputs image | both
    robreward progress eval runs/prog-push --demos demos/push-noisy.h5     # metrics JSON + a PNG of Φ over time
    robreward progress adapt runs/prog-push --demos one-new-demo.h5 --out runs/prog-push-new
    robreward progress show runs/prog-push --episode 3 --video ep3.mp4      # the demo with its progress curve
    robreward train --task push --reward sparse+progress:runs/prog-push --out runs/push-shaped
"""

from __future__ import annotations

from pathlib import Path

from robreward.cli.main import CliError


def register(sub) -> None:
    p = sub.add_parser("progress", help="progress reward models from demos (fit, eval, adapt, show)")
    verbs = p.add_subparsers(dest="progress_verb", metavar="ACTION", parser_class=type(p))
    fit = verbs.add_parser("fit", help="fit a progress model on demos; writes a run directory")
    fit.add_argument("--task", required=True, help="a task name (or a task folder)")
    fit.add_argument("--demos", required=True, nargs="+", help="demo datasets (HDF5) with successful episodes")
    fit.add_argument("--negatives", nargs="*", default=[], help="more datasets whose failed episodes are negatives")
    fit.add_argument("--inputs", default="state", choices=("state", "image", "both"),
                     help="state (the task's observation), image (rendered frames) or both (default state)")
    fit.add_argument("--features", default=None, choices=("observation", "obs-norms", "obs-norms-z"),
                     help="state inputs: observation (as it is), obs-norms (each part of the observation as its "
                          "norm: distances, speeds; the default) or obs-norms-z (also the height of each 3-D "
                          "position, offset and velocity: tasks where height matters, e.g. lift)")
    fit.add_argument("--no-mix", action="store_true",
                     help="no mixed-state hard negatives (docs/progress.md)")
    fit.add_argument("--mix-frames", type=int, default=0,
                     help="image inputs: mixed scenes rendered as hard negatives, the arm of one demo state with the "
                          "objects of another (docs/progress.md; default 0: none)")
    fit.add_argument("--image-size", type=int, default=64, help="image inputs: frame side in pixels (default 64)")
    fit.add_argument("--encoder", default="", help="image inputs: a transformers vision model (folder or cached id); "
                                                  "default: a small CNN trained from scratch")
    fit.add_argument("--camera", default="", help="image inputs: a camera of the scene, or top (looking down on the "
                                                 "arm tasks' table); default: the task's camera")
    fit.add_argument("--holdout", type=float, default=0.25, help="share of episodes held out (default 0.25)")
    fit.add_argument("--epochs", type=int, default=None, help="training epochs (default 250)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the split, weights and pairs")
    fit.add_argument("--members", type=int, default=1,
                     help="fit this many nets from seeds SEED, SEED+1, ... and score with their mean (smoother between "
                          "the demos, where PPO goes; docs/progress.md; default 1)")
    fit.add_argument("--out", required=True, help="the run directory to write")
    fit.add_argument("--overwrite", action="store_true", help="replace a progress run already in --out")
    fit.set_defaults(func=_fit)
    ev = verbs.add_parser("eval", help="metrics of a fitted model on demos, and a plot of Φ over time")
    ev.add_argument("run", help="a progress run directory")
    ev.add_argument("--demos", nargs="+", default=None, help="datasets to score (default: the run's held-out episodes)")
    ev.add_argument("--plot", default=None, help="PNG to write (default RUN/eval.png)")
    ev.set_defaults(func=_eval)
    ad = verbs.add_parser("adapt", help="one-shot adaptation: fine-tune a fitted model on one new demo")
    ad.add_argument("run", help="the progress run to start from")
    ad.add_argument("--demos", required=True, help="a dataset with the new demonstration")
    ad.add_argument("--task", default=None, help="the task of the new demo (a name or a task folder; default: the run's)")
    ad.add_argument("--episode", type=int, default=None, help="use only this episode of the dataset (default: all)")
    ad.add_argument("--epochs", type=int, default=100, help="fine-tuning epochs (default 100)")
    ad.add_argument("--out", required=True, help="the adapted run directory to write")
    ad.add_argument("--overwrite", action="store_true", help="replace a progress run already in --out")
    ad.set_defaults(func=_adapt)
    sh = verbs.add_parser("show", help="render a demo episode with its progress curve beside each frame")
    sh.add_argument("run", help="a progress run directory")
    sh.add_argument("--demos", default=None, help="the dataset (default: the run's first --demos file)")
    sh.add_argument("--episode", type=int, default=0, help="episode index in that dataset")
    sh.add_argument("--video", required=True, help="the mp4 to write")
    sh.add_argument("--size", type=int, default=240, help="frame height in pixels (default 240)")
    sh.set_defaults(func=_show)
    p.set_defaults(func=lambda args: _missing(p))


def _missing(parser) -> int:
    parser.print_help()
    return 2


def _check_out(out: str, overwrite: bool) -> None:
    from robreward.feedback.progress.run import META_FILE

    if (Path(out) / META_FILE).exists() and not overwrite:
        raise CliError(f"--out {out!r} already holds a progress run: choose another --out or pass --overwrite")


def _fit(args) -> int:
    from robreward.cli.common import print_json
    from robreward.envs.registry import get_task
    from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

    spec = get_task(args.task)
    _check_out(args.out, args.overwrite)
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    if args.camera and args.inputs == "state":
        raise CliError("--camera is for image inputs: add --inputs image or --inputs both")
    if args.camera and args.camera != "top":
        import mujoco

        if mujoco.mj_name2id(spec.build_model(), mujoco.mjtObj.mjOBJ_CAMERA, args.camera) < 0:
            raise CliError(f"--camera {args.camera!r} is not a camera of task {spec.name}'s scene")
    config = ProgressConfig(task=spec.name, demos=tuple(str(Path(d).resolve()) for d in args.demos),
                            negatives=tuple(str(Path(d).resolve()) for d in args.negatives), inputs=args.inputs,
                            holdout=args.holdout, seed=args.seed, members=args.members, image_size=args.image_size,
                            encoder=args.encoder, camera=args.camera, mix_weight=0.0 if args.no_mix else 1.0,
                            mix_frames=args.mix_frames,
                            **({"features": args.features} if args.features else {}), **extra)
    # image inputs: the demos' frames are rendered once and cached in the run directory
    net, report = fit_progress(config, spec, cache_dir=Path(args.out) if config.uses_image else None)
    save_progress_run(args.out, net, config, spec, report)
    print_json({"out": args.out, "task": spec.name, "inputs": config.inputs, **_headline(report)})
    return 0


def _headline(report: dict) -> dict:
    held, train = report["held_out"], report["train"]
    return {"held_out": {k: held[k] for k in ("value_order_correlation", "value_order_correlation_min",
                                              "final_progress_auroc", "successes", "failures")},
            "train": {k: train[k] for k in ("value_order_correlation", "final_progress_auroc")}}


def _with_frames(episodes, spec, meta: dict, run):
    """Image models score frames: render the episodes' (cached in the run directory)."""
    from robreward.feedback.progress.model import attach_frames, check_renderer
    from robreward.feedback.progress.run import config_of

    config = config_of(meta)
    if not config.uses_image:
        return episodes
    check_renderer(config)
    return attach_frames(episodes, spec, config, cache_dir=Path(run))


def _episodes_for(meta: dict, spec, demos, run):
    from robreward.feedback.progress import load_episodes

    image = meta.get("inputs") in ("image", "both")
    if demos:
        return _with_frames(load_episodes(demos, spec, states=image), spec, meta, run), "the given demos"
    from robreward.feedback.progress.ensemble import held_out_sets

    held = set().union(*held_out_sets(meta["metrics"]))  # an ensemble's: every member's (scored out of bag)
    sources = sorted({src for src, _ in held})
    episodes = [e for e in load_episodes(sources, spec, states=image) if (e.source, e.index) in held]
    return _with_frames(episodes, spec, meta, run), "the run's held-out episodes"


def _eval(args) -> int:
    from robreward.cli.common import print_json
    from robreward.feedback.progress import episode_metrics, load_progress_run
    from robreward.feedback.progress.features import feature_names
    from robreward.feedback.progress.metrics import outside_range, progress_curves
    from robreward.feedback.progress.run import config_of

    net, meta, spec = load_progress_run(args.run)
    episodes, what = _episodes_for(meta, spec, args.demos, args.run)
    if args.demos:
        curves = progress_curves(net, episodes)
    else:  # each held-out episode by the members that never trained on it (a single net: by the net)
        from robreward.feedback.progress.ensemble import held_out_sets, out_of_bag

        held = held_out_sets(meta["metrics"])
        episodes, curves = out_of_bag(net, episodes, held)
        what += " (out of bag)" if len(held) > 1 else ""
    metrics = episode_metrics(None, episodes, curves)
    plot = Path(args.plot) if args.plot else Path(args.run) / "eval.png"
    _plot_curves(plot, episodes, curves, f"{spec.name}: Φ on {what}")
    outside = outside_range(net, episodes, feature_names(spec, config_of(meta).features))
    print_json({"run": args.run, "scored": what, "plot": str(plot),
                **{k: v for k, v in metrics.items() if k != "episodes"}, "outside_demo_range": outside})
    return 0


def _plot_curves(path: Path, episodes, curves, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robreward.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4))
    for e, curve in zip(episodes, curves):
        ax.plot(curve, color="tab:green" if e.success else "tab:red", alpha=0.7, lw=1.2)
        if e.success:
            ax.axvline(e.first_success, color="tab:green", alpha=0.15, lw=0.8)
    ax.set(xlabel="step", ylabel="progress Φ", ylim=(-0.02, 1.02), title=title + " (green: success, red: failure)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _adapt(args) -> int:
    from robreward.cli.common import print_json
    from robreward.envs.registry import get_task
    from robreward.feedback.progress import adapt_progress, load_episodes, load_progress_run, save_progress_run
    from robreward.feedback.progress.run import config_of

    _check_out(args.out, args.overwrite)
    spec = get_task(args.task) if args.task else None
    net, meta, spec = load_progress_run(args.run, spec, variant=True)  # --task may be a variant (a task folder)
    config = config_of(meta)
    episodes = load_episodes([args.demos], spec, states=config.uses_image)
    if args.episode is not None:
        if not -len(episodes) <= args.episode < len(episodes):
            raise CliError(f"--episode {args.episode} out of range: {args.demos} has {len(episodes)} episodes")
        episodes = [episodes[args.episode]]
    episodes = _with_frames(episodes, spec, meta, args.out)
    report = adapt_progress(net, episodes, config, epochs=args.epochs)
    adapted = {**meta["metrics"], "adaptation": report}
    import dataclasses

    config = dataclasses.replace(config, task=spec.name)
    save_progress_run(args.out, net, config, spec, adapted,
                      extra={"adapted_from": str(Path(args.run).resolve()), "adapted_from_task": meta.get("task"),
                             "adapt_demos": str(Path(args.demos).resolve())})
    before, after = report["before"], report["after"]
    print_json({"out": args.out, "episodes": len(episodes),
                "before": {k: before[k] for k in ("value_order_correlation", "final_progress_auroc")},
                "after": {k: after[k] for k in ("value_order_correlation", "final_progress_auroc")},
                "note": "measured on the adaptation demo itself (one-shot: nothing is held out)"})
    return 0


def _show(args) -> int:
    from robreward.feedback.progress import load_progress_run
    from robreward.feedback.progress.show import progress_video

    net, meta, spec = load_progress_run(args.run)
    demos = args.demos or (meta.get("config", {}).get("demos") or [None])[0]
    if demos is None:
        raise CliError("the run names no demo dataset: pass --demos FILE.h5")
    from robreward.feedback.progress.run import config_of

    out = progress_video(net, spec, demos, args.episode, args.video, height=args.size, config=config_of(meta),
                         cache_dir=Path(args.run))
    print(f"wrote {out}")
    return 0
