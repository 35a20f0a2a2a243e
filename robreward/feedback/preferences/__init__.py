"""Preference-based reward learning (PEBBLE / B-Pref): simulated teachers, segment pairs from
rollouts, query selection, a Bradley-Terry reward ensemble that satisfies the Reward protocol,
and its metrics (held-out preference accuracy, EPIC distance to the hand reward).

    rollout, obs = collect_rollout(env, policy, num_steps)
    model = PreferenceReward(featurizer=Featurizer(env.spec))
    segments = cut_segments(rollout, 50, model.featurizer, num=2000, rng=rng)
    queries = choose_queries(segments, 64, "disagreement", rng, model=model)
    labels = make_teacher("mistake:0.1").label(queries, rng)
    model.fit(queries, labels)

The whole loop (PEBBLE-style, one PPO policy on a reward that improves between rounds):

    summary = train_preferences(PrefsConfig(task="reach", queries=200, steps=150_000, out="runs/pref-reach"))

``pref:RUN`` of ``--reward`` (the reward a preference run learned) is a reward source this package
provides: it registers it here, on import, and declares it as the entry point
``robreward.reward_sources: pref`` (pyproject.toml), through which robreward.rewards finds it without
importing robreward.feedback (see robreward/rewards/spec.py).
"""

from pathlib import Path

from robreward.rewards.spec import RewardSource, register_reward_source


def _load_preference_reward(arg: str, spec):
    from robreward.feedback.preferences.model import load_preference_reward

    return load_preference_reward(arg, spec)


def _normalize_run(arg: str) -> str:
    path = Path(arg)
    if not path.exists():
        raise FileNotFoundError(f"pref:{arg}: {arg!r} does not exist; pass pref:RUN_DIR (the --out of "
                                "`robreward prefs train`) or pref:MODEL.pt")
    return str(path.resolve())


PREFERENCE_REWARD = RewardSource(
    kind="pref", form="pref:RUN", help="the reward learned by `robreward prefs train --out RUN`, or pref:MODEL.pt",
    load=_load_preference_reward, normalize=_normalize_run)
register_reward_source(PREFERENCE_REWARD)

from robreward.feedback.preferences.evaluation import evaluate_preferences
from robreward.feedback.preferences.image_model import FrameBank, ImageInputs, ImagePreferenceReward
from robreward.feedback.preferences.loop import (
    PrefsConfig,
    StateEntropyReward,
    load_prefs_config,
    train_preferences,
)
from robreward.feedback.preferences.metrics import (
    Coverage,
    TransitionReward,
    accuracy_from_returns,
    canonical_rewards,
    epic_distance,
    pearson_distance,
    preference_accuracy,
)
from robreward.feedback.preferences.model import (
    EnsembleConfig,
    FeatureSpec,
    Featurizer,
    FitReport,
    PreferenceReward,
    labels_to_targets,
)
from robreward.feedback.preferences.segments import (
    QUERY_METHODS,
    SCHEDULES,
    Rollout,
    SegmentBatch,
    SegmentPairs,
    cat_pairs,
    choose_queries,
    collect_rollout,
    cut_segments,
    query_schedule,
    query_scores,
    sample_pairs,
    segment_candidates,
    segment_episodes,
)
from robreward.feedback.preferences.teachers import (
    EQUAL,
    SKIP,
    Label,
    SimTeacher,
    bpref_reference_return,
    make_teacher,
)

__all__ = [
    "PREFERENCE_REWARD", "EQUAL", "QUERY_METHODS", "SCHEDULES", "SKIP", "Coverage", "EnsembleConfig", "FeatureSpec", "Featurizer",
    "FitReport", "FrameBank", "ImageInputs", "ImagePreferenceReward", "Label", "PreferenceReward", "PrefsConfig", "Rollout", "SegmentBatch", "SegmentPairs", "SimTeacher",
    "TransitionReward", "accuracy_from_returns", "bpref_reference_return", "canonical_rewards", "cat_pairs",
    "choose_queries", "collect_rollout", "cut_segments", "epic_distance", "labels_to_targets", "make_teacher",
    "pearson_distance", "preference_accuracy", "query_schedule", "query_scores", "sample_pairs",
    "segment_candidates", "segment_episodes", "StateEntropyReward", "evaluate_preferences", "load_prefs_config",
    "train_preferences",
]
