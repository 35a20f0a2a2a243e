"""A preference run directory's layout (the files are listed in loop.py's docstring): the names of its files
and folders, reading its JSON files, its resolved config, and where each round's reward model and frames go."""

from __future__ import annotations

import json
from pathlib import Path

from robreward.feedback.preferences.config import PrefsConfig
from robreward.rundir import migrate_prefs_config

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LABELS_FILE = "labels.npz"
DEMO_LABELS_FILE = "demo_labels.npz"  # --demos: each round's free (demo, policy segment) pairs
METRICS_FILE = "metrics.json"
EVAL_FILE = "prefs_eval.json"
PPO_DIR = "ppo"
FEEDBACK_PPO_DIR = "ppo-feedback"  # final_policy restart/best: the policy trained during the feedback rounds
RESTART_PPO_DIR = "ppo-restart"  # final_policy best, when the feedback phase's policy was kept: the fresh one
REWARD_DIR = "reward"
FRAMES_DIR = "reward_frames"  # image inputs: the frames of each round's labeled pairs (round_KKK.npz)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(path)!r} not found: is {str(path.parent)!r} a preference run directory "
                                f"(`robreward prefs train --out DIR`)? ({what})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err})") from err


def load_prefs_config(run_dir) -> PrefsConfig:
    """The resolved config of a preference run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"preference run directory {str(run_dir)!r} does not exist: pass the --out DIR "
                                "of an earlier `robreward prefs train`")
    path = run_dir / CONFIG_FILE
    return PrefsConfig.from_dict(migrate_prefs_config(_read_json(path, "its config"), f"prefs config {str(path)!r}"))


def _model_path(run_dir: Path, round_index: int) -> Path:
    return run_dir / REWARD_DIR / f"round_{round_index:03d}.pt"


def _frames_path(run_dir: Path, round_index: int) -> Path:
    return run_dir / FRAMES_DIR / f"round_{round_index:03d}.npz"
