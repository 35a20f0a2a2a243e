"""compare and HNS against the SHIPPED baselines by version (policies/<task>/ = v0, policies/v1/<task>/ = v1),
the user's own runs only with --baselines, the one summary line, and no self-scoring."""

import json
import shutil

import pytest
import yaml

from robreward.cli.main import main
from robreward.eval import compare, hns_interval, shipped_baselines
from robreward.eval.baseline import baseline_versions


def write_baseline(folder, hand, sparse, task="push", steps=1000):
    """A shipped-baseline folder: eval.json (hand per_seed + sparse per_seed), config.yaml, MODEL_CARD.md."""
    folder.mkdir(parents=True)

    def side(reward, vals):
        per = [{"seed": s, "return_mean": 10.0 * v, "return_std": 1.0, "train_reward_return_mean": 10.0 * v,
                "success_rate": v, "fitness_mean": v, "episode_length_mean": 100.0, "terms": {}}
               for s, v in enumerate(vals)]
        return {"task": task, "task_version": 0, "reward": reward, "episodes": 100, "seeds": list(range(len(vals))),
                "return_mean": 10.0 * sum(vals) / len(vals), "return_std": 1.0, "success_rate": sum(vals) / len(vals),
                "fitness_mean": sum(vals) / len(vals), "episode_length_mean": 100.0, "terms": {}, "per_seed": per,
                "steps": steps}

    data = side("hand", hand)
    data["sparse"] = side("sparse", sparse)
    (folder / "eval.json").write_text(json.dumps(data))
    (folder / "config.yaml").write_text(yaml.safe_dump({"task": task, "reward": "hand", "seed": 1, "steps": steps}))
    (folder / "MODEL_CARD.md").write_text("# card\n")
    return folder


def make_run(path, reward, fitnesses, task="push", steps=500):
    """A seed group (or one run for one fitness) with eval.json and a progress.csv."""
    dirs = [path] if len(fitnesses) == 1 else [path / f"seed_{i}" for i in range(len(fitnesses))]
    for seed, (d, f) in enumerate(zip(dirs, fitnesses)):
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"task": task, "reward": reward, "seed": seed, "steps": steps}))
        (d / "progress.csv").write_text(f"step,return_mean,success_rate\n0,0,0\n{steps},{f},{f}\n")
        (d / "eval.json").write_text(json.dumps({
            "task": task, "task_version": 0, "reward": reward, "episodes": 10, "seeds": [seed],
            "return_mean": 10.0 * f, "return_std": 1.0, "train_reward_return_mean": 10.0 * f, "success_rate": f,
            "fitness_mean": f, "episode_length_mean": 100.0, "terms": {}}))
    return path


@pytest.fixture
def policies(tmp_path):
    root = tmp_path / "policies"
    write_baseline(root / "push", hand=[0.60, 0.62, 0.64], sparse=[0.02, 0.03, 0.04], steps=3_000_000)
    return root


def test_versions_newest_by_default_and_chosen(policies):
    assert baseline_versions("push", policies) == ["v0"]
    b0 = shipped_baselines("push", root=policies)
    assert b0.version == "v0" and b0.hand_fitness == pytest.approx(0.62) and b0.sparse_fitness == pytest.approx(0.03)
    assert b0.describe() == "shipped baselines v0 of push (policies/push, 3 seeds)"
    write_baseline(policies / "v1" / "push", hand=[0.90, 0.92], sparse=[0.10, 0.12])
    assert baseline_versions("push", policies) == ["v0", "v1"]
    b1 = shipped_baselines("push", root=policies)
    assert b1.version == "v1" and b1.hand_fitness == pytest.approx(0.91)
    assert b1.describe() == "shipped baselines v1 of push (policies/v1/push, 2 seeds)"
    assert shipped_baselines("push", "v0", root=policies).hand_fitness == pytest.approx(0.62)
    assert shipped_baselines("lift", root=policies) is None
    with pytest.raises(ValueError, match="no shipped baselines v2 of task 'push'.*versions shipped for it: v0, v1"):
        shipped_baselines("push", "v2", root=policies)
    with pytest.raises(ValueError, match="not of the form v0, v1"):
        shipped_baselines("push", "latest", root=policies)


def test_the_issues_case_is_scored_against_shipped_not_the_passed_hand_run(tmp_path, policies):
    """`compare runs/push-hand runs/push-mine runs/push-sparse`: H and S are the shipped ones, every
    run passed is scored, the shipped rows are not, and the summary line says against what."""
    runs = tmp_path / "runs"
    hand = make_run(runs / "push-hand", "hand", [0.27])
    mine = make_run(runs / "push-mine", "mine.py", [0.60, 0.66, 0.63])
    sparse = make_run(runs / "push-sparse", "sparse", [0.01])
    res = compare([hand, mine, sparse], baseline_root=policies, distances=False)
    rows = {r["run"]: r for r in res["rows"]}
    spread = 0.62 - 0.03
    assert rows["push-hand"]["hns"]["value"] == pytest.approx((0.27 - 0.03) / spread)
    assert rows["push-mine"]["hns"]["value"] == pytest.approx((0.63 - 0.03) / spread)
    assert rows["shipped hand baseline v0"]["role"] == "H" and rows["shipped sparse baseline v0"]["role"] == "S"
    assert rows["push-mine"]["role"] is None and rows["push-hand"]["role"] is None
    assert "- push: H = 0.620, S = 0.030: shipped baselines v0 of push (policies/push, 3 seeds); 3M env steps" \
        in res["table"]
    lo, hi = rows["push-mine"]["hns_ci"]
    assert lo < rows["push-mine"]["hns"]["value"] < hi
    assert res["summary"] == (
        f"HNS of your runs against shipped v0 baselines: push-hand {(0.27 - 0.03) / spread:.2f} (1 seed, no interval), "
        f"push-mine {(0.63 - 0.03) / spread:.2f} [{lo:.2f}, {hi:.2f}], "
        f"push-sparse {(0.01 - 0.03) / spread:.2f} (1 seed, no interval)")
    assert res["table"].rstrip().endswith(res["summary"])
    assert json.loads(res["json"].read_text())["summary"] == res["summary"]
    assert "mean HNS" not in res["table"]  # the ambiguous average is gone


def test_shipped_baseline_passed_is_not_scored_against_itself(tmp_path, policies):
    mine = make_run(tmp_path / "runs" / "push-mine", "mine.py", [0.5])
    res = compare([policies / "push", mine], out=tmp_path / "cmp", baseline_root=policies, distances=False)
    passed = [r for r in res["rows"] if r["path"] == str(policies / "push") and r["run"] == "push"]
    assert len(passed) == 1 and passed[0]["role"] == "H" and "(= H)" in passed[0]["cells"][8]
    assert passed[0]["vs_hand"] is None
    assert res["summary"].startswith("HNS of your runs against shipped v0 baselines: push-mine ")
    assert "push " not in res["summary"].split(": ", 1)[1] + " "
    # against v1, the v0 folder is a run like any other
    write_baseline(policies / "v1" / "push", hand=[0.90, 0.92], sparse=[0.10, 0.12])
    res = compare([policies / "push", mine], out=tmp_path / "cmp1", baseline_root=policies, distances=False)
    v0 = next(r for r in res["rows"] if r["run"] == "push")
    assert v0["role"] is None and v0["hns"]["value"] == pytest.approx((0.62 - 0.11) / 0.80)
    assert "against shipped v1 baselines: push " in res["summary"]
    assert "push: a shipped baseline of another version, scored as any run" in res["table"]
    # --baseline-version v0 goes back to v0
    res = compare([mine], out=tmp_path / "cmp0", baseline_root=policies, baseline_version="v0", distances=False)
    assert "against shipped v0 baselines: push-mine" in res["summary"]


def test_own_baselines_only_when_asked(tmp_path, policies):
    runs = tmp_path / "runs"
    hand = make_run(runs / "push-hand", "hand", [0.80, 0.82])
    sparse = make_run(runs / "push-sparse", "sparse", [0.20, 0.22])
    mine = make_run(runs / "push-mine", "mine.py", [0.50, 0.52])
    res = compare([mine], out=tmp_path / "c", baseline_root=policies, baselines=(hand, sparse), distances=False)
    rows = {r["run"]: r for r in res["rows"]}
    assert list(rows) == ["push-hand", "push-sparse", "push-mine"]  # the reference runs shown first
    assert rows["push-mine"]["hns"]["value"] == pytest.approx((0.51 - 0.21) / 0.60)
    assert res["summary"].startswith("HNS of your runs against your runs push-hand (H, 2 seeds) and "
                                     "push-sparse (S, 2 seeds): push-mine 0.50 [")
    lift = make_run(runs / "lift-x", "x.py", [0.4], task="lift")
    with pytest.raises(ValueError, match="--baselines are runs of task 'push'.*lift"):
        compare([mine, lift], out=tmp_path / "c2", baselines=(hand, sparse), distances=False)
    with pytest.raises(ValueError, match="exclude each other"):
        compare([mine], out=tmp_path / "c3", baselines=(hand, sparse), baseline_version="v0", distances=False)


def test_no_shipped_baseline_says_how_to_get_one(tmp_path, policies):
    lift = make_run(tmp_path / "runs" / "lift-x", "x.py", [0.4], task="lift")
    res = compare([lift], baseline_root=policies, distances=False)
    assert "none: no shipped baselines of lift" in res["table"] and "--baselines HAND_RUN,SPARSE_RUN" in res["table"]
    assert res["summary"] == "HNS of your runs against no baselines (none shipped for lift): lift-x n/a"


def test_hns_interval():
    assert hns_interval([0.5], [0.9, 0.9], [0.1, 0.1]) is None  # one run seed: no interval
    lo, hi = hns_interval([0.5, 0.5, 0.5], [0.9, 0.9], [0.1, 0.1])
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    lo, hi = hns_interval([0.4, 0.5, 0.6], [0.85, 0.9, 0.95], [0.05, 0.1, 0.15])
    assert lo < 0.5 < hi and hi - lo < 1.0
    assert hns_interval([0.5, 0.6], [0.5, 0.51], [0.5, 0.49]) is None  # H ~ S: undefined in most resamples


def test_compare_cli_baseline_flags(tmp_path, policies, monkeypatch, capsys):
    monkeypatch.setenv("ROBREWARD_POLICIES", str(policies))
    runs = tmp_path / "runs"
    mine = make_run(runs / "push-mine", "mine.py", [0.60, 0.66, 0.63])
    assert main(["compare", str(mine), "--no-distances"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1].startswith("HNS of your runs against shipped v0 baselines: push-mine 1.02 [")
    assert main(["compare", str(mine), "--baselines", "only-one", "--out", str(tmp_path / "o")]) == 2
    assert "two run directories separated by a comma" in capsys.readouterr().err
    assert main(["compare", str(mine), "--baseline-version", "v3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no shipped baselines v3 of task 'push'" in err and "Traceback" not in err
    hand = make_run(runs / "push-hand", "hand", [0.80, 0.82])
    sparse = make_run(runs / "push-sparse", "sparse", [0.20, 0.22])
    assert main(["compare", str(mine), "--baselines", f"{hand},{sparse}", "--out", str(tmp_path / "o2"), "--no-distances"]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith(
        "HNS of your runs against your runs push-hand (H, 2 seeds) and push-sparse (S, 2 seeds): push-mine 0.70 [")
    shutil.rmtree(tmp_path / "o2")


def test_epic_and_starc_to_hand_columns(tmp_path):
    """Each row's reward against the hand reward on transitions of the shipped hand policy (half the worlds)
    and random actions: hand is at 0, sparse is not, a reward file that is gone gets a note, not a crash."""
    from robreward.eval.baseline import policies_root

    root = tmp_path / "policies"
    folder = write_baseline(root / "reach", hand=[0.90, 0.91, 0.92], sparse=[0.80, 0.81, 0.82], task="reach")
    shutil.copy(policies_root() / "reach" / "policy.onnx", folder / "policy.onnx")
    runs = tmp_path / "runs"
    mine = make_run(runs / "reach-sparse", "sparse", [0.85], task="reach")
    gone = make_run(runs / "reach-gone", str(tmp_path / "gone.py"), [0.5], task="reach")
    res = compare([mine, gone], out=tmp_path / "c", baseline_root=root)
    rows = {r["run"]: r for r in res["rows"]}
    assert rows["shipped hand baseline v0"]["epic"] == 0.0 and rows["shipped hand baseline v0"]["starc"] == 0.0
    assert rows["reach-sparse"]["epic"] > 0.02 and 0.0 < rows["reach-sparse"]["starc"] <= 1.0  # measured 0.07, 0.013
    assert rows["reach-sparse"]["epic"] == rows["shipped sparse baseline v0"]["epic"]  # one measurement per reward
    assert rows["reach-gone"]["epic"] is None and "cannot be rebuilt here" in rows["reach-gone"]["distance_note"]
    table = res["table"]
    assert "| EPIC to hand | STARC to hand |" in table
    assert "half of the worlds acting with the shipped hand policy" in table
    assert "reach-gone: distance undefined: reward" in table
    assert json.loads(res["json"].read_text())["rows"][2]["epic"] == rows["reach-sparse"]["epic"]


def test_eval_of_a_shipped_policy_writes_nothing_into_the_repository(capsys):
    """Issue 24: `robreward eval policies/push/policy.onnx` wrote eval.local.json into the repository tree."""
    from robreward.eval.baseline import policies_root

    folder = policies_root() / "push"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(["eval", str(folder / "policy.onnx"), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "eval writes nothing beside it" in err and "--out" in err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
