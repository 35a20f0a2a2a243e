"""A run directory is locked while a process trains in it: a second trainer (a resume of a run that is still
being written) is refused before it writes anything, and the lock goes when the training process does."""

import os
import signal
import subprocess
import sys
import time

import pytest

from robreward.cli.main import main
from robreward.rl.config import PPOConfig, TrainConfig
from robreward.rl.trainer import Trainer
from robreward.rundir import RunDir, RunInUseError


def test_the_lock_is_exclusive_until_released(tmp_path):
    run = RunDir(tmp_path / "run")
    first = run.lock()
    assert first.held and run.path.is_dir() and not any(run.path.iterdir())  # no lock file: an flock on the folder
    with pytest.raises(RunInUseError, match="is being written by another training process"):
        run.lock()
    first.release()
    run.lock().release()  # free again


def test_a_live_run_is_neither_overwritten_nor_resumed(tmp_path):
    from robreward.rundir import check_out, prepare

    run = RunDir(tmp_path / "run")
    run.checkpoint_dir.mkdir(parents=True)
    (run.path / "config.yaml").write_text("task: reach\n")
    with run.lock():
        for flags in ({"overwrite": True}, {"resume": True}, {}):
            with pytest.raises(RunInUseError, match="is being written by another training process"):
                check_out(run.path, **flags)
        with pytest.raises(RunInUseError):
            prepare(run.path, overwrite=True)
        assert (run.path / "config.yaml").read_text() == "task: reach\n"  # nothing removed
    prepare(run.path, overwrite=True)  # once it is free, --overwrite removes robreward's files
    assert not (run.path / "config.yaml").exists()


def test_a_trainer_holds_its_run_directories_until_it_finishes(tmp_path):
    config = TrainConfig(task="reach", steps=256, num_envs=4, out=str(tmp_path / "a"), eval_episodes=0,
                         progress=False, ppo=PPOConfig(num_steps=16, actor_hidden=(16,), critic_hidden=(16,)))
    trainer = Trainer([config], isolate_failures=False)
    with pytest.raises(RunInUseError):
        Trainer([config], isolate_failures=False)
    trainer.learn()
    trainer.finish()
    RunDir(config.out).lock().release()  # let go after the exports
    assert (tmp_path / "a" / "policy.onnx").is_file()
    # a trainer that cannot start lets its folders go, and leaves none that it made
    bad = TrainConfig(**{**config.to_dict(), "out": str(tmp_path / "c"), "ppo": config.ppo})
    with pytest.raises(ValueError, match="unknown reward 42"):
        Trainer([bad], [42], isolate_failures=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="unknown reward 42"):
        Trainer([config], [42], isolate_failures=False)  # an existing run's folder stays, unlocked
    assert (tmp_path / "a" / "policy.onnx").is_file()
    RunDir(config.out).lock().release()


@pytest.mark.slow  # a training subprocess: make test-all
def test_resuming_a_run_that_another_process_is_training_is_refused_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "reach"
    cmd = [sys.executable, "-m", "robreward.cli.main", "train", "--task", "reach", "--steps", "2000000",
           "--out", str(out), "--eval-episodes", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        latest = out / "checkpoints" / "latest.pt"
        deadline = time.time() + 120
        while not latest.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert latest.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint in 120 s"
        config = (out / "config.yaml").stat()
        progress = (out / "progress.csv").stat()
        assert main(["train", "--resume", str(out), "--no-progress"]) != 0
        err = capsys.readouterr().err
        assert "is being written by another training process" in err and "Traceback" not in err
        # the refused resume rewrote neither the config nor the log the live run appends to (a resume replaces
        # progress.csv with its rows up to the checkpoint: a new file the live run would no longer write into)
        assert (out / "config.yaml").stat().st_mtime_ns == config.st_mtime_ns
        assert (out / "progress.csv").stat().st_ino == progress.st_ino
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    RunDir(out).lock().release()  # the kernel let the lock go with the killed process
