"""`robreward VERB ...`: every module in robreward/cli with a `register(subparsers)` function
adds a verb; its parser sets `func` to the function that runs it.

Every error that reaches `main` is printed as `robreward VERB: error: MESSAGE` (and `hint:` lines
saying how to fix it where that is known), never as a traceback: exit 2 for bad input, files,
the environment or limits; exit 1 for an unexpected internal error, with a line saying to rerun
with `robreward --debug VERB ...` (which prints the traceback too) and report it; 130 on Ctrl-C
(robreward/cli/common.py: describe_error)."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import warnings

# verb -> (module in robreward/cli, one line for `robreward --help`). Only the module of the verb being run
# is imported (its heavy imports, torch and MuJoCo, inside its functions): `robreward --help` and
# `--version` import none of them. tests/cli/test_every_verb.py checks this table against the modules.
VERBS = {
    "bench": ("bench", "measure simulation throughput (env-steps/s, JSON)"),
    "check-reward": ("check_reward", "check a reward program (static checks + sandboxed dry run)"),
    "compare": ("compare", "compare runs: markdown table with HNS and significance, learning curves PNG"),
    "demos": ("demos", "demonstration datasets: record, info, replay, export"),
    "distance": ("distance", "EPIC, DARD and STARC distances between two rewards of a task (0: same, 1: opposite)"),
    "eval": ("eval", "evaluate a run or a policy file; write eval.json (and optionally a video)"),
    "expert": ("expert", "run a task's scripted expert; report success; optionally write a video"),
    "generate": ("generate", "LLM-written reward programs: sample, check, train, reflect, keep the best"),
    "label": ("label", "label a run's preference queries in the browser (the human teacher)"),
    "progress": ("progress", "progress reward models from demos: fit, eval, adapt, show (progress:RUN shaping)"),
    "prefs": ("prefs", "learn a reward from preferences (PEBBLE-style) and train a policy on it"),
    "tasks": ("tasks", "list the tasks, or show one task's description and state fields"),
    "train": ("train", "train a policy (PPO) on a task with a reward; writes a run directory"),
    "vision": ("vision", "CLIP/SigLIP rewards: score frames against goal/baseline prompts, bench render + score"),
}


class CliError(Exception):
    """A user error: printed as one clear line, exit code 2."""


class VerbParser(argparse.ArgumentParser):
    """A verb's parser: it reports its own unknown flags (with its usage, and the closest flag it knows)
    instead of handing them up to the top-level parser, whose usage says nothing about the verb."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            flags = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
            close = [m for e in extras if e.startswith("-")
                     for m in difflib.get_close_matches(e.split("=")[0], flags, n=1, cutoff=0.6)]
            hint = f" (did you mean {', '.join(dict.fromkeys(close))}?)" if close else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras


def _verb_of(argv: list[str]) -> str | None:
    """The verb named on the command line (the first word that is not a top-level flag)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `robreward` parser. With ``argv``, only the verb it names gets its full parser (its module is
    imported); the others are listed with their one-line help. Without, every verb is built in full."""
    import importlib

    from robreward import __version__

    parser = argparse.ArgumentParser(prog="robreward", description="Reward learning and batched MuJoCo training.")
    parser.add_argument("--version", action="version", version=f"robreward {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback too (give it before VERB: robreward --debug VERB)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=VerbParser)
    wanted = set(VERBS) if argv is None else {_verb_of(argv)}
    for verb, (module_name, help_text) in VERBS.items():
        if verb in wanted:
            importlib.import_module(f"robreward.cli.{module_name}").register(sub)
            sub.choices[verb].description = sub.choices[verb].description or help_text
            # the line `robreward --help` shows comes from this table, whatever the module passed
            sub._choices_actions[:] = [a for a in sub._choices_actions if a.dest != verb]
            sub._choices_actions.append(argparse._SubParsersAction._ChoicesPseudoAction(verb, (), help_text))
        else:
            sub.add_parser(verb, help=help_text, description=help_text)
    return parser


def main(argv=None) -> int:
    from robreward.cli.common import report_error, warning_printer

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv[:1]  # known before parsing: an error while building the parser is reported too
    args = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        with warnings.catch_warnings():  # robreward's warnings as one line each; the filters restored after
            warnings.showwarning = warning_printer(args.verb, debug=bool(getattr(args, "debug", debug)))
            return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        verb = getattr(args, "verb", None)
        said = getattr(err, "message", None) or "interrupted"  # a verb's subclass says what was saved and how to resume
        print(f"robreward {verb}: {said}" if verb else f"robreward: {said}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`robreward tasks | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:  # noqa: BLE001  (the one top-level handler: no raw tracebacks)
        return report_error(getattr(args, "verb", None), err, debug=bool(getattr(args, "debug", debug)))


if __name__ == "__main__":
    sys.exit(main())
