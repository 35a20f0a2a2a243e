"""Append keeps earlier episodes; corrupted and mismatched files fail clearly and stay untouched."""

import os
import shutil
import warnings

import h5py
import numpy as np
import pytest

from robreward.demos.format import DemoDataset, DemoFileError, MujocoVersionWarning
from robreward.demos.record import record
from robreward.demos.replay import replay


def _bytes(path):
    return open(path, "rb").read()


def test_append_keeps_earlier_episodes_and_numbering_continues(tmp_path):
    out = tmp_path / "reach.h5"
    record("reach", "expert", 2, out, seed=0, num_envs=2, progress=False)
    with DemoDataset(out) as ds:
        before = [ds.episode(i) for i in range(2)]
    record("reach", "expert", 3, out, seed=1, noise=0.5, num_envs=3, progress=False)
    with DemoDataset(out, task="reach") as ds:
        assert ds.names == [f"ep_{i:05d}" for i in range(5)]
        for i in range(2):
            after = ds.episode(i)
            for key in ("initial_state", "actions", "qpos", "qvel", "obs", "rewards", "success"):
                assert np.array_equal(after[key], before[i][key]), key
        assert ds.episode_attrs(4)["seed"] == 1 and ds.episode_attrs(4)["noise"] == 0.5
        summary = ds.summary()
        assert summary["seeds"] == [0, 1]
        assert [h["first_episode"] for h in summary["history"]] == [0, 2]
    assert replay(out, progress=False)["max_abs_error"] == 0.0
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # no temporary file left behind


def test_overwrite_replaces(tmp_path):
    out = tmp_path / "reach.h5"
    record("reach", "expert", 2, out, seed=0, num_envs=2, progress=False)
    record("reach", "expert", 1, out, seed=0, num_envs=1, append=False, progress=False)
    with DemoDataset(out) as ds:
        assert len(ds) == 1


@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_corrupted_file_fails_clearly_and_is_left_untouched(kind, reach_file, tmp_path):
    bad = tmp_path / f"{kind}.h5"
    if kind == "truncated":
        data = _bytes(reach_file)
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    original = _bytes(bad)
    with pytest.raises(DemoFileError, match="truncated or not an HDF5 dataset"):
        DemoDataset(bad)
    with pytest.raises(DemoFileError, match="truncated or not an HDF5 dataset"):
        replay(bad, progress=False)
    with pytest.raises(DemoFileError, match="truncated or not an HDF5 dataset"):
        record("reach", "expert", 1, bad, seed=0, num_envs=1, progress=False)  # append refused
    assert _bytes(bad) == original
    assert sorted(os.listdir(tmp_path)) == [bad.name]


def test_hdf5_that_is_not_a_dataset(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DemoFileError, match="not a robreward demo dataset"):
        DemoDataset(other)


def test_other_task_refused_unless_force(reach_file, tmp_path):
    original = _bytes(reach_file)
    with pytest.raises(DemoFileError, match="is for task 'reach', not 'push'.*--force"):
        DemoDataset(reach_file, task="push")
    with pytest.raises(DemoFileError, match="cannot append.*task"):
        record("push", "expert", 1, reach_file, seed=0, num_envs=1, progress=False)
    assert _bytes(reach_file) == original
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with DemoDataset(reach_file, task="push", force=True) as ds:
            assert ds.mismatches
    assert any("force" in str(w.message) for w in caught)


def test_other_model_refused_unless_force(reach_file, tmp_path):
    edited = tmp_path / "edited-model.h5"
    shutil.copyfile(reach_file, edited)
    with h5py.File(edited, "a") as f:
        f.attrs["model_hash"] = "0" * 64  # as if recorded on an edited scene XML
    original = _bytes(edited)
    with pytest.raises(DemoFileError, match="another model XML"):
        DemoDataset(edited, task="reach")
    with pytest.raises(DemoFileError, match="another model XML"):
        replay(edited, progress=False)
    assert _bytes(edited) == original
    with pytest.warns(UserWarning, match="another model XML"):
        assert replay(edited, force=True, progress=False)["max_abs_error"] == 0.0


def test_other_mujoco_version_warns_then_replays(reach_file, tmp_path):
    older = tmp_path / "older-mujoco.h5"
    shutil.copyfile(reach_file, older)
    with h5py.File(older, "a") as f:
        f.attrs["mujoco_version"] = "3.1.0"
    with pytest.warns(MujocoVersionWarning, match="MuJoCo 3.1.0"):
        result = replay(older, progress=False)
    assert result["diverged"] == 0  # same build underneath: still bit-exact


def test_episode_index_out_of_range(reach_file):
    with DemoDataset(reach_file) as ds:
        with pytest.raises(IndexError, match="has 4 episodes"):
            ds.episode(7)
