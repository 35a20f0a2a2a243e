"""Metrics of a learned reward: held-out preference accuracy, and its distance to the hand reward.

    preference_accuracy(model, held_out_pairs, labels)            -> fraction in [0, 1]
    coverage = Coverage.from_rollout(rollout)
    epic_distance(model, HandReward(spec), coverage, rng=rng)     -> distance in [0, 1]

The reward distances (EPIC, DARD, STARC, their canonicalisations and the Coverage of sampled
transitions) live in the rewards layer, robreward.rewards.distance (its docstring says what is
sampled and approximated); they are re-exported here for the preference loop and its users.
"""

from __future__ import annotations

from typing import Sequence

import torch

from robreward.feedback.preferences.model import PreferenceReward, labels_to_targets
from robreward.feedback.preferences.segments import SegmentPairs
from robreward.rewards.distance import (DEFAULT_GAMMA, DEFAULT_MAX_TRANSITIONS, DEFAULT_SAMPLES, Coverage,
                                        RewardLike, TransitionReward, canonical_rewards, dard_distance,
                                        epic_distance, pearson_distance, reward_distances, starc_distance)

Tensor = torch.Tensor


# -- preference accuracy -------------------------------------------------------------------
def accuracy_from_returns(returns0: Tensor, returns1: Tensor, labels: Sequence) -> float:
    """Fraction of answered, non-tie labels that the predicted returns order the same way
    (a predicted tie counts one half). Labels: P(second preferred), None = skipped."""
    keep, targets = labels_to_targets(labels)
    hard = (targets == 0) | (targets == 1)
    if not bool(hard.any()):
        raise ValueError("no strict preferences to score: every label is skipped (None) or equal (0.5)")
    diff = (torch.as_tensor(returns1, dtype=torch.float64) - torch.as_tensor(returns0, dtype=torch.float64)).cpu()
    diff, y = diff[keep][hard], targets[hard]
    score = torch.where(diff == 0, torch.full_like(diff, 0.5), ((diff > 0) == (y > 0.5)).double())
    return float(score.mean())


def preference_accuracy(model: PreferenceReward, pairs: SegmentPairs, labels: Sequence) -> float:
    """Held-out preference accuracy of the ensemble-mean P on labeled pairs it was not trained on."""
    if len(labels) != pairs.size:
        raise ValueError(f"got {len(labels)} labels for {pairs.size} pairs: one label per pair")
    with torch.no_grad():
        r0 = model.segment_returns(pairs.first).mean(0)
        r1 = model.segment_returns(pairs.second).mean(0)
    return accuracy_from_returns(r0, r1, labels)


__all__ = ["Coverage", "DEFAULT_GAMMA", "DEFAULT_MAX_TRANSITIONS", "DEFAULT_SAMPLES", "RewardLike",
           "TransitionReward", "accuracy_from_returns", "canonical_rewards", "dard_distance", "epic_distance",
           "pearson_distance", "preference_accuracy", "reward_distances", "starc_distance"]
