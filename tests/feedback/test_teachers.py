"""B-Pref's simulated teachers against their definitions on hand-made returns."""

import math

import numpy as np
import pytest
import torch

from robreward.feedback.preferences import SegmentBatch, SegmentPairs, SimTeacher, bpref_reference_return, make_teacher


def returns_to_rewards(r0, r1, horizon=4):
    """Segments whose whole return sits on the first step."""
    a = np.zeros((len(r0), horizon))
    b = np.zeros((len(r1), horizon))
    a[:, 0], b[:, 0] = r0, r1
    return a, b


def test_oracle_exact_labels():
    r0, r1 = returns_to_rewards([1.0, 0.0, 3.0, -2.0], [0.0, 0.5, 3.0, -1.0])
    assert make_teacher("oracle")(r0, r1) == [0.0, 1.0, 0.5, 1.0]  # an exact tie is 0.5 (sigmoid(0))
    # per-step rewards are summed: [1, 1] (2) beats [3, -2] (1)
    assert make_teacher("oracle")(np.array([[3.0, -2.0]]), np.array([[1.0, 1.0]])) == [1.0]
    # torch input, no rng needed for a deterministic teacher
    assert make_teacher("oracle")(torch.tensor(r0), torch.tensor(r1)) == [0.0, 1.0, 0.5, 1.0]


def test_mistake_flips_with_probability_eps_not_eps_squared():
    n = 20_000
    rng = np.random.default_rng(0)
    r0 = rng.normal(size=(n, 5))
    r1 = rng.normal(size=(n, 5))
    oracle = np.array(make_teacher("oracle")(r0, r1))
    for eps in (0.1, 0.3):
        labels = np.array(make_teacher(f"mistake:{eps}")(r0, r1, np.random.default_rng(1)))
        assert set(np.unique(labels)) <= {0.0, 1.0}
        flip_rate = float(np.mean(labels != oracle))
        assert abs(flip_rate - eps) < 0.01, (eps, flip_rate)  # 5 binomial std; eps^2 would be far off
    assert make_teacher("mistake:1")(r0[:50], r1[:50], 0) == [1.0 - y for y in oracle[:50]]
    assert make_teacher("mistake:0")(r0[:50], r1[:50], 0) == list(oracle[:50])


def test_stochastic_matches_sigmoid():
    diffs = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    per = 8_000
    r1 = np.repeat(diffs, per)[:, None]
    r0 = np.zeros_like(r1)
    for beta in (1.0, 0.5):
        labels = np.array(make_teacher(f"stochastic:{beta}")(r0, r1, np.random.default_rng(2))).reshape(len(diffs), per)
        expected = 1.0 / (1.0 + np.exp(-beta * diffs))
        np.testing.assert_allclose(labels.mean(1), expected, atol=0.02)  # > 3.5 binomial std
    # beta -> inf is the oracle
    big = make_teacher("stochastic:1e6")(r0[::per], r1[::per], np.random.default_rng(3))
    assert big[:2] == [0.0, 0.0] and big[3:] == [1.0, 1.0]


def test_rng_kinds_are_reproducible():
    rng = np.random.default_rng(0)
    r0, r1 = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    teacher = make_teacher("stochastic:1.0,mistake:0.2")
    assert teacher(r0, r1, 7) == teacher(r0, r1, np.random.default_rng(7))
    a = teacher(r0, r1, torch.Generator().manual_seed(5))
    assert a == teacher(r0, r1, torch.Generator().manual_seed(5))
    with pytest.raises(ValueError, match="is random: pass rng"):
        teacher(r0, r1)
    with pytest.raises(TypeError, match="rng must be"):
        teacher(r0, r1, "seed")


def test_skip_threshold_relative_to_reference_return():
    r0, r1 = returns_to_rewards([1.0, 6.0, -3.0, 4.9], [4.0, 0.0, 2.0, 4.0])
    teacher = make_teacher("skip:0.5")
    assert teacher.thresholds(10.0) == (5.0, 0.0)
    # delta_skip = 0.5 * 10 = 5: skipped when both returns are below 5
    assert teacher(r0, r1, reference_return=10.0) == [None, 0.0, None, None]
    # default reference: the batch's mean segment return (18.9 / 8 = 2.36): delta = 1.18, no pair below
    assert teacher(r0, r1) == [1.0, 0.0, 1.0, 0.0]
    # absolute threshold
    assert make_teacher("skip@2")(r0, r1) == [1.0, 0.0, 1.0, 0.0]
    assert make_teacher("skip@4.5")(r0, r1) == [None, 0.0, None, 0.0]
    # a non-positive threshold switches the rule off (as in B-Pref)
    assert teacher(r0, r1, reference_return=-10.0) == make_teacher("oracle")(r0, r1)


def test_equal_threshold_gives_half_and_overrides_mistakes():
    r0, r1 = returns_to_rewards([1.0, 1.0, 5.0, 2.0], [1.5, 3.0, 4.9, 2.0])
    teacher = make_teacher("equal:0.1")
    assert teacher.thresholds(-10.0) == (0.0, 1.0)  # |reference| sets the equal threshold
    assert teacher(r0, r1, reference_return=10.0) == [0.5, 1.0, 0.5, 0.5]
    # a teacher that always errs still calls near-ties equal
    assert make_teacher("equal:0.1,mistake:1")(r0, r1, 0, reference_return=10.0) == [0.5, 0.0, 0.5, 0.5]
    assert make_teacher("equal@0.05")(r0, r1) == [1.0, 1.0, 0.0, 0.5]


def test_myopic_weighs_later_steps_more():
    r0 = np.array([[1.0, 0.0, 0.0, 0.0]])  # early reward, return 1
    r1 = np.array([[0.0, 0.0, 0.0, 0.8]])  # late reward, return 0.8
    assert make_teacher("oracle")(r0, r1) == [0.0]
    # gamma = 0.5: R_gamma = sum_t 0.5^(3 - t) r_t -> 0.125 vs 0.8
    assert make_teacher("myopic:0.5")(r0, r1) == [1.0]
    assert make_teacher("myopic:0.99")(r0, r1) == [0.0]  # 0.970 vs 0.8
    # the discount is exactly gamma^(H-1-t): a tie when 0.5^3 * r0 == r1 at t = H - 1
    assert make_teacher("myopic:0.5")(np.array([[8.0, 0, 0, 0]]), np.array([[0, 0, 0, 1.0]])) == [0.5]
    # skip and equal read undiscounted returns (B-Pref)
    assert make_teacher("myopic:0.5,equal@0.3")(r0, r1) == [0.5]


def test_spec_parsing_and_composition():
    assert make_teacher("oracle") == SimTeacher()
    t = make_teacher("stochastic:1.0,myopic:0.9")
    assert (t.beta, t.gamma, t.eps_mistake) == (1.0, 0.9, 0.0)
    t = make_teacher(" Mistake:0.1 , skip:0.2,equal:0.05,myopic:0.95 ")
    assert (t.eps_mistake, t.eps_skip, t.eps_equal, t.gamma, t.beta) == (0.1, 0.2, 0.05, 0.95, math.inf)
    assert make_teacher(t.spec) == t and t.spec == "skip:0.2,equal:0.05,myopic:0.95,mistake:0.1"
    assert make_teacher("oracle,mistake:0.1") == make_teacher("mistake:0.1")
    assert make_teacher("oracle").spec == "oracle" and make_teacher(t) is t
    assert make_teacher("skip@2.5").skip_threshold == 2.5


@pytest.mark.parametrize("spec, message", [
    ("orcale", "unknown teacher 'orcale'.*oracle, stochastic:BETA, mistake:EPS"),
    ("mistake", "needs a value: mistake:EPS"),
    ("mistake:abc", "'abc' is not a number"),
    ("mistake:1.5", r"eps must be in \[0, 1\]"),
    ("stochastic:-1", "beta must be > 0"),
    ("myopic:0", r"gamma must be in \(0, 1\]"),
    ("skip:-0.1", "eps must be a finite number >= 0"),
    ("mistake:0.1,mistake:0.2", "appears twice"),
    ("oracle,stochastic:1", "keep one of them"),
    ("oracle:1", "takes no value"),
    ("myopic@0.9", "only skip and equal take an absolute threshold"),
    ("", "non-empty string"),
    ("human", "labeling web app.*robreward label"),
])
def test_bad_specs_fail_with_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        make_teacher(spec)


def test_shapes_checked_and_pairs_labeled():
    with pytest.raises(ValueError, match=r"same shape \[B, H\]"):
        make_teacher("oracle")(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"per-step rewards \[B, H\]"):
        make_teacher("oracle")(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        make_teacher("oracle")(np.full((1, 2), np.nan), np.zeros((1, 2)))
    assert make_teacher("mistake:0.5")(np.zeros((0, 3)), np.zeros((0, 3)), 0) == []
    feats = torch.zeros(2, 3, 1)
    pairs = SegmentPairs(SegmentBatch.from_features(feats, torch.tensor([[1.0, 0, 0], [0, 0, 0]])),
                         SegmentBatch.from_features(feats, torch.tensor([[0.0, 0, 0], [0, 1, 0]])))
    assert make_teacher("oracle").label(pairs) == [0.0, 1.0]


def test_bpref_reference_return():
    # mean episode return 200 over T = 1000 steps, segments of 50: 10 per segment
    assert bpref_reference_return([100.0, 300.0], 50, 1000) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="at least one episode"):
        bpref_reference_return([], 50, 1000)
