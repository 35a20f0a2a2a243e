"""Hindsight PRIOR (Verma & Metcalf 2024): which steps of a segment its preference label is about.

    world = SegmentWorldModel(feature_dim, seed=0)
    world.fit(segments)                          # forward dynamics: each step's features from the steps before
    alpha = world.importance(segments)           # [B, H]: each segment's real steps' weights sum to 1
    loss = prior_loss(step_rewards, mask, alpha) # the auxiliary return redistribution

A label says which of two segments is better, not which of their steps made it so. PRIOR lets a world model say:
a small causal transformer learns to predict each next step's reward-model features (the state, and the action
when the reward reads it) from the segment's steps so far, and the steps its attention leans on are taken as the
ones that matter. The reward ensemble then gets, beside the Bradley-Terry loss, an auxiliary loss that pulls each
step's predicted reward toward that step's share of the segment's predicted return (``prior_loss``); the fit turns
it on with ``EnsembleConfig.prior_weight`` (PreferenceReward.fit; off by default, measured in
benchmarks/RESULTS.md).

Reading of the paper where it leaves a choice open: importance comes from the last layer's attention, averaged over
heads; a causal query at step i spreads its weight over i + 1 steps, so each weight is scaled by i + 1 (1 = an even
share) before it is averaged over the queries that see step j, and the last real step (no query predicts from it
alone) gets the segment's mean (a one-step segment's step all of it). The return in the target is treated as a
constant (no gradient). The loss is the paper's plain squared error; with this ensemble's linear output (B-Pref's is
tanh) it can also be lowered by shrinking every reward, and in tests/feedback/test_prefs_prior.py it is: at weight 1
the rewards' spread fell about tenfold and held-out accuracy from 0.98 to 0.93, on data whose steps all matter alike.
"""

from __future__ import annotations

import torch
from torch import nn

from robreward.feedback.preferences.segments import SegmentPairs

Tensor = torch.Tensor


class _Block(nn.Module):
    """One pre-norm transformer block; its forward returns its attention weights beside its output."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: Tensor, causal: Tensor, padding: Tensor) -> tuple[Tensor, Tensor]:
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, attn_mask=causal, key_padding_mask=padding, need_weights=True,
                                 average_attn_weights=True)
        x = x + out
        return x + self.mlp(self.norm2(x)), weights


class SegmentWorldModel(nn.Module):
    """A causal transformer over a segment's steps that predicts each next step's features."""

    def __init__(self, feature_dim: int, *, width: int = 64, heads: int = 4, layers: int = 2, max_len: int = 512,
                 lr: float = 1e-3, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Linear(feature_dim, width)
            self.position = nn.Parameter(torch.randn(max_len, width) * 0.02)
            self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
            self.head = nn.Linear(width, feature_dim)
        self.max_len = max_len
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._gen = torch.Generator().manual_seed(seed + 1)

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(predicted next-step features [B, H, F], the last block's attention [B, H, H]) of standardized
        features [B, H, F]; padded steps (mask False) are never attended to."""
        h = features.shape[1]
        if h > self.max_len:
            raise ValueError(f"segments of {h} steps are longer than the world model's {self.max_len}")
        x = self.embed(features) + self.position[:h]
        causal = torch.ones(h, h, dtype=torch.bool, device=x.device).triu(1)  # True: may not attend
        padding = ~mask
        padding = padding & ~padding.all(-1, keepdim=True)  # an all-padded row would attend to nothing
        weights = x.new_zeros(0)
        for block in self.blocks:
            x, weights = block(x, causal, padding)
        return self.head(x), weights

    def loss(self, features: Tensor, mask: Tensor) -> Tensor:
        """Mean squared error of each prediction of step t + 1 from steps <= t, where both steps are real."""
        pred, _ = self(features[:, :-1], mask[:, :-1])
        err = ((pred - features[:, 1:]) ** 2).mean(-1)
        both = (mask[:, :-1] & mask[:, 1:]).float()
        return (err * both).sum() / both.sum().clamp(min=1)

    def fit(self, features: Tensor, mask: Tensor, *, steps: int = 200, batch_size: int = 64) -> float:
        """``steps`` Adam steps on random batches of the segments [B, H, F] (training continues across calls, as
        the reward ensemble's does across rounds); returns the last batch's loss."""
        if features.shape[1] < 2:
            raise ValueError("PRIOR's world model needs segments of at least 2 steps")
        self.train()
        value = float("nan")
        for _ in range(steps):
            idx = torch.randint(features.shape[0], (min(batch_size, features.shape[0]),), generator=self._gen)
            loss = self.loss(features[idx.to(features.device)], mask[idx.to(mask.device)])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            value = float(loss.detach())
        return value

    def importance(self, features: Tensor, mask: Tensor) -> Tensor:
        """[B, H] each step's share of its segment's importance (the module docstring); 0 on padded steps."""
        self.eval()
        with torch.no_grad():
            _, attn = self(features, mask)  # [B, H, H]: query i's weight on key j
        visible = mask.float().cumsum(-1)  # real keys query i can see
        scaled = attn * visible.unsqueeze(-1)  # 1 = an even share of the query's weight
        queries = (mask[:, :, None] & mask[:, None, :]).float().tril()  # i >= j, both real
        last = mask.long().cumsum(-1).eq(mask.long().sum(-1, keepdim=True)) & mask  # the last real step
        queries = queries * (~last).float().unsqueeze(-1)  # its query predicts nothing in the segment
        seen = queries.sum(1)  # [B, H] queries that see step j
        imp = (scaled * queries).sum(1) / seen.clamp(min=1)
        real = mask & (seen > 0)
        counted = real.sum(-1, keepdim=True)
        mean = torch.where(counted > 0, (imp * real).sum(-1, keepdim=True) / counted.clamp(min=1), 1.0)
        imp = torch.where(real, imp, mean) * mask
        return imp / imp.sum(-1, keepdim=True).clamp(min=1e-12)


def pair_shares(world: SegmentWorldModel, pairs: SegmentPairs, mean: Tensor, std: Tensor,
                steps: int) -> tuple[Tensor, Tensor]:
    """([n, H], [n, H]): the step shares of each pair's first and second segment, after ``steps`` more steps of
    training ``world`` on all of them (features standardized by ``mean`` and ``std``, as the reward reads them)."""
    feats = [(seg.features - mean) / std for seg in pairs]
    masks = [seg.mask for seg in pairs]
    world.fit(torch.cat(feats), torch.cat(masks), steps=steps)
    first, second = (world.importance(f, m) for f, m in zip(feats, masks))
    return first, second


def prior_loss(step_rewards: Tensor, mask: Tensor, alpha: Tensor) -> Tensor:
    """PRIOR's auxiliary loss of per-step rewards [B, H]: the mean squared error, over the real steps, of each
    step's reward to ``alpha`` times its segment's predicted return (no gradient through the return)."""
    m = mask.to(step_rewards.dtype)
    ret = (step_rewards * m).sum(-1, keepdim=True).detach()
    return (((step_rewards - alpha * ret) ** 2) * m).sum() / m.sum().clamp(min=1)


__all__ = ["SegmentWorldModel", "pair_shares", "prior_loss"]
