"""env.render(renderer="warp"): MuJoCo Warp's batch renderer (run here on Warp's CPU device)
against the EGL renderer of the same worlds.

Kernels compile once into ~/.cache/warp; later runs take a few seconds.
"""

import warnings

import mujoco
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp", reason="backend='warp' needs the [warp] extra")

import robreward  # noqa: E402

SIZE = 64
SHIFT = 0.08  # metres the cube is moved along x (across the "front" view), opposite ways in the two worlds


def _red(frame: np.ndarray) -> np.ndarray:
    """Mask of the cube's pixels (rgba 0.85 0.2 0.2; nothing else in the push scene is red)."""
    f = frame.astype(np.int32)
    return (f[..., 0] > 120) & (f[..., 1] < 80) & (f[..., 2] < 80)


@pytest.fixture(scope="module")
def env():
    """push (camera "front"), two worlds: same state except the cube, 16 cm apart along x."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = robreward.make("push", num_envs=2, backend="warp", device="cpu", seed=0)
    env.reset(seed=0)
    m = env.model
    cube = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "cube")
    adr = 1 + int(m.jnt_qposadr[m.body_jntadr[cube]])  # +1: time leads mjSTATE_INTEGRATION
    state = env.get_state().numpy()
    states = np.stack([state[0], state[0]])
    states[0, adr] -= SHIFT
    states[1, adr] += SHIFT
    env.set_state(states)
    yield env
    env.close()


@pytest.fixture(scope="module")
def frames(env):
    warp = env.render([0, 1], SIZE, SIZE, renderer="warp")
    egl = env.render([0, 1], SIZE, SIZE, renderer="egl")
    return warp, egl


def test_warp_render_batch(env, frames):
    warp, _ = frames
    assert isinstance(warp, torch.Tensor) and warp.device == env.device
    assert warp.dtype == torch.uint8 and tuple(warp.shape) == (2, SIZE, SIZE, 3)
    img = warp.numpy()
    for frame in img:  # a real image: many colours, top rows background, a visible cube
        assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 20
        assert frame.std() > 10
        assert _red(frame).sum() >= 4
    # the worlds differ only by the cube: the images differ, and only around it
    diff = np.abs(img[0].astype(np.int32) - img[1].astype(np.int32)).sum(-1) > 0
    assert 4 <= diff.sum() < 0.1 * SIZE * SIZE
    # world ids select worlds: reversed order gives the same frames reversed; rendering again
    # without stepping gives the same pixels
    again = env.render([1, 0], SIZE, SIZE, renderer="warp")
    assert torch.equal(again, warp.flip(0))
    assert torch.equal(env.render([1], SIZE, SIZE, renderer="warp")[0], warp[1])


def test_warp_matches_egl(frames):
    warp, egl = frames
    assert isinstance(egl, np.ndarray) and egl.shape == tuple(warp.shape) and egl.dtype == np.uint8
    warp = warp.numpy()
    # measured: 6.6 (lighting/shading of a ray tracer vs OpenGL, and the goal site, which MJWarp
    # does not draw); a vertically flipped frame gives 45, a black one 100
    mad = np.abs(warp.astype(np.int32) - egl.astype(np.int32)).mean(axis=(1, 2, 3))
    assert (mad < 15).all(), mad
    centroids = []
    for w, e in zip(warp, egl):
        mw, me = _red(w), _red(e)
        assert mw.sum() >= 4 and me.sum() >= 4
        iou = (mw & me).sum() / (mw | me).sum()
        assert iou > 0.5, iou  # measured 1.0
        cw, ce = np.argwhere(mw).mean(0), np.argwhere(me).mean(0)
        assert np.abs(cw - ce).max() < 2.0, (cw, ce)
        centroids.append(cw)
    # the cubes are 16 cm apart along x: ~15 px apart across the image in both renderers
    assert abs(centroids[1][1] - centroids[0][1]) > 8


def test_warp_renderer_errors(env):
    with pytest.raises(ValueError, match="model cameras only"):
        env.render([0], SIZE, SIZE, camera=mujoco.MjvCamera(), renderer="warp")
    with pytest.raises(ValueError, match="not a camera"):
        env.render([0], SIZE, SIZE, camera="nope", renderer="warp")
    with pytest.raises(ValueError, match="out of range"):
        env.render([2], SIZE, SIZE, renderer="warp")
    with pytest.raises(ValueError, match="unknown renderer"):
        env.render([0], SIZE, SIZE, renderer="vulkan")
    # "auto" on Warp's CPU device is the EGL path (numpy frames)
    assert isinstance(env.render([0], 16, 16), np.ndarray)


def test_warp_renderer_needs_warp_backend():
    cpu = robreward.make("push", num_envs=1, backend="cpu")
    try:
        with pytest.raises(ValueError, match="needs backend='warp'"):
            cpu.render([0], SIZE, SIZE, renderer="warp")
    finally:
        cpu.close()
