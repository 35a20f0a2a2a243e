"""`robreward distance --task T A B`: the table, --json, any reward spec (a program file), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robreward.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "push_reward.py"
TINY = ["--envs", "4", "--steps", "60", "--bootstrap", "10"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_distance_table_and_json(capsys):
    code, out, _ = run_cli(capsys, "distance", "--task", "reach", "hand", "hand", *TINY)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("reach v0: hand vs hand on ") and "random actions, gamma 0.99" in lines[0]
    for label in ("EPIC", "DARD", "STARC"):  # a reward is at distance 0 from itself, interval included
        row = next(line for line in lines if line.strip().startswith(label))
        assert row.split()[1:] == ["0.000", "[0.000,", "0.000]"], row
    code, out, _ = run_cli(capsys, "distance", "--task", "reach", "hand", "hand+sparse", "--json", *TINY)
    assert code == 0
    result = json.loads(out)
    assert result["task"] == "reach" and result["b"] == "hand+sparse" and result["policy"] == "random"
    assert result["transitions"] == 4 * 58 and result["bootstrap"] == 10  # 59 a world, less the reset at step 50
    for metric in ("epic", "dard", "starc"):  # a sum of specs: neither the hand reward nor its opposite
        assert 0.0 < result[metric] < 1.0 and result[f"{metric}_ci"][0] <= result[f"{metric}_ci"][1], result


@pytest.mark.slow  # loading a reward program dry-runs it: ~20 s on 2 shared cores
def test_distance_to_a_reward_program(capsys):
    code, out, _ = run_cli(capsys, "distance", "--task", "push", "hand", str(EXAMPLE), "--json", *TINY)
    assert code == 0
    result = json.loads(out)
    assert result["b"] == str(EXAMPLE) and result["transitions"] == 4 * 59
    # the example program rewards what push's hand reward does (measured EPIC 0.02 on 16 x 256 steps)
    assert 0.0 < result["epic"] < 0.2 and 0.0 < result["starc"] < 0.3, result


def test_a_constant_reward_is_reported_not_a_traceback(capsys):
    code, out, _ = run_cli(capsys, "distance", "--task", "push", "hand", "sparse", *TINY)  # random actions never push
    assert code == 0
    assert "note: EPIC: the second reward is constant on the coverage transitions" in out
    assert next(line for line in out.splitlines() if line.strip().startswith("EPIC")).split()[1] == "-"


@pytest.mark.parametrize("args, message", [
    (["--task", "reach", "hand", "hnad"], "B 'hnad': unknown reward 'hnad' (did you mean 'hand'?)"),
    (["--task", "reach", "hand", "missing.py"], "B 'missing.py'"),
    (["--task", "nope", "hand", "sparse"], "nope"),
    (["--task", "reach", "hand", "sparse", "--steps", "1"], "--steps must be >= 2, got 1"),
    (["--task", "reach", "hand", "sparse", "--gamma", "1.5"], r"--gamma must be in [0, 1], got 1.5"),
    (["--task", "reach", "hand", "sparse", "--policy", "no/such/run"], "--policy 'no/such/run'"),
])
def test_distance_errors(capsys, args, message):
    code, out, err = run_cli(capsys, "distance", *args)
    assert code == 2 and out == ""
    assert "Traceback" not in err and message in err, err


def test_distance_on_a_policys_transitions(capsys):
    policy = Path(__file__).resolve().parents[2] / "policies" / "reach"  # the shipped hand-reward baseline
    code, out, _ = run_cli(capsys, "distance", "--task", "reach", "hand", "sparse", "--policy", policy, *TINY)
    assert code == 0 and f"of {policy}, gamma 0.99" in out.splitlines()[0]
    epic = float(next(line for line in out.splitlines() if line.strip().startswith("EPIC")).split()[1])
    # where a policy that reaches goes, hand and sparse agree (measured 0.07; 0.58 on random actions)
    assert epic < 0.3, out
