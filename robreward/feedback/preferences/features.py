"""The preference reward model's inputs: which TaskState fields (or the observation) and the action a reward
model reads per step (FeatureSpec), the presets that name them (obs-norms, offsets, observation, auto) and the
Featurizer that computes them for a batch of transitions. model.py re-exports the names it had before they
moved here.

Features (``Featurizer``): by default the task's observation ``spec.observe(state)`` then the
action; or named TaskState fields (flattened, in the given order) then the action; ``|x|`` is the
norm of field x, and the preset ``obs-norms`` stands for the observation's fields with every vector
read as its norm. On push at 200 oracle queries the loop's policy reached 0.94, 0.18 and 0.93 success
with that preset (seeds 0-2), where the raw observation reached 0.10, 0.00 and 0.36; fresh policies
trained on the preset's three learned rewards reached 0.99, 0.95 and 0.95 (benchmarks/prefs.py
--retrain), and with the feedback rounds spread over the first half of the steps (the last at
1.1M) and a fresh policy trained on the final reward for the 1.9M steps left (loop.py's
feedback_fraction 0.5 and final_policy restart: the same 3M PPO steps in all) the loop reached 0.92, 1.00, 0.97, 0.95 and 0.99 on seeds 0-4 (results in benchmarks/results/prefs.json).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from robreward.envs.spec import TaskSpec, TaskState

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """What the reward model reads from a transition."""

    fields: tuple[str, ...] = ()
    """TaskState fields, flattened in this order; ``|name|`` reads the Euclidean norm of a vector field
    (one feature, e.g. a distance from an offset); empty: the task's observation (spec.observe)."""
    action: bool = True
    """Append the action."""


def norm_field(field: str) -> str:
    """The field a feature name reads: ``|x|`` (the norm of x) -> ``x``; a plain name -> itself."""
    return field[1:-1] if len(field) > 2 and field.startswith("|") and field.endswith("|") else field


OBSERVATION_NORMS = "obs-norms"
"""A feature preset: the TaskState fields the task's observation is made of, in its order, each vector
field read as its norm (a length, a distance, a speed), single values as they are."""


OBSERVATION = "observation"
"""A feature preset: the task's observation as it is (alone, the same as no fields); beside named fields, the
observation in its place among them, e.g. ``observation,|action|``."""
OFFSETS = "offsets"
"""A feature preset: the norms of the observation's offset fields (named ``A_to_B``: how far one thing is from
another) and all of the task's single-value TaskState fields (an opening, a height, a flag), observed or not;
no absolute positions or velocities. Measured on push, lift and drawer-open (benchmarks/RESULTS.md), not a default."""


AUTO = "auto"
"""A feature preset, the default: ``obs-norms`` where the task's observation is made of TaskState fields (the arm
tasks), else the observation as it is (locomotion: joint angles and velocities, whose norms would lose the
direction of travel). Measured on the tuning tasks (benchmarks/RESULTS.md "Preference-based reward learning")."""


def _observation_fields(spec: TaskSpec) -> bool:
    shapes = {f.name for f in spec.state_fields}
    return all(name in shapes for name, _ in spec.obs_layout)


def _field_presets(spec: TaskSpec) -> dict[str, tuple[str, ...]]:
    """What ``obs-norms`` and ``offsets`` stand for in `spec` (whose observation is made of TaskState fields)."""
    shapes = {f.name: f.shape for f in spec.state_fields}
    parts = [name for name, _ in spec.obs_layout]
    unnamed = [name for name in parts if name not in shapes]
    if unnamed:
        raise ValueError(f"features {OBSERVATION_NORMS!r} and {OFFSETS!r}: the observation of task {spec.name!r} has "
                         f"parts that are not TaskState fields ({', '.join(unnamed)}); name the fields to read instead")
    vectors = {name for name in parts if int(np.prod(shapes[name], dtype=np.int64)) > 1}
    norms = tuple(f"|{name}|" if name in vectors else name for name in parts)
    offsets = tuple(f"|{name}|" for name in parts if name in vectors and "_to_" in name)
    scalars = tuple(f.name for f in spec.state_fields if tuple(f.shape) == ())
    return {OBSERVATION_NORMS: norms, OFFSETS: offsets + scalars}


def expand_features(spec: TaskSpec, fields: Sequence[str]) -> tuple[str, ...]:
    """``fields`` with the presets replaced by the fields they stand for in `spec`: ``obs-norms``, ``offsets``,
    ``observation`` (alone ``()``: the observation) and ``auto`` (``obs-norms`` where the observation is made of
    TaskState fields, else the observation)."""
    if AUTO in fields and tuple(fields) != (AUTO,):
        raise ValueError(f"features {AUTO!r} stands alone (it chooses the whole feature set); got {list(fields)}")
    if tuple(fields) == (OBSERVATION,):
        return ()
    if tuple(fields) == (AUTO,):
        return expand_features(spec, (OBSERVATION_NORMS,)) if _observation_fields(spec) else ()
    if OBSERVATION_NORMS not in fields and OFFSETS not in fields:
        return tuple(fields)
    presets = _field_presets(spec)
    return tuple(name for field in fields for name in presets.get(field, (field,)))


class Featurizer:
    """(TaskState [N], action [N, act_dim]) -> features [N, dim] for a task."""

    def __init__(self, spec: TaskSpec, features: FeatureSpec = FeatureSpec()):
        self.spec = spec
        self.features = FeatureSpec(expand_features(spec, features.fields), bool(features.action))
        shapes = {f.name: f.shape for f in spec.state_fields}
        unknown = [f for f in self.features.fields if norm_field(f) not in shapes and f != OBSERVATION]
        if unknown:
            raise ValueError(f"task {spec.name!r} has no TaskState field(s) {unknown}; "
                             f"fields are: {', '.join(sorted(shapes))} (|name| for the norm of one)")
        scalars = [f for f in self.features.fields if f != norm_field(f) and len(shapes[norm_field(f)]) == 0]
        if scalars:
            raise ValueError(f"{scalars}: |name| takes the norm of a vector field, these fields are scalars; "
                             "name them without bars")
        if len(set(self.features.fields)) != len(self.features.fields):
            raise ValueError(f"feature fields repeat a name: {list(self.features.fields)}")
        if self.features.fields:
            base = sum(spec.obs_dim if f == OBSERVATION else 1 if f != norm_field(f) else
                       int(np.prod(shapes[f], dtype=np.int64)) for f in self.features.fields)
        else:
            base = spec.obs_dim
        self.dim = base + (spec.act_dim if self.features.action else 0)
        if self.dim < 1:
            raise ValueError("the feature spec selects no features: give fields or keep the action")

    def __call__(self, state: TaskState, action: Tensor) -> Tensor:
        if self.features.fields:
            n = action.shape[0]
            parts = [self.spec.observe(state) if f == OBSERVATION else
                     state[f].reshape(n, -1) if f == norm_field(f) else
                     torch.linalg.norm(state[norm_field(f)].reshape(n, -1).float(), dim=-1, keepdim=True)
                     for f in self.features.fields]
        else:
            parts = [self.spec.observe(state)]
        if self.features.action:
            parts.append(action)
        return torch.cat([p.to(torch.float32) for p in parts], dim=-1)

    def to_dict(self) -> dict:
        return {"task": self.spec.name, "task_version": int(self.spec.version),
                "fields": list(self.features.fields), "action": self.features.action}
