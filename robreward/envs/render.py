"""Headless rendering with fast settings (no shadows, reflections or multisampling) and mp4 output."""

from __future__ import annotations

import os
from pathlib import Path

import mujoco
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def fast_render_settings(model: mujoco.MjModel) -> None:
    """Software EGL costs 30-60 ms a frame with the defaults; these bring it to 1-2 ms."""
    model.vis.quality.offsamples = 0
    model.vis.quality.shadowsize = 0


class WorldRenderer:
    """One offscreen MuJoCo renderer reused across frames."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        fast_render_settings(model)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.size = (width, height)
        self.renderer = mujoco.Renderer(model, height=height, width=width)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        self.camera = mujoco.MjvCamera()

    def render(self, model, data, camera=None, track_body: int = 1) -> np.ndarray:
        if camera is None:
            # a free camera that follows the robot's root body
            mujoco.mjv_defaultFreeCamera(model, self.camera)
            self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            self.camera.trackbodyid = track_body if model.nbody > track_body else 0
            self.camera.distance = 3.0
            self.camera.elevation = -15.0
            self.camera.azimuth = 90.0
            cam = self.camera
        else:
            cam = camera
        self.renderer.update_scene(data, camera=cam)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def render_worlds(env, world_ids: list[int], width: int, height: int, camera=None) -> np.ndarray:
    if env.state is None:
        env.reset()
    for w in world_ids:
        if not 0 <= w < env.num_envs:
            raise ValueError(f"world id {w} out of range [0, {env.num_envs})")
    if env._renderer is None or env._renderer.size != (width, height):
        if env._renderer is not None:
            env._renderer.close()
        env._renderer = WorldRenderer(env.model, width, height)
    cam = camera if camera is not None else env.spec.camera
    if isinstance(cam, str) and mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
        raise ValueError(f"camera {cam!r} is not in the scene of task {env.spec.name!r}")
    frames = []
    for w in world_ids:
        model = env.sim.model_of(w)
        fast_render_settings(model)
        data = env.sim.data_of(w, model)
        frames.append(env._renderer.render(model, data, cam))
    return np.stack(frames)


def write_video(path, frames, fps: float = 30.0) -> Path:
    """Write uint8 frames [T, H, W, 3] as an H.264 mp4 (atomically: tmp file, then rename)."""
    import imageio.v2 as imageio

    from robreward.fileio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, imageio.get_writer(tmp, fps=fps, codec="libx264", quality=7,
                                                      macro_block_size=8) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    return path
