"""From an LLM response to a reward program, and the pre-flight checks every candidate passes.

    extract_program(text) -> ExtractResult(code, error, kind)       never raises for a bad response
    preflight(code, spec)  -> PreflightResult(ok, stage, reasons, term_stats)

Extraction finds the Python code in a response (```python fences, bare ``` fences, or a response
that is itself code) and requires exactly one top-level ``def compute_reward(state, action):``.
Helper functions, constants and imports beside it are fine; whether they are *allowed* is for
the reward-program checks (robreward/rewards/program.py), which ``preflight`` runs unchanged.

Which block is the program, when a response has several: the blocks that define
``compute_reward``. None -> "no code" (or "truncated" if an unclosed block is all there is);
one -> that block; several that are the same program (a model repeating itself) -> the last;
several different ones -> rejected ("several compute_reward definitions"): guessing which one
the model meant would hide the ambiguity from the repair round.

Hostile responses are rejections too, never exceptions: a response over ``MAX_RESPONSE_CHARS``,
code the parser gives up on (nesting hundreds of levels deep makes it raise RecursionError or
MemoryError; a NUL byte, ValueError) or that cannot be walked without deep recursion.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
from typing import Mapping

from robreward.envs.spec import TaskSpec

SIGNATURE = "def compute_reward(state, action):"
PYTHON_TAGS = {"", "python", "python3", "py", "py3", "python3.10", "python3.11", "python3.12"}
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w.+-]*)[^\n]*$")
MAX_RESPONSE_CHARS = 100_000
"""A response longer than this is rejected unread (a reward program is a few thousand characters)."""
_PARSE_TRIES = 200  # prefixes of an unfenced response tried as the program: bounds the work on a huge one
_PARSER_GIVES_UP = (SyntaxError, ValueError, RecursionError, MemoryError)
_CODE_START = re.compile(r"^(import |from \w[\w.]* import |def |@|[A-Za-z_]\w*\s*(:[^=]+)?=[^=])")


@dataclasses.dataclass(frozen=True)
class ExtractResult:
    """The program found in a response (``code``), or why there is none (``error``, ``kind``).

    kind: "ok", "empty", "too_long", "no_code", "several", "signature", "truncated" or "syntax"."""

    code: str | None
    error: str | None = None
    kind: str = "ok"

    @property
    def ok(self) -> bool:
        return self.code is not None


def _fail(kind: str, error: str) -> ExtractResult:
    return ExtractResult(None, error, kind)


# -- finding the code ------------------------------------------------------------------------------
@dataclasses.dataclass
class _Block:
    text: str
    tag: str
    closed: bool


def _fenced_blocks(text: str) -> list[_Block]:
    """Every fenced block, in order; a fence left open at the end is an unclosed block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[j]):
            body.append(lines[j])
            j += 1
        # a fence indented inside a markdown list indents its code too
        blocks.append(_Block(textwrap.dedent("\n".join(body)), tag, closed=j < len(lines)))
        i = j + 1
    return blocks


def _unfenced_code(text: str) -> str:
    """A response without fences: all of it if it parses; else the longest run of lines from the
    first code-looking one to a top-level line boundary that parses (prose before and after the
    code is dropped); else everything from the first code-looking line (to report its error)."""
    try:
        ast.parse(text)
        return text
    except _PARSER_GIVES_UP:
        pass
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if _CODE_START.match(line)), 0)
    ends = [end for end in range(len(lines), start, -1)
            if end == len(lines) or not lines[end][:1].isspace()]  # not inside an indented block
    for end in ends[:_PARSE_TRIES]:
        candidate = "\n".join(lines[start:end])
        try:
            ast.parse(candidate)
        except _PARSER_GIVES_UP:
            continue
        if _defines_compute_reward(candidate):
            return candidate
    return "\n".join(lines[start:])


def _defines_compute_reward(code: str) -> bool:
    return re.search(r"^\s*(async\s+)?def\s+compute_reward\b", code, re.M) is not None


# -- checking the chosen code ----------------------------------------------------------------------
def _syntax_error(code: str, err: SyntaxError, closed: bool) -> ExtractResult:
    if "null bytes" in str(err.msg):
        return _fail("syntax", "the code contains null bytes (\\x00): send plain Python source text")
    lines = code.rstrip().splitlines()
    at_end = err.lineno is None or err.lineno >= len(lines) - 1 or "was never closed" in str(err.msg) \
        or "unexpected EOF" in str(err.msg)
    if not closed or at_end:
        return _fail("truncated", f"the response looks truncated: the code ends in the middle of a statement "
                                  f"({err.msg}, line {err.lineno}); reply with the complete program")
    return _fail("syntax", f"the code has a syntax error at line {err.lineno}: {err.msg}")


def _signature_problem(fn: ast.AST) -> str | None:
    if isinstance(fn, ast.AsyncFunctionDef):
        return "compute_reward must be a plain function, not `async def`"
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if names != ["state", "action"] or args.vararg or args.kwarg or args.kwonlyargs:
        got = ast.unparse(args)
        return (f"compute_reward must have exactly the signature `{SIGNATURE}` "
                f"(got `def compute_reward({got}):`)")
    return None


def check_program(code: str, closed: bool = True) -> ExtractResult:
    """Syntax and the compute_reward contract of one piece of code (not the allow-list)."""
    if not code.strip():
        return _fail("no_code", "the code block is empty")
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        return _syntax_error(code, err, closed)
    except (ValueError, RecursionError, MemoryError) as err:
        return _fail("syntax", _unparsable(err))
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name == "compute_reward"]
    if not defs:
        nested = _defines_compute_reward(code)
        where = " (it is nested inside another statement)" if nested else ""
        return _fail("no_code", f"no top-level `{SIGNATURE}` found{where}")
    if len(defs) > 1:
        return _fail("several", f"several compute_reward definitions ({len(defs)} in one block, lines "
                                f"{', '.join(str(d.lineno) for d in defs)}); give exactly one")
    try:
        problem = _signature_problem(defs[0])
    except (RecursionError, MemoryError) as err:  # ast.unparse of deeply nested defaults
        return _fail("signature", f"the signature of compute_reward cannot be read ({_unparsable(err)}); "
                                  f"use exactly `{SIGNATURE}`")
    if problem:
        return _fail("signature", problem)
    if not closed:
        return _fail("truncated", "the response looks truncated: its last code block is never closed with ```; "
                                  "reply with the complete program")
    return ExtractResult(code.strip("\n") + "\n")


def _unparsable(err: BaseException) -> str:
    if isinstance(err, (RecursionError, MemoryError)):
        return ("the code is nested too deeply for Python's parser (an expression or block hundreds of levels "
                "deep): write it with flat expressions and helper variables")
    return f"the code cannot be parsed ({type(err).__name__}: {str(err)[:200]}); send plain Python source"


def _same_program(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except _PARSER_GIVES_UP:
        return a.strip() == b.strip()


def extract_program(text: str | None) -> ExtractResult:
    """The reward program in an LLM response; see the module docstring for the rules."""
    if text is None or not str(text).strip():
        return _fail("empty", "the response is empty: reply with the program in one ```python block")
    text = str(text).replace("\r\n", "\n")
    if len(text) > MAX_RESPONSE_CHARS:
        return _fail("too_long", f"the response is {len(text):,} characters long, over the {MAX_RESPONSE_CHARS:,} "
                                 "accepted: reply with only the program, in one ```python block")
    blocks = _fenced_blocks(text)
    if not blocks:
        code = _unfenced_code(text)
        if not _defines_compute_reward(code):
            return _fail("no_code", f"no code found in the response: reply with one ```python block defining "
                                    f"`{SIGNATURE}`")
        return check_program(code)
    python = [b for b in blocks if b.tag in PYTHON_TAGS or _defines_compute_reward(b.text)]
    defining = [b for b in python if _defines_compute_reward(b.text)]
    if not defining:
        if any(not b.closed for b in python):
            return _fail("truncated", "the response looks truncated: its last code block is never closed "
                                      "and defines no compute_reward; reply with the complete program")
        return _fail("no_code", f"no code block defines `{SIGNATURE}`")
    if len(defining) > 1 and not all(_same_program(b.text, defining[-1].text) for b in defining):
        return _fail("several", f"several compute_reward definitions ({len(defining)} code blocks define it "
                                "differently); reply with exactly one complete program in one ```python block")
    block = defining[-1]
    return check_program(block.text, closed=block.closed)


# -- pre-flight: the project's reward-program checks ---------------------------------------------------
STAGES = ("extract", "static", "dry_run", "check")
"""Where a candidate failed; "check": the checks themselves raised on it (``crash_reason``)."""


def crash_reason(err: BaseException, during: str = "the reward-program checks") -> str:
    """A rejection reason (also the repair feedback) for a program that made a check raise."""
    if isinstance(err, RecursionError):
        hint = "the program is nested too deeply (an expression or block hundreds of levels deep)"
    elif isinstance(err, MemoryError):
        hint = "the program is too large or too deeply nested to analyse"
    else:
        hint = "the checks could not process it"
    what = f"{type(err).__name__}: {str(err)[:200]}" if str(err) else type(err).__name__
    return (f"{during} failed on this program ({what}): {hint}; write it with "
            "flat expressions, helper variables and plain tensor operations")


@dataclasses.dataclass(frozen=True)
class PreflightResult:
    """One candidate's pre-flight record. ``stage``: where it failed, or the last stage run when
    ok ("dry_run", or "static" with dry_run=False). ``term_stats``: the dry run's per-term (and
    "total") mean/std/min/max over the recorded states, empty unless ok."""

    ok: bool
    stage: str
    reasons: tuple[str, ...] = ()
    term_stats: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    code: str | None = None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "stage": self.stage, "reasons": list(self.reasons),
                "term_stats": {k: dict(v) for k, v in self.term_stats.items()}}

    def feedback(self) -> str:
        """The error text for a repair prompt."""
        return "\n".join(self.reasons)


def preflight(code: str | ExtractResult | None, spec: TaskSpec | str, *, dry_run: bool = True,
              timeout_s: float = 10.0, memory_mb: int = 2048, name: str = "candidate") -> PreflightResult:
    """Check one candidate: extraction/signature, the static allow-list, then the sandboxed dry
    run (``robreward.rewards.program.check_reward_program``, the checks of ``train --reward``).
    ``code``: program source, or the ExtractResult of a response. Never raises for a bad program."""
    from robreward.rewards.program import check_reward_program

    if isinstance(code, ExtractResult):
        if not code.ok:
            return PreflightResult(False, "extract", (code.error or "no code",))
        code = code.code
    if code is None:
        return PreflightResult(False, "extract", ("no code",))
    checked = check_program(code)
    if not checked.ok:
        return PreflightResult(False, "extract", (checked.error,), code=code)
    source = checked.code  # ends in a newline: check_reward_program never takes it for a file path
    try:
        result = check_reward_program(source, spec, dry_run=dry_run, timeout_s=timeout_s, memory_mb=memory_mb,
                                      name=name)
    except Exception as err:  # noqa: BLE001  (a program that breaks the checker is that program's rejection)
        return PreflightResult(False, "check", (crash_reason(err),), code=source)
    reasons = tuple(f"line {r.line}: {r.message}" if r.line else r.message for r in result.reasons)
    if not result.ok:
        # "compile": the program ran in the sandbox to be traced into a graph, and failed there
        stage = "dry_run" if any(r.stage in ("compile", "dry-run") for r in result.reasons) else "static"
        return PreflightResult(False, stage, reasons, code=source)
    return PreflightResult(True, "dry_run" if dry_run else "static", (), result.stats, code=source)


__all__ = ["MAX_RESPONSE_CHARS", "STAGES", "ExtractResult", "crash_reason", "PreflightResult", "SIGNATURE", "check_program", "extract_program",
           "preflight"]
