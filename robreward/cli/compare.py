"""`robreward compare runs/a runs/b runs/c [--out DIR] [--overwrite]`: markdown table (return, success,
fitness, HNS, significance vs hand) and a learning-curve PNG; writes DIR/compare.md, compare.json,
curves.png, refusing to replace an earlier comparison there without --overwrite. A run is any run
directory robreward writes: a training run, a seed group, a `prefs train` or a `generate` run."""

from __future__ import annotations


def run(args) -> int:
    from robreward.eval.compare import compare

    from robreward.cli.main import CliError

    try:
        result = compare(args.runs, out=args.out, overwrite=args.overwrite)
    except FileExistsError as err:
        raise CliError(str(err)) from None
    print(result["table"])
    print(f"wrote {result['markdown']} and {result['png']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare runs: markdown table with HNS and significance, learning curves PNG")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or seed groups: dirs of seed_N/ runs)")
    p.add_argument("--out", default=None, help="output folder (default: <first run's parent>/compare)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing comparison in the output folder")
    p.set_defaults(func=run)
