"""Demonstrations as free preferences (demo_prefs.py): demo segments in the reward model's features match
what the env computes along the demo, the free pairs prefer the demo, the loop trains on them outside the
query budget (saved per round, kept on resume), and bad demo files are refused before a run is written."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import robreward
from robreward.demos.format import DemoDataset
from robreward.envs.registry import get_task
from robreward.feedback.preferences.demo_prefs import DemoSegments
from robreward.feedback.preferences.labeled import LabeledPairs
from robreward.feedback.preferences.loop import train_preferences
from robreward.feedback.preferences.model import FeatureSpec, Featurizer, PreferenceReward
from robreward.feedback.preferences.segments import SegmentBatch
from tests.feedback.test_prefs_loop import tiny

ROOT = Path(__file__).resolve().parents[2]
REACH_EXPERT = ROOT / "demos" / "reach-expert.h5"


def test_demo_segments_are_the_features_of_the_states_after_each_step():
    spec = get_task("reach")
    featurizer = Featurizer(spec, FeatureSpec(("obs-norms",), True))
    demos = DemoSegments.load([REACH_EXPERT], spec, featurizer, length=10)
    assert demos.episodes == 20 and demos.segments.length == 10
    assert demos.segments.size == 20 * 9  # 50-step episodes, windows every 5 steps: starts 0, 5, ..., 40
    # the first window of episode 0, against stepping the env through the demo's actions from its initial state
    with DemoDataset(REACH_EXPERT) as ds:
        ep = ds.episode(0)
    env = robreward.make("reach", num_envs=1, seed=0)
    env.reset(seed=0)
    env.set_state(np.asarray(ep["initial_state"])[None])
    expected, rewards = [], []
    for t in range(10):
        action = torch.as_tensor(ep["actions"][t][None], dtype=torch.float32)
        _, reward, *_ = env.step(action)
        expected.append(featurizer(env.state, action)[0])
        rewards.append(float(reward[0]))
    assert torch.allclose(demos.segments.features[0], torch.stack(expected), atol=1e-4)
    assert demos.segments.rewards[0].tolist() == pytest.approx(rewards, abs=1e-4)


def test_free_pairs_prefer_the_demo_on_either_side():
    spec = get_task("reach")
    featurizer = Featurizer(spec, FeatureSpec(("obs-norms",), True))
    demos = DemoSegments.load([REACH_EXPERT], spec, featurizer, length=10)
    policy = SegmentBatch.from_features(torch.full((7, 10, featurizer.dim), 99.0))
    pairs, labels = demos.pairs(policy, 40, np.random.default_rng(0))
    assert pairs.size == 40 and 5 < sum(labels) < 35  # the demo on both sides
    second_is_policy = (pairs.second.features == 99.0).all(-1).all(-1)
    first_is_policy = (pairs.first.features == 99.0).all(-1).all(-1)
    assert (first_is_policy ^ second_is_policy).all()
    assert [1.0 if p else 0.0 for p in first_is_policy.tolist()] == labels  # P(second preferred): the demo


def test_the_loop_adds_free_demo_pairs_outside_the_budget_and_keeps_them_on_resume(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = tiny(out, demos=(str(REACH_EXPERT),), demo_pairs=12, features=("obs-norms",))
    fits = []
    real_fit = PreferenceReward.fit
    monkeypatch.setattr(PreferenceReward, "fit", lambda self, pairs, labels, **k: fits.append(len(labels)) or
                        real_fit(self, pairs, labels, **k))
    summary = train_preferences(config)
    assert summary["queries"] == 30  # the budget counts the teacher's queries only
    assert fits == [10 + 12, 20 + 24, 30 + 36]  # every round trains on its labels and the free pairs so far
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["demo_pairs"] for r in metrics["rounds"]] == [12, 24, 36]
    demo = LabeledPairs.load(out / "demo_labels.npz", 3)
    assert demo.size == 36 and set(demo.labels) == {0.0, 1.0}
    with np.load(out / "labels.npz") as labels:
        assert len(labels["labels"]) == 30  # the teacher's file holds no demo pair


def test_demo_pairs_resume_with_the_rounds_done(tmp_path, monkeypatch):
    config = tiny(tmp_path / "run", demos=(str(REACH_EXPERT),), demo_pairs=5)
    saves = []
    real_save = LabeledPairs.save

    def crash_on_second_round(self, path):
        real_save(self, path)
        if Path(path).name == "labels.npz":
            saves.append(1)
            if len(saves) == 2:
                raise RuntimeError("killed")

    monkeypatch.setattr(LabeledPairs, "save", crash_on_second_round)
    with pytest.raises(RuntimeError, match="killed"):
        train_preferences(config)
    monkeypatch.setattr(LabeledPairs, "save", real_save)
    train_preferences(config, resume=True)
    demo = LabeledPairs.load(tmp_path / "run" / "demo_labels.npz", 3)
    assert demo.rounds == [0] * 5 + [1] * 5 + [2] * 5


def test_bad_demo_files_are_refused_before_the_run_is_written(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        train_preferences(tiny(tmp_path / "a", demos=(str(tmp_path / "none.h5"),)))
    with pytest.raises(ValueError, match="not 'reach'"):
        train_preferences(tiny(tmp_path / "b", demos=(str(ROOT / "demos" / "push-expert.h5"),)))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    from robreward.configs import ConfigError

    with pytest.raises(ConfigError, match="state reward model"):
        tiny(tmp_path / "c", demos=(str(REACH_EXPERT),), reward_inputs="image")


def test_a_dataset_without_a_successful_episode_is_refused(tmp_path):
    import shutil

    import h5py

    failed = tmp_path / "reach-failed.h5"
    shutil.copy(REACH_EXPERT, failed)
    with h5py.File(failed, "r+") as f:
        for episode in f["episodes"].values():
            episode["success"][...] = False
    with pytest.raises(ValueError, match="no successful episode in .*reach-failed.h5.*--source expert"):
        train_preferences(tiny(tmp_path / "run", demos=(str(failed),)))
    assert not (tmp_path / "run").exists()
