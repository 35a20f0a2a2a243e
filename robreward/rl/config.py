"""Configuration of a training run: PPOConfig (the algorithm) and TrainConfig (the run).

Defaults follow rsl_rl / mjlab (ANCHORS.md "Simulation and PPO"), adapted to a few CPU cores:
64 worlds instead of 4096, and small MLPs that are cheap on CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from robreward.configs import ConfigError, check_choice, check_min, strict_from_dict
from robreward.envs.registry import BACKENDS

ALGOS = ("ppo", "sb3")
DEMO_FIELDS = ("init_from_demos", "bc_epochs", "bc_noise_std", "reset_from_demos", "demo_reset_fraction")
"""TrainConfig's fields of a demo start (the BC warm start and demo-state resets): what rl.multi.train_many and
codegen.training.train_candidates give every run as ``demo_start``."""
ACTIVATIONS = ("elu", "tanh", "relu")
SCHEDULES = ("adaptive", "fixed")


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
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("schedule", self.schedule, SCHEDULES)
        for name in ("num_steps", "num_epochs", "num_minibatches"):
            check_min(name, getattr(self, name), 1)
        for name in ("learning_rate", "min_lr", "max_lr", "desired_kl", "clip_ratio", "max_grad_norm", "init_noise_std"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(name, f"must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("value_coef", "entropy_coef"):
            check_min(name, getattr(self, name), 0)
        if self.min_lr > self.max_lr:
            raise ConfigError("min_lr", f"must be <= max_lr ({self.max_lr}), got {self.min_lr}")
        for name in ("actor_hidden", "critic_hidden"):
            sizes = tuple(int(h) for h in getattr(self, name))
            if not sizes or min(sizes) < 1:
                raise ConfigError(name, f"must be one or more layer sizes >= 1, got {getattr(self, name)!r}")
            object.__setattr__(self, name, sizes)


@dataclass(frozen=True)
class TrainConfig:
    """One training run (what `robreward train` resolves its flags to; saved as config.yaml)."""

    task: str = "cheetah-run"
    """Task name in sims/ or a task folder."""
    reward: str = "hand"
    """Reward spec: hand, sparse, a reward program FILE.py, pref:RUN, or a sum A+B (robreward/rewards/spec.py)."""
    num_envs: Optional[int] = None
    """Parallel worlds (default 64; 1 for algo sb3, as rl-zoo3)."""
    steps: int = 1_000_000
    """Env steps summed over all worlds."""
    seed: int = 0
    """Seeds torch, numpy and the env's reset distribution."""
    out: str = "runs/run"
    """Run directory (docs/architecture.md layout)."""
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
    reset_from_demos: str | None = None
    """HDF5 demo dataset: a share of the training episodes start at a state of its successful episodes (up to their
    first success; demo-state resets, robreward/demos/resets.py). Evaluation starts from the task's own resets."""
    demo_reset_fraction: float = 0.25
    """With reset_from_demos: the share of training resets that start at a demo state, in (0, 1]."""

    def __post_init__(self):
        check_choice("algo", self.algo, ALGOS)
        check_choice("backend", self.backend, BACKENDS)
        if self.num_envs is None:
            object.__setattr__(self, "num_envs", 1 if self.algo == "sb3" else 64)
        check_min("num_envs", self.num_envs, 1)
        check_min("steps", self.steps, 1)
        check_min("seed", self.seed, 0)
        check_min("torch_threads", self.torch_threads, 1)
        check_min("checkpoint_every", self.checkpoint_every, 1)
        check_min("latest_every", self.latest_every, 1)
        check_min("eval_episodes", self.eval_episodes, 0)
        check_min("bc_epochs", self.bc_epochs, 0)
        if not self.bc_noise_std > 0.0:
            raise ConfigError("bc_noise_std", f"must be > 0 (the policy's noise std after cloning), got {self.bc_noise_std!r}")
        if not 0.0 < self.demo_reset_fraction <= 1.0:
            raise ConfigError("demo_reset_fraction", f"must be in (0, 1], got {self.demo_reset_fraction!r}")
        if isinstance(self.ppo, dict):
            try:
                object.__setattr__(self, "ppo", strict_from_dict(PPOConfig, self.ppo, "ppo config"))
            except ConfigError as err:
                raise err.within("ppo") from None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["ppo"]["actor_hidden"] = list(self.ppo.actor_hidden)
        data["ppo"]["critic_hidden"] = list(self.ppo.critic_hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The config of a ``to_dict()`` (config.yaml, a checkpoint): unknown fields are refused and no
        defaults are added here (the dataclass states them). A config written by an older robreward is
        migrated first (robreward.rundir.migrate_config), e.g. runs from before reward normalization."""
        data = dict(data)
        ppo = dict(data.pop("ppo", None) or {})
        config = strict_from_dict(cls, data, "config")
        return dataclasses.replace(config, ppo=ppo)  # __post_init__ builds and checks PPOConfig from the dict


def demo_start_fields(demo_start: Mapping[str, Any] | None) -> dict:
    """``demo_start`` (None: no demo start) as TrainConfig keyword arguments, e.g. {"init_from_demos": FILE,
    "bc_noise_std": 0.3} (cloning alone) or {"init_from_demos": FILE, "reset_from_demos": FILE,
    "demo_reset_fraction": 0.1}; a key that is not one of DEMO_FIELDS is refused. TrainConfig checks the values."""
    if demo_start is not None and not isinstance(demo_start, Mapping):
        raise TypeError(f"demo_start takes a mapping of TrainConfig's demo fields, e.g. {{'init_from_demos': FILE}}; "
                        f"got {type(demo_start).__name__} {demo_start!r}")
    fields = dict(demo_start or {})
    unknown = sorted(set(fields) - set(DEMO_FIELDS))
    if unknown:
        raise ValueError(f"demo_start takes TrainConfig's demo fields ({', '.join(DEMO_FIELDS)}), not "
                         f"{', '.join(unknown)}")
    return fields
