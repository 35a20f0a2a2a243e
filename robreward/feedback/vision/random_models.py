"""Randomly initialised CLIP / SigLIP / open_clip / X-CLIP models saved as a user's downloaded model would be,
for tests and speed measurements where no pretrained weights can be downloaded (their rewards mean nothing;
their cost is real).

    save_random_model("models/tiny-clip", kind="clip", size="tiny")        # 32 px, 2 layers: tests
    save_random_model("models/b32-clip", kind="clip", size="vit-b32")      # ViT-B/32's shapes: benchmarks
    save_random_model("models/tiny-oc", kind="open_clip")                  # open_clip's hf-hub folder layout
    save_random_model("models/tiny-xclip", kind="xclip")                   # X-CLIP video-text model, 8 frames

A transformers folder holds config.json, model.safetensors, preprocessor_config.json and a word-level
tokenizer (tokenizer.json), and loads through the same ``from_pretrained`` path as real weights
(clip.load_vision_language_model). An open_clip folder holds open_clip_config.json (model_cfg +
preprocess_cfg), open_clip_model.safetensors (open_clip's tensor names) and the same tokenizer files, as
LAION's hub repositories do; it loads through openclip_format.
"""

from __future__ import annotations

from pathlib import Path

import torch

KINDS = ("clip", "siglip", "open_clip", "xclip")
NUM_FRAMES = 8  # X-CLIP's clip length (as microsoft/xclip-base-patch32)
SIZES = {
    "tiny": dict(image_size=32, patch_size=8, vision_hidden=32, vision_layers=2, vision_heads=2, text_hidden=32,
                 text_layers=2, text_heads=2, projection=16, vocab=128, max_len=16),
    "vit-b32": dict(image_size=224, patch_size=32, vision_hidden=768, vision_layers=12, vision_heads=12,
                    text_hidden=512, text_layers=12, text_heads=8, projection=512, vocab=4096, max_len=77),
}
WORDS = ("a an the robot arm hand gripper humanoid cheetah kneeling standing running reaching touching pushing "
         "lifting opening red green blue ball cube block target drawer table floor goal of on in at near far "
         "open closed up down left right").split()
PAD, UNK, BOS, EOS = 0, 1, 2, 3


def _tokenizer(folder: Path, vocab_size: int, max_len: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": PAD, "[UNK]": UNK, "[BOS]": BOS, "[EOS]": EOS}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocab)} words")
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]",
                                                             special_tokens=[("[BOS]", BOS), ("[EOS]", EOS)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   bos_token="[BOS]", eos_token="[EOS]", model_max_length=max_len)
    fast.save_pretrained(folder)


def save_random_model(folder, kind: str = "clip", size: str = "tiny", seed: int = 0) -> Path:
    """A random ``kind`` model (one of KINDS) of ``size`` ("tiny" or "vit-b32") saved in ``folder``."""
    from transformers.utils import logging as hf_logging

    # no "Writing model shards" bar and no notice that torchvision is missing (the processors are only saved)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return _save(Path(folder), kind, size, seed)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _save(folder: Path, kind: str, size: str, seed: int) -> Path:
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        XCLIPConfig,
        XCLIPModel,
    )

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    s = SIZES[size]
    folder.mkdir(parents=True, exist_ok=True)
    text = dict(vocab_size=s["vocab"], hidden_size=s["text_hidden"], intermediate_size=4 * s["text_hidden"],
                num_hidden_layers=s["text_layers"], num_attention_heads=s["text_heads"],
                max_position_embeddings=s["max_len"], pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
    vision = dict(hidden_size=s["vision_hidden"], intermediate_size=4 * s["vision_hidden"],
                  num_hidden_layers=s["vision_layers"], num_attention_heads=s["vision_heads"],
                  image_size=s["image_size"], patch_size=s["patch_size"])
    torch.manual_seed(seed)
    edge = s["image_size"]
    if kind in ("clip", "open_clip"):
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=s["projection"]))
        processor = CLIPImageProcessor(size={"shortest_edge": edge}, crop_size={"height": edge, "width": edge})
        if kind == "open_clip":
            _save_open_clip(folder, model)
            _tokenizer(folder, s["vocab"], s["max_len"])
            return folder
    elif kind == "xclip":
        vision.update(num_frames=NUM_FRAMES, mit_hidden_size=s["projection"], mit_intermediate_size=4 * s["projection"],
                      mit_num_attention_heads=2 if size == "tiny" else 8)
        model = XCLIPModel(XCLIPConfig(text_config=text, vision_config=vision, projection_dim=s["projection"],
                                       prompt_num_attention_heads=2 if size == "tiny" else 8))
        processor = CLIPImageProcessor(size={"shortest_edge": edge}, crop_size={"height": edge, "width": edge})
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        processor = SiglipImageProcessor(size={"height": s["image_size"], "width": s["image_size"]})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    _tokenizer(folder, s["vocab"], s["max_len"])
    return folder


def _save_open_clip(folder: Path, model) -> None:
    """``model`` (a transformers CLIPModel) in open_clip's save_for_hf layout."""
    import json

    from safetensors.torch import save_file

    from robreward.feedback.vision.clip import CLIP_MEAN, CLIP_STD
    from robreward.feedback.vision.openclip_format import CONFIG_NAME, WEIGHT_NAMES, from_transformers, model_config_of
    from robreward.fileio import atomic_path

    cfg = model_config_of(model, quick_gelu=model.config.vision_config.hidden_act == "quick_gelu")
    config = {"model_cfg": cfg, "preprocess_cfg": {"mean": list(CLIP_MEAN), "std": list(CLIP_STD),
                                                   "interpolation": "bicubic", "resize_mode": "shortest"}}
    with atomic_path(folder / CONFIG_NAME) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2))
    with atomic_path(folder / WEIGHT_NAMES[0]) as tmp:
        save_file(from_transformers(model), str(tmp))


__all__ = ["KINDS", "NUM_FRAMES", "SIZES", "save_random_model"]
