"""Actor-critic networks, empirical observation normalization, and the PPO update
(clipped surrogate, optionally clipped value loss, adaptive-KL learning rate; rsl_rl style)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from robreward.rl.config import PPOConfig
from robreward.rl.storage import RolloutStorage

Tensor = torch.Tensor
_ACTIVATIONS = {"elu": nn.ELU, "tanh": nn.Tanh, "relu": nn.ReLU}


class EmpiricalNormalization(nn.Module):
    """Running mean/variance of observations (parallel-variance merge of batch statistics).

    forward(x [B, D]) -> (x - mean) / (std + eps); `update(x)` folds a batch into the stats.
    The statistics are buffers, so they travel with state_dict() and into the ONNX export.
    """

    def __init__(self, dim: int, eps: float = 1e-2, clip: float = 10.0):
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        batch = x.shape[0]
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        total = self.count + batch
        ratio = float(batch / total)
        delta = batch_mean - self.mean
        self.mean += ratio * delta
        self.var += ratio * (batch_var - self.var + delta * delta * (1.0 - ratio))
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp((x - self.mean) / (torch.sqrt(self.var) + self.eps), -self.clip, self.clip)


class RewardNormalizer:
    """Scales rewards by the running std of each world's discounted return (Stable-Baselines3's
    VecNormalize reward scaling): value targets stay near unit scale whatever the reward's units,
    so the clipped value loss and the critic's step size fit every task. Not part of the policy:
    only training sees it, and episode returns are logged unscaled.

    groups > 1 keeps separate statistics for equal consecutive blocks of worlds (one per candidate
    in the batched multi-candidate trainer).
    """

    def __init__(self, num_envs: int, gamma: float, groups: int = 1, eps: float = 1e-8, clip: float = 10.0,
                 device=None):
        if num_envs % groups:
            raise ValueError(f"num_envs {num_envs} is not a multiple of groups {groups}")
        self.gamma, self.groups, self.eps, self.clip = gamma, groups, eps, clip
        self.returns = torch.zeros(num_envs, device=device)
        self.mean = torch.zeros(groups, dtype=torch.float64, device=device)
        self.var = torch.ones(groups, dtype=torch.float64, device=device)
        self.count = torch.full((groups,), 1e-4, dtype=torch.float64, device=device)

    @torch.no_grad()
    def __call__(self, reward: Tensor, done: Tensor) -> Tensor:
        """reward [N] of one step, done [N] bool (the step ended the episode) -> scaled reward [N]."""
        self.returns.mul_(self.gamma).add_(reward)
        block = self.returns.view(self.groups, -1).to(torch.float64)
        batch = block.shape[1]
        delta = block.mean(1) - self.mean
        total = self.count + batch
        self.mean += delta * batch / total
        self.var = (self.var * self.count + block.var(1, unbiased=False) * batch
                    + delta * delta * self.count * batch / total) / total
        self.count = total
        scale = torch.sqrt(self.var + self.eps).to(reward.dtype)
        scaled = (reward.view(self.groups, -1) / scale[:, None]).clamp(-self.clip, self.clip).view_as(reward)
        self.returns.mul_(1.0 - done.to(self.returns.dtype))
        return scaled

    def state_dict(self, group: int | None = None) -> dict:
        """The state (of one group only, as a one-group normalizer's state, when group is given)."""
        if group is None:
            return {"returns": self.returns.cpu(), "mean": self.mean.cpu(), "var": self.var.cpu(),
                    "count": self.count.cpu()}
        rows = slice(group, group + 1)
        return {"returns": self.returns.view(self.groups, -1)[group].cpu().clone(), "mean": self.mean[rows].cpu(),
                "var": self.var[rows].cpu(), "count": self.count[rows].cpu()}

    def load_state_dict(self, state: dict, group: int | None = None) -> None:
        """The inverse of state_dict (into one group only, from a one-group state, when group is given)."""
        if group is None:
            for key in ("returns", "mean", "var", "count"):
                getattr(self, key).copy_(state[key])
            return
        self.returns.view(self.groups, -1)[group].copy_(state["returns"])
        for key in ("mean", "var", "count"):
            getattr(self, key)[group:group + 1].copy_(state[key])


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: str) -> nn.Sequential:
    layers, last = [], in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), _ACTIVATIONS[activation]()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs over normalized observations; a Gaussian policy with a
    state-independent learned log std. Actions are unbounded samples; the env clips them."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: PPOConfig):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.normalizer = EmpiricalNormalization(obs_dim) if cfg.normalize_obs else nn.Identity()
        self.actor = mlp(obs_dim, cfg.actor_hidden, act_dim, cfg.activation)
        self.critic = mlp(obs_dim, cfg.critic_hidden, 1, cfg.activation)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(cfg.init_noise_std)))
        # small last actor layer: start near the zero action (common PPO practice)
        with torch.no_grad():
            self.actor[-1].weight.mul_(0.01)
            self.actor[-1].bias.zero_()

    def normalize(self, obs: Tensor, update: bool = False) -> Tensor:
        if update and isinstance(self.normalizer, EmpiricalNormalization):
            self.normalizer.update(obs)
        return self.normalizer(obs)

    def value(self, obs_norm: Tensor) -> Tensor:
        return self.critic(obs_norm).squeeze(-1)

    def act(self, obs_norm: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Sample actions for normalized obs [N, D]: (action, log_prob, value, mean, std)."""
        mean = self.actor(obs_norm)
        std = self.log_std.exp().expand_as(mean)
        action = mean + std * torch.randn_like(mean)
        return action, gaussian_log_prob(action, mean, self.log_std), self.value(obs_norm), mean, std

    def act_deterministic(self, obs: Tensor) -> Tensor:
        """Raw observations [N, D] -> mean actions [N, A] (not clipped)."""
        return self.actor(self.normalizer(obs))


def gaussian_log_prob(action: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    var = torch.exp(2.0 * log_std)
    return (-((action - mean) ** 2) / (2.0 * var) - log_std - 0.5 * math.log(2.0 * math.pi)).sum(-1)


def gaussian_kl(mean_old: Tensor, std_old: Tensor, mean_new: Tensor, std_new: Tensor) -> Tensor:
    """KL(old || new) of diagonal Gaussians, summed over action dims: [B]."""
    return (torch.log(std_new / std_old) + (std_old ** 2 + (mean_old - mean_new) ** 2) / (2.0 * std_new ** 2)
            - 0.5).sum(-1)


@dataclass
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    kl: float
    learning_rate: float
    clip_fraction: float


class PPO:
    """The PPO learner: owns the actor-critic and its optimizer; `update(storage)` runs the epochs."""

    def __init__(self, policy: ActorCritic, cfg: PPOConfig):
        self.policy, self.cfg = policy, cfg
        self.learning_rate = cfg.learning_rate
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, foreach=True)

    def _set_lr(self, lr: float) -> None:
        self.learning_rate = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def update(self, storage: RolloutStorage) -> UpdateStats:
        cfg, policy = self.cfg, self.policy
        sums = dict(policy=0.0, value=0.0, entropy=0.0, kl=0.0, clip=0.0)
        count = 0
        for batch in storage.minibatches(cfg.num_minibatches, cfg.num_epochs):
            mean = policy.actor(batch.obs)
            log_std = policy.log_std
            std = log_std.exp().expand_as(mean)
            log_prob = gaussian_log_prob(batch.actions, mean, log_std)
            entropy = (log_std + 0.5 * math.log(2.0 * math.pi * math.e)).sum()
            values = policy.value(batch.obs)

            # adaptive learning rate from the KL between the rollout policy and the current one
            with torch.no_grad():
                kl = gaussian_kl(batch.action_mean, batch.action_std, mean, std).mean()
            kl_value = float(kl)
            if cfg.schedule == "adaptive" and cfg.desired_kl > 0:
                if kl_value > 2.0 * cfg.desired_kl:
                    self._set_lr(max(cfg.min_lr, self.learning_rate / 1.5))
                elif 0.0 < kl_value < 0.5 * cfg.desired_kl:
                    self._set_lr(min(cfg.max_lr, self.learning_rate * 1.5))

            advantages = batch.advantages
            if cfg.normalize_advantages:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            ratio = torch.exp(log_prob - batch.log_probs)
            surrogate = torch.max(-advantages * ratio,
                                  -advantages * torch.clamp(ratio, 1.0 - cfg.clip_ratio, 1.0 + cfg.clip_ratio))
            policy_loss = surrogate.mean()
            if cfg.clip_value_loss:
                clipped = batch.values + (values - batch.values).clamp(-cfg.clip_ratio, cfg.clip_ratio)
                value_loss = torch.max((values - batch.returns) ** 2, (clipped - batch.returns) ** 2).mean()
            else:
                value_loss = ((values - batch.returns) ** 2).mean()
            loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy

            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            self.optimizer.step()

            with torch.no_grad():
                clip_frac = ((ratio - 1.0).abs() > cfg.clip_ratio).float().mean()
            sums["policy"] += policy_loss.item()
            sums["value"] += value_loss.item()
            sums["entropy"] += entropy.item()
            sums["kl"] += kl_value
            sums["clip"] += float(clip_frac)
            count += 1
        return UpdateStats(sums["policy"] / count, sums["value"] / count, sums["entropy"] / count,
                           sums["kl"] / count, self.learning_rate, sums["clip"] / count)
