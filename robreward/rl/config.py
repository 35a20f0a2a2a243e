"""Configuration of a training run: PPOConfig (the algorithm) and TrainConfig (the run).

Defaults follow rsl_rl / mjlab (ANCHORS.md "Simulation and PPO"), adapted to a few CPU cores:
64 worlds instead of 4096, and small MLPs that are cheap on CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

ALGOS = ("ppo", "sb3")
ACTIVATIONS = ("elu", "tanh", "relu")


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (rsl_rl defaults unless noted)."""

    num_steps: int = 32
    """Env steps per world per rollout (rsl_rl: 24); one update per rollout."""
    num_epochs: int = 10
    """Passes over each rollout (rsl_rl: 5). cheetah-run at 1M steps, 5 seeds, with desired_kl 0.02: 10 epochs
    returned 6155 (min 5487), 5 epochs 5722 (min 3890), at 2/3 of the speed."""
    num_minibatches: int = 4
    """Mini-batches per epoch (the rollout of num_envs * num_steps transitions is split in this many)."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate; adapted by KL when schedule == 'adaptive'."""
    schedule: str = "adaptive"
    """'adaptive' (KL-driven lr) or 'fixed'."""
    desired_kl: float = 0.02
    """Target KL: lr /= 1.5 when KL > 2x this, lr *= 1.5 when KL < 0.5x this (rsl_rl: 0.01; with reward
    scaling, 0.01 let the lr fall to min_lr on cheetah-run and returned 5502 over 3 seeds at 1M steps, 0.02
    returned 6193 on the same seeds)."""
    min_lr: float = 1e-5
    """Lower bound of the adaptive learning rate."""
    max_lr: float = 1e-2
    """Upper bound of the adaptive learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_ratio: float = 0.2
    """PPO policy-ratio clip."""
    clip_value_loss: bool = True
    """Clip the value loss around the rollout's values (rsl_rl: True)."""
    value_coef: float = 1.0
    """Weight of the value loss (rsl_rl: 1.0)."""
    entropy_coef: float = 0.001
    """Weight of the entropy bonus (rsl_rl: 0.01 at 4096 worlds; small here: with 64 worlds a larger bonus kept
    cheetah-run's policy noisy for longer)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    init_noise_std: float = 0.3
    """Initial std of the Gaussian policy (state-independent, learned log std). rsl_rl: 1.0; 0.3 reached
    ~1900 return on cheetah-run at 330k steps vs ~550 with 1.0 (rl-zoo3 uses 0.135), reach learns with both."""
    actor_hidden: tuple[int, ...] = (128, 128)
    """Actor MLP hidden sizes (128x128 is ~2x faster than 256x256 on 2 CPU cores)."""
    critic_hidden: tuple[int, ...] = (128, 128)
    """Critic MLP hidden sizes."""
    activation: str = "elu"
    """Hidden activation: elu, tanh or relu."""
    normalize_obs: bool = True
    """Empirical observation normalization (running mean/var, updated on rollouts)."""
    normalize_rewards: bool = True
    """Scale rewards by the running std of the discounted return (SB3 VecNormalize style). Without it the
    value targets of cheetah-run are in the hundreds and the clipped value loss (clip_ratio, in reward units)
    lets the critic move only 0.2 per update."""
    normalize_advantages: bool = True
    """Normalize advantages per mini-batch."""

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"unknown schedule {self.schedule!r}: choose one of adaptive, fixed")
        for name in ("num_steps", "num_epochs", "num_minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "actor_hidden", tuple(int(h) for h in self.actor_hidden))
        object.__setattr__(self, "critic_hidden", tuple(int(h) for h in self.critic_hidden))


@dataclass(frozen=True)
class TrainConfig:
    """One training run (what `robreward train` resolves its flags to; saved as config.yaml)."""

    task: str = "cheetah-run"
    """Task name in sims/ or a task folder."""
    reward: str = "hand"
    """Reward spec: hand, sparse, or a reward program file (*.py)."""
    num_envs: int = 64
    """Parallel worlds."""
    steps: int = 1_000_000
    """Env steps summed over all worlds."""
    seed: int = 0
    """Seeds torch, numpy and the env's reset distribution."""
    out: str = "runs/run"
    """Run directory (ARCHITECTURE.md layout)."""
    algo: str = "ppo"
    """ppo (robreward's batched PPO) or sb3 (Stable-Baselines3 PPO, rl-zoo3 hyperparameters)."""
    backend: str = "cpu"
    """Simulation backend: cpu or warp."""
    device: str = "cpu"
    """Torch device of the env tensors and the networks."""
    torch_threads: int = 1
    """torch intra-op threads (1 leaves the other core to the simulator's thread pool)."""
    checkpoint_every: int = 50
    """Keep a periodic checkpoint every this many updates (the latest is always written)."""
    latest_every: int = 10
    """Rewrite checkpoints/latest.pt every this many updates."""
    eval_episodes: int = 100
    """Episodes of the final evaluation (0 skips it)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Algorithm hyperparameters."""
    init_from_demos: str | None = None
    """HDF5 demo dataset to behaviour-clone the actor from before PPO starts (BC warm start)."""
    bc_epochs: int = 50
    """Epochs of behaviour cloning for init_from_demos."""
    bc_noise_std: float = 0.1
    """Policy noise std after the BC warm start (small, so exploration does not swamp the demos)."""

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}: choose one of {', '.join(ALGOS)}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if isinstance(self.ppo, dict):
            object.__setattr__(self, "ppo", PPOConfig(**self.ppo))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["ppo"]["actor_hidden"] = list(self.ppo.actor_hidden)
        data["ppo"]["critic_hidden"] = list(self.ppo.critic_hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}; valid fields: {', '.join(sorted(known))}")
        data = dict(data)
        ppo = dict(data.pop("ppo", {}) or {})
        # configs saved before reward scaling existed (e.g. the policies/ baselines) trained without it
        ppo.setdefault("normalize_rewards", False)
        ppo_known = {f.name for f in dataclasses.fields(PPOConfig)}
        bad = sorted(set(ppo) - ppo_known)
        if bad:
            raise ValueError(f"ppo config has unknown fields {bad}; valid fields: {', '.join(sorted(ppo_known))}")
        return cls(**data, ppo=PPOConfig(**ppo))
