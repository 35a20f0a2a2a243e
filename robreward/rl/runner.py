"""`train(config)`: one PPO run (robreward.rl.trainer.Trainer with K=1), writing the run
directory of docs/architecture.md (config.yaml, checkpoints/, tb/, progress.csv, policy.onnx,
MODEL_CARD.md, eval.json).

Resume (`resume(run_dir)`) restores the model, optimizer, normalizer, learning rate, step
counter and the torch/numpy/python RNG states from checkpoints/latest.pt and trains on with
the saved config. The envs' episode state is not saved: every world starts a fresh episode
on resume (reset with seed + update, so resets differ from the first run's), which costs at
most one partial episode per world and leaves the learned state untouched.

Checkpoints are plain data: tensors, dicts, lists and numbers (the RNG states too), read with
``torch.load(weights_only=True)``, so a checkpoint from someone else cannot run code. Those
written before that (numpy arrays in the RNG state) still load, through an allow-list of exactly
numpy's array reconstruction and dtype. A run's config.yaml names a task; resume refuses one that
names a task folder (code) unless the caller passes that folder explicitly (``task=``, ``--task``).

The reward is checked on every step (robreward.envs.batched); the world-steps where it was
invalid are reported per update (progress.csv ``reward_invalid``, ``reward_invalid_share``; TensorBoard
``train/reward_invalid*``; the model card), and a run over ``validity.invalid_reward_limit`` of its
budget fails with InvalidRewardError and failed.json.
"""

from __future__ import annotations

import os
from pathlib import Path

from robreward.rl.candidates import check_reward_files
from robreward.rl.checkpoint import load_checkpoint
from robreward.rl.config import TrainConfig
from robreward.rl.export import DeterministicPolicy
from robreward.rl.logger import CSV_FIELDS, EpisodeTracker
from robreward.rl.ppo import ActorCritic
from robreward.rl.trainer import Trainer
from robreward.rundir import CONFIG_FILE, LATEST, migrate_config, read_config


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during train(): what was saved and the command that continues the run."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- run directory helpers ------------------------------------------------------------------
def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The resolved config of an existing run directory (its config.yaml)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist: pass the --out DIR of an earlier run")
    path = run_dir / CONFIG_FILE
    try:
        data = read_config(path)  # migrated to the current schema (robreward.rundir)
    except FileNotFoundError as err:
        raise ValueError(f"cannot read the run config {str(path)!r} ({err})") from None
    return TrainConfig.from_dict(data)


def policy_from_checkpoint(path: str | os.PathLike) -> DeterministicPolicy:
    """The deterministic policy (normalization, actor, action clip) stored in a checkpoint."""
    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(migrate_config(ckpt["config"], f"the config of checkpoint {str(path)!r}"))
    model = ActorCritic(ckpt["obs_dim"], ckpt["act_dim"], config.ppo)
    model.load_state_dict(ckpt["model"])
    return DeterministicPolicy(model.normalizer, model.actor, ckpt["action_low"], ckpt["action_high"])


def _check_reward_spec(reward: str) -> None:
    """The run's reward spec parses and its reward files exist, before the env is built."""
    check_reward_files(reward)


# -- training ---------------------------------------------------------------------------------
def train(config: TrainConfig, resume_from: str | os.PathLike | None = None, reward=None, evaluate=None) -> dict:
    """Train one policy; returns a summary (run_dir, steps, seconds, final stats, eval result).

    reward: a Reward object to train on instead of the one ``config.reward`` names; config.reward
    is then only its label (e.g. ``pref:RUN``). To change the reward during training, keep a
    Trainer and call its set_reward (the preference loop does). evaluate: the final evaluation into
    eval.json and the model card (pass robreward.eval.evaluate; rl never imports eval), None for none.
    """
    if config.algo == "sb3":
        if reward is not None:
            raise ValueError("a Reward object (reward=...) trains with algo='ppo' only")
        from robreward.rl.sb3 import train_sb3

        return train_sb3(config, resume_from=resume_from, evaluate=evaluate)
    if reward is None:
        _check_reward_spec(config.reward)
    trainer = Trainer([config], None if reward is None else [reward], isolate_failures=False,
                      resume_from=None if resume_from is None else [resume_from], evaluate=evaluate)
    try:
        stats = trainer.learn()[0]
    except KeyboardInterrupt:
        trainer.close()
        raise TrainingInterrupted(interrupted_message(config, trainer)) from None
    except BaseException:
        trainer.close()
        raise
    record = trainer.finish()[0]
    return {"run_dir": record["run_dir"], "steps": record["steps"], "seconds": trainer.seconds, "stats": stats,
            "eval": record["eval"]}


def interrupted_message(config: TrainConfig, trainer: Trainer) -> str:
    """What Ctrl-C saved, and how to continue."""
    path = Path(config.out) / "checkpoints" / LATEST
    if not path.is_file():
        return (f"interrupted at step {trainer.global_step:,} before the first checkpoint; nothing to resume: "
                f"start again (robreward train ... --out {config.out})")
    saved = int(load_checkpoint(path)["global_step"])
    return (f"interrupted at step {trainer.global_step:,}; the checkpoint at step {saved:,} is in {path}. "
            f"Continue with: robreward train --resume {config.out}")


def resume(run_dir: str | os.PathLike, steps: int | None = None, task: str | None = None, evaluate=None,
           **overrides) -> dict:
    """Continue a killed run from checkpoints/latest.pt with its saved config (optionally more steps).

    A config.yaml that names a task folder (code) is refused unless ``task`` passes that folder
    explicitly: a run directory from someone else never picks code to run."""
    from robreward.envs.registry import get_task

    config = load_run_config(run_dir)
    if task is None:
        try:
            get_task(config.task, allow_folder=False)
        except ValueError as err:
            raise ValueError(f"cannot resume {str(run_dir)!r}: its config.yaml names the task {config.task[:200]!r}, "
                             "which is not a task of the suite but a folder of code; if you trust that folder, "
                             "pass it explicitly: robreward train --resume RUN --task FOLDER") from err
    changes = {"out": str(run_dir), **overrides}
    if task is not None:
        changes["task"] = str(task)
    if steps is not None:
        changes["steps"] = steps
    data = config.to_dict()
    data.update(changes)
    config = TrainConfig.from_dict(data)
    checkpoint = Path(run_dir) / "checkpoints" / LATEST
    if config.algo == "sb3":
        from robreward.rl.sb3 import LATEST_SB3, load_sb3_checkpoint

        load_sb3_checkpoint(checkpoint.with_name(LATEST_SB3))  # a clear error before the env is built
        return train(config, resume_from=checkpoint.with_name(LATEST_SB3), evaluate=evaluate)
    load_checkpoint(checkpoint)  # a clear error before the env is built
    return train(config, resume_from=checkpoint, evaluate=evaluate)


# CSV_FIELDS, EpisodeTracker, LATEST and load_checkpoint: re-exported for the callers that read a run through here
__all__ = ["CSV_FIELDS", "LATEST", "EpisodeTracker", "TrainingInterrupted", "interrupted_message", "load_checkpoint",
           "load_run_config", "policy_from_checkpoint", "resume", "train"]
