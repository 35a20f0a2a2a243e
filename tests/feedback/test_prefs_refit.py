"""benchmarks/prefs_refit.py: refitting a run's labels reproduces its model, and other settings are scored."""

import json

import pytest

from robreward.feedback.preferences.loop import PrefsConfig, train_preferences
from robreward.feedback.preferences.model import EnsembleConfig
from robreward.rl.config import PPOConfig
from tests.conftest import load_script


@pytest.fixture(scope="module")
def refit():
    return load_script("benchmarks/prefs_refit.py", "prefs_refit")


def test_refit_reproduces_the_runs_model_and_scores_other_settings(refit, tmp_path):
    run = tmp_path / "run"
    train_preferences(PrefsConfig(task="reach", queries=20, per_round=10, segment=10, steps=2048, num_envs=8, seed=3,
                                  eval_episodes=0, progress=False, heldout_pairs=50, out=str(run),
                                  ensemble=EnsembleConfig(hidden=(32,), epochs=5, seed=2),
                                  ppo=PPOConfig(num_steps=16, actor_hidden=(32,), critic_hidden=(32,))))
    out = tmp_path / "refit.json"
    assert refit.main([str(run), "--variants", "base,members7", "--worlds", "9", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "reach" and result["reference"]["worlds"] == 9 and "machine" in result
    (row,) = result["runs"]
    base, members7 = row["refits"]
    # round by round on the same labels, with the run's own ensemble config: the same model as the run's
    assert (base["variant"], base["ensemble_seed"]) == ("base", 2)
    assert {k: base[k] for k in ("pearson", "spearman")} == row["saved_model"]
    assert members7["variant"] == "members7" and members7["pearson"] != base["pearson"]
    assert all(-1 <= v["pearson"] <= 1 and -1 <= v["spearman"] <= 1 for v in row["refits"])


def test_refit_input_errors(refit, tmp_path, capsys):
    with pytest.raises(SystemExit):
        refit.main([str(tmp_path), "--variants", "bigger"])
    assert "unknown variant(s) ['bigger']" in capsys.readouterr().err
