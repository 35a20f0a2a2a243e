"""`robreward demos record|info|replay|export`: demonstration datasets (HDF5).

    robreward demos record --task push --source expert --episodes 50 --out demos/push-expert.h5
    robreward demos record --task push --source runs/push-hand --episodes 50 --noise 0.3 --out ...
    robreward demos info demos/push-expert.h5
    robreward demos replay demos/push-expert.h5 --check
    robreward demos replay demos/push-expert.h5 --episode 3 --video ep3.mp4
    robreward demos export demos/push-expert.h5 --format minari
    robreward demos replay my-task.h5 --task path/to/my_task   # a task defined by a folder

A dataset names its task; only a task of the suite is loaded from that name. A task folder is
loaded only when the command line names it (--task FOLDER), and the file's task name must match.
"""

from __future__ import annotations

import json
import sys

from robreward.cli.common import print_json

TASK_HELP = ("the task folder (or name) of the file's task, for a task defined outside the suite: a file "
             "names its task, it never picks a folder of code itself (default: the file's task, from the suite)")


def _record(args) -> int:
    from robreward.demos.record import record

    result = record(args.task, args.source, args.episodes, args.out, seed=args.seed, noise=args.noise,
                    num_envs=args.num_envs, frames=args.frames, append=not args.overwrite, force=args.force,
                    progress=not args.quiet)
    print_json(result)
    return 0


def _info(args) -> int:
    from robreward.demos.format import DemoDataset

    with DemoDataset(args.file) as ds:
        info = ds.summary()
    if args.json:
        print_json(info)
        return 0
    print(f"{info['path']}: {info['episodes']} episodes of {info['task']} v{info['task_version']}, "
          f"{info['steps']} steps ({info['size_bytes'] / 1e6:.2f} MB)")
    print(f"  lengths       mean {info['length_mean']:.1f}, min {info['length_min']}, max {info['length_max']}")
    print(f"  success rate  {info['success_rate']:.3f}   return mean {info['return_mean']:.3f}")
    print(f"  source        {info['source']}   seeds {info['seeds']}   frames {info['frames']}")
    print(f"  created       {info['created']} with robreward {info['robreward_version']}")
    print(f"  MuJoCo        {info['mujoco_version']} on {info['platform']} ({info['machine']})")
    print(f"  model hash    {info['model_hash']}")
    for h in info["history"]:
        print(f"  recorded      {json.dumps(h)}")
    return 0


def _replay(args) -> int:
    from robreward.demos.replay import render_episode, replay

    if args.video or args.episode is not None and not args.check:
        if args.episode is None:
            raise ValueError("--video needs --episode N (which episode to render)")
        if not args.video:
            raise ValueError("--episode without --check needs --video FILE.mp4 (or add --check)")
        frames = render_episode(args.file, args.episode, args.video, mode=args.mode, width=args.width,
                                height=args.height, force=args.force, task=args.task)
        print(f"wrote {args.video}: episode {args.episode}, {len(frames)} frames ({args.mode} mode)")
        if not args.check:
            return 0
    episodes = None if args.episode is None else [args.episode]
    result = replay(args.file, check=True, force=args.force, episodes=episodes, progress=not args.quiet,
                    task=args.task)
    if args.json:
        print_json(result)
    else:
        for r in result["episodes"]:
            status = ("bit-exact" if r["first_divergent_step"] is None and r["max_abs_error"] == 0
                      else f"DIVERGES at step {r['first_divergent_step']}")
            print(f"episode {r['episode']:5d}  length {r['length']:5d}  max |error| {r['max_abs_error']:.3g}  {status}")
        print(f"{len(result['episodes'])} episodes replayed, {result['diverged']} diverged, "
              f"max |error| {result['max_abs_error']:.3g}")
    return 1 if result["diverged"] else 0


def _export(args) -> int:
    from robreward.demos.export import export

    print_json(export(args.file, args.format, name=args.name, force=args.force, overwrite=args.overwrite,
                      task=args.task))
    return 0


def register(sub) -> None:
    p = sub.add_parser("demos", help="demonstration datasets: record, info, replay, export")
    verbs = p.add_subparsers(dest="demos_verb", metavar="ACTION", required=True)

    r = verbs.add_parser("record", help="record episodes of an expert or a policy into an HDF5 dataset")
    r.add_argument("--task", required=True)
    r.add_argument("--source", default="expert", help="'expert' (the task's scripted expert), or a policy file / run dir")
    r.add_argument("--episodes", type=int, default=20)
    r.add_argument("--out", required=True, help="HDF5 file; an existing one is appended to (numbering continues; a --seed already in it "
                                             "is refused)")
    r.add_argument("--noise", type=float, default=0.0, help="Gaussian action noise, std = NOISE * half the action range")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--num-envs", type=int, default=16, help="worlds recorded in parallel")
    r.add_argument("--frames", action="store_true", help="also store rendered frames (160x120, gzip)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out instead of appending")
    r.add_argument("--force", action="store_true", help="append even if the file's task/model/MuJoCo differ")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_record)

    i = verbs.add_parser("info", help="episodes, lengths, success rate and provenance of a dataset")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_info)

    p_r = verbs.add_parser("replay", help="re-simulate from actions and compare (--check), or render an episode")
    p_r.add_argument("file")
    p_r.add_argument("--check", action="store_true", help="compare with the stored states (the default without --video); exit 1 on divergence")
    p_r.add_argument("--episode", type=int, default=None)
    p_r.add_argument("--video", default=None, help="mp4 of --episode")
    p_r.add_argument("--mode", choices=("state", "actions"), default="state",
                     help="video from the stored states (mj_forward) or re-simulated from the actions")
    p_r.add_argument("--width", type=int, default=320)
    p_r.add_argument("--height", type=int, default=240)
    p_r.add_argument("--force", action="store_true", help="replay a file of another task version or model anyway")
    p_r.add_argument("--task", default=None, help=TASK_HELP)
    p_r.add_argument("--json", action="store_true")
    p_r.add_argument("--quiet", action="store_true")
    p_r.set_defaults(func=_replay)

    e = verbs.add_parser("export", help="export for the Gymnasium ecosystem (Minari)")
    e.add_argument("file")
    e.add_argument("--format", choices=("minari",), default="minari")
    e.add_argument("--name", default=None, help="dataset id (default robreward/<task>/<file stem>-v0)")
    e.add_argument("--overwrite", action="store_true", help="replace a Minari dataset of the same id")
    e.add_argument("--force", action="store_true")
    e.add_argument("--task", default=None, help=TASK_HELP)
    e.set_defaults(func=_export)


if __name__ == "__main__":  # pragma: no cover
    from robreward.cli.main import main

    sys.exit(main(["demos", *sys.argv[1:]]))
