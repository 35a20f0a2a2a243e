"""A preference run's reward model (loop.py): built untrained from the config (state features or frames),
given its frame bank (image inputs), and measured on a held-out rollout (preference accuracy, EPIC distance)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from robreward.feedback.preferences.config import PrefsConfig
from robreward.feedback.preferences.image_model import (
    FrameBank,
    ImageInputs,
    ImagePreferenceReward,
    image_epic_distance,
)
from robreward.feedback.preferences.metrics import Coverage, epic_distance, preference_accuracy
from robreward.feedback.preferences.model import Featurizer, PreferenceReward
from robreward.feedback.preferences.rollouts import _add_frames, _segments
from robreward.feedback.preferences.segments import Rollout, sample_pairs, with_frame_rows
from robreward.feedback.preferences.teachers import make_teacher


def new_reward_model(config: PrefsConfig, featurizer: Featurizer) -> PreferenceReward:
    """The untrained reward ensemble of a run: on state features, or on frames (reward_inputs image|both)."""
    if config.reward_inputs == "state":
        return PreferenceReward(featurizer=featurizer, config=config.ensemble, name="pref", device=config.device)
    image = ImageInputs(config.reward_inputs, int(config.image_size), config.image_camera, config.image_encoder)
    return ImagePreferenceReward(featurizer, image, config=config.ensemble, name="pref", device=config.device)


def attach_bank(model, spec) -> Optional[FrameBank]:
    """An image model's frame bank (rendering its size and camera); None for a state model."""
    if not isinstance(model, ImagePreferenceReward):
        return None
    model.bank = FrameBank(spec, model.image.image_size, model.image.camera or None)
    return model.bank


def reward_metrics(model: PreferenceReward, spec, heldout: Rollout, teacher, num_pairs: int, length: int,
                   rng: np.random.Generator) -> dict:
    """Held-out preference accuracy (vs the teacher's and the oracle's labels) and EPIC distance
    to the hand reward, over a held-out rollout. teacher None (a person): the oracle's only."""
    from robreward.rewards.base import HandReward

    out = {"heldout_pairs": 0, "heldout_accuracy": None, "heldout_accuracy_true": None, "epic_distance": None}
    offset = _add_frames(model, heldout)  # image inputs: the held-out frames, rendered as they are read
    try:
        segments = _segments(heldout, length, model.featurizer, rng)
        pairs = sample_pairs(segments if offset is None else with_frame_rows(segments, offset, heldout.num_envs),
                             num_pairs, rng)
    except ValueError as err:  # no segment fits: say so in the metrics rather than stop the run
        out["note"] = str(err)
        return out
    out["heldout_pairs"] = pairs.size
    for key, labeler in (("heldout_accuracy", teacher), ("heldout_accuracy_true", make_teacher("oracle"))):
        if labeler is None:
            continue
        try:
            out[key] = preference_accuracy(model, pairs, labeler.label(pairs, rng))
        except ValueError:  # every held-out label a tie or a skip
            pass
    try:
        if offset is None:
            out["epic_distance"] = epic_distance(model, HandReward(spec), Coverage.from_rollout(heldout), rng=rng)
        else:  # the same number for a reward of the held-out frames (image_epic_distance)
            out["epic_distance"] = image_epic_distance(model, heldout, offset, rng)
    except ValueError as err:  # e.g. a constant reward on the coverage
        out["epic_note"] = str(err)
    return out
