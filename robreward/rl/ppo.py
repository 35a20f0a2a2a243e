"""Actor-critic networks, observation and reward normalisation, and THE PPO update (clipped
surrogate, optionally clipped value loss, adaptive-KL learning rate; rsl_rl style) over a leading
candidate axis: K policies (K reward candidates, or K=1 for a single run) as one stacked network.

Every candidate keeps its own observation statistics, log std, mini-batches, advantage
normalisation, gradient-norm clip and adaptive-KL learning rate; the losses are summed over
candidates, so gradients never mix. `ActorCritic` is one candidate as a plain network (export,
inference, BC warm start, checkpoints); `BatchedActorCritic` stacks K of them and unstacks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from robreward.rl.config import PPOConfig
from robreward.rl.storage import Batch, RolloutStorage

Tensor = torch.Tensor
_ACTIVATIONS = {"elu": nn.ELU, "tanh": nn.Tanh, "relu": nn.ReLU}
_FUNCTIONAL = {"elu": nn.functional.elu, "tanh": torch.tanh, "relu": torch.relu}


class EmpiricalNormalization(nn.Module):
    """Running mean/variance of observations (parallel-variance merge of batch statistics).

    forward(x [*lead, B, D]) -> (x - mean) / (std + eps), clipped; `update(x)` folds a batch into
    the stats. lead: the candidate axes (``batch_shape``, e.g. (K,)): each candidate keeps its own
    statistics [*lead, D]. The statistics are buffers, so they travel with state_dict() and (with
    no lead axes) into the ONNX export.
    """

    def __init__(self, dim: int, eps: float = 1e-2, clip: float = 10.0, batch_shape: tuple[int, ...] = ()):
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(*batch_shape, dim))
        self.register_buffer("var", torch.ones(*batch_shape, dim))
        self.register_buffer("count", torch.zeros(batch_shape, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        batch = x.shape[-2]
        batch_mean = x.mean(-2)
        batch_var = x.var(-2, unbiased=False)
        total = self.count + batch
        ratio = (batch / total).to(x.dtype).unsqueeze(-1)
        delta = batch_mean - self.mean
        self.mean += ratio * delta
        self.var += ratio * (batch_var - self.var + delta * delta * (1.0 - ratio))
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        mean, std = self.mean, torch.sqrt(self.var)
        if mean.dim() > 1:  # [*lead, D] -> [*lead, 1, D] against x [*lead, B, D] (the exported policy has none)
            mean, std = mean.unsqueeze(-2), std.unsqueeze(-2)
        return torch.clamp((x - mean) / (std + self.eps), -self.clip, self.clip)


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


# -- K networks as one -------------------------------------------------------------------------------
class BatchedActorCritic(nn.Module):
    """K ActorCritic networks stacked: weights [K, in, out], biases [K, 1, out], log_std [K, A],
    observation statistics [K, obs_dim]. Inputs and outputs are [K, B, ...]."""

    def __init__(self, models: Sequence[ActorCritic], cfg: PPOConfig):
        super().__init__()
        self.cfg, self.num = cfg, len(models)
        self.obs_dim, self.act_dim = models[0].obs_dim, models[0].act_dim
        self.activation = _FUNCTIONAL[cfg.activation]
        stack = lambda tensors: nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))  # noqa: E731
        for part in ("actor", "critic"):
            layers = [[m for m in getattr(model, part) if isinstance(m, nn.Linear)] for model in models]
            setattr(self, f"{part}_w", nn.ParameterList(
                [stack([ls[i].weight.T for ls in layers]) for i in range(len(layers[0]))]))
            setattr(self, f"{part}_b", nn.ParameterList(
                [stack([ls[i].bias[None] for ls in layers]) for i in range(len(layers[0]))]))
        self.log_std = stack([m.log_std for m in models])
        self.normalizer: nn.Module = nn.Identity()
        if cfg.normalize_obs:
            first = models[0].normalizer
            self.normalizer = EmpiricalNormalization(self.obs_dim, first.eps, first.clip, batch_shape=(self.num,))
            for key in ("mean", "var", "count"):
                getattr(self.normalizer, key).copy_(torch.stack([getattr(m.normalizer, key) for m in models]))

    def normalize(self, obs: Tensor, update: bool = False) -> Tensor:
        """obs [K, M, D] -> normalized obs (folding obs into each candidate's statistics first if update)."""
        if update and isinstance(self.normalizer, EmpiricalNormalization):
            self.normalizer.update(obs)
        return self.normalizer(obs)

    def _mlp(self, part: str, x: Tensor) -> Tensor:
        weights, biases = getattr(self, f"{part}_w"), getattr(self, f"{part}_b")
        for i, (w, b) in enumerate(zip(weights, biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(weights) - 1:
                x = self.activation(x)
        return x

    def actor(self, obs_norm: Tensor) -> Tensor:
        return self._mlp("actor", obs_norm)

    def value(self, obs_norm: Tensor) -> Tensor:
        return self._mlp("critic", obs_norm).squeeze(-1)

    def act(self, obs_norm: Tensor, generators: Sequence[torch.Generator]):
        """Sample actions for normalized obs [K, M, D]: (action, log_prob, value, mean, std); candidate
        k's noise comes from generators[k] (the stream its separate run's randn_like would use)."""
        mean = self.actor(obs_norm)
        log_std = self.log_std[:, None, :]
        std = log_std.exp().expand_as(mean)
        noise = torch.stack([torch.randn(mean.shape[1:], generator=g, device=mean.device) for g in generators])
        action = mean + std * noise
        return action, gaussian_log_prob(action, mean, log_std), self.value(obs_norm), mean, std

    def unstack(self, k: int) -> ActorCritic:
        """Candidate k as a plain ActorCritic on the CPU (for export and checkpoints)."""
        model = ActorCritic(self.obs_dim, self.act_dim, self.cfg)
        with torch.no_grad():
            for part in ("actor", "critic"):
                linears = [m for m in getattr(model, part) if isinstance(m, nn.Linear)]
                for lin, w, b in zip(linears, getattr(self, f"{part}_w"), getattr(self, f"{part}_b")):
                    lin.weight.copy_(w[k].T)
                    lin.bias.copy_(b[k, 0])
            model.log_std.copy_(self.log_std[k])
            if isinstance(self.normalizer, EmpiricalNormalization):
                for key in ("mean", "var", "count"):
                    getattr(model.normalizer, key).copy_(getattr(self.normalizer, key)[k])
        return model.cpu()

    @torch.no_grad()
    def load_candidate(self, k: int, model: ActorCritic) -> None:
        """The inverse of unstack: candidate k's weights and statistics from a plain ActorCritic."""
        for part in ("actor", "critic"):
            linears = [m for m in getattr(model, part) if isinstance(m, nn.Linear)]
            for lin, w, b in zip(linears, getattr(self, f"{part}_w"), getattr(self, f"{part}_b")):
                w[k].copy_(lin.weight.T)
                b[k, 0].copy_(lin.bias)
        self.log_std[k].copy_(model.log_std)
        if isinstance(self.normalizer, EmpiricalNormalization):
            for key in ("mean", "var", "count"):
                getattr(self.normalizer, key)[k].copy_(getattr(model.normalizer, key))


# -- PPO ------------------------------------------------------------------------------------------------
class PPO:
    """PPO over a BatchedActorCritic of K candidates (K=1: a single run). Adam is written out so that
    the learning rate can be a [K] tensor: torch.optim.Adam is invariant to gradient scale, so
    scaling gradients cannot give candidates different learning rates. ``active[k]`` False freezes
    candidate k (a failed reward) while the others train on."""

    def __init__(self, net: BatchedActorCritic, cfg: PPOConfig, generators: Sequence[torch.Generator],
                 betas=(0.9, 0.999), eps=1e-8):
        self.net, self.cfg, self.generators = net, cfg, list(generators)
        self.params = list(net.parameters())
        self.learning_rate = torch.full((net.num,), cfg.learning_rate)
        self.active = torch.ones(net.num, dtype=torch.bool)
        self.betas, self.eps, self.adam_step = betas, eps, 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._shapes: list[tuple[int, ...]] | None = None

    def update(self, storage: RolloutStorage) -> list[UpdateStats]:
        """num_epochs passes over the rollout in num_minibatches per candidate; each candidate's mean stats."""
        cfg, num = self.cfg, self.net.num
        sums, count = torch.zeros(5, num), 0
        for batch in storage.minibatches(cfg.num_minibatches, cfg.num_epochs, self.generators):
            loss, stats = self.loss(batch)
            for p in self.params:
                p.grad = None
            (loss * self.active.to(loss.device, loss.dtype)).sum().backward()
            self._clip_and_step()
            sums += stats.cpu()
            count += 1
        means = (sums / count).tolist()
        return [UpdateStats(means[0][k], means[1][k], means[2][k], means[3][k], float(self.learning_rate[k]),
                            means[4][k]) for k in range(num)]

    def loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The PPO loss of one mini-batch ([K, B, ...]): (loss [K], stats [5, K]: policy loss, value
        loss, entropy, KL, clip fraction). Adapts the learning rate from the KL first (rsl_rl)."""
        cfg, net = self.cfg, self.net
        mean = net.actor(batch.obs)
        log_std = net.log_std[:, None, :]
        std = log_std.exp().expand_as(mean)
        log_prob = gaussian_log_prob(batch.actions, mean, log_std)
        entropy = (net.log_std + 0.5 * math.log(2.0 * math.pi * math.e)).sum(-1)
        values = net.value(batch.obs)
        with torch.no_grad():  # adaptive learning rate from the KL between the rollout policy and the current one
            kl = gaussian_kl(batch.action_mean, batch.action_std, mean, std).mean(1)
        self._adaptive_lr(kl.cpu())
        advantages = batch.advantages
        if cfg.normalize_advantages:
            advantages = (advantages - advantages.mean(1, keepdim=True)) / (advantages.std(1, keepdim=True) + 1e-8)
        ratio = torch.exp(log_prob - batch.log_probs)
        surrogate = torch.max(-advantages * ratio,
                              -advantages * torch.clamp(ratio, 1.0 - cfg.clip_ratio, 1.0 + cfg.clip_ratio))
        policy_loss = surrogate.mean(1)
        returns, old_values = batch.returns, batch.values
        if cfg.clip_value_loss:
            clipped = old_values + (values - old_values).clamp(-cfg.clip_ratio, cfg.clip_ratio)
            value_loss = torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean(1)
        else:
            value_loss = ((values - returns) ** 2).mean(1)
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy  # [K]
        with torch.no_grad():
            clip_frac = ((ratio - 1.0).abs() > cfg.clip_ratio).float().mean(1)
            stats = torch.stack([policy_loss, value_loss, entropy, kl, clip_frac])
        return loss, stats

    def _adaptive_lr(self, kl: Tensor) -> None:
        cfg = self.cfg
        if cfg.schedule != "adaptive" or cfg.desired_kl <= 0:
            return
        lr = self.learning_rate
        down = (lr / 1.5).clamp(min=cfg.min_lr)
        up = (lr * 1.5).clamp(max=cfg.max_lr)
        self.learning_rate = torch.where(kl > 2.0 * cfg.desired_kl, down,
                                         torch.where((kl > 0) & (kl < 0.5 * cfg.desired_kl), up, lr))

    @torch.no_grad()
    def _clip_and_step(self) -> None:
        """clip_grad_norm_ and an Adam step, per candidate (foreach ops over all parameters; each
        candidate's gradient norm from one flat [K, P] view, its step size folded into one addcmul)."""
        params = self.params
        if self._shapes is None:  # a [K] tensor as a view that broadcasts against each parameter
            self._shapes = [(-1,) + (1,) * (p.dim() - 1) for p in params]
        shapes = self._shapes
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1)
        sq = (flat * flat).sum(1)  # [K]
        coef = (self.cfg.max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        b1, b2 = self.betas
        self.adam_step += 1
        bc1, bc2 = 1.0 - b1 ** self.adam_step, 1.0 - b2 ** self.adam_step
        # the step size of each candidate (0: a failed candidate is frozen), negated for the addcmul below
        step_size = (self.learning_rate * self.active.to(self.learning_rate.dtype)).to(coef.device) / (-bc1)
        grads = torch._foreach_mul(grads, [coef.view(s) for s in shapes])
        torch._foreach_lerp_(self.exp_avg, grads, 1.0 - b1)
        torch._foreach_mul_(self.exp_avg_sq, b2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1.0 - b2)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, self.eps)
        steps = torch._foreach_div(self.exp_avg, denom)
        torch._foreach_addcmul_(params, steps, [step_size.view(s) for s in shapes])

    def _moments(self, model: ActorCritic):
        """(param of `model`, its Adam moments (exp_avg, exp_avg_sq) [K, ...] here, how a [K, ...]
        tensor's row k becomes that param's shape and back): the map between the two formats."""
        by_name = dict(zip([n for n, _ in self.net.named_parameters()], zip(self.exp_avg, self.exp_avg_sq)))
        weight = (lambda t, k: t[k].T.contiguous(), lambda x: x.T)
        bias = (lambda t, k: t[k, 0].clone(), lambda x: x[None])
        for part in ("actor", "critic"):
            for i, lin in enumerate(m for m in getattr(model, part) if isinstance(m, nn.Linear)):
                yield lin.weight, by_name[f"{part}_w.{i}"], weight
                yield lin.bias, by_name[f"{part}_b.{i}"], bias
        yield model.log_std, by_name["log_std"], (lambda t, k: t[k].clone(), lambda x: x)

    def torch_adam_state(self, k: int, model: ActorCritic) -> dict:
        """Candidate k's optimizer state as torch.optim.Adam's state_dict over `model` (runner.py's
        checkpoint format), so the sequential runner can continue from it."""
        optimizer = torch.optim.Adam(model.parameters(), lr=float(self.learning_rate[k]), foreach=True)
        for param, (m, v), (row, _) in self._moments(model):
            optimizer.state[param] = {"step": torch.tensor(float(self.adam_step)), "exp_avg": row(m, k).cpu(),
                                      "exp_avg_sq": row(v, k).cpu()}
        return optimizer.state_dict()

    @torch.no_grad()
    def load_torch_adam_state(self, k: int, model: ActorCritic, state: dict) -> int:
        """The inverse of torch_adam_state: candidate k's moments from torch.optim.Adam's state_dict
        over `model` (a checkpoint of either runner); returns its Adam step count."""
        optimizer = torch.optim.Adam(model.parameters(), foreach=True)
        optimizer.load_state_dict(state)
        steps = 0
        for param, (m, v), (_, back) in self._moments(model):
            saved = optimizer.state.get(param)
            if not saved:  # never updated (a run checkpointed before its first update)
                continue
            m[k].copy_(back(saved["exp_avg"]).to(m.device))
            v[k].copy_(back(saved["exp_avg_sq"]).to(v.device))
            steps = int(float(saved["step"]))
        return steps


__all__ = ["PPO", "ActorCritic", "BatchedActorCritic", "EmpiricalNormalization", "RewardNormalizer", "UpdateStats",
           "gaussian_kl", "gaussian_log_prob", "mlp"]
