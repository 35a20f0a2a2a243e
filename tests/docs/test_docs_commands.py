"""Every command shown in README.md and docs/*.md runs, so the docs stay true.

Collected: the lines of ```console blocks that start with `robreward ` or `make ` (a `$ ` prompt
is allowed, a trailing `\\` continues a line, `# ...` after a command is a comment). Each page's
`robreward` commands run for real, in the order shown, in a temporary directory of their own
(the current directory while they run) that holds copies of the repository's `examples/`,
`demos/` and `policies/` (so a command that writes there cannot touch the checkout), with the
budgets cut by the ONE table below (TINY) and placeholders (an LLM endpoint) pointed at a local
fake server. A command exits 0 or the page's test fails, unless it is in ALLOWED with the reason
the harness cannot run it. `make` lines are checked, not run: the target exists in the Makefile,
and for `make demo` every `robreward` command of scripts/demo.sh names a real verb and only flags
that verb takes.

In-process: a command runs as `robreward.cli.main.main(argv)`, the function the `robreward`
console script calls, in this test's process (its stdout and stderr captured at the file
descriptors, so the sandbox's and other children's output too; exit code from its return value
or SystemExit; the current directory, os.environ, torch's thread count and the global random
states restored after each command; a SIGALRM stops one that runs past COMMAND_TIMEOUT).
Starting Python, torch and MuJoCo once per command was most of the harness's time. A command in SUBPROCESS (with the reason) runs
through the installed `robreward` script instead, as before; the console script itself (the
entry point, `--version`, `--help`, a tiny train + eval) is run as a subprocess by
tests/cli/test_every_verb.py.

Slow lane (`make test-all`). Measured on the shared 2-core VM (2026-12-03), the whole file: every
command as a subprocess 17 min 47 s at load 3-8 and 561 s at load 3.5-5 (387 s CPU); in-process
150-243 s at load 3-6 (134-144 s CPU; 27-45 s of it the Ray page's one subprocess, mostly Ray's own
start), peak RSS 1.2 GB. The page that starts Ray (`--ray local`) is also marked `ray`. The checks that run nothing (parsing
every command, make targets, scripts/demo.sh, links) are in the fast lane and take seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROBREWARD = Path(sys.executable).with_name("robreward")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COPIED = ("examples", "demos", "policies")  # repository folders a command may read, copied per page
FAKE_LLM_URL = "{fake_llm_url}"
COMMAND_TIMEOUT = 300  # seconds per command: a tiny-budget command that takes longer is a failure

# The tiny-budget table: (verb prefix, flag, value). A flag given in a command gets the value; a
# flag of the command's verb that is not given is appended with it (when the verb has that flag).
# Budgets only, never behaviour. Commands with --resume take no budget flags (a resumed run keeps its own).
TINY: list[tuple[str, str, str]] = [
    ("train", "--steps", "2048"),
    ("train", "--envs", "8"),
    ("train", "--eval-episodes", "8"),
    ("eval", "--episodes", "8"),
    ("expert", "--episodes", "4"),
    ("demos record", "--episodes", "4"),
    ("bench sim", "--envs", "8"),
    ("bench sim", "--steps", "256"),
    ("bench sim", "--repeats", "1"),
    ("progress fit", "--epochs", "5"),
    ("prefs train", "--steps", "4096"),
    ("prefs train", "--envs", "8"),
    ("prefs train", "--eval-episodes", "8"),
    ("prefs train", "--queries", "20"),
    ("prefs train", "--per-round", "10"),
    ("prefs train", "--segment", "10"),
    ("prefs eval", "--bootstrap", "20"),
    ("prefs eval", "--pairs", "200"),
    ("distance", "--envs", "8"),
    ("distance", "--steps", "128"),
    ("distance", "--bootstrap", "20"),
    ("generate", "--steps", "2048"),
    ("generate", "--envs", "8"),
    ("generate", "--eval-episodes", "8"),
    ("generate", "--samples", "2"),
    ("generate", "--iterations", "1"),
    ("generate", "--final-seeds", "1"),
    ("generate", "--final-steps", "2048"),
    ("generate", "--candidate-seeds", "2"),
    # a live LLM (--llm MODEL, anthropic:MODEL or --base-url URL) is the local fake server below
    ("generate", "--base-url", FAKE_LLM_URL),
]
REPLAYED = ("--base-url", "--samples")  # a replayed transcript answers its own requests: n must match the recording
NO_PROGRESS_BAR = ("train", "prefs train")  # verbs that take --no-progress (quieter logs)

# Commands the harness cannot run, by a regular expression on the command, with the reason. Keep it tiny:
# everything else must run. Each entry must still match a command in the docs (checked below).
ALLOWED: dict[str, str] = {
    r"--teacher human": "waits for a person to label clips in the browser (tests/feedback/test_human_teacher.py)",
    r"^robreward label ": "serves the labeling page until stopped (tests/feedback/test_app.py drives it)",
    r"--preferences human": "waits for a person to pick videos in the browser (tests/codegen/test_choose.py)",
    r"--device cuda": "needs a CUDA GPU (the warp backend is tested on Warp's CPU device: tests/envs/test_warp.py)",
    r"--ray auto": "needs a running Ray cluster (--ray local runs here)",
}

# Commands that run as a subprocess of the installed `robreward` script rather than in-process, by a regular
# expression on the command, with the reason. Each entry must still match a command in the docs (checked below).
SUBPROCESS: dict[str, str] = {
    r"--ray local": "starts a local Ray instance that lives as long as its process (ray.init, never shut down): "
                    "in this process it would stay up for every later test",
}


@dataclass
class Command:
    page: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def collect(page: Path) -> list[Command]:
    """The `robreward`/`make` lines of the page's ```console blocks, in order."""
    commands, in_console, pending, start = [], False, "", 0
    for number, raw in enumerate(page.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            in_console = not in_console and stripped == "```console"
            continue
        if not in_console:
            continue
        text = stripped.removeprefix("$ ")
        if pending:
            text, pending = pending + " " + text, ""
        elif not text.startswith(("robreward ", "make ")):
            continue
        else:
            start = number
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        commands.append(Command(page, start, text))
    return commands


def verb_of(argv: list[str]) -> str:
    """'train', 'prefs train', 'bench sim', ...: the verb (and sub-verb) of a robreward command."""
    words = [w for w in argv[1:3] if not w.startswith("-")] or [""]
    two = " ".join(words[:2])
    return two if any(prefix == two for prefix, _, _ in TINY) or two in NO_PROGRESS_BAR else words[0]


def verb_flags(verb: str) -> set[str]:
    """The option strings `robreward VERB` takes (from its argparse parser, built in-process)."""
    from robreward.cli.main import build_parser

    words = verb.split()
    parser = build_parser(words)
    for word in words:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[word]
    return {option for action in parser._actions for option in action.option_strings}


def tiny(argv: list[str], fake_llm_url: str) -> list[str]:
    """The command with TINY's budgets (and the fake LLM server) in place of the page's."""
    verb, argv = verb_of(argv), list(argv)
    flags = verb_flags(verb) if any(prefix == verb for prefix, _, _ in TINY) else set()
    resumed = "--resume" in argv
    for prefix, flag, value in TINY:
        if prefix != verb:
            continue
        value = value.replace(FAKE_LLM_URL, fake_llm_url)
        replay = "--llm" in argv and argv[argv.index("--llm") + 1].startswith("replay:")
        if resumed or (replay and flag in REPLAYED):
            continue
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        elif flag in flags:
            argv += [flag, value]
    if verb in NO_PROGRESS_BAR and "--no-progress" not in argv and "--progress" not in argv:
        argv.append("--no-progress")
    return argv


def allowed_reason(command: Command) -> str | None:
    return next((reason for pattern, reason in ALLOWED.items() if re.search(pattern, command.text)), None)


def all_commands() -> list[Command]:
    return [command for page in PAGES for command in collect(page)]


# ---- the checks that need no run (fast lane) ----

def test_the_pages_have_commands_and_every_allowed_entry_is_used():
    commands = all_commands()
    assert any(c.page.name == "README.md" for c in commands), "README.md has no ```console commands"
    unused = [p for p in ALLOWED if not any(re.search(p, c.text) for c in commands)]
    assert not unused, f"ALLOWED entries no command in the docs needs (remove them): {unused}"
    unused = [p for p in SUBPROCESS if not any(re.search(p, c.text) and not allowed_reason(c) for c in commands)]
    assert not unused, f"SUBPROCESS entries no command that runs needs (remove them): {unused}"


def test_every_shown_command_parses():
    """Verb and flags of every `robreward` line are real (argparse, in-process): a typo fails here in
    seconds, before the slow run below."""
    from robreward.cli.main import build_parser

    bad = []
    for command in all_commands():
        argv = shlex.split(command.text, comments=True)
        if argv[0] != "robreward":
            continue
        try:
            build_parser(argv[1:]).parse_args(argv[1:])
        except SystemExit as exit_:
            if exit_.code:  # --help / --version exit 0
                bad.append(command.where + ": " + command.text)
    assert not bad, "commands in the docs that robreward's parser refuses:\n" + "\n".join(bad)


def test_local_links_resolve():
    """Every relative link of README.md and docs/*.md names a file of the repository."""
    broken = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # a URL or an anchor on the same page
                if not (page.parent / target.split("#")[0]).exists():
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.M))


def test_make_lines_name_real_targets():
    targets = makefile_targets()
    missing = [f"{c.where}: {c.text}" for c in all_commands()
               if c.text.startswith("make ") and shlex.split(c.text, comments=True)[1] not in targets]
    assert not missing, "make targets shown in the docs that the Makefile lacks:\n" + "\n".join(missing)
    assert {"demo", "test"} <= targets


def demo_commands() -> list[list[str]]:
    """The robreward commands of scripts/demo.sh (`$RR VERB ...` lines, continuations joined)."""
    text = (ROOT / "scripts" / "demo.sh").read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$RR ") and ">/dev/null" not in line:  # `$RR train --help >/dev/null` is a probe
            commands.append(shlex.split(line.replace("$RR", "robreward", 1), comments=True))
    return commands


def test_make_demo_runs_real_commands():
    """`make demo` is not run here (minutes); its robreward commands must parse with the verbs' real flags."""
    from robreward.cli.main import build_parser

    commands = demo_commands()
    verbs = {argv[1] for argv in commands}
    assert {"tasks", "expert", "train", "eval", "compare", "generate"} <= verbs
    for argv in commands:
        argv = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", word) for word in argv]  # ${DEMO_STEPS:-300000}
        argv = [word.replace('"$OUT', "runs/demo").replace("$OUT", "runs/demo").replace('"', "") for word in argv]
        try:
            build_parser(argv[1:]).parse_args(argv[1:])
        except SystemExit as exit_:
            pytest.fail(f"scripts/demo.sh: robreward refuses {' '.join(argv)} (exit {exit_.code})")


def test_tiny_table_substitutes_and_appends():
    argv = tiny(shlex.split("robreward train --task push --steps 1000000 --out runs/x"), "http://127.0.0.1:1/v1")
    assert argv[argv.index("--steps") + 1] == "2048" and argv[argv.index("--envs") + 1] == "8"
    live = tiny(shlex.split("robreward generate --task push --llm gpt-4o --out g"), "http://127.0.0.1:1/v1")
    assert live[live.index("--base-url") + 1] == "http://127.0.0.1:1/v1"
    replay = tiny(shlex.split("robreward generate --task reach --llm replay:examples/x --out g"), "http://x")
    assert "--base-url" not in replay and "--samples" not in replay
    resumed = shlex.split("robreward generate --resume g --max-cost 5")
    assert tiny(resumed, "http://x") == resumed  # a resumed run keeps its budgets and its LLM


# ---- running them (slow lane) ----

def fake_program(body: dict) -> str:
    """The fake LLM's answer: a valid reward program for the scene the prompt describes."""
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    if "cube_to_goal" in prompt:
        code = (ROOT / "examples" / "push_reward.py").read_text()
    else:
        code = ("import torch\n\n\ndef compute_reward(state, action):\n"
                "    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)\n"
                "    reach = 1.0 - torch.tanh(dist / 0.1)\n"
                "    effort = -0.01 * (action ** 2).sum(-1)\n"
                "    terms = {'reach': reach, 'effort': effort}\n"
                "    return reach + effort, terms\n")
    return f"Here is a reward.\n\n```python\n{code}```\n"


@pytest.fixture(scope="module")
def fake_llm():
    from tests.codegen.conftest import FakeLLMServer

    server = FakeLLMServer("openai").start()
    server.text_fn = lambda request, choice, body: fake_program(body)
    yield server
    server.stop()


def page_params():
    params = []
    for page in PAGES:
        commands = [c for c in collect(page) if c.text.startswith("robreward ") and not allowed_reason(c)]
        if not commands:
            continue  # nothing to run (a page of allowed commands only, e.g. the GPU how-to)
        marks = [pytest.mark.slow] + ([pytest.mark.ray] if any("--ray" in c.text for c in commands) else [])
        params.append(pytest.param(page, marks=marks, id=str(page.relative_to(ROOT))))
    return params


class CommandTimeout(BaseException):
    """Raised by SIGALRM in a command that runs past COMMAND_TIMEOUT. A BaseException, so that the
    CLI's one top-level handler (`except Exception`) does not turn it into an exit code."""


def _stop(signum, frame):
    raise CommandTimeout


def run_in_process(argv: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT) -> int | str:
    """`robreward ARGV...` as the console script runs it: robreward.cli.main.main(argv[1:]), from ``cwd``.
    The exit code (an int), or why there was none. The caller captures the output (capfd)."""
    import random

    import numpy as np
    import torch

    from robreward.cli.main import main

    before_cwd, before_env, before_threads = os.getcwd(), dict(os.environ), torch.get_num_threads()
    before_rng = random.getstate(), np.random.get_state(), torch.get_rng_state()  # training seeds them globally
    outer, started = signal.getitimer(signal.ITIMER_REAL)[0], time.monotonic()  # e.g. pytest --timeout's own alarm
    previous = signal.signal(signal.SIGALRM, _stop)
    limit = min(timeout, outer) if outer else timeout
    # the alarm repeats every 0.25 s: native code that checks for signals may swallow the first exception (seen
    # with a 10M-step `bench sim` on a loaded machine: MuJoCo's batch kept running for half an hour)
    signal.setitimer(signal.ITIMER_REAL, limit, 0.25)
    try:
        os.chdir(cwd)
        code = main(argv[1:])
    except SystemExit as exit_:  # argparse (--help, --version, a refused flag) and anything that calls sys.exit
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else f"1 ({exit_.code})")
    except CommandTimeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        code = f"none: stopped after {limit:g} s"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # the outer alarm keeps counting from where it was
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001))
        os.chdir(before_cwd)
        os.environ.clear()
        os.environ.update(before_env)
        torch.set_num_threads(before_threads)
        random.setstate(before_rng[0])
        np.random.set_state(before_rng[1])
        torch.set_rng_state(before_rng[2])
    return code


def run_subprocess(argv: list[str], cwd: Path, env: dict) -> tuple[int | str, str]:
    """`robreward ARGV...` through the installed console script: (exit code or why none, output)."""
    try:
        proc = subprocess.run([str(ROBREWARD), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT)
        return proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        output = "".join(x.decode() if isinstance(x, bytes) else x for x in (err.stdout, err.stderr) if x)
        return f"none: killed after {COMMAND_TIMEOUT} s", output


def subprocess_reason(command: Command) -> str | None:
    return next((reason for pattern, reason in SUBPROCESS.items() if re.search(pattern, command.text)), None)


def test_in_process_runs_report_exit_codes_output_and_timeouts(tmp_path, capfd, monkeypatch):
    """The in-process runner sees what the console script's caller would: the exit code of a refused
    command and of argparse's own exits, the output at the file descriptors, a timeout; and it puts the
    current directory and os.environ back (a command that fails must not pass, nor leak into later tests)."""
    here = os.getcwd()
    monkeypatch.setenv("ROBREWARD_DOCS_HARNESS_PROBE", "1")
    assert run_in_process(["robreward", "tasks", "show", "no-such-task"], tmp_path) == 2
    assert "unknown task 'no-such-task'" in capfd.readouterr().err
    assert run_in_process(["robreward", "train", "--no-such-flag"], tmp_path) == 2
    assert "unrecognized arguments: --no-such-flag" in capfd.readouterr().err
    assert run_in_process(["robreward", "--version"], tmp_path) == 0
    assert capfd.readouterr().out.strip() == "robreward 0.1.0"
    stopped = run_in_process(["robreward", "bench", "sim", "--task", "reach", "--envs", "4", "--steps", "10000000",
                              "--repeats", "1"], tmp_path, timeout=0.5)
    assert stopped == "none: stopped after 0.5 s"
    assert os.getcwd() == here and os.environ["ROBREWARD_DOCS_HARNESS_PROBE"] == "1"
    assert signal.getsignal(signal.SIGALRM) is not _stop


@pytest.mark.parametrize("page", page_params())
def test_page_commands_run(page, tmp_path, fake_llm, monkeypatch, capfd):
    for folder in COPIED:
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=False)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    monkeypatch.setenv("PYOPENGL_PLATFORM", os.environ.get("PYOPENGL_PLATFORM", "egl"))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # a real key must never reach the fake server
        monkeypatch.delenv(key, raising=False)
    failures, ran = [], []
    for command in collect(page):
        if not command.text.startswith("robreward ") or allowed_reason(command):
            continue
        argv = tiny(shlex.split(command.text, comments=True), fake_llm.base_url)
        start = time.monotonic()
        capfd.readouterr()  # this command's output only
        if subprocess_reason(command):
            code, output = run_subprocess(argv, tmp_path, dict(os.environ))
        else:
            code = run_in_process(argv, tmp_path)
            captured = capfd.readouterr()
            output = captured.out + captured.err
        how = "subprocess" if subprocess_reason(command) else "in-process"
        ran.append(f"{time.monotonic() - start:6.1f} s  {how:10}  {command.where}: {shlex.join(argv)}")
        if code != 0:
            failures.append(f"{command.where}: exit {code}\n  shown: {command.text}\n"
                            f"  ran:   {shlex.join(argv)}\n{output[-1500:]}")
    print("\n".join(ran))  # each command with its wall time: shown by pytest -s, and on a failure
    assert ran, f"{page.name}: no command ran"
    assert not failures, "\n\n".join(failures)
