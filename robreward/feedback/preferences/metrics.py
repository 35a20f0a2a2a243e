"""Metrics of a learned reward: held-out preference accuracy and EPIC distance to the hand reward.

    preference_accuracy(model, held_out_pairs, labels)            -> fraction in [0, 1]
    coverage = Coverage.from_rollout(rollout)
    epic_distance(model, HandReward(spec), coverage, rng=rng)     -> distance in [0, 1]

EPIC (Gleave et al. 2021, "Quantifying Differences in Reward Functions", ICLR): canonicalize
each reward over a coverage distribution, removing potential shaping,

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

with S, S' ~ D_S and A ~ D_A independent, then take the Pearson distance
sqrt((1 - rho) / 2) of the two canonical rewards over transitions (s, a, s') ~ D. It is 0
exactly when the rewards agree up to a positive scale, a constant and potential shaping, and
about sqrt(1/2) = 0.71 for unrelated rewards (rho = 0).

What is approximated here, and how:

- D_S and D_A are the empirical marginals of a rollout's post-step states and actions, and D
  is the rollout's own transitions: the distance measures how the rewards differ where that
  policy went (an on-policy coverage, as Gleave et al.'s rollout-based variants), not over
  the whole state space.
- A transition is (s, a, s') = (post-step state of step t - 1, action of step t, post-step
  state of step t) of one world; the first step of each episode (and of the rollout) has no
  recorded pre-state and is left out of D.
- The expectations are Monte Carlo means over ``num_samples`` draws of (S, A, S'), the same
  draws for every transition; the Pearson correlation uses at most ``max_transitions``
  transitions drawn from D.
- Rewards of the Reward protocol read only the post-step state: R(s, a, s') = r(s', a). With
  S, A, S' independent every expectation above is then the one constant E[r(S', A)], so
  C(R) = r - E[r] and EPIC is the Pearson distance of r over D: computed exactly, no Monte
  Carlo. Such rewards cannot express shaping gamma Phi(s') - Phi(s) (they never see s); a
  reward that does is a ``TransitionReward`` (state, action, next_state), canonicalized by
  sampling. Terminal transitions are treated like any other (gamma everywhere), as in EPIC.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from robreward.envs.spec import TaskState
from robreward.feedback.preferences.model import PreferenceReward, labels_to_targets
from robreward.feedback.preferences.segments import Rollout, SegmentPairs

Tensor = torch.Tensor
DEFAULT_GAMMA = 0.99
DEFAULT_SAMPLES = 256
DEFAULT_MAX_TRANSITIONS = 4096
_CHUNK_ROWS = 1 << 16  # reward evaluations per batch in the Monte Carlo canonicalization


# -- preference accuracy -------------------------------------------------------------------
def accuracy_from_returns(returns0: Tensor, returns1: Tensor, labels: Sequence) -> float:
    """Fraction of answered, non-tie labels that the predicted returns order the same way
    (a predicted tie counts one half). Labels: P(second preferred), None = skipped."""
    keep, targets = labels_to_targets(labels)
    hard = (targets == 0) | (targets == 1)
    if not bool(hard.any()):
        raise ValueError("no strict preferences to score: every label is skipped (None) or equal (0.5)")
    diff = (torch.as_tensor(returns1, dtype=torch.float64) - torch.as_tensor(returns0, dtype=torch.float64)).cpu()
    diff, y = diff[keep][hard], targets[hard]
    score = torch.where(diff == 0, torch.full_like(diff, 0.5), ((diff > 0) == (y > 0.5)).double())
    return float(score.mean())


def preference_accuracy(model: PreferenceReward, pairs: SegmentPairs, labels: Sequence) -> float:
    """Held-out preference accuracy of the ensemble-mean P on labeled pairs it was not trained on."""
    if len(labels) != pairs.size:
        raise ValueError(f"got {len(labels)} labels for {pairs.size} pairs: one label per pair")
    with torch.no_grad():
        r0 = model.segment_returns(pairs.first).mean(0)
        r1 = model.segment_returns(pairs.second).mean(0)
    return accuracy_from_returns(r0, r1, labels)


# -- EPIC ----------------------------------------------------------------------------------
class TransitionReward:
    """A reward over transitions, ``fn(state, action, next_state) -> [B]`` (e.g. a shaped reward)."""

    def __init__(self, fn: Callable[[TaskState, Tensor, TaskState], Tensor], name: str = "transition"):
        self.fn = fn
        self.name = name

    def __call__(self, state: TaskState, action: Tensor, next_state: TaskState) -> Tensor:
        return _total(self.fn(state, action, next_state))


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Samples of states, actions and transitions for EPIC (see the module docstring)."""

    states: TaskState  # [M] post-step states: D_S, and the s and s' of transitions
    actions: Tensor  # [M, act_dim] the action of each step: D_A
    prev: Tensor  # [K] index into states of each transition's s
    next: Tensor  # [K] index of s' (the action is actions[next])

    @classmethod
    def from_rollout(cls, rollout: Rollout) -> "Coverage":
        t, n = rollout.num_steps, rollout.num_envs
        states = TaskState({k: v.reshape(t * n, *v.shape[2:]) for k, v in rollout.states.items()})
        actions = rollout.actions.reshape(t * n, -1)
        flat = torch.arange(t * n, device=actions.device).reshape(t, n)
        has_prev = torch.zeros(t, n, dtype=torch.bool, device=actions.device)
        has_prev[1:] = ~rollout.dones[:-1].to(actions.device)
        return cls(states, actions, (flat - n)[has_prev], flat[has_prev])

    @property
    def num_transitions(self) -> int:
        return int(self.next.shape[0])


RewardLike = Union[TransitionReward, Callable]


def canonical_rewards(reward: RewardLike, coverage: Coverage, transitions: Tensor, *, gamma: float = DEFAULT_GAMMA,
                      num_samples: int = DEFAULT_SAMPLES, rng: Optional[np.random.Generator] = None) -> Tensor:
    """C(R) on the given transitions (indices into coverage.prev/next) [K], float64.

    A Reward-protocol reward (state, action) -> (total, terms) is canonicalized exactly
    (r - E[r] over the coverage states and actions); a TransitionReward by Monte Carlo over
    ``num_samples`` independent (S, A, S') draws with ``rng``."""
    prev, nxt = coverage.prev[transitions], coverage.next[transitions]
    actions = coverage.actions[nxt]
    if not isinstance(reward, TransitionReward):
        with torch.no_grad():
            on_d = _total(reward(coverage.states.index(nxt), actions)).double().cpu()
            # every expectation of C(R) is the constant E[r(S', A)]; it only shifts C(R), so its
            # sampling error never reaches the Pearson distance
            mean = _product_mean(reward, coverage, num_samples, rng)
        return on_d - mean
    if rng is None:
        raise ValueError("canonicalizing a TransitionReward samples states and actions: "
                         "pass rng=np.random.default_rng(seed)")
    m = coverage.actions.shape[0]
    s_idx, a_idx, s2_idx = (torch.as_tensor(rng.integers(0, m, size=num_samples), device=coverage.actions.device)
                            for _ in range(3))
    sample_a = coverage.actions[a_idx]
    with torch.no_grad():
        direct = reward(coverage.states.index(prev), actions, coverage.states.index(nxt)).double().cpu()
        from_next = _mean_over_samples(reward, coverage, nxt, sample_a, s2_idx)  # E[R(s', A, S')]
        from_prev = _mean_over_samples(reward, coverage, prev, sample_a, s2_idx)  # E[R(s, A, S')]
        constant = reward(coverage.states.index(s_idx), sample_a, coverage.states.index(s2_idx)).double().mean().cpu()
    return direct + gamma * from_next - from_prev - gamma * constant


def _product_mean(reward, coverage: Coverage, num_samples: int, rng) -> Tensor:
    """E[r(S', A)] with S' and A drawn independently (num_samples pairs)."""
    m = coverage.actions.shape[0]
    gen = rng if rng is not None else np.random.default_rng(0)
    s_idx = torch.as_tensor(gen.integers(0, m, size=num_samples), device=coverage.actions.device)
    a_idx = torch.as_tensor(gen.integers(0, m, size=num_samples), device=coverage.actions.device)
    values = _total(reward(coverage.states.index(s_idx), coverage.actions[a_idx])).double()
    return values.mean().cpu()


def _mean_over_samples(reward: TransitionReward, coverage: Coverage, first: Tensor, sample_a: Tensor,
                       s2_idx: Tensor) -> Tensor:
    """[K] mean_j R(state[first_k], A_j, state[S'_j])."""
    k, m = len(first), len(s2_idx)
    out = torch.empty(k, dtype=torch.float64)
    per_chunk = max(1, _CHUNK_ROWS // m)
    for lo in range(0, k, per_chunk):
        rows = first[lo:lo + per_chunk]
        b = len(rows)
        s = coverage.states.index(rows.repeat_interleave(m))
        s2 = coverage.states.index(s2_idx.repeat(b))
        values = reward(s, sample_a.repeat(b, 1), s2).double().reshape(b, m)
        out[lo:lo + b] = values.mean(1).cpu()
    return out


def pearson_distance(x: Tensor, y: Tensor) -> float:
    """sqrt((1 - rho) / 2) of two samples [K]; ValueError if either is constant."""
    x = torch.as_tensor(x, dtype=torch.float64).flatten()
    y = torch.as_tensor(y, dtype=torch.float64).flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"pearson_distance needs two samples of the same size >= 2, got {x.numel()} and {y.numel()}")
    xc, yc = x - x.mean(), y - y.mean()
    sx, sy = float(xc.norm()), float(yc.norm())
    scale = max(float(x.abs().max()), float(y.abs().max()), 1e-12) * math.sqrt(x.numel())
    for what, s in (("first", sx), ("second", sy)):
        if s <= 1e-9 * scale:
            raise ValueError(f"the {what} reward is constant on the coverage transitions: its EPIC distance is "
                             "undefined (Pearson correlation of a constant); use a more varied rollout")
    rho = float((xc @ yc) / (sx * sy))
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))


def epic_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                  num_samples: int = DEFAULT_SAMPLES, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                  rng: Optional[np.random.Generator] = None) -> float:
    """EPIC distance in [0, 1] between two rewards (Reward protocol or TransitionReward) over a
    coverage; see the module docstring for what is sampled. ``rng`` draws the transitions (when
    there are more than ``max_transitions``) and the Monte Carlo samples."""
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if num_samples < 1 or max_transitions < 2:
        raise ValueError(f"num_samples must be >= 1 and max_transitions >= 2, got {num_samples}, {max_transitions}")
    k = coverage.num_transitions
    if k < 2:
        raise ValueError(f"the coverage has {k} transitions; EPIC needs at least 2: collect a longer rollout")
    if k > max_transitions:
        if rng is None:
            raise ValueError(f"the coverage has {k} > max_transitions={max_transitions} transitions to sample from: "
                             "pass rng=np.random.default_rng(seed)")
        chosen = torch.as_tensor(np.sort(rng.choice(k, size=max_transitions, replace=False)),
                                 device=coverage.next.device)
    else:
        chosen = torch.arange(k, device=coverage.next.device)
    seed = int(rng.integers(2**31)) if rng is not None else None

    def draws():  # the same sample draws for both rewards: their Monte Carlo errors partly cancel
        return np.random.default_rng(seed) if seed is not None else None

    canon_a = canonical_rewards(reward_a, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws())
    canon_b = canonical_rewards(reward_b, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws())
    return pearson_distance(canon_a, canon_b)


def _total(out) -> Tensor:
    """The total of a Reward's (total, terms), or a plain tensor."""
    total = out[0] if isinstance(out, tuple) else out
    if not isinstance(total, Tensor) or total.ndim != 1:
        raise ValueError(f"a reward must return a tensor [B] (or (total [B], terms)), got "
                         f"{type(total).__name__} {list(getattr(total, 'shape', []))}")
    return total


__all__ = ["Coverage", "TransitionReward", "accuracy_from_returns", "canonical_rewards", "epic_distance",
           "pearson_distance", "preference_accuracy"]
