"""The preference reward ensemble's settings (EnsembleConfig: B-Pref / PEBBLE defaults, each option's measured
effect in its docstring) and what one fit reports (FitReport); the model that uses them is model.py."""

from __future__ import annotations

import dataclasses
from typing import Optional

from robreward.feedback.preferences.denoise import DENOISE

OUTPUTS = ("linear", "tanh")
INPUT_SQUASHES = ("none", "symlog")  # EnsembleConfig.input_squash
END_VALUES = ("mean", "worst", "learned")  # EnsembleConfig.end_value


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Reward ensemble and its training (defaults: B-Pref / PEBBLE)."""

    num_members: int = 3
    """Ensemble size E."""
    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of each member (LeakyReLU)."""
    output: str = "linear"
    """Per-step output: linear, or tanh (bounded to [-1, 1], B-Pref); see model.py's docstring."""
    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 128
    """Pairs per gradient step (per member)."""
    epochs: int = 50
    """Most passes over the labeled pairs per fit call."""
    bootstrap: bool = True
    """Each member trains on its own bootstrap resample of the pairs (else all on the same pairs)."""
    stop_accuracy: Optional[float] = 0.97
    """Stop a fit once the epoch's train accuracy reaches this (B-Pref: 0.97); None: never."""
    min_steps: int = 0
    """Gradient steps (per member, counted within one fit call) before ``stop_accuracy`` may end the fit: with few
    labels an epoch is one step, and 97% train accuracy can come after a dozen of them. 0: B-Pref's stop as is."""
    validation_fraction: float = 0.0
    """Hold out this fraction of pairs; stop when its loss has not improved for `patience` epochs
    and keep the best epoch's weights. 0: no validation split."""
    patience: int = 10
    """Epochs without validation improvement before stopping (with validation_fraction > 0)."""
    normalize_inputs: bool = True
    """Standardize features with statistics set at the first fit (and see ``restandardize``)."""
    restandardize: float = 0.0
    """At every later fit, a feature whose spread (std over the fit's labeled steps) is more than this many times
    the spread it is standardized with gets new statistics (mean and std of those steps); the network's weights
    stay. For a feature that barely varied at the first fit, e.g. a cube's height before any policy lifts it: 0.1 mm
    of spread there puts a lifted cube thousands of stds out. 0: the statistics stay as the first fit set them."""
    input_squash: str = "none"
    """What the standardized inputs pass through before the networks: ``none``, or ``symlog`` (sign(x) log(1 + |x|),
    DreamerV3's squash): near the mean a feature reads as it is, far out its spikes are compressed and keep their
    order. Meant for features whose first-fit spread was tiny (a cube at rest) or that spike (contact forces).
    Measured offline only (benchmarks/RESULTS.md): ant-run's labels fit better, cheetah-run's, push's and lift's
    worse; not a default."""
    normalize_output: bool = True
    """As a Reward, standardize the ensemble mean over the training steps (set at every fit)."""
    end_value: str = "mean"
    """Where the standardized reward puts zero, which is what a step after an episode's end is worth to PPO: a
    segment's predicted return sums its real steps only, so labels pin that value only where a queried segment
    ended, and they seldom do. ``mean``: zero at the training steps' mean (ending is worth an average step); ``worst``:
    zero at their lowest, so no trained step is worth less than ending (Kostrikov et al. 2019, DAC: the implicit
    reward of the absorbing state biases an agent towards or away from ending episodes). Every robreward task's
    termination is a failure (a fall, a cube off the table). Scale (the steps' std) is the same either way. Measured
    on ant-run (benchmarks/RESULTS.md): the lowest step sits 6-23 std under the mean, so ``worst`` pays for standing
    alive (0.19, 0.12 of the hand return at 1000 queries against 0.59, 0.35 with ``mean``); not a default.
    ``learned``: zero where the ensemble's raw output has it. The labels put it there only through queried segments
    that ended (a segment's return sums its real steps, so a pair of a full and a cut segment says what the missing
    steps were worth); with none it is wherever the networks' offset drifted. Measured on hopper-hop-v1, whose
    policies fall often enough for 4-8% of the labeled pairs to hold an ending (benchmarks/RESULTS.md)."""
    seed: int = 0
    """Seeds member initialization, bootstraps, shuffles and validation splits."""
    crop: float = 1.0
    """SURF's temporal augmentation (Park et al. 2022): every time a pair is drawn for a gradient step, both
    segments are cut to a window of one random length, uniform in [crop * H, H] steps, each at its own random
    start (the label kept). 1.0: off."""
    pseudo_threshold: Optional[float] = None
    """SURF's pseudo-labels: the unlabeled pairs given to ``fit`` train each member with the label it predicts
    itself, on the pairs it is at least this sure of (P or 1 - P >= threshold). None: off."""
    pseudo_ratio: int = 4
    """With pseudo-labels: unlabeled pairs drawn per labeled pair of each minibatch (SURF's mu)."""
    pseudo_weight: float = 1.0
    """With pseudo-labels: weight of their loss beside the labeled pairs' (SURF's lambda)."""
    label_smoothing: float = 0.0
    """Train on targets y (1 - eps) + eps / 2 instead of y (a label is never fully trusted); 0: off."""
    denoise: str = "none"
    """none, or rime: RIME's selection of trusted labels and flipping of all-but-impossible ones before every
    epoch (Cheng et al. 2024; the module docstring)."""
    rime_alpha: float = 0.5
    """RIME: the lower threshold is -ln(x) + alpha * x + min(beta * v, 3), x the running maximum and v the running
    variance of the trusted pairs' cross-entropy (RIME's alpha)."""
    rime_beta: tuple[float, float] = (3.0, 1.0)
    """RIME: beta, from the first value down to the second, linearly over ``rime_decay_epochs`` epochs."""
    rime_decay_epochs: int = 30
    """RIME: epochs (summed over fits) over which beta decays (RIME's k)."""
    rime_flip: float = 0.001
    """RIME: a hard label the ensemble gives less than this probability is flipped (upper threshold -ln of it)."""
    prior_weight: float = 0.0
    """Hindsight PRIOR (Verma & Metcalf 2024; prior.py): weight of the auxiliary loss that pulls each step's reward
    toward its share of the segment's return, the shares from a world model's attention; 0: off."""
    prior_steps: int = 200
    """PRIOR: Adam steps of the world model per fit (it keeps training from fit to fit)."""

    def __post_init__(self):
        if self.num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {self.num_members}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of widths >= 1, got {self.hidden!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}: choose one of {', '.join(OUTPUTS)}")
        if not (self.lr > 0) or self.batch_size < 1 or self.epochs < 1 or self.patience < 1:
            raise ValueError("lr must be > 0 and batch_size, epochs, patience >= 1; got "
                             f"lr={self.lr}, batch_size={self.batch_size}, epochs={self.epochs}, "
                             f"patience={self.patience}")
        if self.stop_accuracy is not None and not (0 < self.stop_accuracy <= 1):
            raise ValueError(f"stop_accuracy must be in (0, 1] or None, got {self.stop_accuracy}")
        if isinstance(self.min_steps, bool) or not isinstance(self.min_steps, int) or self.min_steps < 0:
            raise ValueError(f"min_steps must be a whole number of gradient steps >= 0, got {self.min_steps!r}")
        if not (0 <= self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not (0 < self.crop <= 1):
            raise ValueError(f"crop must be in (0, 1] (the shortest window as a share of the segment; 1: off), "
                             f"got {self.crop}")
        if self.pseudo_threshold is not None and not (0.5 < self.pseudo_threshold < 1):
            raise ValueError(f"pseudo_threshold must be in (0.5, 1) or None (off), got {self.pseudo_threshold}")
        if not (0 <= self.label_smoothing < 1):
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.denoise not in DENOISE:
            raise ValueError(f"unknown denoise {self.denoise!r}: choose one of {', '.join(DENOISE)}")
        beta = tuple(float(b) for b in self.rime_beta)
        object.__setattr__(self, "rime_beta", beta)  # a list from YAML or a run's config.json
        if len(beta) != 2 or not (beta[0] >= beta[1] >= 0) or self.rime_decay_epochs < 1 or \
                not (self.rime_alpha >= 0) or not (0 < self.rime_flip < 0.5):
            raise ValueError("RIME needs rime_beta = (start, end) with start >= end >= 0, rime_decay_epochs >= 1, "
                             f"rime_alpha >= 0 and rime_flip in (0, 0.5); got {self.rime_beta}, "
                             f"{self.rime_decay_epochs}, {self.rime_alpha}, {self.rime_flip}")
        if not (self.prior_weight >= 0) or self.prior_steps < 1:
            raise ValueError(f"prior_weight must be >= 0, prior_steps >= 1: {self.prior_weight}, {self.prior_steps}")
        if self.input_squash not in INPUT_SQUASHES:
            raise ValueError(f"unknown input_squash {self.input_squash!r}: choose one of {', '.join(INPUT_SQUASHES)}")
        if self.end_value not in END_VALUES:
            raise ValueError(f"unknown end_value {self.end_value!r}: choose one of {', '.join(END_VALUES)}")
        if not (self.restandardize == 0 or self.restandardize > 1):
            raise ValueError(f"restandardize must be 0 (off) or a factor > 1 of a feature's spread, "
                             f"got {self.restandardize}")
        if self.pseudo_ratio < 1 or not (self.pseudo_weight > 0):
            raise ValueError(f"pseudo_ratio must be >= 1 and pseudo_weight > 0, got {self.pseudo_ratio}, "
                             f"{self.pseudo_weight}")


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What one ``fit`` call did."""

    epochs: int
    num_pairs: int  # labeled pairs trained on (ties included, skipped excluded)
    num_ties: int
    num_skipped: int
    train_accuracy: float  # last epoch, over members and non-tie pairs (nan if all ties)
    train_loss: float
    validation_accuracy: Optional[float]
    validation_loss: Optional[float]
    stopped: str  # "accuracy", "patience" or "epochs"
    trusted: Optional[int] = None  # denoise rime, the last epoch: training pairs kept with their label
    flipped: Optional[int] = None  # ... and kept with the label flipped (the others were set aside)
    restandardized: int = 0  # features given new input statistics before this fit (EnsembleConfig.restandardize)
