"""Reward programs: a file (or string) defining ``compute_reward(state, action) -> (total, terms)``,
written by a user or an LLM, checked before it ever runs in the training process.

    check_reward_program(path_or_source, spec) -> CheckResult          never raises for a bad program
    load_reward_program(path_or_source, spec)  -> RewardProgram        raises RewardProgramError

The checks, in order (a later stage runs only if the earlier ones passed):

1. ``static``: an AST allow-list (robreward/rewards/sandbox.py); every problem is reported.
2. ``dry-run``: the program runs in a separate Python process with a wall-clock timeout and a
   memory limit, on TaskStates recorded from a seeded rollout of the task (16 worlds x 32 steps
   of uniform random actions); each output must have shape [N], a float dtype, finite values
   and terms that sum to the total (``check_reward_output``), and the state must be unchanged.
3. ``runtime``: in training, ``RewardProgram.__call__`` reads every state tensor's autograd
   version counter before and after the call and raises if one changed (in-place writes bump
   it, including through views and ``.detach()``; ``.data``/``.numpy()``/storage access, which
   would bypass it, are rejected statically). That costs a few attribute reads per call,
   where cloning the state per call would copy every field. Non-finite totals are replaced by
   0 and counted in ``nan_count`` rather than crashing the run.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import pickle
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Mapping

import torch

from robreward.envs.spec import TaskSpec, TaskState
from robreward.rewards import sandbox
from robreward.rewards.base import check_reward_output

DRY_RUN_WORLDS = 16
DRY_RUN_STEPS = 32
STARTUP_TIMEOUT_S = 120.0  # importing torch in the child on a busy machine; not the program's time


@dataclasses.dataclass(frozen=True)
class Reason:
    """One reason a program was rejected: the stage that found it (parse, static, dry-run,
    runtime), the message, and the program line (0 when not tied to one)."""

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
                "dry_run_s": round(self.dry_run_s, 3)}

    def format(self) -> str:
        if not self.ok:
            lines = [f"REJECTED {self.name} for task {self.task}: {len(self.reasons)} reason(s)"]
            lines += [f"  - {r}".replace("\n", "\n    ") for r in self.reasons]
            return "\n".join(lines)
        lines = [f"OK {self.name} for task {self.task}: dry run on {self.num_states} recorded states "
                 f"in {self.dry_run_s:.2f}s", f"  {'term':<24} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}"]
        for k, s in self.stats.items():
            lines.append(f"  {k:<24} {s['mean']:>10.4g} {s['std']:>10.4g} {s['min']:>10.4g} {s['max']:>10.4g}")
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
    (one dict per step); cached per task and arguments."""
    key = (spec.name, spec.version, id(spec), num_envs, steps, seed)
    if key not in _RECORDED:
        from robreward.envs.batched import BatchedEnv

        env = BatchedEnv(spec, num_envs, seed=seed)
        env.reset(seed=seed)
        gen = torch.Generator().manual_seed(seed)
        states = []
        for _ in range(steps):
            u = torch.rand(num_envs, env.act_dim, generator=gen)
            _, _, _, _, info = env.step(env.action_low.cpu() + (env.action_high - env.action_low).cpu() * u)
            states.append({k: v.detach().cpu().numpy().copy() for k, v in info["final_state"].items()})
        env.close()
        _RECORDED[key] = states
    return _RECORDED[key]


# -- the dry run: a sandbox server process (sandbox._serve) forks one child per program ------------
class _SandboxServer:
    """`python -I sandbox.py`: started once, imports torch once, forks a child per dry run (so a
    dry run costs milliseconds, not an interpreter start). Restarted if it dies or hangs."""

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
        data = pickle.dumps(payload)
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


def run_dry_run(source: str, filename: str, states, timeout_s: float, memory_mb: int):
    """Run the program in a sandboxed child process on `states`: (reasons, outputs, seconds)."""
    global _SERVER
    payload = {"source": source, "filename": filename, "states": states, "timeout_s": float(timeout_s),
               "memory_mb": int(memory_mb)}
    with _SERVER_LOCK:
        if _SERVER is None or _SERVER.proc.poll() is not None:
            _SERVER = _SandboxServer()
        line = _SERVER.request(payload, timeout_s + 30)  # the server enforces timeout_s itself
        if line is None:  # the server hung or died: never reuse it
            _stop_server()
            return [f"timed out after {timeout_s:g}s (the sandbox did not answer)"], [], float(timeout_s)
    result = json.loads(line)
    return list(result["reasons"]), list(result["outputs"]), float(result.get("seconds", 0.0))


def _as_tensor(d: dict):
    """Rebuild a tensor the child described (JSON: dtype, shape, values), or a stand-in."""
    if d.get("kind") != "tensor":
        return _Other(d.get("kind", "?"))
    dtype = getattr(torch, d["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        return _Other(f"tensor of dtype {d['dtype']}")
    if "values" not in d:  # too large to send: only its shape and dtype matter
        return _Shaped(d["shape"], dtype)
    return torch.tensor(d["values"], dtype=torch.float64).reshape(d["shape"]).to(dtype)


class _Other:
    def __init__(self, kind):
        self.kind = kind


class _Shaped:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype


def _check_outputs(outputs: list, n: int) -> tuple[list[str], dict]:
    """Protocol checks on every dry-run output: distinct reasons (first step each) and stats."""
    reasons: dict[str, str] = {}
    totals, terms_seen = [], {}
    for step, out in enumerate(outputs):
        problem = out.get("error")
        if problem is None:
            total = _as_tensor(out["total"])
            if "terms" not in out:
                problem = f"terms must be a dict of name -> tensor [N], got {out.get('terms_kind')}"
            elif isinstance(total, _Other):
                problem = f"total must be a torch.Tensor of shape [N]={n}, got {total.kind}"
            elif isinstance(total, _Shaped):
                problem = f"total must have shape [N]=[{n}], got {list(total.shape)}"
            else:
                terms = {k: _as_tensor(v) for k, v in out["terms"].items()}
                bad = [k for k, v in terms.items() if not isinstance(v, torch.Tensor)]
                if bad:
                    v = terms[bad[0]]
                    got = list(v.shape) if isinstance(v, _Shaped) else v.kind
                    problem = f"term {bad[0]!r} must be a tensor of shape [{n}], got {got}"
                else:
                    try:
                        check_reward_output(total, terms, n, where="compute_reward")
                        totals.append(total.double())
                        for k, v in terms.items():
                            terms_seen.setdefault(k, []).append(v.double())
                    except ValueError as err:
                        problem = str(err)
        if problem is not None:
            key = re.sub(r"[-+]?\d[\d.e+-]*", "#", problem)
            reasons.setdefault(key, f"{problem} (recorded state {step})")
    stats = {}
    if not reasons and totals:
        for k, vals in [("total", totals)] + list(terms_seen.items()):
            x = torch.cat(vals)
            stats[k] = {"mean": float(x.mean()), "std": float(x.std()) if x.numel() > 1 else 0.0,
                        "min": float(x.min()), "max": float(x.max())}
    return list(reasons.values()), stats


# -- checking ----------------------------------------------------------------------------------
def _check(name, filename, source, spec: TaskSpec, dry_run: bool, timeout_s, memory_mb) -> CheckResult:
    fields = [f.name for f in spec.state_fields]
    problems = sandbox.static_check(source, fields, filename)
    stage = "parse" if problems and problems[0][1].startswith(("syntax error", "the program")) else "static"
    reasons = tuple(Reason(stage, msg, line) for line, msg in problems)
    if reasons or not dry_run:
        return CheckResult(name, spec.name, not reasons, reasons)
    states = record_states(spec)
    errors, outputs, seconds = run_dry_run(source, filename, states, timeout_s, memory_mb)
    stats = {}
    if not errors:
        errors, stats = _check_outputs(outputs, DRY_RUN_WORLDS)
    reasons = tuple(Reason("dry-run", e) for e in errors)
    return CheckResult(name, spec.name, not reasons, reasons, stats if not reasons else {}, len(outputs), seconds)


def check_reward_program(path_or_source, spec, *, dry_run: bool = True, timeout_s: float = 10,
                         memory_mb: int = 2048, name: str | None = None) -> CheckResult:
    """Run every check on a program (file path or source text); never raises for a bad program."""
    name, filename, source = _read(path_or_source, name)
    return _check(name, filename, source, _spec(spec), dry_run, timeout_s, memory_mb)


def load_reward_program(path_or_source, spec, *, dry_run: bool = True, timeout_s: float = 10,
                        memory_mb: int = 2048, name: str | None = None) -> "RewardProgram":
    """A Reward object for a program that passed the checks; RewardProgramError lists every
    reason otherwise. `memory_mb` is what the program may allocate in the dry run beyond the
    sandbox's own baseline (a fresh interpreter with torch imported)."""
    name, filename, source = _read(path_or_source, name)
    spec = _spec(spec)
    result = _check(name, filename, source, spec, dry_run, timeout_s, memory_mb)
    if not result.ok:
        raise RewardProgramError(result.reasons, result, name)
    return RewardProgram(name, source, filename, spec, result)


# -- running in the training process -----------------------------------------------------------
class RewardProgram:
    """A checked reward program as a Reward: ``(state, action) -> (total[N] float32, terms)``.

    Guards per call: the state must come back unmodified (version counters, see the module
    docstring); the output must be a pair (tensor [N], dict of tensors [N]); non-finite totals
    become 0 (in those worlds the terms too) and are counted in ``nan_count``."""

    def __init__(self, name: str, source: str, filename: str, spec: TaskSpec, check: CheckResult | None = None):
        self.name = name
        self.source = source
        self.filename = filename
        self.spec = spec
        self.check = check
        self._fn = sandbox.load_function(source, filename)
        self._nan = None  # a tensor on the env's device: no host sync per step

    @property
    def nan_count(self) -> int:
        """How many (world, step) totals were non-finite and replaced by 0."""
        return 0 if self._nan is None else int(self._nan)

    def _fail(self, message: str):
        raise RewardProgramError([Reason("runtime", message)], None, self.name)

    def __call__(self, state: TaskState, action: torch.Tensor):
        tensors = list(state.items()) + [("action", action)]
        before = [t._version for _, t in tensors]
        try:
            ret = self._fn(state, action)
        except Exception as err:  # noqa: BLE001 - a program's bug is reported as such
            self._fail("compute_reward raised an exception:\n" + sandbox.program_traceback(err, self.filename, self.source))
        changed = sorted({k for (k, t), v in zip(tensors, before) if t._version != v})
        if changed:
            self._fail(f"compute_reward modified the state in place (field(s) {', '.join(changed)})")
        n = action.shape[0]
        if not (isinstance(ret, (tuple, list)) and len(ret) == 2):
            self._fail(f"compute_reward must return a pair (total, terms), got {type(ret).__name__}")
        total, terms = ret
        if not isinstance(total, torch.Tensor) or tuple(total.shape) != (n,) or not total.is_floating_point():
            self._fail(f"total must be a float tensor of shape [{n}], got "
                       f"{(total.dtype, list(total.shape)) if isinstance(total, torch.Tensor) else type(total).__name__}")
        if not isinstance(terms, Mapping) or any(
                not isinstance(v, torch.Tensor) or tuple(v.shape) != (n,) for v in terms.values()):
            self._fail(f"terms must be a dict of tensors of shape [{n}]")
        total = total.to(torch.float32)
        finite = torch.isfinite(total)
        count = (~finite).sum()
        self._nan = count if self._nan is None else self._nan + count
        total = torch.where(finite, total, 0.0)
        terms = {k: torch.where(finite, v.to(torch.float32), 0.0) for k, v in terms.items()}
        return total, terms

    def __repr__(self) -> str:
        return f"RewardProgram({self.name!r}, task={self.spec.name!r})"


__all__ = ["CheckResult", "Reason", "RewardProgram", "RewardProgramError", "check_reward_program",
           "load_reward_program", "record_states", "run_dry_run"]
