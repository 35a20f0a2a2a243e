"""A preference round's rollouts (loop.py): collected with the current policy under the hand reward, split into
query and held-out worlds, cut into segments, and (image inputs) their frames added to the model's bank."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from robreward.feedback.preferences.config import PrefsConfig
from robreward.feedback.preferences.image_model import ImagePreferenceReward
from robreward.feedback.preferences.ppo_phase import _sampling_policy
from robreward.feedback.preferences.segments import (
    Rollout,
    SegmentBatch,
    SegmentPairs,
    collect_rollout,
    cut_segments,
    segment_candidates,
    with_frame_rows,
)

MAX_SEGMENTS = 4096  # segments cut per rollout at most (sampled when a rollout allows more)


def _collect(config: PrefsConfig, spec, run_dir: Path, seed: int, record_sim_states: bool = False):
    """A rollout of the current policy under the hand reward (what the teacher reads), and the env
    it ran in, still open (clips of the rollout render there): the caller closes it. With image reward
    inputs the rollout keeps the states each step left (the frames the reward model reads)."""
    import robreward

    num_steps = config.collect_steps or max(2 * config.segment, min(2 * spec.episode_length, 200))
    env = robreward.make(spec, config.num_envs, seed=seed, reward="hand", device=config.device)
    try:
        rollout, _ = collect_rollout(env, _sampling_policy(run_dir, seed), num_steps, seed=seed,
                                     record_sim_states=record_sim_states,
                                     record_post_states=config.reward_inputs != "state")
    except BaseException:
        env.close()
        raise
    return rollout, env


def _worlds(rollout: Rollout, worlds: np.ndarray) -> Rollout:
    idx = torch.as_tensor(worlds, device=rollout.rewards.device)
    return Rollout(states={k: v[:, idx] for k, v in rollout.states.items()}, actions=rollout.actions[:, idx],
                   rewards=rollout.rewards[:, idx], terminated=rollout.terminated[:, idx],
                   truncated=rollout.truncated[:, idx],
                   sim_states=None if rollout.sim_states is None else rollout.sim_states[:, idx.cpu()],
                   post_sim_states=None if rollout.post_sim_states is None else rollout.post_sim_states[:, idx.cpu()])


def split_heldout(rollout: Rollout) -> tuple[Rollout, Rollout]:
    """(query worlds, held-out worlds): the last quarter of the worlds (at least one) is held out."""
    n = rollout.num_envs
    held = max(1, n // 4)
    return _worlds(rollout, np.arange(n - held)), _worlds(rollout, np.arange(n - held, n))


def _segments(rollout: Rollout, length: int, featurizer, rng) -> SegmentBatch:
    count = len(segment_candidates(rollout, length)[0])
    return cut_segments(rollout, length, featurizer, num=None if count <= MAX_SEGMENTS else MAX_SEGMENTS, rng=rng)


def _add_frames(model, rollout: Rollout) -> Optional[int]:
    """Image inputs: the rollout's post-step states added to the model's frame bank (rendered when first read);
    the row of its first step. None for a state model."""
    if not isinstance(model, ImagePreferenceReward):
        return None
    if rollout.post_sim_states is None:
        raise ValueError("an image reward model needs the rollout's post-step states: collect it with "
                         "collect_rollout(..., record_post_states=True)")
    return model._bank().add_states(rollout.post_sim_states)


def _pairs_with_frames(pairs: SegmentPairs, offset: Optional[int], num_worlds: int) -> SegmentPairs:
    if offset is None:
        return pairs
    return SegmentPairs(with_frame_rows(pairs.first, offset, num_worlds),
                        with_frame_rows(pairs.second, offset, num_worlds))
