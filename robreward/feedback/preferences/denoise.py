"""RIME (Cheng et al. 2024): which preference labels a reward ensemble's fit trusts, flips or sets aside.

    stats = new_rime_stats()                                     # kept with the model, across its fits
    lower, upper = rime_thresholds(stats, config)                # config: an EnsembleConfig
    flip, keep, trusted, flipped = rime_select(probs, targets, stats, config, in_train)

Before every epoch of a fit (PreferenceReward.fit with ``EnsembleConfig.denoise="rime"``), each labeled pair's
cross-entropy to the ensemble-mean prediction decides: under the lower threshold -ln(x) + alpha x + min(beta v, 3)
(x and v the running maximum and variance of the trusted pairs' cross-entropy, beta decaying linearly over
``rime_decay_epochs``) the label is trusted; a hard label over the upper threshold -ln(rime_flip) is trained on
flipped; the others are set aside for that epoch. The statistics move ``RIME_RATE`` of the way to each epoch's
trusted pairs' values and carry over from fit to fit, as RIME's do.
"""

from __future__ import annotations

import math

import torch

DENOISE = ("none", "rime")
RIME_RATE = 0.1  # RIME's running statistics move this share of the way to each epoch's trusted pairs' values


def new_rime_stats() -> torch.Tensor:
    """[maximum, variance, epochs so far] of the trusted pairs' cross-entropy; all 0 before the first epoch."""
    return torch.zeros(3, dtype=torch.float64)


def rime_thresholds(stats: torch.Tensor, config) -> tuple[float, float]:
    """(lower, upper): a pair whose cross-entropy is under lower is trusted, a hard label over upper is flipped.
    Before any epoch x = 0, so every pair is trusted."""
    x, var, epochs = (float(v) for v in stats[:3])
    start, end = (float(b) for b in config.rime_beta)
    beta = max(end, start - (start - end) * epochs / config.rime_decay_epochs)
    lower = -math.log(x + 1e-8) + config.rime_alpha * x + min(beta * var, 3.0)
    return lower, -math.log(config.rime_flip)


def rime_select(probs: torch.Tensor, targets: torch.Tensor, stats: torch.Tensor, config,
                in_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """One epoch's choice from the ensemble-mean P(second preferred) ``probs`` [B] and the labels ``targets`` [B]:
    (flip [B], keep [B], trusted and flipped counts among the ``in_train`` pairs). Updates ``stats`` in place."""
    loss = torch.nn.functional.binary_cross_entropy(probs.clamp(1e-7, 1 - 1e-7), targets, reduction="none")
    lower, upper = rime_thresholds(stats, config)
    flip = ((targets == 0) | (targets == 1)) & (loss > upper)  # ties are never flipped
    trust = (loss < lower) & ~flip
    if not bool((trust & in_train).any()):  # nothing trusted (an untrained model's first look): keep them all
        trust = ~flip
    sample = loss[trust & in_train].double().cpu()
    if stats[2] == 0:
        stats[0], stats[1] = RIME_RATE * sample.max(), sample.var(unbiased=False)
    else:
        stats[0] += RIME_RATE * (sample.max() - stats[0])
        stats[1] += RIME_RATE * (sample.var(unbiased=False) - stats[1])
    stats[2] += 1
    return flip, trust | flip, int((trust & in_train).sum()), int((flip & in_train).sum())
