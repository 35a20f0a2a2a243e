"""A training killed after a checkpoint continues from it with `robreward train --resume`."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from robreward.cli.main import main

TOTAL_STEPS = 81_920  # 40 updates; the first checkpoint lands after 10 (latest_every)


@pytest.mark.slow  # a long end-to-end run (40 updates, killed and resumed in a subprocess): make test-all
def test_resume_after_kill_continues_from_the_checkpoint(tmp_path):
    out = tmp_path / "reach-resume"
    cmd = [sys.executable, "-m", "robreward.cli.main", "train", "--task", "reach", "--steps", str(TOTAL_STEPS),
           "--seed", "3", "--out", str(out), "--eval-episodes", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    latest = out / "checkpoints" / "latest.pt"
    try:
        deadline = time.time() + 120
        while not latest.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert latest.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint in 120 s"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    killed_at = torch.load(latest, weights_only=True)
    assert 0 < killed_at["global_step"] < TOTAL_STEPS, "the run finished before it could be killed"
    assert not (out / "policy.onnx").exists()

    assert main(["train", "--resume", str(out), "--no-progress"]) == 0

    final = torch.load(latest, weights_only=True)
    assert final["global_step"] == TOTAL_STEPS
    assert final["update"] == TOTAL_STEPS // 2048
    assert final["config"]["seed"] == 3 and final["config"]["task"] == "reach"
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "progress.csv"))]
    # every update logged once: rows after the checkpoint from the killed run are replaced
    assert steps == list(range(2048, TOTAL_STEPS + 1, 2048))
    assert (out / "policy.onnx").is_file() and (out / "MODEL_CARD.md").is_file()
