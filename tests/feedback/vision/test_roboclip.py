"""roboclip:MODEL,demo=FILE: the episode-level reward on recorded demos (a video and a demo-file episode), equal
to the cosine of the mean frame embeddings at the last step and 0 elsewhere; bad demos refused with what to do."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import robreward
from robreward.envs.render import write_video
from robreward.feedback.vision.clip import load_vision_language_model
from robreward.feedback.vision.roboclip import RoboClipReward, read_video

os.environ.setdefault("MUJOCO_GL", "egl")
DEMOS = Path(__file__).parents[3] / "demos"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_roboclip_setup):
    return make_roboclip_setup(tmp_path_factory.mktemp("roboclip"), "clip")


def test_reward_at_the_last_step_is_the_episode_similarity(setup, monkeypatch):
    root, model_dir, spec, _ = setup
    env = robreward.make("reach", 3, reward=f"roboclip:{model_dir},demo={root / 'demo.mp4'}", seed=1)
    env.reset(seed=1)
    model, seen = env.reward_fn.model, []
    encode = model.encode_images
    monkeypatch.setattr(model, "encode_images", lambda frames: seen.append(encode(frames)) or seen[-1])
    gen = torch.Generator().manual_seed(0)
    rewards = []
    for _ in range(spec.episode_length):
        _, reward, terminated, truncated, info = env.step(torch.rand(3, env.act_dim, generator=gen) * 2 - 1)
        rewards.append(reward)
    assert bool((terminated | truncated).all()) and len(seen) == spec.episode_length  # one batch of 3 a step
    assert torch.equal(torch.stack(rewards[:-1]), torch.zeros(len(rewards) - 1, 3))  # 0 before the last step
    assert torch.equal(info["reward_terms"]["roboclip_reward"], rewards[-1])
    # by hand: cos(mean of the episode's unit frame embeddings, the demo's)
    episode = torch.nn.functional.normalize(torch.stack(seen).mean(0), dim=-1)
    assert torch.allclose(rewards[-1], episode @ env.reward_fn.demo, atol=1e-5)
    assert torch.all(env.reward_fn.counts == 0)  # the worlds reset: the next episode starts from nothing


def test_a_demo_compared_with_itself_scores_one(setup):
    root, model_dir, spec, frames = setup
    model = load_vision_language_model(model_dir)
    reward = RoboClipReward.from_demo(model, spec, str(root / "demo.mp4"), max_frames=len(frames))
    own = model.encode_images(torch.from_numpy(read_video(root / "demo.mp4")))
    assert float(reward.episode_similarity(own)) == pytest.approx(1.0, abs=1e-5)
    other = model.encode_images(torch.from_numpy(np.ascontiguousarray(frames[::-1][:5])))  # the start only
    assert float(reward.episode_similarity(other)) < 1.0 - 1e-4


def test_a_demo_file_episode_is_rendered_as_the_demo(setup):
    root, model_dir, spec, frames = setup
    model = load_vision_language_model(model_dir)
    from_file = RoboClipReward.from_demo(model, spec, f"{DEMOS / 'reach-expert.h5'}#0", max_frames=len(frames))
    direct = torch.nn.functional.normalize(model.encode_images(torch.from_numpy(frames)).mean(0), dim=-1)
    assert torch.allclose(from_file.demo, direct, atol=1e-5)


def test_bad_demos_say_what_to_do(setup, tmp_path):
    root, model_dir, spec, frames = setup
    model = load_vision_language_model(model_dir)
    wide = np.concatenate([frames, frames], axis=2)  # 64x32: not the rendered aspect
    write_video(tmp_path / "wide.mp4", wide, fps=20)
    with pytest.raises(ValueError, match=r"is 64x32 .* but the agent's frames are rendered at 32x32 .*: crop the video"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "wide.mp4"))
    import imageio.v2 as imageio

    imageio.mimwrite(tmp_path / "one.gif", list(frames[:1]))
    with pytest.raises(ValueError, match=r"has 1 frame\(s\): RoboCLIP compares whole episodes"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "one.gif"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="could not be read"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "broken.mp4"))
    with pytest.raises(FileNotFoundError, match="not found"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="episode 999 does not exist"):
        RoboClipReward.from_demo(model, spec, f"{DEMOS / 'reach-expert.h5'}#999")
    with pytest.raises(ValueError, match="use a video"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "demo.txt"))
