"""Progress models on image inputs: frames rendered from demo states (cached in the run), a small CNN or a
transformers encoder, the shaped reward rendering all N worlds per step, save/load, and the bad inputs."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import robreward
import robreward.feedback.progress.model
from robreward.envs.registry import get_task
from robreward.feedback.progress import (
    ProgressConfig,
    ProgressShaping,
    fit_progress,
    load_progress_run,
    save_progress_run,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shipped demos were recorded with another MuJoCo patch version
        yield


def subset_demos(src, dst, episodes):
    """A small demo file: the listed episodes of ``src``."""
    from robreward.demos.format import DemoDataset, DemoWriter

    with DemoDataset(src) as ds:
        meta = dict(ds.attrs)
        eps = [ds.episode(i) for i in episodes]
    with DemoWriter(dst, meta, append=False) as w:
        for ep in eps:
            w.add_episode(ep["initial_state"], ep["actions"], ep["qpos"], ep["qvel"], ep["obs"], ep["rewards"],
                          ep.get("reward_terms", {}), ep["success"], model_fields=ep.get("model_fields") or None)
    return dst


@pytest.fixture(scope="module")
def tiny_demos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demos")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return subset_demos(ROOT / "demos/reach-expert.h5", folder / "reach-tiny.h5", [0, 1, 2, 3, 4])


def tiny_config(demos, **kw):
    values = dict(task="reach", demos=(str(demos),), inputs="image", image_size=24, embed_dim=8, hidden=16, batch=32,
                  epochs=4)
    return ProgressConfig(**{**values, **kw})


def test_image_fit_renders_caches_and_the_run_round_trips(tiny_demos, tmp_path, monkeypatch):
    spec = get_task("reach")
    config = tiny_config(tiny_demos)
    net, report = fit_progress(config, spec, cache_dir=tmp_path / "run")
    assert net.uses_image and not net.uses_state and report["frames"] > 0
    assert report["held_out"]["value_order_correlation"] is not None
    cached = list((tmp_path / "run").glob("frames-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as data:
        assert len(data.files) == 5 and data["ep_00000"].shape == (51, 24, 24, 3)
    # a second fit reads the cache and renders nothing
    import robreward.feedback.vision.frames as frames_mod

    monkeypatch.setattr(frames_mod, "render_states", lambda *a, **k: pytest.fail("rendered despite the cache"))
    net2, report2 = fit_progress(config, spec, cache_dir=tmp_path / "run")
    assert report2["loss_first"] == pytest.approx(report["loss_first"])  # same frames, same seed
    monkeypatch.undo()
    out = save_progress_run(tmp_path / "run", net, config, spec, report)
    meta = json.loads((out / "progress.json").read_text())
    assert meta["inputs"] == "image" and meta["input_spec"]["image"]["size"] == [24, 24]
    weights = torch.load(out / "model.pt", weights_only=True)
    assert any(k.startswith("image_encoder.") for k in weights["state_dict"])  # the CNN is part of the model
    loaded, _, _ = load_progress_run(out)
    ep_frames = np.load(cached[0])["ep_00001"]
    with torch.no_grad():
        assert torch.allclose(loaded.phi(None, ep_frames), net.phi(None, ep_frames), atol=1e-6)


def test_image_shaping_renders_all_worlds_once_per_step_and_restarts_phi(tiny_demos, tmp_path, monkeypatch):
    spec = get_task("reach")
    config = tiny_config(tiny_demos, inputs="both")
    net, report = fit_progress(config, spec, cache_dir=tmp_path / "run")
    run = save_progress_run(tmp_path / "run", net, config, spec, report)
    import robreward.feedback.vision.frames as frames_mod

    calls = []
    real = frames_mod.render_batch

    def counting(env, world_ids=None, *a, **k):
        calls.append(env.num_envs if world_ids is None else len(world_ids))
        return real(env, world_ids, *a, **k)

    monkeypatch.setattr(frames_mod, "render_batch", counting)
    env = robreward.make("reach", 3, seed=0, reward=f"sparse+progress:{run}")
    shaping = env.reward_fn.parts[1]
    assert isinstance(shaping, ProgressShaping) and shaping.uses_image
    env.reset(seed=1)
    assert calls == [3]  # the first states of all worlds, one call
    gen = torch.Generator().manual_seed(0)
    for t in range(env.spec.episode_length):
        prev = shaping.prev_phi.clone()
        calls.clear()
        _, reward, terminated, truncated, info = env.step(torch.rand(3, env.act_dim, generator=gen) * 2 - 1)
        terms = info["reward_terms"]
        torch.testing.assert_close(terms["fitness"] + terms["progress_shaping"], reward)
        if not (terminated | truncated).any():
            assert calls == [3]  # every world's post-step frame in one call, scored in one forward pass
            # the term is γΦ(s') − Φ(s), Φ(s') of the rendered post-step frames
            phi = net.phi(env.spec.observe(env.state), real(env, None, (24, 24))).detach()
            torch.testing.assert_close(terms["progress_shaping"], shaping.weight * 0.99 * phi - prev, atol=1e-4, rtol=0)
    # the episode timed out: the reset worlds' Φ is that of their first frames, rendered in a second call
    assert calls == [3, 3] and bool(truncated.all())
    phi0 = net.phi(env.spec.observe(env.state), real(env, None, (24, 24))).detach()
    torch.testing.assert_close(shaping.prev_phi, shaping.weight * phi0, atol=1e-4, rtol=0)


def test_an_image_candidate_of_the_k_candidate_trainer_renders_and_scores_its_own_worlds(tiny_demos, tmp_path,
                                                                                           monkeypatch):
    """rl.candidates.CandidateRewards binds an image progress reward to its candidate's world slice: each step
    it renders those worlds (one call) and its term is γΦ(s') − Φ(s) of their frames, beside a hand candidate."""
    from robreward.rewards.base import resolve_reward
    from robreward.rl.candidates import CandidateRewards

    spec = get_task("reach")
    net, report = fit_progress(tiny_config(tiny_demos), spec, cache_dir=tmp_path / "run")
    run = save_progress_run(tmp_path / "run", net, tiny_config(tiny_demos), spec, report)
    import robreward.feedback.vision.frames as frames_mod

    calls = []
    real = frames_mod.render_batch

    def recording(env, world_ids=None, *a, **k):
        calls.append(list(range(env.num_envs)) if world_ids is None else [int(w) for w in world_ids])
        return real(env, world_ids, *a, **k)

    monkeypatch.setattr(frames_mod, "render_batch", recording)
    shaped = resolve_reward(f"sparse+progress:{run}", spec)
    shaping = shaped.parts[1]
    candidates = CandidateRewards([resolve_reward("hand", spec), shaped], ["hand", "image"], worlds_per_candidate=2)
    env = robreward.make("reach", 4, seed=0, reward=candidates)
    env.reset(seed=1)
    mine = slice(2, 4)  # candidate 1's worlds
    assert calls[-1] == [2, 3]  # the first frames of its own worlds only
    phi0 = net.phi(None, real(env, [2, 3], (24, 24))).detach()
    torch.testing.assert_close(shaping.prev_phi, shaping.weight * phi0, atol=1e-4, rtol=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        prev = shaping.prev_phi.clone()
        calls.clear()
        _, reward, terminated, truncated, info = env.step(torch.rand(4, env.act_dim, generator=gen) * 2 - 1)
        assert calls == [[2, 3]]  # one render call, candidate 1's worlds
        phi = net.phi(None, real(env, [2, 3], (24, 24))).detach()
        term = candidates.terms[1]["progress_shaping"]
        torch.testing.assert_close(term, shaping.weight * 0.99 * phi - prev, atol=1e-4, rtol=0)
        torch.testing.assert_close(reward[mine], candidates.terms[1]["fitness"] + term)
    assert candidates.failed == [None, None]


def test_a_transformers_encoder_gives_frozen_features_not_saved_with_the_run(tiny_demos, tmp_path, monkeypatch):
    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, image_size=24, patch_size=8))
    model.save_pretrained(tmp_path / "enc")
    spec = get_task("reach")
    config = tiny_config(tiny_demos, encoder=str(tmp_path / "enc"), inputs="both", epochs=10)
    torch.manual_seed(0)
    head_before = robreward.feedback.progress.model.make_net(config, spec).phi_head.weight.clone()
    net, report = fit_progress(config, spec, cache_dir=tmp_path / "run")
    assert net.frozen_encoder and not torch.equal(net.phi_head.weight, head_before)  # the head was trained
    # the encoder was not: its weights are those of the folder
    for key, value in model.state_dict().items():
        assert torch.equal(net.image_encoder.model.state_dict()[key], value), key
    run = save_progress_run(tmp_path / "run", net, config, spec, report)
    weights = torch.load(run / "model.pt", weights_only=True)
    assert not any(k.startswith("image_encoder.") for k in weights["state_dict"])  # loaded from its folder
    loaded, _, _ = load_progress_run(run)
    frames = np.load(next((tmp_path / "run").glob("frames-*.npz")))["ep_00000"]
    obs = torch.zeros(len(frames), spec.obs_dim)
    with torch.no_grad():
        assert torch.allclose(loaded.phi(obs, frames), net.phi(obs, frames), atol=1e-5)


def test_an_ensemble_shares_one_frozen_encoder_and_saves_none_of_it(tiny_demos, tmp_path, monkeypatch):
    import transformers

    from robreward.feedback.progress.ensemble import ProgressEnsemble

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, image_size=24,
        patch_size=8)).save_pretrained(tmp_path / "enc")
    spec = get_task("reach")
    config = tiny_config(tiny_demos, encoder=str(tmp_path / "enc"), epochs=5, members=2)
    net, report = fit_progress(config, spec, cache_dir=tmp_path / "run")
    assert isinstance(net, ProgressEnsemble) and net.frozen_encoder
    assert net.members[0].image_encoder is net.members[1].image_encoder  # loaded once
    assert not torch.equal(net.members[0].phi_head.weight, net.members[1].phi_head.weight)
    run = save_progress_run(tmp_path / "run", net, config, spec, report)
    weights = torch.load(run / "model.pt", weights_only=True)
    assert not any(".image_encoder." in k for k in weights["state_dict"])  # loaded from its folder
    assert any(k.startswith("members.1.phi_head.") for k in weights["state_dict"])
    loaded, _, _ = load_progress_run(run)
    assert loaded.members[0].image_encoder is loaded.members[1].image_encoder
    frames = np.load(next((tmp_path / "run").glob("frames-*.npz")))["ep_00000"]
    with torch.no_grad():
        assert torch.allclose(loaded.phi(None, frames), net.phi(None, frames), atol=1e-5)


def test_an_image_model_without_a_renderer_says_what_to_set(tiny_demos, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "robreward.cli.main", "progress", "fit", "--task", "reach", "--demos",
                           str(tiny_demos), "--inputs", "image", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MUJOCO_GL": "disable"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no OpenGL renderer" in proc.stderr and "set MUJOCO_GL=egl" in proc.stderr, proc.stderr
    assert not (out / "progress.json").exists()
