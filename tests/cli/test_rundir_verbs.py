"""The run directory through the real CLI (issue 20, point 6): a used --out is refused, --overwrite
removes only robreward's files, a rejected reward leaves no directory; eval and compare accept
every run directory robreward writes (a prefs run's final policy too), eval refuses --stochastic,
writes nothing into a shipped baseline's folder, updates the model card's evaluation section and
carries the training reward's invalid count; compare refuses to replace a comparison and plots
the hand-reward return where its label says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robreward.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--task", "reach", "--steps", "2048", "--envs", "8", "--eval-episodes", "4", "--no-progress"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rundir-verbs") / "reach"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_refuses_a_used_out_and_overwrite_removes_only_its_files(trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for path in trained.rglob("*"):
        if path.is_file():
            (run / path.relative_to(trained)).parent.mkdir(parents=True, exist_ok=True)
            (run / path.relative_to(trained)).write_bytes(path.read_bytes())
    (run / "checkpoints" / "step_000000999999.pt").write_bytes(b"an older, longer run's")
    (run / "notes.md").write_text("the user's notes")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, "train", *TINY, "--out", run)
    assert code == 2, err
    assert "already holds a run" in err and f"--resume {run}" in err and "--overwrite" in err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before  # nothing touched
    code, out, err = run_cli(capsys, "train", *TINY, "--out", run, "--overwrite")
    assert code == 0, err
    assert "--overwrite: removed" in out and "step_000000999999.pt" in out
    assert (run / "notes.md").read_text() == "the user's notes"
    assert not (run / "checkpoints" / "step_000000999999.pt").exists()  # no stale checkpoint mixed in
    assert len(list((run / "tb").iterdir())) == 1  # one TensorBoard file: this run's


def test_a_rejected_reward_creates_no_run_directory(tmp_path, capsys):
    bad = tmp_path / "bad_reward.py"
    bad.write_text("import os\n\ndef compute_reward(state, action):\n    return os.getcwd(), {}\n")
    code, _, err = run_cli(capsys, "train", *TINY, "--reward", bad, "--out", tmp_path / "run")
    assert code == 2, err
    assert not (tmp_path / "run").exists()


def test_overwrite_with_a_rejected_reward_keeps_the_earlier_run(trained, tmp_path, capsys):
    run = tmp_path / "run"
    for path in trained.rglob("*"):
        if path.is_file():
            (run / path.relative_to(trained)).parent.mkdir(parents=True, exist_ok=True)
            (run / path.relative_to(trained)).write_bytes(path.read_bytes())
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef compute_reward(state, action):\n    return os.getcwd(), {}\n")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert {"config.yaml", "progress.csv", "policy.onnx"} <= {p.name for p in before}
    code, out, err = run_cli(capsys, "train", *TINY, "--reward", bad, "--out", run, "--overwrite")
    assert code == 2, err
    assert "removed" not in out  # --overwrite removed nothing: the reward was rejected first
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # the earlier run, unchanged


def test_eval_refuses_stochastic_with_a_reason(trained, capsys):
    before = (trained / "eval.json").read_text()
    code, _, err = run_cli(capsys, "eval", trained, "--episodes", "2", "--stochastic")
    assert code == 2
    assert "--stochastic is not offered" in err and "deterministic" in err
    assert (trained / "eval.json").read_text() == before


def test_eval_updates_the_card_and_carries_the_invalid_count(trained, capsys):
    at_training = json.loads((trained / "eval.json").read_text())
    assert at_training["train_reward_invalid"] == 0  # reported in eval.json, as issue 19 promised
    card_before = (trained / "MODEL_CARD.md").read_text()
    assert "| episodes | 4 |" in card_before
    code, out, err = run_cli(capsys, "eval", trained, "--episodes", "6", "--seed", "5")
    assert code == 0, err
    ev = json.loads((trained / "eval.json").read_text())
    assert ev["episodes"] == 6 and ev["eval_seed"] == 5 and ev["train_reward_invalid"] == 0
    assert ev["deterministic"] is True
    card = (trained / "MODEL_CARD.md").read_text()
    assert "| episodes | 6 |" in card and "| episodes | 4 |" not in card
    assert f"| return_mean | {ev['return_mean']:.4g} |" in card
    assert "Evaluated by `robreward eval`" in card
    assert card.split("## Evaluation")[0].split("- written:")[0] == card_before.split("## Evaluation")[0].split("- written:")[0]
    assert "## Training" in card and "MODEL_CARD.md" in out


def test_eval_of_a_shipped_policy_writes_nothing_into_the_repository(tmp_path, capsys):
    folder = ROOT / "policies" / "push"
    before = sorted(p.name for p in folder.iterdir())
    code, _, err = run_cli(capsys, "eval", folder / "policy.onnx", "--episodes", "2")
    assert code == 2
    assert "--out" in err and "shipped baseline" in err
    assert sorted(p.name for p in folder.iterdir()) == before
    code, _, err = run_cli(capsys, "eval", folder / "policy.onnx", "--episodes", "2", "--out", tmp_path / "push.json")
    assert code == 0, err
    assert json.loads((tmp_path / "push.json").read_text())["episodes"] == 2
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.fixture(scope="module")
def prefs_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rundir-prefs") / "prefs"
    assert main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "10", "--per-round", "10",
                 "--segment", "10", "--steps", "2048", "--envs", "8", "--eval-episodes", "4", "--seed", "1",
                 "--no-progress", "--out", str(out)]) == 0
    return out


def test_eval_and_compare_accept_a_prefs_run(prefs_run, trained, tmp_path, capsys):
    assert not (prefs_run / "config.yaml").exists()  # what made `eval` fail before
    code, out, err = run_cli(capsys, "eval", prefs_run, "--episodes", "3")
    assert code == 0, err
    assert "prefs run" in out
    ev = json.loads((prefs_run / "ppo" / "eval.json").read_text())
    assert ev["episodes"] == 3 and ev["task"] == "reach"
    code, out, err = run_cli(capsys, "compare", trained, prefs_run, "--out", tmp_path / "cmp")
    assert code == 0, err
    rows = {r["run"]: r for r in json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]}
    assert rows["prefs"]["fitness_mean"] == pytest.approx(ev["fitness_mean"])
    assert rows["prefs"]["reward"].startswith("pref")


def test_compare_refuses_to_replace_a_comparison(trained, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert run_cli(capsys, "compare", trained, "--out", out)[0] == 0
    before = (out / "compare.md").read_text()
    code, _, err = run_cli(capsys, "compare", trained, "--out", out)
    assert code == 2 and "already holds a comparison" in err and "--overwrite" in err
    assert (out / "compare.md").read_text() == before
    assert run_cli(capsys, "compare", trained, "--out", out, "--overwrite")[0] == 0


def test_the_curve_panels_plot_the_columns_their_labels_name(tmp_path):
    from robreward.eval.plots import PANELS, draw_learning_curves, read_progress

    progress = tmp_path / "progress.csv"
    progress.write_text("step,return_mean,hand_return_mean,success_rate\n100,50,-3,0.1\n200,60,-2,0.5\n")
    fig = draw_learning_curves([("run", [read_progress(progress)])])
    plotted = {ax.get_ylabel(): (list(ax.lines[0].get_xdata()), list(ax.lines[0].get_ydata())) for ax in fig.axes}
    labels = dict(PANELS)
    assert "hand reward" in labels["hand_return_mean"] and "training reward" in labels["return_mean"]
    assert plotted[labels["hand_return_mean"]] == ([100, 200], [-3, -2])
    assert plotted[labels["return_mean"]] == ([100, 200], [50, 60])
    assert np.allclose(plotted[labels["success_rate"]][1], [0.1, 0.5])
