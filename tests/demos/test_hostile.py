"""Hostile demo files: each is refused with a message naming what is wrong, by every verb that
reads demos (`demos replay`, `demos export`, `demos info`, BC through `train --init-from-demos`),
before any of its data is read: nothing is read from the files it points at, no huge shape is
allocated, no task folder it names is loaded."""

import shutil
import tracemalloc

import h5py
import numpy as np
import pytest

from robreward.demos.bc import load_pairs
from robreward.demos.format import DemoDataset, DemoFileError
from robreward.demos.record import record

MARKER = 1234.5  # what the pointed-to file holds: it must never reach any output


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """Files a hostile dataset points at: raw bytes (external storage) and an HDF5 file."""
    folder = tmp_path_factory.mktemp("secrets")
    raw = folder / "secret.bin"
    raw.write_bytes(np.full(4096, MARKER, np.float32).tobytes())
    h5 = folder / "secret.h5"
    with h5py.File(h5, "w") as f:
        f["actions"] = np.full((50, 4), MARKER, np.float32)
    return raw, h5


def _copy(reach_file, tmp_path, name):
    out = tmp_path / f"{name}.h5"
    shutil.copyfile(reach_file, out)
    return out


def _hostile(kind, reach_file, tmp_path, secrets):
    """A copy of a valid reach dataset whose episode 0 actions come from outside the file."""
    raw, h5 = secrets
    out = _copy(reach_file, tmp_path, kind)
    with h5py.File(out, "a") as f:
        g = f["episodes/ep_00000"]
        shape, dtype = g["actions"].shape, g["actions"].dtype
        del g["actions"]
        if kind == "external-storage":
            g.create_dataset("actions", shape=shape, dtype=dtype, external=[(str(raw), 0, 4 * int(np.prod(shape)))])
        elif kind == "external-link":
            g["actions"] = h5py.ExternalLink(str(h5), "/actions")
        elif kind == "soft-link-outside":
            f["outside"] = h5py.ExternalLink(str(h5), "/actions")
            g["actions"] = h5py.SoftLink("/outside")
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[:] = h5py.VirtualSource(str(h5), "actions", shape=shape)
            g.create_virtual_dataset("actions", layout)
    with h5py.File(out) as f:  # the file is real: plain h5py reads the secret through it
        assert np.all(f["episodes/ep_00000/actions"][()] == MARKER)
    return out


HOSTILE = {
    "external-storage": "ep_00000/actions keeps its data in external file",
    "external-link": "ep_00000/actions is an external link to",
    "soft-link-outside": "ep_00000/actions is a soft link to '/outside'",
    "virtual": "ep_00000/actions is a virtual dataset reading from",
}


def _verbs(path, tmp_path):
    return {
        "replay": ["demos", "replay", path, "--check", "--quiet"],
        "info": ["demos", "info", path],
        "export": ["demos", "export", path, "--format", "minari", "--name", "hostile"],
        "bc": ["train", "--task", "reach", "--init-from-demos", path, "--envs", "2", "--steps", "64",
               "--eval-episodes", "0", "--no-progress", "--out", tmp_path / "run"],
    }


@pytest.mark.parametrize("verb", ["replay", "info", "export", "bc"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_data_from_outside_the_file_is_refused_unread(kind, verb, reach_file, secrets, tmp_path, cli,
                                                      watch_reads, monkeypatch):
    if verb == "export":
        pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    path = _hostile(kind, reach_file, tmp_path, secrets)
    with watch_reads(*secrets) as reads:
        code, out, err = cli(*_verbs(path, tmp_path)[verb])
    assert code == 2, (out, err)
    assert HOSTILE[kind] in err and "refusing to read it" in err
    assert "Traceback" not in err and str(MARKER) not in out + err
    assert reads == [], "the pointed-to file was opened"
    assert not (tmp_path / "minari").exists() or not any((tmp_path / "minari").rglob("*.h*5"))


def test_soft_link_inside_the_file_is_refused(reach_file, tmp_path):
    path = _copy(reach_file, tmp_path, "soft")
    with h5py.File(path, "a") as f:
        del f["episodes/ep_00001/obs"]
        f["episodes/ep_00001/obs"] = h5py.SoftLink("/episodes/ep_00000/obs")
    with pytest.raises(DemoFileError, match="ep_00001/obs is a soft link to '/episodes/ep_00000/obs'"):
        DemoDataset(path)


def _tiny_file_declaring(path, reach_file, length):
    """A ~10 KB file with reach's attributes and one episode of `length` steps whose datasets
    are declared at the matching shapes but never written (HDF5 would hand back zeros)."""
    with h5py.File(reach_file) as src, h5py.File(path, "w") as f:
        for key, value in src.attrs.items():
            f.attrs[key] = value
        f.attrs["episode_length"] = length
        g = f.create_group("episodes").create_group("ep_00000")
        g.attrs["length"] = length
        sizes = {k: int(src.attrs[k]) for k in ("nq", "nv", "nstate", "obs_dim", "act_dim")}
        g.create_dataset("initial_state", data=np.zeros(sizes["nstate"]))
        for name, cols, dtype in (("actions", "act_dim", "f4"), ("obs", "obs_dim", "f4"), ("qpos", "nq", "f8"),
                                  ("qvel", "nv", "f8")):
            rows = length if name == "actions" else length + 1
            g.create_dataset(name, shape=(rows, sizes[cols]), dtype=dtype)
        g.create_dataset("rewards", shape=(length,), dtype="f4")
        g.create_dataset("success", shape=(length,), dtype=bool)
        g.create_group("reward_terms")
    return path


def test_huge_declared_shape_is_refused_without_allocating(reach_file, tmp_path, cli):
    path = _tiny_file_declaring(tmp_path / "huge.h5", reach_file, length=9_999_999)
    assert path.stat().st_size < 64_000
    tracemalloc.start()
    try:
        with pytest.raises(DemoFileError, match=r"declares shape \(9999999, 4\) .* but stores 0 bytes"):
            load_pairs(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing"
    code, _, err = cli(*_verbs(path, tmp_path)["bc"])
    assert code == 2 and "declares shape" in err and "truncated or crafted" in err and "Traceback" not in err


def test_huge_shape_in_a_real_file_is_refused(reach_file, tmp_path, cli):
    path = _copy(reach_file, tmp_path, "bigobs")
    with h5py.File(path, "a") as f:
        del f["episodes/ep_00003/obs"]
        f["episodes/ep_00003"].create_dataset("obs", shape=(200_000_000, 13), dtype="f4")  # 9.7 GiB
    code, _, err = cli("demos", "replay", path, "--quiet")
    assert code == 2 and "ep_00003/obs declares shape (200000000, 13) (9.7 GiB)" in err


@pytest.mark.parametrize("edit, message", [
    (lambda g: g.attrs.__setitem__("length", 10**12), r"attribute length=1000000000000 must be an integer in \[1, 50\]"),
    (lambda g: (g.__delitem__("obs"), g.create_dataset("obs", data=np.zeros((40, 13), np.float32))),
     r"ep_00001: obs has shape \(40, 13\) float32, expected \[51, 13\]"),
    (lambda g: (g.__delitem__("qpos"), g.create_dataset("qpos", data=np.zeros((51, 9)))),
     r"ep_00001: qpos has shape \(51, 9\) float64, expected \[51, 5\]"),
    (lambda g: g.__delitem__("actions"), r"ep_00001 lacks actions"),
    (lambda g: g.create_dataset("script", data=np.zeros(3)), r"ep_00001: unexpected 'script'"),
])
def test_shapes_must_match_the_episode_length_and_sizes(edit, message, reach_file, tmp_path, cli):
    path = _copy(reach_file, tmp_path, "shape")
    with h5py.File(path, "a") as f:
        edit(f["episodes/ep_00001"])
    with pytest.raises(DemoFileError, match=message):
        DemoDataset(path)
    code, _, err = cli("demos", "replay", path, "--quiet")
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("field, step, verb", [("obs", 17, "bc"), ("qpos", 30, "replay"), ("actions", 5, "export"),
                                               ("rewards", 3, "export")])
def test_non_finite_data_is_named_by_episode_and_step(field, step, verb, reach_file, tmp_path, cli, monkeypatch):
    if verb == "export":
        pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    path = _copy(reach_file, tmp_path, "nan")
    with h5py.File(path, "a") as f:
        f[f"episodes/ep_00002/{field}"][step] = np.nan if field != "qpos" else np.inf
    code, _, err = cli(*_verbs(path, tmp_path)[verb])
    assert code == 2
    assert f"episode 2 (ep_00002): {field} is not finite at step {step}" in err, err
    assert "policy" not in err.split("error:", 1)[1] and "Traceback" not in err


TASK_PY = """import dataclasses
from pathlib import Path
from sims.reach import TASK as _BASE
Path({marker!r}).write_text("task.py ran")
TASK = dataclasses.replace(_BASE, name="my-reach")
"""


@pytest.fixture
def task_folder(tmp_path):
    folder = tmp_path / "my_reach"
    folder.mkdir()
    marker = tmp_path / "task-py-ran"
    (folder / "task.py").write_text(TASK_PY.format(marker=str(marker)))
    return folder, marker


def test_a_file_naming_a_task_folder_never_loads_it(reach_file, task_folder, tmp_path, cli, monkeypatch):
    folder, marker = task_folder
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    path = _copy(reach_file, tmp_path, "folder-task")
    with h5py.File(path, "a") as f:
        f.attrs["task"] = str(folder)
    for argv in (("demos", "replay", path, "--quiet"), ("demos", "export", path, "--name", "x"),
                 ("demos", "replay", path, "--episode", "0", "--video", tmp_path / "v.mp4")):
        code, _, err = cli(*argv)
        assert code == 2 and "never selects a task folder" in err and "--task FOLDER" in err, err
    with pytest.raises(ValueError, match="never selects a task folder"):
        DemoDataset(path, task="auto")
    assert not marker.exists()


def test_a_folder_task_is_chosen_on_the_command_line(reach_file, task_folder, tmp_path, cli):
    folder, marker = task_folder
    path = tmp_path / "my-reach.h5"
    record(str(folder), "expert", 2, path, seed=0, num_envs=2, progress=False)  # the user chose the folder
    marker.unlink()
    with DemoDataset(path) as ds:
        assert ds.attrs["task"] == "my-reach"  # the file keeps the task's name, not the folder
    code, _, err = cli("demos", "replay", path, "--quiet")
    assert code == 2 and "'my-reach', which is not a task of the suite" in err and "--task FOLDER" in err
    assert not marker.exists()
    code, out, err = cli("demos", "replay", path, "--quiet", "--task", folder)
    assert code == 0 and "2 episodes replayed, 0 diverged" in out, err
    code, _, err = cli("demos", "replay", reach_file, "--quiet", "--task", folder)  # names must match
    assert code == 2 and "is for task 'reach', not 'my-reach'" in err


def test_recording_never_appends_to_a_hostile_file(reach_file, secrets, tmp_path, watch_reads):
    path = _hostile("external-link", reach_file, tmp_path, secrets)
    before = path.read_bytes()
    with watch_reads(*secrets) as reads:
        with pytest.raises(DemoFileError, match="is an external link to"):
            record("reach", "expert", 1, path, seed=0, num_envs=1, progress=False)
    assert reads == [] and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_the_episodes_group_itself_linked_from_another_file(reach_file, tmp_path, watch_reads, cli):
    other = tmp_path / "elsewhere.h5"
    shutil.copyfile(reach_file, other)
    path = _copy(reach_file, tmp_path, "linked-episodes")
    with h5py.File(path, "a") as f:
        del f["episodes"]
        f["episodes"] = h5py.ExternalLink(str(other), "/episodes")
    with watch_reads(other) as reads:
        code, _, err = cli("demos", "info", path)
    assert code == 2 and "/episodes is an external link to" in err and reads == []
