"""Preference accuracy against hand-computed values; EPIC distance invariances on reach rollouts."""

import math

import numpy as np
import pytest
import torch

import robreward
from robreward.feedback.preferences import (
    Coverage,
    EnsembleConfig,
    Featurizer,
    PreferenceReward,
    TransitionReward,
    accuracy_from_returns,
    collect_rollout,
    epic_distance,
    pearson_distance,
)
from robreward.rewards import HandReward

GAMMA = 0.99


def test_accuracy_from_returns_hand_computed():
    r0 = torch.tensor([1.0, 2.0, 3.0, 0.0, 5.0, 1.0])
    r1 = torch.tensor([2.0, 1.0, 3.0, 1.0, 0.0, 9.0])
    # pair 2 is a predicted tie (counts 1/2); pair 4 is labeled equal and pair 5 skipped (not scored)
    labels = [1.0, 1.0, 0.0, 1.0, 0.5, None]
    assert accuracy_from_returns(r0, r1, labels) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    with pytest.raises(ValueError, match="no strict preferences to score"):
        accuracy_from_returns(r0[:2], r1[:2], [0.5, None])


def test_pearson_distance_hand_computed():
    x = torch.tensor([0.0, 1.0, 2.0, 5.0])
    assert pearson_distance(x, 3 * x + 1) == pytest.approx(0.0, abs=1e-7)
    assert pearson_distance(x, -x) == pytest.approx(1.0)
    orthogonal = pearson_distance(torch.tensor([1.0, 0, -1, 0]), torch.tensor([0.0, 1, 0, -1]))
    assert orthogonal == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match="the second reward is constant"):
        pearson_distance(x, torch.ones(4))


@pytest.fixture(scope="module")
def reach():
    env = robreward.make("reach", num_envs=8, seed=0)
    roll, _ = collect_rollout(env, None, 120, seed=0)  # random actions, 50-step episodes
    return env.spec, roll, Coverage.from_rollout(roll)


def test_coverage_transitions_stay_inside_episodes(reach):
    _, roll, cov = reach
    n = roll.num_envs
    assert torch.equal(cov.prev, cov.next - n)  # s is the same world's previous step
    steps = cov.next // n
    worlds = cov.next % n
    assert not roll.dones[steps - 1, worlds].any()  # never across a reset
    assert cov.num_transitions == 119 * 8 - int(roll.dones[:-1].sum())


def potential(s):
    return -10.0 * torch.linalg.norm(s.ee_to_goal, dim=-1) + 5.0 * s.ee_pos[:, 2]


def test_epic_is_zero_for_equivalent_rewards(reach):
    spec, _, cov = reach
    hand = HandReward(spec)
    rng = np.random.default_rng(0)
    assert epic_distance(hand, hand, cov, rng=rng) == pytest.approx(0.0, abs=1e-6)
    affine = lambda s, a: (3.0 * hand(s, a)[0] - 2.0, {})  # positive scale and a constant  # noqa: E731
    assert epic_distance(hand, affine, cov, rng=rng) < 1e-3
    # positive scale + potential shaping + constant: canonicalization removes the shaping
    shaped = TransitionReward(lambda s, a, s2: 2.0 * hand(s2, a)[0] + GAMMA * potential(s2) - potential(s) + 1.0)
    assert epic_distance(hand, shaped, cov, gamma=GAMMA, num_samples=64, rng=rng) < 1e-3
    assert epic_distance(shaped, hand, cov, gamma=GAMMA, num_samples=64, rng=rng) < 1e-3
    # ...which a plain correlation of the raw rewards does not
    s, a, s2 = cov.states.index(cov.prev), cov.actions[cov.next], cov.states.index(cov.next)
    assert pearson_distance(hand(s2, a)[0], shaped(s, a, s2)) > 0.1


def test_epic_is_large_for_unrelated_rewards(reach):
    spec, _, cov = reach
    hand = HandReward(spec)
    rng = np.random.default_rng(1)
    unrelated = lambda s, a: (s.ee_vel[:, 0] + a[:, 3], {})  # noqa: E731
    assert epic_distance(hand, unrelated, cov, rng=rng) > 0.3  # measured 0.71
    shaping_only = TransitionReward(lambda s, a, s2: GAMMA * potential(s2) - potential(s))
    assert epic_distance(hand, shaping_only, cov, gamma=GAMMA, num_samples=64, rng=rng) > 0.3  # measured 0.65
    negated = lambda s, a: (-hand(s, a)[0], {})  # noqa: E731
    assert epic_distance(hand, negated, cov, rng=rng) == pytest.approx(1.0, abs=1e-6)


def test_epic_of_a_learned_reward(reach):
    spec, _, cov = reach
    model = PreferenceReward(featurizer=Featurizer(spec), config=EnsembleConfig(hidden=(16,), seed=0))
    distance = epic_distance(model, HandReward(spec), cov, rng=np.random.default_rng(0))
    assert 0.0 <= distance <= 1.0
    scaled = lambda s, a: (2.0 * model(s, a)[0] + 3.0, {})  # noqa: E731
    assert epic_distance(model, scaled, cov, rng=np.random.default_rng(0)) < 1e-3


def test_epic_bad_input(reach):
    spec, _, cov = reach
    hand = HandReward(spec)
    constant = lambda s, a: (torch.zeros(a.shape[0]), {})  # noqa: E731
    with pytest.raises(ValueError, match="the second reward is constant on the coverage transitions"):
        epic_distance(hand, constant, cov, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="pass rng"):
        epic_distance(hand, hand, cov, max_transitions=100)
    with pytest.raises(ValueError, match="pass rng"):
        epic_distance(hand, TransitionReward(lambda s, a, s2: hand(s2, a)[0]), cov)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        epic_distance(hand, hand, cov, gamma=1.5)
    # sampled transitions (max_transitions) give the same answer for equivalent rewards
    affine = lambda s, a: (2.0 * hand(s, a)[0] + 1.0, {})  # noqa: E731
    assert epic_distance(hand, affine, cov, max_transitions=200, rng=np.random.default_rng(0)) < 1e-3
