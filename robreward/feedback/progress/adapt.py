"""One-shot adaptation (Robo-Dopamine): fine-tune a fitted progress model on one demonstration of a task variant
(`robreward progress adapt RUN --demos ONE.h5 --out NEW`; docs/progress.md "One-shot adaptation")."""

from __future__ import annotations

import numpy as np
import torch

from robreward.feedback.progress.ensemble import encoder_key, members_of
from robreward.feedback.progress.metrics import episode_metrics
from robreward.feedback.progress.model import Episode, ProgressConfig, ProgressNet, stack_frames, train_net


def adapt_progress(net: ProgressNet, episodes: list[Episode], config: ProgressConfig, epochs: int = 100,
                   lr: float = 1e-3) -> dict:
    """One-shot adaptation (Robo-Dopamine): fine-tune a fitted net on the episodes of one new demo (its
    normalization is kept, its feature range widened to the demo's states); metrics on those episodes, before and
    after (they are the training data). Image inputs: the episodes carry their frames (attach_frames)."""
    if not any(e.success for e in episodes):
        raise ValueError("the adaptation demo holds no successful episode: pass one successful demonstration")
    before = episode_metrics(net, episodes)
    for m in members_of(net):  # the new demo's states are the model's range too
        m.widen_range(torch.from_numpy(np.concatenate([e.obs for e in episodes])))
    for name, p in net.named_parameters():
        p.requires_grad_(not (net.frozen_encoder and encoder_key(name)))
    net.train()
    losses = np.mean([train_net(m, stack_frames(episodes, config.failure_cap, m), config, epochs, lr, config.seed + 1)
                      for m in members_of(net)], axis=0).tolist()  # each member of an ensemble
    net.eval()
    return {"before": before, "after": episode_metrics(net, episodes), "loss_first": losses[0],
            "loss_last": losses[-1], "epochs": epochs, "lr": lr}
