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


def resolve_reward(reward, spec: TaskSpec) -> Reward:
    """`hand`, `sparse`, a Reward object, a path to a reward program file, or `pref:RUN` (the reward
    learned by a preference run: its last round's model; or `pref:MODEL.pt`)."""
    if reward is None or reward == "hand":
        return HandReward(spec)
    if reward == "sparse":
        return SparseReward(spec)
    if isinstance(reward, str) and reward.endswith(".py"):
        from robreward.rewards.program import load_reward_program

        return load_reward_program(reward, spec)
    if isinstance(reward, str) and reward.startswith("pref:"):
        from robreward.feedback.preferences.model import load_preference_reward

        return load_preference_reward(reward[len("pref:"):], spec)
    if callable(reward):
        return reward
    raise ValueError(
        f"unknown reward {reward!r}: use 'hand', 'sparse', a reward file path ending in .py, 'pref:RUN' "
        "(a `robreward prefs train` run directory), or a Reward object (state, action) -> (total, terms)"
    )
