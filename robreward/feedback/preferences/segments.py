"""Segments of rollouts, segment pairs and query selection.

    rollout, obs = collect_rollout(env, policy, num_steps=200)           # Rollout [T, N, ...]
    segments = cut_segments(rollout, length=50, features=model.featurizer, num=2000, rng=rng)
    queries = choose_queries(segments, 64, "disagreement", rng, model=model)   # SegmentPairs

Episode boundaries. Auto-reset is same-step: step t of world n is the transition just taken
(post-step TaskState, action, hand reward) and ``done[t, n]`` marks the last step of its
episode; step t + 1 already belongs to the next episode. A segment never crosses a boundary:
it is H consecutive steps of one world inside one episode. Per world, a rollout splits into
runs (maximal stretches of one episode inside the rollout):

- a run of L >= H steps gives every start that fits (full segments, no padding);
- a run of L < H steps that ends in termination (the task ended the episode: a fall, a
  failure) gives one segment of L real steps padded to H. The padded steps repeat the last
  step's features and carry ground-truth reward 0 and ``mask`` False; reward models sum their
  predictions over masked-in steps only, so both the teacher and the model read "the episode
  ended here, nothing more was earned" (an absorbing state of reward 0). Dropping these would
  hide every early failure from the teacher whenever episodes end before H steps;
- a run of L < H steps cut by the time limit or by the rollout's first/last step is dropped:
  what the rest of that episode would have earned is unknown, and a zero-padded return would
  compare it unfairly with full segments.

When no segment fits (every run is shorter than H and none terminated) ``cut_segments``
raises a ValueError saying why; it never returns an empty batch silently.

Query selection (PEBBLE, Lee et al. 2021; B-Pref's sampling schemes): ``uniform`` draws random
pairs; ``disagreement`` and ``entropy`` draw a pool of ``pool_factor`` x as many random pairs
(B-Pref's ``large_batch``, 10) and keep the pairs the reward ensemble is least sure about:
``disagreement`` = std over ensemble members of P(sigma1 > sigma0) (B-Pref's
``disagreement_sampling``), ``entropy`` = entropy of the ensemble-mean P (B-Pref averages the
members' entropies instead; both rank near-even pairs first).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch

from robreward.envs.spec import TaskState

Tensor = torch.Tensor

QUERY_METHODS = ("uniform", "disagreement", "entropy")
SCHEDULES = ("constant", "linear")
PAIRINGS = ("any", "episode", "mixed")
"""Query pairs: any two segments, two of one episode, or half of each (sample_pairs ``groups``/``within``)."""
DEFAULT_POOL_FACTOR = 10
"""Candidate pairs per query for disagreement/entropy selection (B-Pref ``large_batch``)."""


# -- rollouts ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rollout:
    """T steps of N worlds of a BatchedEnv, step-major. See the module docstring for ``done``."""

    states: Mapping[str, Tensor]
    """Post-step TaskState fields (``info["final_state"]``): name -> [T, N, ...]."""
    actions: Tensor
    """[T, N, act_dim] the actions applied (after clipping)."""
    rewards: Tensor
    """[T, N] ground-truth per-step reward (the task's hand reward), what a simulated teacher reads."""
    terminated: Tensor
    """[T, N] bool: the task ended the episode at this step."""
    truncated: Tensor
    """[T, N] bool: the time limit ended the episode at this step."""
    sim_states: Optional[Tensor] = None
    """[T, N, nstate] float64 full MuJoCo states before each step (replay/rendering of segments), or None."""
    post_sim_states: Optional[Tensor] = None
    """[T, N, nstate] float64 full MuJoCo states as each step left them, before any auto-reset (the state the
    post-step TaskState describes: what an image reward model sees at that step), or None."""

    def __post_init__(self):
        if self.rewards.ndim != 2:
            raise ValueError(f"Rollout.rewards must be [T, N], got shape {list(self.rewards.shape)}")
        tn = tuple(self.rewards.shape)
        checks = {"actions": self.actions, "terminated": self.terminated, "truncated": self.truncated,
                  **{f"states[{k!r}]": v for k, v in self.states.items()}}
        if self.sim_states is not None:
            checks["sim_states"] = self.sim_states
        if self.post_sim_states is not None:
            checks["post_sim_states"] = self.post_sim_states
        for what, value in checks.items():
            if tuple(value.shape[:2]) != tn:
                raise ValueError(f"Rollout.{what} must start with [T, N] = {list(tn)}, got {list(value.shape)}")
        if not self.states:
            raise ValueError("Rollout.states is empty: record the post-step TaskState (info['final_state'])")

    @property
    def num_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def dones(self) -> Tensor:
        return self.terminated | self.truncated

    def state_at(self, steps: Tensor, worlds: Tensor) -> TaskState:
        """The post-step TaskState of (step, world) index pairs, as a batch [len(steps), ...]."""
        return TaskState({k: v[steps, worlds] for k, v in self.states.items()})


class _PostStepStates:
    """A reward wrapper that keeps the full state of every world as the step leaves it: BatchedEnv computes the
    reward on the post-step state before it auto-resets ended worlds, so this is the one place where an ended
    world's last state can be read. ``parts`` keeps the wrapped reward's reset and bind hooks."""

    def __init__(self, env, reward):
        self.env, self.reward, self.parts = env, reward, (reward,)
        self.name = getattr(reward, "name", "reward")
        self.states: list[Tensor] = []

    def __call__(self, state: TaskState, action: Tensor):
        full = self.env.get_state()
        self.states.append(full.detach().cpu().clone() if isinstance(full, Tensor) else torch.as_tensor(np.array(full)))
        return self.reward(state, action)


def collect_rollout(env, policy: Optional[Callable] = None, num_steps: int = 100, *, obs: Optional[Tensor] = None,
                    seed: int = 0, record_sim_states: bool = False,
                    record_post_states: bool = False) -> tuple[Rollout, Tensor]:
    """Run ``policy`` (obs [N, obs_dim] -> action [N, act_dim]; None: uniform random actions drawn
    with ``seed``) for ``num_steps`` steps of a BatchedEnv. Continues from ``obs`` (the env's
    current observation) or resets the env when None. Returns (rollout, the last obs).
    ``record_sim_states``: the full states before each step (``Rollout.sim_states``);
    ``record_post_states``: those each step leaves, before auto-reset (``Rollout.post_sim_states``)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    recorder = None
    if record_post_states:
        recorder = _PostStepStates(env, env.reward_fn)
        env.set_reward(recorder)
    try:
        rollout, obs = _collect(env, policy, num_steps, obs, seed, record_sim_states)
    finally:
        if recorder is not None:
            env.set_reward(recorder.reward)
    if recorder is not None:
        rollout = dataclasses.replace(rollout, post_sim_states=torch.stack(recorder.states))
    return rollout, obs


def _collect(env, policy, num_steps, obs, seed, record_sim_states) -> tuple[Rollout, Tensor]:
    if obs is None:
        obs, _ = env.reset()
    gen = torch.Generator().manual_seed(int(seed))
    low, high = env.action_low.cpu(), env.action_high.cpu()
    states, actions, rewards, terms, truncs, sims = {}, [], [], [], [], []
    with torch.no_grad():
        for _ in range(int(num_steps)):
            if record_sim_states:
                full = env.get_state()
                full = full.detach().cpu().clone() if isinstance(full, Tensor) else torch.as_tensor(np.array(full))
                sims.append(full)
            if policy is None:
                action = low + (high - low) * torch.rand(env.num_envs, env.act_dim, generator=gen)
            else:
                action = policy(obs)
                action = action[0] if isinstance(action, tuple) else action  # (action, extras) wrappers
                action = action if isinstance(action, Tensor) else torch.as_tensor(np.asarray(action))
            obs, _, terminated, truncated, info = env.step(action.to(env.device, torch.float32))
            for name, value in info["final_state"].items():
                states.setdefault(name, []).append(value)
            actions.append(info["final_state"]["action"])
            rewards.append(info["hand_reward"])
            terms.append(terminated)
            truncs.append(truncated)
    rollout = Rollout(states={k: torch.stack(v) for k, v in states.items()}, actions=torch.stack(actions),
                      rewards=torch.stack(rewards).float(), terminated=torch.stack(terms),
                      truncated=torch.stack(truncs), sim_states=torch.stack(sims) if record_sim_states else None)
    return rollout, obs


# -- segments ------------------------------------------------------------------------------
class SegmentBatch(NamedTuple):
    """B segments of H steps. Padded steps (past an episode's termination) have mask False."""

    features: Tensor  # [B, H, F] reward-model input per step
    rewards: Tensor  # [B, H] ground-truth reward per step (0 on padded steps)
    mask: Tensor  # [B, H] bool, True on real steps
    world: Tensor  # [B] long: the world each segment comes from (-1 if none)
    start: Tensor  # [B] long: rollout step of the segment's first step (-1 if none)
    frames: Optional[Tensor] = None  # [B, H] long: each step's row in a FrameBank (image reward models), or None

    @classmethod
    def from_features(cls, features: Tensor, rewards: Optional[Tensor] = None,
                      mask: Optional[Tensor] = None) -> "SegmentBatch":
        """A batch made from feature tensors alone (tests, offline data): no rollout provenance."""
        if features.ndim != 3:
            raise ValueError(f"features must be [B, H, F], got shape {list(features.shape)}")
        b, h, _ = features.shape
        rewards = torch.zeros(b, h) if rewards is None else rewards
        mask = torch.ones(b, h, dtype=torch.bool) if mask is None else mask.to(torch.bool)
        none = torch.full((b,), -1, dtype=torch.long)
        return cls(features.float(), rewards.float(), mask, none, none.clone())

    @property
    def size(self) -> int:
        return int(self.features.shape[0])

    @property
    def length(self) -> int:
        return int(self.features.shape[1])

    @property
    def returns(self) -> Tensor:
        """[B] ground-truth segment returns."""
        return (self.rewards * self.mask).sum(1)

    def index(self, rows) -> "SegmentBatch":
        return SegmentBatch(*(None if x is None else x[rows] for x in self))

    def to(self, device) -> "SegmentBatch":
        return SegmentBatch(*(None if x is None else x.to(device) for x in self))


class SegmentPairs(NamedTuple):
    """B queries: (first, second) = (sigma0, sigma1); a label is P(sigma1 preferred)."""

    first: SegmentBatch
    second: SegmentBatch

    @property
    def size(self) -> int:
        return self.first.size

    def index(self, rows) -> "SegmentPairs":
        return SegmentPairs(self.first.index(rows), self.second.index(rows))

    def to(self, device) -> "SegmentPairs":
        return SegmentPairs(self.first.to(device), self.second.to(device))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """numpy arrays named ``{first|second}_{field}``, for np.savez (``from_arrays`` reads them back)."""
        return {f"{side}_{name}": getattr(getattr(self, side), name).cpu().numpy()
                for side in SegmentPairs._fields for name in SegmentBatch._fields
                if getattr(getattr(self, side), name) is not None}

    @staticmethod
    def from_arrays(data, rows=None) -> "SegmentPairs":
        """The pairs in ``data`` (a mapping such as an open np.load), only ``rows`` when given (an optional field
        such as ``frames`` that is not there is None)."""
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
        names = set(getattr(data, "files", None) or data.keys())
        return SegmentPairs(*(SegmentBatch(*(torch.as_tensor(pick(data[f"{side}_{name}"]))
                                             if f"{side}_{name}" in names else None
                                             for name in SegmentBatch._fields)) for side in SegmentPairs._fields))


def cat_pairs(pairs: Sequence[SegmentPairs]) -> SegmentPairs:
    """Concatenate labeled rounds of queries (all with the same segment length and features)."""
    if not pairs:
        raise ValueError("cat_pairs needs at least one SegmentPairs")
    lengths = {(p.first.length, p.first.features.shape[-1]) for p in pairs}
    if len(lengths) > 1:
        raise ValueError(f"cannot concatenate pairs of different (segment length, feature size): {sorted(lengths)}")
    def cat(parts):
        if all(x is None for x in parts):
            return None
        if any(x is None for x in parts):
            raise ValueError("cannot concatenate pairs with frame rows and pairs without (image and state inputs)")
        return torch.cat(parts)

    return SegmentPairs(*(SegmentBatch(*(cat([getattr(p, side)[i] for p in pairs])
                                         for i in range(len(SegmentBatch._fields))))
                          for side in ("first", "second")))


def segment_candidates(rollout: Rollout, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every segment a rollout allows: (world [K], start [K], real steps [K]); see the module docstring."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"segment length must be an integer >= 1, got {length!r}")
    dones = rollout.dones.cpu().numpy()
    terminated = rollout.terminated.cpu().numpy()
    t_total = rollout.num_steps
    worlds, starts, lengths = [], [], []
    for w in range(rollout.num_envs):
        ends = np.flatnonzero(dones[:, w])
        run_starts = np.concatenate([[0], ends + 1])
        run_ends = np.concatenate([ends, [t_total - 1]])
        for a, b in zip(run_starts, run_ends):
            if a > b:  # the rollout ended right after an episode end
                continue
            run = b - a + 1
            if run >= length:
                s = np.arange(a, b - length + 2)
                worlds.append(np.full(len(s), w))
                starts.append(s)
                lengths.append(np.full(len(s), length))
            elif terminated[b, w]:
                worlds.append(np.array([w]))
                starts.append(np.array([a]))
                lengths.append(np.array([run]))
    if not worlds:
        return (np.zeros(0, np.int64),) * 3
    return tuple(np.concatenate(x).astype(np.int64) for x in (worlds, starts, lengths))


def cut_segments(rollout: Rollout, length: int, features: Callable[[TaskState, Tensor], Tensor], *,
                 num: Optional[int] = None, rng: Optional[np.random.Generator] = None) -> SegmentBatch:
    """Segments of ``length`` steps: all of them (num=None), or ``num`` drawn uniformly (with
    replacement when fewer exist) with ``rng``. ``features(state, action) -> [B, F]`` is the reward
    model's featurizer (``PreferenceReward.featurizer``)."""
    worlds, starts, lengths = segment_candidates(rollout, length)
    if len(worlds) == 0:
        longest = _longest_run(rollout)
        raise ValueError(
            f"no segment of {length} steps fits in this rollout ({rollout.num_steps} steps x {rollout.num_envs} "
            f"worlds): its longest stretch inside one episode has {longest} steps and no shorter episode ended by "
            "termination; use a shorter segment length or collect a longer rollout")
    if num is not None:
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
            raise ValueError(f"num must be an integer >= 1 or None, got {num!r}")
        if rng is None:
            raise ValueError("cut_segments(num=...) samples segments: pass rng=np.random.default_rng(seed)")
        pick = rng.choice(len(worlds), size=int(num), replace=int(num) > len(worlds))
        worlds, starts, lengths = worlds[pick], starts[pick], lengths[pick]
    offsets = np.arange(length)
    real = offsets[None, :] < lengths[:, None]  # [B, H]
    steps = starts[:, None] + np.minimum(offsets[None, :], lengths[:, None] - 1)  # padding repeats the last step
    step_idx = torch.as_tensor(steps.reshape(-1), device=rollout.rewards.device)
    world_idx = torch.as_tensor(np.repeat(worlds, length), device=rollout.rewards.device)
    state = rollout.state_at(step_idx, world_idx)
    with torch.no_grad():
        feats = features(state, rollout.actions[step_idx, world_idx])
    b = len(worlds)
    mask = torch.as_tensor(real, device=rollout.rewards.device)
    rewards = rollout.rewards[step_idx, world_idx].reshape(b, length).float() * mask
    return SegmentBatch(feats.reshape(b, length, -1).float(), rewards, mask,
                        torch.as_tensor(worlds), torch.as_tensor(starts))


def with_frame_rows(segments: SegmentBatch, offset: int, num_worlds: int) -> SegmentBatch:
    """``segments`` of a rollout of ``num_worlds`` worlds whose post-step states were added to a FrameBank at row
    ``offset`` (step-major: row offset + t * num_worlds + world), with each step's frame row (padded steps repeat
    the last real step's, as their features do)."""
    if bool((segments.world < 0).any()) or bool((segments.start < 0).any()):
        raise ValueError("segments without rollout provenance (world/start -1) have no frames: cut them from a "
                         "rollout (cut_segments)")
    h = segments.length
    real = segments.mask.long().sum(1).clamp_min(1).cpu()
    steps = segments.start.cpu()[:, None] + torch.minimum(torch.arange(h)[None, :], real[:, None] - 1)
    rows = int(offset) + steps * int(num_worlds) + segments.world.cpu()[:, None]
    return segments._replace(frames=rows.to(segments.mask.device))


def _longest_run(rollout: Rollout) -> int:
    dones = rollout.dones.cpu().numpy()
    best = 0
    for w in range(rollout.num_envs):
        ends = np.concatenate([[-1], np.flatnonzero(dones[:, w]), [rollout.num_steps - 1]])
        best = max(best, int(np.diff(ends).max()))
    return best


def segment_episodes(rollout: Rollout, segments: SegmentBatch) -> np.ndarray:
    """[B] an id of the episode each segment of ``rollout`` lies in (world and how many episodes of
    that world ended before the segment's first step); -1 for segments without provenance."""
    dones = rollout.dones.cpu().numpy().astype(np.int64)
    ended_before = np.cumsum(dones, axis=0) - dones  # [T, N] episodes of the world finished before step t
    world, start = segments.world.cpu().numpy(), segments.start.cpu().numpy()
    known = (world >= 0) & (start >= 0)
    ids = np.full(len(world), -1, dtype=np.int64)
    ids[known] = world[known] * (rollout.num_steps + 1) + ended_before[start[known], world[known]]
    return ids


def sample_pairs(segments: SegmentBatch, num_pairs: int, rng: np.random.Generator,
                 groups: Optional[np.ndarray] = None, within: float = 1.0) -> SegmentPairs:
    """``num_pairs`` random pairs of two different segments (the same one twice only if B = 1).

    ``groups`` [B] (e.g. ``segment_episodes``): for a share ``within`` of the pairs, the second
    segment is drawn from the first's group (the same episode: the same initial state, object and
    goal), so the pair differs by what the policy did rather than by the luck of the reset; a
    segment alone in its group is paired with any other."""
    if not 0.0 <= within <= 1.0:
        raise ValueError(f"within must be a share in [0, 1], got {within!r}")
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, (int, np.integer)) or num_pairs < 1:
        raise ValueError(f"num_pairs must be an integer >= 1, got {num_pairs!r}")
    b = segments.size
    if b == 0:
        raise ValueError("no segments to pair: cut_segments returned an empty batch")
    i = rng.integers(0, b, size=int(num_pairs))
    if b == 1:
        j = i.copy()
    else:  # j != i: shift by 1..b-1
        j = (i + rng.integers(1, b, size=int(num_pairs))) % b
    if groups is not None and b > 1:
        groups = np.asarray(groups)
        if groups.shape != (b,):
            raise ValueError(f"groups must have one id per segment ({b}), got shape {list(groups.shape)}")
        order = np.argsort(groups, kind="stable")  # members of a group are contiguous in `order`
        _, first, size = np.unique(groups[order], return_index=True, return_counts=True)
        rank = np.empty(b, dtype=np.int64)
        rank[order] = np.arange(b)
        which = np.searchsorted(first, rank[i], side="right") - 1  # the group of each i
        lo, n = first[which], size[which]
        shift = rng.integers(1, np.maximum(n, 2))  # 1..n-1: another member of the group
        own = (n > 1) & (rng.random(len(i)) < within)
        j = np.where(own, order[lo + (rank[i] - lo + shift) % np.maximum(n, 1)], j)
    return SegmentPairs(segments.index(torch.as_tensor(i)), segments.index(torch.as_tensor(j)))


# -- query selection -----------------------------------------------------------------------
def query_scores(pairs: SegmentPairs, method: str, model=None) -> Tensor:
    """[B] how informative each pair is by ``method`` (higher first); uniform scores 0."""
    if method not in QUERY_METHODS:
        raise ValueError(f"unknown query selection {method!r}: choose one of {', '.join(QUERY_METHODS)}")
    if method == "uniform":
        return torch.zeros(pairs.size)
    if model is None:
        raise ValueError(f"query selection {method!r} ranks pairs with the reward ensemble: pass model=... "
                         "(before the first model is trained, select 'uniform', as PEBBLE does)")
    return model.disagreement(pairs) if method == "disagreement" else model.entropy(pairs)


def choose_queries(segments: SegmentBatch, num_queries: int, method: str, rng: np.random.Generator, *,
                   model=None, pool_factor: int = DEFAULT_POOL_FACTOR,
                   groups: Optional[np.ndarray] = None, within: float = 1.0) -> SegmentPairs:
    """PEBBLE-style selection: draw ``pool_factor * num_queries`` random pairs (``num_queries`` for
    uniform; a share ``within`` of them inside ``groups`` when given, see ``sample_pairs``) and keep
    the ``num_queries`` with the highest score."""
    if method not in QUERY_METHODS:
        raise ValueError(f"unknown query selection {method!r}: choose one of {', '.join(QUERY_METHODS)}")
    if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, np.integer)) or pool_factor < 1:
        raise ValueError(f"pool_factor must be an integer >= 1, got {pool_factor!r}")
    pool_size = num_queries if method == "uniform" else num_queries * int(pool_factor)
    pool = sample_pairs(segments, pool_size, rng, groups, within)
    if method == "uniform":
        return pool
    scores = query_scores(pool, method, model).cpu()
    top = torch.argsort(scores, descending=True, stable=True)[:num_queries]
    return pool.index(top)


def query_schedule(budget: int, per_round: int, kind: str = "constant") -> list[int]:
    """Queries per feedback round, summing exactly to ``budget``.

    constant: ``per_round`` every round, the last round takes what is left.
    linear: B-Pref's ``reward_schedule=1`` (round size proportional to the training time left):
        K rounds of sizes decreasing linearly from ``per_round`` towards 0, K chosen so that
        they add up to the budget (about 2 * budget / per_round rounds); every round >= 1.
    """
    for name, value in (("budget", budget), ("per_round", per_round)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"query {name} must be an integer >= 1, got {value!r}")
    if kind not in SCHEDULES:
        raise ValueError(f"unknown query schedule {kind!r}: choose one of {', '.join(SCHEDULES)}")
    if budget < per_round:
        raise ValueError(f"query budget {budget} is smaller than one round of {per_round} queries: "
                         f"raise the budget to >= {per_round} or lower the queries per round")
    if kind == "constant":
        full, rest = divmod(int(budget), int(per_round))
        return [int(per_round)] * full + ([rest] if rest else [])
    rounds = min(int(budget), max(1, math.ceil(2 * budget / per_round - 1)))
    weights = np.array([(rounds - k) / rounds for k in range(rounds)])
    sizes = _round_to_total(weights * budget / weights.sum(), int(budget))
    return [int(s) for s in sizes if s > 0]


def _round_to_total(values: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding of values (len <= total) to integers >= 1 that sum to total."""
    base = np.maximum(np.floor(values).astype(np.int64), 1)
    by_remainder = np.argsort(-(values - np.floor(values)), kind="stable")
    k = 0
    while base.sum() < total:  # hand the missing units to the largest remainders
        base[by_remainder[k % len(base)]] += 1
        k += 1
    while base.sum() > total:  # take units from the largest rounds (never below 1)
        base[int(np.argmax(base))] -= 1
    return base


__all__ = ["DEFAULT_POOL_FACTOR", "PAIRINGS", "QUERY_METHODS", "Rollout", "SCHEDULES", "SegmentBatch", "SegmentPairs",
           "cat_pairs", "choose_queries", "collect_rollout", "cut_segments", "query_schedule", "query_scores",
           "sample_pairs", "segment_candidates", "segment_episodes", "with_frame_rows"]
