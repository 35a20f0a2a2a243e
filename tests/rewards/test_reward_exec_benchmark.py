"""benchmarks/reward_exec.py runs end to end on a tiny budget and writes what it claims."""

import json

import pytest

from tests.conftest import load_script


@pytest.mark.slow  # a benchmark smoke run (about 15 s); make test-all runs it
def test_reward_exec_benchmark_smoke(tmp_path):
    bench = load_script("benchmarks/reward_exec.py", "reward_exec_bench")
    out = tmp_path / "reward_exec.json"
    bench.main(["--repeats", "2", "--worlds", "8", "--env-worlds", "8", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["benchmark"] == "reward_exec" and report["machine"]
    rows = report["per_call"]
    assert len(rows) == 9 and {r["worlds"] for r in rows} == {8}  # examples/ + 8 recorded push programs
    for r in rows:
        assert r["direct_us"] > 0 and r["compiled_us"] > 0 and r["ops"] > 5
        assert abs(r["ratio"] - r["compiled_us"] / r["direct_us"]) < 0.01
    assert report["env_step"]["hand_steps_per_s"] > 0 and report["env_step"]["program_steps_per_s"] > 0
