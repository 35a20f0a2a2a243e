"""The demo dataset: one HDF5 file per (task, model), many episodes, written atomically.

Layout (docs/architecture.md "Demo dataset")::

    /                      attrs: format, format_version, task, task_version, model_hash,
                                  mujoco_version, platform, machine, source, seeds, created,
                                  robreward_version, nq, nv, nstate, obs_dim, act_dim, dt,
                                  episode_length, reward_terms, history (JSON list of recordings)
    /episodes/ep_00000     attrs: length, success, terminated, return, seed, source, noise
        initial_state      [nstate] float64   full mjSTATE_INTEGRATION state at step 0
        model_fields/NAME  [...]              per-world randomized model fields (if any)
        actions            [T, act_dim] float32 (after clipping: what the env applied)
        qpos, qvel         [T+1, nq], [T+1, nv] float64 (row 0 = initial, row t = after step t)
        obs                [T+1, obs_dim] float32 (row T = the final observation)
        rewards            [T] float32 (the task's hand reward)
        reward_terms/NAME  [T] float32 (every weighted hand term)
        success            [T] bool
        frames             [T+1, H, W, 3] uint8, gzip (optional)

``model_hash`` is the sha256 of the compiled model saved with ``mujoco.mj_saveModel``: exact
for one MuJoCo version. Across MuJoCo versions the binary format differs, so there only the
model sizes are compared, a warning is given, and replay reports what diverges.

Reading never trusts the file (robreward/demos/validate.py): before any data is read, links,
external storage, virtual datasets and shapes the episode lengths or the file size do not allow
are refused; every episode read is checked for NaN/inf; the file's `task` attribute selects a
task of the suite only, never a folder of code.

Writes never touch the original until they are complete: a new file is written beside the
target and renamed over it; an append copies the file, appends to the copy, then renames.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import platform
import shutil
import warnings
from pathlib import Path

import h5py
import mujoco
import numpy as np

from robreward.demos.validate import DemoFileError, check_finite, check_layout, check_storage
from robreward.fileio import atomic_path

__all__ = ["DemoDataset", "DemoFileError", "DemoWriter", "EpisodeIndexError", "MujocoVersionWarning"]

FORMAT = "robreward-demos"
FORMAT_VERSION = 1


class EpisodeIndexError(IndexError, ValueError):
    """An episode index outside the dataset."""


class MujocoVersionWarning(UserWarning):
    """The dataset was recorded with another MuJoCo version: replay may diverge."""


_VIS_GROUPS = ("global_", "quality", "headlight", "map", "scale", "rgba")


def model_hash(model: mujoco.MjModel) -> str:
    """sha256 of the compiled model (mj_saveModel): the same for the same XML and MuJoCo build.

    The visual settings (model.vis) are reset to MuJoCo's defaults first: renderers change them
    (offscreen size, shadows) on shared model objects, and they never affect the physics."""
    m = copy.copy(model)
    ref = mujoco.MjModel.from_xml_string("<mujoco/>").vis
    for group in _VIS_GROUPS:
        src, dst = getattr(ref, group), getattr(m.vis, group)
        for name in dir(src):
            if not name.startswith("_"):
                setattr(dst, name, getattr(src, name))
    buf = np.zeros(mujoco.mj_sizeModel(m), np.uint8)
    mujoco.mj_saveModel(m, None, buf)
    return hashlib.sha256(buf.tobytes()).hexdigest()


def file_meta(spec, model: mujoco.MjModel, source: str) -> dict:
    """The per-file attributes of a new dataset for task `spec` (model: a fresh build_model())."""
    import robreward

    nstate = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": spec.name,
        "task_version": int(spec.version),
        "model_hash": model_hash(model),
        "mujoco_version": mujoco.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "source": str(source),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "robreward_version": robreward.__version__,
        "nq": int(model.nq),
        "nv": int(model.nv),
        "nstate": int(nstate),
        "obs_dim": int(spec.obs_dim),
        "act_dim": int(spec.act_dim),
        "dt": float(model.opt.timestep) * spec.frame_skip,
        "episode_length": int(spec.episode_length),
        "reward_terms": json.dumps([t.name for t in spec.reward_terms]),
    }


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _open_h5(path: Path, mode: str = "r") -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"demo dataset {str(path)!r} does not exist")
    if path.is_dir():
        raise DemoFileError(f"{str(path)!r} is a folder, not a demo dataset file")
    try:
        return h5py.File(path, mode)
    except OSError as err:
        raise DemoFileError(f"file is truncated or not an HDF5 dataset: {path} ({err})") from None


def check_compatible(attrs: dict, spec, model: mujoco.MjModel, force: bool = False, where: str = "") -> list[str]:
    """Refuse a dataset of another task or model (unless force); warn on another MuJoCo version.
    Returns the list of mismatches that `force` let through."""
    where = where or "demo dataset"
    problems = []
    if attrs.get("task") != spec.name:
        problems.append(f"{where} is for task {attrs.get('task')!r}, not {spec.name!r}")
    elif int(attrs.get("task_version", -1)) != int(spec.version):
        problems.append(f"{where} is for {spec.name} v{attrs.get('task_version')}, the task here is v{spec.version}")
    sizes = {"nq": model.nq, "nv": model.nv,
             "nstate": mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION),
             "obs_dim": spec.obs_dim, "act_dim": spec.act_dim}
    bad = {k: (attrs.get(k), int(v)) for k, v in sizes.items() if attrs.get(k) != int(v)}
    if bad:
        problems.append(f"{where} has model sizes {', '.join(f'{k}={a} (here {b})' for k, (a, b) in bad.items())}")
    if attrs.get("mujoco_version") != mujoco.__version__:
        warnings.warn(
            f"{where} was recorded with MuJoCo {attrs.get('mujoco_version')}, this is MuJoCo "
            f"{mujoco.__version__}: the model hash cannot be compared and replay may diverge "
            "(run `robreward demos replay FILE --check` to see how much)", MujocoVersionWarning, stacklevel=3)
    elif not problems and attrs.get("model_hash") != model_hash(model):
        problems.append(f"{where} was recorded on another model XML of {spec.name} (model hash "
                        f"{str(attrs.get('model_hash'))[:12]}..., here {model_hash(model)[:12]}...)")
    if problems and not force:
        raise DemoFileError("; ".join(problems) + f": record demos of this task (robreward demos record --task "
                            f"{spec.name} --out FILE.h5), or use this one anyway with force=True (the demos verbs' "
                            "--force)")
    for p in problems:
        warnings.warn(f"{p} (used anyway: force)", UserWarning, stacklevel=3)
    return problems


class DemoDataset:
    """Read a dataset: ``with DemoDataset(path) as ds: ep = ds.episode(0)``.

    Opening checks that the file is an intact robreward demo dataset; pass ``task=`` (a task,
    or "auto" for the file's own task) to also check that it belongs to that task and model
    as defined here (``force=True`` lets mismatches through); ``.spec`` is then that task.
    """

    def __init__(self, path, task=None, force: bool = False):
        self.path = Path(path)
        self._f = _open_h5(self.path)
        try:
            self.attrs = {k: _attr(v) for k, v in self._f.attrs.items()}
            if self.attrs.get("format") != FORMAT:
                raise DemoFileError(f"{self.path} is an HDF5 file but not a robreward demo dataset "
                                    f"(no format={FORMAT!r} attribute)")
            if int(self.attrs.get("format_version", 0)) > FORMAT_VERSION:
                raise DemoFileError(f"{self.path} has format version {self.attrs['format_version']}; this "
                                    f"robreward reads up to {FORMAT_VERSION}: upgrade robreward")
            # before any data is read, or any name resolved (that could follow an external link):
            # nothing outside this file, no size the file cannot hold
            check_storage(self._f, self.path, self.path.stat().st_size)
            if "episodes" not in self._f:
                raise DemoFileError(f"{self.path} has no 'episodes' group: the file is incomplete")
            check_layout(self._f, self.attrs, self.path)
            self.names = sorted(self._f["episodes"].keys())
            self.spec = None
            self.mismatches: list[str] = []
            if task is not None:
                from robreward.envs.registry import get_task

                # "auto": the file's own task name, a task of the suite only (a file never picks a
                # folder of code); a folder comes from the command line as `task`
                self.spec = (get_task(str(self.attrs.get("task")), allow_folder=False) if task == "auto"
                             else get_task(task))
                self.mismatches = check_compatible(self.attrs, self.spec, self.spec.build_model(), force,
                                                   where=f"demo dataset {self.path}")
        except Exception:
            self._f.close()
            raise

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()

    def _group(self, index: int) -> h5py.Group:
        if not -len(self) <= index < len(self):
            raise EpisodeIndexError(f"episode {index} out of range: {self.path} has {len(self)} episodes (0..{len(self) - 1})")
        return self._f["episodes"][self.names[index]]

    def episode_attrs(self, index: int) -> dict:
        return {k: _attr(v) for k, v in self._group(index).attrs.items()}

    def episode(self, index: int, fields=None) -> dict:
        """One episode as numpy arrays (all fields, or those named); attrs under "attrs"."""
        g = self._group(index)
        try:
            out = {"attrs": self.episode_attrs(index)}
            for key, item in g.items():
                if fields is not None and key not in fields:
                    continue
                if isinstance(item, h5py.Group):
                    out[key] = {k: np.asarray(v[()]) for k, v in item.items()}
                else:
                    out[key] = np.asarray(item[()])
        except OSError as err:
            raise DemoFileError(f"file is truncated or corrupted: {self.path}, episode {self.names[index]} ({err})") from None
        check_finite(out, f"{self.path}, episode {index % len(self)} ({self.names[index]})")
        return out

    def lengths(self) -> np.ndarray:
        return np.array([int(self._group(i).attrs["length"]) for i in range(len(self))], dtype=np.int64)

    def successes(self) -> np.ndarray:
        return np.array([bool(self._group(i).attrs["success"]) for i in range(len(self))], dtype=bool)

    def summary(self) -> dict:
        lengths, succ = self.lengths(), self.successes()
        returns = [float(self._group(i).attrs.get("return", np.nan)) for i in range(len(self))]
        keys = ("task", "task_version", "source", "created", "mujoco_version", "platform", "machine",
                "robreward_version", "model_hash")
        info = {k: self.attrs.get(k) for k in keys}
        info.update({
            "path": str(self.path), "episodes": len(self), "steps": int(lengths.sum()),
            "length_mean": float(lengths.mean()) if len(self) else 0.0,
            "length_min": int(lengths.min()) if len(self) else 0, "length_max": int(lengths.max()) if len(self) else 0,
            "success_rate": float(succ.mean()) if len(self) else 0.0,
            "return_mean": float(np.mean(returns)) if len(self) else 0.0,
            "seeds": self.attrs.get("seeds"), "frames": bool(len(self)) and "frames" in self._group(0),
            "history": json.loads(self.attrs.get("history", "[]")),
            "size_bytes": self.path.stat().st_size,
        })
        return info


class DemoWriter:
    """Write episodes atomically: ``with DemoWriter(path, meta) as w: w.add_episode(...)``.

    A new file is written beside `path` and renamed over it when the block ends without an
    error; with ``append=True`` and an existing file, the file is copied, the episodes are
    appended to the copy (numbering continues) and the copy replaces it. On any error the
    original is left as it was.
    """

    def __init__(self, path, meta: dict, append: bool = True, force: bool = False, record_info: dict | None = None):
        self.path = Path(path)
        self.meta = meta
        self.tmp = None  # the temp file beside path (robreward.fileio.atomic_path), from __enter__ on
        self.record_info = record_info or {}
        self.append = append and self.path.exists()  # append=False: a new file replaces any old one
        if self.append:
            with _open_h5(self.path) as f:  # validates before copying
                old = {k: _attr(v) for k, v in f.attrs.items()}
                if old.get("format") != FORMAT:
                    raise DemoFileError(f"{self.path} is not a robreward demo dataset; refusing to append to it")
                check_storage(f, self.path, self.path.stat().st_size)
            self._check_append(old, force)
        self._f = None
        self.count = 0

    def _check_append(self, old: dict, force: bool) -> None:
        problems = [f"{k}: file has {old.get(k)!r}, new episodes {self.meta[k]!r}"
                    for k in ("task", "task_version", "model_hash", "mujoco_version", "nstate", "obs_dim", "act_dim")
                    if old.get(k) != self.meta[k]]
        if problems and not force:
            raise DemoFileError(f"cannot append to {self.path}: " + "; ".join(problems) + " (pass --force to append anyway)")
        seeds = sorted({int(s) for s in np.ravel(old.get("seeds", []))})
        seed = self.record_info.get("seed")
        if seed is not None and int(seed) in seeds:  # the same seed records the same episodes again
            raise DemoFileError(
                f"cannot append to {self.path}: it already holds episodes recorded with seed {int(seed)} (seeds in "
                f"the file: {', '.join(map(str, seeds))}), and the same seed would record the same episodes again; "
                f"pass a seed not in the file (e.g. --seed {max(seeds) + 1}), or --overwrite to replace the file")

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        try:
            self._open()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def _open(self) -> None:
        if self.append:
            shutil.copyfile(self.path, self.tmp)
            self._f = h5py.File(self.tmp, "a")
            self.first = len(self._f["episodes"])
        else:
            self._f = h5py.File(self.tmp, "w")
            for k, v in self.meta.items():
                self._f.attrs[k] = v
            self._f.attrs["seeds"] = np.zeros(0, np.int64)
            self._f.attrs["history"] = "[]"
            self._f.create_group("episodes")
            self.first = 0
        f = self._f
        history = json.loads(_attr(f.attrs["history"]))
        history.append({"source": self.meta["source"], "created": self.meta["created"], "first_episode": self.first,
                        **self.record_info})
        f.attrs["history"] = json.dumps(history)
        if self.append and _attr(f.attrs["source"]) != self.meta["source"]:
            f.attrs["source"] = "mixed (see history)"
        if "seed" in self.record_info:
            f.attrs["seeds"] = np.append(np.asarray(f.attrs["seeds"], np.int64), int(self.record_info["seed"]))

    def add_episode(self, initial_state, actions, qpos, qvel, obs, rewards, reward_terms: dict, success,
                    model_fields: dict | None = None, frames=None, attrs: dict | None = None) -> int:
        """Append one episode; returns its index."""
        index = self.first + self.count
        g = self._f["episodes"].create_group(f"ep_{index:05d}")
        actions = np.asarray(actions, np.float32)
        T = len(actions)
        if np.shape(qpos)[0] != T + 1 or np.shape(qvel)[0] != T + 1 or np.shape(obs)[0] != T + 1:
            raise ValueError(f"episode arrays disagree: {T} actions need {T + 1} rows of qpos/qvel/obs")
        z = {}  # small contiguous arrays: chunked+gzip costs more in per-dataset overhead than it saves
        g.create_dataset("initial_state", data=np.asarray(initial_state, np.float64))
        g.create_dataset("actions", data=actions, **z)
        g.create_dataset("qpos", data=np.asarray(qpos, np.float64), **z)
        g.create_dataset("qvel", data=np.asarray(qvel, np.float64), **z)
        g.create_dataset("obs", data=np.asarray(obs, np.float32), **z)
        g.create_dataset("rewards", data=np.asarray(rewards, np.float32), **z)
        terms = g.create_group("reward_terms")
        for name, values in reward_terms.items():
            terms.create_dataset(name, data=np.asarray(values, np.float32), **z)
        succ = np.asarray(success, bool)
        g.create_dataset("success", data=succ, **z)
        if model_fields:
            mf = g.create_group("model_fields")
            for name, values in model_fields.items():
                mf.create_dataset(name, data=np.asarray(values))
        if frames is not None:
            g.create_dataset("frames", data=np.asarray(frames, np.uint8), compression="gzip", compression_opts=4,
                             chunks=(1,) + tuple(np.shape(frames)[1:]))
        g.attrs["length"] = T
        g.attrs["success"] = bool(succ.any())
        g.attrs["return"] = float(np.sum(np.asarray(rewards, np.float64)))
        for k, v in (attrs or {}).items():
            g.attrs[k] = v
        self.count += 1
        return index

    def __exit__(self, exc_type, exc, tb):
        try:
            self._f.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)  # replaces path, or removes the temp file after an error
        return False
