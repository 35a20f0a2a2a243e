"""benchmarks/ppo_gpu.py's run_train on Warp's CPU device: a run stopped at its time limit keeps the rate and
return it logged (the GPU lease measures this way), and a run that logged nothing is reported as such."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ppo_gpu():
    spec = importlib.util.spec_from_file_location("ppo_gpu", ROOT / "benchmarks" / "ppo_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_run_stopped_at_its_limit_keeps_what_it_logged(tmp_path):
    result = _ppo_gpu().run_train("cheetah-run", "ppo", 4, 100_000_000, "cpu", 0, tmp_path / "run", timeout=75)
    assert result["ok"] and result["timed_out"]
    assert result["progress_rows"] >= 3
    assert result["steps"] >= 3 * 4 * 32  # a rollout is 4 worlds x 32 steps
    assert result["env_steps_per_s"] > 0 and math.isfinite(result["env_steps_per_s"])


def test_run_that_logged_nothing_is_not_ok(tmp_path):
    result = _ppo_gpu().run_train("cheetah-run", "ppo", 4, 100_000_000, "cpu", 0, tmp_path / "run", timeout=0.5)
    assert not result["ok"] and result["timed_out"]
    assert "env_steps_per_s" not in result
