"""Reward programs: a file (or string) defining ``compute_reward(state, action) -> (total, terms)``,
written by a user or an LLM. Its Python never runs in the training process: it is compiled to a
graph of pure tensor ops in a locked-down sandbox child, and only that graph runs here.

    check_reward_program(path_or_source, spec) -> CheckResult          never raises for a bad program
    load_reward_program(path_or_source, spec)  -> RewardProgram        raises RewardProgramError

The stages, in order (a later stage runs only if the earlier ones passed):

1. ``static``: an AST allow-list (robreward/rewards/checker.py); every problem is reported. The
   friendly layer: it explains most mistakes in words an LLM can act on.
2. ``compile``: the sandbox child (robreward/rewards/sandbox.py: rlimits, seccomp, no network,
   no files, no processes, a minimal environment) traces ``compute_reward`` at a symbolic N into
   ATen ops and answers plain JSON; here every op is checked against the allow-list of pure
   tensor ops and the graph is run on meta tensors at N=16 and N=4096 (outputs float [N];
   memory and work per call bounded) (robreward/rewards/graph.py). Python branches on tensor
   values cannot be traced: they are rejected with a message that says to use torch.where.
3. ``dry-run``: the graph runs here on TaskStates recorded from a seeded rollout of the task
   (16 worlds x 32 steps of uniform random actions); each output must have shape [N], a float
   dtype, finite values and terms that sum to the total (``check_reward_output``).

In training a graph cannot hang, keep state between calls, allocate without bound or reach a
file: it is straight-line tensor code over its inputs. Non-finite rewards and terms that stop
summing to the total are caught by the trainer's per-step check, as for every reward.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import hashlib
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Mapping

import torch

from robreward.envs.spec import TaskSpec, TaskState
from robreward.rewards import checker, sandbox
from robreward.rewards.base import check_reward_output
from robreward.rewards.graph import GraphError, RewardGraph

DRY_RUN_WORLDS = 16
DRY_RUN_STEPS = 32
LARGE_WORLDS = 4096  # check-reward reports the cost per call at this N
ACTION_INPUT = "__action__"  # the graph's last input: compute_reward's action argument
STARTUP_TIMEOUT_S = 120.0  # importing torch in the child on a busy machine; not the program's time


@dataclasses.dataclass(frozen=True)
class Reason:
    """One reason a program was rejected: the stage that found it (parse, static, compile,
    dry-run, runtime), the message, and the program line (0 when not tied to one)."""

    stage: str
    message: str
    line: int = 0

    def __str__(self) -> str:
        return f"[{self.stage}] " + (f"line {self.line}: " if self.line else "") + self.message


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one reward program (a record the LLM loop can store and show)."""

    name: str
    task: str
    ok: bool
    reasons: tuple[Reason, ...] = ()
    stats: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    """Dry run: per term (and "total"): mean, std, min, max over all recorded states."""
    num_states: int = 0
    dry_run_s: float = 0.0
    """Seconds the sandbox took to trace the program."""
    graph: Mapping = dataclasses.field(default_factory=dict)
    """The compiled graph: ops, op_counts, terms, dry_run_call_us, and bytes/flops per call at `worlds`."""

    @property
    def messages(self) -> list[str]:
        return [str(r) for r in self.reasons]

    @property
    def stages(self) -> list[str]:
        return [r.stage for r in self.reasons]

    def to_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "ok": self.ok,
                "reasons": [dataclasses.asdict(r) for r in self.reasons],
                "stats": {k: dict(v) for k, v in self.stats.items()}, "num_states": self.num_states,
                "dry_run_s": round(self.dry_run_s, 3), "graph": dict(self.graph)}

    def format(self) -> str:
        if not self.ok:
            lines = [f"REJECTED {self.name} for task {self.task}: {len(self.reasons)} reason(s)"]
            lines += [f"  - {r}".replace("\n", "\n    ") for r in self.reasons]
            return "\n".join(lines)
        lines = [f"OK {self.name} for task {self.task}: compiled in {self.dry_run_s:.2f}s, dry run on "
                 f"{self.num_states} recorded states", f"  {'term':<24} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}"]
        for k, s in self.stats.items():
            lines.append(f"  {k:<24} {s['mean']:>10.4g} {s['std']:>10.4g} {s['min']:>10.4g} {s['max']:>10.4g}")
        g = self.graph
        if g:
            ops = ", ".join(f"{k} {v}" for k, v in list(g["op_counts"].items())[:8])
            lines.append(f"  graph: {g['ops']} tensor ops ({ops}{', ...' if len(g['op_counts']) > 8 else ''})")
            lines.append(f"  cost per call: {g['dry_run_call_us']:.0f} us at {DRY_RUN_WORLDS} worlds here; at "
                         f"{g['worlds']} worlds {g['bytes_per_call'] / 2**20:.1f} MB and {g['flops_per_call']:.3g} "
                         "operations")
        return "\n".join(lines)


class RewardProgramError(ValueError):
    """A reward program was rejected (or broke the contract in training); ``reasons`` lists all."""

    def __init__(self, reasons, result: CheckResult | None = None, name: str = "reward program"):
        self.reasons = list(reasons)
        self.result = result
        head = f"reward program {name!r} rejected" if result else f"reward program {name!r} failed"
        self.name = name
        super().__init__(head + ":\n" + "\n".join(f"  - {r}".replace("\n", "\n    ") for r in self.reasons))

    def __reduce__(self):  # picklable with its reasons (a Ray task or a subprocess sends it back)
        return (type(self), (self.reasons, self.result, self.name))


# -- reading the program ------------------------------------------------------------------------
def _read(path_or_source, name) -> tuple[str, str, str]:
    """(name, filename, source). A Path, or a one-line str ending in .py or naming a file, is a
    file path; any other str is the program's source."""
    text = path_or_source if isinstance(path_or_source, str) else ""
    if isinstance(path_or_source, os.PathLike) or ("\n" not in text and (text.endswith(".py") or os.path.isfile(text))):
        path = Path(path_or_source)
        if not path.is_file():
            raise FileNotFoundError(f"reward file {str(path)!r} not found (a .py file defining compute_reward(state, action))")
        data = path.read_bytes()
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            source = data.decode("utf-8", "replace")
        return name or path.stem, str(path.resolve()), source
    if not isinstance(path_or_source, str):
        raise TypeError(f"expected a reward file path or program source, got {type(path_or_source).__name__}")
    return name or "program", f"<reward program {name or 'program'}>", path_or_source


def _spec(spec) -> TaskSpec:
    if isinstance(spec, TaskSpec):
        return spec
    from robreward.envs.registry import get_task

    return get_task(spec)


# -- recorded states ---------------------------------------------------------------------------
_RECORDED: dict = {}


def record_states(spec: TaskSpec, num_envs: int = DRY_RUN_WORLDS, steps: int = DRY_RUN_STEPS, seed: int = 0):
    """Post-step TaskStates of a seeded rollout with uniform random actions, as numpy arrays
    (one dict per step); cached per task and arguments. The rollout is made by the recorder robreward.envs
    registers (robreward/envs/recording.py): rewards never import envs."""
    key = (spec.name, spec.version, id(spec), num_envs, steps, seed)
    if key not in _RECORDED:
        from robreward.rewards.spec import state_recorder

        _RECORDED[key] = state_recorder()(spec, num_envs, steps, seed)
    return _RECORDED[key]


# -- compiling: a sandbox server process (sandbox._serve) forks one locked-down child per program ----
class _SandboxServer:
    """`python -I sandbox.py`: started once, imports torch and warms up the tracer once, forks a
    child per program (so compiling costs a trace, not an interpreter start). Restarted if it dies
    or hangs. It gets a minimal environment: no API keys, no proxies, one thread."""

    def __init__(self):
        env = {"PATH": os.defpath, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        if "LD_LIBRARY_PATH" in os.environ:
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        self.cwd = tempfile.mkdtemp(prefix="robreward-sandbox-")
        self.proc = subprocess.Popen([sys.executable, "-I", sandbox.__file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.cwd, env=env,
                                     start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        self.err_tail: deque = deque(maxlen=40)
        threading.Thread(target=_drain, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=_drain, args=(self.proc.stderr, lambda b: b and self.err_tail.append(b)),
                         daemon=True).start()
        if self._next(STARTUP_TIMEOUT_S) != b"ready\n":
            self.close()
            tail = b"".join(self.err_tail).decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RuntimeError("the reward sandbox failed to start:\n  " + "\n  ".join(tail))

    def _next(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def request(self, payload: dict, timeout: float):
        data = json.dumps(payload).encode()
        try:
            self.proc.stdin.write(b"%d\n" % len(data) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self._next(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.cwd, ignore_errors=True)


_SERVER: _SandboxServer | None = None
_SERVER_LOCK = threading.Lock()


def _drain(stream, sink) -> None:
    for line in iter(stream.readline, b""):
        sink(line)
    sink(None)


@atexit.register
def _stop_server() -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.close()
        _SERVER = None


def _inputs(states) -> tuple[list[str], dict, dict]:
    """The graph's inputs for recorded states (dicts of arrays [N, ...]): the state fields, then the
    action argument; their shapes without N and their dtypes."""
    fields = list(states[0])
    names = fields + [ACTION_INPUT]
    first = states[0]
    shapes = {k: tuple(first[k].shape[1:]) for k in fields} | {ACTION_INPUT: tuple(first["action"].shape[1:])}
    dtypes = {k: getattr(torch, str(first[k].dtype)) for k in fields} | {ACTION_INPUT: getattr(torch, str(first["action"].dtype))}
    return names, shapes, dtypes


def compile_program(source: str, filename: str, states, timeout_s: float, memory_mb: int):
    """Trace the program in a sandboxed child and check its graph here: (reasons, RewardGraph or
    None, seconds). Never raises for a bad program; the same program and inputs compile once."""
    names, shapes, dtypes = _inputs(states)
    key = (hashlib.sha256(source.encode("utf-8", "replace")).hexdigest(), tuple(names),
           tuple(shapes.items()), tuple(str(d) for d in dtypes.values()), int(memory_mb))
    if key in _COMPILED:
        return [], _COMPILED[key], 0.0
    global _SERVER
    payload = {"source": source, "filename": filename, "names": names, "shapes": [list(shapes[n]) for n in names],
               "dtypes": [str(dtypes[n]).removeprefix("torch.") for n in names], "timeout_s": float(timeout_s),
               "memory_mb": int(memory_mb), "require_seccomp": sys.platform.startswith("linux")}
    with _SERVER_LOCK:
        if _SERVER is None or _SERVER.proc.poll() is not None:
            _SERVER = _SandboxServer()
        line = _SERVER.request(payload, timeout_s + 30)  # the server enforces timeout_s itself
        if line is None:  # the server hung or died: never reuse it
            _stop_server()
            return [f"timed out after {timeout_s:g}s (the sandbox did not answer)"], None, float(timeout_s)
    try:
        answer = json.loads(line)
        seconds = float(answer.get("seconds", 0.0))
        if answer.get("reasons"):
            return [str(r) for r in answer["reasons"]], None, seconds
        graph = RewardGraph(answer["graph"], memory_mb=memory_mb)
        if graph.inputs != names:
            raise GraphError("the graph's inputs are not the state fields it was asked for")
        for n in (DRY_RUN_WORLDS, LARGE_WORLDS):  # shapes, memory and work at the dry run's N and a large one
            graph.at(shapes, dtypes, n)
    except (GraphError, ValueError, KeyError, TypeError, RecursionError) as err:
        return [f"the compiled reward was rejected: {err}"], None, 0.0
    graph.shapes, graph.dtypes = shapes, dtypes
    _COMPILED[key] = graph
    return [], graph, seconds


_COMPILED: dict = {}


def run_dry_run(source: str, filename: str, states, timeout_s: float, memory_mb: int):
    """Compile the program (sandboxed) and run its graph on `states` (dicts of arrays [N, ...]):
    (reasons, outputs as (total, terms) tensor pairs, seconds)."""
    reasons, graph, seconds = compile_program(source, filename, states, timeout_s, memory_mb)
    if reasons:
        return reasons, [], seconds
    reasons, outputs, _ = _run_graph(graph, states)
    return reasons, outputs, seconds


def _run_graph(graph: RewardGraph, states):
    """(reasons, outputs as (total, terms) tensor pairs, seconds per call of the graph alone). The graph
    runs here, so its outputs are checked as the tensors they are."""
    n = len(next(iter(states[0].values())))
    calls = 0.0
    try:
        graph.at(graph.shapes, graph.dtypes, n)
        forward = graph.bind("cpu")
        outputs = []
        for s in states:
            tensors = [torch.from_numpy(s["action" if k == ACTION_INPUT else k]) for k in graph.used_inputs]
            start = time.perf_counter()
            total, terms = forward(*tensors)
            calls += time.perf_counter() - start
            outputs.append((total, terms))
    except (GraphError, RuntimeError, ValueError, TypeError, IndexError) as err:
        return [f"the compiled reward failed on the recorded states: {type(err).__name__}: {err}"], [], 0.0
    return [], outputs, calls / max(1, len(states))


def _check_outputs(outputs: list, n: int) -> tuple[list[str], dict]:
    """Protocol checks on every dry-run output (total, terms): distinct reasons (first step each) and stats."""
    reasons: dict[str, str] = {}
    totals, terms_seen = [], {}
    for step, (total, terms) in enumerate(outputs):
        try:
            check_reward_output(total, terms, n, where="compute_reward")
        except ValueError as err:
            key = re.sub(r"[-+]?\d[\d.e+-]*", "#", str(err))
            reasons.setdefault(key, f"{err} (recorded state {step})")
            continue
        totals.append(total.double())
        for k, v in terms.items():
            terms_seen.setdefault(k, []).append(v.double())
    stats = {}
    if not reasons and totals:
        for k, vals in [("total", totals)] + list(terms_seen.items()):
            x = torch.cat(vals)
            stats[k] = {"mean": float(x.mean()), "std": float(x.std()) if x.numel() > 1 else 0.0,
                        "min": float(x.min()), "max": float(x.max())}
    return list(reasons.values()), stats


# -- checking ----------------------------------------------------------------------------------
def _check(name, filename, source, spec: TaskSpec, dry_run: bool, timeout_s, memory_mb, compile: bool = False):
    """(CheckResult, RewardGraph or None): every stage, never raising for a bad program.
    dry_run=False: static checks only, or (compile=True) static checks and the compiled graph."""
    fields = [f.name for f in spec.state_fields]
    problems = checker.static_check(source, fields, filename)
    stage = "parse" if problems and problems[0][1].startswith(("syntax error", "the program could not")) else "static"
    reasons = tuple(Reason(stage, msg, line) for line, msg in problems)
    if reasons or not (dry_run or compile):
        return CheckResult(name, spec.name, not reasons, reasons), None
    states = record_states(spec)
    errors, graph, seconds = compile_program(source, filename, states, timeout_s, memory_mb)
    if errors:
        return CheckResult(name, spec.name, False, tuple(Reason("compile", e) for e in errors), dry_run_s=seconds), None
    if not dry_run:
        return CheckResult(name, spec.name, True, (), dry_run_s=seconds), graph
    errors, outputs, per_call = _run_graph(graph, states)
    stats = {}
    if not errors:
        errors, stats = _check_outputs(outputs, DRY_RUN_WORLDS)
    reasons = tuple(Reason("dry-run", e) for e in errors)
    if reasons:
        return CheckResult(name, spec.name, False, reasons, {}, len(outputs), seconds), None
    large = graph.at(graph.shapes, graph.dtypes, LARGE_WORLDS)
    summary = {"ops": len(graph.kinds), "op_counts": dict(graph.op_counts().most_common()), "terms": graph.term_names,
               "dry_run_call_us": round(per_call * 1e6, 1), "worlds": LARGE_WORLDS,
               "bytes_per_call": large.bytes, "flops_per_call": large.flops}
    return CheckResult(name, spec.name, True, (), stats, len(outputs), seconds, summary), graph


def check_reward_program(path_or_source, spec, *, dry_run: bool = True, timeout_s: float = 10,
                         memory_mb: int = 2048, name: str | None = None) -> CheckResult:
    """Run every check on a program (file path or source text); never raises for a bad program."""
    name, filename, source = _read(path_or_source, name)
    return _check(name, filename, source, _spec(spec), dry_run, timeout_s, memory_mb)[0]


def load_reward_program(path_or_source, spec, *, timeout_s: float = 10, memory_mb: int = 2048,
                        name: str | None = None, dry_run: bool = True) -> "RewardProgram":
    """A Reward object for a program that passed the checks; RewardProgramError lists every
    reason otherwise. `memory_mb` bounds what the program may allocate: while it is traced (beyond
    the sandbox's own baseline) and per call of its graph at the training N. The program always
    compiles in the sandbox (a graph is needed to run at all); dry_run=False skips only the run of
    the graph on recorded states."""
    name, filename, source = _read(path_or_source, name)
    spec = _spec(spec)
    result, graph = _check(name, filename, source, spec, dry_run, timeout_s, memory_mb, compile=True)
    if not result.ok:
        raise RewardProgramError(result.reasons, result, name)
    return RewardProgram(name, source, filename, spec, graph, result)


# -- running in the training process: the graph only ------------------------------------------------
class RewardProgram:
    """A checked reward program as a Reward: ``(state, action) -> (total[N], terms)``, computed by
    its compiled graph (``robreward.rewards.graph``); the program's Python never runs here.

    At the first call with a new number of worlds N (or device) the graph is checked at N on meta
    tensors: outputs float [N], memory and work within the limits. Non-finite values and terms
    that do not sum to the total are the trainer's per-step check (every reward kind has it)."""

    def __init__(self, name: str, source: str, filename: str, spec: TaskSpec, graph: RewardGraph,
                 check: CheckResult | None = None):
        self.name = name
        self.source = source
        self.filename = filename
        self.spec = spec
        self.graph = graph
        self.check = check
        used = graph.used_inputs
        self._fields = [k for k in used if k != ACTION_INPUT]
        self._takes_action = ACTION_INPUT in used
        self._ready: dict = {}  # (device, N) -> forward

    def _prepare(self, action: torch.Tensor):
        key = (action.device, action.shape[0])
        try:
            self.graph.at(self.graph.shapes, self.graph.dtypes, action.shape[0])
        except GraphError as err:
            raise RewardProgramError([Reason("runtime", str(err))], None, self.name) from None
        self._ready[key] = self.graph.bind(action.device)
        return self._ready[key]

    def __call__(self, state: TaskState, action: torch.Tensor):
        forward = self._ready.get((action.device, action.shape[0])) or self._prepare(action)
        if self._takes_action:
            return forward(*[state[k] for k in self._fields], action)
        return forward(*[state[k] for k in self._fields])

    def __reduce__(self):  # plain data: the graph is checked again where it is unpickled
        return (_rebuild, (self.name, self.source, self.filename, self.spec.name, self.graph.data,
                           self.graph.memory_mb, self.graph.shapes, {k: str(v) for k, v in self.graph.dtypes.items()}))

    def __repr__(self) -> str:
        return f"RewardProgram({self.name!r}, task={self.spec.name!r}, ops={len(self.graph.kinds)})"


def _rebuild(name, source, filename, task, data, memory_mb, shapes, dtypes):
    graph = RewardGraph(data, memory_mb=memory_mb)
    graph.shapes = {k: tuple(v) for k, v in shapes.items()}
    graph.dtypes = {k: getattr(torch, v.removeprefix("torch.")) for k, v in dtypes.items()}
    return RewardProgram(name, source, filename, _spec(task), graph)


__all__ = ["CheckResult", "Reason", "RewardProgram", "RewardProgramError", "check_reward_program",
           "compile_program", "load_reward_program", "record_states", "run_dry_run"]
