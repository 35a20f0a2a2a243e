"""compare(): table + PNG from synthetic run dirs; H/S from the shipped baseline file, or runs when asked."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from robreward.eval import compare, load_baseline, load_run
from robreward.eval.evaluate import EVAL_FIELDS


def make_run(path, reward, seed, fitness, success, ret, task="push", steps=(0, 1000, 2000, 3000), evaluated=True):
    path.mkdir(parents=True)
    config = {"task": task, "reward": reward, "seed": seed, "steps": steps[-1]}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    lines = ["steps,return_mean,train_return_mean,success_rate,fitness_mean"]
    for k, s in enumerate(steps):
        frac = k / (len(steps) - 1)
        lines.append(f"{s},{ret * frac:.4f},{ret * frac:.4f},{success * frac:.4f},{fitness * frac:.4f}")
    (path / "progress.csv").write_text("\n".join(lines) + "\n")
    if evaluated:
        ev = {"task": task, "task_version": 0, "reward": reward, "episodes": 10, "seeds": [seed],
              "return_mean": ret, "return_std": 1.0, "train_reward_return_mean": ret, "success_rate": success,
              "fitness_mean": fitness, "episode_length_mean": 100.0, "terms": {"reach": ret}}
        (path / "eval.json").write_text(json.dumps(ev))
    return path


def make_group(path, reward, fitnesses, **kw):
    for seed, f in enumerate(fitnesses):
        make_run(path / f"seed_{seed}", reward, seed, f, min(f, 1.0), 100 * f, **kw)
    return path


def check_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 200
        arr = np.asarray(img.convert("RGB"))
    assert arr.std() > 5  # something was drawn


def test_compare_seed_groups(tmp_path):
    hand = make_group(tmp_path / "push-hand", "hand", [0.80, 0.82, 0.78])
    llm = make_group(tmp_path / "push-llm", "llm.py", [0.95, 0.97, 0.96])
    sparse = make_group(tmp_path / "push-sparse", "sparse", [0.20, 0.22, 0.18])
    res = compare([hand, llm, sparse], baselines=(hand, sparse), distances=False)
    out = tmp_path / "compare"
    assert res["markdown"] == out / "compare.md" and (out / "compare.json").is_file()
    table = (out / "compare.md").read_text()
    for name in ("push-hand", "push-llm", "push-sparse", "HNS", "vs hand"):
        assert name in table
    rows = {r["run"]: r for r in res["rows"]}
    # H = 0.80, S = 0.20 -> HNS(llm) = (0.96 - 0.2) / 0.6
    assert rows["push-hand"]["hns"]["value"] == pytest.approx(1.0) and rows["push-hand"]["role"] == "H"
    assert rows["push-sparse"]["hns"]["value"] == pytest.approx(0.0)
    assert rows["push-llm"]["hns"]["value"] == pytest.approx(0.76 / 0.6)
    assert rows["push-llm"]["vs_hand"]["significant"] is True
    assert rows["push-sparse"]["vs_hand"] is None and rows["push-sparse"]["role"] == "S"
    assert rows["push-hand"]["vs_hand"] is None
    assert rows["push-llm"]["seeds"] == 3
    assert "1.27" in table and "p=" in table
    # only push-llm is scored: the two baselines are the reference itself
    assert res["summary"].startswith("HNS of your runs against your runs push-hand (H, 3 seeds)")
    assert "push-llm 1.27 [" in res["summary"] and "push-hand" not in res["summary"].split(": ", 1)[1]
    check_png(res["png"])


def test_compare_single_runs_with_baseline_file(tmp_path):
    """No hand/sparse run given: H and S come from policies/<task>/eval.json."""
    policies = tmp_path / "policies" / "push"
    policies.mkdir(parents=True)
    per_seed = [{"seed": s, "return_mean": 50.0, "return_std": 1.0, "train_reward_return_mean": 50.0,
                 "success_rate": 0.9, "fitness_mean": f, "episode_length_mean": 100.0, "terms": {}}
                for s, f in enumerate([0.9, 0.92, 0.88])]
    baseline = {"task": "push", "task_version": 0, "reward": "hand", "episodes": 100, "seeds": [0, 1, 2],
                "return_mean": 50.0, "return_std": 0.0, "train_reward_return_mean": 50.0, "success_rate": 0.9,
                "fitness_mean": 0.9, "episode_length_mean": 100.0, "terms": {}, "per_seed": per_seed,
                "sparse": {"reward": "sparse", "seeds": [0, 1, 2], "fitness_mean": 0.1, "success_rate": 0.0}}
    (policies / "eval.json").write_text(json.dumps(baseline))
    b = load_baseline("push", root=tmp_path / "policies")
    assert b.hand_fitness == 0.9 and b.sparse_fitness == 0.1 and b.hand_fitness_per_seed == [0.9, 0.92, 0.88]
    assert set(EVAL_FIELDS) <= set(b.hand)
    assert load_baseline("nope", root=tmp_path / "policies") is None

    a = make_run(tmp_path / "runs" / "push-a", "a.py", 0, 0.5, 0.4, 30.0)
    c = make_run(tmp_path / "runs" / "push-c", "c.py", 0, 0.7, 0.6, 40.0, steps=(0, 500, 1500))
    res = compare([a, c], out=tmp_path / "cmp", baseline_root=tmp_path / "policies", distances=False)
    rows = {r["run"]: r for r in res["rows"]}
    assert rows["push-a"]["hns"]["value"] == pytest.approx((0.5 - 0.1) / 0.8)
    assert rows["push-a"]["vs_hand"]["testable"] is False  # one seed: not testable
    assert "not testable" in res["table"] and "H = 0.900, S = 0.100: shipped baselines v0 of push" in res["table"]
    assert "30.0 ± 1.0" in res["table"]
    # the shipped H and S are rows of the table too
    assert rows["shipped hand baseline v0"]["hns"]["value"] == pytest.approx(1.0)
    assert rows["shipped hand baseline v0"]["seeds"] == 3 and rows["shipped hand baseline v0"]["vs_hand"] is None
    assert rows["shipped sparse baseline v0"]["hns"]["value"] == pytest.approx(0.0)
    assert list(rows)[:2] == ["shipped hand baseline v0", "shipped sparse baseline v0"]
    check_png(res["png"])


def test_compare_undefined_hns_and_missing_pieces(tmp_path):
    hand = make_run(tmp_path / "hand", "hand", 0, 1.0, 1.0, 10.0)
    sparse = make_run(tmp_path / "sparse", "sparse", 0, 0.98, 1.0, 9.0)
    noeval = make_run(tmp_path / "noeval", "x.py", 0, 0.5, 0.5, 5.0, evaluated=False)
    res = compare([hand, sparse, noeval], out=tmp_path / "o", baseline_root=tmp_path / "none", baselines=(hand, sparse), distances=False)
    rows = {r["run"]: r for r in res["rows"]}
    assert rows["sparse"]["hns"]["value"] is None and "5%" in rows["sparse"]["hns"]["reason"]
    assert "HNS undefined" in res["table"]
    assert rows["noeval"]["fitness_mean"] is None
    check_png(res["png"])


def test_load_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a run directory"):
        load_run(tmp_path / "empty")
    with pytest.raises(ValueError, match="at least one run"):
        compare([])


def test_learning_curves_read_the_trainers_progress_csv(tmp_path):
    """The columns the PPO runner writes (CSV_FIELDS) are the ones the plots read."""
    import csv

    from robreward.eval.plots import mean_curve, read_progress
    from robreward.rl.runner import CSV_FIELDS

    path = tmp_path / "progress.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for i in range(1, 4):
            writer.writerow({**{k: "" for k in CSV_FIELDS}, "step": 1000 * i, "return_mean": 10.0 * i,
                             "success_rate": 0.25 * i})
    steps, mean, _ = mean_curve([read_progress(path)], "return_mean")
    assert steps.tolist() == [1000, 2000, 3000] and mean.tolist() == [10.0, 20.0, 30.0]
    assert mean_curve([read_progress(path)], "success_rate")[1].tolist() == [0.25, 0.5, 0.75]
