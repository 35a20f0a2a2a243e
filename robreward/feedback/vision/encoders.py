"""Image encoders: frames -> embeddings, for image reward models.

    enc = SmallCNN(out_dim=64, image_size=64)              # trained from scratch (with the model that uses it)
    enc = load_image_encoder("models/siglip-base")         # a transformers vision model the user has
    emb = enc.encode_frames(frames_uint8)                  # [N, H, W, 3] uint8 -> [N, out_dim]

Every encoder is an ``ImageEncoder``: an nn.Module whose ``forward`` takes what ``preprocess`` makes
with the encoder's own ``image_size``, ``mean`` and ``std`` (float [N, 3, h, w]), and whose
``encode_frames`` does that preprocessing itself (optionally augmented).

``load_image_encoder(path_or_id)`` loads a vision model with transformers' ``from_pretrained``: a folder
(``save_pretrained`` output or a downloaded snapshot: config.json + weights) or a Hugging Face model id
already in the local cache. CLIP and SigLIP checkpoints (full or vision-only) load their vision tower
(CLIPVisionModel, SiglipVisionModel); anything else goes through AutoModel and must produce image
features (pooler_output or last_hidden_state). Remote code is never run (trust_remote_code=False).
An open_clip checkpoint (``open_clip:FOLDER|hf-hub:ORG/NAME|ARCH@FILE``, or a folder with
open_clip_config.json) loads its ViT image tower through openclip_format (no open_clip import, no pickle).
HF_HUB_OFFLINE=1 (honoured by transformers) forbids downloads; a model that is not there gives an error
saying how to get the weights and where to put them. No weights are downloaded by robreward itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from robreward.feedback.vision.frames import IMAGE_MEAN, IMAGE_STD, preprocess

__all__ = ["EncoderNotFound", "HFImageEncoder", "ImageEncoder", "SmallCNN", "load_image_encoder"]


class EncoderNotFound(FileNotFoundError):
    """The named image encoder is neither a model folder nor a cached Hugging Face model."""


class ImageEncoder(nn.Module):
    """Base: ``forward(x [N, 3, h, w] preprocessed) -> [N, out_dim]``; ``encode_frames(uint8 frames)``."""

    out_dim: int
    image_size: tuple[int, int]  # (width, height) preprocess resizes to
    mean: tuple[float, float, float] = IMAGE_MEAN
    std: tuple[float, float, float] = IMAGE_STD
    pretrained: bool = False  # True: frozen features (fit a head on them); False: trained with the model

    def prepare(self, frames, augment: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        return preprocess(frames, self.image_size, augment=augment, generator=generator, mean=self.mean, std=self.std)

    def encode_frames(self, frames, augment: bool = False, generator: torch.Generator | None = None,
                      batch: int = 256) -> torch.Tensor:
        """[N, out_dim] embeddings of uint8 frames [N, H, W, 3], on the encoder's device, in batches."""
        device = next(self.parameters()).device
        out = [self(self.prepare(frames[i:i + batch], augment, generator).to(device))
               for i in range(0, len(frames), batch)]
        return torch.cat(out) if out else torch.zeros((0, self.out_dim), device=device)


class SmallCNN(ImageEncoder):
    """A small convolutional encoder trained from scratch, for where things are in the frame: four 3x3 conv
    layers (stride 2, 1, 2, 1; ``channels`` to 2x``channels``, SiLU) to a map of 1/4 the image side, then a
    spatial softmax (each channel's expected x, y: keypoints, as in deep spatial autoencoders / visuomotor
    policies) and the channels' mean activations, and a linear layer to ``out_dim``. Global pooling alone
    would discard the positions progress depends on (where the cube is, relative to the goal)."""

    def __init__(self, out_dim: int = 64, image_size: int = 64, channels: int = 16):
        super().__init__()
        if image_size < 16:
            raise ValueError(f"image_size must be >= 16 pixels for SmallCNN, got {image_size}")
        self.out_dim, self.image_size = int(out_dim), (int(image_size), int(image_size))
        c = int(channels)
        self.conv = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 3, stride=1, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=1, padding=1))
        self.head = nn.Sequential(nn.Linear(2 * c * 3, self.out_dim), nn.SiLU(), nn.Linear(self.out_dim, self.out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.conv(x)  # [N, C, h, w]
        n, c, h, w = fmap.shape
        attn = torch.softmax(fmap.reshape(n, c, h * w), dim=-1).reshape(n, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device)
        kx = (attn.sum(2) * xs).sum(-1)  # expected x per channel [N, C]
        ky = (attn.sum(3) * ys).sum(-1)
        pooled = nn.functional.silu(fmap).mean(dim=(2, 3))
        return self.head(torch.cat([kx, ky, pooled], -1))


# -- transformers encoders ---------------------------------------------------------------------------------
_VISION_TOWERS = {"clip": "CLIPVisionModel", "clip_vision_model": "CLIPVisionModel",
                  "siglip": "SiglipVisionModel", "siglip_vision_model": "SiglipVisionModel"}


def _how_to_get(name: str) -> str:
    return (f"download it where there is internet (`huggingface-cli download {name} --local-dir models/NAME`, or "
            "model.save_pretrained(DIR) in Python), copy the folder (config.json + *.safetensors) to this machine and "
            "pass its path; or put it in the Hugging Face cache (HF_HOME, default ~/.cache/huggingface)")


class HFImageEncoder(ImageEncoder):
    """A transformers vision model as a frozen ImageEncoder: pooler_output (or the mean of last_hidden_state)."""

    pretrained = True

    def __init__(self, model: nn.Module, source: str, image_size: tuple[int, int], mean, std):
        super().__init__()
        self.model, self.source = model, source
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        cfg = model.config
        vision = getattr(cfg, "vision_config", cfg)
        self.out_dim = int(getattr(vision, "hidden_size", 0) or getattr(cfg, "hidden_sizes", [0])[-1])
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the pretrained tower stays in eval mode (frozen features)
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            hidden = out.last_hidden_state
            pooled = hidden.mean(dim=1) if hidden.dim() == 3 else hidden.mean(dim=(2, 3))
        return pooled.reshape(len(x), -1).float()


def _norm_stats(folder: Path | None, model_type: str) -> tuple[tuple, tuple]:
    """The checkpoint's image mean/std (preprocessor_config.json when there is one), else the family's."""
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        try:
            cfg = json.loads((folder / "preprocessor_config.json").read_text())
            mean, std = cfg.get("image_mean"), cfg.get("image_std")
            if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3:
                return tuple(float(v) for v in mean), tuple(float(v) for v in std)
        except (json.JSONDecodeError, OSError, TypeError, ValueError):
            pass
    if model_type.startswith("clip"):
        return (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    if model_type.startswith("siglip"):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return IMAGE_MEAN, IMAGE_STD


def load_image_encoder(path_or_id, device="cpu") -> HFImageEncoder:
    """A frozen transformers vision encoder from a model folder or a cached Hugging Face id (module docstring).
    EncoderNotFound (with how to get it) when it is neither; ValueError for a model that is not an image model."""
    import transformers

    name = str(path_or_id)
    from robreward.feedback.vision.openclip_format import looks_like_open_clip

    if looks_like_open_clip(name):
        return _open_clip_encoder(name).to(device)
    folder = Path(name).expanduser()
    local = folder.is_dir()
    if local and not (folder / "config.json").is_file():
        raise EncoderNotFound(f"image encoder folder {name!r} has no config.json: pass a folder written by "
                              f"save_pretrained or a downloaded model snapshot; {_how_to_get('MODEL_ID')}")
    if not local and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise EncoderNotFound(f"image encoder {name!r}: no such folder; {_how_to_get('MODEL_ID')}")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    source = str(folder) if local else name
    try:
        # local_files_only: HF_HUB_OFFLINE as it is now (huggingface_hub reads it once, at import)
        config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=False, local_files_only=offline)
    except (OSError, ValueError) as err:
        if local:
            raise ValueError(f"image encoder {name!r}: its config.json cannot be read ({err})") from None
        mode = "HF_HUB_OFFLINE=1 forbids downloading it" if offline else "it could not be fetched from the Hub"
        raise EncoderNotFound(f"image encoder {name!r} is not a folder and not in the Hugging Face cache ({mode}); "
                              f"{_how_to_get(name)}") from None
    model_type = str(getattr(config, "model_type", ""))
    cls_name = _VISION_TOWERS.get(model_type, "AutoModel")
    cls = getattr(transformers, cls_name)
    try:
        model = cls.from_pretrained(source, trust_remote_code=False, local_files_only=offline or local)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise EncoderNotFound(f"image encoder {name!r}: its weights could not be loaded ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200]}); {_how_to_get(name)}") from None
    vision = getattr(model.config, "vision_config", model.config)
    if not hasattr(vision, "image_size") and not hasattr(vision, "num_channels"):
        raise ValueError(f"image encoder {name!r} is a {model_type or type(model).__name__} model, not an image model: "
                         "pass a vision model (CLIP, SigLIP, ViT, ResNet, ...)")
    size = getattr(vision, "image_size", 224)
    size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
    cache_folder = folder if local else None
    mean, std = _norm_stats(cache_folder, model_type)
    enc = HFImageEncoder(model, name, (int(size[-1]), int(size[0])), mean, std)
    return enc.to(device)


def _open_clip_encoder(name: str) -> HFImageEncoder:
    """The image tower of an open_clip checkpoint as a frozen encoder (its pooled, pre-projection features)."""
    from robreward.feedback.vision.openclip_format import OpenClipError, load_open_clip

    try:
        model, _, processor = load_open_clip(name)
    except OpenClipError as err:
        if "does not exist" in str(err) or "not in the Hugging Face cache" in str(err) or "no weights" in str(err):
            raise EncoderNotFound(f"image encoder {name!r}: {err}") from None
        raise ValueError(f"image encoder {name!r}: {err}") from None
    size = int(model.config.vision_config.image_size)
    return HFImageEncoder(model.vision_model, name, (size, size), processor["image_mean"], processor["image_std"])
