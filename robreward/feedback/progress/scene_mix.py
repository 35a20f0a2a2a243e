"""Mixed-scene hard negatives for image progress models (``ProgressConfig.mix_frames``).

A state model learns "progress needs every part of the state" from observations mixed feature by feature
(model._mixed_loss). Frames cannot be mixed pixel by pixel, so the scene is mixed instead: two states i, j of
one successful demo episode, each part of the scene (the subtree of a body attached to the world that has
joints: the arm, the cube, the drawer) taken from one of the two, at least one part from each, rendered,
and trained toward the lower of the two states' targets. The state an image model is fooled by on push, the
arm at a late pose over a cube that never moved (Φ 0.5, benchmarks/RESULTS.md "Progress rewards"), is one
of these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class MixedFrames(NamedTuple):
    """Rendered mixed scenes: pixels uint8 [M, S, S, 3] (or, for a frozen encoder, its features ``feats`` [M, F]
    in their place), their observations [M, obs_dim], targets [M]."""

    pixels: torch.Tensor | None
    obs: torch.Tensor
    target: torch.Tensor
    feats: torch.Tensor | None = None


def scene_parts(model) -> list[np.ndarray]:
    """Indices into an mjSTATE_INTEGRATION row (qpos and qvel) of each part of the scene: the joints of each
    body attached to the world, with everything below it; parts without joints are left out."""
    from robreward.demos.record import state_slices

    qs, vs = state_slices(model)
    by_root: dict[int, list[int]] = {}
    for joint in range(model.njnt):
        by_root.setdefault(int(model.body_rootid[model.jnt_bodyid[joint]]), []).append(joint)
    widths = {0: (7, 6), 1: (4, 3), 2: (1, 1), 3: (1, 1)}  # free, ball, slide, hinge: (qpos, qvel) sizes
    parts = []
    for root in sorted(by_root):
        rows = []
        for joint in by_root[root]:
            nq, nv = widths[int(model.jnt_type[joint])]
            qa, va = int(model.jnt_qposadr[joint]), int(model.jnt_dofadr[joint])
            rows += list(range(qs.start + qa, qs.start + qa + nq)) + list(range(vs.start + va, vs.start + va + nv))
        parts.append(np.asarray(rows, dtype=np.int64))
    return parts


def mixed_states(episodes, failure_cap: float, n: int, parts: list[np.ndarray], seed: int):
    """``n`` mixed states of the successful ``episodes`` (with ``states``), drawn evenly over them: (episode
    index [n], states [n, nstate], targets [n]). Each mixes two different rows of one episode's success ramp
    (row 0 .. first success), every part from either, at least one from each (module docstring)."""
    if len(parts) < 2:
        raise ValueError("mixed scenes need at least two moving parts in the scene (an arm and an object); "
                         "this task's scene has fewer: fit without --mix-frames")
    wins = [k for k, e in enumerate(episodes) if e.success and e.states is not None and e.first_success >= 1]
    if not wins:
        raise ValueError("mixed scenes need successful episodes with their states (image inputs load them)")
    rng = np.random.default_rng(seed)
    which = rng.choice(wins, size=n)
    out_states, out_targets = [], []
    for k in which:
        e = episodes[k]
        i, j = rng.choice(e.first_success + 1, size=2, replace=False)
        targets = e.targets(failure_cap)
        take_j = rng.random(len(parts)) < 0.5
        while take_j.all() or not take_j.any():  # at least one part from each of the two states
            take_j = rng.random(len(parts)) < 0.5
        state = e.states[i].copy()
        for part, from_j in zip(parts, take_j):
            if from_j:
                state[part] = e.states[j][part]
        out_states.append(state)
        out_targets.append(min(targets[i], targets[j]))
    return which, np.stack(out_states), np.asarray(out_targets, np.float32)


def render_mixed(episodes, spec, config, n: int, seed: int) -> MixedFrames:
    """Render ``n`` mixed scenes of ``episodes`` (the training episodes, with states) at the config's image size
    and camera, with the observation each mixed state gives (the state inputs of ``inputs both``)."""
    from robreward.envs.batched import BatchedEnv
    from robreward.feedback.vision.frames import render_batch, write_states

    env = BatchedEnv(spec, num_envs=min(n, 256), seed=0)
    try:
        env.reset()
        which, states, targets = mixed_states(episodes, config.failure_cap, n, scene_parts(env.model), seed)
        pixels = np.zeros((n, config.image_size, config.image_size, 3), np.uint8)
        obs = np.zeros((n, spec.obs_dim), np.float32)
        for k in np.unique(which):  # one episode at a time: its randomized model fields, if any
            rows = np.flatnonzero(which == k)
            done = 0
            for ids in write_states(env, states[rows], episodes[k].model_fields):
                dest = rows[done:done + len(ids)]
                pixels[dest] = render_batch(env, ids, (config.image_size, config.image_size),
                                            config.camera or None).cpu().numpy()
                obs[dest] = env.obs[torch.as_tensor(ids, device=env.obs.device)].cpu().numpy()
                done += len(ids)
    finally:
        env.close()
    return MixedFrames(torch.from_numpy(pixels), torch.from_numpy(obs), torch.from_numpy(targets))
