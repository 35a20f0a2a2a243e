"""The run directory's layout: its file and folder names, the progress.csv columns, the
eval.json fields and the config schema version (robreward.rundir's docstring tables them)."""

from __future__ import annotations

import re

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
    "fitness_mean": "mean per-step task fitness of those episodes (over the nominal episode length where the task says so)",
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

SCHEMA_VERSION = 1

PREFS_PPO_DIR = "ppo"  # a `prefs train` run: its PPO run directory (the final policy)
GENERATE_FINAL_DIR = "final"  # a `generate` run: the best reward retrained over seeds (a seed group)
GENERATE_BEST_DIR = "best"  # a `generate` run: the best candidate's policy.onnx
