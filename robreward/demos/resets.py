"""Demo-state resets: start a share of training episodes from states of successful demonstrations.

    spec = with_demo_resets(get_task("lift"), "demos/lift-expert.h5", fraction=0.25)
    env = robreward.make(spec, 64)      # a quarter of its resets start at a demo state

Exploration with demonstrations (Nair et al. 2018, "Overcoming Exploration in Reinforcement Learning with
Demonstrations"; Salimans & Chen 2018): each reset world starts, with probability ``fraction``, from the
positions and velocities of a state drawn uniformly from the demos' steps up to and including each successful
episode's first success, so the policy sees the late stages of the task (a grasped cube being lifted) long before
its own episodes reach them. The other resets, and every evaluation (which builds its env from the task's name),
start from the task's own reset distribution. What a demo state does not hold (mocap targets, randomized model
fields) comes from the task's own reset of that world. The draw uses the env's reset RNG, so a seed gives the same
resets every time.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from robreward.demos.format import DemoDataset
from robreward.envs.spec import ResetSample, TaskSpec

__all__ = ["check_demo_files", "demo_states", "with_demo_resets"]


def demo_states(path, spec: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """(qpos [M, nq], qvel [M, nv]) of every step of ``path``'s successful episodes up to and including their
    first successful step. ValueError (DemoFileError) for a dataset of another task or model, or without a
    success."""
    qpos, qvel = [], []
    with DemoDataset(path, task=spec) as ds:
        for i in range(len(ds)):
            ep = ds.episode(i, fields=("qpos", "qvel", "success"))
            hits = np.flatnonzero(ep["success"])
            if not len(hits):
                continue
            last = int(hits[0]) + 1  # qpos row t is the state after step t - 1; row hits[0] + 1 is the success
            qpos.append(ep["qpos"][:last + 1])
            qvel.append(ep["qvel"][:last + 1])
    if not qpos:
        raise ValueError(f"{path}: no episode succeeds, so there is no demo state to start from; record demos "
                         f"that succeed (robreward demos record --task {spec.name} --source expert)")
    return np.concatenate(qpos), np.concatenate(qvel)


def check_demo_files(spec: TaskSpec, init_from_demos=None, reset_from_demos=None) -> None:
    """Read a run's warm-start dataset (behaviour cloning's pairs) and demo-start dataset (the reset states) as its
    trainer will, so that another task's file, an empty one or one without a success fails before the run writes
    anything (robreward train, before --overwrite; the preference loop, before its run directory)."""
    if init_from_demos:
        from robreward.demos.bc import load_pairs

        load_pairs(init_from_demos, task=spec)
    if reset_from_demos:
        demo_states(reset_from_demos, spec)


def with_demo_resets(spec: TaskSpec, path, fraction: float = 0.25) -> TaskSpec:
    """``spec`` whose resets start at a state of ``path``'s successful demos with probability ``fraction``
    (module docstring); the same task otherwise."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"demo_reset_fraction must be in (0, 1], got {fraction}")
    qpos, qvel = demo_states(path, spec)
    return dataclasses.replace(spec, sample_reset=_DemoResets(spec.sample_reset, qpos, qvel, float(fraction)))


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a TaskSpec holding it stays hashable
class _DemoResets:
    """The task's sample_reset with a share of its draws replaced by demo states."""

    own: Callable[[np.random.Generator, int, object], ResetSample]
    qpos: np.ndarray
    qvel: np.ndarray
    fraction: float

    def __call__(self, rng: np.random.Generator, n: int, ctx) -> ResetSample:
        sample = self.own(rng, n, ctx)
        pick = rng.random(n) < self.fraction
        rows = rng.integers(0, len(self.qpos), size=n)[pick]
        qpos, qvel = np.array(sample.qpos, dtype=np.float64), np.array(sample.qvel, dtype=np.float64)
        qpos[pick], qvel[pick] = self.qpos[rows], self.qvel[rows]
        return dataclasses.replace(sample, qpos=qpos, qvel=qvel)
