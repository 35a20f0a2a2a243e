"""open_clip checkpoints (LAION, DataComp, DFN, OpenAI's in open_clip form) as transformers CLIPModels.

    clip:open_clip:models/vit-h14                  a folder as `hf download laion/CLIP-ViT-H-14-laion2B-s32B-b79K`
                                                   or open_clip's push_to_hf_hub/save_for_hf leaves it:
                                                   open_clip_config.json + open_clip_model.safetensors
                                                   (or open_clip_pytorch_model.bin)
    clip:open_clip:hf-hub:laion/CLIP-ViT-H-14-laion2B-s32B-b79K     the same folder from the Hugging Face cache
    clip:open_clip:ViT-B-32@models/vit-b32.safetensors             an architecture and a bare checkpoint file
                                                                   (ARCH: a name from open_clip's model_configs,
                                                                   which needs open_clip_torch installed, or the
                                                                   path of a model config JSON)

A folder with open_clip_config.json and no transformers config.json is also recognised without the prefix.

*Why not through open_clip itself.* open_clip imports torchvision, whose wheels are built against one torch
release each (on the CPU build of torch robreward pins, PyPI's torchvision does not import), and open_clip's
own checkpoint loader unpickles. Here nothing of open_clip is imported: the model config is read as JSON,
the weights with safetensors or ``torch.load(weights_only=True)``, and the standard open_clip CLIP (a ViT
image tower and a causal text transformer: every LAION/DataComp/DFN/OpenAI ViT model) is mapped onto
transformers' CLIPModel, tensor by tensor. Architectures that are not that (ConvNeXt or timm image towers,
ResNets, Hugging Face text towers, CoCa, attentional pooling, layer scale, ...) stop with a clear error.

*Tokenizer.* The folder's own tokenizer files when it has them (tokenizer.json, or vocab.json + merges.txt,
as LAION's repositories carry); else open_clip's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, OpenAI's) read
from the installed open_clip_torch package without importing it (`pip install --no-deps open_clip_torch`).
The text tower pools at the highest token id as open_clip does (``pool_type='argmax'``).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import tempfile
from pathlib import Path

import torch

PREFIX = "open_clip:"
CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HOW_TO_GET = ("to get an open_clip model, on a machine with internet run `hf download "
              "laion/CLIP-ViT-B-32-laion2B-s34B-b79K --local-dir models/oc-vit-b32` (any open_clip repository with "
              "open_clip_config.json works), copy the folder here and pass open_clip:models/oc-vit-b32 as the model "
              "(--reward clip:open_clip:models/oc-vit-b32); or open_clip:ARCH@FILE.safetensors for a bare checkpoint")

# model_cfg keys whose non-default values this converter cannot map (key -> the value it supports)
_UNSUPPORTED_VISION = {"ls_init_value": None, "attentional_pool": False, "no_ln_pre": False,
                       "final_ln_after_pool": False, "pool_type": "tok", "timm_model_name": None,
                       "pos_embed_type": "learnable", "qk_norm": False, "scaled_cosine_attn": False,
                       "scale_heads": False, "scale_attn_inner": False, "scale_attn": False, "scale_fc": False,
                       "norm_kwargs": None, "act_kwargs": None, "input_patchnorm": False}
_UNSUPPORTED_TEXT = {"ls_init_value": None, "embed_cls": False, "no_causal_mask": False,
                     "final_ln_after_pool": False, "pool_type": "argmax", "proj_bias": False, "proj_type": "linear",
                     "hf_model_name": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
                     "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "norm_kwargs": None,
                     "act_kwargs": None}


class OpenClipError(ValueError):
    """An open_clip model that cannot be found, read or mapped: the message says why and what to do."""


def looks_like_open_clip(name: str) -> bool:
    """``open_clip:...``, or a folder with open_clip_config.json and no transformers config.json."""
    if name.startswith(PREFIX):
        return True
    folder = Path(name).expanduser()
    return folder.is_dir() and (folder / CONFIG_NAME).is_file() and not (folder / "config.json").is_file()


def absolute_name(name: str) -> str:
    """``name`` with its local folder or file made absolute (a resumed run finds it)."""
    rest = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if rest.startswith("hf-hub:"):
        return name
    arch, at, file = rest.rpartition("@")
    if at:
        arch_path = Path(arch).expanduser()
        arch = str(arch_path.resolve()) if arch_path.is_file() else arch
        return f"{PREFIX}{arch}@{Path(file).expanduser().resolve()}"
    path = Path(rest).expanduser()
    return PREFIX + str(path.resolve()) if path.exists() else name


# -- finding the config, the weights and the tokenizer ---------------------------------------------------------
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_file(repo: str, filename: str, required: bool) -> Path | None:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=_offline()))
    except Exception as err:  # noqa: BLE001  (huggingface_hub raises many kinds: not cached, offline, 404, network)
        if not required:
            return None
        where = "the Hugging Face cache (HF_HUB_OFFLINE=1 is set)" if _offline() else "the cache or the hub"
        raise OpenClipError(f"open_clip model hf-hub:{repo}: {filename} is not in {where} ({type(err).__name__}); "
                            f"{HOW_TO_GET}") from None


def _package_file(*parts: str) -> Path | None:
    """A data file of the installed open_clip_torch package, found without importing it (it imports torchvision)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return path if path.is_file() else None


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OpenClipError(f"{what} {str(path)!r} could not be read as JSON ({err})") from None
    if not isinstance(data, dict):
        raise OpenClipError(f"{what} {str(path)!r} is not a JSON object")
    return data


def resolve(name: str) -> tuple[dict, dict, Path, Path | None]:
    """(model_cfg, preprocess_cfg, weights file, folder with tokenizer files or None) of an open_clip name."""
    rest = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if not rest.strip():
        raise OpenClipError(f"{name!r}: no model after open_clip:; {HOW_TO_GET}")
    if rest.startswith("hf-hub:"):
        repo = rest[len("hf-hub:"):].strip("/")
        config = _read_json(_hub_file(repo, CONFIG_NAME, required=True), "open_clip config")
        weights = _hub_file(repo, WEIGHT_NAMES[0], required=False) or _hub_file(repo, WEIGHT_NAMES[1], required=True)
        cfg, pre = _split_config(config, name)
        tokenizer_dir = None
        for filename in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"):
            found = _hub_file(repo, filename, required=False)
            tokenizer_dir = found.parent if found is not None else tokenizer_dir
        return cfg, pre, weights, tokenizer_dir  # type: ignore[return-value]
    arch, at, file = rest.rpartition("@")
    if at:
        weights = Path(file).expanduser()
        if not weights.is_file():
            raise OpenClipError(f"{name!r}: checkpoint {file!r} not found; {HOW_TO_GET}")
        arch_path = Path(arch).expanduser()
        if arch_path.is_file():
            config = _read_json(arch_path, "open_clip model config")
        else:
            packaged = _package_file("model_configs", f"{arch}.json")
            if packaged is None:
                raise OpenClipError(f"{name!r}: architecture {arch!r} is not a config JSON file and not one of "
                                    "open_clip's model configs (those need open_clip_torch installed: `pip install "
                                    "--no-deps open_clip_torch`); pass ARCH as the path of its model config JSON")
            config = _read_json(packaged, "open_clip model config")
        cfg, pre = _split_config(config, name)
        return cfg, pre, weights, None
    folder = Path(rest).expanduser()
    if not folder.exists():
        raise OpenClipError(f"open_clip model folder {rest!r} does not exist; {HOW_TO_GET}")
    if not folder.is_dir():
        raise OpenClipError(f"{rest!r} is a file: pass its folder (with {CONFIG_NAME}), or "
                            f"clip:open_clip:ARCH@{rest} for a bare checkpoint")
    if not (folder / CONFIG_NAME).is_file():
        raise OpenClipError(f"open_clip model folder {rest!r} has no {CONFIG_NAME}; {HOW_TO_GET}")
    cfg, pre = _split_config(_read_json(folder / CONFIG_NAME, "open_clip config"), name)
    weights = next((folder / w for w in WEIGHT_NAMES if (folder / w).is_file()), None)
    if weights is None:
        raise OpenClipError(f"open_clip model folder {rest!r} has {CONFIG_NAME} but no weights ({' or '.join(WEIGHT_NAMES)}): "
                            f"the download is incomplete; {HOW_TO_GET}")
    return cfg, pre, weights, folder


def _split_config(config: dict, name: str) -> tuple[dict, dict]:
    cfg = config.get("model_cfg", config)
    if not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise OpenClipError(f"{name!r}: the open_clip config has no model_cfg with embed_dim, vision_cfg and text_cfg")
    return cfg, dict(config.get("preprocess_cfg", {}))


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint, never unpickling code: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (a truncated or foreign file raises many kinds)
        raise OpenClipError(f"checkpoint {str(path)!r} could not be read as weights ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:200] if str(err) else ''}); re-download it, or convert it to "
                            ".safetensors") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # an open_clip training checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OpenClipError(f"checkpoint {str(path)!r} is not a state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


@functools.lru_cache(maxsize=4)
def bpe_tokenizer(bpe_path: Path, context_length: int):
    """A transformers CLIPTokenizer with open_clip's SimpleTokenizer vocabulary (OpenAI's BPE) from its .txt.gz
    (built once per process: 49k tokens and merges take seconds)."""
    from transformers import CLIPTokenizer

    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    pairs = [tuple(m.split()) for m in merges]
    chars = list(bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars] + ["".join(p) for p in pairs]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    with tempfile.TemporaryDirectory() as tmp:  # files: the one form transformers 4 and 5 both take
        vocab_file, merges_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n" + "\n".join(" ".join(p) for p in pairs) + "\n")
        return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=context_length)


def load_tokenizer(cfg: dict, tokenizer_dir: Path | None, name: str):
    from transformers import AutoTokenizer

    text = cfg["text_cfg"]
    context = int(text.get("context_length", 77))
    if tokenizer_dir is not None and any((tokenizer_dir / f).is_file() for f in ("tokenizer.json", "vocab.json")):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise OpenClipError(f"{name!r}: its tokenizer files could not be read ({err})") from None
        tokenizer.model_max_length = min(int(tokenizer.model_max_length or context), context)
        return tokenizer
    if text.get("hf_tokenizer_name"):
        raise OpenClipError(f"{name!r} uses the Hugging Face tokenizer {text['hf_tokenizer_name']!r}: save it into the "
                            "model folder (AutoTokenizer.from_pretrained(NAME).save_pretrained(FOLDER))")
    bpe = _package_file("bpe_simple_vocab_16e6.txt.gz")
    if bpe is None:
        raise OpenClipError(f"{name!r} has no tokenizer files and open_clip's BPE vocabulary is not installed: run "
                            "`pip install --no-deps open_clip_torch` (robreward reads its vocabulary file only), or "
                            "copy tokenizer.json/vocab.json/merges.txt of openai/clip-vit-base-patch32 into the folder")
    return bpe_tokenizer(bpe, context)


# -- the mapping onto transformers' CLIPModel ---------------------------------------------------------------------
def _check_supported(cfg: dict, name: str) -> None:
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    bad = []
    if isinstance(vision.get("layers"), (list, tuple)):
        bad.append("a ResNet image tower (vision_cfg.layers is a list)")
    for part, table, tower in (("vision_cfg", _UNSUPPORTED_VISION, vision), ("text_cfg", _UNSUPPORTED_TEXT, text)):
        bad += [f"{part}.{key}={tower[key]!r}" for key, ok in table.items() if tower.get(key, ok) not in (ok, None)]
    bad += [f"{part}.block_type={tower['block_type']!r}" for part, tower in (("vision_cfg", vision), ("text_cfg", text))
            if tower.get("block_type") not in (None, "default")]
    size = vision.get("image_size", 224)
    if isinstance(size, (list, tuple)) and len(set(size)) > 1:
        bad.append(f"a non-square image_size {size}")
    for key in ("multimodal_cfg",):
        if key in cfg:
            bad.append(f"{key} (CoCa)")
    if bad:
        raise OpenClipError(f"open_clip model {name!r} is not the standard ViT CLIP that robreward maps onto "
                            f"transformers ({'; '.join(bad)}): use a transformers copy of it (a folder with "
                            "config.json and model.safetensors, as LAION's repositories also carry), or a ViT CLIP")


def hf_config(cfg: dict):
    """The transformers CLIPConfig of an open_clip model_cfg."""
    from transformers import CLIPConfig

    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    act = "quick_gelu" if cfg.get("quick_gelu", False) else "gelu"
    size = vision.get("image_size", 224)
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    v_width, t_width = int(vision.get("width", 768)), int(text.get("width", 512))
    return CLIPConfig(
        projection_dim=int(cfg["embed_dim"]),
        vision_config=dict(hidden_size=v_width, intermediate_size=int(v_width * float(vision.get("mlp_ratio", 4.0))),
                           num_hidden_layers=int(vision.get("layers", 12)),
                           num_attention_heads=v_width // int(vision.get("head_width", 64)),
                           image_size=size, patch_size=int(vision.get("patch_size", 16)), hidden_act=act,
                           layer_norm_eps=1e-5),
        text_config=dict(vocab_size=int(text.get("vocab_size", 49408)), hidden_size=t_width,
                         intermediate_size=int(t_width * float(text.get("mlp_ratio", 4.0))),
                         num_hidden_layers=int(text.get("layers", 12)), num_attention_heads=int(text.get("heads", 8)),
                         max_position_embeddings=int(text.get("context_length", 77)), hidden_act=act,
                         layer_norm_eps=1e-5, eos_token_id=2, pad_token_id=0,
                         bos_token_id=49406 if int(text.get("vocab_size", 49408)) > 49406 else None))
    # eos_token_id=2: transformers' legacy pooling at the highest token id, which is open_clip's 'argmax' pooling


def _block_map(src: str, dst: str, layers: int) -> list[tuple[str, str, str]]:
    rows = []
    for i in range(layers):
        s, d = f"{src}.resblocks.{i}", f"{dst}.layers.{i}"
        rows += [(f"{s}.ln_1.weight", f"{d}.layer_norm1.weight", ""), (f"{s}.ln_1.bias", f"{d}.layer_norm1.bias", ""),
                 (f"{s}.ln_2.weight", f"{d}.layer_norm2.weight", ""), (f"{s}.ln_2.bias", f"{d}.layer_norm2.bias", ""),
                 (f"{s}.attn.in_proj_weight", f"{d}.self_attn.", "qkv_weight"),
                 (f"{s}.attn.in_proj_bias", f"{d}.self_attn.", "qkv_bias"),
                 (f"{s}.attn.out_proj.weight", f"{d}.self_attn.out_proj.weight", ""),
                 (f"{s}.attn.out_proj.bias", f"{d}.self_attn.out_proj.bias", ""),
                 (f"{s}.mlp.c_fc.weight", f"{d}.mlp.fc1.weight", ""), (f"{s}.mlp.c_fc.bias", f"{d}.mlp.fc1.bias", ""),
                 (f"{s}.mlp.c_proj.weight", f"{d}.mlp.fc2.weight", ""), (f"{s}.mlp.c_proj.bias", f"{d}.mlp.fc2.bias", "")]
    return rows


def key_map(cfg: dict) -> list[tuple[str, str, str]]:
    """(open_clip key, transformers key, how) for every tensor; how: '' copy, 'T' transpose, 'qkv_*' split."""
    v_layers, t_layers = int(cfg["vision_cfg"].get("layers", 12)), int(cfg["text_cfg"].get("layers", 12))
    rows = [("visual.class_embedding", "vision_model.embeddings.class_embedding", ""),
            ("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", ""),
            ("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", ""),
            ("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", ""),
            ("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", ""),
            ("visual.ln_post.weight", "vision_model.post_layernorm.weight", ""),
            ("visual.ln_post.bias", "vision_model.post_layernorm.bias", ""),
            ("visual.proj", "visual_projection.weight", "T"),
            ("token_embedding.weight", "text_model.embeddings.token_embedding.weight", ""),
            ("positional_embedding", "text_model.embeddings.position_embedding.weight", ""),
            ("ln_final.weight", "text_model.final_layer_norm.weight", ""),
            ("ln_final.bias", "text_model.final_layer_norm.bias", ""),
            ("text_projection", "text_projection.weight", "T"),
            ("logit_scale", "logit_scale", "")]
    rows += _block_map("visual.transformer", "vision_model.encoder", v_layers)
    rows += _block_map("transformer", "text_model.encoder", t_layers)
    return rows


def to_transformers(state: dict[str, torch.Tensor], cfg: dict, name: str = "open_clip model"):
    """A transformers CLIPModel holding an open_clip state dict (every tensor used, every parameter filled)."""
    from transformers import CLIPModel

    if cfg.get("custom_text") and any(k.startswith("text.") for k in state):  # CustomTextCLIP: the text tower under text.
        state = {(k[len("text."):] if k.startswith("text.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k != "attn_mask" and not k.endswith(".attn_mask")}
    model = CLIPModel(hf_config(cfg))
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    used = set()
    for src, dst, how in key_map(cfg):
        if src not in state:
            if src == "logit_scale":
                continue
            raise OpenClipError(f"{name}: the checkpoint has no {src!r}: it does not match its config (a different "
                                "architecture?)")
        tensor, used = state[src], used | {src}
        if how == "T":
            out[dst] = tensor.t()
        elif how.startswith("qkv_"):
            for part, chunk in zip("qkv", tensor.chunk(3, dim=0)):
                out[f"{dst}{part}_proj.{how[4:]}"] = chunk
        else:
            out[dst] = tensor.reshape(target[dst].shape) if dst == "logit_scale" else tensor
    extra = sorted(set(state) - used)
    if extra:
        raise OpenClipError(f"{name}: the checkpoint holds tensors this mapping does not know ({', '.join(extra[:4])}"
                            f"{', ...' if len(extra) > 4 else ''}): it is not a standard open_clip ViT CLIP")
    for key, tensor in out.items():
        if key not in target or tuple(target[key].shape) != tuple(tensor.shape):
            want = tuple(target[key].shape) if key in target else "no such parameter"
            raise OpenClipError(f"{name}: tensor {key} has shape {tuple(tensor.shape)}, its config says {want}: the "
                                "checkpoint does not match the config")
    missing = sorted(k for k in target if k not in out and not k.endswith("position_ids"))
    if missing:
        raise OpenClipError(f"{name}: the checkpoint has nothing for {', '.join(missing[:4])}")
    model.load_state_dict(out, strict=False)
    return model


def from_transformers(model) -> dict[str, torch.Tensor]:
    """The inverse of to_transformers: a CLIPModel's tensors under open_clip's names (random_models writes these)."""
    cfg = {"vision_cfg": {"layers": model.config.vision_config.num_hidden_layers},
           "text_cfg": {"layers": model.config.text_config.num_hidden_layers}}
    hf = model.state_dict()
    state = {}
    for src, dst, how in key_map(cfg):
        if how == "T":
            state[src] = hf[dst].t().contiguous()
        elif how.startswith("qkv_"):
            state[src] = torch.cat([hf[f"{dst}{part}_proj.{how[4:]}"] for part in "qkv"], 0).contiguous()
        else:
            state[src] = hf[dst].reshape(()) if src == "logit_scale" else hf[dst].clone()
    return state


def model_config_of(model, quick_gelu: bool) -> dict:
    """open_clip's model_cfg of a transformers CLIPModel (the inverse of hf_config)."""
    v, t = model.config.vision_config, model.config.text_config
    return {"embed_dim": int(model.config.projection_dim), "quick_gelu": bool(quick_gelu),
            "vision_cfg": {"image_size": int(v.image_size), "layers": int(v.num_hidden_layers),
                           "width": int(v.hidden_size), "head_width": int(v.hidden_size // v.num_attention_heads),
                           "mlp_ratio": v.intermediate_size / v.hidden_size, "patch_size": int(v.patch_size)},
            "text_cfg": {"context_length": int(t.max_position_embeddings), "vocab_size": int(t.vocab_size),
                         "width": int(t.hidden_size), "heads": int(t.num_attention_heads),
                         "layers": int(t.num_hidden_layers), "mlp_ratio": t.intermediate_size / t.hidden_size}}


def image_processor(cfg: dict, pre: dict) -> dict:
    """A preprocessor_config.json-like dict for clip.image_transform from open_clip's preprocess_cfg."""
    size = cfg["vision_cfg"].get("image_size", 224)
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    size = int(pre.get("size", size) if not isinstance(pre.get("size"), (list, tuple)) else pre["size"][0])
    mean, std = list(pre.get("mean", OPENAI_MEAN)), list(pre.get("std", OPENAI_STD))
    if pre.get("resize_mode", "shortest") == "squash":
        return {"size": {"height": size, "width": size}, "do_center_crop": False, "image_mean": mean, "image_std": std}
    return {"size": {"shortest_edge": size}, "crop_size": {"height": size, "width": size}, "do_center_crop": True,
            "image_mean": mean, "image_std": std}


def load_open_clip(name: str):
    """(CLIPModel, tokenizer, preprocessor dict, image size) of an open_clip name (module docstring)."""
    cfg, pre, weights, tokenizer_dir = resolve(name)
    _check_supported(cfg, name)
    model = to_transformers(load_state_dict(weights), cfg, name)
    tokenizer = load_tokenizer(cfg, tokenizer_dir, name)
    return model, tokenizer, image_processor(cfg, pre)


__all__ = ["CONFIG_NAME", "OpenClipError", "PREFIX", "WEIGHT_NAMES", "absolute_name", "bpe_tokenizer",
           "from_transformers", "hf_config", "key_map", "load_open_clip", "load_state_dict", "looks_like_open_clip",
           "model_config_of", "resolve", "to_transformers"]
