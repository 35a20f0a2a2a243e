"""Replay a dataset: re-simulate every episode from its initial full state and its actions and
compare qpos/qvel step by step with the stored ones (bit-exact on the same MuJoCo build), or
step through the stored states (mj_forward only) to render a video of one episode.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from tqdm import tqdm

from robreward.demos.format import DemoDataset
from robreward.demos.record import RecordingEnv, state_slices


def _apply_initial(env, ids: np.ndarray, states: np.ndarray, model_fields: list[dict]) -> None:
    """Put worlds `ids` at the episodes' start: their randomized model fields (written by the
    backend's reset, as the recording did), then their full integration states."""
    if model_fields and model_fields[0]:
        names = sorted(model_fields[0])
        fields = {n: np.stack([mf[n] for mf in model_fields]) for n in names}
        qs, vs = state_slices(env.model)
        env.sim.reset(ids, states[:, qs], states[:, vs], None, fields)
    env.set_state(states, ids)


def _index(ds, i) -> int:
    ds._group(int(i))  # raises a clear IndexError when out of range
    return int(i) % len(ds)


def replay(path, check: bool = True, force: bool = False, episodes=None, num_envs: int = 32,
           progress: bool = True, task=None) -> dict:
    """Re-simulate episodes (all, or the listed indices) from their actions.

    task: None for the file's own task (a task of the suite: a file never names a folder of
    code), or the task (name, folder, TaskSpec) the caller chose, e.g. from ``--task FOLDER``;
    the file's task name must then match it.

    Returns {"task", "episodes": [{"episode", "length", "first_divergent_step" (None if none),
    "max_abs_error", "max_abs_error_qpos", "max_abs_error_qvel"}], "max_abs_error",
    "diverged" (number of episodes with any difference)}. Episodes of equal length run as one
    batch of worlds.
    """
    ds = DemoDataset(path, task=task or "auto", force=force)
    with ds:
        spec = ds.spec
        idx = list(range(len(ds))) if episodes is None else [_index(ds, i) for i in episodes]
        lengths = ds.lengths()
        groups = defaultdict(list)
        for i in idx:
            groups[int(lengths[i])].append(i)
        n = int(max(1, min(num_envs, max((len(g) for g in groups.values()), default=1))))
        env = RecordingEnv(spec, num_envs=n, seed=0)
        env.reset(seed=0)
        qs, vs = state_slices(env.model)
        results = {}
        bar = tqdm(total=len(idx), desc=f"replay {spec.name}", disable=not progress, leave=False)
        for T, members in sorted(groups.items()):
            for start in range(0, len(members), n):
                chunk = members[start:start + n]
                eps = [ds.episode(i, fields=("initial_state", "actions", "qpos", "qvel", "model_fields"))
                       for i in chunk]
                ids = np.arange(len(chunk))
                _apply_initial(env, ids, np.stack([e["initial_state"] for e in eps]),
                               [e.get("model_fields", {}) for e in eps])
                actions = np.zeros((T, n, spec.act_dim), np.float32)
                actions[:, ids] = np.stack([e["actions"] for e in eps], axis=1)
                sim_q = np.empty((T, len(chunk), env.model.nq))
                sim_v = np.empty((T, len(chunk), env.model.nv))
                for t in range(T):
                    _, _, _, _, info = env.step(torch.from_numpy(actions[t]))
                    post = info["post_step_full_state"].cpu().numpy()
                    sim_q[t], sim_v[t] = post[ids][:, qs], post[ids][:, vs]
                for k, (i, e) in enumerate(zip(chunk, eps)):
                    eq = np.abs(sim_q[:, k] - e["qpos"][1:])
                    ev = np.abs(sim_v[:, k] - e["qvel"][1:])
                    eq0 = np.abs(e["initial_state"][qs] - e["qpos"][0]).max(initial=0.0)
                    per_step = np.maximum(eq.max(axis=1, initial=0.0), ev.max(axis=1, initial=0.0))
                    per_step = np.where(np.isnan(per_step), np.inf, per_step)
                    bad = np.flatnonzero(per_step > 0)
                    results[i] = {
                        "episode": i, "length": T,
                        "first_divergent_step": int(bad[0]) + 1 if len(bad) else None,
                        "max_abs_error": float(max(per_step.max(initial=0.0), eq0)),
                        "max_abs_error_qpos": float(np.nan_to_num(eq, nan=np.inf).max(initial=0.0)),
                        "max_abs_error_qvel": float(np.nan_to_num(ev, nan=np.inf).max(initial=0.0)),
                    }
                bar.update(len(chunk))
        bar.close()
        env.close()
    rows = [results[i] for i in idx]
    return {"task": spec.name, "path": str(path), "episodes": rows,
            "max_abs_error": float(max((r["max_abs_error"] for r in rows), default=0.0)),
            "diverged": sum(r["first_divergent_step"] is not None or r["max_abs_error"] > 0 for r in rows)}


def render_episode(path, episode: int, video=None, mode: str = "state", width: int = 320, height: int = 240,
                   force: bool = False, camera=None, task=None) -> np.ndarray:
    """Frames [T+1, H, W, 3] of one episode; also written to `video` (mp4) when given.

    mode 'state' steps through the stored qpos/qvel (the rest of the state from the initial
    one) with mj_forward; mode 'actions' re-simulates from the initial state and the actions.
    task: as for :func:`replay`.
    """
    if mode not in ("state", "actions"):
        raise ValueError(f"unknown replay mode {mode!r}: choose state or actions")
    with DemoDataset(path, task=task or "auto", force=force) as ds:
        spec = ds.spec
        ep = ds.episode(episode)
    env = RecordingEnv(spec, num_envs=1, seed=0)
    env.reset(seed=0)
    qs, vs = state_slices(env.model)
    init = ep["initial_state"][None]
    _apply_initial(env, np.array([0]), init, [ep.get("model_fields", {})])
    frames = [env.render([0], width, height, camera, renderer="egl")[0]]
    for t in range(len(ep["actions"])):
        if mode == "actions":
            _, _, term, trunc, info = env.step(torch.from_numpy(ep["actions"][t][None]))
            if bool(term[0] | trunc[0]):  # auto-reset: show the state the episode ended in
                env.set_state(info["post_step_full_state"], [0])
        else:
            state = init.copy()
            state[:, qs], state[:, vs] = ep["qpos"][t + 1], ep["qvel"][t + 1]
            env.set_state(state, [0])
        frames.append(env.render([0], width, height, camera, renderer="egl")[0])
    env.close()
    frames = np.stack(frames)
    if video:
        from robreward.envs.render import write_video

        write_video(video, frames, fps=1.0 / env.dt)
    return frames
