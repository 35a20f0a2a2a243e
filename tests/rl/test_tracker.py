"""runner.EpisodeTracker: episode means per update, and its grouped form (the batched trainer's K
candidates in one tracker) equal to K separate trackers fed their slices."""

import pytest
import torch

from robreward.rl.runner import EpisodeTracker

K, M, STEPS = 3, 4, 40


def random_steps(seed: int = 0):
    """STEPS env steps of K*M worlds: rewards, hand reward and terms, success, fitness, done masks
    (episodes of different lengths per world), and each group's own reward terms."""
    g = torch.Generator().manual_seed(seed)
    for t in range(STEPS):
        n = K * M
        done = torch.rand(n, generator=g) < 0.15
        info = {"hand_reward": torch.randn(n, generator=g), "success": torch.rand(n, generator=g) < 0.3,
                "fitness": torch.rand(n, generator=g),
                "hand_terms": {"near": torch.randn(n, generator=g), "ctrl": torch.randn(n, generator=g)}}
        own = [{f"term{k}_{j}": torch.randn(M, generator=g) for j in range(k + 1)} for k in range(K)]
        yield torch.randn(n, generator=g), info, done, own


def test_grouped_tracker_equals_one_tracker_per_group():
    grouped = EpisodeTracker(K * M, "cpu", groups=K)
    separate = [EpisodeTracker(M, "cpu") for _ in range(K)]
    checked = 0
    for t, (reward, info, done, own) in enumerate(random_steps()):
        done_f = grouped.step(reward, info, done, reward_terms=False)
        for k in range(K):
            rows = slice(k * M, (k + 1) * M)
            grouped.add_terms(k, own[k], done_f)
            sliced = {"hand_reward": info["hand_reward"][rows], "success": info["success"][rows],
                      "fitness": info["fitness"][rows], "reward_terms": own[k],
                      "hand_terms": {name: v[rows] for name, v in info["hand_terms"].items()}}
            separate[k].step(reward[rows], sliced, done[rows])
        if t % 8 == 7:  # an update: means per group
            got, want = grouped.collect_groups(), [tracker.collect() for tracker in separate]
            for g_stats, s_stats in zip(got, want):
                assert list(g_stats) == list(s_stats)  # same keys, same order (progress.csv, tensorboard)
                for key in s_stats:
                    assert g_stats[key] == pytest.approx(s_stats[key], rel=1e-5, abs=1e-6), key
                assert s_stats["episodes"] > 0
                checked += 1
    assert checked == K * STEPS // 8


def test_means_persist_until_an_episode_ends_and_bad_groups_are_refused():
    tracker = EpisodeTracker(2, "cpu", track_hand_terms=False)
    info = {"hand_reward": torch.zeros(2), "success": torch.tensor([True, False]), "fitness": torch.ones(2),
            "reward_terms": {"r": torch.ones(2)}, "hand_terms": {"h": torch.ones(2)}}
    tracker.step(torch.tensor([1.0, 2.0]), info, torch.tensor([False, False]))
    assert tracker.collect() == {}
    tracker.step(torch.tensor([1.0, 2.0]), info, torch.tensor([True, False]))
    first = tracker.collect()
    assert first == {"return": 2.0, "hand_return": 0.0, "length": 2.0, "success": 1.0, "terms/r": 2.0,
                     "fitness_mean": 1.0, "episodes": 1.0}
    tracker.step(torch.tensor([1.0, 2.0]), info, torch.tensor([False, False]))
    assert tracker.collect() == first  # no episode ended since: the previous means
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        EpisodeTracker(8, "cpu", groups=3)
    with pytest.raises(ValueError, match="use collect_groups"):
        EpisodeTracker(8, "cpu", groups=2).collect()


def test_fitness_over_the_nominal_horizon():
    """A task whose episode fitness is a share of the whole nominal episode (humanoid-kneel-v2: a fall ends
    it early): fitness_mean is the fitness sum over episodes x horizon, not over the steps they ran."""
    per_step, over = EpisodeTracker(2, "cpu"), EpisodeTracker(2, "cpu", horizon=10)
    info = {"hand_reward": torch.zeros(2), "success": torch.tensor([True, True]), "fitness": torch.ones(2),
            "reward_terms": {}, "hand_terms": {}}
    for t in range(4):  # world 0 ends after 4 steps (a fall), world 1 runs on
        done = torch.tensor([t == 3, False])
        for tracker in (per_step, over):
            tracker.step(torch.ones(2), info, done)
    assert per_step.collect()["fitness_mean"] == 1.0
    assert over.collect()["fitness_mean"] == pytest.approx(0.4)  # 4 steps in the pose of a 10-step episode
