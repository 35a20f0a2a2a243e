"""K progress nets, each fitted on its own split of the demos, scored as one: Φ and Δ are the members' means.

    config = ProgressConfig(task="lift", demos=(...,), members=5)   # `robreward progress fit --members 5`
    net, report = fit_progress(config)                                # a ProgressEnsemble; net.phi(obs) as before

*Why.* A net fitted on ten demos is exact where its demos went and arbitrary a few centimetres beside them, which
is where PPO goes; each member's arbitrary parts are its own, so their mean keeps what they agree on (the demos'
ordering) and smooths the rest, and where one net must hold a quarter of ten demos out, the members together
train on every one. What it did for PPO on lift (benchmarks/RESULTS.md "Progress rewards") is within the
seed-to-seed spread there: it is an option, not the default.

*Member k* is the single net ``fit_progress`` fits with seed ``config.seed + k``: its own held-out split, initial
weights, input noise and pairs (member 0 is the net ``members=1`` fits). *Held-out metrics* are out-of-bag:
each episode some member never trained on is scored by the mean Φ of the members that held it out (bagging's
estimate; episodes every member trained on are not scored). The run directory saves the members in one
model.pt (``members.K.*`` tensors, loaded with weights_only) and each member's split in progress.json.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from robreward.envs.spec import TaskSpec
    from robreward.feedback.progress.model import Episode, ProgressConfig, ProgressNet


class ProgressEnsemble(nn.Module):
    """The members' mean Φ [N] in [0, 1] and Δ [N] in [-1, 1]; reads what its members read (``inputs``)."""

    def __init__(self, members: Sequence[ProgressNet]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least 2 members (members=1 is a single ProgressNet)")
        if len({(m.inputs, m.parts) for m in members}) != 1:
            raise ValueError("the members of a progress ensemble must read the same inputs")
        self.members = nn.ModuleList(members)
        first = members[0]
        self.inputs, self.parts = first.inputs, first.parts
        self.uses_state, self.uses_image = first.uses_state, first.uses_image

    @property
    def frozen_encoder(self) -> bool:
        return bool(self.members[0].frozen_encoder)

    def phi(self, obs: torch.Tensor | None = None, frames=None) -> torch.Tensor:
        """The members' mean progress [N] of observations [N, obs_dim] and/or uint8 frames [N, H, W, 3]."""
        return torch.stack([m.phi(obs, frames) for m in self.members]).mean(0)

    def delta(self, obs_i=None, obs_j=None, frames_i=None, frames_j=None) -> torch.Tensor:
        """The members' mean progress from o_i to o_j [N] in [-1, 1]."""
        return torch.stack([m.delta(obs_i, obs_j, frames_i, frames_j) for m in self.members]).mean(0)


def members_of(net) -> list:
    """The nets of a ProgressEnsemble, or ``[net]``."""
    return list(net.members) if isinstance(net, ProgressEnsemble) else [net]


def encoder_key(key: str) -> bool:
    """Whether a state_dict key is an image encoder's (a net's ``image_encoder.*``, a member's
    ``members.K.image_encoder.*``): a frozen pretrained encoder loads from its source, not from model.pt."""
    return key.startswith("image_encoder.") or (key.startswith("members.") and ".image_encoder." in key)


def out_of_bag(net, episodes: list[Episode], held_out: Sequence[set]) -> tuple[list[Episode], list[np.ndarray]]:
    """The episodes some member of ``net`` (a ProgressEnsemble, or a single net: one member) held out
    (``held_out[k]``: member k's {(source, index)}), each with the mean Φ curve of the members that never
    trained on it."""
    from robreward.feedback.progress.metrics import progress_curves

    nets = members_of(net)
    scored, curves = [], []
    for e in episodes:
        ids = [k for k, held in enumerate(held_out) if (e.source, e.index) in held]
        if ids:
            scored.append(e)
            curves.append(np.mean([progress_curves(nets[k], [e])[0] for k in ids], axis=0))
    return scored, curves


def held_out_sets(meta_or_report: dict) -> list[set]:
    """Each member's held-out {(source, index)} from a report (or progress.json's ``metrics``); a single net's
    split is one member's."""
    splits = [m["split"] for m in meta_or_report["members"]] if "members" in meta_or_report else \
        [meta_or_report["split"]]
    return [{(str(src), int(i)) for src, i in split["held_out"]} for split in splits]


def fit_ensemble(episodes: list[Episode], config: ProgressConfig, spec: TaskSpec, cache_dir=None):
    """(ProgressEnsemble, report): ``config.members`` nets, member k fit_split's net of seed + k on its own split;
    report: out-of-bag held-out metrics, the ensemble on every episode (``train``), and each member's own."""
    from robreward.feedback.progress.metrics import episode_metrics
    from robreward.feedback.progress.model import attach_frames, fit_split, split_episodes

    nets, members = [], []
    for k in range(config.members):
        member = dataclasses.replace(config, seed=config.seed + k, members=1)
        train, held = split_episodes(episodes, config.holdout, member.seed)
        net, report = fit_split(train, held, member, spec, cache_dir)
        if nets and net.frozen_encoder:  # one frozen encoder for all (the same weights, loaded from its source)
            net.image_encoder = nets[0].image_encoder
        nets.append(net)
        members.append({"seed": member.seed, "split": report["split"], "loss_first": report["loss_first"],
                        "loss_last": report["loss_last"],
                        **{part: {key: report[part][key] for key in ("value_order_correlation", "final_progress_auroc",
                                                                     "successes", "failures")}
                           for part in ("held_out", "train")}})
    ensemble = ProgressEnsemble(nets)
    if config.uses_image:
        episodes = attach_frames(episodes, spec, config, cache_dir)
    scored, curves = out_of_bag(ensemble, episodes, held_out_sets({"members": members}))
    held_out = episode_metrics(None, scored, curves)
    held_out["scored"] = "out of bag: each episode by the members that held it out"
    return ensemble, {"held_out": held_out, "train": episode_metrics(ensemble, episodes), "members": members,
                      "loss_first": float(np.mean([m["loss_first"] for m in members])),
                      "loss_last": float(np.mean([m["loss_last"] for m in members])),
                      "frames": int(sum(len(e.obs) for e in episodes))}
