"""RoboCLIP (Sontakke et al. 2023): one demonstration video -> an episode-level reward at the last step.

    robreward train --task push --reward roboclip:models/clip-vit-b32 --demo-video push-demo.mp4 --out runs/rc
    env = robreward.make("push", 64, reward="roboclip:models/clip-vit-b32,demo=push-demo.mp4")

The demo's embedding is the mean of the unit image embeddings of ``frames`` evenly spaced frames of the
video (default 32), made unit again; the agent's episode embedding is the mean of the unit embeddings of
every frame of its episode (rendered each step with one ``frames.render_batch`` call for all N worlds and
embedded in one batch). On the last step of an episode (terminated, or cut by the time limit) the
reward is the cosine similarity of the two, times ``weight``; every other step gets 0 (term
``roboclip_reward``). RoboCLIP's paper embeds whole videos with S3D; a CLIP/SigLIP image model's mean
frame embedding stands in for it here (a video encoder is not wired in).

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


def demo_frames(demo: str, spec, size: tuple[int, int], camera=None, max_frames: int = DEFAULT_FRAMES) -> np.ndarray:
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
    """``(state, action) -> (R [N], {"roboclip_reward": R})``: cos(mean episode embedding, demo embedding) at an
    episode's last step, 0 elsewhere (module docstring)."""

    def __init__(self, model: VisionLanguageModel, spec, demo_embedding: torch.Tensor, size: tuple[int, int],
                 camera=None, weight: float = 1.0, name: str = "roboclip"):
        self.model, self.spec, self.size, self.camera = model, spec, size, camera
        self.demo = torch.nn.functional.normalize(demo_embedding.float(), dim=-1)
        self.weight, self.name = float(weight), name
        self.env = None
        self.sums: torch.Tensor | None = None  # per world: sum of the episode's unit frame embeddings [N, D]
        self.counts: torch.Tensor | None = None

    @classmethod
    def from_demo(cls, model: VisionLanguageModel, spec, demo: str, size=None, camera=None, weight: float = 1.0,
                  max_frames: int = DEFAULT_FRAMES, name: str = "roboclip") -> "RoboClipReward":
        height, width = model.image_size if size is None else (int(size), int(size))
        frames = demo_frames(demo, spec, (width, height), camera, max_frames)
        check_demo_shape(frames, (width, height), demo)
        embedding = model.encode_images(torch.from_numpy(np.ascontiguousarray(frames))).mean(0)
        return cls(model, spec, embedding, (width, height), camera, weight, name)

    def bind_env(self, env) -> None:
        self.env, self.sums, self.counts = env, None, None

    def on_reset(self, world_ids: torch.Tensor, state) -> None:
        if self.sums is not None:
            ids = world_ids.to(self.sums.device)
            self.sums[ids] = 0.0
            self.counts[ids] = 0

    def episode_similarity(self, frame_embeddings: torch.Tensor) -> torch.Tensor:
        """cos(mean of unit frame embeddings [T, D], demo) -> scalar (the reward of a whole episode)."""
        return torch.nn.functional.normalize(frame_embeddings.mean(0), dim=-1) @ self.demo

    def __call__(self, state, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from robreward.feedback.vision.frames import render_batch

        env = self.env
        if env is None or action.shape[0] != env.num_envs:
            raise RuntimeError(f"reward {self.name!r} renders every world of its env: use it in a robreward BatchedEnv "
                               "(robreward.make(..., reward=...)), one policy per env")
        emb = self.model.encode_images(render_batch(env, size=self.size, camera=self.camera)).to(action.device)
        if self.sums is None:
            self.sums = torch.zeros_like(emb)
            self.counts = torch.zeros(emb.shape[0], device=action.device)
        self.sums += emb
        self.counts += 1
        last = self.spec.terminated(state).to(torch.bool).to(action.device) | (
            env.episode_step.to(action.device) >= self.spec.episode_length)
        similarity = torch.nn.functional.normalize(self.sums, dim=-1) @ self.demo.to(action.device)
        value = torch.where(last, similarity * self.weight, torch.zeros_like(similarity))
        return value, {"roboclip_reward": value}


def load_roboclip_reward(arg: str, spec) -> RoboClipReward:
    """The Reward of ``roboclip:MODEL,demo=FILE[,frames=F,size=PX,camera=NAME,weight=W]``."""
    model_name, options = parse_clip_arg(arg, kind="roboclip")
    if not options.get("demo"):
        raise ValueError(f"roboclip:{arg}: no demonstration: add --demo-video FILE (or roboclip:MODEL,demo=FILE)")
    model = load_vision_language_model(model_name, vision_device())
    return RoboClipReward.from_demo(model, spec, options["demo"], size=options.get("size"),
                                    camera=options.get("camera"), weight=options.get("weight", 1.0),
                                    max_frames=options.get("frames", DEFAULT_FRAMES), name=f"roboclip:{arg}")


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
    help="RoboCLIP: similarity of the episode's mean CLIP frame embedding to a demo video's, at the last step; "
         "with --demo-video FILE (or roboclip:MODEL,demo=FILE)",
    load=load_roboclip_reward, normalize=_normalize_roboclip)
register_reward_source(ROBOCLIP_REWARD)

__all__ = ["DEFAULT_FRAMES", "ROBOCLIP_REWARD", "RoboClipReward", "check_demo_shape", "demo_frames",
           "load_roboclip_reward", "read_video"]
