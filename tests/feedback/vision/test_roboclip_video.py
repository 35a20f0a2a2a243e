"""roboclip:XCLIP_MODEL: a video-text model (a tiny X-CLIP made from an XCLIPConfig, saved and loaded through
from_pretrained) as RoboCLIP's video encoder: the demo and each episode sampled to the model's num_frames and
embedded as one clip; the reward at the last step equals that by hand (the kept frames given in closed form),
all ending worlds embedded in one batch; demos of another length or size, and the bad inputs."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import robreward
from robreward.envs.render import write_video
from robreward.feedback.vision import frames as frames_module
from robreward.feedback.vision.clip import ClipReward, VisionModelError, load_vision_language_model
from robreward.feedback.vision.random_models import NUM_FRAMES
from robreward.feedback.vision.roboclip import RoboClipReward, read_video, sample_frames

os.environ.setdefault("MUJOCO_GL", "egl")
DEMOS = Path(__file__).parents[3] / "demos"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_roboclip_setup):
    return make_roboclip_setup(tmp_path_factory.mktemp("roboclip_video"), "xclip")


def test_sample_frames_takes_first_and_last_and_repeats_short_videos():
    assert sample_frames(4, 10).tolist() == [0, 3, 6, 9]
    assert sample_frames(8, 3).tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
    assert sample_frames(2, 1).tolist() == [0, 0]


def test_a_video_model_loads_as_one(setup):
    _, model_dir, _, _ = setup
    model = load_vision_language_model(model_dir)
    assert model.kind == "XCLIPModel" and model.is_video and model.num_frames == NUM_FRAMES
    clips = torch.randint(0, 256, (2, NUM_FRAMES, 32, 32, 3), dtype=torch.uint8)
    emb = model.encode_videos(clips)
    assert emb.shape == (2, model.dim) and torch.allclose(emb.norm(dim=-1), torch.ones(2))
    assert torch.allclose(model.encode_videos(clips[1:]), emb[1:], atol=1e-5)  # batching changes nothing
    with pytest.raises(ValueError, match=f"reads clips of {NUM_FRAMES} frames, got 3"):
        model.encode_videos(clips[:, :3])
    with pytest.raises(VisionModelError, match="video-text model.*roboclip:MODEL"):
        model.encode_images(clips[0])


def test_episode_reward_is_the_clip_of_its_kept_frames(setup, monkeypatch):
    root, model_dir, spec, _ = setup
    n, length = 3, spec.episode_length
    env = robreward.make("reach", n, reward=f"roboclip:{model_dir},demo={root / 'demo.mp4'}", seed=1)
    env.reset(seed=1)
    reward_fn, model = env.reward_fn, env.reward_fn.model
    assert reward_fn.video
    real_render, calls = frames_module.render_batch, []

    def recording(env_, world_ids=None, **kw):
        out = real_render(env_, world_ids=world_ids, **kw)
        calls.append((None if world_ids is None else list(world_ids), out.clone()))
        return out

    monkeypatch.setattr(frames_module, "render_batch", recording)
    encode, batches = model.encode_videos, []
    monkeypatch.setattr(model, "encode_videos", lambda clips: batches.append(len(clips)) or encode(clips))
    gen = torch.Generator().manual_seed(0)
    seen, rewards = [], []
    for step in range(length):
        _, reward, terminated, truncated, _ = env.step(torch.rand(n, env.act_dim, generator=gen) * 2 - 1)
        rewards.append(reward)
        if step < length - 1:  # the post-step state the reward saw (no world reset yet)
            seen.append(real_render(env, size=reward_fn.size))
    assert bool(truncated.all()) and not bool(terminated.any())
    seen.append(calls[-1][1])  # the last step: every world ends, so the reward rendered them all
    assert calls[-1][0] == [0, 1, 2]
    assert torch.equal(torch.stack(rewards[:-1]), torch.zeros(length - 1, n))
    assert batches == [n]  # the three ending worlds' clips in one batch
    # by hand: the kept frames are the multiples of the smallest power of two s with ceil((L-1)/s) <= 2F-1, plus
    # the last one; the clip is F of them, evenly spaced
    s = 1
    while -(-(length - 1) // s) > 2 * NUM_FRAMES - 1:
        s *= 2
    kept = [*range(0, length - 1, s), length - 1]
    assert len(calls) < length  # frames only on the stride's steps (and the last)
    episode = torch.stack(seen)  # [L, n, H, W, 3]
    clips = episode[kept][torch.from_numpy(sample_frames(NUM_FRAMES, len(kept)))].permute(1, 0, 2, 3, 4)
    want = encode(clips.contiguous()) @ reward_fn.demo
    assert torch.allclose(rewards[-1], want, atol=1e-5)
    assert bool((want.abs() > 0).all())
    assert torch.all(reward_fn.counts == 0) and torch.all(reward_fn.stride == 1)  # reset: the next episode anew


def test_demo_of_another_length_or_size_is_resampled(setup, tmp_path):
    root, model_dir, spec, frames = setup
    model = load_vision_language_model(model_dir)
    own = RoboClipReward.from_demo(model, spec, str(root / "demo.mp4"))
    video = read_video(root / "demo.mp4")
    clip = video[sample_frames(NUM_FRAMES, len(video))]
    assert float(model.encode_videos(torch.from_numpy(clip)[None])[0] @ own.demo) == pytest.approx(1.0, abs=1e-5)
    start_only = np.ascontiguousarray(np.repeat(clip[:1], NUM_FRAMES, axis=0))
    assert float(model.encode_videos(torch.from_numpy(start_only)[None])[0] @ own.demo) < 1.0 - 1e-4
    write_video(tmp_path / "short.mp4", frames[:3], fps=20)  # 3 frames for an 8-frame model: frames repeat
    short = RoboClipReward.from_demo(model, spec, str(tmp_path / "short.mp4"))
    by_hand = read_video(tmp_path / "short.mp4")[[0, 0, 1, 1, 1, 1, 2, 2]]
    assert torch.allclose(short.demo, model.encode_videos(torch.from_numpy(by_hand)[None])[0], atol=1e-5)
    big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # 64x64: the model's transform resizes it
    write_video(tmp_path / "big.mp4", big, fps=20)
    assert RoboClipReward.from_demo(model, spec, str(tmp_path / "big.mp4")).demo.shape == own.demo.shape


def test_video_model_bad_inputs_say_what_to_do(setup, tmp_path, capsys):
    from robreward.cli.main import main

    root, model_dir, spec, frames = setup
    model = load_vision_language_model(model_dir)
    with pytest.raises(ValueError, match="frames=4 does not apply to the video model.*drop frames="):
        RoboClipReward.from_demo(model, spec, str(root / "demo.mp4"), max_frames=4)
    write_video(tmp_path / "wide.mp4", np.concatenate([frames, frames], axis=2), fps=20)
    with pytest.raises(ValueError, match="is 64x32 .* crop the video"):
        RoboClipReward.from_demo(model, spec, str(tmp_path / "wide.mp4"))
    with pytest.raises(ValueError, match="video-text model: a clip: reward scores single frames"):
        ClipReward(model, spec, goals=["a robot arm"], baselines=["a robot"])
    image = tmp_path / "f.png"
    from PIL import Image

    Image.fromarray(frames[0]).save(image)
    capsys.readouterr()
    assert main(["vision", "score", "--model", model_dir, "--goal", "a robot arm", "--baseline", "a robot",
                 str(image)]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is a video-text model" in err and "roboclip:MODEL" in err


def test_random_model_verb_makes_video_and_open_clip_models(tmp_path, capsys):
    from robreward.cli.main import main

    assert main(["vision", "random-model", "--out", str(tmp_path / "xc"), "--kind", "xclip"]) == 0
    assert load_vision_language_model(str(tmp_path / "xc")).is_video
    assert main(["vision", "random-model", "--out", str(tmp_path / "oc"), "--kind", "open_clip"]) == 0
    assert f"clip:open_clip:{tmp_path / 'oc'}" in capsys.readouterr().out
    assert load_vision_language_model(f"open_clip:{tmp_path / 'oc'}").source == "open_clip"
