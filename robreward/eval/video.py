"""Videos people want to watch: a camera that frames the robot, 480x360 tiles, an overlay with the
step, reward and success, and several episodes tiled into one grid video.

    with EpisodeGrid(env, "push.mp4", episodes=4, size=(480, 360), reward_label="hand") as grid:
        obs, _ = env.reset()
        while not grid.finished:
            grid.capture()                          # the current state of worlds 0..episodes-1
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            grid.record(reward, info["success"], terminated | truncated)

Episode k of the grid is world k's first episode (the worlds of a batched env run at once); a
tile whose episode has ended keeps its last frame with the final numbers. The frames stream to
the mp4 (H.264 through imageio-ffmpeg), written atomically: nothing is held in memory but the
last frame of each tile.

Framing (:class:`Framing`), chosen from the scene, not from the task's name alone:

- the manipulation scene (a ``grip`` site: reach, push, lift, drawer-open and task folders built
  on ``sims/_arm.py``): a free camera looking at the box around the gripper and the task's
  objects (``cube``, ``goal``, the drawer ``handle``), at 135 degrees azimuth so the fingers,
  which close along y, are seen side by side, 50 degrees down so the table fills the frame (no
  black beyond its edge), and at a distance that grows with the box; smoothed over frames.
- any other scene without a named camera (the locomotion tasks): a camera tracking the root
  body from the side, 30 degrees down so the horizon (and the black above it: the skybox is
  off for speed) stays out of the frame, at a per-task distance (:data:`TRACK_DISTANCE`); the
  floor is drawn without an edge while recording (a runner leaves the 80 m floor in seconds).
- a scene with its own camera (``TaskSpec.camera``) and no grip site: that camera.

The overlay is drawn with OpenCV (cv2.putText) into each tile's top-left corner.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from typing import Optional, Sequence

import mujoco
import numpy as np

DEFAULT_SIZE = (480, 360)
MAX_SIDE = 1920
TRACK_DISTANCE = {"cheetah-run": 2.4, "hopper-hop": 2.6, "ant-run": 3.2, "humanoid-run": 3.4,
                  "humanoid-kneel": 3.4}
"""Tracking-camera distance (m) of the locomotion tasks; other tracked scenes use DEFAULT_TRACK_DISTANCE."""
DEFAULT_TRACK_DISTANCE = 3.0
ARM_VIEW = {"azimuth": 135.0, "elevation": -50.0}
TRACK_VIEW = {"azimuth": 90.0, "elevation": -30.0}
ARM_OBJECTS = (("body", "cube"), ("site", "handle"), ("body", "goal"))
SMOOTHING = 0.25  # fraction of the way to the new framing per frame (no jitter when an object moves)
EMPTY_TILE = 40  # grey level of the grid's unused tiles


def parse_size(text) -> tuple[int, int]:
    """'480x360' -> (480, 360); a clear ValueError for anything else (sizes must be even for H.264)."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        w, h = (int(v) for v in text)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
        if not m:
            raise ValueError(f"video size {text!r} is not WIDTHxHEIGHT, e.g. --size 480x360")
        w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= MAX_SIDE and 64 <= h <= MAX_SIDE) or w % 2 or h % 2:
        raise ValueError(f"video size {w}x{h}: width and height must be even numbers from 64 to {MAX_SIDE} "
                         "(H.264 needs even sizes), e.g. --size 480x360")
    return w, h


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) of a grid of n tiles: as square as possible, wider than tall."""
    if n < 1:
        raise ValueError(f"a video grid needs at least 1 episode, got {n}")
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def tile(frames: Sequence[np.ndarray], cols: int, rows: int, fill: int = EMPTY_TILE) -> np.ndarray:
    """Frames [H, W, 3] (all one size) into a cols x rows grid, row by row; unused tiles are grey."""
    h, w = frames[0].shape[:2]
    out = np.full((rows * h, cols * w, 3), fill, np.uint8)
    for k, frame in enumerate(frames):
        r, c = divmod(k, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = frame
    return out


def _has(model, kind: str, name: str) -> bool:
    obj = mujoco.mjtObj.mjOBJ_SITE if kind == "site" else mujoco.mjtObj.mjOBJ_BODY
    return mujoco.mj_name2id(model, obj, name) >= 0


class Framing:
    """Per-world cameras that keep the robot (and what it works on) in the frame; see the module doc."""

    def __init__(self, env):
        self.env = env
        model = env.model
        if _has(model, "site", "grip"):
            self.kind = "arm"
            self.objects = [(k, n) for k, n in ARM_OBJECTS if _has(model, k, n)]
        elif env.spec.camera is not None:
            self.kind = "fixed"
        else:
            self.kind = "track"
        self.distance = TRACK_DISTANCE.get(env.spec.name, DEFAULT_TRACK_DISTANCE)
        self._smooth: dict[int, np.ndarray] = {}
        self._planes: dict[int, np.ndarray] = {}
        if self.kind == "track":
            self._endless_floor()

    def _endless_floor(self) -> None:
        """Draw the floor plane(s) without an edge while recording: a runner leaves the locomotion
        scenes' 80 m floor after a few seconds and would run over black. A plane's first two sizes are
        used only for drawing (MuJoCo collides with a plane as if it were infinite; a test checks the
        physics is bit-identical); restore() puts them back."""
        model = self.env.model
        for g in range(model.ngeom):
            if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE and (model.geom_size[g, :2] > 0).any():
                self._planes[g] = model.geom_size[g].copy()
                model.geom_size[g, :2] = 0.0

    def restore(self) -> None:
        """Undo what recording changed on the env's model (the floor's drawn size)."""
        for g, size in self._planes.items():
            self.env.model.geom_size[g] = size
        self._planes = {}

    def _arm_target(self, world: int) -> np.ndarray:
        data = self.env.sim.data_of(world)
        pts = [data.site("grip").xpos.copy()]
        for kind, name in self.objects:
            pts.append((data.site(name) if kind == "site" else data.body(name)).xpos.copy())
        pts = np.asarray(pts)
        lo, hi = pts.min(0), pts.max(0)
        span = float(np.linalg.norm(hi - lo))
        centre = (lo + hi) / 2 + np.array([0.0, 0.0, 0.03])
        return np.append(centre, np.clip(0.3 + 1.2 * span, 0.5, 0.85))

    def camera(self, world: int, reset: bool = False):
        """The camera of `world` for its current state (an MjvCamera, or the task's camera name)."""
        if self.kind == "fixed":
            return self.env.spec.camera
        cam = mujoco.MjvCamera()
        if self.kind == "track":
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = 1 if self.env.model.nbody > 1 else 0
            cam.distance = self.distance
            cam.azimuth, cam.elevation = TRACK_VIEW["azimuth"], TRACK_VIEW["elevation"]
            return cam
        target = self._arm_target(world)
        prev = None if reset else self._smooth.get(world)
        now = target if prev is None else prev + SMOOTHING * (target - prev)
        self._smooth[world] = now
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = now[:3]
        cam.distance = float(now[3])
        cam.azimuth, cam.elevation = ARM_VIEW["azimuth"], ARM_VIEW["elevation"]
        return cam

    def render(self, world: int, size: tuple[int, int], reset: bool = False) -> np.ndarray:
        frame = self.env.render([world], size[0], size[1], camera=self.camera(world, reset), renderer="egl")[0]
        return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8))


GREEN, WHITE, GREY, AMBER = (90, 230, 90), (245, 245, 245), (190, 190, 190), (255, 200, 60)


def draw_overlay(frame: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """Text lines (text, RGB colour) in the frame's top-left corner on a translucent dark box
    (cv2.putText); returns a new frame. The font scales with the frame height."""
    import cv2

    out = np.ascontiguousarray(frame.copy())
    h = out.shape[0]
    scale = max(h / 720.0, 0.35)
    thick = 1 if h < 500 else 2
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(text, font, scale, thick)[0] for text, _ in lines]
    line_h = max(s[1] for s in sizes) + int(10 * scale) + 4
    pad = max(int(8 * scale), 4)
    box_w = min(max(s[0] for s in sizes) + 2 * pad, out.shape[1])
    box_h = min(line_h * len(lines) + pad, h)
    region = out[:box_h, :box_w].astype(np.float32)
    out[:box_h, :box_w] = (region * 0.45).astype(np.uint8)
    for k, (text, colour) in enumerate(lines):
        y = pad + line_h * (k + 1) - int(6 * scale) - 2
        cv2.putText(out, text, (pad, y), font, scale, colour, thick, cv2.LINE_AA)
    return out


def _num(x: float) -> str:
    return f"{x:+.3g}" if abs(x) < 1000 else f"{x:+.0f}"


class EpisodeGrid:
    """Record worlds 0..episodes-1's first episodes into one grid mp4 (see the module doc).

    reward_label names the reward the overlay shows ("hand", "sparse", a file name, ...);
    fps defaults to the task's control rate (1 / env.dt)."""

    def __init__(self, env, path, episodes: int = 1, size=DEFAULT_SIZE, fps: Optional[float] = None,
                 reward_label: str = "reward", title: Optional[str] = None):
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
            raise ValueError(f"video episodes must be an integer >= 1, got {episodes!r}")
        if episodes > env.num_envs:
            raise ValueError(f"a video of {episodes} episodes needs >= {episodes} worlds (the grid shows worlds "
                             f"0..{episodes - 1} at once); this run has {env.num_envs}: ask for fewer video episodes "
                             "or more worlds/episodes")
        self.env, self.path, self.size = env, Path(path), parse_size(size)
        self.n = int(episodes)
        self.cols, self.rows = grid_shape(self.n)
        self.fps = float(fps) if fps is not None else 1.0 / env.dt
        self.reward_label = str(reward_label)
        self.title = title if title is not None else env.spec.name
        self.framing = Framing(env)
        self.steps = np.zeros(self.n, np.int64)
        self.returns = np.zeros(self.n, np.float64)
        self.last_reward = np.full(self.n, np.nan)
        self.success = np.zeros(self.n, bool)
        self.fitness_sum = np.zeros(self.n, np.float64)
        self.threshold = env.spec.success_threshold
        self.horizon = env.spec.fitness_horizon
        self.done = np.zeros(self.n, bool)
        self._raw: list[Optional[np.ndarray]] = [None] * self.n
        self.frames_written = 0
        self._stack: Optional[contextlib.ExitStack] = None
        self._writer = None

    # context: the mp4 is written to a temp file and renamed on a clean exit
    def __enter__(self):
        import imageio.v2 as imageio

        from robreward.fileio import atomic_path

        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = self._stack.enter_context(
            imageio.get_writer(tmp, fps=self.fps, codec="libx264", quality=7, macro_block_size=2))
        return self

    def __exit__(self, *exc):
        self.framing.restore()
        self._writer = None
        stack, self._stack = self._stack, None
        return stack.__exit__(*exc) if stack is not None else False

    @property
    def finished(self) -> bool:
        return bool(self.done.all())

    def _lines(self, k: int) -> list:
        total = self.env.spec.episode_length
        lines = [(f"{self.title}  ep {k + 1}  step {int(self.steps[k])}/{total}", WHITE)]
        r = self.last_reward[k]
        lines.append((f"reward ({self.reward_label}) {'-' if np.isnan(r) else _num(r)}  "
                      f"return {_num(self.returns[k])}", WHITE))
        if self.threshold is not None:  # locomotion: success is the episode's mean fitness >= threshold
            fit = self.fitness_sum[k] / (self.horizon or max(int(self.steps[k]), 1))  # so far: what is banked
            if self.done[k]:
                lines.append((f"{'SUCCESS' if self.success[k] else 'no success'}: fitness {fit:.2f} "
                              f"(>= {self.threshold:g})", GREEN if self.success[k] else AMBER))
            else:
                lines.append((f"fitness so far {fit:.2f} (success >= {self.threshold:g})", WHITE))
        elif self.success[k]:
            lines.append(("SUCCESS", GREEN))
        else:
            lines.append(("episode over: no success" if self.done[k] else "success: not yet",
                          AMBER if self.done[k] else GREY))
        return lines

    def capture(self) -> np.ndarray:
        """Render the recorded worlds that are still in their first episode (ended ones keep their last
        frame), draw the overlays, append the grid frame to the video; returns it."""
        if self._writer is None:
            raise RuntimeError("EpisodeGrid.capture outside its `with` block")
        tiles = []
        for k in range(self.n):
            if not self.done[k]:
                self._raw[k] = self.framing.render(k, self.size, reset=self.steps[k] == 0)
            tiles.append(draw_overlay(self._raw[k], self._lines(k)))
        frame = tile(tiles, self.cols, self.rows)
        self._writer.append_data(frame)
        self.frames_written += 1
        return frame

    def record(self, reward, success, done, fitness=None) -> None:
        """The step's reward, success and done flags (and the per-step fitness, which decides success on
        tasks with a success_threshold) of every world: tensors or arrays over all worlds."""
        reward, success, done = (np.asarray(_numpy(x))[: self.n] for x in (reward, success, done))
        live = ~self.done
        self.steps[live] += 1
        self.returns[live] += reward[live]
        self.last_reward[live] = reward[live]
        if fitness is not None:
            self.fitness_sum[live] += np.asarray(_numpy(fitness))[: self.n][live]
        newly = live & done.astype(bool)
        if self.threshold is not None and fitness is not None:
            mean = self.fitness_sum / (self.horizon or np.maximum(self.steps, 1))
            self.success[newly] = mean[newly] >= self.threshold
        else:
            self.success[live] |= success[live].astype(bool)
        if newly.any():
            self.done |= newly
            if self.done.all():
                self.capture()  # the final numbers on every tile (hold the last frame a moment)
                for _ in range(int(self.fps // 2)):
                    self._writer.append_data(tile([draw_overlay(self._raw[k], self._lines(k)) for k in range(self.n)],
                                                  self.cols, self.rows))
                    self.frames_written += 1


def _numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x
