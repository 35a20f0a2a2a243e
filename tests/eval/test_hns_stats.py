"""Human-normalized score against hand-computed values; Welch test direction; bootstrap CI."""

import pytest

from robreward.eval.hns import clip_hns, hns, mean_hns
from robreward.eval.stats import better_than_hand, bootstrap_diff_ci, format_p, welch_one_sided


def test_hns_hand_computed():
    # H = 4, S = 1: |H - S| = 3
    assert hns(4.0, 4.0, 1.0).value == pytest.approx(1.0)
    assert hns(1.0, 4.0, 1.0).value == pytest.approx(0.0)
    assert hns(2.5, 4.0, 1.0).value == pytest.approx(0.5)
    assert hns(10.0, 4.0, 1.0).value == pytest.approx(3.0)
    assert hns(-2.0, 4.0, 1.0).value == pytest.approx(-1.0)
    # S above H (sparse better): the denominator is |H - S| = 2, sign follows M - S
    assert hns(1.0, 1.0, 3.0).value == pytest.approx(-1.0)
    # negative fitness scales: H = -1, S = -5: (M - S)/4
    assert hns(-3.0, -1.0, -5.0).value == pytest.approx(0.5)


def test_hns_undefined_when_sparse_solves_the_task():
    # |H - S| = 0.04 < 5% of |H| = 0.05
    score = hns(0.9, 1.0, 0.96)
    assert score.value is None and not score.defined
    assert "5%" in score.reason and "raw fitness" in score.reason
    assert score.fitness == 0.9 and "0.90" in score.format()
    # just over 5%: defined, (M - S) / 0.06
    assert hns(1.0, 1.0, 0.94).value == pytest.approx(1.0)
    # H = S = 0
    assert hns(0.5, 0.0, 0.0).value is None
    # missing references / missing M
    assert "sparse (S)" in hns(0.5, 1.0, None).reason
    assert hns(None, 1.0, 0.0).value is None


def test_eureka_clipping_for_averages():
    assert clip_hns(5.0) == 3.0 and clip_hns(-1.0) == 0.0 and clip_hns(1.2) == 1.2
    # [5 -> 3, -1 -> 0, 0.5, undefined skipped] -> 3.5 / 3
    assert mean_hns([5.0, -1.0, 0.5, None, hns(0.9, 1.0, 0.96)]) == pytest.approx(3.5 / 3)
    assert mean_hns([5.0, -1.0], clip=None) == pytest.approx(2.0)
    assert mean_hns([None]) is None


def test_welch_direction():
    hand = [1.0, 1.1, 0.9, 1.05, 0.95]
    better = [2.0, 2.1, 1.9, 2.05, 1.95]
    res = better_than_hand(better, hand)
    assert res["testable"] and res["significant"] and res["p_value"] < 0.001
    assert res["diff_mean"] == pytest.approx(1.0)
    assert 0.8 < res["ci_low"] < 1.0 < res["ci_high"] < 1.2
    # same distribution -> not significant; one-sided p of an exact tie is 0.5
    same = better_than_hand(hand, hand)
    assert same["testable"] and not same["significant"] and same["p_value"] == pytest.approx(0.5)
    # worse -> p close to 1, not significant
    worse = better_than_hand(hand, better)
    assert not worse["significant"] and worse["p_value"] > 0.99
    # scipy agreement (Welch, one-sided): t and p
    from scipy import stats

    ref = stats.ttest_ind(better, hand, equal_var=False, alternative="greater")
    assert welch_one_sided(better, hand) == pytest.approx((ref.statistic, ref.pvalue))
    assert format_p(res).endswith("*") and format_p(same) == "p=0.500"
    assert format_p(res) == "p<0.001*"


def test_zero_variance_and_not_testable():
    assert welch_one_sided([2.0, 2.0], [1.0, 1.0])[1] == 0.0
    assert welch_one_sided([1.0, 1.0], [1.0, 1.0])[1] == 0.5
    res = better_than_hand([5.0], [1.0, 1.1, 0.9])
    assert not res["testable"] and res["p_value"] is None and res["significant"] is None
    assert "not testable" in res["summary"] and format_p(res) == "not testable"
    assert not better_than_hand([1.0, 2.0], [1.0])["testable"]
    with pytest.raises(ValueError, match=">= 2 values per side"):
        welch_one_sided([1.0], [1.0, 2.0])


def test_bootstrap_ci_is_seeded():
    a, b = [1.0, 2.0, 3.0], [0.0, 0.5, 1.0]
    assert bootstrap_diff_ci(a, b, seed=1) == bootstrap_diff_ci(a, b, seed=1)
    lo, hi = bootstrap_diff_ci(a, b, n_boot=4000)
    assert lo < 1.5 < hi
