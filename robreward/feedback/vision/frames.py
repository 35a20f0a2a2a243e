"""The frame pipeline: batched rendering of all N worlds of a BatchedEnv, of recorded demo states, and
the preprocessing image models read.

    frames = render_batch(env, size=(96, 96))               # uint8 [N, 96, 96, 3], every world, one call
    frames = render_states(spec, states, size=(96, 96))     # uint8 [T, ...] of full integration states
    frames = render_states(spec, demo_states(ep, spec), (96, 96))   # a demo episode's frames
    x = preprocess(frames, size=64, augment=True)           # float [N, 3, 64, 64], normalized

*Rendering.* On the CPU backend (MuJoCo's OpenGL renderer, EGL headless) every world is drawn into its
own viewport of ONE large offscreen framebuffer (mjv_updateScene + mjr_render per viewport) and the
whole buffer is read back with a single mjr_readPixels, then cut into frames
(robreward.envs.render.TiledRenderer); one readPixels per world would stall the GL pipeline N times.
On backend="warp" with a model camera, MuJoCo Warp's batch renderer draws all worlds on the simulation
device (``env.render(renderer="warp")``) and the frames stay there. Without an OpenGL renderer
(MUJOCO_GL unset or disabled, no EGL library) RendererUnavailable says what to set.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np
import torch

from robreward.envs.render import RendererUnavailable, TiledRenderer, mjv_camera

__all__ = ["IMAGE_MEAN", "IMAGE_STD", "RendererUnavailable", "demo_states", "preprocess", "render_batch",
           "render_states"]

# per-channel normalization of [0, 1] pixels (ImageNet's statistics, as CLIP/SigLIP-style encoders expect)
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

_RENDERERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # env -> {(W, H): TiledRenderer}


def _size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in pixels or one int, got {size!r}") from None
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive pixels, got {width}x{height}")
    return width, height


def _world_ids(env, world_ids) -> np.ndarray:
    if world_ids is None:
        return np.arange(env.num_envs)
    ids = np.asarray(world_ids.cpu() if isinstance(world_ids, torch.Tensor) else world_ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 0 or ids.max() >= env.num_envs):
        raise ValueError(f"world ids must be in [0, {env.num_envs}), got {ids.tolist()[:8]}")
    return ids


def top_view(model=None):
    """``camera="top"``: a free camera looking straight down on the tabletop workspace of the arm tasks (push,
    lift, drawer-open, reach: the table around the origin, 0.45 m above it), where the objects and the goal
    are larger than in the oblique ``front`` camera."""
    import mujoco

    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = (0.0, 0.02, 0.0)
    cam.distance, cam.elevation, cam.azimuth = 0.45, -90.0, 90.0
    return cam


NAMED_VIEWS = {"top": top_view}
"""Views by name besides the scene's cameras (EGL only: MuJoCo Warp's batch renderer draws model cameras)."""


def _is_model_camera(cam) -> bool:
    return isinstance(cam, (str, int, np.integer)) and not isinstance(cam, bool)


def _cache(env) -> dict:
    """Per-env rendering state, dropped with the env: tiled renderers by size, a scratch MjData, and
    whether the worlds have their own model fields (then each world's model is drawn)."""
    cache = _RENDERERS.get(env)
    if cache is None:
        import mujoco

        sample = env.spec.sample_reset(np.random.default_rng(0), 1, env.ctx)
        cache = {"scratch": mujoco.MjData(env.model),
                 "randomized": bool(getattr(env.sim, "_randomized", None) or sample.model_fields)}
        _RENDERERS[env] = cache
    return cache


def _tiled(env, width: int, height: int) -> TiledRenderer:
    cache = _cache(env)
    renderer = cache.get((width, height))
    if renderer is None:
        renderer = TiledRenderer(env.model, width, height, capacity=env.num_envs)
        cache[(width, height)] = renderer
    return renderer


def render_batch(env, world_ids=None, size=(96, 96), camera=None) -> torch.Tensor:
    """uint8 frames [n, H, W, 3] of worlds ``world_ids`` (default all N) of ``env``'s current state, in one
    call (module docstring). ``camera``: a model camera name/id, an mujoco.MjvCamera, or None for the
    task's camera (``spec.camera``; if that is None too, a free camera tracking the root body). The
    tensor is on the env's device."""
    width, height = _size(size)
    ids = _world_ids(env, world_ids)
    if env.state is None:
        env.reset()
    cam = camera if camera is not None else env.spec.camera
    if isinstance(cam, str) and cam in NAMED_VIEWS:
        cam = NAMED_VIEWS[cam](env.model)
    if env.backend == "warp" and _is_model_camera(cam):
        return env.render(ids.tolist(), width, height, cam, renderer="warp")
    if len(ids) == 0:
        return torch.zeros((0, height, width, 3), dtype=torch.uint8, device=env.device)
    renderer = _tiled(env, width, height)
    mjcam = mjv_camera(env.model, cam)
    states = env.get_state().cpu().numpy()
    views = _ViewIter(env, ids, states, mjcam)
    frames = renderer.render(views, len(ids))
    return torch.from_numpy(frames).to(env.device)


class _ViewIter:
    """(model, data, camera) of each world, the data a scratch MjData set to the world's state and forwarded
    just before its turn (the scene copies what it needs, so one MjData serves every world)."""

    def __init__(self, env, ids, states, cam):
        cache = _cache(env)
        self.env, self.ids, self.states, self.cam = env, ids, states, cam
        self.data, self.randomized = cache["scratch"], cache["randomized"]

    def __iter__(self):
        import mujoco

        integration = mujoco.mjtState.mjSTATE_INTEGRATION
        for w in self.ids:
            model = self.env.sim.model_of(int(w)) if self.randomized else self.env.model
            mujoco.mj_setState(model, self.data, self.states[w], integration)
            mujoco.mj_forward(model, self.data)
            yield model, self.data, self.cam


def demo_states(episode: dict, spec_or_model) -> np.ndarray:
    """Full integration states [T+1, nstate] of a demo episode (``DemoDataset.episode(i)`` with
    ``initial_state``, ``qpos``, ``qvel``): the stored qpos/qvel of each row, the rest (time, actuator
    and mocap state) from the initial state, as ``robreward demos replay`` steps through them."""
    from robreward.demos.record import state_slices

    model = spec_or_model.build_model() if hasattr(spec_or_model, "build_model") else spec_or_model
    qs, vs = state_slices(model)
    qpos, qvel = np.asarray(episode["qpos"], np.float64), np.asarray(episode["qvel"], np.float64)
    states = np.repeat(np.asarray(episode["initial_state"], np.float64)[None], len(qpos), axis=0)
    states[:, qs], states[:, vs] = qpos, qvel
    return states


def write_states(env, states: np.ndarray, model_fields: dict | None = None):
    """Write full integration states [T, nstate] into ``env``'s worlds a chunk of ``env.num_envs`` at a time (with
    the episode's randomized model fields, if any); yields each chunk's world ids [0, len(chunk)) once written."""
    from robreward.demos.record import state_slices

    for start in range(0, len(states), env.num_envs):
        part = states[start:start + env.num_envs]
        ids = np.arange(len(part))
        if model_fields:
            qs, vs = state_slices(env.model)
            fields = {k: np.repeat(np.asarray(v)[None], len(ids), 0) for k, v in model_fields.items()}
            env.sim.reset(ids, part[:, qs], part[:, vs], None, fields)
        env.set_state(part, ids)
        yield ids


def render_states(spec, states, size=(96, 96), camera=None, model_fields: dict | None = None,
                  chunk: int = 256, env=None) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] (CPU) of recorded full integration states ``states`` [T, nstate] of task
    ``spec``: written into a BatchedEnv of min(T, ``chunk``) worlds (set_state) and rendered with one
    render_batch call per chunk. ``model_fields``: the episode's randomized model fields (a demo's
    ``model_fields``), if the task has any. ``env``: reuse this env (its worlds are overwritten)."""
    from robreward.envs.batched import BatchedEnv
    from robreward.envs.registry import get_task

    spec = get_task(spec)
    states = np.asarray(states.cpu() if isinstance(states, torch.Tensor) else states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(f"states must be [T, nstate] full integration states, got shape {list(states.shape)}")
    width, height = _size(size)
    if len(states) == 0:
        return torch.zeros((0, height, width, 3), dtype=torch.uint8)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    own = env is None
    if own:
        env = BatchedEnv(spec, num_envs=min(len(states), chunk), seed=0)
        env.reset()
    if states.shape[1] != env.nstate:
        raise ValueError(f"states have {states.shape[1]} values a row, task {spec.name} has nstate={env.nstate}: "
                         "pass full integration states of this task (mjSTATE_INTEGRATION)")
    out = []
    try:
        for ids in write_states(env, states, model_fields):
            out.append(render_batch(env, ids, (width, height), camera).cpu())
    finally:
        if own:
            env.close()
    return torch.cat(out)


def preprocess(frames, size=64, augment: bool = False, generator: torch.Generator | None = None,
               shift: int = 4, brightness: float = 0.2, mean=IMAGE_MEAN, std=IMAGE_STD) -> torch.Tensor:
    """float32 [N, 3, h, w]: uint8 frames [N, H, W, 3] (numpy or tensor) resized with OpenCV (INTER_AREA) to
    ``size`` ((w, h) or one int), scaled to [0, 1] and normalized per channel (``mean``, ``std``: by default
    ImageNet's; an encoder from transformers passes its own, see encoders.ImageEncoder).

    ``augment``: a random shift of up to ``shift`` pixels (pad by replication, random crop back) and a
    random brightness factor in [1 - brightness, 1 + brightness] per frame, drawn from ``generator``
    (reproducible with a seeded one)."""
    import cv2

    width, height = _size(size)
    on_device = isinstance(frames, torch.Tensor) and frames.device.type != "cpu"
    device = frames.device if isinstance(frames, torch.Tensor) else torch.device("cpu")
    arr = frames if on_device else frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got shape {list(arr.shape)}")
    if arr.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"frames must be uint8 RGB, got dtype {arr.dtype}")
    if on_device:  # frames of the GPU batch renderer stay there: resized by area averaging on the device
        x = arr.permute(0, 3, 1, 2).float().div_(255.0)
        if tuple(arr.shape[1:3]) != (height, width) and len(x):
            x = torch.nn.functional.interpolate(x, size=(height, width), mode="area")
    else:
        if arr.shape[1:3] == (height, width):
            resized = np.ascontiguousarray(arr)
        else:
            resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in arr]) \
                if len(arr) else np.zeros((0, height, width, 3), np.uint8)
        x = torch.from_numpy(resized).permute(0, 3, 1, 2).float().div_(255.0)
    if augment and len(x):
        n = len(x)
        if shift > 0:
            padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), mode="replicate")
            dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator).tolist()
            dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator).tolist()
            x = torch.stack([padded[i, :, dy[i]:dy[i] + height, dx[i]:dx[i] + width] for i in range(n)])
        if brightness > 0:
            factor = 1.0 + brightness * (2 * torch.rand(n, generator=generator) - 1)
            x = (x * factor.to(device)[:, None, None, None]).clamp_(0.0, 1.0)
    mean_t = torch.tensor(tuple(mean), dtype=torch.float32, device=device)[None, :, None, None]
    std_t = torch.tensor(tuple(std), dtype=torch.float32, device=device)[None, :, None, None]
    return (x - mean_t) / std_t


def frames_of_episodes(spec, episodes: Sequence[dict], size=(96, 96), camera=None) -> list[torch.Tensor]:
    """uint8 frames of each demo episode (dicts with initial_state, qpos, qvel, model_fields), rendered through
    one env: [T_i+1, H, W, 3] each."""
    from robreward.envs.batched import BatchedEnv
    from robreward.envs.registry import get_task

    spec = get_task(spec)
    if not episodes:
        return []
    all_states = [demo_states(ep, spec) for ep in episodes]
    longest = max(len(s) for s in all_states)
    env = BatchedEnv(spec, num_envs=min(longest, 256), seed=0)
    env.reset()
    try:
        return [render_states(spec, s, size, camera, model_fields=ep.get("model_fields") or None, env=env)
                for s, ep in zip(all_states, episodes)]
    finally:
        env.close()
