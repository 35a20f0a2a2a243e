"""CARD's trajectory-preference test on the shipped push-noisy demos (18 successful, 2 failed
episodes): the example reward passes, a reward for moving the cube away from the goal fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robreward.codegen.card_filter import (DEFAULT_THRESHOLD, REPLAY_TOLERANCE, TrajectoryPreferenceResult,
                                           demo_states, trajectory_preference_test)

ROOT = Path(__file__).resolve().parents[2]
NOISY = ROOT / "demos" / "push-noisy.h5"
EXAMPLE = (ROOT / "examples" / "push_reward.py").read_text()

AWAY = """\
import torch

def compute_reward(state, action):
    away = torch.linalg.norm(state.cube_to_goal[:, :2], dim=-1)
    return away, {"away": away}
"""


@pytest.fixture(scope="module")
def states():
    return demo_states(NOISY, "push")


def test_demo_states_are_the_recorded_ones(states):
    assert states.task == "push" and len(states.episodes) == 20
    assert sum(states.success.values()) == 18
    assert states.replay_error <= REPLAY_TOLERANCE  # re-simulation reproduces the stored qpos/qvel
    (members, steps), = states.groups  # every episode is 100 steps long
    assert len(members) == 20 and len(steps) == 100
    assert steps[0]["cube_to_goal"].shape == (20, 3) and steps[0]["action"].shape == (20, 4)
    assert demo_states(NOISY, "push") is states  # cached for the K candidates of an iteration


def test_example_reward_passes(states):
    result = trajectory_preference_test(EXAMPLE, states)
    assert isinstance(result, TrajectoryPreferenceResult)
    assert result.error is None and result.passed and result.feedback is None
    assert result.threshold == DEFAULT_THRESHOLD == 0.8
    assert (result.successes, result.failures, result.pairs) == (18, 2, 36)
    assert result.fraction >= 0.8
    assert set(result.term_returns) == {"reach", "place", "bonus", "effort"}
    s, f = result.term_returns["place"]
    assert s > f
    assert len(result.returns) == 20
    json.dumps(result.to_dict())


def test_reward_for_moving_the_cube_away_fails_with_feedback(states):
    result = trajectory_preference_test(AWAY, states)
    assert not result.passed and result.error is None
    assert result.fraction < 0.5
    assert result.feedback.startswith("Trajectory preference test failed: on demonstration episodes of push")
    assert "of 36 (successful, failed) pairs" in result.feedback and "at least 80% is required" in result.feedback
    assert "'away'" in result.feedback  # the term that pays failures more


def test_constant_reward_ties_everything():
    code = "import torch\n\ndef compute_reward(state, action):\n    r = torch.ones(state.num_envs)\n    return r, {'r': r}\n"
    result = trajectory_preference_test(code, NOISY, "push")  # a path: the states come from the cache
    assert result.fraction == 0.5 and not result.passed
    assert trajectory_preference_test(code, NOISY, threshold=0.5).passed


def test_malicious_program_never_runs(states):
    code = "import os\n\ndef compute_reward(state, action):\n    os.system('touch /tmp/x')\n    return state.qpos[:, 0], {}\n"
    result = trajectory_preference_test(code, states)
    assert not result.passed and result.fraction is None
    assert "import of 'os' is not allowed" in result.error
    assert result.feedback.startswith("The reward failed on the demonstration states:")


def test_program_failing_in_the_sandbox(states):
    code = "import torch\n\ndef compute_reward(state, action):\n    r = state.qpos[:, 99]\n    return r, {'r': r}\n"
    result = trajectory_preference_test(code, states)
    assert not result.passed and "IndexError" in result.error
    loop = "def compute_reward(state, action):\n    for i in range(10**12):\n        pass\n    return state.qpos[:, 0], {}\n"
    result = trajectory_preference_test(loop, states, timeout_s=1)
    assert not result.passed and "timed out after 1s" in result.error


def test_bad_input(states):
    with pytest.raises(ValueError, match=r"has 20 successful and 0 failed episodes: the trajectory preference test "
                                         r"needs both"):
        trajectory_preference_test(EXAMPLE, ROOT / "demos" / "push-expert.h5")
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        trajectory_preference_test(EXAMPLE, states, threshold=1.5)


def test_a_subset_of_episodes():
    result = trajectory_preference_test(EXAMPLE, NOISY, "push", episodes=[0, 1, 4, 5])
    assert (result.successes, result.failures, result.pairs) == (2, 2, 4)
    assert sorted(result.returns) == [0, 1, 4, 5]
