"""Simulated teachers: B-Pref's SimTeacher (Lee et al. 2021, "B-Pref: Benchmarking
Preference-Based Reinforcement Learning", NeurIPS Datasets & Benchmarks), composable.

    teacher = make_teacher("stochastic:1.0,myopic:0.9")
    labels = teacher(rewards0, rewards1, rng)           # rewards [B, H] -> list of B labels

A query is a pair of segments (sigma0, sigma1) of H steps; the teacher sees their per-step
ground-truth rewards (the task's hand reward; 0 on padded steps past an episode's end) and
answers with a label, the probability that sigma1 (the second, shown on the right) is preferred:

    1.0   sigma1 preferred          0.0   sigma0 preferred
    0.5   equally preferable        None  skipped (no label; the pair is dropped)

B-Pref's teacher is one model with five knobs; each spec component sets one (section 3.2 of
the paper, and ``get_label`` in rll-research/BPref ``reward_model.py``). In the order applied:

    skip:EPS        skip the query when max(R0, R1) < delta_skip                  (label None)
    equal:EPS       |R1 - R0| < delta_equal -> 0.5, whatever the steps below say
    myopic:GAMMA    R_gamma = sum_t gamma^(H-1-t) r_t: later steps weigh more (gamma <= 1)
    stochastic:BETA P(sigma1 > sigma0) = sigmoid(beta * (R_gamma1 - R_gamma0)); label ~ Bernoulli
                    (oracle: beta = inf, the label is 1[R_gamma1 > R_gamma0]; an exact tie gives 0.5,
                    the beta -> inf limit of sigmoid(0))
    mistake:EPS     flip the label (y -> 1 - y) with probability EPS, independently per query

skip and equal compare undiscounted returns R = sum_t r_t, as B-Pref does; only the
preference itself is myopic. ``oracle`` alone is the perfectly rational teacher (beta = inf,
gamma = 1, no mistakes, never skips or ties).

Thresholds. B-Pref makes delta_skip and delta_equal relative to the scale of the returns:
delta = EPS * R_ref, with R_ref the expected return of one segment under the current policy,
estimated as the mean true return of the 10 most recent training episodes times H / T
(T: episode length; ``train_PEBBLE.py``); see :func:`bpref_reference_return`. The loop passes
that R_ref as ``reference_return``; without one the teacher uses the mean undiscounted return
of the segments in the batch it labels (the same quantity, estimated from the batch). As in
B-Pref a rule is only active while its threshold is positive, so on tasks whose returns are
negative on average the relative thresholds switch off: give ``skip_threshold`` /
``equal_threshold`` (absolute return units) to SimTeacher instead.

B-Pref's code squares EPS in the thresholds, and this is not reproduced: ``train_PEBBLE.py``
calls ``set_teacher_thres_skip(new_margin * eps)`` and the setter multiplies by eps again, so
after the first feedback round its delta is EPS^2 * R_ref (the first round gets EPS * R_ref).
Here delta = EPS * R_ref in every round. The mistake teacher flips each answered label with
probability exactly EPS (tested over many draws). B-Pref's own flip (``rand <= eps`` in
``get_label``) is EPS too: its EPS^2 is in the skip/equal thresholds, not in the mistake flip.

A ``human`` teacher labels in the labeling web app (``robreward label``), not from rewards.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

Label = Optional[float]
"""P(sigma1 preferred): 0.0, 1.0, 0.5 (equal) or None (skipped)."""
EQUAL: Label = 0.5
SKIP: Label = None

Rng = Union[np.random.Generator, torch.Generator, int, None]

COMPONENTS = ("oracle", "stochastic", "mistake", "skip", "equal", "myopic")
"""The simulated teacher kinds a spec may combine (``make_teacher``)."""
_FIELD_OF = {"stochastic": "beta", "mistake": "eps_mistake", "skip": "eps_skip", "equal": "eps_equal",
             "myopic": "gamma"}
_VALUE_NAME = {"stochastic": "BETA", "mistake": "EPS", "skip": "EPS", "equal": "EPS", "myopic": "GAMMA"}


@dataclasses.dataclass(frozen=True)
class SimTeacher:
    """B-Pref's simulated teacher; the defaults are the oracle. See the module docstring."""

    beta: float = math.inf
    """Rationality: P(sigma1 > sigma0) = sigmoid(beta * (R1 - R0)); inf = deterministic (oracle)."""
    gamma: float = 1.0
    """Myopia: step t of H weighs gamma^(H-1-t) in the return that decides the preference."""
    eps_mistake: float = 0.0
    """Probability of flipping each answered label."""
    eps_skip: float = 0.0
    """Skip when max(R0, R1) < eps_skip * reference return (0: never skip)."""
    eps_equal: float = 0.0
    """Answer 0.5 when |R1 - R0| < eps_equal * |reference return| (0: never)."""
    skip_threshold: Optional[float] = None
    """Absolute delta_skip (return units); overrides eps_skip * reference return."""
    equal_threshold: Optional[float] = None
    """Absolute delta_equal (return units); overrides eps_equal * |reference return|."""

    def __post_init__(self):
        if not (self.beta > 0):  # also rejects NaN
            raise ValueError(f"stochastic teacher: beta must be > 0 (inf for the oracle), got {self.beta!r}")
        if not (0.0 < self.gamma <= 1.0):
            raise ValueError(f"myopic teacher: gamma must be in (0, 1], got {self.gamma!r}")
        if not (0.0 <= self.eps_mistake <= 1.0):
            raise ValueError(f"mistake teacher: eps must be in [0, 1], got {self.eps_mistake!r}")
        for name in ("eps_skip", "eps_equal"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name.split('_')[1]} teacher: eps must be a finite number >= 0, got {value!r}")
        for name in ("skip_threshold", "equal_threshold"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number or None, got {value!r}")

    # -- description ------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        """The canonical spec string: ``make_teacher(t.spec) == t``."""
        parts = []
        if self.skip_threshold is not None or self.eps_skip > 0:
            parts.append(f"skip:{self.eps_skip:g}" if self.skip_threshold is None else f"skip@{self.skip_threshold:g}")
        if self.equal_threshold is not None or self.eps_equal > 0:
            parts.append(f"equal:{self.eps_equal:g}" if self.equal_threshold is None
                         else f"equal@{self.equal_threshold:g}")
        if self.gamma != 1.0:
            parts.append(f"myopic:{self.gamma:g}")
        if math.isfinite(self.beta):
            parts.append(f"stochastic:{self.beta:g}")
        if self.eps_mistake > 0:
            parts.append(f"mistake:{self.eps_mistake:g}")
        return ",".join(parts) if parts else "oracle"

    @property
    def name(self) -> str:
        return self.spec

    @property
    def is_random(self) -> bool:
        """Whether labels depend on the rng (a stochastic or mistaken teacher)."""
        return math.isfinite(self.beta) or self.eps_mistake > 0

    def thresholds(self, reference_return: Optional[float]) -> tuple[float, float]:
        """(delta_skip, delta_equal) for a reference segment return; 0 means the rule is off."""
        ref = 0.0 if reference_return is None else float(reference_return)
        skip = self.skip_threshold if self.skip_threshold is not None else self.eps_skip * ref
        equal = self.equal_threshold if self.equal_threshold is not None else self.eps_equal * abs(ref)
        return float(skip), float(equal)

    # -- labeling ---------------------------------------------------------------------------
    def __call__(self, rewards0, rewards1, rng: Rng = None, *,
                 reference_return: Optional[float] = None) -> list[Label]:
        """Labels for B queries from the per-step rewards of both segments, [B, H] each.

        rng: a numpy Generator, a torch Generator or an int seed; required by a random teacher
        (stochastic or mistake), unused otherwise. reference_return: R_ref for the relative
        skip/equal thresholds (default: the batch's mean segment return).
        """
        r0, r1 = _as_rewards(rewards0, "rewards0"), _as_rewards(rewards1, "rewards1")
        if r0.shape != r1.shape:
            raise ValueError(f"rewards0 and rewards1 must have the same shape [B, H], got "
                             f"{list(r0.shape)} and {list(r1.shape)}")
        batch, horizon = r0.shape
        if self.is_random and rng is None:
            raise ValueError(f"teacher {self.spec!r} is random: pass rng=np.random.default_rng(seed) "
                             "(or a torch.Generator / an int seed) so its labels are reproducible")
        if batch == 0:
            return []
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            rng = np.random.default_rng(int(rng))
        ret0, ret1 = r0.sum(1), r1.sum(1)
        if reference_return is None:
            reference_return = float(np.concatenate([ret0, ret1]).mean())
        delta_skip, delta_equal = self.thresholds(reference_return)

        # myopic returns decide the preference: step t weighs gamma^(H-1-t)
        weights = self.gamma ** np.arange(horizon - 1, -1, -1, dtype=np.float64)
        diff = r1 @ weights - r0 @ weights
        if math.isinf(self.beta):
            labels = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
            uniform = None
        else:
            prob = _sigmoid(self.beta * diff)
            uniform = _uniform(rng, 2 * batch) if self.eps_mistake > 0 else _uniform(rng, batch)
            labels = (uniform[:batch] < prob).astype(np.float64)
        if self.eps_mistake > 0:
            flips = _uniform(rng, batch) if uniform is None else uniform[batch:]
            flip = flips < self.eps_mistake
            labels = np.where(flip, 1.0 - labels, labels)
        # equal: a tie whatever the (possibly mistaken) label said; skip: no label at all
        if delta_equal > 0:
            labels = np.where(np.abs(ret1 - ret0) < delta_equal, EQUAL, labels)
        out: list[Label] = [float(x) for x in labels]
        if delta_skip > 0:
            skipped = np.maximum(ret0, ret1) < delta_skip
            out = [SKIP if s else y for s, y in zip(skipped, out)]
        return out

    def label(self, pairs, rng: Rng = None, *, reference_return: Optional[float] = None) -> list[Label]:
        """Labels for a ``SegmentPairs`` (robreward.feedback.preferences.segments)."""
        return self(pairs.first.rewards, pairs.second.rewards, rng, reference_return=reference_return)


def bpref_reference_return(episode_returns: Sequence[float], segment_length: int, episode_length: int) -> float:
    """B-Pref's R_ref: mean return of recent episodes (it keeps the last 10) scaled to one segment, H / T."""
    values = [float(x) for x in episode_returns]
    if not values:
        raise ValueError("bpref_reference_return needs at least one episode return")
    if segment_length < 1 or episode_length < 1:
        raise ValueError(f"segment_length and episode_length must be >= 1, got {segment_length}, {episode_length}")
    return float(np.mean(values)) * segment_length / episode_length


def make_teacher(spec: Union[str, SimTeacher]) -> SimTeacher:
    """A teacher from a spec: ``oracle``, ``mistake:0.1``, ``stochastic:1.0,myopic:0.9``, ...

    Components (comma-separated, each at most once): oracle, stochastic:BETA, mistake:EPS,
    skip:EPS, equal:EPS, myopic:GAMMA; ``skip@DELTA`` / ``equal@DELTA`` give an absolute
    threshold in return units. ``human`` needs the labeling app.
    """
    if isinstance(spec, SimTeacher):
        return spec
    external = _external_teacher(spec)
    if external is not None:
        return external
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"teacher spec must be a non-empty string such as 'oracle' or 'mistake:0.1', got {spec!r}")
    fields: dict = {}
    seen: set = set()
    for raw in spec.split(","):
        part = raw.strip()
        name, sep, value = _split_component(part)
        if name == "human":
            raise ValueError("teacher 'human' labels in the labeling web app: start it with `robreward label RUN` "
                             "(the app is not available yet); use a simulated teacher: "
                             + ", ".join(_usage()))
        if name not in COMPONENTS:
            raise ValueError(f"unknown teacher {name!r} in {spec!r}: use one or more of " + ", ".join(_usage())
                             + " (comma-separated), or 'human'")
        if name in seen:
            raise ValueError(f"teacher component {name!r} appears twice in {spec!r}")
        seen.add(name)
        if name == "oracle":
            if sep:
                raise ValueError(f"'oracle' takes no value, got {part!r}")
            continue
        if not sep:
            raise ValueError(f"teacher {name!r} needs a value: {name}:{_VALUE_NAME[name]}, e.g. {_example(name)}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"teacher {part!r}: {value!r} is not a number ({name}:{_VALUE_NAME[name]})") from None
        if sep == "@":
            if name not in ("skip", "equal"):
                raise ValueError(f"teacher {part!r}: only skip and equal take an absolute threshold (NAME@DELTA)")
            fields[f"{name}_threshold"] = number
        else:
            fields[_FIELD_OF[name]] = number
    if "oracle" in seen and "stochastic" in seen:
        raise ValueError(f"teacher {spec!r}: 'oracle' means beta = inf and 'stochastic' sets a finite beta; "
                         "keep one of them")
    return SimTeacher(**fields)


# -- teachers provided by other packages ---------------------------------------------------------------------
_TEACHER_KINDS: dict = {}
VLM_KINDS = ("vlm", "anthropic")
"""The vision-language teachers (robreward/feedback/vision/vlm_teacher.py), registered by the CLI, which builds
their LLM client (robreward.feedback may not import robreward.codegen)."""


def register_teacher_kind(kind: str, factory) -> None:
    """``make_teacher("KIND:ARG")`` returns ``factory("KIND:ARG")``: a teacher object that is not a SimTeacher
    (e.g. robreward.cli.vision registers vlm: and anthropic:, whose teachers label rendered frames through
    ``label_round(round, pairs, rollout, env)``)."""
    _TEACHER_KINDS[kind] = factory


def _external_teacher(spec):
    if not isinstance(spec, str):
        return None
    kind = spec.strip().partition(":")[0].strip().lower()
    if kind in _TEACHER_KINDS:
        return _TEACHER_KINDS[kind](spec.strip())
    if kind in VLM_KINDS:
        raise ValueError(f"teacher {spec!r} (a vision-language model) is not available here: the robreward CLI "
                         "provides it (`robreward prefs train --teacher vlm:MODEL`); from Python call "
                         "robreward.cli.vision.register_vlm_teachers() first")
    return None


def _split_component(part: str) -> tuple[str, str, str]:
    for sep in (":", "@"):
        if sep in part:
            name, _, value = part.partition(sep)
            return name.strip().lower(), sep, value.strip()
    return part.lower(), "", ""


def _example(name: str) -> str:
    return {"stochastic": "stochastic:1.0", "mistake": "mistake:0.1", "skip": "skip:0.1", "equal": "equal:0.1",
            "myopic": "myopic:0.9"}[name]


def _usage() -> list[str]:
    return ["oracle"] + [f"{n}:{_VALUE_NAME[n]}" for n in COMPONENTS if n != "oracle"]


def _as_rewards(x, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be per-step rewards [B, H], got shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} has NaN or inf rewards; the teacher needs finite ground-truth rewards")
    return arr


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _uniform(rng: Rng, n: int) -> np.ndarray:
    """n draws from U[0, 1) from a numpy Generator, a torch Generator or an int seed."""
    if isinstance(rng, torch.Generator):
        return torch.rand(n, generator=rng, dtype=torch.float64, device=rng.device).cpu().numpy()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(int(rng))
    if isinstance(rng, np.random.Generator):
        return rng.random(n)
    raise TypeError(f"rng must be a numpy Generator, a torch Generator or an int seed, got {type(rng).__name__}")


__all__ = ["COMPONENTS", "EQUAL", "Label", "SKIP", "SimTeacher", "VLM_KINDS", "bpref_reference_return", "make_teacher",
           "register_teacher_kind"]
