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
    assert "'effort' works against the task: it is negatively correlated with fitness (r = -1.00)" in hints
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
