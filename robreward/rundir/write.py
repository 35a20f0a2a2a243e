"""Writing a run directory: config.yaml, checkpoints, eval.json, failed.json and progress.csv,
each atomically; ``RunDir`` (a run's paths, readers and writers) and the refusal of a used
--out (check_out, prepare, start_new_run)."""

from __future__ import annotations

import csv
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from robreward.fileio import atomic_path, atomic_write_json, atomic_write_text
from robreward.rundir.card import render_model_card, update_card_eval
from robreward.rundir.layout import (
    CARD_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CSV_FIELDS,
    EVAL_FIELDS,
    EVAL_FILE,
    FAILED_FILE,
    LATEST,
    LATEST_SB3,
    POLICY_FILE,
    PROGRESS_FILE,
    SCHEMA_VERSION,
    STEP_CHECKPOINT,
    TB_DIR,
)
from robreward.rundir.read import (
    load_checkpoint,
    read_config,
    read_eval,
    read_failed,
    read_progress,
    train_reward_invalid,
)


# -- config, checkpoints, eval.json, failed.json ---------------------------------------------------
def write_config(run_dir, config: dict) -> Path:
    """config.yaml: ``schema_version`` first, then the resolved config's fields (TrainConfig.to_dict())."""
    data = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in config.items() if k != "schema_version"}}
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))


def atomic_torch_save(obj, path) -> Path:
    """torch.save through a temp file and an atomic rename: a killed writer never leaves half a file."""
    path = Path(path)
    with atomic_path(path, suffix="") as tmp:
        torch.save(obj, tmp)
    return path


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # eval.json: None where undefined
    return obj


def write_eval(run_dir_or_path, result: dict) -> Path:
    """eval.json into a run directory (or to a .json path); refuses a result without EVAL_FIELDS.
    Into a training run's directory it adds ``train_reward_invalid`` (train_reward_invalid) when
    the result lacks it."""
    target = Path(run_dir_or_path)
    if target.suffix != ".json":
        target = target / EVAL_FILE
    missing = [f for f in EVAL_FIELDS if f not in result]
    if missing:
        raise ValueError(f"eval result lacks the eval.json fields {missing}")
    if "train_reward_invalid" not in result and "per_seed" not in result:
        invalid = train_reward_invalid(target.parent)
        if invalid is not None:
            result = {**result, "train_reward_invalid": invalid}
    return atomic_write_json(target, _jsonable(result), indent=2, allow_nan=False)


def write_failed(run_dir, record: dict) -> Path:
    """failed.json: ``error`` (one line: what failed and why) plus whatever the trainer adds."""
    if "error" not in record:
        raise ValueError("a failed.json record needs an 'error' entry")
    return atomic_write_json(Path(run_dir) / FAILED_FILE, record)


# -- progress.csv ----------------------------------------------------------------------------------
class ProgressLog:
    """progress.csv, one row per update (CSV_FIELDS). Opened for a resume it keeps the rows up to
    the checkpoint's step (``keep_until``) and drops the ones a killed run logged after it."""

    def __init__(self, path, keep_until: int | None = None):
        self.path = Path(path)
        rows = []
        if keep_until is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(float(r.get("step") or 0)) <= keep_until]
        with atomic_path(self.path) as tmp:  # the kept rows replace the file in one step
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=CSV_FIELDS, extrasaction="ignore")

    def append(self, row: dict) -> None:
        self.writer.writerow(row)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


# -- the run directory -----------------------------------------------------------------------------
class RunExistsError(FileExistsError):
    """--out names a run directory that already holds files."""


class RunInUseError(RuntimeError):
    """Another process is training in the run directory (it holds the run's lock)."""

    def __init__(self, path):
        super().__init__(f"run directory {str(path)!r} is being written by another training process: wait for it "
                         "to finish (or stop it), then resume it; or choose another --out")


class RunLock:
    """An exclusive lock on a run directory while a process trains in it: an advisory ``flock`` on the directory
    itself (no file is written; the kernel drops it when the process ends, however it ends). A second trainer of
    the same directory, a resume of a run that is still being written above all, is refused at once instead of
    both writing checkpoints and logs over each other. Without ``fcntl`` (Windows) nothing is locked."""

    def __init__(self, path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunInUseError(self.path) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


@dataclass
class RunDir:
    """A training run's directory: its paths, readers and writers (robreward.rundir's docstring)."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    config_path = property(lambda self: self.path / CONFIG_FILE)
    checkpoint_dir = property(lambda self: self.path / CHECKPOINT_DIR)
    latest_checkpoint = property(lambda self: self.path / CHECKPOINT_DIR / LATEST)
    latest_sb3_checkpoint = property(lambda self: self.path / CHECKPOINT_DIR / LATEST_SB3)
    tb_dir = property(lambda self: self.path / TB_DIR)
    progress_path = property(lambda self: self.path / PROGRESS_FILE)
    policy_path = property(lambda self: self.path / POLICY_FILE)
    card_path = property(lambda self: self.path / CARD_FILE)
    eval_path = property(lambda self: self.path / EVAL_FILE)
    failed_path = property(lambda self: self.path / FAILED_FILE)

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoint_dir / f"step_{int(step):012d}.pt"

    def lock(self) -> RunLock:
        """The directory (created) locked for this process's training (RunLock); RunInUseError if another holds it."""
        return RunLock(self.path).acquire()

    def in_use(self) -> bool:
        """Whether another process trains in this directory now (holds its lock); False for a missing one."""
        if not self.path.is_dir():
            return False
        try:
            self.lock().release()
        except RunInUseError:
            return True
        return False

    # config
    def write_config(self, config: dict) -> Path:
        return write_config(self.path, config)

    def read_config(self) -> dict:
        return read_config(self.path)

    # checkpoints
    def save_checkpoint(self, state: dict, periodic: bool = False) -> Path:
        """checkpoints/latest.pt (and step_<global_step>.pt when periodic), each atomically."""
        atomic_torch_save(state, self.latest_checkpoint)
        if periodic:
            atomic_torch_save(state, self.step_checkpoint(state["global_step"]))
        return self.latest_checkpoint

    def load_checkpoint(self, path=None) -> dict:
        return load_checkpoint(self.latest_checkpoint if path is None else path)

    # progress
    def open_progress(self, keep_until: int | None = None) -> ProgressLog:
        return ProgressLog(self.progress_path, keep_until)

    def read_progress(self) -> list[dict]:
        return read_progress(self.progress_path)

    # eval, failure, card, policy
    def write_eval(self, result: dict) -> Path:
        return write_eval(self.path, result)

    def read_eval(self) -> dict:
        return read_eval(self.path)

    def write_failed(self, record: dict) -> Path:
        return write_failed(self.path, record)

    def read_failed(self) -> dict | None:
        return read_failed(self.path)

    def clear_failed(self) -> None:
        """A new attempt: it writes its own failed.json if it fails."""
        self.failed_path.unlink(missing_ok=True)

    def write_model_card(self, config: dict, spec, steps: int, eval_result: dict | None = None,
                         extra: dict | None = None) -> Path:
        return atomic_write_text(self.card_path, render_model_card(config, spec, steps, eval_result, extra))

    def update_card_eval(self, eval_result: dict, source: str) -> Path | None:
        return update_card_eval(self.path, eval_result, source)

    def write_policy(self, write) -> Path:
        """policy.onnx atomically: ``write(tmp_path)`` writes the file (e.g. the ONNX exporter)."""
        with atomic_path(self.policy_path) as tmp:
            write(tmp)
        return self.policy_path

    def own_files(self) -> list[Path]:
        """The files and folders of this run that robreward wrote (what --overwrite removes)."""
        found = [self.path / name for name in (CONFIG_FILE, PROGRESS_FILE, POLICY_FILE, CARD_FILE, EVAL_FILE,
                                               FAILED_FILE) if (self.path / name).is_file()]
        if self.checkpoint_dir.is_dir():
            found += sorted(p for p in self.checkpoint_dir.iterdir()
                            if p.is_file() and (p.name in (LATEST, LATEST_SB3) or STEP_CHECKPOINT.match(p.name)))
        if self.tb_dir.is_dir():
            found += sorted(p for p in self.tb_dir.iterdir() if p.is_file() and p.name.startswith("events.out.tfevents."))
        found += sorted(p for p in self.path.glob(".*.tmp*") if p.is_file())  # a killed writer's temp files
        return found


def is_empty(path) -> bool:
    path = Path(path)
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def check_out(out, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse (RunExistsError) an --out that already holds files unless resuming or overwriting, and
    (RunInUseError) one another process is training in, whatever the flags; writes nothing. Call it before anything is built, so a refusal costs nothing."""
    out = Path(out)
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite starts it over: pass one of them")
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"--out {str(out)!r} is a file, not a run directory: choose another --out")
    if RunDir(out).in_use():  # neither resumed nor overwritten under a live run
        raise RunInUseError(out)
    if resume or overwrite or is_empty(out):
        return
    own = RunDir(out).own_files()
    what = (f"a run ({', '.join(sorted({p.relative_to(out).parts[0] for p in own})[:6])})" if own
            else "files robreward did not write")
    hint = (f"continue it with `robreward train --resume {out}`, start it over with --overwrite, or choose another --out"
            if own else "choose another --out (--overwrite would remove only robreward's own files)")
    raise RunExistsError(f"--out {str(out)!r} already holds {what}: {hint}")


def prepare(out, *, resume: bool = False, overwrite: bool = False) -> tuple["RunDir", list[Path]]:
    """The run directory for a new run (or a resumed one), created. Refuses an existing non-empty
    one unless ``resume`` or ``overwrite`` (check_out); ``overwrite`` first removes robreward's own
    files (own_files), nothing else. Returns (RunDir, the paths removed). Call it once the run's
    inputs (the reward above all) have been accepted, so a rejected run creates no directory."""
    check_out(out, resume=resume, overwrite=overwrite)
    run = RunDir(out)
    removed = []
    if overwrite and run.path.is_dir():
        for path in run.own_files():
            path.unlink()
            removed.append(path)
        for folder in (run.checkpoint_dir, run.tb_dir):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return run, removed


def start_new_run(out, start, *, overwrite: bool = False, check=None, log=print):
    """What `train --out DIR [--overwrite]` does around ``start()`` (the training): refuse a used
    DIR (check_out), run ``check()`` (the caller's check of the run's inputs: the reward above
    all; it raises to reject them), remove robreward's own files with ``overwrite`` (saying
    which), then start. So ``--overwrite`` with a rejected reward leaves the earlier run as it was.
    If ``start`` fails and DIR did not exist before, the folders it left without a file in them
    are removed: a rejected reward leaves no run directory behind."""
    out = Path(out)
    check_out(out, overwrite=overwrite)
    if check is not None:
        check()  # before anything in DIR is removed
    existed = out.exists()
    if overwrite and existed:
        _, removed = prepare(out, overwrite=True)
        if removed:
            log(f"--overwrite: removed {len(removed)} file(s) of the earlier run in {out}: "
                + ", ".join(str(p.relative_to(out)) for p in removed[:8]) + (" ..." if len(removed) > 8 else ""))
    try:
        return start()
    except BaseException:
        if not existed and out.is_dir() and not any(p.is_file() for p in out.rglob("*")):
            shutil.rmtree(out)
        raise
