"""clip:MODEL (VLM-RM): the goal-baseline projection against hand-computed numbers, tiny CLIP and SigLIP models
saved with save_pretrained and loaded through the real path, the reward of an env's rendered worlds, every=K,
and each bad input's message."""

import json
import os

import pytest
import torch

import robreward
from robreward.feedback.vision.clip import (
    ClipReward,
    VisionModelError,
    goal_baseline_projection,
    load_vision_language_model,
    parse_clip_arg,
    projection_reward,
)
from robreward.feedback.vision.frames import render_batch
from robreward.feedback.vision.random_models import save_random_model
from robreward.rewards.spec import normalize_reward_spec, parse_reward_spec

os.environ.setdefault("MUJOCO_GL", "egl")
GOAL, BASE = "a robot arm touching the red ball", "a robot arm"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("vlm")
    return {kind: str(save_random_model(root / kind, kind=kind, size="tiny")) for kind in ("clip", "siglip")}


# -- the projection, by hand ----------------------------------------------------------------------
def test_projection_matches_hand_computed_numbers():
    goal, base = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    g, P = goal_baseline_projection(goal, base, alpha=0.5)
    # d = (1, -1, 0): dd^T/|d|^2 = [[.5, -.5, 0], [-.5, .5, 0], [0, 0, 0]]; P = .5 * that + .5 * I
    assert torch.allclose(P, torch.tensor([[0.75, -0.25, 0.0], [-0.25, 0.75, 0.0], [0.0, 0.0, 0.5]]))
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    # x = goal: 1; x = baseline: (x-g)P = (-1, 1, 0), |.|^2 = 2 -> 0; x = e3: (x-g)P = (-.75, .25, .5) -> 1 - .875/2
    # (x is normalized first: 5 e3 scores as e3)
    assert torch.allclose(projection_reward(x, g, P), torch.tensor([1.0, 0.0, 0.5625, 0.5625]))


def test_alpha_zero_is_the_cosine_reward_and_prompts_are_averaged():
    goals = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # g = (.5, 0, .5)
    g, P = goal_baseline_projection(goals, torch.tensor([[0.0, 1.0, 0.0]]), alpha=0.0)
    assert torch.allclose(g, torch.tensor([0.5, 0.0, 0.5])) and torch.allclose(P, torch.eye(3))
    # R = 1 - |x - g|^2 / 2 with x = e1: |(.5, 0, -.5)|^2 = .5 -> .75
    assert torch.allclose(projection_reward(torch.tensor([[1.0, 0.0, 0.0]]), g, P), torch.tensor([0.75]))


def test_alpha_one_ignores_what_the_baseline_shares():
    g, P = goal_baseline_projection(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]), alpha=1.0)
    # e3 and -e3 differ only off the goal-baseline direction: the same reward, 1 - |(-1, 0, ±1)P|^2/2 = .75
    r = projection_reward(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), g, P)
    assert torch.allclose(r, torch.tensor([0.75, 0.75]))


def test_projection_refuses_bad_alpha_and_identical_prompts():
    e = torch.tensor([[1.0, 0.0]])
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        goal_baseline_projection(e, e, alpha=1.5)
    with pytest.raises(ValueError, match="embed to the same point"):
        goal_baseline_projection(e, e, alpha=0.5)


# -- loading through from_pretrained ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_tiny_models_load_and_embed(models, kind):
    model = load_vision_language_model(models[kind])
    assert model.kind == {"clip": "CLIPModel", "siglip": "SiglipModel"}[kind] and model.image_size == (32, 32)
    texts = model.encode_texts([GOAL, BASE])
    assert texts.shape[0] == 2 and torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(texts[0], texts[1])  # different prompts, different embeddings
    frames = torch.randint(0, 256, (3, 40, 48, 3), dtype=torch.uint8)  # resized and cropped by the model's transform
    images = model.encode_images(torch.cat([frames, frames[:1]]))
    assert images.shape == (4, texts.shape[1]) and torch.allclose(images[0], images[3], atol=1e-6)
    assert load_vision_language_model(models[kind]) is model  # loaded once per process


def test_reward_scores_the_rendered_post_step_frames(models):
    spec_text = f"hand+clip:{models['clip']},goal={GOAL},baseline={BASE},alpha=0.5"
    env = robreward.make("reach", 4, reward=spec_text, seed=0)
    env.reset()
    clip = env.reward_fn.parts[1]
    _, reward, _, _, info = env.step(torch.full((4, env.act_dim), 0.5))
    expected = projection_reward(clip.model.encode_images(render_batch(env, size=(32, 32))), clip.g, clip.projection)
    assert torch.allclose(info["reward_terms"]["clip_reward"], expected, atol=1e-5)
    assert torch.allclose(reward, info["reward_terms"]["clip_reward"] + info["hand_reward"], atol=1e-5)
    assert clip.frames_scored == 4


def test_every_k_holds_scores_and_rescored_reset_worlds(models):
    env = robreward.make("reach", 3, reward=f"clip:{models['siglip']},goal={GOAL},baseline={BASE},every=3", seed=0)
    env.reset()
    clip = env.reward_fn
    actions = torch.ones(3, env.act_dim)
    first = env.step(actions)[1]
    second = env.step(-actions)[1]
    assert torch.equal(first, second) and clip.frames_scored == 3  # held between scores
    env.set_state(env.get_state()[:1], [1])  # world 1 is written: it starts an episode and is scored again
    third = env.step(actions)[1]
    assert clip.frames_scored == 4 and torch.equal(third[[0, 2]], first[[0, 2]])
    env.step(actions)
    assert clip.frames_scored == 7  # step 3: every world


def test_env_binds_the_reward_and_an_unbound_reward_says_how_to_use_it(models):
    model = load_vision_language_model(models["clip"])
    reward = ClipReward(model, robreward.make("reach", 1).spec, goals=[GOAL], baselines=[BASE])
    with pytest.raises(RuntimeError, match="use it in a robreward BatchedEnv"):
        reward(None, torch.zeros(2, 3))
    env = robreward.make("reach", 2, reward=reward)
    assert reward.env is env


# -- bad input -------------------------------------------------------------------------------------
def test_missing_model_folder_says_how_to_get_weights(tmp_path):
    with pytest.raises(VisionModelError, match=r"does not exist; to get weights.*hf download"):
        load_vision_language_model(str(tmp_path / "no" / "such" / "model"))


def test_model_folder_without_weights(models, tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "config.json").write_text((__import__("pathlib").Path(models["clip"]) / "config.json").read_text())
    with pytest.raises(VisionModelError, match="has a config.json but no weights.*download is incomplete"):
        load_vision_language_model(str(folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VisionModelError, match="has no config.json"):
        load_vision_language_model(str(empty))


def test_a_text_only_model_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(tmp_path / "bert")
    with pytest.raises(VisionModelError, match="'bert' model, not a vision-language"):
        load_vision_language_model(str(tmp_path / "bert"))


def test_hub_id_offline_and_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(VisionModelError, match=r"could not be found in the Hugging Face cache \(HF_HUB_OFFLINE=1"):
        load_vision_language_model("someone/no-such-clip-model")


def test_spec_options_and_their_errors(models):
    model, options = parse_clip_arg(f"{models['clip']},goal=a red ball|a ball,baseline=a robot,alpha=0.25,every=4")
    assert model == models["clip"] and options == {"goal": ["a red ball", "a ball"], "baseline": ["a robot"],
                                                   "alpha": 0.25, "every": 4}
    assert parse_reward_spec(f"hand+clip:{models['clip']},goal=x,baseline=y").kind == "sum"
    with pytest.raises(ValueError, match="no goal prompt: add --goal"):
        normalize_reward_spec(f"clip:{models['clip']}")
    with pytest.raises(ValueError, match="goal= has an empty prompt"):
        normalize_reward_spec(f"clip:{models['clip']},goal=")
    with pytest.raises(ValueError, match="no baseline prompt: add --baseline"):
        normalize_reward_spec(f"clip:{models['clip']},goal=a ball")
    with pytest.raises(ValueError, match="unknown option 'gaol=x'"):
        normalize_reward_spec(f"clip:{models['clip']},gaol=x")
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        normalize_reward_spec(f"clip:{models['clip']},goal=a,baseline=b,alpha=2")
    assert normalize_reward_spec(f"clip:{models['clip']},goal=a ball,alpha=0").endswith(",goal=a ball,alpha=0")


def test_empty_goal_prompt_is_refused(models):
    model = load_vision_language_model(models["clip"])
    with pytest.raises(ValueError, match="needs a goal prompt"):
        ClipReward(model, None, goals=["  "], baselines=[BASE])


@pytest.mark.slow  # a fresh interpreter with MUJOCO_GL=disable (about 10 s)
def test_no_renderer_is_a_clear_error(models, tmp_path):
    import subprocess
    import sys

    code = (f"import robreward, torch\nenv = robreward.make('reach', 2, reward={json.dumps('clip:' + models['clip'])}"
            f" + ',goal=a,baseline=b')\nenv.reset()\nenv.step(torch.zeros(2, env.act_dim))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MUJOCO_GL": "disable"})
    assert result.returncode != 0
    assert "RendererUnavailable: no OpenGL renderer here (MUJOCO_GL='disable')" in result.stderr
    assert "set MUJOCO_GL=egl" in result.stderr
