"""`robreward compare runs/a runs/b [--baseline-version v0 | --baselines HAND_RUN,SPARSE_RUN] [--out DIR]
[--overwrite]`: markdown table (steps, return, success, fitness, HNS with its 95% interval, significance vs
hand, EPIC and STARC to the hand reward) and a learning-curve PNG; writes DIR/compare.md, compare.json, curves.png, refusing to replace an
earlier comparison there without --overwrite. A run is any run directory robreward writes: a training run,
a seed group, a `prefs train` or a `generate` run.

H and S are the shipped baselines' (the newest version under policies/, or --baseline-version); your own
hand and sparse runs only with --baselines. The last line printed is the one to quote."""

from __future__ import annotations

import argparse


def _baselines(value):
    from robreward.cli.main import CliError

    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise CliError(f"--baselines takes two run directories separated by a comma, HAND_RUN,SPARSE_RUN "
                       f"(e.g. --baselines runs/push-hand,runs/push-sparse); got {value!r}")
    return parts


def run(args) -> int:
    from robreward.eval.compare import compare

    from robreward.cli.main import CliError

    try:
        result = compare(args.runs, out=args.out, overwrite=args.overwrite, baseline_version=args.baseline_version,
                         baselines=_baselines(args.baselines), distances=args.distances)
    except FileExistsError as err:
        raise CliError(str(err)) from None
    print(result["table"].rstrip("\n").rsplit("\n", 1)[0])
    print(f"wrote {result['markdown']} and {result['png']}")
    print()
    print(result["summary"])
    return 0


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare runs: markdown table with HNS and significance, learning curves PNG")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or seed groups: dirs of seed_N/ runs)")
    p.add_argument("--baseline-version", default=None, metavar="VERSION",
                   help="which shipped baselines give H and S: v0 (policies/<task>/), v1 (policies/v1/<task>/), ... "
                        "(default: the newest shipped for the task)")
    p.add_argument("--baselines", default=None, metavar="HAND_RUN,SPARSE_RUN",
                   help="use your own runs as H and S instead of the shipped baselines")
    p.add_argument("--distances", action=argparse.BooleanOptionalAction, default=True,
                   help="EPIC and STARC from each run's reward to the hand reward, on transitions of the shipped hand "
                        "policy and random actions (a few seconds per reward; image rewards such as clip: score "
                        "2,048 rendered frames: about 10 s on a 2-core CPU with a tiny model, 8 min with a ViT-B/32 at 224 px; "
                        "default on)")
    p.add_argument("--out", default=None, help="output folder (default: <first run's parent>/compare)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing comparison in the output folder")
    p.set_defaults(func=run)
