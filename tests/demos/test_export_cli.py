"""Minari export loads with minari; the `robreward demos` verbs end to end."""

import json
import shutil

import h5py
import numpy as np
import pytest

from robreward.cli.main import main
from robreward.demos.format import DemoDataset

minari = pytest.importorskip("minari")


def test_minari_export_loads(reach_file, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    from robreward.demos.export import export

    result = export(reach_file, "minari")
    assert result["dataset_id"] == "robreward/reach/expert-v0"
    dataset = minari.load_dataset(result["dataset_id"])
    assert dataset.total_episodes == 4 and dataset.total_steps == 4 * 50
    with DemoDataset(reach_file) as ds:
        ep0 = ds.episode(0)
    first = next(dataset.iterate_episodes())
    np.testing.assert_array_equal(first.observations, ep0["obs"])
    np.testing.assert_array_equal(first.actions, ep0["actions"])
    np.testing.assert_allclose(first.rewards, ep0["rewards"])
    assert first.truncations[-1] and not first.terminations.any()
    with pytest.raises(ValueError, match="exists already"):
        export(reach_file, "minari")
    assert export(reach_file, "minari", name="again")["dataset_id"] == "robreward/reach/again-v0"


def test_cli_record_info_replay_export(tmp_path, monkeypatch, capsys):
    out = tmp_path / "push-expert.h5"
    assert main(["demos", "record", "--task", "push", "--source", "expert", "--episodes", "3",
                 "--num-envs", "3", "--out", str(out), "--seed", "0", "--noise", "0.3", "--quiet"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["episodes"] == 3 and rec["path"] == str(out)

    assert main(["demos", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 episodes of push v0" in text and "success rate" in text and "model hash" in text
    assert main(["demos", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 3

    assert main(["demos", "replay", str(out), "--check", "--quiet"]) == 0
    assert "3 episodes replayed, 0 diverged" in capsys.readouterr().out

    video = tmp_path / "ep2.mp4"
    assert main(["demos", "replay", str(out), "--episode", "2", "--video", str(video),
                 "--width", "64", "--height", "48"]) == 0
    assert video.stat().st_size > 0
    capsys.readouterr()

    bad = tmp_path / "tampered.h5"
    shutil.copyfile(out, bad)
    with h5py.File(bad, "a") as f:
        f["episodes/ep_00002/actions"][5] = 1.0 - f["episodes/ep_00002/actions"][5]
    assert main(["demos", "replay", str(bad), "--check", "--quiet"]) == 1
    assert "DIVERGES at step 6" in capsys.readouterr().out

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert main(["demos", "export", str(out), "--format", "minari", "--name", "push-test"]) == 0
    assert minari.load_dataset("robreward/push/push-test-v0").total_episodes == 3


def test_cli_errors_are_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 100)
    assert main(["demos", "info", str(junk)]) == 2
    assert "truncated or not an HDF5 dataset" in capsys.readouterr().err
    assert main(["demos", "record", "--task", "cheetah-run", "--out", str(tmp_path / "x.h5")]) == 2
    assert "has no scripted expert" in capsys.readouterr().err
    assert main(["demos", "record", "--task", "reach", "--source", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "x.h5")]) == 2
    assert "neither 'expert' nor an existing policy" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
