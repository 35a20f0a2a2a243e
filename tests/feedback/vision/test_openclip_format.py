"""clip:open_clip:... checkpoints: a tiny model made by open_clip's own code (its CLIP class, its save_for_hf
writer, its SimpleTokenizer) loads through robreward's mapping onto transformers and embeds images and texts
as open_clip does; the safe loaders; the goal-baseline reward and `robreward vision score` through that path;
the bad inputs' messages.

open_clip imports torchvision, which does not import beside the CPU build of torch robreward pins (PyPI's
wheels are built against one CUDA torch each). The reference run therefore goes in a subprocess with a stub
torchvision package on sys.path when the real one does not import: open_clip uses torchvision only for its
image transforms and FrozenBatchNorm2d, neither of which a ViT CLIP's forward touches (the pixels are given).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from robreward.feedback.vision.clip import (
    ClipReward,
    VisionModelError,
    goal_baseline_projection,
    load_vision_language_model,
    projection_reward,
)
from robreward.feedback.vision.openclip_format import load_state_dict, looks_like_open_clip
from robreward.feedback.vision.random_models import save_random_model

TEXTS = ["a robot arm touching the red ball", "a robot arm", "a humanoid robot kneeling"]
STUB = {
    "torchvision/__init__.py": "",
    "torchvision/ops/__init__.py": "",
    "torchvision/ops/misc.py": "class FrozenBatchNorm2d:\n    pass\n",
    "torchvision/transforms/functional.py": "",
    "torchvision/transforms/__init__.py": textwrap.dedent("""
        import enum
        class InterpolationMode(enum.Enum):
            NEAREST = "nearest"; BILINEAR = "bilinear"; BICUBIC = "bicubic"; LANCZOS = "lanczos"
        class _Unused:
            def __init__(self, *args, **kwargs):
                raise RuntimeError("torchvision stub: open_clip's image transforms are not used here")
        Normalize = Compose = RandomResizedCrop = ToTensor = Resize = CenterCrop = ColorJitter = Grayscale = _Unused
        """),
}
REFERENCE = textwrap.dedent("""
    import json, sys
    import torch
    import open_clip
    from open_clip.push_to_hf_hub import save_for_hf

    root, texts = sys.argv[1], json.loads(sys.argv[2])
    for quick in (False, True):
      out = root + ("/quick" if quick else "/gelu")
      cfg = {"embed_dim": 16, "quick_gelu": quick,
             "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
      torch.manual_seed(0)
      model = open_clip.model.CLIP(**cfg).eval()
      model.visual.image_mean, model.visual.image_std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # as create_model does
      with torch.no_grad():  # move the layer norms and biases off their initial 1/0 so a swapped tensor shows
          for name, p in model.named_parameters():
              if p.ndim == 1:
                  p.add_(0.1 * torch.randn_like(p))

      class NoTokenizerFiles:  # open_clip's SimpleTokenizer writes none: the loader takes the packaged BPE
          def save_pretrained(self, folder):
              pass

      save_for_hf(model, NoTokenizerFiles(), cfg, out, safe_serialization="both")
      tokens = open_clip.tokenizer.SimpleTokenizer(context_length=16)(texts)
      torch.manual_seed(1)
      pixels = torch.randn(4, 3, 32, 32)
      with torch.no_grad():
          image = model.encode_image(pixels, normalize=True)
          text = model.encode_text(tokens, normalize=True)
      torch.save({"pixels": pixels, "image": image, "text": text, "tokens": tokens}, out + "/reference.pt")
    """)


def _open_clip_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("open_clip") is not None and importlib.util.find_spec("ftfy") is not None


def _references(root) -> dict:
    """{quick_gelu: (a folder written by open_clip's save_for_hf, open_clip's own embeddings of fixed pixels and
    texts)} for GELU and quick_gelu tiny models, made in one subprocess."""
    stub = root / "stub"
    for rel, text in STUB.items():
        (stub / rel).parent.mkdir(parents=True, exist_ok=True)
        (stub / rel).write_text(text)
    probe = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True)
    env = dict(os.environ)
    if probe.returncode != 0:
        env["PYTHONPATH"] = os.pathsep.join([str(stub), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", REFERENCE, str(root), json.dumps(TEXTS)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {quick: (root / name, torch.load(root / name / "reference.pt", weights_only=True))
            for quick, name in ((False, "gelu"), (True, "quick"))}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    if not _open_clip_installed():
        pytest.skip("open_clip_torch (and ftfy) not installed: `pip install --no-deps open_clip_torch ftfy` "
                    "(make install does)")
    return _references(tmp_path_factory.mktemp("open_clip"))


@pytest.mark.parametrize("quick", [False, True], ids=["gelu", "quick_gelu"])
def test_open_clip_checkpoint_embeds_as_open_clip_does(references, quick):
    folder, ref = references[quick]
    assert sorted(p.name for p in folder.iterdir()) == ["open_clip_config.json", "open_clip_model.safetensors",
                                                        "open_clip_pytorch_model.bin", "reference.pt"]
    model = load_vision_language_model(f"open_clip:{folder}")
    assert model.source == "open_clip" and model.image_size == (32, 32)
    assert model.transform.mean == (0.5, 0.4, 0.3) and model.transform.std == (0.2, 0.25, 0.3)  # its preprocess_cfg
    # the tokenizer (open_clip's BPE read from the installed package) gives open_clip's token ids
    ids = model.tokenizer(TEXTS, padding="max_length", max_length=16, return_tensors="pt")["input_ids"]
    eot = 49407
    for got, want in zip(ids, ref["tokens"]):
        n = int((want == eot).nonzero()[0]) + 1
        assert got[:n].tolist() == want[:n].tolist()
    with torch.no_grad():
        image = model._features(model.model.get_image_features(pixel_values=ref["pixels"]))
    assert torch.allclose(torch.nn.functional.normalize(image, dim=-1), ref["image"], atol=1e-5)
    assert torch.allclose(model.encode_texts(TEXTS), ref["text"], atol=1e-5)


def test_pickle_checkpoint_and_bare_file_load_with_weights_only(references, tmp_path):
    folder, ref = references[False]
    only_bin = tmp_path / "bin"
    only_bin.mkdir()
    for name in ("open_clip_config.json", "open_clip_pytorch_model.bin"):
        shutil.copy(folder / name, only_bin / name)
    state = load_state_dict(only_bin / "open_clip_pytorch_model.bin")  # torch.load(weights_only=True)
    assert set(state) == set(load_state_dict(folder / "open_clip_model.safetensors"))
    model = load_vision_language_model(str(only_bin))  # recognised without the prefix: no config.json
    assert model.source == "open_clip"
    assert torch.allclose(model.encode_texts(TEXTS), ref["text"], atol=1e-5)
    # ARCH@FILE: the architecture as a model config JSON, the weights a bare file
    arch = tmp_path / "tiny-vit.json"
    arch.write_text(json.dumps(json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]))
    bare = load_vision_language_model(f"open_clip:{arch}@{folder / 'open_clip_model.safetensors'}")
    assert torch.allclose(bare.encode_texts(TEXTS), ref["text"], atol=1e-5)


def test_a_pickle_with_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unsafe",))

    folder = tmp_path / "evil"
    save_random_model(folder, kind="open_clip")
    (folder / "open_clip_model.safetensors").unlink()
    torch.save({"x": Payload()}, folder / "open_clip_pytorch_model.bin")
    with pytest.raises(VisionModelError, match="could not be read as weights"):
        load_vision_language_model(str(folder))


# -- the random open_clip folder (no open_clip needed) -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_open_clip")
    return save_random_model(root / "oc", kind="open_clip"), save_random_model(root / "hf", kind="clip")


def test_random_open_clip_folder_maps_back_to_the_same_image_tower(tiny):
    oc, hf = tiny
    assert looks_like_open_clip(str(oc)) and not looks_like_open_clip(str(hf))
    frames = torch.randint(0, 256, (6, 40, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a, b = load_vision_language_model(str(hf)), load_vision_language_model(f"open_clip:{oc}")
    assert torch.allclose(a.encode_images(frames), b.encode_images(frames), atol=1e-5)


def test_goal_baseline_reward_and_vision_score_through_open_clip(tiny, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from robreward.cli.main import main

    oc, _ = tiny
    model = load_vision_language_model(f"open_clip:{oc}")
    reward = ClipReward(model, None, goals=["a robot arm touching the red ball"], baselines=["a robot arm"], alpha=0.5)
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    g, P = goal_baseline_projection(model.encode_texts(["a robot arm touching the red ball"]),
                                    model.encode_texts(["a robot arm"]), 0.5)
    want = projection_reward(model.encode_images(frames), g, P)
    assert torch.allclose(reward.score_frames(frames), want)
    paths = []
    for i, frame in enumerate(frames.numpy()):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(np.asarray(frame)).save(paths[-1])
    capsys.readouterr()
    assert main(["vision", "score", "--model", f"open_clip:{oc}", "--goal", "a robot arm touching the red ball",
                 "--baseline", "a robot arm", "--json", *map(str, paths)]) == 0
    scores = [row["clip_reward"] for row in json.loads(capsys.readouterr().out)["scores"]]
    assert np.allclose(scores, want.numpy(), atol=1e-5)


def test_clip_reward_spec_keeps_the_open_clip_model_absolute(tiny, monkeypatch):
    from robreward.rewards.spec import normalize_reward_spec

    oc, _ = tiny
    monkeypatch.chdir(oc.parent)
    spec = normalize_reward_spec("clip:open_clip:oc,goal=a robot arm touching the red ball,baseline=a robot arm")
    assert f"clip:open_clip:{oc.resolve()},goal=" in spec


def test_bad_open_clip_inputs_say_what_to_do(tiny, tmp_path, monkeypatch):
    oc, _ = tiny
    with pytest.raises(VisionModelError, match="does not exist.*hf download"):
        load_vision_language_model(f"open_clip:{tmp_path / 'nope'}")
    empty = tmp_path / "no-weights"
    empty.mkdir()
    shutil.copy(oc / "open_clip_config.json", empty / "open_clip_config.json")
    with pytest.raises(VisionModelError, match="no weights.*incomplete"):
        load_vision_language_model(f"open_clip:{empty}")
    with pytest.raises(VisionModelError, match="has no open_clip_config.json"):
        load_vision_language_model(f"open_clip:{tmp_path}")
    with pytest.raises(VisionModelError, match="not a config JSON file and not one of open_clip's model configs"):
        load_vision_language_model(f"open_clip:NoSuchArch-1@{oc / 'open_clip_model.safetensors'}")
    convnext = tmp_path / "convnext"
    convnext.mkdir()
    config = json.loads((oc / "open_clip_config.json").read_text())
    config["model_cfg"]["vision_cfg"]["timm_model_name"] = "convnext_base"
    (convnext / "open_clip_config.json").write_text(json.dumps(config))
    shutil.copy(oc / "open_clip_model.safetensors", convnext / "open_clip_model.safetensors")
    with pytest.raises(VisionModelError, match="not the standard ViT CLIP.*timm_model_name"):
        load_vision_language_model(str(convnext))
    wrong = tmp_path / "wrong-shape"
    wrong.mkdir()
    config = json.loads((oc / "open_clip_config.json").read_text())
    config["model_cfg"]["vision_cfg"]["width"] = 64
    (wrong / "open_clip_config.json").write_text(json.dumps(config))
    shutil.copy(oc / "open_clip_model.safetensors", wrong / "open_clip_model.safetensors")
    with pytest.raises(VisionModelError, match="does not match the config"):
        load_vision_language_model(str(wrong))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(VisionModelError, match="not in the Hugging Face cache \\(HF_HUB_OFFLINE=1"):
        load_vision_language_model("open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


REAL_ARCH = textwrap.dedent("""
    import sys
    import torch
    import open_clip
    from safetensors.torch import save_file

    arch, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None).eval()  # open_clip's bundled config, random weights
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + "/weights.safetensors")
    texts = ["a robot arm touching the red ball", "a humanoid robot kneeling"]
    torch.manual_seed(1)
    size = model.visual.image_size
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        image = model.encode_image(pixels, normalize=True)
        text = model.encode_text(open_clip.get_tokenizer(arch)(texts), normalize=True)
    torch.save({"pixels": pixels, "image": image, "text": text, "texts": texts}, out + "/reference.pt")
    """)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ViT-B-32"])
def test_a_full_size_open_clip_architecture_by_name(arch, tmp_path):
    """ARCH@FILE with ARCH one of open_clip's bundled configs: open_clip's own random ViT-B/32 (151M parameters)
    embeds as through robreward (the packaged config and BPE vocabulary, a bare safetensors file)."""
    if not _open_clip_installed():
        pytest.skip("open_clip_torch (and ftfy) not installed")
    stub = tmp_path / "stub"
    for rel, text in STUB.items():
        (stub / rel).parent.mkdir(parents=True, exist_ok=True)
        (stub / rel).write_text(text)
    env = dict(os.environ)
    if subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode != 0:
        env["PYTHONPATH"] = os.pathsep.join([str(stub), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", REAL_ARCH, arch, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ref = torch.load(tmp_path / "reference.pt", weights_only=True)
    model = load_vision_language_model(f"open_clip:{arch}@{tmp_path / 'weights.safetensors'}")
    with torch.no_grad():
        image = model._features(model.model.get_image_features(pixel_values=ref["pixels"]))
    assert torch.allclose(torch.nn.functional.normalize(image, dim=-1), ref["image"], atol=1e-4)
    assert torch.allclose(model.encode_texts(ref["texts"]), ref["text"], atol=1e-4)


def test_hf_hub_id_is_read_from_the_cache_offline(tiny, tmp_path, monkeypatch):
    import huggingface_hub.constants

    oc, _ = tiny
    repo = tmp_path / "hub" / "models--someone--tiny-open-clip"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(oc, repo / "snapshots" / commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_vision_language_model("open_clip:hf-hub:someone/tiny-open-clip")
    local = load_vision_language_model(f"open_clip:{oc}")
    frames = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(model.encode_images(frames), local.encode_images(frames))
    assert torch.allclose(model.encode_texts(TEXTS), local.encode_texts(TEXTS))
