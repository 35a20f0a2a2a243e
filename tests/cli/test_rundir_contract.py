"""robreward.rundir, the run directory's on-disk contract: versioned config with migrations (the
shipped policies/ and old run directories still load), refusing to reuse a run directory,
--overwrite removing only robreward's own files, progress.csv on resume, the model card's
evaluation section, and where the final policy of every kind of run directory lies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from robreward import rundir
from robreward.fileio import atomic_path
from robreward.rundir import RunDir, RunExistsError

ROOT = Path(__file__).resolve().parents[2]


def test_progress_columns_are_the_csv_fields_with_a_meaning_each():
    assert rundir.CSV_FIELDS == tuple(rundir.PROGRESS_COLUMNS)
    assert all(meaning.strip() for meaning in rundir.PROGRESS_COLUMNS.values())
    for column in rundir.CSV_FIELDS:  # the docstring's table documents every column
        assert f"\n{column} " in rundir.__doc__
    assert "TRAINING reward" in rundir.PROGRESS_COLUMNS["return_mean"]
    assert "HAND reward" in rundir.PROGRESS_COLUMNS["hand_return_mean"]


@pytest.mark.parametrize("task", sorted(p.parent.name for p in (ROOT / "policies").glob("*/config.yaml")))
def test_shipped_policy_configs_migrate_from_version_0(task):  # v0's folders (policies/v1/ is of today's schema)
    raw = yaml.safe_load((ROOT / "policies" / task / "config.yaml").read_text())
    assert "schema_version" not in raw  # written before versions existed
    config = rundir.read_config(ROOT / "policies" / task)
    assert "schema_version" not in config
    assert config["ppo"]["normalize_rewards"] is False  # what those runs trained with, stated explicitly
    assert {k: v for k, v in config.items() if k != "ppo"} == {k: v for k, v in raw.items() if k != "ppo"}


@pytest.mark.parametrize("task", sorted(p.parent.name for p in (ROOT / "policies" / "v1").glob("*/config.yaml")))
def test_shipped_v1_configs_are_of_the_current_schema(task):
    raw = yaml.safe_load((ROOT / "policies" / "v1" / task / "config.yaml").read_text())
    assert raw["schema_version"] == rundir.SCHEMA_VERSION and raw["task"] == task and raw["reward"] == "hand"
    assert rundir.read_config(ROOT / "policies" / "v1" / task) == {k: v for k, v in raw.items() if k != "schema_version"}


def test_config_roundtrip_writes_the_current_version(tmp_path):
    config = {"task": "reach", "reward": "hand", "ppo": {"normalize_rewards": True}}
    path = rundir.write_config(tmp_path, config)
    assert next(iter(yaml.safe_load(path.read_text()))) == "schema_version"
    assert yaml.safe_load(path.read_text())["schema_version"] == rundir.SCHEMA_VERSION
    assert rundir.read_config(tmp_path) == config  # a current config passes unchanged


def test_config_of_an_unknown_version_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"schema_version": rundir.SCHEMA_VERSION + 1, "task": "reach"}))
    with pytest.raises(ValueError, match="newer than this robreward's"):
        rundir.read_config(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"schema_version": "one"}))
    with pytest.raises(ValueError, match="not a version number"):
        rundir.read_config(tmp_path)
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="not a YAML mapping"):
        rundir.read_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="is it a robreward run directory"):
        rundir.read_config(tmp_path / "nothing")


def test_every_migration_step_is_registered():
    assert sorted(rundir.MIGRATIONS) == list(range(rundir.SCHEMA_VERSION))


def _fake_run(path: Path) -> RunDir:
    run = RunDir(path)
    run.write_config({"task": "reach"})
    run.save_checkpoint({"model": {}, "global_step": 4096}, periodic=True)
    run.tb_dir.mkdir()
    (run.tb_dir / "events.out.tfevents.1.host").write_bytes(b"x")
    (path / "progress.csv").write_text("step\n1\n")
    (path / "eval.json").write_text("{}")
    return run


def test_an_existing_run_is_refused_without_resume_or_overwrite(tmp_path):
    run = _fake_run(tmp_path / "run")
    with pytest.raises(RunExistsError, match=r"already holds a run \(.*config.yaml.*\): continue it with "
                                             r"`robreward train --resume .*`, start it over with --overwrite"):
        rundir.prepare(run.path)
    assert run.config_path.is_file() and run.step_checkpoint(4096).is_file()  # nothing touched
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="files robreward did not write"):
        rundir.check_out(tmp_path / "other")
    with pytest.raises(ValueError, match="pass one of them"):
        rundir.check_out(run.path, resume=True, overwrite=True)
    rundir.check_out(run.path, resume=True)  # resuming is allowed
    rundir.check_out(tmp_path / "new")  # so is a new or empty directory
    assert not (tmp_path / "new").exists()  # check_out writes nothing


def test_overwrite_removes_only_robrewards_files(tmp_path):
    run = _fake_run(tmp_path / "run")
    (run.path / "notes.txt").write_text("the user's")
    (run.checkpoint_dir / "mine.pt").write_bytes(b"the user's")
    _, removed = rundir.prepare(run.path, overwrite=True)
    names = sorted(str(p.relative_to(run.path)) for p in removed)
    assert names == ["checkpoints/latest.pt", "checkpoints/step_000000004096.pt", "config.yaml", "eval.json",
                     "progress.csv", "tb/events.out.tfevents.1.host"]
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "notes.txt"]
    assert [p.name for p in run.checkpoint_dir.iterdir()] == ["mine.pt"]


def test_progress_log_keeps_rows_up_to_the_resumed_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    log = run.open_progress()
    for step in (100, 200, 300):
        log.append({"step": step, "return_mean": step / 10, "not_a_column": 1})
    log.close()
    log = run.open_progress(keep_until=200)
    log.append({"step": 250})
    log.close()
    assert [r["step"] for r in run.read_progress()] == ["100", "200", "250"]
    assert list(run.read_progress()[0]) == list(rundir.CSV_FIELDS)


def test_checkpoints_are_atomic_and_plain(tmp_path):
    run = RunDir(tmp_path)
    run.save_checkpoint({"model": {"w": __import__("torch").ones(2)}, "global_step": 7})
    assert run.load_checkpoint()["global_step"] == 7
    assert rundir.load_checkpoint(tmp_path)["global_step"] == 7  # a run directory names its latest.pt
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["latest.pt"]
    with pytest.raises(FileNotFoundError, match="killed before its first checkpoint"):
        RunDir(tmp_path / "none").load_checkpoint()


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_eval_and_failed_records(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(ValueError, match="lacks the eval.json fields"):
        run.write_eval({"task": "reach"})
    result = {k: 0 for k in rundir.EVAL_FIELDS} | {"return_mean": float("nan"), "terms": {}}
    run.write_eval(result)
    assert run.read_eval()["return_mean"] is None  # undefined numbers are null, never NaN
    with pytest.raises(ValueError, match="needs an 'error' entry"):
        run.write_failed({"step": 3})
    run.write_failed({"error": "InvalidRewardError: too many", "step": 3})
    assert run.read_failed()["step"] == 3
    run.clear_failed()
    assert run.read_failed() is None


def test_a_later_evaluation_replaces_only_the_cards_evaluation_section(tmp_path):
    from robreward.envs.registry import get_task

    run = RunDir(tmp_path)
    training = {k: 1.0 for k in rundir.EVAL_FIELDS} | {"episodes": 10, "return_mean": 11.0}
    run.write_model_card({"reward": "hand", "num_envs": 4, "seed": 0}, get_task("reach"), 4096, training,
                         {"final train return": 3.5})
    before = run.card_path.read_text()
    assert "| return_mean | 11 |" in before and "At the end of training:" in before
    run.update_card_eval(training | {"episodes": 30, "return_mean": 22.0}, "Evaluated by `robreward eval` (30 episodes).")
    after = run.card_path.read_text()
    assert "| return_mean | 22 |" in after and "| return_mean | 11 |" not in after
    assert "Evaluated by `robreward eval`" in after and "At the end of training:" not in after
    assert after.split("## Evaluation")[0] == before.split("## Evaluation")[0]  # training numbers kept
    assert after.count("## Evaluation") == 1


def test_find_policy_run_for_every_kind_of_run_directory(tmp_path):
    train = tmp_path / "train"
    rundir.write_config(train, {"task": "reach", "seed": 3})
    assert (rundir.find_policy_run(train).kind, rundir.find_policy_run(train).task) == ("train", "reach")
    group = tmp_path / "group"
    rundir.write_config(group / "seed_1", {"task": "push"})
    rundir.write_config(group / "seed_0", {"task": "push"})
    found = rundir.find_policy_run(group)
    assert found.kind == "group" and [s for s, _ in found.seeds] == [0, 1]
    prefs = tmp_path / "prefs"
    rundir.write_config(prefs / "ppo", {"task": "reach", "reward": "pref:x"})
    (prefs / "config.json").write_text(json.dumps({"task": "reach", "teacher": "oracle"}))
    found = rundir.find_policy_run(prefs)
    assert (found.kind, found.policy_path, found.config["reward"]) == ("prefs", prefs / "ppo", "pref:x")
    gen = tmp_path / "gen"
    (gen / "best").mkdir(parents=True)
    (gen / "best" / "policy.onnx").write_bytes(b"")
    (gen / "config.json").write_text(json.dumps({"task": "reach", "llm": "fake"}))
    found = rundir.find_policy_run(gen)
    assert (found.kind, found.policy_path, found.task) == ("generate", gen / "best" / "policy.onnx", "reach")
    rundir.write_config(gen / "final" / "seed_5", {"task": "reach"})
    assert rundir.find_policy_run(gen).policy_path == gen / "final"  # the final seeds, once trained
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no trained policy yet"):
        rundir.find_policy_run(tmp_path / "early")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        rundir.find_policy_run(tmp_path / "empty")
