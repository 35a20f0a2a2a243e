"""issue 20, point 6: a policy of one task used on another says what does not match (sizes and the
task it was trained on) in one line, exit 2, before anything runs or is written."""

from pathlib import Path

from robreward.cli.main import main

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_eval_a_policy_of_another_task_says_what_does_not_match(tmp_path, capsys):
    shipped = POLICIES / "reach"
    run = tmp_path / "reach-run"
    run.mkdir()
    for name in ("policy.onnx", "config.yaml"):
        (run / name).write_bytes((shipped / name).read_bytes())
    assert main(["eval", str(run), "--task", "push", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert ("does not fit task 'push': the policy maps observations [B, 13] -> actions [B, 4], task 'push' "
            "needs observations [B, 19] -> actions [B, 4]; it was trained on task 'reach'") in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (run / "eval.json").exists()


def test_demos_record_from_a_policy_of_another_task_says_what_does_not_match(tmp_path, capsys):
    out = tmp_path / "push-from-reach.h5"
    code = main(["demos", "record", "--task", "push", "--source", str(POLICIES / "reach"), "--episodes", "1",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit task 'push'" in err and "trained on task 'reach'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not out.exists()
