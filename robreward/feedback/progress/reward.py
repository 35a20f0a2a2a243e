"""`progress:RUN` as a reward: potential-based shaping with the learned progress Φ.

    r'(s, a, s') = r(s, a, s') + γ Φ(s') − Φ(s)          (Ng, Harada & Russell 1999)

This Reward is only the shaping part (term ``progress_shaping``); it is added to a base reward with a
sum spec: ``sparse+progress:RUN`` or ``hand+progress:RUN``. A shaping term of this form changes every
policy's action values by −Φ(s) alone, so the optimal policy of the base reward is unchanged: dense
progress can speed learning up but cannot be exploited (a policy that stalls at high Φ earns nothing
from it: the term telescopes to γ^T Φ(s_T) − Φ(s_0) over an episode).

*Episode ends.* The telescoping, and so the invariance, holds only if Φ of a terminal state is 0: a
terminated episode has no future, and a nonzero Φ(s_T) would be a bonus (or a penalty) for ending
there that the base reward does not have, which changes what is optimal (e.g. it pays to fall off
early at a state of high progress). A time-out is not a termination: the episode is cut, not over,
and the trainer bootstraps γ V(s_T) there (rl/storage.py bootstrap_truncated), so the transition
keeps γ Φ(s_T) as any other; zeroing it would also reward or punish the clock.

*Which Φ(s).* Φ(s) is the previous state's progress of each world. The env tells the reward where an
episode starts: BatchedEnv calls ``on_reset(world_ids, state)`` after it resets worlds (reset, the
auto-reset of ended worlds, set_state, set_reward), and this reward stores Φ of those worlds' first
states. Called before any reset it raises: it would not know Φ(s).

γ is the trainer's discount: the PPO default 0.99 (robreward.rl.config.PPOConfig.gamma), or
``progress:RUN,gamma=G`` when training with another ``--ppo.gamma``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robreward.envs.spec import TaskSpec, TaskState


def _default_gamma() -> float:
    from robreward.rl.config import PPOConfig

    return float(PPOConfig.gamma)


class ProgressShaping:
    """``(state, action) -> (γ Φ(s') − Φ(s) [N], {"progress_shaping": same})``; see the module docstring."""

    def __init__(self, net, spec: TaskSpec, gamma: float | None = None, weight: float = 1.0, name: str = "progress"):
        self.net, self.spec, self.name = net, spec, name
        self.gamma = _default_gamma() if gamma is None else float(gamma)
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"progress shaping: gamma must be in (0, 1], got {self.gamma}")
        self.weight = float(weight)
        self.prev_phi: torch.Tensor | None = None  # Φ of each world's previous state [N]

    @torch.no_grad()
    def potential(self, state: TaskState) -> torch.Tensor:
        """weight * Φ(observe(state)) [N], on the state's device."""
        obs = self.spec.observe(state).to(torch.float32)
        if next(self.net.parameters()).device != obs.device:
            self.net.to(obs.device)
        return self.weight * self.net.phi(obs)

    def on_reset(self, world_ids: torch.Tensor, state: TaskState) -> None:
        """Worlds ``world_ids`` [n] start an episode at ``state`` (all N worlds' TaskState): keep their Φ."""
        phi = self.potential(state)
        if self.prev_phi is None or self.prev_phi.shape != phi.shape or self.prev_phi.device != phi.device:
            self.prev_phi = phi.clone()
        else:
            ids = world_ids.to(phi.device)
            self.prev_phi[ids] = phi[ids]

    def __call__(self, state: TaskState, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.prev_phi is None or self.prev_phi.shape[0] != action.shape[0]:
            raise RuntimeError("progress shaping needs Φ of each world's previous state: use it in a robreward "
                               "BatchedEnv (robreward.make(..., reward=...) or env.set_reward), which reports episode "
                               "starts through on_reset; call env.reset() first")
        phi_next = self.potential(state)
        terminated = self.spec.terminated(state).to(torch.bool)
        # Φ of a terminal state is 0 (module docstring); a time-out keeps γΦ(s') and is bootstrapped
        shaping = self.gamma * torch.where(terminated, torch.zeros_like(phi_next), phi_next) - self.prev_phi
        self.prev_phi = phi_next  # the env overwrites the worlds it resets through on_reset
        return shaping, {"progress_shaping": shaping}


def parse_arg(arg: str) -> tuple[str, dict]:
    """'RUN' or 'RUN,gamma=0.98,weight=2' -> (RUN, {gamma: 0.98, weight: 2.0})."""
    run, *options = arg.split(",")
    values = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key.strip() not in ("gamma", "weight"):
            raise ValueError(f"progress:{arg}: unknown option {option!r}; write progress:RUN, or "
                             "progress:RUN,gamma=G,weight=W")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"progress:{arg}: {key.strip()} must be a number, got {value!r}") from None
    return run, values


def load_progress_reward(arg: str, spec: TaskSpec) -> ProgressShaping:
    """The Reward of ``progress:RUN[,gamma=G][,weight=W]`` on task ``spec``."""
    from robreward.feedback.progress.run import load_progress_run

    run, options = parse_arg(arg)
    net, _, spec = load_progress_run(Path(run), spec)
    return ProgressShaping(net, spec, gamma=options.get("gamma"), weight=options.get("weight", 1.0),
                           name=f"progress:{arg}")
