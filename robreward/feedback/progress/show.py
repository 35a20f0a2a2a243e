"""A demo episode rendered with its progress curve drawn beside each frame (`robreward progress show`).

The frames come from robreward.demos.replay.render_episode (the stored states stepped through with
mj_forward, EGL); the curve panel is drawn with OpenCV: Φ over the whole episode, the part up to the
current frame highlighted, and a marker at the current step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def curve_panel(curve: np.ndarray, step: int, width: int, height: int, success_step: int = -1) -> np.ndarray:
    """uint8 [height, width, 3]: Φ over time with the steps up to ``step`` highlighted."""
    import cv2

    panel = np.full((height, width, 3), 255, np.uint8)
    margin = 24
    xs = margin + (width - 2 * margin) * np.arange(len(curve)) / max(len(curve) - 1, 1)
    ys = height - margin - (height - 2 * margin) * np.clip(curve, 0.0, 1.0)
    points = np.stack([xs, ys], -1).astype(np.int32)
    cv2.rectangle(panel, (margin, margin), (width - margin, height - margin), (200, 200, 200), 1)
    if success_step >= 0:
        x = int(points[min(success_step, len(points) - 1), 0])
        cv2.line(panel, (x, margin), (x, height - margin), (120, 200, 120), 1)
    cv2.polylines(panel, [points.reshape(-1, 1, 2)], False, (190, 190, 190), 1, cv2.LINE_AA)
    cv2.polylines(panel, [points[:step + 1].reshape(-1, 1, 2)], False, (30, 90, 200), 2, cv2.LINE_AA)
    cv2.circle(panel, tuple(int(v) for v in points[step]), 4, (200, 40, 40), -1, cv2.LINE_AA)
    cv2.putText(panel, f"step {step}  progress {curve[step]:.2f}", (margin, margin - 8), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def progress_video(net, spec, demos, episode: int, video, height: int = 240, config=None, cache_dir=None) -> Path:
    """Render ``episode`` of ``demos`` with Φ beside each frame; write ``video`` (mp4). ValueError without a
    renderer (headless machines need MUJOCO_GL=egl and an EGL library). An image model (``config`` its
    ProgressConfig) scores the episode's frames at its own size and camera (cached in ``cache_dir``)."""
    from robreward.demos.format import DemoDataset
    from robreward.demos.replay import render_episode
    from robreward.envs.render import write_video
    from robreward.feedback.progress.model import load_episodes

    if height < 32:
        raise ValueError(f"--size must be at least 32 pixels, got {height}")
    with DemoDataset(demos) as ds:
        ds._group(episode)  # a clear error for an index out of range
        index = episode % len(ds)
    image = bool(getattr(net, "uses_image", False))
    ep = load_episodes([demos], spec, states=image)[index]
    if image:
        from robreward.feedback.progress.model import attach_frames, check_renderer

        if config is None:
            raise ValueError("an image progress model needs its config to render the frames it reads")
        check_renderer(config)
        ep = attach_frames([ep], spec, config, cache_dir)[0]
    with torch.no_grad():
        curve = net.phi(torch.from_numpy(ep.obs), ep.frames if image else None).numpy()
    width = (height * 4 // 3) // 8 * 8
    try:
        frames = render_episode(demos, index, mode="state", width=width, height=height, task=spec)
    except Exception as err:  # noqa: BLE001  (MuJoCo's renderer raises several types when no GL is available)
        raise ValueError(f"cannot render (no OpenGL renderer here: {err}); set MUJOCO_GL=egl on a machine with EGL "
                         "(libegl1), or use `robreward progress eval` for the curves alone") from None
    panel_w = width // 8 * 8
    combined = [np.concatenate([frame, curve_panel(curve, t, panel_w, height, ep.first_success)], axis=1)
                for t, frame in enumerate(frames)]
    fps = 1.0 / (float(spec.build_model().opt.timestep) * spec.frame_skip)
    return write_video(video, np.stack(combined), fps=fps)
