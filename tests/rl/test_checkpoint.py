"""Checkpoints are plain data read with weights_only=True: the RNG states round-trip exactly, old
checkpoints (numpy arrays) still resume, a hostile pickle is refused before it can run, and a run
whose config.yaml names a task folder resumes only when --task names that folder."""

import csv
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
import yaml

from robreward.cli.main import main
from robreward.rl import TrainConfig
from robreward.rl import runner
from robreward.rl.checkpoint import load_checkpoint, restore_rng, rng_state

CHANGING = ("time_s", "steps_per_s")  # wall-clock columns; every other column is deterministic


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """reach, 16 worlds, 2 updates (1024 steps), a checkpoint after each; copied by the tests."""
    out = tmp_path_factory.mktemp("ckpt") / "reach"
    runner.train(TrainConfig(task="reach", num_envs=16, steps=1024, seed=0, out=str(out), eval_episodes=0,
                             progress=False, latest_every=1))
    return out


def copy_run(tiny_run, tmp_path, name: str):
    return shutil.copytree(tiny_run, tmp_path / name)


def progress(run_dir) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in CHANGING} for row in csv.DictReader(open(run_dir / "progress.csv"))]


def draws() -> tuple:
    return random.random(), random.gauss(0, 1), float(np.random.standard_normal()), float(torch.rand(()))


def test_rng_states_round_trip_exactly_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # cached Gaussians are part of the state
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = draws()
    draws()
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert draws() == expected


def test_the_checkpoint_holds_only_plain_data(tiny_run):
    ckpt = torch.load(tiny_run / "checkpoints" / "latest.pt", weights_only=True)  # no allow-list needed
    assert ckpt["global_step"] == 1024 and isinstance(ckpt["rng"]["numpy"]["keys"], torch.Tensor)


def test_an_old_checkpoint_with_numpy_arrays_resumes_exactly_like_the_new_one(tiny_run, tmp_path):
    """The checkpoint rewritten as robreward wrote it before (RNG states as a tuple and a numpy
    array): plain weights_only refuses it, load_checkpoint reads it through the numpy allow-list,
    and the resumed run continues row for row like the resume of the new checkpoint."""
    new, old = copy_run(tiny_run, tmp_path, "new"), copy_run(tiny_run, tmp_path, "old")
    latest = old / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(latest)
    restore_rng(ckpt["rng"])
    ckpt["rng"] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save(ckpt, latest)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(latest, weights_only=True)
    assert isinstance(load_checkpoint(latest)["rng"]["numpy"][1], np.ndarray)
    for run_dir in (new, old):
        runner.resume(run_dir, steps=2048)
    assert len(progress(old)) == 4 and progress(old) == progress(new)


class WritesMarker:
    """A pickle that, if unpickled, writes a file: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_a_hostile_checkpoint_is_refused_and_never_runs(tiny_run, tmp_path, capsys):
    run_dir = copy_run(tiny_run, tmp_path, "hostile")
    marker = tmp_path / "marker"
    latest = run_dir / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(latest)
    ckpt["rng"]["python"] = WritesMarker(marker)
    torch.save(ckpt, latest)
    refused = rf"refusing to load checkpoint '{latest}': it holds more than tensors.*GLOBAL exec"
    with pytest.raises(ValueError, match=refused):
        runner.resume(run_dir)
    with pytest.raises(ValueError, match=refused):
        runner.policy_from_checkpoint(latest)
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    assert "refusing to load checkpoint" in capsys.readouterr().err
    assert not marker.exists()


def test_resume_runs_a_task_folder_only_when_the_command_line_names_it(tiny_run, tmp_path, capsys):
    folder = tmp_path / "my_task"
    folder.mkdir()
    marker = tmp_path / "task_code_ran"
    (folder / "task.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nfrom sims.reach import TASK\n")
    run_dir = copy_run(tiny_run, tmp_path, "folder-run")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**config, "task": str(folder)}))

    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"its config.yaml names the task '{folder}', which is not a task of the suite" in err
    assert "pass it explicitly: robreward train --resume RUN --task FOLDER" in err
    with pytest.raises(ValueError, match="not a task of the suite but a folder of code"):
        runner.resume(run_dir)
    assert not marker.exists()

    assert main(["train", "--resume", str(run_dir), "--task", str(folder), "--no-progress"]) == 0
    assert marker.exists()  # the user named the folder: its code is theirs to run
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["global_step"] == 1024
