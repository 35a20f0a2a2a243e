"""Reward reflection: numbers checked against hand-computed values, the hints, the text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from robreward.codegen.reflect import pearson, reflection_text, term_statistics

FITNESS = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def stats():
    return {
        "terms": {
            "progress": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # fitness + 1: r = +1
            "alive": [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # constant
            "effort": np.array([0.0, -2.0, -4.0, -6.0, -8.0, -10.0]),  # -2 * fitness: r = -1
        },
        "fitness": FITNESS,
        "success": torch.tensor([0.0, 0.0, 0.1, 0.3, 0.5, 0.6]),
        "episode_length": [100, 120, 150, 200, 250, 300],
        "reward_invalid": [0, 0, 3, 0, 0, 1],
        "reward_invalid_share": [0.0, 0.0, 0.003, 0.0, 0.0, 0.001],
    }


def test_numbers_match_hand_computed_values():
    numbers = term_statistics(stats())
    assert numbers["iterations"] == 6
    progress, alive, effort = (numbers["terms"][k] for k in ("progress", "alive", "effort"))
    # share of the total |reward|: sum |means| = 21, 12, 30
    assert progress["share"] == pytest.approx(21 / 63, abs=1e-12)
    assert alive["share"] == pytest.approx(12 / 63, abs=1e-12)
    assert effort["share"] == pytest.approx(30 / 63, abs=1e-12)
    assert progress["corr_fitness"] == pytest.approx(1.0, abs=1e-12)
    assert effort["corr_fitness"] == pytest.approx(-1.0, abs=1e-12)
    assert alive["corr_fitness"] is None  # constant: undefined
    assert progress["mean"] == 3.5 and progress["min"] == 1.0 and progress["max"] == 6.0
    assert progress["std"] == pytest.approx(math.sqrt(35 / 12), abs=1e-12)  # population std of 1..6
    # trend: thirds of 6 iterations are 2 long: (5 + 6) / 2 - (1 + 2) / 2
    assert progress["first"] == 1.5 and progress["last"] == 5.5 and progress["trend"] == 4.0
    assert progress["direction"] == "rising" and alive["direction"] == "flat" and effort["direction"] == "falling"
    assert numbers["total"]["mean"] == pytest.approx(3.5 + 2.0 - 5.0)
    assert numbers["success"]["max"] == pytest.approx(0.6) and numbers["episode_length"]["mean"] == 1120 / 6
    assert numbers["reward_invalid"] == 4
    assert numbers["reward_invalid_share"] == pytest.approx(0.004 / 6, abs=1e-15)
    json.dumps(numbers)  # JSON-able as is


def test_correlation_of_uncorrelated_series():
    assert pearson(np.array([1.0, -1.0, 1.0, -1.0]), np.array([1.0, 1.0, -1.0, -1.0])) == pytest.approx(0.0, abs=1e-12)
    assert pearson(np.array([1.0, 2.0, np.nan, 4.0]), np.array([2.0, 4.0, 0.0, 8.0])) == pytest.approx(1.0)
    assert pearson(np.array([1.0]), np.array([1.0])) is None


def test_hints():
    hints = "\n".join(term_statistics(stats())["hints"])
    assert "'alive' is constant over training (2): it has no effect" in hints
    assert "works against" not in hints  # 'effort' (r = -1) grows with the task score, it is not chased
    assert "'progress'" not in hints
    assert "dominates" not in hints
    assert ("The reward was invalid (NaN or inf, or terms that do not sum to the total) in 4 world-step(s) "
            "(0.067% of the steps): those steps got reward 0") in hints


def test_dominating_term_nan_term_and_zero_success():
    numbers = term_statistics({
        "terms": {"big": [100.0, 101.0, 102.0], "small": [1.0, float("nan"), 2.0]},
        "fitness": [0.0, 0.1, 0.2],
        "success": [0.0, 0.0, 0.01],
    })
    big, small = numbers["terms"]["big"], numbers["terms"]["small"]
    assert big["share"] == pytest.approx(303 / 306, abs=1e-12)
    assert small["nan_count"] == 1 and small["mean"] == 1.5
    hints = "\n".join(numbers["hints"])
    assert "'big' dominates the reward (99% of |reward|)" in hints
    assert "'small' was NaN or inf in 1 iteration(s)" in hints
    assert "The success rate stayed near zero" in hints


def test_reflection_text():
    text = reflection_text(stats())
    lines = text.splitlines()
    assert lines[0].startswith("Training statistics over 6 iterations")
    header = lines[1].split()
    assert header == ["term", "mean", "std", "min", "max", "share", "r(fitness)", "trend", "NaN"]
    progress = next(line for line in lines if line.strip().startswith("progress ") and "%" in line)
    assert "33.3%" in progress and "+1.00" in progress and "rising 1.5 -> 5.5" in progress
    assert "  progress: [1, 2, 3, 4, 5, 6]" in lines
    assert any(line.startswith("task_score (fitness): [0, 1, 2, 3, 4, 5], mean 2.5") for line in lines)
    assert any(line.startswith("success rate: ") for line in lines)
    assert any(line.startswith("episode length: ") for line in lines)
    assert "Hints:" in lines and "- 'alive' is constant" in text
    assert ("invalid reward (NaN/inf, or terms not summing to the total; replaced by 0): 4 world-step(s), "
            "0.067% of the steps") in lines
    assert reflection_text(stats()) == text


def test_snapshots_are_capped():
    text = reflection_text({"terms": {"r": list(range(100))}})
    line = next(line for line in text.splitlines() if line.startswith("  r: ["))
    assert len(line.split(",")) == 10 and line.endswith("99]")


def test_bad_input():
    with pytest.raises(ValueError, match=r"stats\['fitness'\] has 2 values, the terms have 6"):
        term_statistics({**stats(), "fitness": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"unknown stats keys \['reward'\]"):
        term_statistics({**stats(), "reward": [1.0]})
    with pytest.raises(ValueError, match="'terms'"):
        term_statistics({"fitness": [1.0]})
    with pytest.raises(ValueError, match="at least one training iteration"):
        term_statistics({"terms": {"a": []}})


# -- which hints fire for which patterns ----------------------------------------------------------------
# The recorded push run of a capable LLM (../shared/transcripts/push-k4-2it, call-000001's prompt):
# the 10 snapshots of the best program's training log the reflection showed the LLM.
RECORDED_PUSH = {
    "terms": {
        "reach_push_pos": [0.211, 0.539, 0.553, 0.663, 0.555, 0.578, 0.367, 0.293, 0.391, 0.343],
        "cube_near": [0.0601, 0.288, 0.305, 0.296, 0.333, 0.358, 0.367, 0.357, 0.358, 0.384],
        "ee_low": [-0.0648, -0.017, -0.0187, -0.036, -0.0818, -0.0139, -0.0115, -0.00843, -0.0157, -0.00828],
        "goal_coarse": [0.73, 0.843, 0.906, 1.02, 1.07, 0.783, 1.54, 1.64, 1.41, 1.5],
        "goal_fine": [0.0195, 0.0729, 0.108, 0.136, 0.293, 0.02, 0.865, 1.04, 0.701, 0.805],
        "success": [0, 0.156, 0.207, 0.46, 0.855, 0, 1.95, 2.37, 1.89, 2.16],
        "action_penalty": [-0.00275, -0.00458, -0.00528, -0.00712, -0.00917, -0.00589, -0.00965, -0.00629,
                           -0.0083, -0.00827],
    },
    "fitness": [0, 0.0519, 0.0691, 0.153, 0.285, 0, 0.65, 0.79, 0.629, 0.72],
    "success": [0, 0.156, 0.188, 1, 0.5, 0, 1, 1, 0.929, 1],
}


def test_the_recorded_push_log_gets_no_misleading_hint():
    """reach_push_pos fades as the cube nears the goal (r = -0.7 with fitness, by design): the old rule
    called it harmful and three of four next programs weakened their approach terms."""
    numbers = term_statistics(RECORDED_PUSH)
    reach = numbers["terms"]["reach_push_pos"]
    assert reach["corr_fitness"] < -0.5 and reach["direction"] == "falling"
    assert numbers["fitness"]["direction"] == "rising"
    assert numbers["hints"] == []


RISING = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
FALLING = RISING[::-1]
FLAT_NOISY = [0.5, 0.52, 0.49, 0.51, 0.5, 0.48]


@pytest.mark.parametrize("pattern,term,fitness,fires", [
    ("chased while the task gets worse (reward hacking)", RISING, FALLING, "works against"),
    ("chased while the task stalls", RISING, [0.5, 0.6, 0.4, 0.5, 0.45, 0.4], "works against"),
    ("fades as the task is solved", FALLING, RISING, None),
    ("a cost that grows with the task", [-x for x in RISING], RISING, None),
    ("anti-correlated noise, no trend", FLAT_NOISY, [0.4, 0.2, 0.6, 0.3, 0.5, 0.7], None),
    ("constant", [1.0] * 6, RISING, "is constant over training"),
    ("non-finite", [1.0, float("nan"), 1.2, 1.1, 1.3, 1.2], RISING, "was NaN or inf in 1 iteration"),
])
def test_which_hints_fire_for_which_patterns(pattern, term, fitness, fires):
    other = [1.0 + 0.1 * i for i in range(6)]  # a second term of similar size, so nothing dominates
    hints = [h for h in term_statistics({"terms": {"t": term, "other": other}, "fitness": fitness})["hints"]
             if h.startswith("'t'")]
    if fires is None:
        assert hints == [], pattern
    else:
        assert len(hints) == 1 and fires in hints[0], (pattern, hints)


def test_a_dominating_term_is_named_whatever_its_trend():
    hints = term_statistics({"terms": {"big": [50.0, 60.0, 70.0], "tiny": [0.1, 0.1, 0.2]},
                             "fitness": [0.0, 0.5, 1.0]})["hints"]
    assert any(h.startswith("'big' dominates the reward") for h in hints)
