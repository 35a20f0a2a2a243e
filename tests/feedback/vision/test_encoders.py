"""Image encoders: the small CNN, and transformers vision models loaded from a folder (tiny ones made here)."""

import json

import numpy as np
import pytest
import torch

from robreward.feedback.vision.encoders import EncoderNotFound, SmallCNN, load_image_encoder

FRAMES = np.random.default_rng(0).integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)


def test_small_cnn_encodes_frames_and_trains():
    torch.manual_seed(0)
    enc = SmallCNN(out_dim=16, image_size=32, channels=8)
    emb = enc.encode_frames(FRAMES)
    assert emb.shape == (5, 16) and torch.isfinite(emb).all()
    # it can learn: fit a bright/dark label through the encoder
    x = enc.prepare(np.concatenate([np.full((4, 32, 32, 3), 30, np.uint8), np.full((4, 32, 32, 3), 220, np.uint8)]))
    y = torch.tensor([0.0] * 4 + [1.0] * 4)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(enc(x)).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    with pytest.raises(ValueError, match="image_size must be >= 16"):
        SmallCNN(image_size=8)


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_load_tiny_transformers_encoder_from_folder(tmp_path, monkeypatch, family):
    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    kw = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
              patch_size=8)
    if family == "clip":
        model = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**kw))
    else:
        model = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(**kw))
    model.save_pretrained(tmp_path / "enc")
    enc = load_image_encoder(tmp_path / "enc")
    assert enc.out_dim == 32 and enc.image_size == (32, 32) and enc.pretrained
    emb = enc.encode_frames(FRAMES)
    assert emb.shape == (5, 32) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])  # different frames, different features
    assert all(not p.requires_grad for p in enc.parameters())  # frozen
    # the same weights give the same features after a reload
    assert torch.allclose(load_image_encoder(tmp_path / "enc").encode_frames(FRAMES), emb, atol=1e-5)
    # a preprocessor_config.json's normalisation is used
    (tmp_path / "enc" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3],
                                                                           "image_std": [0.5, 0.5, 0.5]}))
    assert load_image_encoder(tmp_path / "enc").mean == (0.1, 0.2, 0.3)


def test_missing_encoder_says_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EncoderNotFound, match="HF_HUB_OFFLINE=1 forbids downloading.*huggingface-cli download"):
        load_image_encoder("nobody/no-such-encoder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderNotFound, match="has no config.json"):
        load_image_encoder(tmp_path / "empty")
    with pytest.raises(EncoderNotFound, match="no such folder"):
        load_image_encoder(str(tmp_path / "a" / "b" / "c"))


def test_open_clip_folder_loads_its_image_tower(tmp_path):
    from robreward.feedback.vision.random_models import save_random_model

    oc = save_random_model(tmp_path / "oc", kind="open_clip")  # open_clip_config.json + open_clip_model.safetensors
    hf = save_random_model(tmp_path / "hf", kind="clip")  # the same random weights as a transformers folder
    enc, ref = load_image_encoder(str(oc)), load_image_encoder(str(hf))
    assert enc.pretrained and enc.image_size == (32, 32) and enc.out_dim == ref.out_dim == 32
    assert torch.allclose(enc.encode_frames(FRAMES), ref.encode_frames(FRAMES), atol=1e-5)
    with pytest.raises(EncoderNotFound, match="does not exist"):
        load_image_encoder(f"open_clip:{tmp_path / 'missing'}")
