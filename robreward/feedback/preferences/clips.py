"""Render segments to mp4 clips for the human teacher, from stored full MuJoCo states.

    rollout, obs = collect_rollout(env, policy, 200, record_sim_states=True)
    paths = render_pair_clips(render_env, rollout, queries, run_dir / "clips", prefix="r000")
    ids = store.add_queries(0, pairs_meta(queries), paths)

Each frame is one ``set_state`` (the full ``mjSTATE_INTEGRATION`` state recorded before a step)
followed by an EGL render, so a clip shows exactly what the rollout did, with no re-simulation.
Frame t shows the state before step ``start + t``.

Rendering writes states into the render env: use an env that is not collecting rollouts (a
twin made with the same task, ``num_envs`` and seed has the same per-world model fields, so
``render_world=None`` renders each segment in its own world faithfully).

A segment cut short by termination (``mask`` False on its last steps, see ``segments.py``)
holds its last real frame for the padded steps, so both clips of a pair last as long and
the person sees the episode end and stay ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from robreward.feedback.preferences.segments import Rollout, SegmentBatch, SegmentPairs

DEFAULT_SIZE = (320, 240)


def render_states(env, sim_states, *, world: int = 0, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1],
                  camera=None) -> np.ndarray:
    """uint8 frames [T, height, width, 3]: world ``world`` of ``env`` set to each of ``sim_states``
    [T, nstate] (float64 ``mjSTATE_INTEGRATION``) in turn and rendered with EGL."""
    states = np.asarray(sim_states.cpu() if isinstance(sim_states, torch.Tensor) else sim_states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != env.nstate:
        raise ValueError(f"sim_states must be [T, nstate] = [T, {env.nstate}] (mjSTATE_INTEGRATION of task "
                         f"{env.spec.name!r}), got shape {list(states.shape)}")
    if len(states) == 0:
        raise ValueError("sim_states is empty: a clip needs at least one state")
    frames = []
    for state in states:
        env.set_state(state[None], [world])
        frames.append(env.render([world], width, height, camera=camera, renderer="egl")[0])
    return np.stack(frames)


def render_clip(env, sim_states, path: Union[str, Path], *, world: int = 0, width: int = DEFAULT_SIZE[0],
                height: int = DEFAULT_SIZE[1], camera=None, fps: Optional[float] = None,
                num_frames: Optional[int] = None) -> Path:
    """Write the states [T, nstate] as an H.264 mp4 at ``path`` (atomically); returns the path.

    fps: None plays in real time (1 / env.dt). num_frames: hold the last frame up to this many."""
    from robreward.envs.render import write_video

    frames = render_states(env, sim_states, world=world, width=width, height=height, camera=camera)
    if num_frames is not None and num_frames > len(frames):
        frames = np.concatenate([frames, np.repeat(frames[-1:], num_frames - len(frames), axis=0)])
    return write_video(path, frames, fps=fps if fps is not None else 1.0 / env.dt)


def segment_sim_states(rollout: Rollout, segments: SegmentBatch, index: int) -> torch.Tensor:
    """[L, nstate] the full states before each real step of segment ``index`` (L = its real steps)."""
    if rollout.sim_states is None:
        raise ValueError("this rollout has no full MuJoCo states to render: collect it with "
                         "collect_rollout(..., record_sim_states=True)")
    world, start = int(segments.world[index]), int(segments.start[index])
    if world < 0 or start < 0:
        raise ValueError(f"segment {index} has no rollout provenance (world={world}, start={start}): only "
                         "segments cut from a rollout (cut_segments) can be rendered")
    real = int(segments.mask[index].sum())
    if start + real > rollout.num_steps or world >= rollout.num_envs:
        raise ValueError(f"segment {index} (world {world}, steps {start}..{start + real - 1}) is not inside this "
                         f"rollout of {rollout.num_steps} steps x {rollout.num_envs} worlds: pass the rollout "
                         "it was cut from")
    return rollout.sim_states[start:start + real, world]


def render_pair_clips(env, rollout: Rollout, pairs: SegmentPairs, clips_dir: Union[str, Path], prefix: str, *,
                      render_world: Optional[int] = None, width: int = DEFAULT_SIZE[0],
                      height: int = DEFAULT_SIZE[1], camera=None,
                      fps: Optional[float] = None) -> list[tuple[Path, Path]]:
    """Render both segments of every pair; returns [(left, right)] paths ``clips_dir/{prefix}_{i}_{l|r}.mp4``.

    render_world: the env world to render in; None renders each segment in its own world."""
    if not prefix or not all(c.isalnum() or c in "-_." for c in prefix):
        raise ValueError(f"clip prefix must be non-empty letters, digits, '-', '_' or '.', got {prefix!r}")
    clips_dir = Path(clips_dir)
    paths = []
    for i in range(pairs.size):
        pair_paths = []
        for side, segments in (("l", pairs.first), ("r", pairs.second)):
            states = segment_sim_states(rollout, segments, i)
            world = int(segments.world[i]) if render_world is None else int(render_world)
            path = clips_dir / f"{prefix}_{i:04d}_{side}.mp4"
            pair_paths.append(render_clip(env, states, path, world=world, width=width, height=height, camera=camera,
                                          fps=fps, num_frames=segments.length))
        paths.append(tuple(pair_paths))
    return paths


def pairs_meta(pairs: SegmentPairs, extra: Optional[Sequence[dict]] = None) -> list[dict]:
    """JSON-serializable provenance of every pair for ``LabelStore.add_queries``: world, start and
    real steps of each segment, plus ``extra[i]`` merged in when given."""
    if extra is not None and len(extra) != pairs.size:
        raise ValueError(f"extra has {len(extra)} entries for {pairs.size} pairs")
    meta = []
    for i in range(pairs.size):
        item = {side: {"world": int(seg.world[i]), "start": int(seg.start[i]), "steps": int(seg.mask[i].sum()),
                       "length": seg.length}
                for side, seg in (("first", pairs.first), ("second", pairs.second))}
        meta.append({**item, **(extra[i] if extra is not None else {})})
    return meta


__all__ = ["DEFAULT_SIZE", "pairs_meta", "render_clip", "render_pair_clips", "render_states", "segment_sim_states"]
