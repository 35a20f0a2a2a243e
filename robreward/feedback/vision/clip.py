"""CLIP / SigLIP goal-baseline rewards (VLM-RM, Rocamonde et al. 2023) and the model loader they share.

    model = load_vision_language_model("models/clip-vit-b32")        # local folder or hub id
    reward = ClipReward(model, spec, goals=["a humanoid robot kneeling"], baselines=["a humanoid robot"])
    env = robreward.make("humanoid-kneel", 64, reward="clip:models/clip-vit-b32,goal=a humanoid robot kneeling,"
                                                     "baseline=a humanoid robot,alpha=0.5")

*The reward.* With x̂ the unit image embedding of a frame, g the mean of the unit embeddings of the goal
prompts, b that of the baseline prompts, d = g − b and

    P = α·ddᵀ/‖d‖² + (1 − α)·I,        R(x) = 1 − ½‖(x̂ − g)P‖²

α = 0 gives the plain cosine reward (R = x̂·g up to a constant when ‖g‖ = 1); α = 1 keeps only the
component of x̂ − g along the goal-baseline direction, so what the baseline prompt also describes (the
robot, the floor) no longer moves the reward. Several prompts are averaged before d is taken
(``goal=A|B``), as VLM-RM does.

*In a BatchedEnv.* The env hands the reward itself through ``bind_env`` (BatchedEnv.set_reward): at
every step the reward renders all N worlds' post-step frames with one ``frames.render_batch`` call and
scores them in one forward pass on the model's device (the GPU when there is one). ``every=k`` scores
every k-th step and holds each world's last score in between (k times fewer renders and forward passes;
the reward then lags the state by up to k − 1 steps); a world that starts an episode (``on_reset``) is
scored on its next step whatever k says, so it never carries the previous episode's score.

*Spec string.* ``clip:MODEL,goal=TEXT[|TEXT...],baseline=TEXT[|TEXT...],alpha=A,every=K,size=PX,camera=NAME,
weight=W`` (``robreward train --goal/--baseline/--alpha`` write these options). Prompts may not hold
``,`` or ``+`` (the spec's separators).

*Weights.* Nothing is downloaded behind the user's back: MODEL is a local folder saved with
``save_pretrained`` (CLIPModel, SiglipModel, XCLIPModel and their tokenizer/preprocessor files) or a hub id
that the Hugging Face cache already holds or can fetch (HF_HUB_OFFLINE=1 is honoured: then only the cache),
or an open_clip checkpoint, ``open_clip:FOLDER|hf-hub:ORG/NAME|ARCH@FILE`` (openclip_format: mapped onto a
transformers CLIPModel, open_clip itself is not imported). An X-CLIP model is a video-text model: it
embeds whole clips (``encode_videos``) for RoboCLIP and has no single-image embedding for ``clip:``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from robreward.rewards.spec import RewardSource, register_reward_source

GET_WEIGHTS = ("to get weights, on a machine with internet run `hf download openai/clip-vit-base-patch32 --local-dir "
               "models/clip-vit-b32` (any CLIPModel or SiglipModel repository works, e.g. "
               "google/siglip-base-patch16-224), copy that folder here and pass its path; a hub id works when the "
               "Hugging Face cache (HF_HOME) holds it or the hub is reachable and HF_HUB_OFFLINE is unset")
OPTIONS = ("goal", "baseline", "alpha", "every", "size", "camera", "weight")
DEFAULT_ALPHA = 0.5
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionModelError(ValueError):
    """A model that cannot be loaded as a vision-language model: the message says why and what to do."""


# -- the model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageTransform:
    """The model's own preprocessing (its preprocessor_config.json), in torch so it runs on the model's device:
    resize (the shortest edge to ``resize`` for CLIP, both edges for SigLIP), center crop, scale, normalize."""

    resize: tuple[int, int] | int
    """(height, width), or an int: the shortest edge (then the aspect ratio is kept)."""
    crop: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1.0 / 255.0

    @property
    def out_size(self) -> tuple[int, int]:
        """(height, width) of what the model reads."""
        if self.crop is not None:
            return self.crop
        return self.resize if isinstance(self.resize, tuple) else (self.resize, self.resize)

    def __call__(self, frames: torch.Tensor, device, dtype=torch.float32) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float [N, 3, h, w] on ``device``."""
        x = frames.to(device).permute(0, 3, 1, 2).to(dtype) * self.rescale
        height, width = x.shape[-2:]
        if isinstance(self.resize, tuple):
            target = self.resize
        else:
            scale = self.resize / min(height, width)
            target = (max(1, round(height * scale)), max(1, round(width * scale)))
        if tuple(target) != (height, width):
            x = torch.nn.functional.interpolate(x, size=target, mode="bicubic", align_corners=False,
                                                antialias=True).clamp_(0.0, 1.0)
        if self.crop is not None:
            top, left = (x.shape[-2] - self.crop[0]) // 2, (x.shape[-1] - self.crop[1]) // 2
            x = x[..., max(top, 0):max(top, 0) + self.crop[0], max(left, 0):max(left, 0) + self.crop[1]]
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype)[None, :, None, None]
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype)[None, :, None, None]
        return (x - mean) / std


def _edge(value) -> tuple[int, int] | int | None:
    if isinstance(value, dict):
        if "shortest_edge" in value:
            return int(value["shortest_edge"])
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def image_transform(processor: dict | None, image_size: int) -> ImageTransform:
    """The ImageTransform of a preprocessor_config.json (None: CLIP's defaults at ``image_size``)."""
    p = processor or {}
    resize = _edge(p.get("size")) if p.get("do_resize", True) else None
    crop = _edge(p.get("crop_size")) if p.get("do_center_crop", False) else None
    if isinstance(crop, int):
        crop = (crop, crop)
    if resize is None:
        resize = image_size
    if not p:
        crop = (image_size, image_size)
    mean = tuple(p.get("image_mean", CLIP_MEAN)) if p.get("do_normalize", True) else (0.0, 0.0, 0.0)
    std = tuple(p.get("image_std", CLIP_STD)) if p.get("do_normalize", True) else (1.0, 1.0, 1.0)
    rescale = float(p.get("rescale_factor", 1.0 / 255.0)) if p.get("do_rescale", True) else 1.0
    return ImageTransform(resize=resize, crop=crop, mean=mean, std=std, rescale=rescale)  # type: ignore[arg-type]


class VisionLanguageModel:
    """A loaded CLIP-style model: ``encode_images(uint8 [N, H, W, 3]) -> [N, D]`` and ``encode_texts([str]) ->
    [T, D]``, both unit-norm float32 on the model's device. ``image_size``: (height, width) the model reads,
    the size the reward renders at unless told otherwise."""

    def __init__(self, model, tokenizer, transform: ImageTransform, name: str, device: torch.device,
                 pad_to_max: bool, source: str = "transformers"):
        self.model, self.tokenizer, self.transform, self.name = model, tokenizer, transform, name
        self.device, self.pad_to_max, self.source = device, pad_to_max, source
        self.kind = type(model).__name__

    @property
    def is_video(self) -> bool:
        """A video-text model (X-CLIP): it embeds clips of ``num_frames`` frames, not single images."""
        return hasattr(self.model, "get_video_features") and not hasattr(self.model, "get_image_features")

    @property
    def num_frames(self) -> int | None:
        """Frames per clip a video model reads (X-CLIP's vision_config.num_frames); None for an image model."""
        return int(self.model.config.vision_config.num_frames) if self.is_video else None

    @property
    def image_size(self) -> tuple[int, int]:
        return self.transform.out_size

    @staticmethod
    def _features(out) -> torch.Tensor:
        # transformers < 5 returns the projected tensor, >= 5 a ModelOutput with it as pooler_output
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    @torch.inference_mode()
    def encode_images(self, frames, batch_size: int = 256) -> torch.Tensor:
        if self.is_video:
            raise VisionModelError(f"model {self.name!r} ({self.kind}) is a video-text model: it embeds clips of "
                                   f"{self.num_frames} frames, not single images; use it with roboclip:MODEL, and a "
                                   "CLIP/SigLIP model for clip: rewards and `vision score`")
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")
        dtype = next(self.model.parameters()).dtype
        out = []
        for start in range(0, len(frames), batch_size):
            pixels = self.transform(frames[start:start + batch_size], self.device, dtype)
            out.append(self._features(self.model.get_image_features(pixel_values=pixels)).float())
        emb = torch.cat(out) if out else torch.zeros(0, self.dim, device=self.device)
        return torch.nn.functional.normalize(emb, dim=-1)

    @torch.inference_mode()
    def encode_videos(self, videos, batch_size: int = 16) -> torch.Tensor:
        """[B, D] unit embeddings of uint8 clips [B, T, H, W, 3], T = ``num_frames`` (a video model only)."""
        if not self.is_video:
            raise VisionModelError(f"model {self.name!r} ({self.kind}) is an image model: embed frames with "
                                   "encode_images (a video encoder is an X-CLIP model)")
        videos = torch.as_tensor(videos)
        if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != torch.uint8:
            raise ValueError(f"videos must be uint8 [B, T, H, W, 3], got {videos.dtype} {list(videos.shape)}")
        if videos.shape[1] != self.num_frames:
            raise ValueError(f"model {self.name!r} reads clips of {self.num_frames} frames, got {videos.shape[1]}: "
                             "sample the video to that many frames (roboclip.sample_frames)")
        dtype = next(self.model.parameters()).dtype
        out = []
        for start in range(0, len(videos), batch_size):
            chunk = videos[start:start + batch_size]
            b, t = chunk.shape[:2]
            pixels = self.transform(chunk.reshape(b * t, *chunk.shape[2:]), self.device, dtype)
            pixels = pixels.reshape(b, t, *pixels.shape[1:])
            out.append(self._features(self.model.get_video_features(pixel_values=pixels)).float())
        emb = torch.cat(out) if out else torch.zeros(0, self.dim, device=self.device)
        return torch.nn.functional.normalize(emb, dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [str(t) for t in texts]
        if not texts or any(not t.strip() for t in texts):
            raise ValueError(f"prompts must be non-empty text, got {texts!r}")
        if self.pad_to_max:  # SigLIP was trained on max_length padding; its embeddings depend on it
            tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self._max_length(),
                                    return_tensors="pt")
        else:
            tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self._max_length(),
                                    return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        if self.pad_to_max:
            inputs.pop("attention_mask", None)
        emb = self._features(self.model.get_text_features(**inputs)).float()
        return torch.nn.functional.normalize(emb, dim=-1)

    def _max_length(self) -> int:
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        return min(limit, int(getattr(self.tokenizer, "model_max_length", limit) or limit))

    @property
    def dim(self) -> int:
        return int(getattr(self.model.config, "projection_dim", None) or self.model.config.text_config.hidden_size)


_LOADED: dict[tuple[str, str], VisionLanguageModel] = {}
_LOCK = threading.Lock()


def _is_pathlike(name: str) -> bool:
    """A name that can only be a folder (a hub id is OWNER/NAME or NAME)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def load_vision_language_model(name: str, device="cpu") -> VisionLanguageModel:
    """A CLIPModel or SiglipModel (with its tokenizer and preprocessing) from a local folder or a hub id, on
    ``device``; loaded once per process. VisionModelError says what is missing and how to get weights."""
    from robreward.feedback.vision import openclip_format

    name = str(name).strip()
    if not name:
        raise VisionModelError(f"no model given: pass a folder or hub id of a CLIP/SigLIP model; {GET_WEIGHTS}")
    device = torch.device(device)
    local = Path(name).expanduser()
    if openclip_format.looks_like_open_clip(name):
        key = (openclip_format.absolute_name(name), str(device))
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = _load_open_clip(key[0], device)
            return _LOADED[key]
    if local.exists():
        key_name = str(local.resolve())
        _check_folder(local)
    elif _is_pathlike(name):
        raise VisionModelError(f"model folder {name!r} does not exist; {GET_WEIGHTS}")
    else:
        key_name = name
    key = (key_name, str(device))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(key_name, device)
        return _LOADED[key]


def _load_open_clip(name: str, device: torch.device) -> VisionLanguageModel:
    from robreward.feedback.vision.openclip_format import OpenClipError, load_open_clip

    try:
        model, tokenizer, processor = load_open_clip(name)
    except OpenClipError as err:
        raise VisionModelError(str(err)) from None
    image_size = int(model.config.vision_config.image_size)
    return VisionLanguageModel(model.to(device).eval(), tokenizer, image_transform(processor, image_size), name, device,
                               pad_to_max=False, source="open_clip")


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise VisionModelError(f"model {str(folder)!r} is a file, not a model folder: pass the folder that holds "
                               f"config.json and the weights (model.safetensors); {GET_WEIGHTS}")
    if not (folder / "config.json").is_file():
        raise VisionModelError(f"model folder {str(folder)!r} has no config.json: it is not a saved transformers "
                               f"model (an open_clip folder has open_clip_config.json); {GET_WEIGHTS}")
    weights = [p for pattern in ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
               for p in folder.glob(pattern)]
    if not weights:
        raise VisionModelError(f"model folder {str(folder)!r} has a config.json but no weights (model.safetensors "
                               f"or pytorch_model.bin): the download is incomplete; {GET_WEIGHTS}")


def _load(name: str, device: torch.device) -> VisionLanguageModel:
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import cached_file
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise in a training log

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    where = "the Hugging Face cache (HF_HUB_OFFLINE=1 is set)" if offline else "the local cache or the hub"
    hub = {"local_files_only": True} if offline else {}  # read now: huggingface_hub reads it only at import
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except (OSError, ValueError) as err:
        raise VisionModelError(f"model {name!r} could not be found in {where}: {_first_line(err)}; "
                               f"{GET_WEIGHTS}") from None
    if not (hasattr(config, "text_config") and hasattr(config, "vision_config")):
        raise VisionModelError(f"model {name!r} is a {config.model_type!r} model, not a vision-language (CLIP or "
                               f"SigLIP) model with text and image towers; {GET_WEIGHTS}")
    try:
        # weights_only loading: safetensors, or torch.load(weights_only=True) inside transformers for .bin
        model = AutoModel.from_pretrained(name, **hub)
    except (OSError, ValueError, RuntimeError) as err:
        raise VisionModelError(f"model {name!r}: its weights could not be loaded ({_first_line(err)}); "
                               f"{GET_WEIGHTS}") from None
    if not ((hasattr(model, "get_image_features") or hasattr(model, "get_video_features"))
            and hasattr(model, "get_text_features")):
        raise VisionModelError(f"model {name!r} ({type(model).__name__}) has no image and text embeddings "
                               "(get_image_features/get_text_features): use a CLIPModel, SiglipModel or XCLIPModel")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **hub)
    except (OSError, ValueError, TypeError) as err:
        raise VisionModelError(f"model {name!r} has no usable tokenizer ({_first_line(err)}): save the tokenizer "
                               f"with the model (processor.save_pretrained(folder)); {GET_WEIGHTS}") from None
    try:
        processor_file = cached_file(name, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False,
                                     **hub)
    except OSError:
        processor_file = None
    processor = json.loads(Path(processor_file).read_text()) if processor_file else None
    image_size = int(getattr(config.vision_config, "image_size", 224))
    model = model.to(device).eval()
    pad_to_max = "siglip" in config.model_type
    return VisionLanguageModel(model, tokenizer, image_transform(processor, image_size), name, device, pad_to_max)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


# -- the goal-baseline projection -----------------------------------------------------------------
def goal_baseline_projection(goal_emb: torch.Tensor, baseline_emb: torch.Tensor,
                             alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(g [D], P [D, D]) from unit prompt embeddings goal [G, D] and baseline [B, D]: g and b are their means,
    d = g − b, P = α·ddᵀ/‖d‖² + (1 − α)·I."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0: cosine to the goal, 1: only the goal-baseline direction), "
                         f"got {alpha}")
    g, b = goal_emb.mean(0), baseline_emb.mean(0)
    d = g - b
    norm2 = float(d @ d)
    eye = torch.eye(g.shape[0], device=g.device, dtype=g.dtype)
    if alpha > 0 and norm2 < 1e-12:
        raise ValueError("the goal and baseline prompts embed to the same point (d = g − b = 0): give a baseline "
                         "that differs from the goal, or alpha=0")
    direction = torch.outer(d, d) / norm2 if norm2 > 0 else torch.zeros_like(eye)
    return g, alpha * direction + (1.0 - alpha) * eye


def projection_reward(image_emb: torch.Tensor, g: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """R = 1 − ½‖(x̂ − g)P‖² for image embeddings [N, D] (normalized here) -> [N]."""
    x = torch.nn.functional.normalize(image_emb, dim=-1)
    return 1.0 - 0.5 * ((x - g) @ projection).pow(2).sum(-1)


# -- the reward ----------------------------------------------------------------------------------
class ClipReward:
    """``(state, action) -> (R [N], {"clip_reward": R})`` from frames of the env it is bound to (module docstring)."""

    def __init__(self, model: VisionLanguageModel, spec, goals: Sequence[str], baselines: Sequence[str] = (),
                 alpha: float = DEFAULT_ALPHA, every: int = 1, size: int | None = None, camera=None,
                 weight: float = 1.0, name: str = "clip"):
        goals, baselines = [g.strip() for g in goals if g.strip()], [b.strip() for b in baselines if b.strip()]
        if not goals:
            raise ValueError("a CLIP reward needs a goal prompt: --goal \"a robot arm touching the red ball\" "
                             "(or clip:MODEL,goal=TEXT)")
        if not baselines and alpha > 0:
            raise ValueError("a CLIP reward with alpha > 0 needs a baseline prompt (what every frame shows, e.g. "
                             "\"a robot arm\"): --baseline TEXT, or --alpha 0 for the plain cosine reward")
        if int(every) < 1:
            raise ValueError(f"every must be >= 1 (score every k-th step), got {every}")
        if model.is_video:
            raise ValueError(f"model {model.name!r} ({model.kind}) is a video-text model: a clip: reward scores single "
                             "frames; use a CLIP/SigLIP model here, and the video model with roboclip:MODEL")
        self.model, self.spec, self.name = model, spec, name
        self.goals, self.baselines, self.alpha = goals, baselines, float(alpha)
        self.every, self.weight, self.camera = int(every), float(weight), camera
        height, width = model.image_size if size is None else (int(size), int(size))
        self.size = (width, height)
        goal_emb = model.encode_texts(goals)
        base_emb = model.encode_texts(baselines) if baselines else goal_emb
        self.g, self.projection = goal_baseline_projection(goal_emb, base_emb, self.alpha)
        self.env = None
        self.held: torch.Tensor | None = None
        self.stale: torch.Tensor | None = None  # worlds that started an episode since they were last scored
        self.steps = 0
        self.frames_scored = 0

    def bind_env(self, env) -> None:
        """The env whose worlds this reward renders (BatchedEnv.set_reward calls it)."""
        self.env, self.held, self.stale, self.steps = env, None, None, 0

    def on_reset(self, world_ids: torch.Tensor, state) -> None:
        if self.stale is not None:
            self.stale[world_ids.to(self.stale.device)] = True

    def score_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """R [n] of uint8 frames [n, H, W, 3] (before ``weight``)."""
        self.frames_scored += len(frames)
        return projection_reward(self.model.encode_images(frames), self.g, self.projection)

    def __call__(self, state, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from robreward.feedback.vision.frames import render_batch

        env = self.env
        if env is None:
            raise RuntimeError(f"reward {self.name!r} renders the worlds it scores: use it in a robreward BatchedEnv "
                               "(robreward.make(..., reward=...) or env.set_reward), which binds it to the env")
        n = action.shape[0]
        if n != env.num_envs:
            raise RuntimeError(f"reward {self.name!r} scores all {env.num_envs} worlds of its env but was asked for "
                               f"{n}: a CLIP reward trains one policy per env (not as one of generate's K "
                               "candidates)")
        if self.held is None or self.steps % self.every == 0:
            frames = render_batch(env, size=self.size, camera=self.camera)
            self.held = self.score_frames(frames).to(action.device)
            self.stale = torch.zeros(n, dtype=torch.bool, device=action.device)
        elif self.stale is not None and bool(self.stale.any()):
            ids = torch.nonzero(self.stale).flatten()
            frames = render_batch(env, world_ids=ids.cpu().numpy(), size=self.size, camera=self.camera)
            self.held[ids] = self.score_frames(frames).to(action.device)
            self.stale[ids] = False
        self.steps += 1
        value = self.held * self.weight
        return value, {"clip_reward": value}


# -- the spec string -------------------------------------------------------------------------------
def parse_clip_arg(arg: str, kind: str = "clip") -> tuple[str, dict]:
    """'MODEL,goal=A|B,baseline=C,alpha=0.5,every=2,size=224,camera=top,weight=1' -> (MODEL, options)."""
    model, *items = [part.strip() for part in arg.split(",")]
    if not model:
        raise ValueError(f"{kind}:{arg}: no model: write {kind}:PATH_OR_ID,goal=TEXT,...")
    options: dict = {}
    allowed = OPTIONS if kind == "clip" else ROBOCLIP_OPTIONS
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise ValueError(f"{kind}:{arg}: unknown option {item!r}; the options are "
                             + ", ".join(f"{k}=..." for k in allowed) + " (prompts may not contain ',' or '+')")
        if key in options:
            raise ValueError(f"{kind}:{arg}: option {key!r} given twice (several prompts: goal=A|B)")
        options[key] = _option_value(kind, arg, key, value.strip())
    return model, options


ROBOCLIP_OPTIONS = ("demo", "frames", "size", "camera", "weight")


def _option_value(kind: str, arg: str, key: str, value: str):
    if key in ("goal", "baseline"):
        prompts = [p.strip() for p in value.split("|")]
        if not value or any(not p for p in prompts):
            raise ValueError(f"{kind}:{arg}: {key}= has an empty prompt: give text, e.g. {key}=a robot arm "
                             "touching the ball (several: A|B)")
        return prompts
    if key in ("alpha", "weight"):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{kind}:{arg}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(number) or key == "alpha" and not 0.0 <= number <= 1.0:
            raise ValueError(f"{kind}:{arg}: {key} must be {'in [0, 1]' if key == 'alpha' else 'finite'}, got {value}")
        return number
    if key in ("every", "size", "frames"):
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{kind}:{arg}: {key} must be a whole number, got {value!r}") from None
        if number < 1:
            raise ValueError(f"{kind}:{arg}: {key} must be >= 1, got {number}")
        return number
    if not value:
        raise ValueError(f"{kind}:{arg}: {key}= is empty")
    return value


def format_clip_arg(model: str, options: dict) -> str:
    """The inverse of parse_clip_arg (options in a fixed order)."""
    parts = [model]
    for key in (*OPTIONS, *ROBOCLIP_OPTIONS):
        if key in options and not any(p.startswith(f"{key}=") for p in parts):
            value = options[key]
            parts.append(f"{key}={'|'.join(value) if isinstance(value, list) else format(value, 'g') if isinstance(value, float) else value}")
    return ",".join(parts)


def _model_arg(model: str) -> str:
    """A local model folder made absolute (a resumed run finds it); a hub id as given."""
    from robreward.feedback.vision.openclip_format import absolute_name, looks_like_open_clip

    if looks_like_open_clip(model):
        return absolute_name(model)
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def vision_device(spec=None) -> torch.device:
    """Where the model runs: ROBREWARD_VISION_DEVICE if set, else the GPU when torch sees one."""
    chosen = os.environ.get("ROBREWARD_VISION_DEVICE")
    if chosen:
        return torch.device(chosen)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_clip_reward(arg: str, spec) -> ClipReward:
    """The Reward of ``clip:MODEL,goal=...,...`` on task ``spec``."""
    model_name, options = parse_clip_arg(arg)
    model = load_vision_language_model(model_name, vision_device())
    return ClipReward(model, spec, goals=options.get("goal", []), baselines=options.get("baseline", []),
                      alpha=options.get("alpha", DEFAULT_ALPHA), every=options.get("every", 1),
                      size=options.get("size"), camera=options.get("camera"), weight=options.get("weight", 1.0),
                      name=f"clip:{arg}")


def _normalize_clip(arg: str) -> str:
    model, options = parse_clip_arg(arg)
    if not options.get("goal"):
        raise ValueError(f"clip:{arg}: no goal prompt: add --goal \"TEXT\" (or clip:MODEL,goal=TEXT)")
    if not options.get("baseline") and options.get("alpha", DEFAULT_ALPHA) > 0:
        raise ValueError(f"clip:{arg}: no baseline prompt: add --baseline \"TEXT\" (what every frame shows, e.g. "
                         "\"a robot arm\"), or --alpha 0 for the plain cosine reward")
    return format_clip_arg(_model_arg(model), options)


CLIP_REWARD = RewardSource(
    kind="clip", form="clip:MODEL",
    help="CLIP/SigLIP goal-baseline reward (VLM-RM) of rendered frames; with --goal TEXT --baseline TEXT --alpha A "
         "(or clip:MODEL,goal=TEXT,baseline=TEXT,alpha=A,every=K)",
    load=load_clip_reward, normalize=_normalize_clip)
register_reward_source(CLIP_REWARD)

__all__ = ["CLIP_REWARD", "GET_WEIGHTS", "ClipReward", "ImageTransform", "VisionLanguageModel", "VisionModelError",
           "format_clip_arg", "goal_baseline_projection", "image_transform", "load_clip_reward",
           "load_vision_language_model", "parse_clip_arg", "projection_reward", "vision_device"]
