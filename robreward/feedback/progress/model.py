"""A progress model learned from demonstrations (VLAC / Robo-Dopamine style), on state inputs.

    episodes = load_episodes(["demos/push-expert.h5", "demos/push-noisy.h5"], spec)
    model, report = fit_progress(ProgressConfig(task="push", demos=(...,), negatives=(...,)))
    phi = model.phi(obs)              # obs [N, obs_dim] -> progress [N] in [0, 1]
    delta = model.delta(obs_i, obs_j) # -> progress delta [N] in [-1, 1] (VLAC's pairwise head)

*Inputs.* "state": the task's observation ``spec.observe(TaskState)``, exactly what the policy sees
and what a demo file stores per step (``obs`` [T+1, obs_dim]), so fitting needs no replay and the
reward computes the same vector from the env's post-step state. "image": frames of the task's camera
(``image_size`` px square), rendered from the demos' stored states (robreward.feedback.vision.frames:
every state written into a BatchedEnv and drawn in one tiled pass) and cached in the fit run directory;
an image encoder turns them into features: a small CNN trained with the model (``encoder=""``), or a
frozen transformers vision model (``encoder=PATH_OR_ID``: features computed once, a head fitted on them).
Frames are augmented while training (random shift, brightness). "both": the state features and the
image features concatenated. The reward renders all N worlds in one call per step and scores them in
one forward pass.

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
from robreward.feedback.progress.features import FEATURES, OBS_NORMS, observation_parts, part_width, read_parts
from robreward.feedback.progress.metrics import episode_metrics
from robreward.feedback.progress.scene_mix import MixedFrames

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
    """What the model reads: state (the task's observation), image (rendered frames) or both."""
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
    features: str = OBS_NORMS
    """State inputs: "observation" reads the observation as it is; "obs-norms" (the default) reads each part of the observation as its
    norm (a distance, a speed; one-number parts as they are): no absolute position or direction to latch on
    to, so Φ generalizes to states the demos never visited (docs/progress.md "What PPO does with Φ");
    "obs-norms-z" also keeps the height of each 3-D position, offset and velocity (features.py)."""
    mix_weight: float = 1.0
    """Weight of the mixed-state hard negatives: two observations of one episode mixed feature by feature
    (state inputs), or the mixed scenes of ``mix_frames`` (image inputs), whose target is the lower of the two
    (progress needs every part of the state to be there: the robot's arm at a late pose with the object where
    it started is not progress). 0 turns them off."""
    mix_frames: int = 0
    """Image inputs: mixed scenes rendered for training (scene_mix.py: the arm of one demo state with the
    objects of another of the same episode); 0 (the default): none."""
    seed: int = 0
    """Seeds the held-out split, the initial weights and the sampled pairs."""
    members: int = 1
    """Nets fitted alike from seeds seed, seed + 1, ...; Φ and Δ are their mean (ensemble.py: smoother between the
    demos, where PPO goes). 1: a single ProgressNet."""
    image_size: int = 64
    """Image inputs: the frames' side in pixels (rendered square, 32-256; the issue's range is 64-128)."""
    camera: str = ""
    """Image inputs: a camera of the task's scene ("" = the task's camera, else a tracking view)."""
    encoder: str = ""
    """Image inputs: "" = a small CNN trained from scratch; else a transformers vision model (folder or cached id)."""
    embed_dim: int = 64
    """Image inputs: the small CNN's feature size."""
    batch: int = 256
    """Image inputs: frames per training step (minibatches; state inputs train full-batch)."""

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
        if not 1 <= self.members <= 32:
            raise ValueError(f"--members must be in 1..32, got {self.members}")
        if not 16 <= self.image_size <= 256:
            raise ValueError(f"--image-size must be in 16..256 pixels, got {self.image_size}")
        if self.features not in FEATURES:
            raise ValueError(f"--features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if self.mix_weight < 0:
            raise ValueError(f"mix_weight must be >= 0, got {self.mix_weight}")
        if self.mix_frames < 0 or (self.mix_frames and self.inputs == "state"):
            raise ValueError(f"--mix-frames must be >= 0 and is for image inputs (--inputs image or both), got "
                             f"{self.mix_frames} with inputs {self.inputs}")
        if self.embed_dim < 1 or self.batch < 8:
            raise ValueError("embed_dim must be >= 1 and batch >= 8")

    @property
    def uses_image(self) -> bool:
        return self.inputs in ("image", "both")


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
    states: np.ndarray | None = None
    """[T+1, nstate] full integration states (image inputs: what is rendered), else None."""
    model_fields: dict | None = None
    """The episode's randomized model fields (image inputs), if the task has any."""
    frames: np.ndarray | None = None
    """[T+1, S, S, 3] uint8 rendered frames (image inputs), else None."""
    actions: np.ndarray | None = None
    """[T, act_dim] float32 actions (load_episodes(actions=True)), else None."""

    def targets(self, failure_cap: float) -> np.ndarray:
        """Target progress per obs row [T+1] (module docstring)."""
        steps = np.arange(len(self.obs), dtype=np.float32)
        if self.success:
            return np.minimum(steps / max(self.first_success, 1), 1.0).astype(np.float32)
        return (failure_cap * steps / max(len(self.obs) - 1, 1)).astype(np.float32)


def load_episodes(paths: Sequence, spec: TaskSpec, states: bool = False, actions: bool = False) -> list[Episode]:
    """Every episode of the datasets; ValueError for a dataset of another task or model. ``states``: also read
    each episode's full states (for rendering its frames: attach_frames); ``actions``: also its actions."""
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
            fields = (("obs", "success") + (("initial_state", "qpos", "qvel", "model_fields") if states else ())
                      + (("actions",) if actions else ()))
            for i in range(len(ds)):
                ep = ds.episode(i, fields=fields)
                flags = np.asarray(ep["success"], dtype=bool)
                success = bool(flags.any())
                full = None
                if states:
                    from robreward.feedback.vision.frames import demo_states

                    full = demo_states(ep, spec)
                episodes.append(Episode(np.asarray(ep["obs"], np.float32), success,
                                        int(np.argmax(flags)) + 1 if success else -1, str(path), i,
                                        states=full, model_fields=(ep.get("model_fields") or None) if states else None,
                                        actions=np.asarray(ep["actions"], np.float32) if actions else None))
    return episodes


def _file_digest(path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def attach_frames(episodes: list[Episode], spec: TaskSpec, config: "ProgressConfig", cache_dir=None) -> list[Episode]:
    """The episodes with their frames (``config.image_size`` px, ``config.camera``), rendered from their
    states; with ``cache_dir`` the frames of each dataset are cached there (frames-<digest>.npz, keyed by the
    file's content, the task version, size and camera) and read back instead of rendered again."""
    import dataclasses as dc

    from robreward.feedback.vision.frames import render_states

    camera = config.camera or None
    out = list(episodes)
    by_source: dict[str, list[int]] = {}
    for k, e in enumerate(episodes):
        by_source.setdefault(e.source, []).append(k)
    for source, ks in by_source.items():
        cache = None
        if cache_dir is not None:
            key = f"{_file_digest(source)}-{spec.name}-v{spec.version}-{config.image_size}-{config.camera or 'default'}"
            cache = Path(cache_dir) / f"frames-{key}.npz"
        cached = {}
        if cache is not None and cache.is_file():
            with np.load(cache, allow_pickle=False) as data:
                cached = {name: data[name] for name in data.files}
        fresh = {}
        for k in ks:
            e = episodes[k]
            name = f"ep_{e.index:05d}"
            frames = cached.get(name)
            if frames is None or len(frames) != len(e.obs):
                if e.states is None:
                    raise ValueError("episodes without states cannot be rendered: load them with states=True")
                frames = render_states(spec, e.states, config.image_size, camera, model_fields=e.model_fields).numpy()
                fresh[name] = frames
            out[k] = dc.replace(e, frames=frames)
        if cache is not None and fresh:
            from robreward.fileio import atomic_path

            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                np.savez(f, **{**cached, **fresh})
    return out


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
    """inputs -> embedding; Φ head (sigmoid, [0, 1]) and a pairwise Δ head (tanh, [-1, 1]).

    ``inputs``: "state" reads observations [N, obs_dim] (standardized with ``mean``/``std``); "image" reads
    image features from ``image_encoder`` (a SmallCNN trained with the net, or a frozen transformers encoder
    whose features are standardized with ``fmean``/``fstd``); "both" concatenates the two."""

    def __init__(self, obs_dim: int, hidden: int, inputs: str = "state", image_encoder: nn.Module | None = None,
                 parts: Sequence[tuple[int, int, bool]] = ()):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
        self.inputs = inputs
        self.uses_state = inputs in ("state", "both")
        self.uses_image = inputs in ("image", "both")
        if self.uses_image and image_encoder is None:
            raise ValueError(f"inputs={inputs!r} needs an image encoder")
        # features "obs-norms"/"obs-norms-z": the observation's parts [start, end) and whether each is read as
        # (horizontal norm, z) (features.py; make_net derives them from the task, nothing is saved)
        self.parts = tuple((int(a), int(b), bool(spatial)) for a, b, spatial in parts)
        state_dim = (sum(map(part_width, self.parts)) or obs_dim) if self.uses_state else 0
        self.register_buffer("mean", torch.zeros(state_dim))
        self.register_buffer("std", torch.ones(state_dim))
        # the range of the training frames' state features (fit_split; widen_range in adaptation): where PPO's states
        # leave it Φ is extrapolation (metrics.outside_range); -inf/+inf: not known (a run fitted before it was kept)
        self.register_buffer("feature_lo", torch.full((state_dim,), -torch.inf))
        self.register_buffer("feature_hi", torch.full((state_dim,), torch.inf))
        feat_dim = int(image_encoder.out_dim) if self.uses_image else 0
        self.image_encoder = image_encoder if self.uses_image else None
        self.register_buffer("fmean", torch.zeros(feat_dim))
        self.register_buffer("fstd", torch.ones(feat_dim))
        self.torso = nn.Sequential(nn.Linear(state_dim + feat_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                   nn.SiLU())
        self.phi_head = nn.Linear(hidden, 1)
        self.delta_head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    @property
    def frozen_encoder(self) -> bool:
        """A pretrained encoder: its features are fixed (computed once for training, not saved with the net)."""
        return bool(self.uses_image and getattr(self.image_encoder, "pretrained", False))

    def features(self, frames, augment: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Image features [N, F] of uint8 frames [N, H, W, 3] (numpy or tensor), in batches; gradients flow into
        a trainable encoder."""
        enc = self.image_encoder
        device = self.fmean.device
        if self.frozen_encoder:
            with torch.no_grad():
                return enc.encode_frames(frames, augment=augment, generator=generator).to(device)
        parts = [enc(enc.prepare(frames[i:i + 512], augment=augment, generator=generator).to(device))
                 for i in range(0, len(frames), 512)]
        return torch.cat(parts) if parts else torch.zeros((0, enc.out_dim), device=device)

    def state_features(self, obs: torch.Tensor) -> torch.Tensor:
        """The state input [N, S] of observations [N, obs_dim]: the observation, or its parts (features.py)."""
        return read_parts(obs, self.parts) if self.parts else obs

    def widen_range(self, obs: torch.Tensor) -> None:
        """Widen the kept feature range to hold ``obs``' state features (adaptation); a range not known (a run
        fitted before it was kept) stays unknown."""
        if not self.uses_state or not len(obs) or not torch.isfinite(self.feature_lo).all():
            return
        f = self.state_features(obs.to(self.feature_lo.device))
        self.feature_lo.copy_(torch.minimum(self.feature_lo, f.min(0).values))
        self.feature_hi.copy_(torch.maximum(self.feature_hi, f.max(0).values))

    def embed(self, obs: torch.Tensor | None = None, feats: torch.Tensor | None = None, noise: float = 0.0) -> torch.Tensor:
        parts = []
        if self.uses_state:
            if obs is None:
                raise ValueError("this progress model reads observations: pass obs")
            parts.append((self.state_features(obs) - self.mean) / self.std)
        if self.uses_image:
            if feats is None:
                raise ValueError("this progress model reads images: pass image features (net.features(frames))")
            parts.append((feats - self.fmean) / self.fstd)
        x = parts[0] if len(parts) == 1 else torch.cat(parts, -1)
        if noise > 0:
            x = x + noise * torch.randn_like(x)
        return self.torso(x)

    def phi_logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.phi_head(emb).squeeze(-1)

    def delta_of(self, emb_i: torch.Tensor, emb_j: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.delta_head(torch.cat([emb_i, emb_j, emb_j - emb_i], -1)).squeeze(-1))

    def phi(self, obs: torch.Tensor | None = None, frames=None) -> torch.Tensor:
        """Progress [N] in [0, 1] of observations [N, obs_dim] and/or uint8 frames [N, H, W, 3] (per ``inputs``)."""
        feats = self.features(frames) if self.uses_image and frames is not None else None
        return torch.sigmoid(self.phi_logits(self.embed(obs, feats)))

    def delta(self, obs_i=None, obs_j=None, frames_i=None, frames_j=None) -> torch.Tensor:
        """Progress from o_i to o_j [N] in [-1, 1]."""
        fi = self.features(frames_i) if self.uses_image and frames_i is not None else None
        fj = self.features(frames_j) if self.uses_image and frames_j is not None else None
        return self.delta_of(self.embed(obs_i, fi), self.embed(obs_j, fj))


class FrameBatch(NamedTuple):
    """Every training frame stacked: obs [F, D], target [F], episode id [F], ramp mask [F] (on a success ramp);
    image inputs: pixels uint8 [F, S, S, 3] (a trainable encoder) or feats [F, Fd] (a frozen one's features)."""

    obs: torch.Tensor
    target: torch.Tensor
    episode: torch.Tensor
    ramp: torch.Tensor
    pixels: torch.Tensor | None = None
    feats: torch.Tensor | None = None
    mixed: MixedFrames | None = None
    """Image inputs with ``mix_frames``: the rendered mixed scenes (their pixels, or a frozen encoder's feats)."""


def stack_frames(episodes: list[Episode], failure_cap: float, net: ProgressNet | None = None,
                 mixed: MixedFrames | None = None) -> FrameBatch:
    obs = torch.from_numpy(np.concatenate([e.obs for e in episodes]))
    target = torch.from_numpy(np.concatenate([e.targets(failure_cap) for e in episodes]))
    episode = torch.cat([torch.full((len(e.obs),), k, dtype=torch.long) for k, e in enumerate(episodes)])
    ramp = torch.cat([torch.arange(len(e.obs)) <= e.first_success if e.success else torch.zeros(len(e.obs), dtype=torch.bool)
                      for e in episodes])
    pixels = feats = None
    if net is not None and net.uses_image:
        if any(e.frames is None for e in episodes):
            raise ValueError("image inputs: the episodes have no frames (attach_frames renders them)")
        pixels = torch.from_numpy(np.concatenate([e.frames for e in episodes]))
        if net.frozen_encoder:
            feats, pixels = net.features(pixels), None
            if mixed is not None:
                mixed = mixed._replace(feats=net.features(mixed.pixels), pixels=None)
    return FrameBatch(obs, target, episode, ramp, pixels, feats, mixed)


def _ordered_pairs(frames: FrameBatch, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs (i, j) of ramp frames of one successful episode, i earlier than j (frames are stored in order)."""
    ramp_ids = torch.nonzero(frames.ramp).flatten()
    i = ramp_ids[torch.randint(len(ramp_ids), (n,), generator=gen)]
    j = ramp_ids[torch.randint(len(ramp_ids), (n,), generator=gen)]
    keep = (frames.episode[i] == frames.episode[j]) & (i != j)
    i, j = i[keep], j[keep]
    return torch.minimum(i, j), torch.maximum(i, j)


def _same_episode_pairs(frames: FrameBatch, n: int, gen: torch.Generator,
                        rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n ordered pairs (i < j) of ramp frames (or of ``rows``, a mask of frames), j drawn from i's own episode
    (a minibatch cannot afford to draw both at random and keep the few that share an episode)."""
    ramp_ids = torch.nonzero(frames.ramp if rows is None else rows).flatten()
    if not len(ramp_ids):
        return ramp_ids, ramp_ids
    episode = frames.episode[ramp_ids]
    starts = torch.searchsorted(episode, episode, right=False)  # ramp frames are stored in episode order
    ends = torch.searchsorted(episode, episode, right=True)
    k = torch.randint(len(ramp_ids), (n,), generator=gen)
    lo, hi = starts[k], ends[k]
    other = lo + (torch.rand(n, generator=gen) * (hi - lo)).long().clamp_max(hi - lo - 1)
    i, j = ramp_ids[k], ramp_ids[other]
    keep = i != j
    i, j = i[keep], j[keep]
    return torch.minimum(i, j), torch.maximum(i, j)


def _embed_rows(net: ProgressNet, frames: FrameBatch | MixedFrames, rows: torch.Tensor, noise: float,
                gen: torch.Generator):
    obs = frames.obs[rows] if net.uses_state else None
    feats = None
    if net.uses_image:
        feats = frames.feats[rows] if frames.feats is not None else net.features(frames.pixels[rows], augment=True,
                                                                               generator=gen)
    return net.embed(obs, feats, noise=noise)


def _mixed_scene_loss(net: ProgressNet, mixed: MixedFrames, n: int, noise: float, gen: torch.Generator):
    """BCE of Φ on ``n`` of the rendered mixed scenes (scene_mix.py) toward their targets."""
    rows = torch.randint(len(mixed.target), (n,), generator=gen)
    emb = _embed_rows(net, mixed, rows, noise, gen)
    return nn.functional.binary_cross_entropy_with_logits(net.phi_logits(emb), mixed.target[rows])


def _mixed_loss(net: ProgressNet, frames: FrameBatch, noise: float, gen: torch.Generator, n: int = 1024):
    """BCE of Φ on observations that mix two observations of one episode (each feature from either, at
    random) toward the lower of their targets: the model may not give progress for part of the state alone
    (a policy would find the part that is cheapest to reach, e.g. the arm raised without the object)."""
    i, j = _same_episode_pairs(frames, n, gen, torch.ones(len(frames.obs), dtype=torch.bool))
    if not len(i):
        return frames.obs.new_zeros(())
    keep = torch.rand(len(i), frames.obs.shape[1], generator=gen) < 0.5
    mixed = torch.where(keep, frames.obs[i], frames.obs[j])
    target = torch.minimum(frames.target[i], frames.target[j])
    logits = net.phi_logits(net.embed(mixed, noise=noise))
    return nn.functional.binary_cross_entropy_with_logits(logits, target)


def train_net(net: ProgressNet, frames: FrameBatch, config: ProgressConfig, epochs: int, lr: float,
              seed: int) -> list[float]:
    """Fit Φ (regression to the targets + ranking along success ramps) and Δ (pairs in both orders, same episode
    and shuffled across episodes); returns the loss per epoch. State inputs train full-batch; image inputs take
    ``config.batch`` frames a step (half of them ordered ramp pairs), each step one "epoch"."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    n_frames = len(frames.obs)
    for _ in range(epochs):
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))  # the input noise, reproducible
        if not net.uses_image:
            emb = net.embed(frames.obs, noise=config.noise)
            target = frames.target
            i, j = _ordered_pairs(frames, 1024, gen)
            a = torch.randint(n_frames, (1024,), generator=gen)
            b = torch.randint(n_frames, (1024,), generator=gen)
            pa, pb = torch.cat([i, j, a]), torch.cat([j, i, b])
        else:  # a minibatch: ordered ramp pairs (i, j) and random frames a, paired with a shuffled copy of a
            i, j = _same_episode_pairs(frames, max(config.batch // 4, 1), gen)
            a = torch.randint(n_frames, (max(config.batch - 2 * len(i), 2),), generator=gen)
            rows = torch.cat([i, j, a])
            emb = _embed_rows(net, frames, rows, config.noise, gen)
            target = frames.target[rows]
            n_i, n_a = len(i), len(a)
            li, lj = torch.arange(n_i), torch.arange(n_i, 2 * n_i)
            la = torch.arange(2 * n_i, 2 * n_i + n_a)
            lb = la[torch.randperm(n_a, generator=gen)]
            i, j = li, lj  # positions in emb from here on
            pa, pb = torch.cat([li, lj, la]), torch.cat([lj, li, lb])
        logits = net.phi_logits(emb)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        if len(i) and config.rank_weight > 0:  # time order along success ramps; the reversed order is wrong
            loss = loss + config.rank_weight * nn.functional.softplus(-(logits[j] - logits[i]) * 4.0).mean()
        if not net.uses_image and config.mix_weight > 0:  # mixed-state hard negatives (ProgressConfig.mix_weight)
            loss = loss + config.mix_weight * _mixed_loss(net, frames, config.noise, gen)
        if net.uses_image and frames.mixed is not None and config.mix_weight > 0:  # mixed scenes (mix_frames)
            loss = loss + config.mix_weight * _mixed_scene_loss(net, frames.mixed, max(config.batch // 4, 1),
                                                                config.noise, gen)
        if config.pair_weight > 0:  # Δ on same-episode pairs in random order and shuffled cross-episode pairs
            delta = net.delta_of(emb[pa], emb[pb])
            loss = loss + config.pair_weight * ((delta - (target[pb] - target[pa])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# -- fitting ------------------------------------------------------------------------------------------------
def make_net(config: ProgressConfig, spec: TaskSpec, encoder=None) -> ProgressNet:
    """An untrained ProgressNet for ``config`` (its image encoder: ``encoder``, else a SmallCNN or the
    transformers model ``config.encoder``)."""
    if config.uses_image and encoder is None:
        from robreward.feedback.vision.encoders import SmallCNN, load_image_encoder

        encoder = load_image_encoder(config.encoder) if config.encoder else SmallCNN(config.embed_dim, config.image_size)
    return ProgressNet(spec.obs_dim, config.hidden, config.inputs, encoder if config.uses_image else None,
                       parts=observation_parts(spec, config.features))


def check_renderer(config: ProgressConfig) -> None:
    """RendererUnavailable (what to set) before anything long, when image inputs cannot be rendered here."""
    if config.uses_image:
        from robreward.envs.render import probe_renderer

        probe_renderer()


def fit_progress(config: ProgressConfig, spec: TaskSpec | None = None, cache_dir=None):
    """Load, split, train, measure: (ProgressNet, report {metrics on held-out and train episodes, split, losses});
    with ``config.members`` > 1 a ProgressEnsemble (ensemble.py). Image inputs: frames rendered from the demos'
    states (cached in ``cache_dir``, e.g. the run directory)."""
    from robreward.envs.registry import get_task

    spec = get_task(config.task) if spec is None else spec
    check_renderer(config)
    # 1. the episodes of every dataset, checked against the task
    episodes = load_episodes(list(config.demos) + list(config.negatives), spec, states=config.uses_image)
    if config.members > 1:
        from robreward.feedback.progress.ensemble import fit_ensemble

        return fit_ensemble(episodes, config, spec, cache_dir)
    # 2. held-out episodes, never trained on
    train, held = split_episodes(episodes, config.holdout, config.seed)
    return fit_split(train, held, config, spec, cache_dir)


def fit_split(train: list[Episode], held: list[Episode], config: ProgressConfig, spec: TaskSpec, cache_dir=None):
    """Steps 3-5 of fit_progress on a split: (ProgressNet, report)."""
    if config.uses_image:  # frames of every episode (held-out ones are scored on theirs)
        rendered = attach_frames(train + held, spec, config, cache_dir)
        train, held = rendered[:len(train)], rendered[len(train):]
    # 3. the network, normalization from the training frames
    torch.manual_seed(config.seed)
    net = make_net(config, spec)
    mixed = None
    if config.uses_image and config.mix_frames:  # mixed scenes of the training episodes only
        from robreward.feedback.progress.scene_mix import render_mixed

        mixed = render_mixed(train, spec, config, config.mix_frames, config.seed)
    frames = stack_frames(train, config.failure_cap, net, mixed)
    if net.uses_state:
        inputs = net.state_features(frames.obs)
        net.mean.copy_(inputs.mean(0))
        net.std.copy_(inputs.std(0).clamp_min(1e-3))
        net.feature_lo.copy_(inputs.min(0).values)
        net.feature_hi.copy_(inputs.max(0).values)
    if frames.feats is not None:
        net.fmean.copy_(frames.feats.mean(0))
        net.fstd.copy_(frames.feats.std(0).clamp_min(1e-3))
    # 4. training
    net.train()
    losses = train_net(net, frames, config, config.epochs, config.lr, config.seed)
    net.eval()
    # 5. metrics on the held-out episodes (and on the training ones, to see overfitting)
    report = {"held_out": episode_metrics(net, held), "train": episode_metrics(net, train),
              "split": {"train": [[e.source, e.index] for e in train], "held_out": [[e.source, e.index] for e in held]},
              "loss_first": losses[0], "loss_last": losses[-1], "frames": int(len(frames.obs))}
    return net, report
