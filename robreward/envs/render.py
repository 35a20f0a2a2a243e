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


class RendererUnavailable(RuntimeError):
    """No OpenGL renderer on this machine (MUJOCO_GL unset/disabled, no EGL library or no display)."""


def no_renderer_message(err: BaseException | None = None) -> str:
    gl = os.environ.get("MUJOCO_GL", "")
    cause = f" ({type(err).__name__}: {err})" if err is not None else ""
    return (f"no OpenGL renderer here (MUJOCO_GL={gl!r}){cause}: set MUJOCO_GL=egl (before mujoco is imported) on a machine with an EGL "
            "library (apt-get install libegl1; a GPU is not needed) or MUJOCO_GL=osmesa (libosmesa6), or use "
            "backend='warp' on a GPU (MuJoCo Warp's batch renderer)")


def gl_context(width: int, height: int):
    """A current offscreen OpenGL context of MuJoCo's configured backend; RendererUnavailable if none."""
    try:
        from mujoco import gl_context as _gl

        cls = getattr(_gl, "GLContext", None)
        if cls is None:  # MUJOCO_GL=disable
            raise RendererUnavailable(no_renderer_message())
        ctx = cls(width, height)
        ctx.make_current()
        return ctx
    except RendererUnavailable:
        raise
    except Exception as err:  # noqa: BLE001  (EGL/OSMesa/GLFW raise ImportError, RuntimeError, OSError, ...)
        raise RendererUnavailable(no_renderer_message(err)) from None


def tracking_camera(model: mujoco.MjModel, camera: mujoco.MjvCamera | None = None, track_body: int = 1):
    """The free camera that follows the robot's root body (WorldRenderer's camera=None view)."""
    cam = camera if camera is not None else mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = track_body if model.nbody > track_body else 0
    cam.distance, cam.elevation, cam.azimuth = 3.0, -15.0, 90.0
    return cam


def mjv_camera(model: mujoco.MjModel, camera) -> mujoco.MjvCamera:
    """An MjvCamera from a model camera name or id, an MjvCamera, or None (the tracking view)."""
    if camera is None:
        return tracking_camera(model)
    if isinstance(camera, mujoco.MjvCamera):
        return camera
    if isinstance(camera, str):
        cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            raise ValueError(f"camera {camera!r} is not in the scene")
    elif isinstance(camera, (int, np.integer)) and not isinstance(camera, bool):
        cid = int(camera)
        if not -1 <= cid < model.ncam:
            raise ValueError(f"camera id {cid} out of range [-1, {model.ncam})")
        if cid == -1:
            return tracking_camera(model)
    else:
        raise ValueError(f"camera must be a camera name or id, an mujoco.MjvCamera or None, got {camera!r}")
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
    cam.fixedcamid = cid
    return cam


MAX_BUFFER = 4096  # the tiled framebuffer's largest side (GL_MAX_RENDERBUFFER_SIZE is >= 4096 everywhere we run)


class TiledRenderer:
    """Many worlds into the viewports of ONE offscreen framebuffer, read back with one mjr_readPixels.

    A grid of ``cols x rows`` tiles of ``width x height``: world k of a call is drawn (mjv_updateScene +
    mjr_render, which clears and draws only inside its viewport) into tile k, then the used rows of tiles
    are read at once and cut into frames. ``capacity`` (cols * rows) worlds fit in one pass; more are
    drawn in passes of ``capacity``. Same fast settings as WorldRenderer (no shadows, reflections,
    skybox or multisampling), so a tile equals WorldRenderer's frame of that world.
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int, capacity: int):
        width, height, capacity = int(width), int(height), int(capacity)
        if width < 1 or height < 1 or width > MAX_BUFFER or height > MAX_BUFFER:
            raise ValueError(f"frame size must be in 1..{MAX_BUFFER} pixels a side, got {width}x{height}")
        self.size = (width, height)
        cols = max(1, min(int(np.ceil(np.sqrt(max(capacity, 1)))), MAX_BUFFER // width))
        rows = max(1, min(int(np.ceil(max(capacity, 1) / cols)), MAX_BUFFER // height))
        self.cols, self.rows = cols, rows
        self.capacity = cols * rows
        self.model = model
        fast_render_settings(model)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, cols * width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, rows * height)
        self._gl = gl_context(cols * width, rows * height)
        self.scene = mujoco.MjvScene(model, maxgeom=10000)
        self.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        self.option = mujoco.MjvOption()
        try:
            self.con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        except mujoco.FatalError as err:  # e.g. MUJOCO_GL chosen (glfw) before robreward set egl, and no display
            self._gl.free()
            self._gl = None
            raise RendererUnavailable(no_renderer_message(err)) from None
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self.con)
        self._buffer = np.empty((rows * height, cols * width, 3), np.uint8)

    def render(self, views, n: int) -> np.ndarray:
        """uint8 frames [n, H, W, 3] of ``views``: an iterable of ``n`` (model, data, MjvCamera), each data
        with its derived fields computed (mj_forward) when it is yielded; views are consumed one at a time,
        so one MjData may serve them all."""
        import itertools

        if self._gl is None:
            raise RuntimeError("this TiledRenderer is closed")
        views = iter(views)
        w, h = self.size
        out = np.empty((n, h, w, 3), np.uint8)
        self._gl.make_current()
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self.con)
        for start in range(0, n, self.capacity):
            chunk = min(self.capacity, n - start)
            for k, (model, data, cam) in enumerate(itertools.islice(views, chunk)):
                mujoco.mjv_updateScene(model, data, self.option, None, cam, mujoco.mjtCatBit.mjCAT_ALL.value,
                                       self.scene)
                rect = mujoco.MjrRect((k % self.cols) * w, (k // self.cols) * h, w, h)
                mujoco.mjr_render(rect, self.scene, self.con)
            used_rows = -(-chunk // self.cols)
            buf = self._buffer[:used_rows * h]
            mujoco.mjr_readPixels(buf, None, mujoco.MjrRect(0, 0, self.cols * w, used_rows * h), self.con)
            # GL rows run bottom-up: tile (r, c) holds world r*cols + c, each tile upside down
            tiles = buf.reshape(used_rows, h, self.cols, w, 3).transpose(0, 2, 1, 3, 4).reshape(-1, h, w, 3)
            out[start:start + chunk] = tiles[:chunk, ::-1]
        return out

    def close(self) -> None:
        if getattr(self, "_gl", None) is not None and getattr(self, "con", None) is not None:
            self._gl.make_current()
            self.con.free()
            self._gl.free()
            self._gl = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown: nothing to do)
            pass


_PROBED: list = []  # the probe's outcome in this process: [] not yet, [None] fine, [message] unavailable


def probe_renderer() -> None:
    """RendererUnavailable (saying what to set) if no offscreen OpenGL context can be made here; cheap after the
    first call."""
    if not _PROBED:
        try:
            TiledRenderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8, 1).close()
            _PROBED.append(None)
        except RendererUnavailable as err:
            _PROBED.append(str(err))
    if _PROBED[0] is not None:
        raise RendererUnavailable(_PROBED[0])
