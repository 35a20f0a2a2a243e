"""Distances between reward functions on sampled transitions: EPIC, DARD and STARC.

    coverage = collect_transitions(env, num_steps=256, seed=0)         # or Coverage.from_rollout(rollout)
    reward_distances(spec, "hand", "pref:runs/p", coverage)             # {"epic": .., "dard": .., "starc": ..}

Each distance canonicalises both rewards (removing what does not change which policies are
better: potential shaping gamma Phi(s') - Phi(s), and a constant), then compares them in a way
that ignores a positive scale. All three are 0 for rewards that differ only by those, 1 for a
reward and its negation, and lie in [0, 1].

*EPIC* (Gleave et al. 2021, "Quantifying Differences in Reward Functions"):

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

with S, S' ~ D_S and A ~ D_A independent; the Pearson distance sqrt((1 - rho) / 2) of C(R_a) and
C(R_b) over transitions (s, a, s') ~ D.

*DARD* (Wulfe et al. 2022, "Dynamics-Aware Comparison of Learned Reward Functions"): as EPIC
but the expectations follow the dynamics, so the rewards are never queried on impossible
transitions:

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S'') - R(s, A, S') - gamma R(S', A, S'')]

with A ~ D_A, S' ~ T(s, A), S'' ~ T(s', A); then the Pearson distance.

*STARC* (Skalse et al. 2024, "STARC: A General Framework For Quantifying Differences Between
Reward Functions", ICLR): canonicalise with c, normalise s(R) = c(R) / n(c(R)) (s(R) = 0 when
n(c(R)) = 0), then d = m(s(R_a), s(R_b)) / 2 for a metric m; with n and m the L2 norm over the
transition distribution D, d = sqrt((1 - cos) / 2) of the canonical rewards, in [0, 1]. The
canonicalisation is the paper's Value-Adjusted Levelling (VAL):

    c(R)(s, a, s') = E_{S' ~ T(s, a)}[R(s, a, S') + gamma V^pi_R(S')] - V^pi_R(s)

(the advantage of a under pi), for a fixed policy pi. Why VAL: the paper's minimal
canonicalisation (an L2 projection onto the complement of every shaping) needs the whole
transition matrix and is only computable in small tabular MDPs; VAL needs only the value of one
policy, which a sample of that policy's transitions estimates without a model, and the paper
recommends it for settings where c_min is out of reach. The choices made here:

- pi is the policy that generated the transitions (uniform random actions in
  ``collect_transitions`` unless a policy is given): its value is what the sample can estimate.
- V^pi_R is estimated by LSTD(0) (least-squares temporal difference, Bradtke & Barto 1996) on
  the coverage's transitions with fixed features of the state (``value_features``): a
  constant and the whitened state fields (every TaskState field but ``action``, flattened),
  unpenalised, plus 64 random Fourier features of them with a small ridge (1e-2). LSTD is linear in
  the reward, so c(alpha R) = alpha c(R) and c(-R) = -c(R) exactly, and a shaping whose Phi is
  linear in the state fields (or a constant) is removed exactly, up to float64 round-off (the
  ridge does not touch those columns); a Phi outside their span is removed as far as the
  features fit it (measured: STARC 0.03 between hand and hand + a norm-of-distance shaping on
  reach). A single Monte Carlo return per state would make R + gamma G' - G = 0 identically,
  so the value has to be fitted. A canonical reward below 1e-6 of the raw reward's RMS counts
  as 0 (the reward was only shaping and a constant): s(R) = 0 and its distance to any
  non-trivial reward is 1/2, as the paper defines.
- The simulators are deterministic, so E_{S' ~ T(s, a)} is the sampled s'.

What is approximated for EPIC and DARD, and how:

- D_S and D_A are the empirical marginals of the coverage's post-step states and actions; D is
  its transitions. A transition is (s, a, s') = (post-step state of step t - 1, action of step
  t, post-step state of step t) of one world; the first step of each episode has no recorded
  pre-state and is left out. Terminal transitions are treated like any other (gamma
  everywhere), as in EPIC.
- EPIC's expectations are Monte Carlo means over ``num_samples`` draws of (S, A, S'), the same
  draws for both rewards. A Reward-protocol reward r(state, action) reads only the post-step
  state, R(s, a, s') = r(s', a): every EPIC expectation is then the constant E[r], so C(R) is r
  minus a constant and EPIC is the Pearson distance of r over D, exactly.
- DARD's T(s, A) is taken from the sample: the ``neighbours`` transitions whose start state is
  nearest to s (Euclidean distance of the standardised state fields) give the pairs (A, S');
  their actions stand for A ~ D_A (exact for a random-action coverage, the behaviour policy's
  actions near s otherwise). The same pairs serve every term, so potential shaping cancels
  exactly. For a Reward-protocol reward C(R)(s, a, s') = r(s', a) - mean_i r(S'_i, A_i).

Confidence intervals (``reward_distances``) are percentile bootstraps over the episodes of the
transitions. STARC refits its value function on every resample, so its interval includes the
value fit's error, which dominates: with gamma = 0.99 and a few dozen random-action episodes
LSTD's value is noisy, and STARC's interval is wide (reach, hand vs an unrelated reward, 16 x
256 random steps: 0.57, interval [0.24, 0.80]; EPIC 0.70 [0.70, 0.71]). EPIC and DARD keep their
canonical rewards fixed (EPIC's is exact for Reward-protocol rewards; DARD's neighbours are
not resampled), so theirs covers which transitions were sampled.

Rewards that read more than the TaskState (robreward.rewards.state_tables): a CLIP reward and an
image progress model score frames of the coverage's states, rendered from the MuJoCo states that
``collect_transitions(..., record_sim_states=True)`` keeps (the renderer robreward.feedback.vision
registers); progress shaping gives Φ per state; both become tables over the coverage's states. An
episode-level reward (RoboCLIP) has no distance on transitions (EpisodeLevelReward).

This module is in the rewards layer: it imports no env, trainer or learner. ``Coverage``
reads any object shaped like a rollout, ``collect_transitions`` any object shaped like a
BatchedEnv.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Union

import numpy as np
import torch

from robreward.envs.spec import TaskState
from robreward.rewards.state_tables import TabledReward, bind_to_coverage, needs_tables

Tensor = torch.Tensor
DEFAULT_GAMMA = 0.99
DEFAULT_SAMPLES = 256
DEFAULT_MAX_TRANSITIONS = 4096
DEFAULT_NEIGHBOURS = 8
DEFAULT_VALUE_FEATURES = 64
DEFAULT_BOOTSTRAP = 100
DEFAULT_RIDGE = 1e-2  # LSTD ridge on the random Fourier features (each of variance 1)
TRIVIAL = 1e-6  # a VAL canonical reward below this x the raw reward's RMS is 0 (the reward was only shaping)
_CHUNK_ROWS = 1 << 16  # reward evaluations per batch
METRICS = ("epic", "dard", "starc")


class TransitionReward:
    """A reward over transitions, ``fn(state, action, next_state) -> [B]`` (e.g. a shaped reward)."""

    def __init__(self, fn: Callable[[TaskState, Tensor, TaskState], Tensor], name: str = "transition"):
        self.fn = fn
        self.name = name

    def __call__(self, state: TaskState, action: Tensor, next_state: TaskState) -> Tensor:
        return _total(self.fn(state, action, next_state))


RewardLike = Union[TransitionReward, TabledReward, Callable]


def _bound(reward, coverage: "Coverage"):
    """A reward that reads frames or keeps history, bound to the coverage's tables (rewards.state_tables)."""
    return reward if isinstance(reward, (TransitionReward, TabledReward)) else bind_to_coverage(reward, coverage)


def _reads_transitions(reward) -> bool:
    """R depends on s as well as (s', a): a TransitionReward, or a tabled reward with a potential."""
    return isinstance(reward, TransitionReward) or isinstance(reward, TabledReward) and not reward.state_only


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Samples of states, actions and transitions (see the module docstring)."""

    states: TaskState  # [M] post-step states: D_S, and the s and s' of transitions
    actions: Tensor  # [M, act_dim] the action of each step: D_A
    prev: Tensor  # [K] index into states of each transition's s
    next: Tensor  # [K] index of s' (the action is actions[next])
    episode: Optional[Tensor] = None  # [K] episode id of each transition (bootstrap groups); None: one per transition
    sim_states: Optional[Tensor] = None  # [M, nstate] float64 full MuJoCo state of each of ``states`` (to render frames)

    def __post_init__(self):
        k = self.prev.shape[0]
        if self.sim_states is not None and self.sim_states.shape[0] != self.actions.shape[0]:
            raise ValueError(f"Coverage: sim_states must have one row per state ({self.actions.shape[0]}), got "
                             f"{self.sim_states.shape[0]}")
        if self.next.shape[0] != k or (self.episode is not None and self.episode.shape[0] != k):
            raise ValueError(f"Coverage: prev, next and episode must have one entry per transition, got "
                             f"{self.prev.shape[0]}, {self.next.shape[0]}"
                             + ("" if self.episode is None else f", {self.episode.shape[0]}"))

    @classmethod
    def from_rollout(cls, rollout) -> "Coverage":
        """From a rollout: ``states`` (name -> [T, N, ...]), ``actions`` [T, N, A], ``dones`` [T, N]
        (robreward.feedback.preferences.Rollout, or anything shaped like it), and optionally
        ``post_sim_states`` [T, N, nstate]: the full MuJoCo state after each step (frames to render)."""
        actions = rollout.actions
        t, n = int(actions.shape[0]), int(actions.shape[1])
        states = TaskState({k: v.reshape(t * n, *v.shape[2:]) for k, v in rollout.states.items()})
        dones = rollout.dones.to(actions.device)
        flat = torch.arange(t * n, device=actions.device).reshape(t, n)
        has_prev = torch.zeros(t, n, dtype=torch.bool, device=actions.device)
        has_prev[1:] = ~dones[:-1]
        # episode id: world n's count of finished episodes before step t, made unique per world
        started = torch.cat([torch.zeros(1, n, dtype=torch.long, device=actions.device),
                             dones[:-1].long().cumsum(0)])
        episode = started * n + torch.arange(n, device=actions.device)
        sims = getattr(rollout, "post_sim_states", None)
        sims = None if sims is None else torch.as_tensor(sims).reshape(t * n, -1).double().cpu()
        return cls(states, actions.reshape(t * n, -1), (flat - n)[has_prev], flat[has_prev], episode[has_prev], sims)

    def _replace_sims(self, sim_states: Tensor) -> "Coverage":
        return dataclasses.replace(self, sim_states=sim_states)

    @property
    def num_transitions(self) -> int:
        return int(self.next.shape[0])

    @property
    def groups(self) -> Tensor:
        """[K] bootstrap group (episode) of each transition, as 0..G-1."""
        if self.episode is None:
            return torch.arange(self.num_transitions)
        return torch.unique(self.episode.cpu(), return_inverse=True)[1]


def collect_transitions(env, num_steps: int, *, policy: Optional[Callable] = None, seed: int = 0,
                        record_sim_states: bool = False) -> Coverage:
    """A coverage from ``num_steps`` steps of every world of a BatchedEnv (anything with reset(),
    step(action) -> (obs, reward, terminated, truncated, info with info["final_state"]), num_envs,
    act_dim, action_low/high, device). ``policy``: obs [N, obs_dim] -> action [N, act_dim]; None:
    uniform random actions drawn with ``seed``. ``record_sim_states``: also keep every post-step full
    MuJoCo state (``Coverage.sim_states``), so rewards that score rendered frames can be measured; read
    from inside the step (through the env's reward, before an ended world is reset), it needs
    ``env.get_state()``, ``env.reward_fn`` and ``env.set_reward``."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 2:
        raise ValueError(f"num_steps must be an integer >= 2 (a transition needs two steps), got {num_steps!r}")
    if record_sim_states:
        recorder = _PostStepStates(env)
        try:
            return collect_transitions(env, num_steps, policy=policy, seed=seed)._replace_sims(recorder.stacked())
        finally:
            recorder.restore()
    gen = torch.Generator().manual_seed(int(seed))
    low, high = env.action_low.cpu(), env.action_high.cpu()
    obs, _ = env.reset()
    states: dict[str, list] = {}
    actions, terminated, truncated = [], [], []
    with torch.no_grad():
        for _ in range(int(num_steps)):
            if policy is None:
                action = low + (high - low) * torch.rand(env.num_envs, env.act_dim, generator=gen)
            else:
                action = policy(obs)
                action = action[0] if isinstance(action, tuple) else action
                action = action if isinstance(action, Tensor) else torch.as_tensor(np.asarray(action))
            obs, _, term, trunc, info = env.step(action.to(env.device, torch.float32))
            for name, value in info["final_state"].items():
                states.setdefault(name, []).append(value.cpu())
            actions.append(info["final_state"]["action"].cpu())
            terminated.append(term.cpu())
            truncated.append(trunc.cpu())
    rollout = _Steps({k: torch.stack(v) for k, v in states.items()}, torch.stack(actions),
                     torch.stack(terminated) | torch.stack(truncated))
    return Coverage.from_rollout(rollout)


class _PostStepStates:
    """Wraps an env's reward to read the full MuJoCo state of every world inside each step: the reward is
    called on the post-step state before the env resets the worlds that ended (those states are gone after
    step returns). ``parts`` lets the env find the wrapped reward's reset hooks."""

    def __init__(self, env):
        if not all(hasattr(env, a) for a in ("get_state", "reward_fn", "set_reward")):
            raise ValueError(f"record_sim_states needs a robreward BatchedEnv (get_state, reward_fn, set_reward); got "
                             f"{type(env).__name__}")
        self.env, self.inner, self.rows = env, env.reward_fn, []
        self.parts, self.name = [self.inner], getattr(self.inner, "name", "reward")
        env.set_reward(self)

    def __call__(self, state, action):
        full = self.env.get_state()
        self.rows.append(torch.as_tensor(full).detach().double().cpu().clone())
        return self.inner(state, action)

    def stacked(self) -> Tensor:
        """[T * N, nstate] in the coverage's state order (step-major)."""
        return torch.stack(self.rows).reshape(-1, self.rows[0].shape[-1])

    def restore(self) -> None:
        self.env.set_reward(self.inner)


@dataclasses.dataclass(frozen=True)
class _Steps:
    states: dict
    actions: Tensor
    dones: Tensor


# -- evaluating rewards on the coverage ----------------------------------------------------------
def _total(out) -> Tensor:
    """The total of a Reward's (total, terms), or a plain tensor."""
    total = out[0] if isinstance(out, tuple) else out
    if not isinstance(total, Tensor) or total.ndim != 1:
        raise ValueError(f"a reward must return a tensor [B] (or (total [B], terms)), got "
                         f"{type(total).__name__} {list(getattr(total, 'shape', []))}")
    return total


def _evaluate(reward: RewardLike, coverage: Coverage, prev: Tensor, nxt: Tensor,
              actions: Optional[Tensor] = None) -> Tensor:
    """R(states[prev], action, states[nxt]) [B] float64 on the CPU, in chunks; the action defaults to
    actions[nxt] (the transition's own). A Reward-protocol reward reads (states[nxt], action)."""
    out = torch.empty(len(nxt), dtype=torch.float64)
    with torch.no_grad():
        for lo in range(0, len(nxt), _CHUNK_ROWS):
            n_idx = nxt[lo:lo + _CHUNK_ROWS]
            act = coverage.actions[n_idx] if actions is None else actions[lo:lo + _CHUNK_ROWS]
            if isinstance(reward, TabledReward):
                value = reward.on_indices(prev[lo:lo + _CHUNK_ROWS], n_idx, act)
            elif isinstance(reward, TransitionReward):
                value = reward(coverage.states.index(prev[lo:lo + _CHUNK_ROWS]), act, coverage.states.index(n_idx))
            else:
                value = _total(reward(coverage.states.index(n_idx), act))
            out[lo:lo + len(n_idx)] = value.detach().double().cpu()
    if not torch.isfinite(out).all():
        raise ValueError(f"reward {getattr(reward, 'name', reward)!r} is not finite (NaN or inf) on the coverage")
    return out


def state_matrix(states: TaskState) -> Tensor:
    """[M, D] float64: every TaskState field but ``action``, flattened."""
    parts = [v.reshape(v.shape[0], -1).double().cpu() for k, v in states.items() if k != "action"]
    if not parts:
        raise ValueError("the coverage states have no field but 'action': nothing to compare states by")
    return torch.cat(parts, 1)


def _standardised(x: Tensor) -> Tensor:
    """Columns with zero mean and unit variance; constant columns dropped."""
    mean, std = x.mean(0), x.std(0, unbiased=False)
    keep = std > 1e-8 * (1.0 + mean.abs())
    return (x[:, keep] - mean[keep]) / std[keep]


# -- EPIC -------------------------------------------------------------------------------------------
def canonical_rewards(reward: RewardLike, coverage: Coverage, transitions: Tensor, *, gamma: float = DEFAULT_GAMMA,
                      num_samples: int = DEFAULT_SAMPLES, rng: Optional[np.random.Generator] = None) -> Tensor:
    """EPIC's C(R) on the given transitions (indices into coverage.prev/next) [K], float64.

    A Reward-protocol reward (state, action) -> (total, terms) is canonicalised exactly
    (r - E[r] over the coverage states and actions); a TransitionReward by Monte Carlo over
    ``num_samples`` independent (S, A, S') draws with ``rng``."""
    prev, nxt = coverage.prev[transitions], coverage.next[transitions]
    if not _reads_transitions(reward):
        on_d = _evaluate(reward, coverage, prev, nxt)
        # every expectation of C(R) is the constant E[r(S', A)]; it only shifts C(R), so its
        # sampling error never reaches the Pearson distance
        gen = rng if rng is not None else np.random.default_rng(0)
        m = coverage.actions.shape[0]
        s_idx, a_idx = (torch.as_tensor(gen.integers(0, m, size=num_samples), device=coverage.actions.device)
                        for _ in range(2))
        return on_d - _evaluate(reward, coverage, s_idx, s_idx, coverage.actions[a_idx]).mean()
    if rng is None:
        raise ValueError("canonicalizing a TransitionReward samples states and actions: "
                         "pass rng=np.random.default_rng(seed)")
    m = coverage.actions.shape[0]
    s_idx, a_idx, s2_idx = (torch.as_tensor(rng.integers(0, m, size=num_samples), device=coverage.actions.device)
                            for _ in range(3))
    sample_a = coverage.actions[a_idx]
    direct = _evaluate(reward, coverage, prev, nxt)
    from_next = _mean_over_samples(reward, coverage, nxt, sample_a, s2_idx)  # E[R(s', A, S')]
    from_prev = _mean_over_samples(reward, coverage, prev, sample_a, s2_idx)  # E[R(s, A, S')]
    constant = _evaluate(reward, coverage, s_idx, s2_idx, sample_a).mean()
    return direct + gamma * from_next - from_prev - gamma * constant


def _mean_over_samples(reward: TransitionReward, coverage: Coverage, first: Tensor, sample_a: Tensor,
                       s2_idx: Tensor) -> Tensor:
    """[K] mean_j R(state[first_k], A_j, state[S'_j])."""
    k, m = len(first), len(s2_idx)
    out = torch.empty(k, dtype=torch.float64)
    per_chunk = max(1, _CHUNK_ROWS // m)
    for lo in range(0, k, per_chunk):
        rows = first[lo:lo + per_chunk]
        b = len(rows)
        values = _evaluate(reward, coverage, rows.repeat_interleave(m), s2_idx.repeat(b), sample_a.repeat(b, 1))
        out[lo:lo + b] = values.reshape(b, m).mean(1)
    return out


def pearson_distance(x: Tensor, y: Tensor) -> float:
    """sqrt((1 - rho) / 2) of two samples [K]; ValueError if either is constant."""
    x, y = _pair(x, y, "pearson_distance")
    xc, yc = x - x.mean(), y - y.mean()
    _check_varies(x, y, xc, yc, "its EPIC/DARD distance is undefined (Pearson correlation of a constant)")
    rho = float((xc @ yc) / (xc.norm() * yc.norm()))
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))


def _pair(x, y, what: str) -> tuple[Tensor, Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64).flatten()
    y = torch.as_tensor(y, dtype=torch.float64).flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"{what} needs two samples of the same size >= 2, got {x.numel()} and {y.numel()}")
    return x, y


def _check_varies(x: Tensor, y: Tensor, xc: Tensor, yc: Tensor, why: str) -> None:
    scale = max(float(x.abs().max()), float(y.abs().max()), 1e-12) * math.sqrt(x.numel())
    for what, s in (("first", float(xc.norm())), ("second", float(yc.norm()))):
        if s <= 1e-9 * scale:
            raise ValueError(f"the {what} reward is constant on the coverage transitions: {why}; "
                             "use a more varied rollout")


def _choose(coverage: Coverage, max_transitions: int, rng: Optional[np.random.Generator]) -> Tensor:
    k = coverage.num_transitions
    if k < 2:
        raise ValueError(f"the coverage has {k} transitions; a distance needs at least 2: collect a longer rollout")
    if k <= max_transitions:
        return torch.arange(k, device=coverage.next.device)
    if rng is None:
        raise ValueError(f"the coverage has {k} > max_transitions={max_transitions} transitions to sample from: "
                         "pass rng=np.random.default_rng(seed)")
    return torch.as_tensor(np.sort(rng.choice(k, size=max_transitions, replace=False)), device=coverage.next.device)


def _check_args(gamma: float, num_samples: int = 1, max_transitions: int = 2) -> None:
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if num_samples < 1 or max_transitions < 2:
        raise ValueError(f"num_samples must be >= 1 and max_transitions >= 2, got {num_samples}, {max_transitions}")


def epic_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                  num_samples: int = DEFAULT_SAMPLES, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                  rng: Optional[np.random.Generator] = None) -> float:
    """EPIC distance in [0, 1] between two rewards (Reward protocol or TransitionReward) over a
    coverage; see the module docstring for what is sampled. ``rng`` draws the transitions (when
    there are more than ``max_transitions``) and the Monte Carlo samples."""
    _check_args(gamma, num_samples, max_transitions)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    chosen = _choose(coverage, max_transitions, rng)
    canon_a, canon_b = _epic_pair(reward_a, reward_b, coverage, chosen, gamma, num_samples, rng)
    return pearson_distance(canon_a, canon_b)


def _epic_pair(reward_a, reward_b, coverage, chosen, gamma, num_samples, rng) -> tuple[Tensor, Tensor]:
    seed = int(rng.integers(2**31)) if rng is not None else None

    def draws():  # the same sample draws for both rewards: their Monte Carlo errors partly cancel
        return np.random.default_rng(seed) if seed is not None else None

    return (canonical_rewards(reward_a, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws()),
            canonical_rewards(reward_b, coverage, chosen, gamma=gamma, num_samples=num_samples, rng=draws()))


# -- DARD -------------------------------------------------------------------------------------------
def nearest_transitions(coverage: Coverage, queries: Tensor, k: int) -> Tensor:
    """[Q, k] indices of the transitions whose start state is nearest to states[queries]
    (Euclidean distance of the standardised state fields): DARD's samples of T(s, A)."""
    k_all = coverage.num_transitions
    if k < 1:
        raise ValueError(f"neighbours must be >= 1, got {k}")
    k = min(k, k_all)
    z = _standardised(state_matrix(coverage.states))
    if z.shape[1] == 0:  # every state the same: every transition is a neighbour
        return torch.arange(k).repeat(len(queries), 1)
    starts, points = z[coverage.prev.cpu()], z[queries.cpu()]
    out = torch.empty(len(queries), k, dtype=torch.long)
    rows = max(1, (1 << 24) // max(1, k_all))
    for lo in range(0, len(queries), rows):
        dist = torch.cdist(points[lo:lo + rows], starts)
        out[lo:lo + rows] = dist.topk(k, dim=1, largest=False).indices
    return out


def dard_canonical_rewards(reward: RewardLike, coverage: Coverage, transitions: Tensor, *,
                           gamma: float = DEFAULT_GAMMA, neighbours: int = DEFAULT_NEIGHBOURS) -> Tensor:
    """DARD's C(R) on the given transitions [K] float64, T(s, A) from nearest neighbours."""
    prev, nxt = coverage.prev[transitions], coverage.next[transitions]
    near_s = nearest_transitions(coverage, prev, neighbours).to(coverage.next.device)  # (A, S') ~ T(s, .)
    if not _reads_transitions(reward):
        r_all = _evaluate(reward, coverage, coverage.prev, coverage.next)  # r(s'_j, a_j) of every transition j
        return _evaluate(reward, coverage, prev, nxt) - r_all[near_s.cpu()].mean(1)
    near_s2 = nearest_transitions(coverage, nxt, neighbours).to(coverage.next.device)  # (A, S'') ~ T(s', .)
    k = near_s.shape[1]
    direct = _evaluate(reward, coverage, prev, nxt)
    a2 = s2 = coverage.next[near_s2]  # [K, k] S'' and the action taken into it (actions[next])
    from_next = _evaluate(reward, coverage, nxt.repeat_interleave(k), s2.flatten(),
                          coverage.actions[a2.flatten()]).reshape(-1, k).mean(1)  # E R(s', A, S'')
    s1 = coverage.next[near_s]
    from_prev = _evaluate(reward, coverage, prev.repeat_interleave(k), s1.flatten()).reshape(-1, k).mean(1)
    # E R(S', A, S''): S' from s's neighbours, (A, S'') from s''s neighbours, all k x k pairs
    first = s1.unsqueeze(2).expand(-1, k, k).flatten()
    second = s2.unsqueeze(1).expand(-1, k, k).flatten()
    act = coverage.actions[a2.unsqueeze(1).expand(-1, k, k).flatten()]
    cross = _evaluate(reward, coverage, first, second, act).reshape(-1, k * k).mean(1)
    return direct + gamma * from_next - from_prev - gamma * cross


def dard_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                  neighbours: int = DEFAULT_NEIGHBOURS, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                  rng: Optional[np.random.Generator] = None) -> float:
    """DARD distance in [0, 1]: the Pearson distance of DARD-canonicalised rewards (module docstring)."""
    _check_args(gamma, 1, max_transitions)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    chosen = _choose(coverage, max_transitions, rng)
    return pearson_distance(dard_canonical_rewards(reward_a, coverage, chosen, gamma=gamma, neighbours=neighbours),
                            dard_canonical_rewards(reward_b, coverage, chosen, gamma=gamma, neighbours=neighbours))


# -- STARC ------------------------------------------------------------------------------------------
FeatureFn = Callable[[TaskState], Tensor]



@dataclasses.dataclass(frozen=True)
class ValueFeatures:
    """Features of every coverage state [M, F] for the value fit; the first ``free`` columns carry no
    ridge penalty (a shaping whose Phi they span is removed exactly), the rest carry ``ridge``."""

    matrix: Tensor
    free: int
    ridge: float = 0.0


def value_features(coverage: Coverage, num_random: int = DEFAULT_VALUE_FEATURES, seed: int = 0,
                   ridge: float = DEFAULT_RIDGE) -> ValueFeatures:
    """The default value features: unpenalised, a constant and the whitened state fields (their
    principal components, exact linear dependencies such as ee_to_goal = goal_pos - ee_pos dropped);
    ridge-penalised, ``num_random`` random Fourier features of the standardised fields (bandwidth
    sqrt(dims), frequencies drawn with ``seed``) for what is not linear in the state."""
    z = _standardised(state_matrix(coverage.states))
    ones = torch.ones(z.shape[0], 1, dtype=torch.float64)
    if z.shape[1] == 0:
        return ValueFeatures(ones, 1)
    u, sv, _ = torch.linalg.svd(z, full_matrices=False)
    keep = sv > 1e-6 * float(sv[0])
    linear = u[:, keep] * math.sqrt(z.shape[0])  # unit variance, uncorrelated
    parts = [ones, linear]
    if num_random > 0:
        gen = torch.Generator().manual_seed(int(seed))
        w = torch.randn(z.shape[1], num_random, generator=gen, dtype=torch.float64) / math.sqrt(z.shape[1])
        b = 2 * math.pi * torch.rand(num_random, generator=gen, dtype=torch.float64)
        parts.append(math.sqrt(2.0) * torch.cos(z @ w + b))
    return ValueFeatures(torch.cat(parts, 1), 1 + linear.shape[1], ridge)


def lstd_values(features: Union[Tensor, ValueFeatures], prev: Tensor, nxt: Tensor, rewards: Tensor,
                gamma: float, weights: Optional[Tensor] = None) -> Tensor:
    """[M] LSTD(0) value of every state: features [M, F] (or ValueFeatures, whose penalised columns
    get the ridge), transitions (prev, nxt) [K] with rewards [K] (or [K, R]: values [M, R]),
    optionally weighted [K] (a bootstrap resample)."""
    feats = features if isinstance(features, ValueFeatures) else ValueFeatures(torch.as_tensor(features).double(),
                                                                               features.shape[1])
    prev, nxt = prev.cpu(), nxt.cpu()
    w = torch.ones(len(prev), dtype=torch.float64) if weights is None else weights.double()
    keep = w > 0
    w = (w[keep] / w[keep].sum()).unsqueeze(1)
    phi, phi2 = feats.matrix[prev[keep]], feats.matrix[nxt[keep]]
    a = (phi * w).T @ (phi - gamma * phi2)
    b = (phi * w).T @ rewards.reshape(len(prev), -1)[keep]
    penalty = torch.zeros(a.shape[0], dtype=a.dtype)
    penalty[feats.free:] = feats.ridge
    values = feats.matrix @ torch.linalg.lstsq(a + torch.diag(penalty), b, driver="gelsd").solution
    return values if rewards.ndim > 1 else values[:, 0]


def val_canonical_rewards(reward: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                          features: Optional[Union[Tensor, FeatureFn, ValueFeatures]] = None) -> Tensor:
    """STARC's Value-Adjusted Levelling c(R)(s, a, s') = R(s, a, s') + gamma V(s') - V(s) on every
    coverage transition [K] float64, V the LSTD value of R under the coverage's policy.
    ``features``: [M, F] per coverage state (no ridge), fn(TaskState) -> [M, F], or ValueFeatures;
    default value_features(coverage)."""
    feats = _features(coverage, features)
    raw = _evaluate(_bound(reward, coverage), coverage, coverage.prev, coverage.next).unsqueeze(1)
    return _val_from(feats, coverage, raw, gamma)[:, 0]


def _features(coverage: Coverage, features) -> ValueFeatures:
    if features is None:
        return value_features(coverage)
    if isinstance(features, ValueFeatures):
        return features
    feats = features(coverage.states) if callable(features) else features
    feats = torch.as_tensor(feats).double().cpu()
    m = coverage.actions.shape[0]
    if feats.ndim != 2 or feats.shape[0] != m:
        raise ValueError(f"value features must be [M, F] with M={m} coverage states, got {list(feats.shape)}")
    return ValueFeatures(feats, feats.shape[1])


def starc_from_canonical(x: Tensor, y: Tensor) -> float:
    """(1/2) || x / |x| - y / |y| ||, norms the L2 norm over the sample (STARC with n = m = L2); a
    canonical reward of norm 0 (the reward was only shaping and a constant) normalises to 0."""
    x, y = _pair(x, y, "starc_from_canonical")
    return _weighted_starc(x, y, torch.ones_like(x))


def starc_distance(reward_a: RewardLike, reward_b: RewardLike, coverage: Coverage, *, gamma: float = DEFAULT_GAMMA,
                   features: Optional[Union[Tensor, FeatureFn]] = None, max_transitions: Optional[int] = None,
                   rng: Optional[np.random.Generator] = None) -> float:
    """STARC distance in [0, 1] with VAL canonicalisation and L2 normalisation and metric (module
    docstring). V is fitted on every coverage transition; the distance is measured on all of them,
    or on ``max_transitions`` drawn with ``rng``."""
    _check_args(gamma)
    reward_a, reward_b = _bound(reward_a, coverage), _bound(reward_b, coverage)
    canon_a = val_canonical_rewards(reward_a, coverage, gamma=gamma, features=features)
    canon_b = val_canonical_rewards(reward_b, coverage, gamma=gamma, features=features)
    chosen = _choose(coverage, max_transitions or coverage.num_transitions, rng).cpu()
    return starc_from_canonical(canon_a[chosen], canon_b[chosen])


# -- all three, with confidence intervals -------------------------------------------------------------
def reward_distances(spec, reward_a, reward_b, transitions: Coverage, *, gamma: float = DEFAULT_GAMMA,
                     seed: int = 0, max_transitions: int = DEFAULT_MAX_TRANSITIONS,
                     num_samples: int = DEFAULT_SAMPLES, neighbours: int = DEFAULT_NEIGHBOURS,
                     bootstrap: int = DEFAULT_BOOTSTRAP, confidence: float = 0.95) -> dict:
    """EPIC, DARD and STARC between two rewards of task ``spec`` on sampled transitions.

    reward_a, reward_b: reward specs (``hand``, ``sparse``, ``FILE.py``, ``pref:RUN``, ``A+B``, ...;
    robreward.rewards.spec) or Reward objects / TransitionRewards. transitions: a Coverage
    (``collect_transitions(env, steps)`` or ``Coverage.from_rollout``).

    Returns {"epic": float | None, "dard": ..., "starc": ..., "epic_ci": [lo, hi] | None, "dard_ci",
    "starc_ci", "transitions": K measured on, "episodes": bootstrap groups, "gamma", "confidence",
    "bootstrap", "notes": {metric: why it is None}}: a metric is None (with its note) where it is
    undefined, e.g. EPIC/DARD of a reward constant on the transitions. The intervals resample
    episodes ``bootstrap`` times (0: none); STARC refits its value function on every resample."""
    from robreward.rewards.base import resolve_reward

    _check_args(gamma, num_samples, max_transitions)
    if bootstrap < 0 or not (0.0 < confidence < 1.0):
        raise ValueError(f"bootstrap must be >= 0 and confidence in (0, 1), got {bootstrap}, {confidence}")
    rewards = [r if isinstance(r, (TransitionReward, TabledReward)) else
               bind_to_coverage(r if needs_tables(r) else resolve_reward(r, spec), transitions, spec)
               for r in (reward_a, reward_b)]
    rng = np.random.default_rng(seed)
    chosen = _choose(transitions, max_transitions, rng)
    canon: dict[str, tuple[Tensor, Tensor]] = {}
    notes: dict[str, str] = {}
    canon["epic"] = _epic_pair(rewards[0], rewards[1], transitions, chosen, gamma, num_samples, rng)
    canon["dard"] = tuple(dard_canonical_rewards(r, transitions, chosen, gamma=gamma, neighbours=neighbours)
                          for r in rewards)  # type: ignore[assignment]
    # STARC: both rewards' values in one LSTD solve, on every transition
    feats = value_features(transitions)
    raw = torch.stack([_evaluate(r, transitions, transitions.prev, transitions.next) for r in rewards], 1)
    pick = chosen.cpu()
    val = _val_from(feats, transitions, raw, gamma)[pick]
    canon["starc"] = (val[:, 0], val[:, 1])
    groups = transitions.groups
    out: dict = {"transitions": len(chosen), "episodes": int(groups[pick].unique().numel()), "gamma": gamma,
                 "confidence": confidence, "bootstrap": bootstrap}
    for metric in METRICS:
        x, y = canon[metric]
        try:
            out[metric] = starc_from_canonical(x, y) if metric == "starc" else pearson_distance(x, y)
        except ValueError as err:
            out[metric], notes[metric] = None, str(err)
    intervals = _bootstrap(canon, feats, transitions, raw, pick, gamma, bootstrap, confidence, rng) if bootstrap else {}
    for metric in METRICS:
        out[f"{metric}_ci"] = intervals.get(metric) if out[metric] is not None else None
    out["notes"] = notes
    return out


def _val_from(feats: ValueFeatures, coverage: Coverage, raw: Tensor, gamma: float,
              weights: Optional[Tensor] = None) -> Tensor:
    """[K, R] VAL canonical rewards of raw rewards [K, R] on every transition (LSTD weighted by ``weights``)."""
    prev, nxt = coverage.prev.cpu(), coverage.next.cpu()
    values = lstd_values(feats, prev, nxt, raw, gamma, weights)
    return _snap_trivial(raw + gamma * values[nxt] - values[prev], raw)


def _snap_trivial(canonical: Tensor, raw: Tensor) -> Tensor:
    """Columns whose canonical reward is below TRIVIAL x the raw reward's RMS are set to 0: what is
    left of a reward that was only shaping and a constant is the value fit's round-off."""
    rms = lambda v: v.pow(2).mean(0).sqrt()  # noqa: E731
    trivial = rms(canonical) <= TRIVIAL * rms(raw)
    return torch.where(trivial, torch.zeros_like(canonical), canonical)


def _bootstrap(canon: dict, feats: ValueFeatures, coverage: Coverage, raw: Tensor, pick: Tensor, gamma: float,
               count: int, confidence: float, rng: np.random.Generator) -> dict[str, list[float]]:
    """Percentile intervals over ``count`` resamples of the episodes: each resample weights every
    transition by how often its episode was drawn; EPIC and DARD keep their canonical rewards,
    STARC refits the value function with the weights."""
    groups = coverage.groups
    num_groups = int(groups.max()) + 1
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(count):
        counts = torch.as_tensor(np.bincount(rng.integers(0, num_groups, size=num_groups), minlength=num_groups),
                                 dtype=torch.float64)
        weights = counts[groups]
        w = weights[pick]
        if float(w.sum()) <= 0:
            continue
        for metric in ("epic", "dard"):
            values[metric].append(_weighted_pearson_distance(*canon[metric], w))
        val = _val_from(feats, coverage, raw, gamma, weights)[pick]
        values["starc"].append(_weighted_starc(val[:, 0], val[:, 1], w))
    tail = 100 * (1 - confidence) / 2
    out = {}
    for metric, vals in values.items():
        finite = np.array([v for v in vals if math.isfinite(v)])
        if len(finite):
            out[metric] = [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]
    return out


def _weighted_pearson_distance(x: Tensor, y: Tensor, w: Tensor) -> float:
    w = w / w.sum()
    xc, yc = x - (w * x).sum(), y - (w * y).sum()
    denom = math.sqrt(float((w * xc * xc).sum()) * float((w * yc * yc).sum()))
    if denom <= 0:
        return float("nan")
    rho = float((w * xc * yc).sum()) / denom
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))


def _weighted_starc(x: Tensor, y: Tensor, w: Tensor) -> float:
    """STARC of canonical rewards under transition weights w; a zero canonical reward stays 0 (VAL's
    near-zero ones were set to exactly 0 by _snap_trivial)."""
    w = w / w.sum()

    def unit(v):
        norm = math.sqrt(float((w * v * v).sum()))
        return v / norm if norm > 0 else torch.zeros_like(v)

    d = unit(x) - unit(y)
    return 0.5 * math.sqrt(float((w * d * d).sum()))


__all__ = ["Coverage", "DEFAULT_GAMMA", "METRICS", "TransitionReward", "canonical_rewards", "collect_transitions",
           "dard_canonical_rewards", "dard_distance", "epic_distance", "lstd_values", "nearest_transitions",
           "pearson_distance", "reward_distances", "starc_distance", "starc_from_canonical", "state_matrix",
           "val_canonical_rewards", "value_features"]
