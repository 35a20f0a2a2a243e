"""Reading a run directory. Everything in one is untrusted input (a run copied from elsewhere, a
killed writer, an older robreward): configs are size-capped, parsed safely and migrated to the
current schema; checkpoints load as plain data only (weights_only); every error says what was
wrong and how to fix it. Also: which policy a path a user passed holds (find_policy_run)."""

from __future__ import annotations

import csv
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from robreward.rundir.layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EVAL_FILE,
    FAILED_FILE,
    GENERATE_BEST_DIR,
    GENERATE_FINAL_DIR,
    LATEST,
    POLICY_FILE,
    PREFS_PPO_DIR,
    PROGRESS_FILE,
    SCHEMA_VERSION,
    SEED_DIR,
)


# -- config versions -------------------------------------------------------------------------------
def _v0_to_v1(data: dict) -> dict:
    """Version 0 (no schema_version): written before reward normalization existed; those runs
    (the shipped policies/ among them) trained without it."""
    ppo = dict(data.get("ppo") or {})
    ppo.setdefault("normalize_rewards", False)
    return {**data, "ppo": ppo}


MIGRATIONS = {0: _v0_to_v1}
"""version -> the function that turns a config of that version into the next version's."""


def migrate_config(data: dict, where: str = "config") -> dict:
    """A config.yaml mapping of any known version -> the current version's fields (without
    ``schema_version``, ready for TrainConfig.from_dict). ValueError for a newer or unknown version."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a YAML mapping; is it a robreward run's config.yaml?")
    data = dict(data)
    version = data.pop("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"{where}: schema_version {version!r} is not a version number (0..{SCHEMA_VERSION})")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{where} has schema_version {version}, newer than this robreward's {SCHEMA_VERSION}: "
                         "upgrade robreward to read it")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data


def migrate_prefs_config(data: dict, where: str = "prefs config") -> dict:
    """A ``prefs train`` run's config.json -> the current PrefsConfig's fields. A field a run was saved
    without keeps the behaviour of then: runs saved before ``pairing`` existed compared any two segments
    (``pairing: any``; new runs default to "mixed"); before ``feedback_fraction``, ``final_policy`` and
    ``features`` they spread the rounds over 0.75 of the steps, continued the one policy and read the
    observation; before ``choose_at``, best chose at the end (the defaults are now 0.25, best, auto and,
    with best, equal)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a JSON object; is it a `robreward prefs train` run's config.json?")
    data = dict(data)
    for key, then in (("pairing", "any"), ("feedback_fraction", 0.75), ("final_policy", "continue"), ("features", []),
                      ("choose_at", "end")):
        data.setdefault(key, then)
    return data


def read_config(path, migrate: bool = True) -> dict:
    """A run's config.yaml (a run directory or the file) as the current version's mapping."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        if path.stat().st_size > 1_000_000:
            raise ValueError(f"{str(path)!r} is over 1 MB: not a robreward config.yaml")
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no {CONFIG_FILE} in {str(path.parent)!r}: is it a robreward run directory "
                                "(the --out DIR of `robreward train`)?") from None
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read the run config {str(path)!r} ({type(err).__name__}: {err}); "
                         f"is {str(path.parent)!r} a robreward run directory?") from err
    return migrate_config(data, f"run config {str(path)!r}") if migrate else data


# -- checkpoints -----------------------------------------------------------------------------------
def _legacy_numpy_globals() -> list:
    """What a checkpoint written before the RNG states were plain data needs beyond weights_only's
    defaults: numpy's array reconstruction (numpy 2's and 1's module names), the array class and
    the dtype classes of plain numbers. No object dtype, nothing that can call other code."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    number_dtypes = sorted({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"}, key=str)
    return [np.ndarray, np.dtype, *number_dtypes, (_reconstruct, "numpy._core.multiarray._reconstruct"),
            (_reconstruct, "numpy.core.multiarray._reconstruct")]


def _unpickler_reason(err: Exception) -> str:
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    return text.split(". ")[0].split("\n")[0].strip()[:300]


def load_plain(path):
    """torch.load(weights_only=True) of a file that must hold only tensors, dicts, lists and numbers
    (numpy arrays too, for checkpoints written before they were plain data); ValueError otherwise."""
    path = Path(path)
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as first:  # written before the RNG states were plain data
            if not hasattr(torch.serialization, "safe_globals"):
                raise ValueError(f"checkpoint {str(path)!r} was written by an older robreward (numpy arrays in it): "
                                 "loading it safely needs torch >= 2.5; upgrade torch, or start the run again") from first
            with torch.serialization.safe_globals(_legacy_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"refusing to load checkpoint {str(path)!r}: it holds more than tensors, dicts, lists and "
                         f"numbers ({_unpickler_reason(err)}), and loading it could run code. Use checkpoints "
                         "written by robreward, and only from people you trust") from None
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {str(path)!r} ({type(err).__name__}: {err})") from err


def load_checkpoint(path) -> dict:
    """A checkpoint file (or a run directory's checkpoints/latest.pt) as plain data."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_DIR / LATEST
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: the run was killed before its first checkpoint; "
                                "start it again without --resume")
    ckpt = load_plain(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{str(path)!r} is not a robreward checkpoint (no 'model' entry): pass a run's "
                         "checkpoints/latest.pt")
    return ckpt


# -- eval.json, failed.json, progress.csv ----------------------------------------------------------
def train_reward_invalid(run_dir) -> int | None:
    """The world-steps whose training reward was invalid over the whole run (the latest checkpoint's
    cumulative "reward_invalid"); None without a checkpoint that records it."""
    path = Path(run_dir) / CHECKPOINT_DIR / LATEST
    if not path.is_file():
        return None
    try:
        count = load_checkpoint(path).get("reward_invalid")
    except (OSError, ValueError):
        return None
    return None if count is None else int(count)


def read_json(path: Path, hint: str):
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} at {str(path)!r}; {hint}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from err


def read_eval(run_dir_or_path) -> dict:
    """A run's eval.json (a run directory or the file itself)."""
    path = Path(run_dir_or_path)
    if path.suffix != ".json":
        path = path / EVAL_FILE
    return read_json(path, f"run `robreward eval {path.parent}` first")


def read_failed(run_dir) -> dict | None:
    path = Path(run_dir) / FAILED_FILE
    return read_json(path, "") if path.is_file() else None


def read_progress(path) -> list[dict]:
    """progress.csv rows as dicts of strings ([] when the file is missing)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROGRESS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- which policy a run directory holds ------------------------------------------------------------
def seed_dirs(path) -> list[tuple[int, Path]]:
    """(seed, folder) of a seed group's seed_N/ run directories, by seed."""
    path = Path(path)
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), child) for child in path.iterdir()
             if (m := SEED_DIR.match(child.name)) and child.is_dir()]
    return sorted(found)


@dataclass
class PolicyRun:
    """What a path a user passed holds, and where its final policy is.

    kind: "train" (a run directory), "group" (seed_N/ run directories), "prefs" (a ``prefs train``
    run: its ppo/ run), "generate" (its final/ seed group, or best/ before the final stage), "file"
    (a policy.onnx). policy_path: the run directory, seed group or file with the final policy.
    config: the migrated config.yaml of that run (the first seed's for a group; {} if none).
    task: the task it was trained on, as a label (a file never picks code). run_config: the
    outer run's config.json (prefs, generate)."""

    kind: str
    path: Path
    policy_path: Path
    config: dict = field(default_factory=dict)
    task: str | None = None
    run_config: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list[tuple[int, Path]]:
        return seed_dirs(self.policy_path) if self.policy_path.is_dir() else []


def _config_or_empty(folder: Path) -> dict:
    return read_config(folder) if (folder / CONFIG_FILE).is_file() else {}


def _json_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    data = read_json(path, "")
    return data if isinstance(data, dict) else {}


def find_policy_run(path) -> PolicyRun:
    """Where the final policy of any run directory robreward writes lies (PolicyRun); clear errors."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r} does not exist: pass a run directory (the --out DIR of train, prefs "
                                "train or generate) or a policy.onnx file")
    if path.is_file():
        config = _config_or_empty(path.parent)
        return PolicyRun("file", path, path, config, config.get("task"))
    if (path / CONFIG_FILE).is_file() or (path / POLICY_FILE).is_file() or (path / CHECKPOINT_DIR).is_dir():
        config = _config_or_empty(path)
        return PolicyRun("train", path, path, config, config.get("task"))
    if seed_dirs(path):
        config = _config_or_empty(seed_dirs(path)[0][1])
        return PolicyRun("group", path, path, config, config.get("task"))
    outer = _json_config(path)
    ppo = path / PREFS_PPO_DIR
    if (ppo / CONFIG_FILE).is_file():
        config = read_config(ppo)
        return PolicyRun("prefs", path, ppo, config, config.get("task") or outer.get("task"), outer)
    final, best = path / GENERATE_FINAL_DIR, path / GENERATE_BEST_DIR
    if seed_dirs(final):
        config = _config_or_empty(seed_dirs(final)[0][1])
        return PolicyRun("generate", path, final, config, config.get("task") or outer.get("task"), outer)
    if (best / POLICY_FILE).is_file():
        return PolicyRun("generate", path, best / POLICY_FILE, {}, outer.get("task"), outer)
    if (path / "config.json").is_file():
        raise FileNotFoundError(f"{str(path)!r} holds no trained policy yet (no {PREFS_PPO_DIR}/{CONFIG_FILE}, "
                                f"{GENERATE_FINAL_DIR}/seed_N/ or {GENERATE_BEST_DIR}/{POLICY_FILE}): let the run "
                                "finish, or resume it")
    raise FileNotFoundError(f"{str(path)!r} is not a run directory: no {CONFIG_FILE}, {POLICY_FILE}, seed_N/ "
                            "sub-runs, nor a prefs or generate run's final policy")
