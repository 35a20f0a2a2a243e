"""Reward specs: the one parser of the strings `--reward` (and a run's config) take, and the registry of
reward sources that live outside robreward.rewards.

    hand                the task's hand-engineered reward
    sparse              the task's fitness as the only reward
    FILE.py             a reward program (compute_reward(state, action) -> (total, terms))
    KIND:ARG            a registered reward source, e.g. pref:RUN (a `robreward prefs train` run)
    A+B                 the sum of several of the above, e.g. hand+progress:RUN

``parse_reward_spec(text) -> RewardSpec(kind, arg, parts)`` checks the form and the kind; it never
loads anything. ``rewards.base.resolve_reward`` builds the Reward from a parsed spec.

*Registration.* robreward.rewards sits below every package that learns a reward (feedback, vision, ...)
and never imports them. A package that provides a reward source registers it:

- at import, with ``register_reward_source(RewardSource(kind="pref", ...))``; and
- in its distribution's metadata, under the entry-point group ``robreward.reward_sources``
  (``pref = "robreward.feedback.preferences:PREFERENCE_REWARD"`` in pyproject.toml), so a spec naming
  the kind finds its provider without the caller importing it first (the entry point is loaded, which
  imports the providing package, only when that kind is used).

A third-party package registers its sources the same way, under its own kind names.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any, Callable, Optional

WORDS = ("hand", "sparse")
ENTRY_POINT_GROUP = "robreward.reward_sources"
_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class RewardSource:
    """A reward kind provided from outside robreward.rewards (``KIND:ARG`` in a reward spec)."""

    kind: str
    """The prefix before the colon, e.g. "pref"."""
    form: str
    """How the spec is written, e.g. "pref:RUN"."""
    help: str
    """One line saying what ARG is, for error messages and --help."""
    load: Callable[[str, Any], Any]
    """(arg, TaskSpec) -> Reward."""
    normalize: Optional[Callable[[str], str]] = None
    """arg -> the arg to store in a run's config (e.g. a path made absolute); raises ValueError on a bad arg."""


@dataclasses.dataclass(frozen=True)
class RewardSpec:
    """A parsed reward spec. kind: "hand", "sparse", "file", a registered KIND, or "sum" (then ``parts``)."""

    kind: str
    arg: str = ""
    parts: tuple["RewardSpec", ...] = ()

    def __str__(self) -> str:
        if self.kind == "sum":
            return "+".join(str(part) for part in self.parts)
        if self.kind in WORDS:
            return self.kind
        if self.kind == "file":
            return self.arg
        return f"{self.kind}:{self.arg}"


_SOURCES: dict[str, RewardSource] = {}


def register_reward_source(source: RewardSource) -> None:
    """Make ``KIND:ARG`` specs of ``source.kind`` resolvable (the providing package calls this on import)."""
    if not _KIND.match(source.kind) or source.kind in WORDS or source.kind in ("file", "sum"):
        raise ValueError(f"reward source kind {source.kind!r} is not allowed: lower-case letters, digits, - and _, "
                         f"and not one of {', '.join(WORDS)}, file, sum")
    _SOURCES[source.kind] = source


def _entry_points():
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def reward_source(kind: str) -> RewardSource | None:
    """The registered source of ``kind``, loading its provider through its entry point if needed."""
    if kind not in _SOURCES:
        entry = _entry_points().get(kind)
        if entry is None:
            return None
        source = entry.load()  # imports the providing package, which registers it
        _SOURCES.setdefault(kind, source)
    return _SOURCES[kind]


def reward_kinds() -> list[str]:
    """Every KIND a spec may name: registered ones and those the installed packages declare."""
    return sorted(set(_SOURCES) | set(_entry_points()))


def valid_forms() -> str:
    """The valid reward-spec forms, for error messages."""
    forms = ["hand", "sparse", "FILE.py (a reward program defining compute_reward(state, action))"]
    for kind in reward_kinds():
        try:  # an error path: loading the provider is worth its help line
            source = reward_source(kind)
        except Exception:  # noqa: BLE001  (a broken provider must not hide the message being built)
            source = None
        forms.append(f"{source.form} ({source.help})" if source else f"{kind}:ARG")
    return ", ".join(forms) + ", or a sum of them joined by + (e.g. hand+KIND:ARG)"


def _parse_one(text: str) -> RewardSpec | None:
    if text in WORDS:
        return RewardSpec(text)
    if text.endswith(".py"):
        return RewardSpec("file", text)
    kind, sep, arg = text.partition(":")
    if sep and _KIND.match(kind) and kind in reward_kinds():
        if not arg:
            source = _SOURCES.get(kind)
            raise ValueError(f"reward {text!r} names no {kind} argument: write {source.form if source else kind + ':ARG'}")
        return RewardSpec(kind, arg)
    return None


def parse_reward_spec(text: str) -> RewardSpec:
    """Parse a reward spec (see the module docstring); ValueError listing the valid forms otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty reward spec {text!r}: use one of {valid_forms()}")
    text = text.strip()
    single = _parse_one(text)
    if single is not None:
        return single
    if "+" in text:
        pieces = [part.strip() for part in text.split("+")]
        parts = [_parse_one(piece) for piece in pieces]
        if all(parts) and len(parts) > 1:
            return RewardSpec("sum", parts=tuple(p for p in parts if p is not None))
        k = next(i for i, p in enumerate(parts) if p is None)
        before = parts[k - 1] if k > 0 else None
        if before is not None and before.arg:  # a path with a '+' in it was cut there
            raise ValueError(f"{pieces[k]!r} in reward {text!r} is not a reward: + joins rewards, so the argument "
                             f"{pieces[k - 1]!r} ends where a '+' was; rename a file or folder whose path holds a "
                             f"'+' (reward terms: {valid_forms()})")
        if pieces[k]:
            raise ValueError(f"{pieces[k]!r} in reward {text!r} is not a reward: use one of {valid_forms()}")
    kind, sep, _ = text.partition(":")
    if sep and _KIND.match(kind):
        raise ValueError(f"unknown reward kind {kind!r} in {text!r}: use one of {valid_forms()}")
    close = difflib.get_close_matches(text, list(WORDS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown reward {text!r}{hint}: use one of {valid_forms()}")


def normalize_reward_spec(text: str) -> str:
    """The spec as a run's config stores it: files and source arguments made absolute where the source
    says so, so a resumed run finds them. Raises FileNotFoundError/ValueError on a missing file or bad arg."""
    from pathlib import Path

    spec = parse_reward_spec(text)
    parts = spec.parts if spec.kind == "sum" else (spec,)
    out = []
    for part in parts:
        if part.kind == "file":
            path = Path(part.arg)
            if not path.is_file():
                raise FileNotFoundError(f"reward file {part.arg!r} not found: pass an existing .py file defining "
                                        f"compute_reward(state, action), or one of: {valid_forms()}")
            out.append(str(path.resolve()))
        elif part.kind in WORDS:
            out.append(part.kind)
        else:
            source = reward_source(part.kind)
            arg = source.normalize(part.arg) if source is not None and source.normalize else part.arg
            out.append(f"{part.kind}:{arg}")
    return "+".join(out)




# -- what the dry run of a reward program simulates ------------------------------------------------
# A reward program is dry-run on the states of a seeded rollout of its task (rewards/program.py). Making
# that rollout takes an env, which sits above robreward.rewards: robreward.envs registers its recorder
# here when it is imported (robreward/envs/recording.py), so rewards never import envs.
_STATE_RECORDER: Optional[Callable[..., list]] = None


def set_state_recorder(recorder: Callable[..., list]) -> None:
    """``recorder(spec, num_envs, steps, seed) -> [dict of numpy arrays [N, ...], one per step]``."""
    global _STATE_RECORDER
    _STATE_RECORDER = recorder


def state_recorder() -> Callable[..., list]:
    if _STATE_RECORDER is None:
        raise RuntimeError("no state recorder registered: import robreward.envs (it registers the seeded rollout "
                           "a reward program's dry run uses)")
    return _STATE_RECORDER


# -- what renders the frames of recorded states -------------------------------------------------------
# A reward that reads rendered frames (clip:, an image progress model) is compared with others on sampled
# transitions (robreward.rewards.distance) by scoring frames of the sampled states. Rendering sits above
# robreward.rewards (robreward.feedback.vision.frames.render_states): that package registers it here when it
# is imported (an image reward's provider imports it), so rewards and eval never import feedback.
_FRAME_RENDERER: Optional[Callable[..., Any]] = None


def set_frame_renderer(renderer: Callable[..., Any]) -> None:
    """``renderer(spec, sim_states [n, nstate] float64, size=(W, H), camera=None) -> uint8 [n, H, W, 3]``."""
    global _FRAME_RENDERER
    _FRAME_RENDERER = renderer


def frame_renderer() -> Callable[..., Any]:
    if _FRAME_RENDERER is None:
        raise RuntimeError("no frame renderer registered: import robreward.feedback.vision (it registers the "
                           "renderer that draws the frames of recorded MuJoCo states)")
    return _FRAME_RENDERER


__all__ = ["ENTRY_POINT_GROUP", "RewardSource", "RewardSpec", "WORDS", "normalize_reward_spec",
           "frame_renderer", "parse_reward_spec", "register_reward_source", "reward_kinds", "reward_source",
           "set_frame_renderer", "set_state_recorder", "state_recorder", "valid_forms"]
