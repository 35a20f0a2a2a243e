"""A progress model learned from demonstrations (VLAC / Robo-Dopamine style), on state inputs.

    episodes = load_episodes(["demos/push-expert.h5", "demos/push-noisy.h5"], spec)
    model, report = fit_progress(ProgressConfig(task="push", demos=(...,), negatives=(...,)))
    phi = model.phi(obs)              # obs [N, obs_dim] -> progress [N] in [0, 1]
    delta = model.delta(obs_i, obs_j) # -> progress delta [N] in [-1, 1] (VLAC's pairwise head)

*Inputs.* "state": the task's observation ``spec.observe(TaskState)``, exactly what the policy sees
and what a demo file stores per step (``obs`` [T+1, obs_dim]), so fitting needs no replay and the
reward computes the same vector from the env's post-step state.

*Targets.* A successful episode's progress rises linearly from 0 at its first state to 1 at its first
successful step and stays 1 after it (the task is solved; its later states are indistinguishable in
progress). A failed episode (from ``--negatives``, or any episode whose ``success`` is false) rises at
most to ``failure_cap`` (default 0.5) at its last step: it moved, it did not finish. Hard negatives:
every ordered pair (i < j) of a successful ramp must have Φ(o_j) > Φ(o_i) (a ranking loss, so the
time-reversed order is the wrong one), and the pairwise head is trained on pairs in both orders and on
pairs drawn from shuffled frames of different episodes, with the target difference of their targets,
so a reversed or shuffled segment gets a negative or uninformative delta.

*Held-out metrics.* A fixed-seed share of the episodes (successes and failures separately) is never
trained on. ``value_order_correlation``: Spearman's rank correlation of Φ against time over each
held-out successful episode's ramp (steps 0 .. first success), averaged. ``final_progress_auroc``:
the AUROC of Φ at the last step, successful vs failed held-out episodes (None when the held-out set
has no failure).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from robreward.envs.spec import TaskSpec

INPUTS = ("state", "image", "both")


@dataclasses.dataclass(frozen=True)
class ProgressConfig:
    """How a progress model is fitted (`robreward progress fit`); saved in the run's progress.json."""

    task: str
    """A task of the suite (or a task folder named on the command line)."""
    demos: tuple[str, ...]
    """Demo datasets (HDF5) of the task: their successful episodes teach what progress looks like."""
    negatives: tuple[str, ...] = ()
    """More datasets, e.g. noisy or failed episodes: their failures are the negatives (successes count too)."""
    inputs: str = "state"
    """What the model reads: state (the task's observation); image and both are not built yet."""
    holdout: float = 0.25
    """The share of episodes (successes and failures separately, at least one success) never trained on."""
    epochs: int = 250
    """Full-batch training epochs."""
    hidden: int = 128
    """Width of the two hidden layers."""
    lr: float = 3e-3
    """Adam's learning rate."""
    failure_cap: float = 0.5
    """A failed episode's target progress rises linearly to this at its last step."""
    rank_weight: float = 1.0
    """Weight of the ranking loss (Φ rises along each successful ramp)."""
    pair_weight: float = 0.5
    """Weight of the pairwise head's loss."""
    noise: float = 0.05
    """Std of the Gaussian noise added to normalized inputs while training (augmentation)."""
    seed: int = 0
    """Seeds the held-out split, the initial weights and the sampled pairs."""

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"--inputs must be one of {', '.join(INPUTS)}, got {self.inputs!r}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"--holdout must be in (0, 1), got {self.holdout}")
        if self.epochs < 1 or self.hidden < 1 or self.lr <= 0:
            raise ValueError("--epochs and --hidden must be >= 1 and --lr > 0")
        if not 0.0 <= self.failure_cap < 1.0:
            raise ValueError(f"failure_cap must be in [0, 1), got {self.failure_cap}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")


@dataclasses.dataclass(frozen=True)
class Episode:
    """One demo episode as the model sees it."""

    obs: np.ndarray
    """[T+1, obs_dim] float32: row 0 the first observation, row t the one after step t."""
    success: bool
    first_success: int
    """The obs row of the first successful step (-1 for a failed episode)."""
    source: str
    index: int

    def targets(self, failure_cap: float) -> np.ndarray:
        """Target progress per obs row [T+1] (module docstring)."""
        steps = np.arange(len(self.obs), dtype=np.float32)
        if self.success:
            return np.minimum(steps / max(self.first_success, 1), 1.0).astype(np.float32)
        return (failure_cap * steps / max(len(self.obs) - 1, 1)).astype(np.float32)


def load_episodes(paths: Sequence, spec: TaskSpec) -> list[Episode]:
    """Every episode of the datasets; ValueError for a dataset of another task or model."""
    from robreward.demos.format import DemoDataset

    episodes = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"demo dataset {str(path)!r} not found: record one with "
                                    f"`robreward demos record --task {spec.name} --out FILE.h5`")
        with DemoDataset(path) as ds:
            if ds.attrs.get("task") != spec.name:
                raise ValueError(f"{path} holds demos of task {ds.attrs.get('task')!r}, not {spec.name!r}: pass "
                                 f"demos of {spec.name} (robreward demos record --task {spec.name})")
        with DemoDataset(path, task=spec) as ds:  # also refuses another model or task version
            if int(ds.attrs.get("obs_dim", spec.obs_dim)) != spec.obs_dim:
                raise ValueError(f"{path}: observations of size {ds.attrs.get('obs_dim')}, task {spec.name} has "
                                 f"{spec.obs_dim}: re-record the demos with this version of the task")
            for i in range(len(ds)):
                ep = ds.episode(i, fields=("obs", "success"))
                flags = np.asarray(ep["success"], dtype=bool)
                success = bool(flags.any())
                episodes.append(Episode(np.asarray(ep["obs"], np.float32), success,
                                        int(np.argmax(flags)) + 1 if success else -1, str(path), i))
    return episodes


def split_episodes(episodes: list[Episode], holdout: float, seed: int) -> tuple[list[Episode], list[Episode]]:
    """(train, held_out): ``holdout`` of the successes and of the failures, each at least one where the other
    side keeps one; ValueError without successes or with too few to hold any out."""
    wins = [e for e in episodes if e.success]
    losses = [e for e in episodes if not e.success]
    if not wins:
        raise ValueError("the demos hold no successful episode: progress is learned from successes; pass a dataset "
                         "with successful demos (e.g. `robreward demos record --task T --source expert`)")
    if len(wins) < 2:
        raise ValueError(f"only {len(wins)} successful episode: at least 2 are needed so one can be held out to "
                         "check the model; record more demos")
    rng = np.random.default_rng(seed)
    train, held = [], []
    for group in (wins, losses):
        order = rng.permutation(len(group))
        n_held = min(max(1, int(round(holdout * len(group)))), len(group) - 1) if len(group) >= 2 else 0
        held += [group[i] for i in sorted(order[:n_held])]
        train += [group[i] for i in sorted(order[n_held:])]
    return train, held


class ProgressNet(nn.Module):
    """obs [N, D] -> embedding; Φ head (sigmoid, [0, 1]) and a pairwise Δ head (tanh, [-1, 1])."""

    def __init__(self, obs_dim: int, hidden: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.torso = nn.Sequential(nn.Linear(obs_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.phi_head = nn.Linear(hidden, 1)
        self.delta_head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def embed(self, obs: torch.Tensor, noise: float = 0.0) -> torch.Tensor:
        x = (obs - self.mean) / self.std
        if noise > 0:
            x = x + noise * torch.randn_like(x)
        return self.torso(x)

    def phi_logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.phi_head(emb).squeeze(-1)

    def delta_of(self, emb_i: torch.Tensor, emb_j: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.delta_head(torch.cat([emb_i, emb_j, emb_j - emb_i], -1)).squeeze(-1))

    def phi(self, obs: torch.Tensor) -> torch.Tensor:
        """Progress [N] in [0, 1] of observations [N, obs_dim]."""
        return torch.sigmoid(self.phi_logits(self.embed(obs)))

    def delta(self, obs_i: torch.Tensor, obs_j: torch.Tensor) -> torch.Tensor:
        """Progress from o_i to o_j [N] in [-1, 1]."""
        return self.delta_of(self.embed(obs_i), self.embed(obs_j))


class FrameBatch(NamedTuple):
    """Every training frame stacked: obs [F, D], target [F], episode id [F], ramp mask [F] (on a success ramp)."""

    obs: torch.Tensor
    target: torch.Tensor
    episode: torch.Tensor
    ramp: torch.Tensor


def stack_frames(episodes: list[Episode], failure_cap: float) -> FrameBatch:
    obs = torch.from_numpy(np.concatenate([e.obs for e in episodes]))
    target = torch.from_numpy(np.concatenate([e.targets(failure_cap) for e in episodes]))
    episode = torch.cat([torch.full((len(e.obs),), k, dtype=torch.long) for k, e in enumerate(episodes)])
    ramp = torch.cat([torch.arange(len(e.obs)) <= e.first_success if e.success else torch.zeros(len(e.obs), dtype=torch.bool)
                      for e in episodes])
    return FrameBatch(obs, target, episode, ramp)


def _ordered_pairs(frames: FrameBatch, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs (i, j) of ramp frames of one successful episode, i earlier than j (frames are stored in order)."""
    ramp_ids = torch.nonzero(frames.ramp).flatten()
    i = ramp_ids[torch.randint(len(ramp_ids), (n,), generator=gen)]
    j = ramp_ids[torch.randint(len(ramp_ids), (n,), generator=gen)]
    keep = (frames.episode[i] == frames.episode[j]) & (i != j)
    i, j = i[keep], j[keep]
    return torch.minimum(i, j), torch.maximum(i, j)


def train_net(net: ProgressNet, frames: FrameBatch, config: ProgressConfig, epochs: int, lr: float,
              seed: int) -> list[float]:
    """Fit Φ (regression to the targets + ranking along success ramps) and Δ (pairs in both orders, same episode
    and shuffled across episodes); returns the loss per epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    n_frames = len(frames.obs)
    for _ in range(epochs):
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))  # the input noise, reproducible
        emb = net.embed(frames.obs, noise=config.noise)
        logits = net.phi_logits(emb)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, frames.target)
        i, j = _ordered_pairs(frames, 1024, gen)
        if len(i) and config.rank_weight > 0:  # time order along success ramps; the reversed order is wrong
            loss = loss + config.rank_weight * nn.functional.softplus(-(logits[j] - logits[i]) * 4.0).mean()
        if config.pair_weight > 0:  # Δ on same-episode pairs in random order and shuffled cross-episode pairs
            a = torch.randint(n_frames, (1024,), generator=gen)
            b = torch.randint(n_frames, (1024,), generator=gen)
            pa, pb = torch.cat([i, j, a]), torch.cat([j, i, b])
            delta = net.delta_of(emb[pa], emb[pb])
            loss = loss + config.pair_weight * ((delta - (frames.target[pb] - frames.target[pa])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# -- metrics ------------------------------------------------------------------------------------------------
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 where either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties one half (Mann-Whitney); None when a side is empty."""
    if len(positives) == 0 or len(negatives) == 0:
        return None
    diff = np.asarray(positives, float)[:, None] - np.asarray(negatives, float)[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@torch.no_grad()
def progress_curves(net: ProgressNet, episodes: list[Episode]) -> list[np.ndarray]:
    """Φ per obs row of each episode."""
    return [net.phi(torch.from_numpy(e.obs)).numpy() for e in episodes]


def episode_metrics(net: ProgressNet, episodes: list[Episode]) -> dict:
    """value_order_correlation (mean Spearman of Φ vs time over success ramps), final_progress_auroc, and the
    per-episode numbers behind them."""
    curves = progress_curves(net, episodes)
    rows, rhos = [], []
    for e, curve in zip(episodes, curves):
        rho = spearman(np.arange(e.first_success + 1), curve[:e.first_success + 1]) if e.success else None
        if rho is not None:
            rhos.append(rho)
        rows.append({"source": e.source, "episode": e.index, "success": e.success, "first_success": e.first_success,
                     "spearman": rho, "phi_start": float(curve[0]), "phi_final": float(curve[-1])})
    finals_win = np.array([c[-1] for e, c in zip(episodes, curves) if e.success])
    finals_loss = np.array([c[-1] for e, c in zip(episodes, curves) if not e.success])
    return {"value_order_correlation": float(np.mean(rhos)) if rhos else None,
            "value_order_correlation_min": float(np.min(rhos)) if rhos else None,
            "final_progress_auroc": auroc(finals_win, finals_loss),
            "successes": int(len(finals_win)), "failures": int(len(finals_loss)), "episodes": rows}


# -- fitting ------------------------------------------------------------------------------------------------
def fit_progress(config: ProgressConfig, spec: TaskSpec | None = None):
    """Load, split, train, measure: (ProgressNet, report {metrics on held-out and train episodes, split, losses})."""
    from robreward.envs.registry import get_task

    spec = get_task(config.task) if spec is None else spec
    if config.inputs != "state":
        raise ValueError(f"--inputs {config.inputs} is not built yet: use --inputs state (image inputs are issue 21's "
                         "remaining part)")
    # 1. the episodes of every dataset, checked against the task
    episodes = load_episodes(list(config.demos) + list(config.negatives), spec)
    # 2. held-out episodes, never trained on
    train, held = split_episodes(episodes, config.holdout, config.seed)
    # 3. normalization from the training frames, then the network
    frames = stack_frames(train, config.failure_cap)
    torch.manual_seed(config.seed)
    net = ProgressNet(spec.obs_dim, config.hidden)
    net.mean.copy_(frames.obs.mean(0))
    net.std.copy_(frames.obs.std(0).clamp_min(1e-3))
    # 4. training
    losses = train_net(net, frames, config, config.epochs, config.lr, config.seed)
    net.eval()
    # 5. metrics on the held-out episodes (and on the training ones, to see overfitting)
    report = {"held_out": episode_metrics(net, held), "train": episode_metrics(net, train),
              "split": {"train": [[e.source, e.index] for e in train], "held_out": [[e.source, e.index] for e in held]},
              "loss_first": losses[0], "loss_last": losses[-1], "frames": int(len(frames.obs))}
    return net, report


def adapt_progress(net: ProgressNet, episodes: list[Episode], config: ProgressConfig, epochs: int = 100,
                   lr: float = 1e-3) -> dict:
    """One-shot adaptation (Robo-Dopamine): fine-tune a fitted net on the episodes of one new demo (its
    normalization is kept); metrics on those episodes, before and after (they are the training data)."""
    if not any(e.success for e in episodes):
        raise ValueError("the adaptation demo holds no successful episode: pass one successful demonstration")
    before = episode_metrics(net, episodes)
    net.train()
    losses = train_net(net, stack_frames(episodes, config.failure_cap), config, epochs, lr, config.seed + 1)
    net.eval()
    return {"before": before, "after": episode_metrics(net, episodes), "loss_first": losses[0],
            "loss_last": losses[-1], "epochs": epochs, "lr": lr}
