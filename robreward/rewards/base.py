"""The Reward protocol shared by hand baselines, LLM reward programs and learned models.

    reward(state, action) -> (total [N], terms: dict[str, [N]])    terms sum to total

so any two rewards can be compared term by term.
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import torch

from robreward.envs.spec import TaskSpec, TaskState

Tensor = torch.Tensor


@runtime_checkable
class Reward(Protocol):
    """A batched reward over TaskState: ``(state, action[N, act_dim]) -> (total[N], terms)``."""

    name: str

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...


class HandReward:
    """A task's hand-engineered reward: sum of weight * term(state, action)."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.name = "hand"

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # per step, every world: a weight of 1 multiplies nothing, terms add left to right (no stack)
        terms = {t.name: t.fn(state, action) if t.weight == 1.0 else t.weight * t.fn(state, action)
                 for t in self.spec.reward_terms}
        values = iter(terms.values())
        total = next(values)
        for value in values:
            total = total + value
        return total, terms


class SparseReward:
    """The task's fitness as the only reward (the S of the human-normalized score)."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.name = "sparse"

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        fitness = self.spec.fitness(state).to(torch.float32)
        return fitness, {"fitness": fitness}


def check_reward_output(total, terms, num_envs: int, where: str = "reward") -> None:
    """Raise ValueError unless (total, terms) satisfies the Reward protocol for N worlds."""
    if not isinstance(total, torch.Tensor):
        raise ValueError(f"{where}: total must be a torch.Tensor, got {type(total).__name__}")
    if tuple(total.shape) != (num_envs,):
        raise ValueError(f"{where}: total must have shape [N]=[{num_envs}], got {list(total.shape)}")
    if not total.is_floating_point():
        raise ValueError(f"{where}: total must be a float tensor, got {total.dtype}")
    if not isinstance(terms, Mapping):
        raise ValueError(f"{where}: terms must be a dict of name -> tensor [N], got {type(terms).__name__}")
    for name, value in terms.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (num_envs,):
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{where}: term {name!r} must be a tensor of shape [{num_envs}], got {shape}")
    if not torch.isfinite(total).all():
        raise ValueError(f"{where}: total has non-finite values (NaN or inf)")
    if terms:
        summed = torch.stack([v.to(total.dtype) for v in terms.values()]).sum(0)
        tol = 1e-4 * (1.0 + total.abs())
        if ((summed - total).abs() > tol).any():
            worst = float((summed - total).abs().max())
            raise ValueError(f"{where}: terms do not sum to the total (max difference {worst:.3g})")


class SumReward:
    """The sum of several rewards (a ``hand+KIND:ARG`` spec): the totals add, and so do the term dicts
    (a term name two parts share is prefixed with its part's name)."""

    def __init__(self, parts: list, name: str):
        self.parts = parts
        self.name = name

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        terms: dict[str, Tensor] = {}
        for part in self.parts:
            part_total, part_terms = part(state, action)
            total = part_total if total is None else total + part_total
            for key, value in part_terms.items():
                terms[f"{getattr(part, 'name', 'part')}.{key}" if key in terms else key] = value
        assert total is not None, "a sum of rewards has at least one part"
        return total, terms


def resolve_reward(reward, spec: TaskSpec) -> Reward:
    """A Reward from a reward spec (`hand`, `sparse`, `FILE.py`, `KIND:ARG` of a registered source such as
    `pref:RUN`, or a sum `A+B`; see robreward.rewards.spec), or a Reward object itself."""
    from robreward.rewards.spec import RewardSpec, parse_reward_spec, reward_source, valid_forms

    if reward is None:
        return HandReward(spec)
    if not isinstance(reward, (str, RewardSpec)):
        if callable(reward):
            return reward
        raise ValueError(f"unknown reward {reward!r}: use one of {valid_forms()}, or a Reward object "
                         "(state, action) -> (total, terms)")
    parsed = parse_reward_spec(reward) if isinstance(reward, str) else reward
    if parsed.kind == "sum":
        return SumReward([resolve_reward(part, spec) for part in parsed.parts], name=str(parsed))
    if parsed.kind == "hand":
        return HandReward(spec)
    if parsed.kind == "sparse":
        return SparseReward(spec)
    if parsed.kind == "file":
        from robreward.rewards.program import load_reward_program

        return load_reward_program(parsed.arg, spec)
    source = reward_source(parsed.kind)
    if source is None:  # parse_reward_spec knew the kind: its provider went away since
        raise ValueError(f"reward source {parsed.kind!r} is not available: use one of {valid_forms()}")
    return source.load(parsed.arg, spec)
