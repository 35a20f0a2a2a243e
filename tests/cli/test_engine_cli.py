"""What the training engine tells a person at the command line (issue 20, point 6): Ctrl-C in `train`
names the checkpoint step and the command that continues the run; `prefs train` prints one line per
round (labels, held-out accuracy) and a resumed prefs run reports the whole run's steps."""

import re

from robreward.cli.main import main
from robreward.envs.batched import BatchedEnv
from robreward.feedback.preferences.loop import LabeledPairs

# 16 worlds x 32 steps = 512 env steps per update; a checkpoint after every update
TRAIN = ["train", "--task", "reach", "--reward", "hand", "--envs", "16", "--steps", "8192", "--seed", "0",
         "--latest-every", "1", "--eval-episodes", "0", "--no-progress"]


def interrupt_after(monkeypatch, cls, name, calls: int):
    """``cls.name`` raises KeyboardInterrupt (as Ctrl-C does) on its ``calls``-th call."""
    real, count = getattr(cls, name), [0]

    def method(self, *args, **kwargs):
        count[0] += 1
        if count[0] == calls:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, method)


def test_ctrl_c_in_train_says_the_checkpoint_step_and_how_to_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, BatchedEnv, "step", 3 * 32 + 5)  # during the 4th rollout: 3 updates checkpointed
    assert main([*TRAIN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"the checkpoint at step 1,536 is in {out / 'checkpoints' / 'latest.pt'}" in err, err
    assert f"robreward train --resume {out}" in err, err
    assert err.startswith("robreward train: interrupted at step 1,536"), err

    monkeypatch.undo()  # the command it printed continues the run
    assert main(["train", "--resume", str(out), "--steps", "2048", "--no-progress"]) == 0
    assert "trained 2,048 steps" in capsys.readouterr().out


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, BatchedEnv, "step", 5)
    assert main([*TRAIN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "before the first checkpoint; nothing to resume" in err and f"--out {out}" in err, err


# a tiny reach run with the oracle teacher: 2 rounds of 10 queries, 2048 PPO steps of 8 worlds
PREFS = ["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "20", "--per-round", "10",
         "--segment", "10", "--steps", "2048", "--envs", "8", "--eval-episodes", "4", "--seed", "1"]
ROUND = re.compile(r"^round (\d)/2: step [\d,]+, labels (\d+) \(\d+ queries\), held-out accuracy (n/a|[01]\.\d\d)$")


def test_prefs_train_prints_one_line_per_round(tmp_path, capsys):
    assert main([*PREFS, "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("round ")]
    matches = [ROUND.match(line) for line in lines]
    assert all(matches) and [m.group(1) for m in matches] == ["1", "2"], lines
    assert [int(m.group(2)) for m in matches] == [10, 20]  # the labels so far
    assert matches[-1].group(3) != "n/a"  # a fitted reward model has a held-out accuracy


def test_a_resumed_prefs_run_reports_the_whole_runs_steps(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, LabeledPairs, "save", 2)  # killed in round 2, after round 1 was saved
    assert main([*PREFS, "--no-progress", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["prefs", "train", "--resume", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "2 feedback rounds, 20 queries" in said and "2,048 PPO steps" in said, said
