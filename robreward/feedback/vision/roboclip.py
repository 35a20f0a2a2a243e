"""RoboCLIP (Sontakke et al. 2023): one demonstration video -> an episode-level reward at the last step.

    robreward train --task push --reward roboclip:models/clip-vit-b32 --demo-video push-demo.mp4 --out runs/rc
    env = robreward.make("push", 64, reward="roboclip:models/clip-vit-b32,demo=push-demo.mp4")

The demo's embedding is the mean of the unit image embeddings of ``frames`` evenly spaced frames of the
video (default 32), made unit again; the agent's episode embedding is the mean of the unit embeddings of
every frame of its episode (rendered each step with one ``frames.render_batch`` call for all N worlds and
embedded in one batch). On the last step of an episode (terminated, or cut by the time limit) the
reward is the cosine similarity of the two, times ``weight``; every other step gets 0 (term
``roboclip_reward``).

*A video encoder.* RoboCLIP's paper embeds whole videos with S3D (trained on HowTo100M). When MODEL is an
X-CLIP model (transformers' XCLIPModel, e.g. microsoft/xclip-base-patch32: a video-text model whose
``get_video_features`` embeds a clip of ``num_frames`` frames with cross-frame attention), it plays S3D's
part: the demo is sampled to ``num_frames`` evenly spaced frames (first and last included; a shorter demo
repeats frames) and embedded as one video, and so is each episode at its last step. An episode's frames
are kept at a stride that doubles whenever 2·``num_frames`` are held (the first frame and every stride-th
one after it: between ``num_frames`` and 2·``num_frames`` frames, evenly spaced over the episode so far, of
any length), plus its last frame; only the worlds that need a frame at a step are rendered, and the worlds
whose episodes end at one step are embedded in one batch. Memory: N · 2 · num_frames frames at the model's
input size (64 worlds, 8 frames, 224 px: 154 MB). ``frames=`` does not apply (the model fixes the clip
length). A CLIP/SigLIP model keeps the mean-of-frame-embeddings path above.

The demo is an mp4/gif/webm video file, or a robreward demo dataset (``.h5``, ``robreward demos record``):
its first episode is rendered to frames (``demo=FILE.h5#3`` for episode 3).

Bad demos fail before training: no frames or a single one, a video that cannot be read, and a video
whose aspect ratio differs from the rendered frames' (the two would not show the scene alike: crop
the video, or render at its shape with ``size=``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robreward.feedback.vision.clip import (
    VisionLanguageModel,
    _model_arg,
    format_clip_arg,
    load_vision_language_model,
    parse_clip_arg,
    vision_device,
)
from robreward.rewards.spec import RewardSource, register_reward_source

DEFAULT_FRAMES = 32
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")
DEMO_SUFFIXES = (".h5", ".hdf5")
ASPECT_TOLERANCE = 0.05


def read_video(path, max_frames: int | None = None) -> np.ndarray:
    """uint8 frames [T, H, W, 3] of a video file (evenly spaced ``max_frames`` of them if given)."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demo video {str(path)!r} not found: pass an existing video file (mp4, gif, webm) or "
                                "a robreward demo dataset (.h5)")
    try:
        with imageio.get_reader(str(path)) as reader:
            frames = [np.asarray(frame)[..., :3] for frame in reader]
    except Exception as err:  # noqa: BLE001  (imageio raises many kinds for a file it cannot decode)
        raise ValueError(f"demo video {str(path)!r} could not be read ({type(err).__name__}: {err}); write it as an "
                         "H.264 mp4 (e.g. `robreward demos replay ... --video`)") from None
    if len(frames) < 2:
        raise ValueError(f"demo video {str(path)!r} has {len(frames)} frame(s): RoboCLIP compares whole episodes, "
                         "give a video of the demonstrated episode (at least 2 frames)")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"demo video {str(path)!r} changes frame size mid-video ({sorted(shapes)[:2]}): re-encode it "
                         "at one size")
    return _evenly(np.stack(frames).astype(np.uint8), max_frames)


def _evenly(frames, count: int | None):
    if count is None or len(frames) <= count:
        return frames
    picks = np.round(np.linspace(0, len(frames) - 1, count)).astype(int)
    return frames[picks]


def sample_frames(count: int, length: int) -> np.ndarray:
    """``count`` evenly spaced indices into ``length`` frames, the first and the last included (repeats when
    ``length`` < ``count``): how a clip of a video model's ``num_frames`` is taken from a demo or an episode."""
    if length < 1:
        raise ValueError("no frames to sample from")
    return np.round(np.linspace(0, length - 1, count)).astype(int)


def demo_frames(demo: str, spec, size: tuple[int, int], camera=None, max_frames: int | None = DEFAULT_FRAMES) -> np.ndarray:
    """uint8 frames of a demo: a video file, or episode K of a demo dataset (``FILE.h5#K``) rendered at ``size``."""
    path_text, _, episode = demo.partition("#")
    path = Path(path_text)
    if path.suffix.lower() in DEMO_SUFFIXES:
        from robreward.demos.format import DemoDataset
        from robreward.feedback.vision.frames import frames_of_episodes

        if not path.is_file():
            raise FileNotFoundError(f"demo file {path_text!r} not found: pass a robreward demo dataset (.h5) or a video")
        index = int(episode) if episode.strip().isdigit() else 0
        with DemoDataset(path, task=spec) as data:
            if not 0 <= index < len(data):
                raise ValueError(f"demo file {path_text!r} has {len(data)} episode(s); episode {index} does not exist")
            ep = data.episode(index)
        frames = frames_of_episodes(spec, [ep], size=size, camera=camera)[0].numpy()
        if len(frames) < 2:
            raise ValueError(f"demo episode {index} of {path_text!r} has {len(frames)} frame(s): record a longer one")
        return _evenly(frames, max_frames)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"demo {demo!r}: use a video ({', '.join(VIDEO_SUFFIXES)}) or a demo dataset (.h5)")
    return read_video(path, max_frames)


def check_demo_shape(frames: np.ndarray, size: tuple[int, int], demo: str) -> None:
    """The demo's frames show the scene as the rendered ones do: the same aspect ratio (within 5%)."""
    height, width = frames.shape[1:3]
    render_w, render_h = size
    if abs((width / height) / (render_w / render_h) - 1.0) > ASPECT_TOLERANCE:
        raise ValueError(f"demo {demo!r} is {width}x{height} (aspect {width / height:.2f}) but the agent's frames are "
                         f"rendered at {render_w}x{render_h} (aspect {render_w / render_h:.2f}): crop the video to the "
                         "rendered aspect, or render at the video's shape with size= (a square size for a square "
                         "video)")


class RoboClipReward:
    """``(state, action) -> (R [N], {"roboclip_reward": R})``: cos(episode embedding, demo embedding) at an
    episode's last step, 0 elsewhere (module docstring): the mean unit frame embedding with an image model, the
    clip's video embedding with a video model (X-CLIP)."""

    def __init__(self, model: VisionLanguageModel, spec, demo_embedding: torch.Tensor, size: tuple[int, int],
                 camera=None, weight: float = 1.0, name: str = "roboclip"):
        self.model, self.spec, self.size, self.camera = model, spec, size, camera
        self.demo = torch.nn.functional.normalize(demo_embedding.float(), dim=-1)
        self.weight, self.name = float(weight), name
        self.video = model.is_video
        self.env = None
        self.sums: torch.Tensor | None = None  # per world: sum of the episode's unit frame embeddings [N, D]
        self.counts: torch.Tensor | None = None  # per world: frames summed (image) or held in ``clips`` (video)
        self.clips: torch.Tensor | None = None  # video: per world up to 2·num_frames kept frames [N, 2F, H, W, 3]
        self.stride: torch.Tensor | None = None  # video: per world, every stride-th step's frame is kept
        self.videos_embedded = 0

    @classmethod
    def from_demo(cls, model: VisionLanguageModel, spec, demo: str, size=None, camera=None, weight: float = 1.0,
                  max_frames: int | None = None, name: str = "roboclip") -> "RoboClipReward":
        height, width = model.image_size if size is None else (int(size), int(size))
        if model.is_video:
            if max_frames is not None and max_frames != model.num_frames:
                raise ValueError(f"{name}: frames={max_frames} does not apply to the video model {model.name!r}: it "
                                 f"reads clips of {model.num_frames} frames; drop frames=")
            frames = demo_frames(demo, spec, (width, height), camera, max_frames=None)
            check_demo_shape(frames, (width, height), demo)
            clip = frames[sample_frames(model.num_frames, len(frames))]
            embedding = model.encode_videos(torch.from_numpy(np.ascontiguousarray(clip))[None])[0]
        else:
            frames = demo_frames(demo, spec, (width, height), camera, max_frames or DEFAULT_FRAMES)
            check_demo_shape(frames, (width, height), demo)
            embedding = model.encode_images(torch.from_numpy(np.ascontiguousarray(frames))).mean(0)
        return cls(model, spec, embedding, (width, height), camera, weight, name)

    def bind_env(self, env) -> None:
        self.env, self.sums, self.counts, self.clips, self.stride = env, None, None, None, None

    def on_reset(self, world_ids: torch.Tensor, state) -> None:
        if self.counts is not None:
            ids = world_ids.to(self.counts.device)
            self.counts[ids] = 0
            if self.sums is not None:
                self.sums[ids] = 0.0
            if self.stride is not None:
                self.stride[ids] = 1

    def episode_similarity(self, frame_embeddings: torch.Tensor) -> torch.Tensor:
        """cos(mean of unit frame embeddings [T, D], demo) -> scalar (the reward of a whole episode)."""
        return torch.nn.functional.normalize(frame_embeddings.mean(0), dim=-1) @ self.demo

    def __call__(self, state, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from robreward.feedback.vision.frames import render_batch

        env = self.env
        if env is None or action.shape[0] != env.num_envs:
            raise RuntimeError(f"reward {self.name!r} renders every world of its env: use it in a robreward BatchedEnv "
                               "(robreward.make(..., reward=...)), one policy per env")
        last = self.spec.terminated(state).to(torch.bool).to(action.device) | (
            env.episode_step.to(action.device) >= self.spec.episode_length)
        if self.video:
            value = self._video_step(env, last.cpu()).to(action.device) * self.weight
            return value, {"roboclip_reward": value}
        emb = self.model.encode_images(render_batch(env, size=self.size, camera=self.camera)).to(action.device)
        if self.sums is None:
            self.sums = torch.zeros_like(emb)
            self.counts = torch.zeros(emb.shape[0], device=action.device)
        self.sums += emb
        self.counts += 1
        similarity = torch.nn.functional.normalize(self.sums, dim=-1) @ self.demo.to(action.device)
        value = torch.where(last, similarity * self.weight, torch.zeros_like(similarity))
        return value, {"roboclip_reward": value}


    def _video_step(self, env, last: torch.Tensor) -> torch.Tensor:
        """The video model's reward [N] on CPU: keep this step's frame where the world's stride says, embed the
        clips of the worlds whose episode ends here (one batch), halve full buffers (module docstring)."""
        from robreward.feedback.vision.frames import render_batch

        n, frames_per_clip = env.num_envs, int(self.model.num_frames)
        step = env.episode_step.cpu() - 1  # the frame after the episode's step k (k = 0, 1, ...)
        if self.stride is None:
            self.stride = torch.ones(n, dtype=torch.long)
            self.counts = torch.zeros(n, dtype=torch.long)
        keep = step % self.stride == 0
        need = keep | last
        value = torch.zeros(n)
        ids = torch.nonzero(need).flatten()
        if len(ids) == 0:
            return value
        frames = render_batch(env, world_ids=ids.numpy(), size=self.size, camera=self.camera).cpu()
        if self.clips is None:
            self.clips = torch.zeros((n, 2 * frames_per_clip, *frames.shape[1:]), dtype=torch.uint8)
        kept = keep[ids]
        worlds = ids[kept]
        self.clips[worlds, self.counts[worlds]] = frames[kept]
        self.counts[worlds] += 1
        ending = torch.nonzero(last[ids]).flatten()
        if len(ending):
            clips = []
            for j in ending.tolist():
                w = int(ids[j])
                held = self.clips[w, :int(self.counts[w])]
                if not bool(keep[w]):  # the last frame, not on the stride: the episode's end always counts
                    held = torch.cat([held, frames[j:j + 1]])
                clips.append(held[torch.from_numpy(sample_frames(frames_per_clip, len(held)))])
            emb = self.model.encode_videos(torch.stack(clips)).cpu()
            self.videos_embedded += len(clips)
            value[ids[ending]] = emb @ self.demo.cpu()
        full = torch.nonzero(self.counts == 2 * frames_per_clip).flatten()
        if len(full):  # keep every other frame, take every (2·stride)-th from now on
            self.clips[full, :frames_per_clip] = self.clips[full, 0::2].clone()
            self.counts[full] = frames_per_clip
            self.stride[full] *= 2
        return value


def load_roboclip_reward(arg: str, spec) -> RoboClipReward:
    """The Reward of ``roboclip:MODEL,demo=FILE[,frames=F,size=PX,camera=NAME,weight=W]``."""
    model_name, options = parse_clip_arg(arg, kind="roboclip")
    if not options.get("demo"):
        raise ValueError(f"roboclip:{arg}: no demonstration: add --demo-video FILE (or roboclip:MODEL,demo=FILE)")
    model = load_vision_language_model(model_name, vision_device())
    return RoboClipReward.from_demo(model, spec, options["demo"], size=options.get("size"),
                                    camera=options.get("camera"), weight=options.get("weight", 1.0),
                                    max_frames=options.get("frames"), name=f"roboclip:{arg}")


def _normalize_roboclip(arg: str) -> str:
    model, options = parse_clip_arg(arg, kind="roboclip")
    demo = options.get("demo")
    if not demo:
        raise ValueError(f"roboclip:{arg}: no demonstration: add --demo-video FILE (or roboclip:MODEL,demo=FILE)")
    path_text, sep, episode = demo.partition("#")
    if not Path(path_text).is_file():
        raise FileNotFoundError(f"roboclip: demo {path_text!r} not found: pass an existing video file (mp4, gif, "
                                "webm) or a robreward demo dataset (.h5)")
    options["demo"] = str(Path(path_text).resolve()) + (sep + episode if sep else "")
    return format_clip_arg(_model_arg(model), options)


ROBOCLIP_REWARD = RewardSource(
    kind="roboclip", form="roboclip:MODEL",
    help="RoboCLIP: similarity of the episode's embedding (mean CLIP frame embedding, or an X-CLIP video "
         "embedding) to a demo video's, at the last step; with --demo-video FILE (or roboclip:MODEL,demo=FILE)",
    load=load_roboclip_reward, normalize=_normalize_roboclip)
register_reward_source(ROBOCLIP_REWARD)

__all__ = ["DEFAULT_FRAMES", "ROBOCLIP_REWARD", "RoboClipReward", "check_demo_shape", "demo_frames",
           "load_roboclip_reward", "read_video", "sample_frames"]
