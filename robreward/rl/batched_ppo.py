"""K PPO learners as one: K ActorCritic networks stacked into batched weights, and PPO's update
per candidate over them (robreward.rl.multi trains K reward candidates with these).

Every candidate keeps its own observation statistics, log std, mini-batches, advantage
normalisation, gradient-norm clip and adaptive-KL learning rate; the losses are summed over
candidates, so gradients never mix. A separate run's numbers are matched up to float rounding.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from robreward.rl.config import PPOConfig
from robreward.rl.ppo import ActorCritic, UpdateStats, gaussian_kl, gaussian_log_prob

Tensor = torch.Tensor
_ACTIVATIONS = {"elu": nn.functional.elu, "tanh": torch.tanh, "relu": torch.relu}


# -- the batched network ---------------------------------------------------------------------------
class BatchedActorCritic(nn.Module):
    """K ActorCritic networks stacked: weights [K, in, out], biases [K, 1, out], log_std [K, A],
    observation statistics [K, obs_dim]. Inputs and outputs are [K, B, ...]."""

    def __init__(self, models: Sequence[ActorCritic], cfg: PPOConfig):
        super().__init__()
        self.cfg, self.num = cfg, len(models)
        self.obs_dim, self.act_dim = models[0].obs_dim, models[0].act_dim
        self.activation = _ACTIVATIONS[cfg.activation]
        stack = lambda tensors: nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))  # noqa: E731
        for part in ("actor", "critic"):
            layers = [[m for m in getattr(model, part) if isinstance(m, nn.Linear)] for model in models]
            setattr(self, f"{part}_w", nn.ParameterList(
                [stack([ls[i].weight.T for ls in layers]) for i in range(len(layers[0]))]))
            setattr(self, f"{part}_b", nn.ParameterList(
                [stack([ls[i].bias[None] for ls in layers]) for i in range(len(layers[0]))]))
        self.log_std = stack([m.log_std for m in models])
        self.normalize_obs = cfg.normalize_obs
        if cfg.normalize_obs:
            norm = [m.normalizer for m in models]
            self.eps, self.clip = norm[0].eps, norm[0].clip
            self.register_buffer("obs_mean", torch.stack([n.mean for n in norm]).clone())
            self.register_buffer("obs_var", torch.stack([n.var for n in norm]).clone())
            self.register_buffer("obs_count", torch.stack([n.count for n in norm]).clone())

    @torch.no_grad()
    def update_normalizer(self, obs: Tensor) -> None:
        """Fold obs [K, M, D] into each candidate's running statistics (EmpiricalNormalization's merge)."""
        batch = obs.shape[1]
        total = self.obs_count + batch
        ratio = (batch / total).to(obs.dtype)[:, None]
        delta = obs.mean(1) - self.obs_mean
        self.obs_mean += ratio * delta
        self.obs_var += ratio * (obs.var(1, unbiased=False) - self.obs_var + delta * delta * (1.0 - ratio))
        self.obs_count.copy_(total)

    def normalize(self, obs: Tensor, update: bool = False) -> Tensor:
        if not self.normalize_obs:
            return obs
        if update:
            self.update_normalizer(obs)
        mean, std = self.obs_mean[:, None], torch.sqrt(self.obs_var)[:, None]
        return torch.clamp((obs - mean) / (std + self.eps), -self.clip, self.clip)

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
            if self.normalize_obs:
                model.normalizer.mean.copy_(self.obs_mean[k])
                model.normalizer.var.copy_(self.obs_var[k])
                model.normalizer.count.copy_(self.obs_count[k])
        return model.cpu()


# -- PPO over K candidates ---------------------------------------------------------------------------
class BatchedPPO:
    """PPO (ppo.PPO's update, per candidate) over a BatchedActorCritic. Adam is written out so that
    the learning rate can be a [K] tensor: torch.optim.Adam is invariant to gradient scale, so
    scaling gradients cannot give candidates different learning rates."""

    def __init__(self, net: BatchedActorCritic, cfg: PPOConfig, generators, betas=(0.9, 0.999), eps=1e-8):
        self.net, self.cfg, self.generators = net, cfg, generators
        self.params = list(net.parameters())
        self.learning_rate = torch.full((net.num,), cfg.learning_rate)
        self.active = torch.ones(net.num, dtype=torch.bool)
        self.betas, self.eps, self.adam_step = betas, eps, 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def _adaptive_lr(self, kl: Tensor) -> None:
        cfg = self.cfg
        if cfg.schedule != "adaptive" or cfg.desired_kl <= 0:
            return
        lr = self.learning_rate
        down = (lr / 1.5).clamp(min=cfg.min_lr)
        up = (lr * 1.5).clamp(max=cfg.max_lr)
        lr = torch.where(kl > 2.0 * cfg.desired_kl, down, torch.where((kl > 0) & (kl < 0.5 * cfg.desired_kl), up, lr))
        self.learning_rate = lr

    @torch.no_grad()
    def _clip_and_step(self) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        sq = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0)  # [K]
        coef = (self.cfg.max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)  # clip_grad_norm_, per candidate
        b1, b2 = self.betas
        self.adam_step += 1
        bc1, bc2 = 1.0 - b1 ** self.adam_step, 1.0 - b2 ** self.adam_step
        step_size = (self.learning_rate * self.active.to(self.learning_rate.dtype)) / bc1  # failed: frozen
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            shape = (-1,) + (1,) * (p.dim() - 1)
            g = g * coef.view(shape).to(g.device)
            m.lerp_(g, 1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.sub_(step_size.view(shape).to(p.device) * m / denom)

    def update(self, rollout: dict[str, Tensor]) -> list[UpdateStats]:
        """rollout: tensors [K, T*M, ...] (flattened per candidate in (step, world) order, as RolloutStorage)."""
        cfg, net, num = self.cfg, self.net, self.net.num
        total = rollout["obs"].shape[1]
        size = total // cfg.num_minibatches
        rows = torch.arange(num, device=rollout["obs"].device)[:, None]
        # every field side by side in one [K, T*M, F] tensor: a mini-batch is then one gather, not one per field
        keys = list(rollout)
        packed = torch.cat([v if v.dim() == 3 else v.unsqueeze(-1) for v in rollout.values()], dim=2)
        widths = [v.shape[2] if v.dim() == 3 else 1 for v in rollout.values()]
        scalar = [v.dim() == 2 for v in rollout.values()]
        sums = torch.zeros(5, num)
        count = 0
        for _ in range(cfg.num_epochs):
            orders = torch.stack([torch.randperm(total, generator=g, device=g.device) for g in self.generators])
            for i in range(cfg.num_minibatches):
                idx = orders[:, i * size:(i + 1) * size].to(rows.device)
                parts = packed[rows, idx].split(widths, dim=2)
                batch = {key: part.squeeze(-1) if flat else part for key, part, flat in zip(keys, parts, scalar)}
                mean = net.actor(batch["obs"])
                log_std = net.log_std[:, None, :]
                std = log_std.exp().expand_as(mean)
                log_prob = gaussian_log_prob(batch["actions"], mean, log_std)
                entropy = (net.log_std + 0.5 * math.log(2.0 * math.pi * math.e)).sum(-1)
                values = net.value(batch["obs"])
                with torch.no_grad():
                    kl = gaussian_kl(batch["action_mean"], batch["action_std"], mean, std).mean(1)
                self._adaptive_lr(kl.cpu())
                advantages = batch["advantages"]
                if cfg.normalize_advantages:
                    advantages = (advantages - advantages.mean(1, keepdim=True)) / (advantages.std(1, keepdim=True) + 1e-8)
                ratio = torch.exp(log_prob - batch["log_probs"])
                surrogate = torch.max(-advantages * ratio,
                                      -advantages * torch.clamp(ratio, 1.0 - cfg.clip_ratio, 1.0 + cfg.clip_ratio))
                policy_loss = surrogate.mean(1)
                returns, old_values = batch["returns"], batch["values"]
                if cfg.clip_value_loss:
                    clipped = old_values + (values - old_values).clamp(-cfg.clip_ratio, cfg.clip_ratio)
                    value_loss = torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean(1)
                else:
                    value_loss = ((values - returns) ** 2).mean(1)
                loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy  # [K]
                for p in self.params:
                    p.grad = None
                (loss * self.active.to(loss.device, loss.dtype)).sum().backward()
                self._clip_and_step()
                with torch.no_grad():
                    clip_frac = ((ratio - 1.0).abs() > cfg.clip_ratio).float().mean(1)
                    sums += torch.stack([policy_loss, value_loss, entropy, kl, clip_frac]).detach().cpu()
                count += 1
        means = (sums / count).tolist()
        return [UpdateStats(means[0][k], means[1][k], means[2][k], means[3][k], float(self.learning_rate[k]),
                            means[4][k]) for k in range(num)]

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


__all__ = ["BatchedActorCritic", "BatchedPPO"]
