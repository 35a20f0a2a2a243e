"""Small helpers shared by the CLI verbs, and how an error that reaches `main` is told to the user."""

from __future__ import annotations

import errno
import json
import sys
import traceback
import warnings
from pathlib import Path

DEBUG_HINT = ("this is a bug in robreward: rerun the same command as `robreward --debug VERB ...` to see the "
              "traceback, and report it with that traceback")


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' -> list of ints."""
    try:
        if "-" in text and "," not in text:
            lo, hi = text.split("-")
            return list(range(int(lo), int(hi) + 1))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds must look like 0,1,2 or 0-4, got {text!r}") from None


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- errors -----------------------------------------------------------------------------------------
def _redact(text: str) -> str:
    """``text`` with the API keys in use redacted: a key echoed into any message never reaches the terminal."""
    try:
        from robreward.codegen.secrets import redact
    except Exception:  # noqa: BLE001  (the error path must not fail on an import)
        return text
    return redact(text)


def _os_error(err: OSError) -> tuple[str, str | None]:
    """(message, how to fix it) for an OSError, from its errno and file name."""
    name = err.filename if err.filename is not None else ""
    where = f": {name}" if name != "" else ""
    if err.errno is None or not err.strerror:  # raised with a message of its own (robreward's checks)
        return str(err), None
    fixes = {
        errno.ENOENT: "check the path (relative paths are from the current folder)",
        errno.EACCES: "check the permissions of that path, or choose another output folder (--out)",
        errno.EPERM: "check the permissions of that path, or choose another output folder (--out)",
        errno.EISDIR: "pass a file there, not a folder",
        errno.ENOTDIR: "a part of that path is a file, not a folder: check the path",
        errno.ENOSPC: "free some disk space (or choose --out on another disk), then resume or rerun",
        errno.EROFS: "choose an output folder on a writable file system (--out)",
        errno.EEXIST: "remove it or choose another path",
    }
    return f"{err.strerror.lower()}{where}", fixes.get(err.errno)


def describe_error(err: BaseException) -> tuple[str, list[str], int]:
    """How an exception is told to the user: (message, hints, exit code). Exit 2: the input, a file,
    the environment or a limit was the problem, and the message says which; exit 1: an unexpected
    error inside robreward (a bug), with a hint to rerun with --debug and report it."""
    hints = [str(note) for note in getattr(err, "__notes__", ())]  # err.add_note("how to fix") anywhere
    message = str(err).strip() or type(err).__name__
    from_robreward = type(err).__module__.split(".")[0] == "robreward"  # the project's own error classes
    if isinstance(err, RecursionError):
        message = f"the input is nested too deeply to process ({message})"
        hints.append("a file or program with expressions or data nested hundreds of levels deep is refused: "
                     "flatten it")
    elif isinstance(err, MemoryError):
        message = f"out of memory ({message})" if str(err) else "out of memory"
        hints.append("the input asks for more memory than this machine has: check its sizes, or lower --envs")
    elif isinstance(err, OSError) and not from_robreward:
        message, fix = _os_error(err)
        hints += [fix] if fix else []
    elif isinstance(err, UnicodeError):
        message = f"a file is not valid text ({message})"
        hints.append("pass a UTF-8 text file (a .py, .json or .yaml that was not truncated or overwritten)")
    elif not (from_robreward or isinstance(err, (ValueError, TypeError, LookupError, RuntimeError))):
        return f"internal error ({type(err).__name__}: {message})", hints + [DEBUG_HINT], 1
    elif isinstance(err, LookupError) and not from_robreward:  # KeyError, IndexError: a bug or a corrupt file
        return f"internal error ({type(err).__name__}: {message})", hints + [DEBUG_HINT], 1
    return message, hints, 2


def report_error(verb: str | None, err: BaseException, debug: bool = False) -> int:
    """Print ``err`` for the user (the traceback only with --debug), secrets redacted; return the exit code."""
    prefix = f"robreward {verb}" if verb else "robreward"
    message, hints, code = describe_error(err)
    lines = []
    if debug:
        lines.append("".join(traceback.format_exception(err)).rstrip())
    lines.append(f"{prefix}: error: {message}")
    lines += [f"{prefix}: hint: {hint}" for hint in hints]
    try:
        print(_redact("\n".join(lines)), file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nothing more can be said
        pass
    return code


def warning_printer(verb: str | None, debug: bool = False):
    """A ``warnings.showwarning`` for the CLI: robreward's own warnings print as one line, ``robreward VERB:
    warning: MESSAGE`` (secrets redacted), without the source line Python's format adds, and once per run (a
    dataset checked by several steps of one command warns once, not at each); another package's warnings and, with
    --debug, robreward's too keep Python's format."""
    prefix = f"robreward {verb}" if verb else "robreward"
    default = warnings.showwarning
    shown: set[str] = set()

    package = str(Path(__file__).resolve().parent.parent)

    def show(message, category, filename, lineno, file=None, line=None):
        ours = getattr(category, "__module__", "").startswith("robreward") or \
            str(Path(filename).resolve()).startswith(package)
        if debug or not ours:
            return default(message, category, filename, lineno, file, line)
        text = _redact(f"{prefix}: warning: {message}")
        if text in shown:
            return None
        shown.add(text)
        try:
            print(text, file=file or sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed
            pass

    return show
