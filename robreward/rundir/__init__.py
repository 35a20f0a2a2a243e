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

Every file is written atomically through :mod:`robreward.fileio`. While a process trains in a run
directory it holds its lock (``RunDir.lock()``, an flock on the directory, no file): a second trainer of
it, such as a resume of a run still being written, stops with RunInUseError. ``RunDir(path)`` gives the
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
fitness_mean         mean per-step task fitness of those episodes (over the nominal episode length where the task says so)
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

The package's parts (every name is re-exported here: import from ``robreward.rundir``):
``layout`` (the file names and columns), ``read`` (reading a run directory: every file in it is
untrusted input; config migrations, plain-data checkpoints, finding a run's policy), ``write``
(the writers, ``RunDir``, refusing a used --out) and ``card`` (MODEL_CARD.md).

This package imports only the standard library, yaml, torch and robreward.fileio: rl/, eval/,
codegen/ and feedback/ import it, never the other way round.
"""


from __future__ import annotations

from robreward.rundir.card import CARD_EVAL_KEYS, EVAL_HEADING, card_eval_section, render_model_card, update_card_eval
from robreward.rundir.layout import (
    CARD_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CSV_FIELDS,
    EVAL_FIELDS,
    EVAL_FILE,
    FAILED_FILE,
    GENERATE_BEST_DIR,
    GENERATE_FINAL_DIR,
    LATEST,
    LATEST_SB3,
    POLICY_FILE,
    PREFS_PPO_DIR,
    PROGRESS_COLUMNS,
    PROGRESS_FILE,
    SCHEMA_VERSION,
    SEED_DIR,
    STEP_CHECKPOINT,
    TB_DIR,
)
from robreward.rundir.read import (
    MIGRATIONS,
    PolicyRun,
    find_policy_run,
    load_checkpoint,
    load_plain,
    migrate_config,
    migrate_prefs_config,
    read_config,
    read_eval,
    read_failed,
    read_json,
    read_progress,
    seed_dirs,
    train_reward_invalid,
)
from robreward.rundir.write import (
    ProgressLog,
    RunDir,
    RunExistsError,
    RunInUseError,
    RunLock,
    atomic_torch_save,
    check_out,
    is_empty,
    prepare,
    start_new_run,
    write_config,
    write_eval,
    write_failed,
)

__all__ = ["CARD_EVAL_KEYS", "CARD_FILE", "CHECKPOINT_DIR", "CONFIG_FILE", "CSV_FIELDS", "EVAL_FIELDS", "EVAL_FILE",
           "EVAL_HEADING", "FAILED_FILE", "GENERATE_BEST_DIR", "GENERATE_FINAL_DIR", "LATEST", "LATEST_SB3",
           "MIGRATIONS", "POLICY_FILE", "PREFS_PPO_DIR", "PROGRESS_COLUMNS", "PROGRESS_FILE", "SCHEMA_VERSION",
           "SEED_DIR", "STEP_CHECKPOINT", "TB_DIR", "PolicyRun", "ProgressLog", "RunDir", "RunExistsError", "RunInUseError",
           "RunLock",
           "atomic_torch_save", "card_eval_section", "check_out", "find_policy_run", "is_empty", "load_checkpoint",
           "load_plain", "migrate_config", "migrate_prefs_config", "prepare", "read_config", "read_eval",
           "read_failed", "read_json", "read_progress", "render_model_card", "seed_dirs", "start_new_run",
           "train_reward_invalid", "update_card_eval", "write_config", "write_eval", "write_failed"]
