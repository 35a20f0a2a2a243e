"""scripts/baselines.py (make baselines) end to end on reach with a tiny budget: the v1 folder it
publishes (the layout robreward.eval.baseline reads), a killed cell resumed from its checkpoint,
a rerun that redoes nothing, and v0 left alone."""

import dataclasses
import json
from pathlib import Path

import pytest

from tests.conftest import load_script

STEPS, ENVS = 512, 8


@pytest.fixture(scope="module")
def baselines():
    return load_script("scripts/baselines.py", "baselines_script")


def rows(path):
    return path.read_text().strip().splitlines()[1:]


def test_v1_on_reach_publishes_resumes_and_leaves_v0_alone(baselines, tmp_path, capsys):
    from robreward.eval.baseline import shipped_baselines
    from robreward.rl.runner import train

    runs, dest = tmp_path / "runs", tmp_path / "policies"
    v0 = dest / "reach" / "eval.json"  # a v0 baseline already shipped: must stay byte for byte
    v0.parent.mkdir(parents=True)
    v0.write_text('{"task": "reach", "fitness_mean": 0.5, "sparse": {"fitness_mean": 0.1}}')
    before = v0.read_bytes()
    args = ["--tasks", "reach", "--seeds", "0,1,2", "--steps", str(STEPS), "--envs", str(ENVS), "--episodes", "2",
            "--runs", str(runs), "--dest", str(dest)]

    # a killed cell: the hand run of seed 1 stopped at half its budget, before its evaluation
    killed = baselines.cell_config("v1", "reach", "hand", 1, STEPS, runs, 2, ENVS)
    train(dataclasses.replace(killed, steps=STEPS // 2, eval_episodes=0))
    assert not (runs / "v1" / "reach" / "hand" / "seed_1" / "eval.json").exists()
    half = rows(runs / "v1" / "reach" / "hand" / "seed_1" / "progress.csv")

    assert baselines.main(args) == 0
    out = dest / "v1" / "reach"
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "config.yaml", "eval.json", "policy.onnx"]
    data = json.loads((out / "eval.json").read_text())
    assert data["task"] == "reach" and data["baselines_version"] == "v1" and data["steps"] == STEPS
    assert [r["seed"] for r in data["per_seed"]] == [0, 1, 2] and data["sparse"]["seeds"] == [0, 1, 2]
    assert data["H"] == data["fitness_mean"] and data["S"] == data["sparse"]["fitness_mean"]
    assert data["engine"]["num_envs"] == ENVS and data["engine"]["ppo"]["num_epochs"] == 5  # manipulation family
    assert data["policy_seed"] in (0, 1, 2)
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{STEPS:,} env steps per seed" in card and "desired_kl 0.01" in card and "| sparse | 2 |" in card
    # the killed cell continued from its checkpoint: its first rows are the ones written before the kill
    resumed = rows(runs / "v1" / "reach" / "hand" / "seed_1" / "progress.csv")
    assert resumed[:len(half)] == half and len(resumed) > len(half)
    assert v0.read_bytes() == before

    # robreward.eval.baseline reads what was published, as the newest version
    found = shipped_baselines("reach", root=dest)
    assert found.version == "v1" and found.hand_fitness == data["H"] and found.sparse_fitness == data["S"]

    # a rerun redoes nothing and keeps the published folder
    stamps = {p: p.stat().st_mtime_ns for p in [*runs.rglob("eval.json"), *out.iterdir()]}
    capsys.readouterr()
    assert baselines.main(args) == 0
    assert "already published" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    print(baselines.table("v1", dest))
    assert "| reach | 512 |" in capsys.readouterr().out


def test_bad_arguments_are_one_line_errors(baselines, tmp_path):
    for argv, words in ((["--tasks", "reech"], "unknown task 'reech'"),
                        (["--tasks", "hopper-hop"], "not a task of baselines v1"),
                        (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
                        (["--steps", "0", "--tasks", "reach"], "--steps must be >= 1")):
        with pytest.raises(SystemExit, match=words):
            baselines.main([*argv, "--runs", str(tmp_path / "r"), "--dest", str(tmp_path / "p")])


def test_ppo_defaults_scores_each_setting_against_the_best_on_each_task():
    bench = load_script("benchmarks/ppo_defaults.py", "ppo_defaults_bench")

    def cell(task, setting, seed, fitness):
        return {"task": task, "setting": setting, "seed": seed, "fitness_mean": fitness, "success_rate": fitness}

    rows = [cell("push", "a", 0, 0.8), cell("push", "a", 1, 0.6), cell("push", "b", 0, 0.35),
            cell("lift", "a", 0, 0.5), cell("lift", "b", 0, 1.0),
            cell("cheetah-run", "a", 0, 2.0), cell("cheetah-run", "b", 0, 4.0)]
    out = bench.summarize(rows)
    a, b = out["settings"]["a"], out["settings"]["b"]
    assert a["tasks"]["push"]["fitness_mean"] == pytest.approx(0.7) and a["tasks"]["push"]["seeds"] == [0, 1]
    assert a["family_score"]["manipulation"] == pytest.approx((1.0 + 0.5) / 2)
    assert b["family_score"]["manipulation"] == pytest.approx((0.5 + 1.0) / 2)
    assert a["family_score"]["locomotion"] == pytest.approx(0.5) and b["family_score"]["locomotion"] == 1.0
    assert a["score"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert out["best_per_family"]["locomotion"] == "b"
    assert bench.setting_name(64, 10, 0.02) == "w64_e10_kl0.02"


def test_ppo_defaults_report_only_trains_nothing_and_reads_finished_cells(tmp_path):
    bench = load_script("benchmarks/ppo_defaults.py", "ppo_defaults_bench")
    runs, out = tmp_path / "runs", tmp_path / "grid.json"
    done = bench.cell("reach", 8, 5, 0.01, 0, 512, runs, 2)
    Path(done.out).mkdir(parents=True)
    (Path(done.out) / "eval.json").write_text(json.dumps({"episodes": 2, "success_rate": 1.0, "fitness_mean": 0.9,
                                                          "return_mean": 80.0}))
    args = ["--tasks", "reach", "--envs", "8", "--epochs", "5", "--kl", "0.01,0.02", "--seeds", "0,1", "--steps", "512",
            "--runs", str(runs), "--out", str(out), "--report-only"]
    assert bench.main(args) == 0
    report = json.loads(out.read_text())
    assert not report["complete"] and [c["setting"] for c in report["cells"]] == ["w8_e5_kl0.01"]
    assert sorted(p.name for p in (runs / "reach").iterdir()) == ["w8_e5_kl0.01"]  # nothing else was started


def test_ppo_defaults_keeps_an_earlier_reports_cells_and_does_not_train_them_again(tmp_path, monkeypatch):
    bench = load_script("benchmarks/ppo_defaults.py", "ppo_defaults_bench")
    runs, out = tmp_path / "runs", tmp_path / "grid.json"
    earlier = {"task": "reach", "setting": "w8_e5_kl0.02", "num_envs": 8, "num_epochs": 5, "desired_kl": 0.02,
               "seed": 0, "steps": 512, "episodes": 2, "success_rate": 0.5, "fitness_mean": 0.4, "return_mean": 7.0,
               "train_seconds": 3.0}
    other_budget = {**earlier, "steps": 1024, "fitness_mean": 0.1}  # another grid's cell: not this one's
    out.write_text(json.dumps({"benchmark": "ppo_defaults", "cells": [earlier, other_budget]}))
    done = bench.cell("reach", 8, 5, 0.01, 0, 512, runs, 2)
    Path(done.out).mkdir(parents=True)
    (Path(done.out) / "eval.json").write_text(json.dumps({"episodes": 2, "success_rate": 1.0, "fitness_mean": 0.9,
                                                          "return_mean": 80.0}))
    trained = []
    monkeypatch.setattr(bench, "run_cells", lambda configs, ray, log: trained.extend(configs) or [])
    args = ["--tasks", "reach", "--envs", "8", "--epochs", "5", "--kl", "0.01,0.02", "--seeds", "0", "--steps", "512",
            "--episodes", "2", "--runs", str(runs), "--out", str(out)]
    assert bench.main(args) == 0
    assert trained == []  # one cell has its run directory, the other is the earlier report's
    report = json.loads(out.read_text())
    assert report["complete"]
    cells = {c["setting"]: c for c in report["cells"]}
    assert cells["w8_e5_kl0.02"]["fitness_mean"] == 0.4 and cells["w8_e5_kl0.02"]["earlier_report"] is True
    assert cells["w8_e5_kl0.01"]["fitness_mean"] == 0.9 and "earlier_report" not in cells["w8_e5_kl0.01"]
    assert report["settings"]["w8_e5_kl0.02"]["tasks"]["reach"]["fitness_mean"] == 0.4


@pytest.mark.ray  # a local Ray instance: make test-all
@pytest.mark.slow
def test_ray_cells_equal_the_in_process_cells(baselines, tmp_path):
    ray = pytest.importorskip("ray")
    common = ["--tasks", "reach", "--seeds", "0", "--steps", str(STEPS), "--envs", str(ENVS), "--episodes", "2"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert baselines.main([*common, "--ray", "local", "--runs", str(tmp_path / "ray"),
                               "--dest", str(tmp_path / "p_ray")]) == 0
    finally:
        ray.shutdown()
    # Ray tasks are sequential runs: compared with --sequential (the batched default agrees up to float rounding)
    assert baselines.main([*common, "--sequential", "--runs", str(tmp_path / "here"),
                           "--dest", str(tmp_path / "p_here")]) == 0
    on_ray, here = (json.loads((tmp_path / p / "v1" / "reach" / "eval.json").read_text()) for p in ("p_ray", "p_here"))
    for reward in ("hand", "sparse"):
        a = on_ray if reward == "hand" else on_ray["sparse"]
        b = here if reward == "hand" else here["sparse"]
        assert a["per_seed"][0]["return_mean"] == pytest.approx(b["per_seed"][0]["return_mean"], rel=1e-6)
        assert (tmp_path / "ray" / "v1" / "reach" / reward / "seed_0" / "eval.json").is_file()


def test_cells_another_process_is_training_are_skipped_not_retrained(baselines, tmp_path):
    from robreward.rundir import RunDir

    configs = [baselines.cell_config("v1", "reach", "hand", seed, STEPS, tmp_path, 2, ENVS) for seed in (0, 1)]
    held = RunDir(configs[1].out).lock()  # seed 1 is being trained elsewhere
    logged: list[str] = []
    try:
        errors = baselines.run_cells(configs, log=logged.append)
    finally:
        held.release()
    assert errors == [f"{configs[1].out}: being trained by another process (left to it)"]
    assert f"  SKIPPED {configs[1].out}: another process is training it" in logged
    assert (Path(configs[0].out) / "eval.json").is_file()  # the free cell trained
    assert Path(configs[1].out).is_dir() and not any(Path(configs[1].out).iterdir())  # the busy one untouched
