"""The preference reward model: an ensemble of MLPs trained with the Bradley-Terry loss.

    model = PreferenceReward(featurizer=Featurizer(spec))          # obs + action features
    report = model.fit(pairs, labels)                               # SegmentPairs, teacher labels
    total, terms = model(state, action)                             # the Reward protocol
    env = robreward.make("reach", num_envs=64, reward=model)        # trains with the same PPO

Bradley-Terry (Christiano et al. 2017; PEBBLE/B-Pref): each member m predicts a per-step reward r_m(x) and
P_m(sigma1 > sigma0) = sigmoid(R_m(sigma1) - R_m(sigma0)), R_m the sum of r_m over a segment's real steps (padded steps
past a termination are masked out). The loss is the cross-entropy against the label: 1 / 0 for a preference, 0.5 for
"equal" (a soft target, as B-Pref's ``train_soft_reward``); skipped queries (label None) are dropped. Members follow
B-Pref (3 MLPs of 256 x 3 LeakyReLU units, Adam at 3e-4, batches of 128, training stops at 97% train accuracy, at most
50 epochs per call; ``min_steps`` holds that stop off for a number of gradient steps), and each trains on its own
bootstrap resample of the labeled pairs. One departure: the per-step output is linear by default, not B-Pref's tanh.
With near-deterministic labels the loss keeps pushing return differences up, which a tanh-bounded step reward can
only do by saturating, and saturated steps no longer order segments the way their sums should: on the linear-reward
test (8 features, 1000 oracle pairs) tanh reached 0.90 held-out accuracy against 0.97 for a linear output.
``output="tanh"`` is kept for B-Pref parity; the Reward output is standardized either way.

Noisy labels, off by default: ``EnsembleConfig.label_smoothing`` trains on targets pulled toward 0.5, and
``denoise="rime"`` is RIME (Cheng et al. 2024; denoise.py): before every epoch the pairs whose label the ensemble
finds unlikely are set aside and those it finds all but impossible are trained on with the label flipped.
Hindsight PRIOR (Verma & Metcalf 2024), off by default: ``prior_weight``, prior.py.

SURF (Park et al. 2022), off by default: ``EnsembleConfig.crop`` cuts each drawn pair to a random window
(temporal augmentation) and ``pseudo_threshold`` adds each member's own sure labels of unlabeled pairs that
``fit(..., unlabeled=)`` is given (the loop passes 2,000 pairs of the round's rollout). At 50 oracle queries it
moved the reward's EPIC distance by 0.02 or less and did not make the policies better (benchmarks/RESULTS.md).

As a Reward, the model returns the ensemble mean per step, standardized by default to zero mean and unit variance
over the steps of its training segments (statistics set by each ``fit``; ``EnsembleConfig.end_value="worst"`` puts the
zero at their lowest instead, which is what ending an episode is worth to PPO): PPO sees rewards of a fixed scale
whatever the ensemble's raw scale; preferences, accuracies and EPIC distances are unaffected by that positive affine
map.
Inputs are standardized too, with statistics fixed at the first ``fit`` (observations mix metres, m/s and forces;
re-fitting them later would move every member's input under it) unless ``EnsembleConfig.restandardize`` renews a
feature whose spread grew past its factor.

Image inputs (``prefs train --reward-inputs image|both``, RL-VLM-F): ImagePreferenceReward (image_model.py) is this
ensemble with an image encoder before the members' heads; ``step_rewards`` reads a segment's frames there, and
``load`` returns one for a file saved with image inputs. Features: ``features.py`` (FeatureSpec, Featurizer and the
presets, re-exported here).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from robreward.envs.spec import TaskSpec, TaskState
from robreward.feedback.preferences.denoise import new_rime_stats, rime_select, rime_thresholds
from robreward.feedback.preferences.ensemble import (  # noqa: F401 - re-exported: model.py's names before the split
    OUTPUTS,
    EnsembleConfig,
    FitReport,
)
from robreward.feedback.preferences.features import (  # noqa: F401 - re-exported: model.py's names before the split
    AUTO,
    OBSERVATION,
    OBSERVATION_NORMS,
    FeatureSpec,
    Featurizer,
    expand_features,
    norm_field,
)
from robreward.fileio import atomic_write_bytes
from robreward.feedback.preferences.prior import SegmentWorldModel, pair_shares, prior_loss
from robreward.feedback.preferences.segments import SegmentBatch, SegmentPairs

Tensor = torch.Tensor
FORMAT = "robreward.preference_reward"
FORMAT_VERSION = 1


def labels_to_targets(labels: Sequence) -> tuple[Tensor, Tensor]:
    """(indices of answered queries [K], targets P(sigma1 preferred) [K]); None = skipped."""
    keep, targets = [], []
    for i, y in enumerate(labels):
        if y is None:
            continue
        y = float(y)
        if not (0.0 <= y <= 1.0):
            raise ValueError(f"label {i} is {y!r}: a label is P(second segment preferred) in [0, 1] "
                             "(1 right, 0 left, 0.5 equal) or None (skipped)")
        keep.append(i)
        targets.append(y)
    return torch.as_tensor(keep, dtype=torch.long), torch.as_tensor(targets, dtype=torch.float32)


def _return_gap(first: Tensor, second: Tensor, pairs: SegmentPairs) -> Tensor:
    """[B] the second segment's return minus the first's, from step rewards [B, H] and the pairs' masks."""
    return (second * pairs.second.mask).sum(-1) - (first * pairs.first.mask).sum(-1)


def _mlp(input_dim: int, hidden: Sequence[int], output: str) -> nn.Sequential:
    layers, width = [], input_dim
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.LeakyReLU()]
        width = int(h)
    layers.append(nn.Linear(width, 1))
    if output == "tanh":
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class PreferenceReward:
    """A reward ensemble trained on preferences; satisfies the Reward protocol (name, __call__)."""

    def __init__(self, input_dim: Optional[int] = None, *, featurizer: Optional[Featurizer] = None,
                 config: EnsembleConfig = EnsembleConfig(), name: str = "pref", device="cpu"):
        if featurizer is not None:
            if input_dim is not None and input_dim != featurizer.dim:
                raise ValueError(f"input_dim={input_dim} differs from the featurizer's {featurizer.dim} features")
            input_dim = featurizer.dim
        if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) or input_dim < 1:
            raise ValueError(f"give input_dim (an integer >= 1) or a featurizer, got input_dim={input_dim!r}")
        self.name = name
        self.input_dim = int(input_dim)
        self.featurizer = featurizer
        self.config = config
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(config.seed)
            self.members = nn.ModuleList(_mlp(self.input_dim, config.hidden, config.output)
                                         for _ in range(config.num_members)).to(self.device)
        self.optimizer = torch.optim.Adam(self.members.parameters(), lr=config.lr)
        self._gen = torch.Generator().manual_seed(config.seed + 1)
        self.input_mean = torch.zeros(self.input_dim, device=self.device)
        self.input_std = torch.ones(self.input_dim, device=self.device)
        self.output_mean = torch.zeros((), device=self.device)
        self.output_std = torch.ones((), device=self.device)
        self.num_fits = 0
        self._unlabeled: Optional[SegmentPairs] = None  # during a fit: the pairs for pseudo-labels
        self.rime_stats = new_rime_stats()  # denoise rime: kept across fits (denoise.py)
        self._world: Optional[SegmentWorldModel] = None  # prior_weight > 0: PRIOR's world model (prior.py)
        self._alpha: Optional[tuple[Tensor, Tensor]] = None  # during a fit: PRIOR's step shares of each pair

    # -- predictions ------------------------------------------------------------------------
    @property
    def num_members(self) -> int:
        return len(self.members)

    def member_rewards(self, features: Tensor) -> Tensor:
        """Per-member per-step rewards (raw, not output-normalized): [..., F] -> [E, ...]."""
        x = self._standardized(features.to(self.device, torch.float32))
        return torch.stack([m(x).squeeze(-1) for m in self.members])

    def _standardized(self, features: Tensor) -> Tensor:
        """What the networks read of features [..., F]: standardized, then squashed (EnsembleConfig.input_squash)."""
        x = (features - self.input_mean) / self.input_std
        return torch.sign(x) * torch.log1p(x.abs()) if self.config.input_squash == "symlog" else x

    def step_rewards(self, batch: SegmentBatch) -> Tensor:
        """[E, B, H] per-member raw rewards of every step of a batch of segments (an image model reads the
        segments' frames: ImagePreferenceReward)."""
        return self.member_rewards(batch.features)

    def segment_returns(self, batch: SegmentBatch) -> Tensor:
        """[E, B] predicted returns of each segment (real steps only)."""
        r = self.step_rewards(batch)
        return (r * batch.mask.to(self.device)).sum(-1)

    def preference_probs(self, pairs: SegmentPairs) -> Tensor:
        """[E, B] each member's P(second segment preferred)."""
        with torch.no_grad():
            return torch.sigmoid(self.segment_returns(pairs.second) - self.segment_returns(pairs.first))

    def disagreement(self, pairs: SegmentPairs) -> Tensor:
        """[B] std over members of P(second preferred): PEBBLE's disagreement for query selection."""
        return self.preference_probs(pairs).std(0, unbiased=False)

    def entropy(self, pairs: SegmentPairs) -> Tensor:
        """[B] entropy (nats) of the ensemble-mean P(second preferred)."""
        p = self.preference_probs(pairs).mean(0).clamp(1e-7, 1 - 1e-7)
        return -(p * p.log() + (1 - p) * (1 - p).log())

    def reward(self, features: Tensor) -> Tensor:
        """Ensemble-mean per-step reward of features [..., F], output-normalized if configured."""
        with torch.no_grad():
            return self.standardized(self.member_rewards(features).mean(0))

    def standardized(self, r: Tensor) -> Tensor:
        """An ensemble-mean reward r as the Reward gives it: shifted to the output zero (``end_value``) and divided
        by the training steps' std, where ``normalize_output`` is on; else r."""
        return (r - self.output_mean) / self.output_std if self.config.normalize_output else r

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The Reward protocol: (total [N], {"learned": total})."""
        if self.featurizer is None:
            raise ValueError("this PreferenceReward was built from raw feature sizes (input_dim) and has no "
                             "featurizer: build it with featurizer=Featurizer(spec) to use it as a task's reward")
        total = self.reward(self.featurizer(state, action)).to(action.device, torch.float32)
        return total, {"learned": total}

    # -- training ---------------------------------------------------------------------------
    def fit(self, pairs: SegmentPairs, labels: Sequence, *, epochs: Optional[int] = None,
            unlabeled: Optional[SegmentPairs] = None) -> FitReport:
        """Train every member on the labeled pairs (Bradley-Terry); see the module docstring. ``unlabeled``:
        pairs nobody labeled, for the pseudo-labels of ``config.pseudo_threshold`` (ignored when it is None)."""
        if len(labels) != pairs.size:
            raise ValueError(f"got {len(labels)} labels for {pairs.size} pairs: one label per pair")
        if pairs.first.features.shape[-1] != self.input_dim:
            raise ValueError(f"pairs have {pairs.first.features.shape[-1]} features per step, "
                             f"the model expects {self.input_dim}")
        keep, targets = labels_to_targets(labels)
        if len(keep) == 0:
            raise ValueError(f"no labeled pairs to train on: all {len(labels)} queries were skipped")
        cfg = self.config
        if cfg.pseudo_threshold is not None and unlabeled is not None and unlabeled.size:
            if unlabeled.first.features.shape[-1] != self.input_dim:
                raise ValueError(f"unlabeled pairs have {unlabeled.first.features.shape[-1]} features per step, "
                                 f"the model expects {self.input_dim}")
            self._unlabeled = unlabeled.to(self.device)
        else:
            self._unlabeled = None
        data = pairs.index(keep).to(self.device)
        targets = targets.to(self.device)
        restandardized = 0
        if cfg.normalize_inputs and self.num_fits == 0:
            self._set_input_stats(data)
        elif cfg.normalize_inputs and cfg.restandardize:
            restandardized = self._restandardize(data, cfg.restandardize)
        self._alpha = self._prior_shares(data) if cfg.prior_weight > 0 else None
        n = len(keep)
        order = torch.randperm(n, generator=self._gen).to(self.device)
        n_val = min(int(round(cfg.validation_fraction * n)), n - 1)  # at least one pair to train on
        val_idx, train_idx = order[:n_val], order[n_val:]
        boots = [train_idx[torch.randint(len(train_idx), (len(train_idx),), generator=self._gen).to(self.device)]
                 if cfg.bootstrap else train_idx for _ in range(self.num_members)]
        best = (math.inf, None)
        since_best, stopped = 0, "epochs"
        acc = loss_value = float("nan")
        val_acc = val_loss = None
        max_epochs = int(epochs) if epochs is not None else cfg.epochs
        epoch = steps = 0
        trusted = flipped = None
        in_train = torch.zeros(n, dtype=torch.bool, device=self.device)
        in_train[train_idx] = True
        for epoch in range(1, max_epochs + 1):
            epoch_targets, epoch_boots = targets, boots
            if cfg.denoise == "rime":
                with torch.no_grad():
                    probs = self.preference_probs(data).mean(0)
                flip, keep, trusted, flipped = rime_select(probs, targets, self.rime_stats, cfg, in_train)
                epoch_targets, epoch_boots = torch.where(flip, 1 - targets, targets), [b[keep[b]] for b in boots]
            acc, loss_value, epoch_steps = self._epoch(data, epoch_targets, epoch_boots)
            steps += epoch_steps
            if n_val:
                val_loss, val_acc = self._evaluate(data.index(val_idx), targets[val_idx])
                if val_loss < best[0] - 1e-6:
                    best, since_best = (val_loss, copy.deepcopy(self.members.state_dict())), 0
                else:
                    since_best += 1
                if since_best >= cfg.patience:
                    stopped = "patience"
                    break
            if cfg.stop_accuracy is not None and acc >= cfg.stop_accuracy and steps >= cfg.min_steps:
                stopped = "accuracy"
                break
        if n_val and best[1] is not None:
            self.members.load_state_dict(best[1])
            val_loss, val_acc = self._evaluate(data.index(val_idx), targets[val_idx])
        self._unlabeled = self._alpha = None
        self.num_fits += 1
        if cfg.normalize_output:
            self._set_output_stats(data)
        ties = int(((targets > 0) & (targets < 1)).sum())
        return FitReport(epoch, n, ties, len(labels) - n, acc, loss_value, val_acc, val_loss, stopped, trusted, flipped,
                         restandardized)

    def rime_thresholds(self) -> tuple[float, float]:
        """(lower, upper) of RIME's choice at the model's running statistics (denoise.rime_thresholds)."""
        return rime_thresholds(self.rime_stats, self.config)

    def _epoch(self, data: SegmentPairs, targets: Tensor, boots: list[Tensor]) -> tuple[float, float, int]:
        """One pass: every member steps through its own shuffled bootstrap, losses summed (B-Pref); with SURF's
        options, on cropped pairs and with the member's confident pseudo-labels of unlabeled pairs beside them.
        The accuracy is over the uncropped labeled pairs."""
        cfg = self.config
        bs = cfg.batch_size
        perms = [b[torch.randperm(len(b), generator=self._gen).to(self.device)] for b in boots]
        unlabeled = self._unlabeled
        correct = counted = 0
        total_loss, steps = 0.0, 0
        for start in range(0, len(perms[0]), bs):
            loss = 0.0
            for m, perm in enumerate(perms):
                idx = perm[start:start + bs]
                batch = data.index(idx)
                # one forward pass per segment: a crop changes the masks only, so the cropped pair's logits, the
                # whole pair's (the accuracy) and PRIOR's loss read the same step rewards
                first, second = self._member_steps(m, batch.first), self._member_steps(m, batch.second)
                logits = _return_gap(first, second, self._crop(batch))
                y = targets[idx]
                loss = loss + nn.functional.binary_cross_entropy_with_logits(logits, self._loss_targets(y))
                if cfg.crop < 1:
                    logits = _return_gap(first.detach(), second.detach(), batch)
                if self._alpha is not None:
                    loss = loss + cfg.prior_weight * (prior_loss(first, batch.first.mask, self._alpha[0][idx]) +
                                                      prior_loss(second, batch.second.mask, self._alpha[1][idx]))
                if unlabeled is not None:
                    loss = loss + cfg.pseudo_weight * self._pseudo_loss(m, unlabeled, cfg.pseudo_ratio * len(idx))
                hard = (y == 0) | (y == 1)
                correct += int(((logits > 0) == (y > 0.5))[hard].sum())
                counted += int(hard.sum())
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total_loss += float(loss.detach()) / len(perms)
            steps += 1
        return (correct / counted if counted else float("nan")), total_loss / max(steps, 1), steps

    def _loss_targets(self, y: Tensor) -> Tensor:
        """The targets the loss sees: the labels, pulled toward 0.5 by ``config.label_smoothing``."""
        eps = self.config.label_smoothing
        return y * (1 - eps) + eps / 2 if eps else y

    def _crop(self, batch: SegmentPairs) -> SegmentPairs:
        """SURF's temporal augmentation (``config.crop``): each pair's segments masked to a window of one random
        length, each at its own random start; the batch itself when crop is 1."""
        if self.config.crop >= 1:
            return batch
        b, h = batch.size, batch.first.length
        shortest = max(1, math.ceil(self.config.crop * h))
        length = torch.randint(shortest, h + 1, (b, 1), generator=self._gen)
        t = torch.arange(h)

        def window(seg: SegmentBatch) -> SegmentBatch:
            start = (torch.rand((b, 1), generator=self._gen) * (h - length + 1)).long()
            inside = ((t >= start) & (t < start + length)).to(seg.mask.device)
            return seg._replace(mask=seg.mask & inside)

        return SegmentPairs(window(batch.first), window(batch.second))

    def _pseudo_loss(self, m: int, unlabeled: SegmentPairs, count: int) -> Tensor:
        """SURF's pseudo-label loss of member m on ``count`` random unlabeled pairs: the BCE against its own
        labels (``pseudo_labels``) on the pairs it is sure of, cropped like the labeled ones; 0 when none."""
        idx = torch.randint(unlabeled.size, (count,), generator=self._gen).to(self.device)
        batch = unlabeled.index(idx)
        sure, targets = self.pseudo_labels(m, batch)
        if not bool(sure.any()):
            return torch.zeros((), device=self.device)
        logits = self._member_logits(m, self._crop(batch.index(sure)))
        return nn.functional.binary_cross_entropy_with_logits(logits, targets[sure])

    def pseudo_labels(self, m: int, pairs: SegmentPairs) -> tuple[Tensor, Tensor]:
        """(sure [B] bool, labels [B]) of member m: its hard prediction (1: second preferred) and whether its
        P(second preferred) is at least ``config.pseudo_threshold`` from a coin flip either way."""
        if self.config.pseudo_threshold is None:
            raise ValueError("pseudo_labels needs config.pseudo_threshold (SURF's tau), which is None")
        with torch.no_grad():
            p = torch.sigmoid(self._member_logits(m, pairs.to(self.device)))
        tau = float(self.config.pseudo_threshold)
        return (p >= tau) | (p <= 1 - tau), (p > 0.5).float()

    def _member_logits(self, m: int, batch: SegmentPairs) -> Tensor:
        return _return_gap(self._member_steps(m, batch.first), self._member_steps(m, batch.second), batch)

    def _member_steps(self, m: int, seg: SegmentBatch) -> Tensor:
        """[B, H] member m's raw per-step rewards of a batch of segments (with gradients)."""
        return self.members[m](self._standardized(seg.features)).squeeze(-1)

    def _prior_shares(self, data: SegmentPairs) -> tuple[Tensor, Tensor]:
        """PRIOR's step shares [n, H] of each pair's first and second segment (prior.pair_shares); the world model
        is made at the first fit that needs it and is not saved with the model (a resumed run trains a new one)."""
        if self._world is None:
            self._world = SegmentWorldModel(self.input_dim, seed=self.config.seed + 2).to(self.device)
        return pair_shares(self._world, data, self.input_mean, self.input_std, self.config.prior_steps)

    def _evaluate(self, data: SegmentPairs, targets: Tensor) -> tuple[float, Optional[float]]:
        """(mean member BCE loss, ensemble-mean accuracy on non-tie pairs) without gradients."""
        with torch.no_grad():
            logits = self.segment_returns(data.second) - self.segment_returns(data.first)  # [E, B]
            loss = float(nn.functional.binary_cross_entropy_with_logits(
                logits, targets.expand_as(logits)))
            hard = (targets == 0) | (targets == 1)
            p = torch.sigmoid(logits).mean(0)
            acc = float(((p > 0.5) == (targets > 0.5))[hard].float().mean()) if hard.any() else None
        return loss, acc

    @staticmethod
    def _step_moments(data: SegmentPairs) -> tuple[Tensor, Tensor]:
        """(mean, std) per feature over every unmasked step of the pairs."""
        steps = torch.cat([seg.features[seg.mask] for seg in data])
        return steps.mean(0), steps.std(0, unbiased=False)

    def _set_input_stats(self, data: SegmentPairs) -> None:
        self.input_mean, std = self._step_moments(data)
        self.input_std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant features pass through

    def _restandardize(self, data: SegmentPairs, factor: float) -> int:
        """New statistics for the features whose spread on data exceeds factor x the one in use; how many."""
        mean, std = self._step_moments(data)
        grown = std > factor * self.input_std
        self.input_mean = torch.where(grown, mean, self.input_mean)
        self.input_std = torch.where(grown, std, self.input_std)
        return int(grown.sum())

    def _set_output_stats(self, data: SegmentPairs) -> None:
        with torch.no_grad():
            steps = torch.cat([self.step_rewards(seg).mean(0)[seg.mask] for seg in data])
        end = self.config.end_value  # where the zero sits: what ending an episode is worth to PPO
        if end == "worst":
            self.output_mean = steps.min()
        elif end == "learned":
            self.output_mean = torch.zeros_like(steps[0])
        else:
            self.output_mean = steps.mean()
        std = steps.std(unbiased=False)
        self.output_std = std if std > 1e-8 else torch.ones_like(std)

    # -- save / load ------------------------------------------------------------------------
    def to(self, device) -> "PreferenceReward":
        self.device = torch.device(device)
        self.members.to(self.device)
        for name in ("input_mean", "input_std", "output_mean", "output_std"):
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def save(self, path) -> Path:
        """Write weights, statistics, config and feature spec atomically (robreward.fileio)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = dataclasses.asdict(self.config)
        config["hidden"] = [int(h) for h in config["hidden"]]
        payload = {
            "format": FORMAT, "version": FORMAT_VERSION, "name": self.name, "input_dim": self.input_dim,
            "config": config, "features": self.featurizer.to_dict() if self.featurizer else None,
            "num_fits": self.num_fits,
            "state_dict": {k: v.detach().cpu() for k, v in self.members.state_dict().items()},
            "stats": {k: getattr(self, k).detach().cpu() for k in self._stat_names()},
            **self._extra_payload(),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return atomic_write_bytes(path, buffer.getvalue())

    def _stat_names(self) -> tuple[str, ...]:
        return ("input_mean", "input_std", "output_mean", "output_std", "rime_stats")

    def _extra_payload(self) -> dict:
        return {}

    @classmethod
    def load(cls, path, spec: Optional[TaskSpec] = None, device="cpu") -> "PreferenceReward":
        """Load a saved model. The featurizer's task comes from ``spec``, else by the saved task name."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise FileNotFoundError(f"no preference reward model at {str(path)!r}") from None
        except Exception as err:
            raise ValueError(f"{str(path)!r} is not a readable preference reward model: {err}") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a robreward preference reward model (format {FORMAT!r})")
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} has format version {payload.get('version')}, this robreward reads "
                             f"version {FORMAT_VERSION}")
        config = dict(payload["config"])
        config["hidden"] = tuple(config["hidden"])
        featurizer = None
        if payload["features"] is not None:
            feats = payload["features"]
            if spec is None:
                from robreward.envs.registry import get_task

                spec = get_task(feats["task"], allow_folder=False)  # a file names a task, never a folder
            elif spec.name != feats["task"]:
                raise ValueError(f"model {str(path)!r} was trained on task {feats['task']!r}, got spec {spec.name!r}")
            featurizer = Featurizer(spec, FeatureSpec(tuple(feats["fields"]), bool(feats["action"])))
        if payload.get("image") is not None:  # an image-input model (image_model.py)
            from robreward.feedback.preferences.image_model import ImageInputs, ImagePreferenceReward

            image = payload["image"]
            if featurizer is None or not isinstance(image, dict):
                raise ValueError(f"{str(path)!r} is not a readable image preference reward model (no feature spec)")
            model = ImagePreferenceReward(featurizer, ImageInputs(**image), config=EnsembleConfig(**config),
                                          name=payload["name"], device="cpu")
        else:
            model = cls(payload["input_dim"], featurizer=featurizer, config=EnsembleConfig(**config),
                        name=payload["name"], device="cpu")
        model.members.load_state_dict(payload["state_dict"])
        for k, v in payload["stats"].items():
            setattr(model, k, v)
        model.num_fits = int(payload["num_fits"])
        return model.to(device)



def load_preference_reward(path, spec=None, device="cpu") -> "PreferenceReward":
    """The reward a preference run learned (``pref:RUN`` of ``--reward``): RUN is a `robreward prefs
    train` run directory (its last round's model, ``reward/round_KKK.pt``) or a saved model file."""
    path = Path(path)
    if path.is_dir():
        rounds = sorted((path / "reward").glob("round_*.pt"))
        if not rounds:
            raise FileNotFoundError(f"{str(path)!r} has no learned reward (reward/round_*.pt): pass the --out DIR "
                                    "of a `robreward prefs train` run that finished at least one feedback round")
        path = rounds[-1]
    elif not path.is_file():
        raise FileNotFoundError(f"pref:{path}: no such preference run directory or model file; pass "
                                "pref:RUN_DIR (the --out of `robreward prefs train`) or pref:MODEL.pt")
    return PreferenceReward.load(path, spec, device=device)

__all__ = ["EnsembleConfig", "FeatureSpec", "Featurizer", "FitReport", "PreferenceReward", "labels_to_targets",
           "load_preference_reward"]
