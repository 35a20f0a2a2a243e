"""The preference reward model on image inputs (RL-VLM-F's reward: `prefs train --reward-inputs image|both`).

    model = ImagePreferenceReward(Featurizer(spec), ImageInputs("image", image_size=48, camera="top"))
    model.bank = FrameBank(spec, 48, "top")
    offset = model.bank.add_states(rollout.post_sim_states)         # nothing rendered yet
    segments = with_frame_rows(cut_segments(rollout, 25, model.featurizer, ...), offset, rollout.num_envs)
    model.fit(pairs, labels)                                          # the frames of the pairs, rendered once
    env = robreward.make("reach", 64, reward=model)                   # renders all N worlds each step

*What it reads.* ``image``: the frame of each step (the post-step state, what the post-step TaskState of a
state model describes), ``image_size`` px square, from the task's camera or ``camera``; ``both``: those
image features concatenated with the state model's features (Featurizer: the observation and the action).
An image encoder turns frames into features: a small CNN (robreward.feedback.vision.encoders.SmallCNN) trained
with the ensemble (``encoder=""``), shared by the members; or a frozen transformers vision model
(``encoder=PATH_OR_ID``, load_image_encoder) whose features are standardized with statistics fixed at the
first fit, as state inputs are. Each member has its own reward head (the MLP of EnsembleConfig) on those
features; the Bradley-Terry loss, the ensemble, the early stop at the train accuracy, the validation split and
the output standardization are PreferenceReward's (model.py).

*Bootstraps.* A shared encoder is trained on one minibatch of pairs at a time (encoding the frames of three
members' separate minibatches would triple the cost), so each member's bootstrap resample of the pairs is
applied as per-pair counts: a member's loss on a minibatch weighs each pair by how often its resample drew it
(pairs it never drew count 0). In expectation that is the state model's per-member resampled minibatches. The
frames of a trainable encoder are augmented while training (a random shift of up to 4 px and brightness,
robreward.feedback.vision.frames.preprocess), drawn from the model's seeded generator.

*Frames.* Segments carry the row of each step's frame in a ``FrameBank`` (``SegmentBatch.frames``): the bank
keeps the full MuJoCo states a rollout's steps left (``collect_rollout(record_post_states=True)``), renders a
row the first time a frame is asked for (all missing rows of a request in one batched ``render_states`` call)
and keeps the frame, so a segment is rendered once, however often its frames are scored or trained on. The
preference loop keeps the frames of labeled pairs (saved per round, ``reward_frames/round_KKK.npz``) and lets
the others go after each round.

*As a Reward.* In a BatchedEnv the model is bound to the env (``bind_env``) and renders every world's
post-step frame with one ``render_batch`` call per step (tiled EGL on the CPU backend, MuJoCo Warp's batch
renderer on backend="warp" with a model camera), then scores all N in one forward pass; the policy still
reads states. Without an OpenGL renderer binding it raises RendererUnavailable (what to set).
"""

from __future__ import annotations

import dataclasses
import io
import time
import weakref
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from robreward.envs.spec import TaskState
from robreward.feedback.preferences.model import EnsembleConfig, Featurizer, PreferenceReward, _mlp
from robreward.feedback.preferences.segments import SegmentBatch, SegmentPairs
from robreward.fileio import atomic_write_bytes

Tensor = torch.Tensor
REWARD_INPUTS = ("state", "image", "both")
FRAMES_PER_PASS = 2048
"""Frame slots a training pass encodes with gradients at most (a minibatch of pairs is split into passes whose
gradients add up to its own): bounds the encoder's activation memory, whatever the batch and segment sizes."""


@dataclasses.dataclass(frozen=True)
class ImageInputs:
    """What an image preference reward model reads, and its encoder (saved with the model)."""

    inputs: str = "image"
    """image (frames only) or both (frames and the state features)."""
    image_size: int = 48
    """Frame side in pixels (rendered square)."""
    camera: str = ""
    """A camera of the task's scene or a named view (``top``); "" = the task's camera."""
    encoder: str = ""
    """"" = a small CNN trained with the heads; else a transformers vision model (folder or cached id), frozen."""
    embed_dim: int = 64
    """The small CNN's feature size."""
    channels: int = 16
    """The small CNN's first-layer channels (the others have twice as many)."""
    augment: bool = True
    """Augment a trainable encoder's frames while training (random shift and brightness)."""

    def __post_init__(self):
        if self.inputs not in ("image", "both"):
            raise ValueError(f"image inputs must be 'image' or 'both', got {self.inputs!r} (state inputs are the "
                             "plain PreferenceReward)")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or not 16 <= self.image_size <= 256:
            raise ValueError(f"image size must be an integer in 16..256 pixels, got {self.image_size!r}")
        if self.embed_dim < 1 or self.channels < 1:
            raise ValueError(f"embed_dim and channels must be >= 1, got {self.embed_dim}, {self.channels}")


class FrameBank:
    """Frames of rollout steps by row, rendered on first use from the stored full states (module docstring)."""

    def __init__(self, spec, size: int, camera: Optional[str] = None, chunk: int = 64):
        self.spec, self.size, self.camera, self.chunk = spec, int(size), camera or None, int(chunk)
        self.num_rows = 0
        self._chunks: list[tuple[int, np.ndarray]] = []  # (first row, states [n, nstate]) not yet forgotten
        self._frames: dict[int, np.ndarray] = {}
        self._env = None
        self.rendered = 0  # frames rendered so far (a frame is rendered once)
        self.render_seconds = 0.0

    def add_states(self, states) -> int:
        """Register full states [T, N, nstate] (or [M, nstate]), step-major; returns the row of the first one."""
        arr = np.asarray(states.cpu() if isinstance(states, Tensor) else states, dtype=np.float64)
        if arr.ndim < 2:
            raise ValueError(f"states must be [T, N, nstate] or [M, nstate], got shape {list(arr.shape)}")
        arr = arr.reshape(-1, arr.shape[-1])
        offset = self.num_rows
        self._chunks.append((offset, arr))
        self.num_rows += len(arr)
        return offset

    def _state(self, row: int) -> np.ndarray:
        for first, arr in self._chunks:
            if first <= row < first + len(arr):
                return arr[row - first]
        raise KeyError(f"frame row {row} is neither rendered nor registered (its round's frames were let go or "
                       "never saved): only the frames of labeled pairs are kept between rounds")

    def _render_env(self):
        if self._env is None:
            from robreward.envs.batched import BatchedEnv

            env = BatchedEnv(self.spec, num_envs=self.chunk, seed=0)
            env.reset()
            sample = self.spec.sample_reset(np.random.default_rng(0), 1, env.ctx)
            if getattr(env.sim, "_randomized", None) or sample.model_fields:
                env.close()
                raise ValueError(f"task {self.spec.name!r} randomizes model fields per world: its frames cannot be "
                                 "rendered from stored states alone; use --reward-inputs state for it")
            self._env = env
        return self._env

    def get(self, rows) -> Tensor:
        """uint8 frames [len(rows), S, S, 3] (CPU) of ``rows`` (distinct or not); missing ones rendered in one call."""
        rows = np.asarray(rows.cpu() if isinstance(rows, Tensor) else rows, dtype=np.int64).reshape(-1)
        missing = sorted({int(r) for r in rows} - self._frames.keys())
        if missing:
            from robreward.feedback.vision.frames import render_states

            states = np.stack([self._state(r) for r in missing])
            start = time.perf_counter()
            frames = render_states(self.spec, states, (self.size, self.size), self.camera,
                                   env=self._render_env()).numpy()
            self.render_seconds += time.perf_counter() - start
            self.rendered += len(missing)
            self._frames.update(zip(missing, frames))
        if len(rows) == 0:
            return torch.zeros((0, self.size, self.size, 3), dtype=torch.uint8)
        return torch.from_numpy(np.stack([self._frames[int(r)] for r in rows]))

    def keep_only(self, rows) -> None:
        """Let every frame and state go but those of ``rows`` (the labeled pairs' frames, rendered first)."""
        rows = np.unique(np.asarray(rows.cpu() if isinstance(rows, Tensor) else rows, dtype=np.int64))
        self.get(rows)
        self._frames = {int(r): self._frames[int(r)] for r in rows}
        self._chunks = []

    def save(self, path, rows) -> Path:
        """Write the frames of ``rows`` (rendered now if needed) to an .npz, atomically."""
        rows = np.unique(np.asarray(rows.cpu() if isinstance(rows, Tensor) else rows, dtype=np.int64))
        frames = self.get(rows).numpy()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, rows=rows, frames=frames, num_rows=np.int64(self.num_rows),
                            size=np.int64(self.size))
        return atomic_write_bytes(Path(path), buffer.getvalue())

    def load(self, path) -> None:
        """Add the frames saved by ``save``; rows continue after the saved bank's."""
        with np.load(path, allow_pickle=False) as data:
            if int(data["size"]) != self.size:
                raise ValueError(f"{str(path)!r} holds {int(data['size'])} px frames, this model reads {self.size} px")
            self._frames.update(zip((int(r) for r in data["rows"]), data["frames"]))
            self.num_rows = max(self.num_rows, int(data["num_rows"]))

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


class _Ensemble(nn.Module):
    """The members' reward heads, and the shared trainable encoder (None for a frozen one): one module, so the
    optimizer, the validation split's best weights and save/load cover both. Indexing and len are the heads'."""

    def __init__(self, heads, encoder: Optional[nn.Module]):
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.heads)

    def __getitem__(self, i):
        return self.heads[i]

    def __iter__(self):
        return iter(self.heads)


class ImagePreferenceReward(PreferenceReward):
    """A Bradley-Terry reward ensemble on frames (and state features); a Reward once bound to an env."""

    def __init__(self, featurizer: Featurizer, image: ImageInputs = ImageInputs(), *,
                 config: EnsembleConfig = EnsembleConfig(), name: str = "pref", device="cpu", encoder=None):
        if config.prior_weight > 0:
            raise ValueError("Hindsight PRIOR (prior_weight > 0) trains state reward models only: its world model "
                             "reads the segments' features, not their frames; leave prior_weight at 0")
        super().__init__(featurizer=featurizer, config=config, name=name, device=device)
        self.image = image
        self.uses_state = image.inputs == "both"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if encoder is None:
                from robreward.feedback.vision.encoders import SmallCNN, load_image_encoder

                encoder = (load_image_encoder(image.encoder) if image.encoder else
                           SmallCNN(image.embed_dim, image.image_size, image.channels))
            self.frozen = bool(getattr(encoder, "pretrained", False))
            head_dim = int(encoder.out_dim) + (featurizer.dim if self.uses_state else 0)
            heads = [_mlp(head_dim, config.hidden, config.output) for _ in range(config.num_members)]
        self.members = _Ensemble(heads, None if self.frozen else encoder).to(self.device)
        self.encoder = encoder.to(self.device)
        self.optimizer = torch.optim.Adam(self.members.parameters(), lr=config.lr)
        self.feat_mean = torch.zeros(int(encoder.out_dim), device=self.device)
        self.feat_std = torch.ones(int(encoder.out_dim), device=self.device)
        self._augment = torch.Generator().manual_seed(config.seed + 2)
        self.bank: Optional[FrameBank] = None
        self._env = None
        self.render_seconds = 0.0

    # -- features --------------------------------------------------------------------------------------------
    def encode(self, frames: Tensor, train: bool = False) -> Tensor:
        """[n, D] image features of uint8 frames [n, S, S, 3]: with gradients into a trainable encoder when
        ``train`` (augmented), standardized for a frozen one."""
        if self.frozen:
            with torch.no_grad():
                feats = self.encoder.encode_frames(frames).to(self.device, torch.float32)
            return (feats - self.feat_mean) / self.feat_std
        augment = train and self.image.augment
        with torch.set_grad_enabled(train and torch.is_grad_enabled()):
            return self.encoder.encode_frames(frames, augment=augment,
                                              generator=self._augment if augment else None).to(self.device)

    def _inputs(self, feats: Tensor, features: Optional[Tensor]) -> Tensor:
        if not self.uses_state:
            return feats
        return torch.cat([feats, self._standardized(features.to(self.device, torch.float32))], -1)

    def _bank(self) -> FrameBank:
        if self.bank is None:
            raise ValueError("an image preference reward model reads the segments' frames from its FrameBank: set "
                             "model.bank = FrameBank(spec, size, camera) and add the rollout's states to it")
        return self.bank

    def _rows(self, seg: SegmentBatch) -> Tensor:
        if seg.frames is None:
            raise ValueError("these segments carry no frame rows: an image reward model needs them "
                             "(segments.with_frame_rows after FrameBank.add_states of the rollout's post-step states)")
        return seg.frames

    def step_rewards(self, batch: SegmentBatch) -> Tensor:
        """[E, B, H] per-member raw rewards of every step, from its frame (and features)."""
        rows = self._rows(batch)
        uniq, inverse = torch.unique(rows.cpu(), return_inverse=True)
        with torch.no_grad():
            feats = torch.cat([self.encode(self._bank().get(uniq[i:i + 1024])) for i in range(0, len(uniq), 1024)])
            x = self._inputs(feats[inverse.to(feats.device)], batch.features if self.uses_state else None)
            return torch.stack([m(x).squeeze(-1) for m in self.members])

    def member_rewards(self, features: Tensor) -> Tensor:
        raise ValueError("an image preference reward model reads frames: use step_rewards(segments) or the model as a "
                         "Reward in an env (it renders the worlds)")

    # -- training (PreferenceReward.fit drives it) -----------------------------------------------------------
    def _epoch(self, data: SegmentPairs, targets: Tensor, boots: list[Tensor]) -> tuple[float, float, int]:
        """One pass over the pairs any member's bootstrap drew, in minibatches shared by the members, each
        member's loss weighted by its bootstrap counts (module docstring)."""
        n = data.size
        counts = torch.stack([torch.bincount(b.cpu(), minlength=n) for b in boots]).to(self.device, torch.float32)
        pool = torch.nonzero(counts.sum(0) > 0).flatten().cpu()
        pool = pool[torch.randperm(len(pool), generator=self._gen)]
        bs = self.config.batch_size
        correct = counted = 0
        total_loss, steps = 0.0, 0
        bank = self._bank()
        per_pass = max(1, FRAMES_PER_PASS // (2 * data.first.length))  # pairs whose frames one pass encodes
        for start in range(0, len(pool), bs):
            idx_all = pool[start:start + bs].to(self.device)
            weight = counts[:, idx_all].sum(1).clamp_min(1.0)  # [E] each member's total weight in the minibatch
            self.optimizer.zero_grad()
            step_loss = 0.0
            for part in range(0, len(idx_all), per_pass):  # gradients accumulated: the minibatch's exact gradient
                idx = idx_all[part:part + per_pass]
                batch = data.index(idx)
                rows = torch.cat([self._rows(batch.first), self._rows(batch.second)]).cpu()
                uniq, inverse = torch.unique(rows, return_inverse=True)
                feats = self.encode(bank.get(uniq), train=True)[inverse.to(self.device)]
                half = len(idx)
                x0 = self._inputs(feats[:half], batch.first.features if self.uses_state else None)
                x1 = self._inputs(feats[half:], batch.second.features if self.uses_state else None)
                y = targets[idx]
                hard = (y == 0) | (y == 1)
                loss = 0.0
                for m, head in enumerate(self.members):
                    r0 = (head(x0).squeeze(-1) * batch.first.mask).sum(-1)
                    r1 = (head(x1).squeeze(-1) * batch.second.mask).sum(-1)
                    logits = r1 - r0
                    w = counts[m, idx]
                    bce = nn.functional.binary_cross_entropy_with_logits(logits, self._loss_targets(y), reduction="none")
                    loss = loss + (w * bce).sum() / weight[m]
                    drawn = hard & (w > 0)
                    correct += int(((logits > 0) == (y > 0.5))[drawn].sum())
                    counted += int(drawn.sum())
                loss.backward()
                step_loss += float(loss.detach())
            self.optimizer.step()
            total_loss += step_loss / len(self.members)
            steps += 1
        return (correct / counted if counted else float("nan")), total_loss / max(steps, 1), steps

    def _set_input_stats(self, data: SegmentPairs) -> None:
        super()._set_input_stats(data)
        if self.frozen:  # frozen features standardized with statistics fixed at the first fit, as state inputs
            rows = torch.unique(torch.cat([seg.frames[seg.mask] for seg in data]).cpu())
            with torch.no_grad():
                feats = torch.cat([self.encoder.encode_frames(self._bank().get(rows[i:i + 1024])).float()
                                   for i in range(0, len(rows), 1024)]).to(self.device)
            std = feats.std(0, unbiased=False)
            self.feat_mean, self.feat_std = feats.mean(0), torch.where(std > 1e-6, std, torch.ones_like(std))

    # -- as a Reward -----------------------------------------------------------------------------------------
    def bind_env(self, env) -> None:
        """The env whose worlds this reward renders; RendererUnavailable here when nothing can render them."""
        camera = self.image.camera or env.spec.camera
        from robreward.feedback.vision.frames import NAMED_VIEWS

        if not (env.backend == "warp" and isinstance(camera, (str, int)) and camera not in NAMED_VIEWS):
            from robreward.envs.render import probe_renderer

            probe_renderer()
        self._env = weakref.ref(env)

    def __call__(self, state: TaskState, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The Reward protocol: every world's post-step frame rendered in one call and scored in one pass."""
        from robreward.feedback.vision.frames import render_batch

        env = self._env() if self._env is not None else None
        if env is None:
            raise RuntimeError("an image preference reward renders the env's worlds: use it in a robreward BatchedEnv "
                               "(robreward.make(..., reward=model) or env.set_reward), which binds it to the env")
        start = time.perf_counter()
        frames = render_batch(env, None, (self.image.image_size, self.image.image_size), self.image.camera or None)
        self.render_seconds += time.perf_counter() - start
        with torch.no_grad():
            x = self._inputs(self.encode(frames), self.featurizer(state, action) if self.uses_state else None)
            r = self.standardized(torch.stack([m(x).squeeze(-1) for m in self.members]).mean(0))
        total = r.to(action.device, torch.float32)
        return total, {"learned": total}

    # -- save / load (PreferenceReward.save / load) ----------------------------------------------------------
    def _stat_names(self) -> tuple[str, ...]:
        return super()._stat_names() + ("feat_mean", "feat_std")

    def _extra_payload(self) -> dict:
        return {"image": dataclasses.asdict(self.image)}

    def to(self, device) -> "ImagePreferenceReward":
        super().to(device)
        self.encoder.to(self.device)
        self.feat_mean, self.feat_std = self.feat_mean.to(self.device), self.feat_std.to(self.device)
        return self


def image_epic_distance(model: ImagePreferenceReward, rollout, offset: int, rng: np.random.Generator,
                        max_transitions: int = 4096) -> float:
    """EPIC distance between an image model and the hand reward on a rollout whose post-step states were added
    to the model's bank at row ``offset``: for rewards of the form r(s', a) EPIC is exactly the Pearson distance
    of the two rewards over the coverage's transitions (robreward.rewards.distance), here the rollout's steps
    that have a previous step in the same episode (Coverage.from_rollout), at most ``max_transitions`` of them."""
    from robreward.rewards.distance import pearson_distance

    t, n = rollout.num_steps, rollout.num_envs
    dones = rollout.dones.cpu()
    has_prev = torch.zeros(t, n, dtype=torch.bool)
    has_prev[1:] = ~dones[:-1]
    steps, worlds = torch.nonzero(has_prev, as_tuple=True)
    if len(steps) < 2:
        raise ValueError("the rollout has fewer than 2 transitions: collect a longer rollout")
    if len(steps) > max_transitions:
        pick = torch.as_tensor(np.sort(rng.choice(len(steps), size=max_transitions, replace=False)))
        steps, worlds = steps[pick], worlds[pick]
    rows = (int(offset) + steps * n + worlds)[:, None]
    features = None
    if model.uses_state:
        state = rollout.state_at(steps.to(rollout.rewards.device), worlds.to(rollout.rewards.device))
        features = model.featurizer(state, rollout.actions[steps, worlds])[:, None]
    else:
        features = torch.zeros(len(steps), 1, model.featurizer.dim)
    segs = SegmentBatch(features.float(), torch.zeros(len(steps), 1), torch.ones(len(steps), 1, dtype=torch.bool),
                        worlds, steps, rows)
    learned = model.step_rewards(segs).mean(0)[:, 0].double().cpu()
    hand = rollout.rewards.cpu()[steps, worlds].double()
    return pearson_distance(learned, hand)


def check_image_renderer() -> None:
    """RendererUnavailable (what to set) before a preference run with image inputs starts anything long."""
    from robreward.envs.render import probe_renderer

    probe_renderer()


def check_image_inputs(spec, camera: str = "") -> None:
    """Before a run with image inputs writes anything: RendererUnavailable without a renderer, ValueError for a
    camera the task's scene does not have (and that is not a named view)."""
    check_image_renderer()
    from robreward.feedback.vision.frames import NAMED_VIEWS

    if camera and camera not in NAMED_VIEWS:
        import mujoco

        model = spec.build_model()
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        if camera not in names:
            raise ValueError(f"image camera {camera!r} is not in the scene of task {spec.name!r}: its cameras are "
                             f"{', '.join(n for n in names if n) or 'none'}; the named views are "
                             f"{', '.join(NAMED_VIEWS)}; or leave it out for the task's camera")


__all__ = ["FRAMES_PER_PASS", "FrameBank", "ImageInputs", "ImagePreferenceReward", "REWARD_INPUTS", "check_image_inputs",
           "check_image_renderer",
           "image_epic_distance"]
