"""`robreward eval` and `robreward compare`: end to end on a tiny task folder, and bad input."""

import json

import pytest
import torch
import yaml

from robreward.cli.main import main
from robreward.eval.evaluate import EVAL_FIELDS

TASK_PY = """import dataclasses
from sims.cheetah_run import TASK as _BASE
TASK = dataclasses.replace(_BASE, episode_length=20)
"""


@pytest.fixture
def task_dir(tmp_path):
    folder = tmp_path / "tiny_task"
    folder.mkdir()
    (folder / "task.py").write_text(TASK_PY)
    return folder


def write_policy(path):
    """A small fixed ONNX policy: tanh(linear(obs)) with a seeded init."""
    import robreward.rl.export as export
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(17, 6), torch.nn.Tanh())
    path.parent.mkdir(parents=True, exist_ok=True)
    export.export_onnx(module, 17, path)
    return path


def test_eval_missing_run_dir(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "run directory" in err


def test_eval_policy_file_without_task(tmp_path, capsys):
    policy = tmp_path / "p" / "policy.onnx"
    policy.parent.mkdir()
    policy.write_bytes(b"not really onnx")
    assert main(["eval", str(policy)]) == 2
    assert "needs --task" in capsys.readouterr().err


def test_eval_dir_without_config(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["eval", str(tmp_path / "d")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_eval_unknown_task(tmp_path, capsys):
    policy = tmp_path / "policy.onnx"
    policy.write_bytes(b"x")
    assert main(["eval", str(policy), "--task", "cheetah-rn"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_eval_run_dir_end_to_end(tmp_path, task_dir, capsys):
    run = tmp_path / "runs" / "tiny-hand"
    write_policy(run / "policy.onnx")
    (run / "config.yaml").write_text(yaml.safe_dump({"task": str(task_dir), "reward": "hand", "seed": 3}))
    # a folder named by config.yaml is loaded only when the command line names it too
    assert main(["eval", str(run), "--episodes", "3", "--task", str(task_dir), "--video", str(tmp_path / "v.mp4")]) == 0
    out = capsys.readouterr().out
    assert "return_mean" in out and "wrote" in out
    ev = json.loads((run / "eval.json").read_text())
    assert set(EVAL_FIELDS) <= set(ev)
    assert ev["episodes"] == 3 and ev["seeds"] == [3] and ev["episode_length_mean"] == 20
    assert ev["train_reward_return_mean"] == pytest.approx(ev["return_mean"])
    assert (tmp_path / "v.mp4").stat().st_size > 0
    # same command, same numbers (deterministic by default)
    assert main(["eval", str(run), "--episodes", "3", "--task", str(task_dir)]) == 0
    again = json.loads((run / "eval.json").read_text())
    assert {k: again[k] for k in EVAL_FIELDS} == {k: ev[k] for k in EVAL_FIELDS}


def test_eval_bare_policy_writes_only_where_out_says(tmp_path, task_dir, capsys):
    folder = tmp_path / "policies" / "tiny"
    policy = write_policy(folder / "policy.onnx")
    # a policy file outside a run directory: eval writes nothing beside it without --out
    assert main(["eval", str(policy), "--task", str(task_dir), "--episodes", "2"]) == 2
    assert "--out" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["policy.onnx"]
    assert main(["eval", str(policy), "--task", str(task_dir), "--episodes", "2", "--out", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["episodes"] == 2 and ev["reward"] == "unknown" and ev["train_reward_return_mean"] is None
    # a shipped baseline's folder (config.yaml + a baseline eval.json) is never written to either
    (folder / "config.yaml").write_text(yaml.safe_dump({"task": str(task_dir), "reward": "hand", "seed": 0}))
    (folder / "eval.json").write_text(json.dumps({"fitness_mean": 1.0, "sparse": {"fitness_mean": 0.0}}))
    assert main(["eval", str(policy), "--task", str(task_dir), "--episodes", "2"]) == 2
    assert "shipped baseline" in capsys.readouterr().err
    assert json.loads((folder / "eval.json").read_text())["sparse"] == {"fitness_mean": 0.0}
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "eval.json", "policy.onnx"]


def test_compare_cli(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for name, reward, fit in (("a", "hand", 0.8), ("b", "b.py", 0.9)):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"task": "t", "reward": reward, "seed": 0}))
        (run / "progress.csv").write_text(f"steps,return_mean,success_rate\n0,0,0\n100,{fit},{fit}\n")
    assert main(["compare", str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b")]) == 0
    out = capsys.readouterr().out
    assert "| a |" in out and "| b |" in out
    assert (tmp_path / "runs" / "compare" / "compare.md").is_file()
    assert (tmp_path / "runs" / "compare" / "curves.png").stat().st_size > 0


def test_eval_seed_group(tmp_path, task_dir):
    group = tmp_path / "runs" / "tiny-group"
    for seed in (0, 1):
        write_policy(group / f"seed_{seed}" / "policy.onnx")
        (group / f"seed_{seed}" / "config.yaml").write_text(
            yaml.safe_dump({"task": str(task_dir), "reward": "sparse", "seed": seed}))
    assert main(["eval", str(group), "--episodes", "2", "--task", str(task_dir)]) == 0
    ev = json.loads((group / "eval.json").read_text())
    assert ev["seeds"] == [0, 1] and len(ev["per_seed"]) == 2 and ev["reward"] == "sparse"


MARKER_TASK_PY = """import dataclasses
from pathlib import Path
from sims.cheetah_run import TASK as _BASE
Path({marker!r}).write_text("task.py ran")
TASK = dataclasses.replace(_BASE, episode_length=20)
"""


def test_eval_never_loads_a_task_folder_named_by_config_yaml(tmp_path, capsys):
    folder, marker = tmp_path / "their_task", tmp_path / "task-py-ran"
    folder.mkdir()
    (folder / "task.py").write_text(MARKER_TASK_PY.format(marker=str(marker)))
    run = tmp_path / "runs" / "theirs"
    write_policy(run / "policy.onnx")
    (run / "config.yaml").write_text(yaml.safe_dump({"task": str(folder), "reward": "hand", "seed": 0}))
    for target in (run, run / "policy.onnx"):
        assert main(["eval", str(target), "--episodes", "1"]) == 2
        err = capsys.readouterr().err
        assert "config.yaml" in err and "never selects a task folder" in err and "--task FOLDER" in err, err
        assert "Traceback" not in err
    assert not marker.exists() and not (run / "eval.json").exists()
    # the user names the folder: it is trusted, loaded and evaluated
    assert main(["eval", str(run), "--episodes", "1", "--task", str(folder)]) == 0
    assert marker.exists() and (run / "eval.json").is_file()

