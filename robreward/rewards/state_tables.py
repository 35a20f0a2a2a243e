"""Rewards that read more than a TaskState, made comparable on sampled transitions.

A reward distance (robreward.rewards.distance) evaluates each reward on the sampled transitions of a
Coverage. A Reward-protocol reward ``r(state, action)`` is evaluated on the sampled TaskStates. Some
rewards cannot be: a CLIP reward (``clip:``) and an image progress model render the env's worlds and
score the frames, and progress shaping (``progress:``) keeps Φ of each world's previous state. On a
coverage these are known through per-state tables over the coverage's M states:

    R(s, a, s') = value[s'] + value_of(s', a) + next_potential[s'] - potential[s]

(``value``: the reward of arriving in a state; ``value_of``: a function of state indices and actions,
for a reward that also reads the action, e.g. an image preference model on frames and state features,
which caches its frame encodings per state; ``potential``: Φ(s); ``next_potential``: γ Φ(s') with Φ = 0
at a terminal state). Frames come from the coverage's recorded MuJoCo states
(``Coverage.sim_states``, ``collect_transitions(..., record_sim_states=True)``), rendered in chunks by the
renderer robreward.feedback.vision registers (robreward.rewards.spec.frame_renderer).

How a reward gives its tables, checked in this order:

- ``reward.state_tables(states: TaskState [M], frames: CoverageFrames) -> StateTables``: any reward
  may define it (robreward.feedback.progress.ProgressShaping does);
- a frame-scoring reward: ``reward.score_frames(uint8 [n, H, W, 3]) -> [n]`` with ``reward.size``
  (W, H), ``reward.camera`` and ``reward.weight``: value = weight * score_frames(frames of s')
  (robreward.feedback.vision.clip.ClipReward, scored on every step whatever its ``every=k``: the reward it
  stands for, not its held-between-renders approximation);
- an episode-level reward (``reward.episode_level`` true, or RoboCLIP's ``episode_similarity``): paid
  once per episode from all of its frames, it is not a function of one transition; EpisodeLevelReward
  (a ValueError) says so and distances report it undefined.

A sum (rewards.base.SumReward) mixes tabled parts and plain Reward-protocol parts. A package whose reward
class gives no ``state_tables`` itself can register a view that does (``register_tables_adapter``; the
preference package does for its image models), as rewards.spec registers reward sources.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Optional

import torch

Tensor = torch.Tensor
RENDER_CHUNK = 512  # coverage states rendered per renderer call

EPISODE_LEVEL_REASON = ("an episode-level reward (paid at an episode's last step from all of its frames, as RoboCLIP's) "
                        "is not a function of one transition (s, a, s'): EPIC and STARC compare Markov rewards on "
                        "sampled transitions")


class EpisodeLevelReward(ValueError):
    """A reward of whole episodes: no distance on transitions is defined for it."""


@dataclasses.dataclass(frozen=True)
class StateTables:
    """A reward on a coverage's M states: R(s, a, s') = value[s'] + value_of(s', a) + next_potential[s'] -
    potential[s] (tables [M] or None for 0; ``value_of(state_rows [B] long, actions [B, act_dim]) -> [B]``)."""

    value: Optional[Tensor] = None
    potential: Optional[Tensor] = None
    next_potential: Optional[Tensor] = None
    value_of: Optional[Callable[[Tensor, Tensor], Tensor]] = None

    def __post_init__(self):
        if (self.potential is None) != (self.next_potential is None):
            raise ValueError("StateTables: give potential and next_potential together (Φ(s) and γ Φ(s'))")


class CoverageFrames:
    """The frames of a coverage's M states: ``chunks(size=(W, H), camera)`` yields (rows, uint8 [n, H, W, 3])
    in order, rendered ``RENDER_CHUNK`` at a time from the recorded MuJoCo states; ``rendered`` and
    ``seconds`` count the cost."""

    def __init__(self, spec, sim_states: Optional[Tensor], renderer=None):
        self.spec, self.sim_states, self.renderer = spec, sim_states, renderer
        self.rendered, self.seconds = 0, 0.0

    def chunks(self, size, camera=None, chunk: int = RENDER_CHUNK):
        if self.sim_states is None:
            raise ValueError("this reward scores rendered frames, and the coverage holds no MuJoCo states to render: "
                             "collect it with collect_transitions(env, steps, record_sim_states=True)")
        if self.renderer is None:
            from robreward.rewards.spec import frame_renderer

            self.renderer = frame_renderer()
        total = int(self.sim_states.shape[0])
        for lo in range(0, total, chunk):
            rows = torch.arange(lo, min(total, lo + chunk))
            start = time.perf_counter()
            frames = self.renderer(self.spec, self.sim_states[lo:lo + chunk], size=tuple(size), camera=camera)
            self.seconds += time.perf_counter() - start
            self.rendered += len(rows)
            yield rows, frames


_ADAPTERS: list = []  # (reward class, adapter(reward) -> an object with state_tables)


def register_tables_adapter(reward_class: type, adapter: Callable) -> None:
    """Rewards of ``reward_class`` (that define no ``state_tables``) are tabled through ``adapter(reward)``, an
    object with ``state_tables(states, frames)`` (and ``uses_image``); registered by the providing package."""
    _ADAPTERS.append((reward_class, adapter))


def _adapted(reward):
    if not callable(getattr(reward, "state_tables", None)):
        for cls, adapter in _ADAPTERS:
            if isinstance(reward, cls):
                return adapter(reward)
    return reward


def is_episode_level(reward) -> bool:
    return bool(getattr(reward, "episode_level", False)) or callable(getattr(reward, "episode_similarity", None))


def _tabled_itself(reward) -> bool:
    reward = _adapted(reward)
    return (callable(getattr(reward, "state_tables", None)) or callable(getattr(reward, "score_frames", None))
            or is_episode_level(reward))


def needs_tables(reward) -> bool:
    """Whether ``reward`` (or a part of a sum) is known on a coverage only through StateTables."""
    return _tabled_itself(reward) or any(needs_tables(p) for p in getattr(reward, "parts", None) or ())


def needs_frames(reward) -> bool:
    """Whether tabling ``reward`` may render frames (frame-scoring, or a state_tables that reads frames)."""
    reward = _adapted(reward)
    if callable(getattr(reward, "score_frames", None)):
        return True
    if callable(getattr(reward, "state_tables", None)):
        return bool(getattr(reward, "uses_image", True))
    return any(needs_frames(p) for p in getattr(reward, "parts", None) or ())


@torch.no_grad()
def tables_of(reward, states, frames: CoverageFrames) -> StateTables:
    """The StateTables of one reward that is tabled itself (the module docstring's order)."""
    reward = _adapted(reward)
    name = getattr(reward, "name", type(reward).__name__)
    if is_episode_level(reward):
        raise EpisodeLevelReward(f"{name}: {EPISODE_LEVEL_REASON}")
    if callable(getattr(reward, "state_tables", None)):
        return reward.state_tables(states, frames)
    size, camera = getattr(reward, "size", None), getattr(reward, "camera", None)
    if size is None:
        raise ValueError(f"{name} scores frames (score_frames) but gives no size (W, H) to render them at")
    values = torch.empty(frames.sim_states.shape[0] if frames.sim_states is not None else 0, dtype=torch.float64)
    for rows, chunk in frames.chunks(size, camera):
        values[rows] = reward.score_frames(chunk).detach().double().cpu()
    return StateTables(value=float(getattr(reward, "weight", 1.0)) * values)


def _add(a: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
    if b is None:
        return a
    b = b.detach().double().cpu().flatten()
    return b if a is None else a + b


class TabledReward:
    """A reward bound to one coverage: tables summed over its tabled parts, plus its plain Reward-protocol
    parts (evaluated on the coverage's TaskStates). robreward.rewards.distance evaluates it by index."""

    def __init__(self, name: str, tables: StateTables, plain: list, states, value_of: Optional[list] = None):
        self.name, self.tables, self.plain, self.states = name, tables, plain, states
        self.value_of = value_of or []  # each tabled part's value_of, if it has one

    @property
    def state_only(self) -> bool:
        """No potential: R reads only (s', a), as a Reward-protocol reward (EPIC's exact path applies)."""
        return self.tables.potential is None

    def on_indices(self, prev: Tensor, nxt: Tensor, action: Tensor) -> Tensor:
        """R [B] float64 (CPU) of transitions (states[prev], action, states[nxt])."""
        prev_c, nxt_c = prev.cpu(), nxt.cpu()
        out = torch.zeros(len(nxt_c), dtype=torch.float64)
        t = self.tables
        if t.value is not None:
            out += t.value[nxt_c]
        if t.potential is not None and t.next_potential is not None:
            out += t.next_potential[nxt_c] - t.potential[prev_c]
        for fn in self.value_of:
            out += fn(nxt, action).detach().double().cpu().reshape(-1)
        if self.plain:
            state = self.states.index(nxt)
            for part in self.plain:
                value = part(state, action)
                value = value[0] if isinstance(value, tuple) else value
                out += value.detach().double().cpu()
        return out


def bind_to_coverage(reward, coverage, spec=None):
    """``reward`` itself when it reads only TaskStates, else a TabledReward on ``coverage`` (frames rendered
    from ``coverage.sim_states`` where a part scores them). EpisodeLevelReward for an episode-level reward."""
    if not needs_tables(reward):
        return reward
    start = time.perf_counter()
    frames = CoverageFrames(spec if spec is not None else getattr(reward, "spec", None), coverage.sim_states)
    value = potential = next_potential = None
    plain, value_of = [], []
    for part in _flatten(reward):
        if not _tabled_itself(part):
            plain.append(part)
            continue
        tables = tables_of(part, coverage.states, frames)
        value = _add(value, tables.value)
        potential = _add(potential, tables.potential)
        next_potential = _add(next_potential, tables.next_potential)
        if tables.value_of is not None:
            value_of.append(tables.value_of)
    for what, table in (("value", value), ("potential", potential), ("next_potential", next_potential)):
        if table is not None and (table.shape[0] != coverage.actions.shape[0] or not bool(torch.isfinite(table).all())):
            raise ValueError(f"{getattr(reward, 'name', reward)!r}: its {what} table must be finite, one value per "
                             f"coverage state ({coverage.actions.shape[0]}), got {list(table.shape)}")
    bound = TabledReward(str(getattr(reward, "name", "tabled")), StateTables(value, potential, next_potential), plain,
                         coverage.states, value_of)
    # the cost, for the notes of a comparison: rendering alone, and rendering plus scoring
    bound.render_seconds, bound.frames_rendered = frames.seconds, frames.rendered  # type: ignore[attr-defined]
    bound.seconds = time.perf_counter() - start  # type: ignore[attr-defined]
    return bound


def _flatten(reward) -> list:
    parts = getattr(reward, "parts", None)
    if parts and not _tabled_itself(reward):
        return [leaf for part in parts for leaf in _flatten(part)]
    return [reward]


def frames_cost(bound) -> str:
    """'2,048 frames rendered and scored in 9.1 s (225 frames/s; rendering 2.5 s)' of a bind_to_coverage
    result, for the notes of a comparison; "" when it rendered nothing."""
    frames, seconds = getattr(bound, "frames_rendered", 0), getattr(bound, "seconds", 0.0)
    if not frames:
        return ""
    rate = f"{frames / seconds:.0f} frames/s; " if seconds > 0 and math.isfinite(seconds) else ""
    return f"{frames:,} frames rendered and scored in {seconds:.1f} s ({rate}rendering {bound.render_seconds:.1f} s)"


__all__ = ["CoverageFrames", "EPISODE_LEVEL_REASON", "EpisodeLevelReward", "StateTables", "TabledReward",
           "bind_to_coverage", "frames_cost", "is_episode_level", "needs_frames", "needs_tables", "register_tables_adapter",
           "tables_of"]
