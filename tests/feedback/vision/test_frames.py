"""The frame pipeline: all worlds rendered in one call (tiled EGL), demo states to frames, preprocessing."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import robreward
from robreward.feedback.vision.frames import demo_states, preprocess, render_batch, render_states

DEMOS = Path(__file__).resolve().parents[3] / "demos"


@pytest.fixture(scope="module")
def env():
    env = robreward.make("push", num_envs=5, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        env.step(torch.rand(5, env.act_dim, generator=gen) * 2 - 1)
    yield env
    env.close()


def test_render_batch_equals_one_world_at_a_time(env):
    frames = render_batch(env, size=(48, 40))
    assert frames.shape == (5, 40, 48, 3) and frames.dtype == torch.uint8
    ref = env.render(list(range(5)), 48, 40)  # WorldRenderer: one readPixels per world
    diff = np.abs(frames.numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01  # the same image (GL rounding aside)
    assert frames.float().std() > 10  # not blank
    # each tile is its own world (not a copy of one), in the order asked
    sub = render_batch(env, world_ids=[3, 1], size=(48, 40))
    assert torch.equal(sub[0], frames[3]) and torch.equal(sub[1], frames[1])
    assert not torch.equal(frames[0], frames[1])


def test_render_batch_more_worlds_than_one_pass(env):
    from robreward.envs.render import TiledRenderer, mjv_camera
    from robreward.feedback.vision.frames import _ViewIter

    small = TiledRenderer(env.model, 32, 32, capacity=2)  # forces three passes for 5 worlds

    ids = np.arange(5)
    views = _ViewIter(env, ids, env.get_state().cpu().numpy(), mjv_camera(env.model, env.spec.camera))
    out = small.render(views, 5)
    small.close()
    diff = np.abs(out.astype(int) - render_batch(env, size=(32, 32)).numpy().astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01  # the same frames (GL rounding aside), in order


def test_render_batch_bad_input(env):
    with pytest.raises(ValueError, match=r"world ids must be in \[0, 5\)"):
        render_batch(env, world_ids=[7])
    with pytest.raises(ValueError, match="camera 'nope' is not in the scene"):
        render_batch(env, camera="nope")
    with pytest.raises(ValueError, match="size must be"):
        render_batch(env, size=(0, 10))


def test_no_renderer_is_a_clear_error():
    code = ("import robreward\nfrom robreward.feedback.vision.frames import render_batch\n"
            "env = robreward.make('push', 2)\ntry:\n    render_batch(env)\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MUJOCO_GL": "disable"})
    assert "RendererUnavailable" in out.stdout and "set MUJOCO_GL=egl" in out.stdout, out.stdout + out.stderr


def test_render_states_of_a_demo_episode():
    from robreward.demos.format import DemoDataset

    with DemoDataset(DEMOS / "push-expert.h5") as ds:
        ep = ds.episode(0)
    spec = robreward.get_task("push")
    states = demo_states(ep, spec)
    model = spec.build_model()
    assert states.shape[0] == len(ep["qpos"]) and np.array_equal(states[:, 1:1 + model.nq], ep["qpos"])
    frames = render_states(spec, states[:9], size=32, chunk=4)  # three chunks of an env of 4 worlds
    assert frames.shape == (9, 32, 32, 3)
    assert not torch.equal(frames[0], frames[8])  # the arm moved
    # the same frames as rendering them all in one pass
    diff = (frames.int() - render_states(spec, states[:9], size=32, chunk=16).int()).abs()
    assert diff.max() <= 2 and (diff > 0).float().mean() < 0.01
    with pytest.raises(ValueError, match="nstate"):
        render_states(spec, states[:2, :5], size=32)


def test_preprocess_shapes_normalization_and_augmentation():
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    x = preprocess(frames, size=(24, 20))
    assert x.shape == (3, 3, 20, 24) and x.dtype == torch.float32
    grey = preprocess(np.full((1, 8, 8, 3), 128, np.uint8), size=8)
    assert torch.allclose(grey[0, :, 0, 0], (128 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225]), atol=1e-5)
    a = preprocess(frames, 24, augment=True, generator=torch.Generator().manual_seed(1))
    b = preprocess(frames, 24, augment=True, generator=torch.Generator().manual_seed(1))
    c = preprocess(frames, 24, augment=False)
    assert torch.equal(a, b) and not torch.equal(a, c)  # reproducible with a seeded generator, and it changes pixels
    with pytest.raises(ValueError, match="uint8"):
        preprocess(frames.astype(np.float32), 24)
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        preprocess(np.zeros((2, 8, 8), np.uint8), 8)


@pytest.mark.slow  # MuJoCo Warp on its CPU device: kernel compilation on a cold cache
def test_render_batch_on_the_warp_backend():
    pytest.importorskip("mujoco_warp", reason="backend='warp' needs the [warp] extra")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = robreward.make("push", num_envs=3, backend="warp", device="cpu", seed=0)
        env.reset()
        frames = render_batch(env, size=(32, 24))  # the task's model camera: MuJoCo Warp's batch renderer
        assert frames.shape == (3, 24, 32, 3) and frames.dtype == torch.uint8
        assert torch.equal(frames, env.render([0, 1, 2], 32, 24, renderer="warp"))
        top = render_batch(env, world_ids=[2], size=32, camera="top")  # not a model camera: tiled EGL
        assert top.shape == (1, 32, 32, 3) and top.float().std() > 5
