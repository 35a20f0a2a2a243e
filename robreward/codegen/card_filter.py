"""CARD's trajectory-preference test: a candidate reward must give successful demonstration
episodes a higher return than failed ones before it is worth an RL run.

    trajectory_preference_test(code, demos, spec=None, threshold=0.8) -> TrajectoryPreferenceResult

The demonstration episodes (a robreward demo dataset: expert demos with noise, or earlier
rollouts) are re-simulated from their initial full states and stored actions through the
task's own BatchedEnv, so the candidate sees exactly the TaskStates training would give it
(pre-step snapshots such as x_velocity, sensor readings from the step, the applied action); the
re-simulated qpos/qvel are compared with the stored ones and the largest difference is reported
(``replay_error``: 0 on the MuJoCo build the file was recorded with). The candidate is then
compiled in the reward sandbox after the static allow-list (robreward.rewards.program.run_dry_run:
its Python runs only in the locked-down child), and its checked graph of tensor ops is what runs
on those states here.

Score: over every (successful, failed) pair of episodes, the fraction where the successful one
has the higher return (sum of the candidate's total over the episode; a tie counts one half,
so a constant reward scores 0.5). It passes at ``threshold`` (default 0.8: CARD asks that the
reward ranks successes above failures; 0.8 leaves room for noisy labels, e.g. a failed episode
that came close, while any reward that ignores or inverts the task, scoring about 0.5 or
lower, fails). A failed test comes with a feedback sentence for the LLM.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from robreward.envs.spec import TaskSpec

DEFAULT_THRESHOLD = 0.8
"""Fraction of (success, failure) pairs a candidate must order correctly to pass."""
REPLAY_TOLERANCE = 1e-3
"""Re-simulated vs stored qpos/qvel beyond this: the demo states are not the recorded ones (warned)."""


class ReplayDivergenceWarning(UserWarning):
    """The re-simulated demo states differ from the stored ones (another MuJoCo build?)."""


@dataclasses.dataclass(frozen=True)
class DemoStates:
    """Re-simulated TaskStates of a dataset's episodes, grouped by episode length."""

    task: str
    path: str
    groups: tuple[tuple[tuple[int, ...], tuple[dict, ...]], ...]
    """(episode indices, per-step states {field: float32 array [len(indices), ...]}) per length."""
    success: Mapping[int, bool]
    replay_error: float

    @property
    def episodes(self) -> list[int]:
        return sorted(self.success)


@dataclasses.dataclass(frozen=True)
class TrajectoryPreferenceResult:
    """The record of one candidate's trajectory-preference test."""

    passed: bool
    fraction: float | None
    """Correctly ordered (successful, failed) pairs, ties as one half; None if the program failed."""
    threshold: float
    pairs: int
    successes: int
    failures: int
    returns: Mapping[int, float] = dataclasses.field(default_factory=dict)
    """Episode index -> return under the candidate."""
    term_returns: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    """Term -> (mean return over successful episodes, mean over failed ones)."""
    error: str | None = None
    """Why the program could not be scored (rejected statically, failed in the sandbox)."""
    feedback: str | None = None
    """For the LLM, when the test failed."""
    replay_error: float = 0.0
    dataset: str = ""

    def to_dict(self) -> dict:
        return {"passed": self.passed, "fraction": self.fraction, "threshold": self.threshold, "pairs": self.pairs,
                "successes": self.successes, "failures": self.failures,
                "returns": {str(k): v for k, v in self.returns.items()},
                "term_returns": {k: list(v) for k, v in self.term_returns.items()}, "error": self.error,
                "feedback": self.feedback, "replay_error": self.replay_error, "dataset": self.dataset}


# -- the demonstration states ----------------------------------------------------------------------------
_CACHE: dict = {}
_CACHE_SIZE = 4  # datasets whose states are kept


def demo_states(path, spec: TaskSpec | str | None = None, episodes=None, force: bool = False) -> DemoStates:
    """Re-simulate a dataset's episodes (all, or the listed indices) and keep every post-step
    TaskState; cached per file version, task and episode list (K candidates share one replay).
    Episodes of one length run as one batch of worlds and are held in memory (float32): meant
    for demo-sized datasets; pass `episodes` to use a subset of a large one."""
    from robreward.demos.format import DemoDataset

    from robreward.envs.registry import get_task

    path = Path(path)
    spec = None if spec is None else get_task(spec)
    stat = path.stat() if path.is_file() else None
    key = (str(path.resolve()), stat and (stat.st_mtime_ns, stat.st_size),
           None if spec is None else (spec.name, spec.version, id(spec)),
           None if episodes is None else tuple(int(i) for i in episodes), force)
    if key in _CACHE:
        return _CACHE[key]
    with DemoDataset(path, task=spec if spec is not None else "auto", force=force) as ds:
        idx = list(range(len(ds))) if episodes is None else [int(i) % len(ds) for i in episodes]
        for i in idx:
            ds._group(i)  # a clear error for an index out of range
        lengths, flags = ds.lengths(), ds.successes()
        by_length = defaultdict(list)
        for i in idx:
            by_length[int(lengths[i])].append(i)
        eps = {i: ds.episode(i, fields=("initial_state", "actions", "qpos", "qvel", "model_fields")) for i in idx}
        spec_ = ds.spec
    groups, worst = [], 0.0
    for length, members in sorted(by_length.items()):
        states, err = _resimulate(spec_, [eps[i] for i in members], length)
        groups.append((tuple(members), tuple(states)))
        worst = max(worst, err)
    if worst > REPLAY_TOLERANCE:
        warnings.warn(f"re-simulating {path} differs from its stored states by up to {worst:.3g} (another "
                      "MuJoCo build?): the trajectory-preference test scores the re-simulated episodes",
                      ReplayDivergenceWarning, stacklevel=2)
    result = DemoStates(spec_.name, str(path), tuple(groups), {i: bool(flags[i]) for i in idx}, worst)
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = result
    return result


def _resimulate(spec: TaskSpec, eps: list[dict], length: int) -> tuple[list[dict], float]:
    """Per-step TaskStates (numpy float32, [len(eps), ...]) of equal-length episodes replayed from
    their initial states and actions, and the largest qpos/qvel difference from the stored ones."""
    from robreward.demos.replay import _apply_initial
    from robreward.envs.batched import BatchedEnv

    n = len(eps)
    env = BatchedEnv(spec, num_envs=n, seed=0)
    env.reset(seed=0)
    ids = np.arange(n)
    _apply_initial(env, ids, np.stack([e["initial_state"] for e in eps]), [e.get("model_fields", {}) for e in eps])
    actions = np.stack([e["actions"] for e in eps], axis=1).astype(np.float32)  # [T, n, act_dim]
    stored_q = np.stack([e["qpos"][1:] for e in eps], axis=1).astype(np.float32)
    stored_v = np.stack([e["qvel"][1:] for e in eps], axis=1).astype(np.float32)
    states, worst = [], 0.0
    try:
        for t in range(length):
            _, _, _, _, info = env.step(torch.from_numpy(actions[t]))
            state = {k: v.detach().cpu().numpy().copy() for k, v in info["final_state"].items()}
            diff = max(np.abs(state["qpos"] - stored_q[t]).max(initial=0.0),
                       np.abs(state["qvel"] - stored_v[t]).max(initial=0.0))
            worst = max(worst, float(diff) if np.isfinite(diff) else float("inf"))
            states.append(state)
    finally:
        env.close()
    return states, worst


# -- the test ----------------------------------------------------------------------------------------------
def _scores(outputs: list, n: int) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """(protocol reasons, per-world returns [n], per-term returns) from the graph's (total, terms) outputs."""
    from robreward.rewards.program import _check_outputs

    reasons, _ = _check_outputs(outputs, n)
    if reasons:
        return reasons, np.zeros(n), {}
    returns, terms = np.zeros(n), {}
    for total, out_terms in outputs:
        returns += total.double().numpy()
        for k, v in out_terms.items():
            terms[k] = terms.get(k, np.zeros(n)) + v.double().numpy()
    return [], returns, terms


def _pair_fraction(success_returns: np.ndarray, failure_returns: np.ndarray) -> float:
    diff = success_returns[:, None] - failure_returns[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def _feedback(task: str, correct: float, pairs: int, fraction: float, threshold: float, s_mean: float,
              f_mean: float, term_returns: dict) -> str:
    parts = [f"Trajectory preference test failed: on demonstration episodes of {task}, your reward gave the "
             f"successful episode a higher return than the failed one in only {correct:g} of {pairs} "
             f"(successful, failed) pairs ({100 * fraction:.0f}%; at least {100 * threshold:.0f}% is required). "
             f"Mean return: successful episodes {s_mean:.4g}, failed episodes {f_mean:.4g}."]
    against = [f"'{k}' ({s:.4g} vs {f:.4g})" for k, (s, f) in term_returns.items() if s < f]
    if against:
        parts.append("Terms that pay failed episodes more than successful ones (mean return, successful vs failed): "
                     + ", ".join(against) + ".")
    parts.append("Rewrite the reward so that trajectories that solve the task earn more than those that do not.")
    return " ".join(parts)


def trajectory_preference_test(code: str, demos, spec: TaskSpec | str | None = None, *,
                               threshold: float = DEFAULT_THRESHOLD, timeout_s: float = 30.0, memory_mb: int = 2048,
                               episodes=None, force: bool = False) -> TrajectoryPreferenceResult:
    """Score one reward program (source, already pre-flighted) on a demo dataset (path or
    DemoStates). Raises ValueError for unusable input (no successes or no failures); a program
    that fails on the demo states gives a failed record with ``error`` and ``feedback``."""
    from robreward.rewards import checker
    from robreward.rewards.program import run_dry_run

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    data = demos if isinstance(demos, DemoStates) else demo_states(demos, spec, episodes, force)
    flags = np.array([data.success[i] for i in data.episodes])
    n_s, n_f = int(flags.sum()), int((~flags).sum())
    if n_s == 0 or n_f == 0:
        raise ValueError(f"demo dataset {data.path} has {n_s} successful and {n_f} failed episodes: the trajectory "
                         "preference test needs both (record with --noise, e.g. demos/push-noisy.h5, or use "
                         "earlier rollouts)")
    record = dict(threshold=float(threshold), pairs=n_s * n_f, successes=n_s, failures=n_f,
                  replay_error=data.replay_error, dataset=data.path)
    fields = sorted(data.groups[0][1][0]) if data.groups and data.groups[0][1] else []
    try:
        problems = checker.static_check(code, fields, "<candidate>")
    except Exception as err:  # noqa: BLE001  (a program that breaks the checker is rejected, never run)
        from robreward.codegen.extract import crash_reason

        problems = [(None, crash_reason(err, "the static checks"))]
    error = None
    if problems:  # never run code that did not pass the allow-list
        error = "rejected by the static checks: " + "; ".join(f"line {ln}: {m}" if ln else m for ln, m in problems)
    returns, term_sums = {}, defaultdict(dict)
    for members, states in data.groups if error is None else ():
        reasons, outputs, _ = run_dry_run(code, "<candidate>", list(states), timeout_s, memory_mb)
        if not reasons:
            reasons, group_returns, group_terms = _scores(outputs, len(members))
        if reasons:
            error = "; ".join(reasons)
            break
        for k, i in enumerate(members):
            returns[i] = float(group_returns[k])
            for name, values in group_terms.items():
                term_sums[name][i] = float(values[k])
    if error is not None:
        return TrajectoryPreferenceResult(False, None, **record, error=error,
                                          feedback=f"The reward failed on the demonstration states: {error}")
    succ = np.array([returns[i] for i in data.episodes if data.success[i]])
    fail = np.array([returns[i] for i in data.episodes if not data.success[i]])
    fraction = _pair_fraction(succ, fail)
    term_returns = {}
    for name, per_ep in term_sums.items():
        s = [v for i, v in per_ep.items() if data.success[i]]
        f = [v for i, v in per_ep.items() if not data.success[i]]
        term_returns[name] = (float(np.mean(s)) if s else 0.0, float(np.mean(f)) if f else 0.0)
    passed = fraction >= threshold
    feedback = None if passed else _feedback(data.task, fraction * n_s * n_f, n_s * n_f, fraction, threshold,
                                             float(succ.mean()), float(fail.mean()), term_returns)
    return TrajectoryPreferenceResult(passed, fraction, **record, returns=returns, term_returns=term_returns,
                                      feedback=feedback)


__all__ = ["DEFAULT_THRESHOLD", "DemoStates", "ReplayDivergenceWarning", "TrajectoryPreferenceResult", "demo_states",
           "trajectory_preference_test"]
