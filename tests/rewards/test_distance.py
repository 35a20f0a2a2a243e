"""EPIC, DARD and STARC (robreward.rewards.distance): hand-computed values on a two-state MDP, the
exact value of a small random MDP, and the invariances on reach rollouts."""

import math

import numpy as np
import pytest
import torch

import robreward
from robreward.envs.spec import TaskState
from robreward.rewards import HandReward
from robreward.rewards.distance import (
    Coverage,
    TransitionReward,
    collect_transitions,
    dard_canonical_rewards,
    dard_distance,
    epic_distance,
    lstd_values,
    reward_distances,
    starc_distance,
    starc_from_canonical,
    val_canonical_rewards,
)

GAMMA = 0.99


# -- tabular MDPs: a coverage listing every (s, a) once, one-hot states ------------------------------
def tabular(successor: np.ndarray) -> Coverage:
    """successor[s, a] = s'. Entry 2i of the states is transition i's s, 2i + 1 its s' (with action a)."""
    n, num_actions = successor.shape
    pairs = [(s, a) for s in range(n) for a in range(num_actions)]
    onehot = torch.zeros(2 * len(pairs), n)
    actions = torch.zeros(2 * len(pairs), 1)
    for i, (s, a) in enumerate(pairs):
        onehot[2 * i, s] = 1
        onehot[2 * i + 1, successor[s, a]] = 1
        actions[2 * i + 1, 0] = a
    k = torch.arange(len(pairs))
    return Coverage(TaskState({"onehot": onehot}), actions, 2 * k, 2 * k + 1)


def state_of(st: TaskState) -> torch.Tensor:
    return st["onehot"].argmax(1)


def onehot(st: TaskState) -> torch.Tensor:
    return st["onehot"]


# two states; action 0 stays, action 1 switches; uniform random policy; gamma 1/2
TWO = np.array([[0, 1], [1, 0]])
in_one = TransitionReward(lambda s, a, s2: (state_of(s2) == 1).double())  # R1 = 1[s' = 1]
switch = TransitionReward(lambda s, a, s2: a[:, 0].double())  # R2 = 1[a = switch]


def test_two_state_mdp_hand_computed():
    cov = tabular(TWO)  # transitions (0, stay, 0), (0, switch, 1), (1, stay, 1), (1, switch, 0)
    # R1: V(s) = 1/2 * (0 + 1) + 1/2 V  ->  V = 1 in both states; c = R1 + 1/2 * 1 - 1
    c1 = val_canonical_rewards(in_one, cov, gamma=0.5, features=onehot)
    assert c1.tolist() == pytest.approx([-0.5, 0.5, 0.5, -0.5], abs=1e-6)
    # R2: the same V = 1; c = R2 - 1/2
    c2 = val_canonical_rewards(switch, cov, gamma=0.5, features=onehot)
    assert c2.tolist() == pytest.approx([-0.5, 0.5, -0.5, 0.5], abs=1e-6)
    # orthogonal canonical rewards: sqrt((1 - 0) / 2) for all three distances
    assert starc_distance(in_one, switch, cov, gamma=0.5, features=onehot) == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert epic_distance(in_one, switch, cov, gamma=0.5, rng=np.random.default_rng(0)) == pytest.approx(
        math.sqrt(0.5), abs=0.05)  # EPIC samples its expectations (64 transitions in all)
    assert dard_distance(in_one, switch, cov, gamma=0.5, neighbours=2) == pytest.approx(math.sqrt(0.5), abs=1e-9)
    # DARD: C(R1) = R1 - mean over both actions from s of R1 = R1 - 1/2 (exact: both neighbours share s)
    dard = dard_canonical_rewards(in_one, cov, torch.arange(4), gamma=0.5, neighbours=2)
    assert dard.tolist() == pytest.approx([-0.5, 0.5, 0.5, -0.5], abs=1e-12)
    # R1 + R2: c = [-1, 1, 0, 0]; cos(c1, c) = 0.25 / (0.5 * sqrt(0.5)) = sqrt(1/2): d = sin(pi / 8)
    both = TransitionReward(lambda s, a, s2: in_one(s, a, s2) + switch(s, a, s2))
    assert starc_distance(in_one, both, cov, gamma=0.5, features=onehot) == pytest.approx(math.sin(math.pi / 8),
                                                                                          abs=1e-6)
    # 3 R1 + shaping with Phi = (3, -1) + a constant: distance 0; -R1: distance 1
    phi = torch.tensor([3.0, -1.0], dtype=torch.float64)
    shaped = TransitionReward(lambda s, a, s2: 3 * in_one(s, a, s2) + 0.5 * phi[state_of(s2)] - phi[state_of(s)] + 2)
    negated = TransitionReward(lambda s, a, s2: -in_one(s, a, s2))
    for distance in (lambda x, y: starc_distance(x, y, cov, gamma=0.5, features=onehot),
                     lambda x, y: dard_distance(x, y, cov, gamma=0.5, neighbours=2)):
        assert distance(in_one, shaped) == pytest.approx(0.0, abs=1e-6)
        assert distance(in_one, negated) == pytest.approx(1.0, abs=1e-9)


def test_val_matches_the_exact_value_of_a_random_mdp():
    rng = np.random.default_rng(3)
    n, num_actions, gamma = 4, 3, 0.9
    successor = rng.integers(0, n, size=(n, num_actions))
    table = torch.as_tensor(rng.normal(size=(n, num_actions, n)))
    reward = TransitionReward(lambda s, a, s2: table[state_of(s), a[:, 0].long(), state_of(s2)])
    # exact V of the uniform policy: V = (I - gamma P)^-1 r
    p, r = np.zeros((n, n)), np.zeros(n)
    for s in range(n):
        for a in range(num_actions):
            p[s, successor[s, a]] += 1 / num_actions
            r[s] += float(table[s, a, successor[s, a]]) / num_actions
    exact = np.linalg.solve(np.eye(n) - gamma * p, r)
    cov = tabular(successor)
    rewards = torch.tensor([float(table[s, a, successor[s, a]]) for s in range(n) for a in range(num_actions)],
                           dtype=torch.float64)
    values = lstd_values(onehot(cov.states).double(), cov.prev, cov.next, rewards, gamma)
    assert values[cov.prev].tolist() == pytest.approx(np.repeat(exact, num_actions).tolist(), abs=1e-5)
    want = [float(table[s, a, successor[s, a]]) + gamma * exact[successor[s, a]] - exact[s]
            for s in range(n) for a in range(num_actions)]
    assert val_canonical_rewards(reward, cov, gamma=gamma, features=onehot).tolist() == pytest.approx(want, abs=1e-5)


def test_starc_normalisation_hand_computed():
    x = torch.tensor([1.0, -1.0, 2.0, 0.0])
    assert starc_from_canonical(x, 5 * x) == pytest.approx(0.0, abs=1e-12)
    assert starc_from_canonical(x, -x) == pytest.approx(1.0)
    assert starc_from_canonical(torch.tensor([1.0, 0, 0, 0]), torch.tensor([0.0, 1, 0, 0])) == pytest.approx(
        math.sqrt(0.5))
    # a canonical reward of norm 0 (only shaping and a constant) normalises to 0: half the maximum
    assert starc_from_canonical(torch.zeros(4), x) == pytest.approx(0.5)


# -- reach: sampled transitions ------------------------------------------------------------------
@pytest.fixture(scope="module")
def reach():
    env = robreward.make("reach", num_envs=8, seed=0)
    cov = collect_transitions(env, 120, seed=0)  # random actions, 50-step episodes
    return env.spec, cov


def linear_potential(s):
    return 3.0 * s.ee_pos[:, 0] - 2.0 * s.ee_to_goal[:, 1] + 1.5


def norm_potential(s):
    return -10.0 * torch.linalg.norm(s.ee_to_goal, dim=-1) + 5.0 * s.ee_pos[:, 2]


def test_collect_transitions_stay_inside_episodes(reach):
    _, cov = reach
    assert torch.equal(cov.prev, cov.next - 8)  # s is the same world's previous step
    assert cov.num_transitions == 119 * 8 - 2 * 8  # two resets per world (steps 50 and 100) drop a transition each
    assert int(cov.groups.max()) + 1 == 3 * 8  # episodes: three per world


def test_shaping_and_scale_leave_every_distance_at_zero(reach):
    spec, cov = reach
    hand = HandReward(spec)
    shaped = TransitionReward(lambda s, a, s2: 2.0 * hand(s2, a)[0] + GAMMA * linear_potential(s2)
                              - linear_potential(s) + 1.0)
    out = reward_distances(spec, "hand", shaped, cov, bootstrap=5)
    # Phi linear in the state fields is in the span of the value features: removed up to the LSTD ridge
    # (relative 1e-8) and float64 round-off, which the sqrt of d = sqrt((1 - cos) / 2) magnifies (1.1e-6)
    assert out["starc"] < 1e-5 and out["epic"] < 1e-6 and out["dard"] < 1e-6, out
    assert out["transitions"] == cov.num_transitions and out["episodes"] == 24 and out["notes"] == {}
    # a potential outside the features' span is removed as far as the value fit reaches (measured 0.014)
    nonlinear = TransitionReward(lambda s, a, s2: hand(s2, a)[0] + GAMMA * norm_potential(s2) - norm_potential(s))
    assert starc_distance(hand, nonlinear, cov) < 0.05
    assert dard_distance(hand, nonlinear, cov) < 1e-6
    # ...while the raw rewards are far apart (the shaping dominates)
    assert starc_distance(hand, TransitionReward(lambda s, a, s2: GAMMA * norm_potential(s2) - norm_potential(s)),
                          cov) > 0.5


def test_negation_is_the_maximum_and_unrelated_rewards_are_far(reach):
    spec, cov = reach
    negated = lambda s, a: (-HandReward(spec)(s, a)[0], {})  # noqa: E731
    out = reward_distances(spec, "hand", negated, cov, bootstrap=0)
    assert [out[m] for m in ("epic", "dard", "starc")] == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    assert out["epic_ci"] is None
    unrelated = lambda s, a: (s.ee_vel[:, 0] + a[:, 3], {})  # noqa: E731
    out = reward_distances(spec, "hand", unrelated, cov, bootstrap=30, seed=1)
    for metric in ("epic", "dard"):  # measured 0.71, 0.72
        lo, hi = out[f"{metric}_ci"]
        assert 0.6 < out[metric] < 0.8 and lo <= out[metric] <= hi and hi - lo < 0.1, (metric, out)
    # STARC's interval includes the value fit's error (LSTD, gamma 0.99): wide on 24 episodes
    # (measured 0.19, interval [0.06, 0.88]); clear of 0 all the same
    lo, hi = out["starc_ci"]
    assert 0.1 < out["starc"] < 0.9 and lo <= out["starc"] <= hi and lo > 0.02, out


def test_reward_specs_and_an_undefined_distance(reach):
    spec, cov = reach
    out = reward_distances(spec, "hand", "sparse", cov, bootstrap=0)  # measured 0.58, 0.45, 0.64
    assert all(0.2 < out[m] < 0.9 for m in ("epic", "dard", "starc")), out
    constant = lambda s, a: (torch.full((a.shape[0],), 2.0), {})  # noqa: E731
    out = reward_distances(spec, "hand", constant, cov, bootstrap=10)
    assert out["epic"] is None and out["dard"] is None and out["epic_ci"] is None
    assert "the second reward is constant on the coverage transitions" in out["notes"]["epic"]
    assert out["starc"] == pytest.approx(0.5, abs=1e-6)  # a constant canonicalises to 0 under STARC


def test_distance_bad_input(reach):
    spec, cov = reach
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        reward_distances(spec, "hand", "hand", cov, gamma=2.0)
    with pytest.raises(ValueError, match="unknown reward 'hnad'"):
        reward_distances(spec, "hand", "hnad", cov)
    with pytest.raises(ValueError, match="bootstrap must be >= 0 and confidence in"):
        reward_distances(spec, "hand", "hand", cov, confidence=1.5)
    with pytest.raises(ValueError, match="value features must be"):
        starc_distance("x", "y", cov, features=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="num_steps must be an integer >= 2"):
        collect_transitions(None, 1)
    nan = lambda s, a: (torch.full((a.shape[0],), float("nan")), {})  # noqa: E731
    with pytest.raises(ValueError, match="is not finite"):
        reward_distances(spec, "hand", nan, cov)
