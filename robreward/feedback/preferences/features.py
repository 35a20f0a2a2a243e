"""The preference reward model's inputs: which TaskState fields (or the observation) and the action a reward
model reads per step (FeatureSpec), the presets that name them (obs-norms, obs-norms-z, offsets, kinematics,
observation, auto) and the Featurizer that computes them for a batch of transitions. model.py re-exports the
names it had before they moved here.

Features (``Featurizer``): by default the task's observation ``spec.observe(state)`` then the
action; or named TaskState fields (flattened, in the given order) then the action; ``|x|`` is the
norm of field x, ``x.xy`` and ``x.z`` the horizontal norm and the height of a 3-D position or velocity,
``observation[a:b]`` a slice of the observation, and the preset ``obs-norms`` stands for the observation's fields
with every vector read as its norm. On push at 200 oracle queries the loop's policy reached 0.94, 0.18 and 0.93 success
with that preset (seeds 0-2), where the raw observation reached 0.10, 0.00 and 0.36; fresh policies
trained on the preset's three learned rewards reached 0.99, 0.95 and 0.95 (benchmarks/prefs.py
--retrain), and with the feedback rounds spread over the first half of the steps (the last at
1.1M) and a fresh policy trained on the final reward for the 1.9M steps left (loop.py's
feedback_fraction 0.5 and final_policy restart: the same 3M PPO steps in all) the loop reached 0.92, 1.00, 0.97, 0.95 and 0.99 on seeds 0-4 (results in benchmarks/results/prefs.json).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

import numpy as np
import torch

from robreward.envs.spec import TaskSpec, TaskState
from robreward.feedback.progress.features import SPATIAL_UNITS, is_spatial

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


SPATIAL_PARTS = (".xy", ".z")
"""Feature name endings that read a 3-D position, offset or velocity field (shape (3,), unit m or m/s) as its
horizontal norm (``x.xy``) or its height (``x.z``; MuJoCo's z is up)."""


def read_as(field: str) -> tuple[str, str]:
    """(the TaskState field a feature name reads, how): ``|x|`` -> (x, "norm"), ``x.xy`` -> (x, "xy"), ``x.z`` ->
    (x, "z"), a plain name -> (name, "")."""
    if norm_field(field) != field:
        return norm_field(field), "norm"
    for end in SPATIAL_PARTS:
        if field.endswith(end) and len(field) > len(end):
            return field[:-len(end)], end[1:]
    return field, ""


OBSERVATION_NORMS = "obs-norms"
"""A feature preset: the TaskState fields the task's observation is made of, in its order, each vector
field read as its norm (a length, a distance, a speed), single values as they are."""


OBSERVATION_NORMS_Z = "obs-norms-z"
"""A feature preset: as obs-norms, except that a 3-D position, offset or velocity field (shape (3,), unit m or m/s)
is read as two numbers, its horizontal norm ``x.xy`` and its height ``x.z``: what gravity makes different (how
high the cube is, whether the gripper is above it) stays visible, where and which way on the table does not. The
progress models' preset of the same name (robreward/feedback/progress/features.py), for the preference model."""


OBSERVATION = "observation"
"""A feature preset: the task's observation as it is (alone, the same as no fields); beside named fields, the
observation in its place among them, e.g. ``observation,|action|``."""
OFFSETS = "offsets"
"""A feature preset: the norms of the observation's offset fields (named ``A_to_B``: how far one thing is from
another) and all of the task's single-value TaskState fields (an opening, a height, a flag), observed or not;
no absolute positions or velocities. Measured on push, lift and drawer-open (benchmarks/RESULTS.md), not a default."""


KINEMATICS = "kinematics"
"""A feature preset: the parts of the task's observation that are joint positions and velocities (those named
``qpos...`` and ``qvel...``: the locomotion tasks), as ``observation[a:b]`` slices, without the contact forces,
body inertias, body velocities and actuator forces some observations add (ant-run's 78 contact-force values,
mostly zero with rare spikes tens of stds out; humanoid's 303 of 348). On cheetah-run and hopper-hop the whole
observation."""


AUTO = "auto"
"""A feature preset, the default: ``obs-norms`` where the task's observation is made of TaskState fields (the arm
tasks), else the observation as it is (locomotion: joint angles and velocities, whose norms would lose the
direction of travel). Measured on the tuning tasks (benchmarks/RESULTS.md "Preference-based reward learning")."""


def _observation_fields(spec: TaskSpec) -> bool:
    shapes = {f.name for f in spec.state_fields}
    return all(name in shapes for name, _ in spec.obs_layout)


def _field_presets(spec: TaskSpec) -> dict[str, tuple[str, ...]]:
    """What ``obs-norms``, ``obs-norms-z`` and ``offsets`` stand for in `spec` (whose observation is made of TaskState
    fields)."""
    by_name = {f.name: f for f in spec.state_fields}
    parts = [name for name, _ in spec.obs_layout]
    unnamed = [name for name in parts if name not in by_name]
    if unnamed:
        raise ValueError(f"features {OBSERVATION_NORMS!r}, {OBSERVATION_NORMS_Z!r} and {OFFSETS!r}: the observation "
                         f"of task {spec.name!r} has parts that are not TaskState fields ({', '.join(unnamed)}); "
                         "name the fields to read instead")
    vectors = {name for name in parts if int(np.prod(by_name[name].shape, dtype=np.int64)) > 1}
    norms = tuple(f"|{name}|" if name in vectors else name for name in parts)
    heights = tuple(part for name in parts for part in
                    ((f"{name}.xy", f"{name}.z") if is_spatial(by_name[name]) else (f"|{name}|",) if name in vectors
                     else (name,)))
    offsets = tuple(f"|{name}|" for name in parts if name in vectors and "_to_" in name)
    scalars = tuple(f.name for f in spec.state_fields if tuple(f.shape) == ())
    return {OBSERVATION_NORMS: norms, OBSERVATION_NORMS_Z: heights, OFFSETS: offsets + scalars}


def observation_slice(feature: str) -> Optional[tuple[int, int]]:
    """``observation[a:b]`` -> (a, b); any other name -> None."""
    match = re.fullmatch(r"observation\[(\d+):(\d+)\]", feature)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _kinematic_slices(spec: TaskSpec) -> tuple[str, ...]:
    """The ``observation[a:b]`` slices of `spec`'s qpos/qvel observation parts (adjacent ones merged)."""
    slices: list[list[int]] = []
    start = 0
    for name, size in spec.obs_layout:
        if name.startswith(("qpos", "qvel")):
            if slices and slices[-1][1] == start:
                slices[-1][1] = start + int(size)
            else:
                slices.append([start, start + int(size)])
        start += int(size)
    if not slices:
        raise ValueError(f"features {KINEMATICS!r}: the observation of task {spec.name!r} has no joint positions or "
                         f"velocities (parts named qpos/qvel); use {OBSERVATION_NORMS!r} or name the fields")
    return tuple(f"observation[{a}:{b}]" for a, b in slices)


def expand_features(spec: TaskSpec, fields: Sequence[str]) -> tuple[str, ...]:
    """``fields`` with the presets replaced by the fields they stand for in `spec`: ``obs-norms``, ``obs-norms-z``,
    ``offsets``, ``kinematics`` (``observation`` where its slices are the whole observation), ``observation`` (alone
    ``()``: the observation) and ``auto`` (``obs-norms`` where the observation is made of TaskState fields, else the
    observation)."""
    if AUTO in fields and tuple(fields) != (AUTO,):
        raise ValueError(f"features {AUTO!r} stands alone (it chooses the whole feature set); got {list(fields)}")
    if tuple(fields) == (AUTO,):
        return expand_features(spec, (OBSERVATION_NORMS,)) if _observation_fields(spec) else ()
    if KINEMATICS in fields:
        kinematic = _kinematic_slices(spec)
        if kinematic == (f"observation[0:{spec.obs_dim}]",):
            kinematic = (OBSERVATION,)
        fields = tuple(name for field in fields for name in (kinematic if field == KINEMATICS else (field,)))
    if tuple(fields) == (OBSERVATION,):
        return ()
    if not {OBSERVATION_NORMS, OBSERVATION_NORMS_Z, OFFSETS} & set(fields):
        return tuple(fields)
    presets = _field_presets(spec)
    return tuple(name for field in fields for name in presets.get(field, (field,)))


class Featurizer:
    """(TaskState [N], action [N, act_dim]) -> features [N, dim] for a task."""

    def __init__(self, spec: TaskSpec, features: FeatureSpec = FeatureSpec()):
        self.spec = spec
        self.features = FeatureSpec(expand_features(spec, features.fields), bool(features.action))
        fields = {f.name: f for f in spec.state_fields}
        # each name parsed once: (the name, its observation slice or None, (the TaskState field, how it is read))
        self._plan = tuple((f, observation_slice(f), read_as(f)) for f in self.features.fields)
        self._reads_observation = any(f == OBSERVATION or cut for f, cut, _ in self._plan)
        bad = [f for f, cut, _ in self._plan if cut and not 0 <= cut[0] < cut[1] <= spec.obs_dim]
        if bad:
            raise ValueError(f"{bad}: observation[a:b] needs 0 <= a < b <= {spec.obs_dim} (the observation's size on "
                             f"task {spec.name!r})")
        named = [(f, name, how) for f, cut, (name, how) in self._plan if f != OBSERVATION and not cut]
        unknown = [f for f, name, _ in named if name not in fields]
        if unknown:
            raise ValueError(f"task {spec.name!r} has no TaskState field(s) {unknown}; "
                             f"fields are: {', '.join(sorted(fields))} (|name| for the norm of one, name.xy and "
                             "name.z for the horizontal norm and the height of a 3-D position or velocity)")
        scalars = [f for f, name, how in named if how == "norm" and len(fields[name].shape) == 0]
        if scalars:
            raise ValueError(f"{scalars}: |name| takes the norm of a vector field, these fields are scalars; "
                             "name them without bars")
        flat = [f for f, name, how in named if how in ("xy", "z") and not is_spatial(fields[name])]
        if flat:
            raise ValueError(f"{flat}: name.xy and name.z read a 3-D position, offset or velocity (a field of shape "
                             f"(3,) in {' or '.join(SPATIAL_UNITS)}); these fields are not one")
        if len(set(self.features.fields)) != len(self.features.fields):
            raise ValueError(f"feature fields repeat a name: {list(self.features.fields)}")
        if self.features.fields:
            base = sum(spec.obs_dim if f == OBSERVATION else cut[1] - cut[0] if cut else
                       int(np.prod(fields[name].shape, dtype=np.int64)) if how == "" else 1
                       for f, cut, (name, how) in self._plan)
        else:
            base = spec.obs_dim
        self.dim = base + (spec.act_dim if self.features.action else 0)
        if self.dim < 1:
            raise ValueError("the feature spec selects no features: give fields or keep the action")

    def __call__(self, state: TaskState, action: Tensor) -> Tensor:
        if self.features.fields:
            n = action.shape[0]
            obs = self.spec.observe(state) if self._reads_observation else None
            parts = [obs if f == OBSERVATION else obs[:, cut[0]:cut[1]] if cut else self._read(state, name, how, n)
                     for f, cut, (name, how) in self._plan]
        else:
            parts = [self.spec.observe(state)]
        if self.features.action:
            parts.append(action)
        return torch.cat([p.to(torch.float32) for p in parts], dim=-1)

    def to_dict(self) -> dict:
        return {"task": self.spec.name, "task_version": int(self.spec.version),
                "fields": list(self.features.fields), "action": self.features.action}

    @staticmethod
    def _read(state: TaskState, name: str, how: str, n: int) -> Tensor:
        """A TaskState field as a feature name reads it (read_as): as it is, its norm, horizontal norm or height."""
        value = state[name].reshape(n, -1)
        if how == "norm":
            return torch.linalg.norm(value.float(), dim=-1, keepdim=True)
        if how == "xy":
            return torch.linalg.norm(value[:, :2].float(), dim=-1, keepdim=True)
        if how == "z":
            return value[:, 2:3]
        return value
