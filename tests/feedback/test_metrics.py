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


# -- prefs eval: distances to hand and the label-efficiency plot ------------------------------------
def prefs_result(teacher, queries, success, task="reach"):
    """The fields of a prefs_eval.json that the label-efficiency plot reads."""
    return {"task": task, "teacher": teacher, "queries_used": queries,
            "policy": {"success_rate": success, "return_mean": 10.0 * success, "fitness_mean": success},
            "baseline": {"success_rate": 1.0, "return_mean": 90.0, "fitness_mean": 0.9},
            "sparse_baseline": {"success_rate": 0.2, "return_mean": 30.0, "fitness_mean": 0.3}}


def test_label_efficiency_groups_runs_by_teacher_and_budget(tmp_path):
    from robreward.feedback.preferences.evaluation import label_efficiency, plot_label_efficiency

    results = [prefs_result("oracle", 50, 0.2), prefs_result("oracle", 50, 0.6), prefs_result("oracle", 200, 0.9),
               prefs_result("mistake:0.1", 200, 0.5)]
    curves = label_efficiency(results)
    assert curves["teachers"]["oracle"] == [{"queries": 50, "mean": pytest.approx(0.4), "std": pytest.approx(0.2),
                                             "runs": 2},
                                            {"queries": 200, "mean": 0.9, "std": 0.0, "runs": 1}]
    assert list(curves["teachers"]) == ["mistake:0.1", "oracle"]
    assert (curves["hand"], curves["sparse"]) == (1.0, 0.2)
    assert label_efficiency(results, "return_mean")["sparse"] == 30.0
    png = tmp_path / "le.png"
    plot_label_efficiency(results, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="the runs are of several tasks"):
        label_efficiency(results + [prefs_result("oracle", 50, 0.1, task="push")])
    with pytest.raises(ValueError, match="has no policy success_rate yet"):
        label_efficiency([{**prefs_result("oracle", 50, 0.1), "policy": None}])
    with pytest.raises(ValueError, match="unknown metric 'success'"):
        label_efficiency(results, "success")


@pytest.mark.slow
def test_prefs_eval_reports_distances_to_hand_and_plots(tmp_path, capsys):
    """A tiny preference run end to end (measured 10 s): prefs eval's EPIC/DARD/STARC fields and the plot."""
    import json

    from robreward.cli.main import main

    out = tmp_path / "run"
    assert main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "10", "--per-round", "10",
                 "--segment", "10", "--steps", "1024", "--envs", "8", "--eval-episodes", "8", "--no-progress",
                 "--out", str(out)]) == 0
    assert main(["prefs", "eval", str(out), "--pairs", "50", "--bootstrap", "10", "--plot",
                 str(tmp_path / "le.png")]) == 0
    printed = capsys.readouterr().out
    assert "starc_distance" in printed and "wrote " + str(tmp_path / "le.png") in printed
    result = json.loads((out / "prefs_eval.json").read_text())
    pref, hand = result["distances"]["preference"], result["distances"]["hand"]
    for metric in ("epic", "dard", "starc"):
        assert 0.0 < pref[metric] <= 1.0 and pref[f"{metric}_ci"][0] <= pref[f"{metric}_ci"][1]
        assert hand[metric] == pytest.approx(0.0, abs=1e-6)  # the hand reward against itself
    assert result["epic_distance"] == pref["epic"] and result["starc_distance"] == pref["starc"]
    assert result["sparse_baseline"]["success_rate"] is not None  # policies/reach/eval.json's sparse entry
    diagnosis = result["diagnosis"]  # a 1,024-step policy is short of the hand baseline's success 1.0
    assert diagnosis["verdict"] in ("policy", "reward") and "success_rate" in diagnosis["short_of_hand"]
    assert f"diagnosis ({diagnosis['verdict']}): the learned reward pays" in printed
    # --cached reads prefs_eval.json instead of measuring again
    assert main(["prefs", "eval", str(out), "--cached", "--plot", str(tmp_path / "again.png")]) == 0
    assert "read " + str(out / "prefs_eval.json") in capsys.readouterr().out


def test_reward_or_policy_tells_a_wrong_reward_from_a_policy_that_fell_short(tmp_path):
    """prefs eval's diagnosis, with rewards whose verdict is known: the hand reward pays the shipped hand policy more
    than a 1,024-step policy (PPO did not get there), its negation pays it less (the reward is wrong)."""
    import dataclasses

    from robreward.cli.main import main
    from robreward.envs.registry import get_task
    from robreward.eval.baseline import load_baseline
    from robreward.eval.evaluate import evaluate
    from robreward.feedback.preferences.evaluation import reward_or_policy
    from robreward.rl.export import load_policy

    spec, run = get_task("reach"), tmp_path / "short"
    assert main(["train", "--task", "reach", "--steps", "1024", "--envs", "8", "--eval-episodes", "0",
                 "--no-progress", "--out", str(run)]) == 0
    policy_eval = evaluate(spec, load_policy(run), episodes=8, seed=3)  # its learned return is the hand one
    baseline = load_baseline("reach")
    assert policy_eval["success_rate"] < 0.9 * baseline.hand["success_rate"]
    hand = HandReward(spec)
    right = reward_or_policy(spec, hand, run, policy_eval, baseline)
    assert right["verdict"] == "policy" and right["short_of_hand"][0] == "success_rate"
    assert right["learned_return"]["hand_policy"] > right["learned_return"]["policy"]
    assert right["learned_return"]["policy"] == pytest.approx(policy_eval["return_mean"], rel=1e-5)  # same episodes
    wrong = reward_or_policy(spec, lambda s, a: (-hand(s, a)[0], {}), run, policy_eval, baseline)
    assert wrong["verdict"] == "reward" and "at least as much as the hand baseline's" in wrong["explanation"]
    assert wrong["learned_return"]["policy"] == pytest.approx(-right["learned_return"]["policy"], rel=1e-5)
    easy = dataclasses.replace(baseline, hand={"success_rate": 0.0, "return_mean": -1.0})
    assert reward_or_policy(spec, hand, run, policy_eval, easy)["verdict"] == "none"
    other = tmp_path / "push-policy"  # a baseline folder whose policy reads another task's observations
    other.mkdir()
    (other / "policy.onnx").write_bytes((baseline.folder.parent / "push" / "policy.onnx").read_bytes())
    (other / "eval.json").write_text("{}")
    odd = reward_or_policy(spec, hand, run, policy_eval, dataclasses.replace(baseline, path=other / "eval.json"))
    assert odd["verdict"] == "unknown" and odd["learned_return"] is None and "observations" in odd["explanation"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "eval.json").write_text("{}")
    assert reward_or_policy(spec, hand, run, policy_eval, dataclasses.replace(baseline, path=tmp_path / "empty" /
                                                                             "eval.json")) is None
