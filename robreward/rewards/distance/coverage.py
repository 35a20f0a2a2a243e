"""Transitions to measure reward distances on: the Coverage of sampled states, actions and transitions,
collecting one from a BatchedEnv, and evaluating a reward on it (robreward.rewards.distance's docstring
says what is sampled). The defaults shared by the distances are here too."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

import numpy as np
import torch

from robreward.envs.spec import TaskState
from robreward.rewards.state_tables import TabledReward, bind_to_coverage

Tensor = torch.Tensor
DEFAULT_GAMMA = 0.99
DEFAULT_SAMPLES = 256
DEFAULT_MAX_TRANSITIONS = 4096
DEFAULT_NEIGHBOURS = 8
_CHUNK_ROWS = 1 << 16  # reward evaluations per batch


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
