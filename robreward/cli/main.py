"""`robreward VERB ...`: every module in robreward/cli with a `register(subparsers)` function
adds a verb; its parser sets `func` to the function that runs it."""

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
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda i: i.name):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"robreward.cli.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result = args.func(args)
    except CliError as err:
        print(f"robreward {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"robreward {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robreward {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`robreward tasks | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
