"""benchmarks/generate.py on a tiny budget: both paths run per repeat, in alternating order, and the
reported ratio is the median pair's (its speed is measured in benchmarks/, not here)."""

import json

import pytest

from tests.conftest import load_script


def run_tiny(tmp_path, *flags: str) -> dict:
    """The benchmark with 2 candidates x 4 worlds x 256 steps and `flags`: its JSON."""
    bench = load_script("benchmarks/generate.py", "generate_bench")
    out = tmp_path / "generate.json"
    assert bench.main(["--candidates", "2", "--steps", "256", "--worlds", "4", *flags, "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow  # the benchmark end to end (3 repeats of both paths): make test-all
def test_repeats_alternate_and_the_median_pair_is_reported(tmp_path):
    result = run_tiny(tmp_path, "--repeats", "3")
    pairs = result["repeats"]
    assert [p["order"] for p in pairs] == ["batched-sequential", "sequential-batched", "batched-sequential"]
    for pair in pairs:
        assert pair["speedup"] == pytest.approx(pair["sequential_wall_s"] / pair["batched_wall_s"])
        for path in ("batched", "sequential"):
            parts = pair[f"{path}_breakdown_s"]
            assert set(parts) == {"physics", "rewards", "networks", "overhead"}
            assert sum(parts.values()) == pytest.approx(pair[f"{path}_wall_s"])
            assert parts["physics"] > 0 and parts["networks"] > 0
    assert result["speedup_sequential_over_batched"] == sorted(p["speedup"] for p in pairs)[1]
    assert result["speedup_min_max"] == [min(p["speedup"] for p in pairs), max(p["speedup"] for p in pairs)]
    assert result["batched"]["failed"] == [] and len(result["batched"]["final_success"]) == 2
    for path in ("batched", "sequential"):  # CPU seconds of every thread: the update's are part of the total
        cpu = result[path]["cpu_s"]
        assert 0 < cpu["update"] < cpu["total"] and cpu["rest"] == pytest.approx(cpu["total"] - cpu["update"])
        assert result[path]["cores_busy"] == pytest.approx(cpu["total"] / result[path]["wall_s"])
    bound = result["cpu_bound"]
    assert bound["cores"] == result["machine"]["cpus_usable"]
    assert bound["batched_min_wall_s"] == pytest.approx(result["batched"]["cpu_s"]["total"] / bound["cores"])
    assert bound["max_speedup"] == pytest.approx(result["sequential"]["wall_s"] / bound["batched_min_wall_s"])
    assert result["machine"]["nproc"] >= 1


def test_repeats_must_be_positive(tmp_path, capsys):
    bench = load_script("benchmarks/generate.py", "generate_bench")
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0", "--out", str(tmp_path / "x.json")])
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow  # the benchmark end to end on Warp's CPU device: make test-all
def test_the_warp_backend_runs_both_paths_on_warps_cpu_device(tmp_path):
    """The GPU target's run (--backend warp --device cuda) on Warp's CPU device, as CI can run it."""
    result = run_tiny(tmp_path, "--backend", "warp")
    assert (result["backend"], result["device"]) == ("warp", "cpu")
    for path in ("batched", "sequential"):
        assert result[path]["failed"] == [] and len(result[path]["final_success"]) == 2
        assert result[path]["breakdown_s"]["physics"] > 0
