"""The run directory: robreward's on-disk contract, owned here and nowhere else.

A training run (``robreward train --out DIR``, each candidate of ``generate``, the PPO of a
preference run) writes::

    config.yaml             the resolved TrainConfig with a ``schema_version`` (see "Config versions")
    checkpoints/latest.pt   the latest checkpoint (plain data, weights_only-loadable, atomic)
    checkpoints/step_*.pt   periodic checkpoints (step zero-padded to 12 digits)
    checkpoints/latest_sb3.pt  --algo sb3's checkpoint
    tb/                     TensorBoard event files
    progress.csv            one row per PPO update (PROGRESS_COLUMNS)
    policy.onnx             the deterministic policy (docs/architecture.md "Policy file")
    MODEL_CARD.md           what the policy is, its training numbers and its evaluation section
    eval.json               the evaluation (docs/architecture.md "eval.json"; EVAL_FIELDS)
    failed.json             why the run failed (the trainer's record), absent when it did not

Every file is written atomically through :mod:`robreward.fileio`. ``RunDir(path)`` gives the
paths and the readers/writers; :func:`prepare` refuses to reuse a run directory unless told to
resume or overwrite; :func:`find_policy_run` finds the final policy of every run directory
robreward writes (a training run, a seed group of them, a ``prefs train`` run, a ``generate`` run).

progress.csv columns (PROGRESS_COLUMNS, in order):

==================== =====================================================================
step                 env steps so far, summed over all worlds
update               PPO updates so far
time_s               training seconds so far (across resumes)
steps_per_s          env steps per second of this update (rollout + PPO update)
episodes             episodes completed during this update's rollout
return_mean          mean episode return under the TRAINING reward (the reward trained on)
hand_return_mean     mean episode return under the task's HAND reward (comparable across rewards)
success_rate         share of those episodes that succeeded at any step
fitness_mean         mean per-step task fitness of those episodes
episode_length       mean episode length (steps)
learning_rate        Adam learning rate after this update
kl                   mean approximate KL divergence of the update
policy_loss          PPO clipped surrogate loss
value_loss           value-function loss
entropy              mean policy entropy
noise_std            mean std of the Gaussian policy
clip_fraction        share of samples whose ratio was clipped
reward_invalid       world-steps of this update whose reward was invalid (set to 0)
reward_invalid_share reward_invalid / world-steps of this update
==================== =====================================================================

Episode columns repeat the previous means when no episode ended during an update.

Config versions: ``schema_version`` 1 is the current one. A config.yaml without the field
(version 0, written before it) is migrated by :func:`migrate_config`: those runs trained
without reward normalization (``ppo.normalize_rewards: false``), which version 1 states
explicitly. Add a version by writing ``_vN_to_vN+1`` and registering it in MIGRATIONS. A checkpoint's
"config" (a TrainConfig.to_dict() without the field) goes through migrate_config too. A ``prefs
train`` run's config.json goes through :func:`migrate_prefs_config` (runs from before ``pairing``).

This module imports only the standard library, yaml, torch and robreward.fileio: rl/, eval/,
codegen/ and feedback/ import it, never the other way round.
"""

from __future__ import annotations

import csv
import datetime
import math
import pickle
import platform
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from robreward.fileio import atomic_path, atomic_write_json, atomic_write_text

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.pt"
LATEST_SB3 = "latest_sb3.pt"
TB_DIR = "tb"
PROGRESS_FILE = "progress.csv"
POLICY_FILE = "policy.onnx"
CARD_FILE = "MODEL_CARD.md"
EVAL_FILE = "eval.json"
FAILED_FILE = "failed.json"
STEP_CHECKPOINT = re.compile(r"^step_\d+\.pt$")
SEED_DIR = re.compile(r"^seed[_-]?(\d+)$")

PROGRESS_COLUMNS = {
    "step": "env steps so far, summed over all worlds",
    "update": "PPO updates so far",
    "time_s": "training seconds so far (across resumes)",
    "steps_per_s": "env steps per second of this update (rollout + PPO update)",
    "episodes": "episodes completed during this update's rollout",
    "return_mean": "mean episode return under the TRAINING reward",
    "hand_return_mean": "mean episode return under the task's HAND reward",
    "success_rate": "share of those episodes that succeeded at any step",
    "fitness_mean": "mean per-step task fitness of those episodes",
    "episode_length": "mean episode length (steps)",
    "learning_rate": "Adam learning rate after this update",
    "kl": "mean approximate KL divergence of the update",
    "policy_loss": "PPO clipped surrogate loss",
    "value_loss": "value-function loss",
    "entropy": "mean policy entropy",
    "noise_std": "mean std of the Gaussian policy",
    "clip_fraction": "share of samples whose ratio was clipped",
    "reward_invalid": "world-steps of this update whose reward was invalid (set to 0)",
    "reward_invalid_share": "reward_invalid / world-steps of this update",
}
CSV_FIELDS = tuple(PROGRESS_COLUMNS)

EVAL_FIELDS = ("task", "task_version", "reward", "episodes", "seeds", "return_mean", "return_std",
               "train_reward_return_mean", "success_rate", "fitness_mean", "episode_length_mean", "terms")
"""The fields docs/architecture.md requires in every eval.json."""


# -- config versions ---------------------------------------------------------------------------
SCHEMA_VERSION = 1


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
    """A ``prefs train`` run's config.json -> the current PrefsConfig's fields. Runs saved before
    ``pairing`` existed compared any two segments: they keep ``pairing: any`` (new runs default to
    "mixed")."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a JSON object; is it a `robreward prefs train` run's config.json?")
    data = dict(data)
    data.setdefault("pairing", "any")
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


def write_config(run_dir, config: dict) -> Path:
    """config.yaml: ``schema_version`` first, then the resolved config's fields (TrainConfig.to_dict())."""
    data = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in config.items() if k != "schema_version"}}
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))


# -- checkpoints --------------------------------------------------------------------------------
def atomic_torch_save(obj, path) -> Path:
    """torch.save through a temp file and an atomic rename: a killed writer never leaves half a file."""
    path = Path(path)
    with atomic_path(path, suffix="") as tmp:
        torch.save(obj, tmp)
    return path


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


# -- eval.json and failed.json ------------------------------------------------------------------
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


def _read_json(path: Path, hint: str):
    import json

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
    return _read_json(path, f"run `robreward eval {path.parent}` first")


def write_failed(run_dir, record: dict) -> Path:
    """failed.json: ``error`` (one line: what failed and why) plus whatever the trainer adds."""
    if "error" not in record:
        raise ValueError("a failed.json record needs an 'error' entry")
    return atomic_write_json(Path(run_dir) / FAILED_FILE, record)


def read_failed(run_dir) -> dict | None:
    path = Path(run_dir) / FAILED_FILE
    return _read_json(path, "") if path.is_file() else None


# -- progress.csv -------------------------------------------------------------------------------
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


def read_progress(path) -> list[dict]:
    """progress.csv rows as dicts of strings ([] when the file is missing)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROGRESS_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- the model card -----------------------------------------------------------------------------
EVAL_HEADING = "## Evaluation"
CARD_EVAL_KEYS = ("episodes", "seeds", "return_mean", "return_std", "train_reward_return_mean", "success_rate",
                  "fitness_mean", "episode_length_mean", "train_reward_invalid", "deterministic", "eval_seed")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def card_eval_section(eval_result: dict | None, source: str | None = None) -> list[str]:
    """The lines of the card's evaluation section (heading included)."""
    lines = [EVAL_HEADING, ""]
    if not eval_result:
        return lines + ["Not evaluated yet: `robreward eval RUN_DIR` writes eval.json."]
    if source:
        lines += [source, ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(eval_result[k])} |" for k in CARD_EVAL_KEYS if eval_result.get(k) is not None]
    return lines + ["", "Returns are under the task's hand reward (eval.json has every field)."]


def render_model_card(config: dict, spec, steps: int, eval_result: dict | None = None,
                      extra: dict | None = None) -> str:
    """MODEL_CARD.md's text: task and version, reward source, steps, seeds, training numbers, evaluation."""
    algo = config.get("algo", "ppo")
    reward = config.get("reward", "hand")
    lines = [
        f"# {spec.name} policy ({reward} reward)", "",
        f"- task: `{spec.name}` version {spec.version}",
        f"- reward: `{reward}`",
        f"- algorithm: {'robreward PPO (rsl_rl style)' if algo == 'ppo' else 'Stable-Baselines3 PPO (rl-zoo3 hyperparameters)'}",
        f"- env steps: {steps:,} over {config.get('num_envs')} worlds",
        f"- seed: {config.get('seed')}",
        f"- backend / device: {config.get('backend')} / {config.get('device')}",
        f"- written: {datetime.datetime.now().isoformat(timespec='seconds')} on {platform.node() or 'unknown'}"
        f" (python {platform.python_version()}, torch {torch.__version__})",
        "", "## Policy file", "",
        f"`{POLICY_FILE}`: input `obs` float32 [B, {spec.obs_dim}] (raw observations; normalization baked in), "
        f"output `action` float32 [B, {spec.act_dim}], deterministic, clipped to "
        f"[{min(spec.action_low):g}, {max(spec.action_high):g}]. Load with onnxruntime or "
        "`robreward.rl.load_policy(path)`. The resolved training config is `config.yaml`.",
    ]
    if extra:
        lines += ["", "## Training", ""] + [f"- {key}: {_fmt(value)}" for key, value in extra.items()]
    lines += [""] + card_eval_section(eval_result, "At the end of training:" if eval_result else None)
    return "\n".join(lines) + "\n"


def update_card_eval(run_dir, eval_result: dict, source: str) -> Path | None:
    """Replace the evaluation section of an existing MODEL_CARD.md (everything from its heading to
    the next ``## `` heading) with ``eval_result``; ``source`` says where the numbers come from
    (e.g. the eval command). The training numbers stay. None when the run has no card."""
    path = Path(run_dir) / CARD_FILE
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    section = card_eval_section(eval_result, source)
    if EVAL_HEADING in lines:
        start = lines.index(EVAL_HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section + ([""] if end < len(lines) else [])
    else:
        lines += [""] + section
    return atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")


# -- the run directory --------------------------------------------------------------------------
class RunExistsError(FileExistsError):
    """--out names a run directory that already holds files."""


@dataclass
class RunDir:
    """A training run's directory: its paths, readers and writers (module docstring)."""

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
    """Refuse (RunExistsError) an --out that already holds files unless resuming or overwriting;
    writes nothing. Call it before anything is built, so a refusal costs nothing."""
    out = Path(out)
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite starts it over: pass one of them")
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"--out {str(out)!r} is a file, not a run directory: choose another --out")
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


# -- which policy a run directory holds -----------------------------------------------------------
PREFS_PPO_DIR = "ppo"  # a `prefs train` run: its PPO run directory (the final policy)
GENERATE_FINAL_DIR = "final"  # a `generate` run: the best reward retrained over seeds (a seed group)
GENERATE_BEST_DIR = "best"  # a `generate` run: the best candidate's policy.onnx


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
    data = _read_json(path, "")
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


__all__ = ["CARD_FILE", "CHECKPOINT_DIR", "CONFIG_FILE", "CSV_FIELDS", "EVAL_FIELDS", "EVAL_FILE", "FAILED_FILE",
           "LATEST", "LATEST_SB3", "POLICY_FILE", "PROGRESS_COLUMNS", "PROGRESS_FILE", "SCHEMA_VERSION", "TB_DIR",
           "PolicyRun", "ProgressLog", "RunDir", "RunExistsError", "atomic_torch_save", "check_out",
           "find_policy_run", "load_checkpoint", "load_plain", "migrate_config", "migrate_prefs_config", "prepare", "read_config",
           "read_eval", "read_failed", "read_progress", "render_model_card", "seed_dirs", "start_new_run",
           "train_reward_invalid",
           "update_card_eval",
           "write_config", "write_eval", "write_failed"]
