"""The task contract: a frozen ``TaskSpec`` that every backend, reward and trainer reads.

A task never sees the simulator directly. A backend hands it the raw MjData fields it asked
for (``sim_fields``) as float64 torch tensors ``[N, ...]``; the task turns them into its
``TaskState`` fields, its observation, its hand reward terms, ``success`` and ``fitness``.
Because everything after the physics is torch, the same task runs on the CPU backend and on
the GPU (warp) backend unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

import mujoco
import numpy as np
import torch

Tensor = torch.Tensor
RawFields = Mapping[str, Tensor]
"""MjData fields of all N worlds as float64 tensors [N, ...] (qpos, qvel, xpos, ...)."""


@dataclasses.dataclass(frozen=True)
class StateField:
    """One documented TaskState field: what a reward program may read."""

    name: str
    shape: tuple[int, ...]  # per world; the tensor is [N, *shape]
    unit: str
    meaning: str


@dataclasses.dataclass(frozen=True)
class RewardTerm:
    """A named, weighted term of the hand-engineered reward: weight * fn(state, action)."""

    name: str
    weight: float
    fn: Callable[["TaskState", Tensor], Tensor]


@dataclasses.dataclass(frozen=True)
class ResetSample:
    """Initial conditions for n worlds drawn from a task's reset distribution."""

    qpos: np.ndarray  # [n, nq] float64
    qvel: np.ndarray  # [n, nv] float64
    mocap_pos: Optional[np.ndarray] = None  # [n, nmocap, 3]
    model_fields: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Per-world randomized model fields (MjModel name -> [n, ...]); written before the reset."""


class TaskState(Mapping[str, Tensor]):
    """Post-step state of all N worlds: named float32 tensors [N, ...], read-only.

    Fields are attributes (``state.x_velocity``) and mapping keys (``state["qpos"]``).
    Tensors handed out are marked read-only for reward code by cloning on ``readonly()``.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Tensor]):
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name: str) -> Tensor:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(
                f"TaskState has no field {name!r}; fields are: {', '.join(sorted(self._fields))}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("TaskState is read-only")

    def __getitem__(self, name: str) -> Tensor:
        return self._fields[name]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def num_envs(self) -> int:
        return next(iter(self._fields.values())).shape[0]

    def index(self, rows) -> "TaskState":
        """The state of a subset of worlds (rows: index tensor, slice or bool mask)."""
        return TaskState({k: v[rows] for k, v in self._fields.items()})

    def clone(self) -> "TaskState":
        return TaskState({k: v.clone() for k, v in self._fields.items()})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._fields.items())
        return f"TaskState({shapes})"


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything that defines a task. Frozen: a published task changes only by version."""

    name: str
    version: int
    description: str
    """One paragraph: the text a person or an LLM reads. Never mentions the hand reward."""
    build_model: Callable[[], mujoco.MjModel]
    frame_skip: int
    episode_length: int
    state_fields: tuple[StateField, ...]
    sim_fields: tuple[str, ...]
    """MjData fields the task reads besides qpos/qvel (e.g. "xpos", "cfrc_ext", "site_xpos")."""
    compute_state: Callable[[RawFields, Mapping[str, Tensor], "TaskContext"], dict[str, Tensor]]
    """(raw fields after the step, pre-step snapshot, context) -> task fields, float64 [N,...]."""
    observe: Callable[[TaskState], Tensor]
    obs_layout: tuple[tuple[str, int], ...]
    """(segment name, size) in observation order: documents the observation vector."""
    reward_terms: tuple[RewardTerm, ...]
    success: Callable[[TaskState], Tensor]
    fitness: Callable[[TaskState], Tensor]
    terminated: Callable[[TaskState], Tensor]
    sample_reset: Callable[[np.random.Generator, int, "TaskContext"], ResetSample]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    pre_step: Optional[Callable[[RawFields, "TaskContext"], dict[str, Tensor]]] = None
    """Snapshot of what the task needs from before the step (e.g. x position)."""
    action_to_ctrl: Optional[Callable[[Tensor, RawFields, "TaskContext"], Tensor]] = None
    """Maps the clipped action to MuJoCo ctrl; None means ctrl = action."""
    expert: Optional[Callable[[TaskState], Tensor]] = None
    """Scripted expert: TaskState -> action [N, act_dim] (batched, deterministic)."""
    success_threshold: Optional[float] = None
    """Locomotion: success means fitness >= this threshold."""
    fitness_over_episode_length: bool = False
    """True: an episode's fitness is its fitness sum divided by episode_length, not by the steps it
    ran, so an episode that terminates early counts its missing steps as 0 (a share of the whole
    nominal episode, e.g. humanoid-kneel-v2's "kneel on half of the 400 steps", where a fall ends
    the episode). False: the mean over the steps the episode ran."""
    gymnasium_twin: Optional[str] = None
    camera: Optional[str] = None
    """Default camera for rendering (a model camera name), or None for a tracking free camera."""
    notes: str = ""

    @property
    def fitness_horizon(self) -> Optional[int]:
        """The steps an episode's fitness sum is divided by when fixed (episode_length, with
        fitness_over_episode_length), else None: the steps the episode ran."""
        return self.episode_length if self.fitness_over_episode_length else None

    @property
    def act_dim(self) -> int:
        return len(self.action_low)

    @property
    def obs_dim(self) -> int:
        return sum(size for _, size in self.obs_layout)

    def describe(self) -> str:
        """The text shown by `robreward tasks show` (and to an LLM): no reward, no success code."""
        lines = [f"# {self.name} (v{self.version})", "", self.description.strip(), ""]
        lines.append(
            f"Control: {self.act_dim}-dim action in [{min(self.action_low):g}, "
            f"{max(self.action_high):g}], {self.frame_skip} physics steps per action, "
            f"episodes of {self.episode_length} steps."
        )
        lines += ["", "TaskState fields (float32 tensors [N, ...], post-step):"]
        for f in self.state_fields:
            shape = "[N" + "".join(f", {s}" for s in f.shape) + "]"
            lines.append(f"  {f.name:<22} {shape:<12} {f.unit:<10} {f.meaning}")
        lines += ["", f"Observation ({self.obs_dim} floats):"]
        start = 0
        for seg, size in self.obs_layout:
            lines.append(f"  [{start}:{start + size}] {seg}")
            start += size
        return "\n".join(lines)


@dataclasses.dataclass
class TaskContext:
    """Model constants a task's functions may need, prepared once per env."""

    model: mujoco.MjModel
    device: torch.device
    constants: dict = dataclasses.field(default_factory=dict)

    def tensor(self, value, dtype=torch.float64) -> Tensor:
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)


def common_state_fields(model: mujoco.MjModel, act_dim: int) -> tuple[StateField, ...]:
    """The fields every task has: qpos, qvel and the applied action."""
    return (
        StateField("qpos", (model.nq,), "m|rad", "generalized positions (MuJoCo qpos)"),
        StateField("qvel", (model.nv,), "m/s|rad/s", "generalized velocities (MuJoCo qvel)"),
        StateField("action", (act_dim,), "-", "the action applied this step, after clipping"),
    )


def check_fields(spec: TaskSpec, fields: Mapping[str, Tensor]) -> None:
    """Raise if a task's computed state does not match its documented fields."""
    documented = {f.name: f for f in spec.state_fields}
    missing = sorted(set(documented) - set(fields))
    extra = sorted(set(fields) - set(documented))
    if missing or extra:
        raise ValueError(
            f"task {spec.name!r}: state fields differ from the documented ones "
            f"(missing {missing}, undocumented {extra}); document every field in state_fields"
        )


__all__ = [
    "RawFields",
    "ResetSample",
    "RewardTerm",
    "StateField",
    "TaskContext",
    "TaskSpec",
    "TaskState",
    "check_fields",
    "common_state_fields",
]


