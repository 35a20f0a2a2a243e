"""benchmarks/train_speed.py on a tiny budget: before (a worktree of the old commit) and after run as
whole processes in alternating order, and the reported ratio is the medians' (its speed is measured
in benchmarks/, not here)."""

import json
import statistics

import pytest

from tests.conftest import load_script


@pytest.mark.slow  # the benchmark end to end (whole training processes, before and after): make test-all
def test_pairs_alternate_and_the_ratio_is_the_medians(tmp_path):
    bench = load_script("benchmarks/train_speed.py", "train_speed_bench")
    out = tmp_path / "train_speed.json"
    assert bench.main(["--tasks", "reach", "--steps", "1024", "--num-envs", "16", "--pairs", "2",
                       "--before-tree", str(tmp_path / "before"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["before_commit"] == "c7e2edc" and report["machine"]["nproc"] >= 1
    (result,) = report["results"]
    assert [p["order"] for p in result["pairs"]] == ["before-after", "after-before"]
    for pair in result["pairs"]:
        assert pair["before_steps_per_s"] > 0 and pair["after_steps_per_s"] > 0
        assert pair["ratio"] == pytest.approx(pair["after_steps_per_s"] / pair["before_steps_per_s"])
    before = statistics.median(p["before_steps_per_s"] for p in result["pairs"])
    after = statistics.median(p["after_steps_per_s"] for p in result["pairs"])
    assert result["ratio"] == pytest.approx(after / before)
