"""`robreward VERB ...`: every module in robreward/cli with a `register(subparsers)` function
adds a verb; its parser sets `func` to the function that runs it.

Every error that reaches `main` is printed as `robreward VERB: error: MESSAGE` (and `hint:` lines
saying how to fix it where that is known), never as a traceback: exit 2 for bad input, files,
the environment or limits; exit 1 for an unexpected internal error, with a line saying to rerun
with `robreward --debug VERB ...` (which prints the traceback too) and report it; 130 on Ctrl-C
(robreward/cli/common.py: describe_error)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import robreward.cli as cli_package


class CliError(Exception):
    """A user error: printed as one clear line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robreward", description="Reward learning and batched MuJoCo training.")
    parser.add_argument("--version", action="version", version=f"robreward {__import__('robreward').__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback too (give it before VERB: robreward --debug VERB)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda i: i.name):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"robreward.cli.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv=None) -> int:
    from robreward.cli.common import report_error

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv[:1]  # known before parsing: an error while building the parser is reported too
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        verb = getattr(args, "verb", None)
        print(f"robreward {verb}: interrupted" if verb else "robreward: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`robreward tasks | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:  # noqa: BLE001  (the one top-level handler: no raw tracebacks)
        return report_error(getattr(args, "verb", None), err, debug=bool(getattr(args, "debug", debug)))


if __name__ == "__main__":
    sys.exit(main())
