"""The PPO side of a preference run (loop.py): the one policy trained between the feedback rounds, the fresh
policy of ``final_policy="restart"``, and the current policy as the sampling policy of a round's rollout."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch

from robreward.feedback.preferences.config import PrefsConfig
from robreward.feedback.preferences.run_layout import FEEDBACK_PPO_DIR, PPO_DIR, RESTART_PPO_DIR
from robreward.rundir import migrate_config


class _OnePolicy:
    """The one PPO policy of the run, in ppo/: one robreward.rl.trainer.Trainer kept between rounds, the
    round's reward set on it before it trains on (a resumed run continues from ppo/'s checkpoint). Its
    progress bar spans the whole run; ``finish`` exports policy.onnx and the model card."""

    def __init__(self, config: PrefsConfig, run_dir: Path, folder: str = PPO_DIR, steps: int | None = None,
                 fresh: bool = False, keep_from: Path | None = None):
        self.config, self.ppo_dir, self.steps = config, run_dir / folder, config.steps if steps is None else steps
        self.trainer = None
        # the checkpoint whose weights a new trainer keeps config.restart_keep of (shrink and perturb);
        # None: from scratch
        self.keep_from = keep_from
        # the BC warm start (config.init_from_demos) of this policy: the fresh one always, the feedback phase's
        # unless config.init_policies is "fresh"
        self.init_from_demos = config.init_from_demos if fresh or config.init_policies == "both" else ""

    def train(self, until: int, reward, label: str, new_phase: bool = True) -> int:
        """Train up to ``until`` steps on ``reward`` (checkpointed); the policy's step after. ``new_phase`` False:
        the episodes under way go on (the same reward trained on past a pause), as one uninterrupted call would."""
        from robreward.rl.checkpoint import load_checkpoint
        from robreward.rl.config import TrainConfig
        from robreward.rl.trainer import LATEST, Trainer

        if self.trainer is None:
            checkpoint = self.ppo_dir / "checkpoints" / LATEST
            done = int(load_checkpoint(checkpoint)["global_step"]) if checkpoint.is_file() else 0
            if done >= until:
                return done
            if not checkpoint.is_file() and self.ppo_dir.exists():
                shutil.rmtree(self.ppo_dir)  # killed before its first checkpoint: stale logs would mix with the new ones
            config = self.config
            train_config = TrainConfig(task=config.task, reward=label, num_envs=config.num_envs, steps=self.steps,
                                       seed=config.seed, out=str(self.ppo_dir), device=config.device,
                                       torch_threads=config.torch_threads, eval_episodes=0,
                                       progress=config.progress, ppo=config.ppo,
                                       init_from_demos=self.init_from_demos or None,
                                       bc_noise_std=config.bc_noise_std,
                                       reset_from_demos=config.reset_from_demos or None,
                                       demo_reset_fraction=config.demo_reset_fraction)
            self.trainer = Trainer([train_config], [reward], isolate_failures=False,
                                   resume_from=[checkpoint] if checkpoint.is_file() else None)
            if not checkpoint.is_file() and self.keep_from is not None:
                shrink_and_perturb(self.trainer, self.keep_from, config.restart_keep)
        elif new_phase and self.trainer.global_step < until:  # a new phase: fresh episodes, as a resumed run has
            self.trainer.restart_episodes()
        self.trainer.set_reward(reward, label=label)
        self.trainer.learn(until)
        self.trainer.save()
        return self.trainer.global_step

    def finish(self, reward, label: str, new_phase: bool = True) -> int:
        """Train to the end of its budget, then export policy.onnx and the model card; its step."""
        step = self.train(self.steps, reward, label, new_phase=new_phase)
        if self.trainer is not None:
            self.trainer.finish()
            self.trainer = None
        return step

    def close(self) -> None:
        if self.trainer is not None:
            self.trainer.close()
            self.trainer = None


def _fresh_policy(config: PrefsConfig, run_dir: Path, feedback_steps: int) -> _OnePolicy:
    """The fresh policy of final_policy restart or best (in ppo/, the steps left as its budget), from scratch or
    (config.restart_keep) from a share of the feedback phase's weights, once the feedback phase's policy has moved
    to ppo-feedback/ (one rename, done once: a resumed run finds it there)."""
    from robreward.rl.runner import LATEST

    ppo_dir, kept = run_dir / PPO_DIR, run_dir / FEEDBACK_PPO_DIR
    if feedback_steps > 0 and not kept.exists():
        ppo_dir.rename(kept)
    previous = kept / "checkpoints" / LATEST
    return _OnePolicy(config, run_dir, steps=config.steps - feedback_steps, fresh=True,
                      keep_from=previous if config.restart_keep and previous.is_file() else None)


def _restart_ppo(config: PrefsConfig, run_dir: Path, policy: _OnePolicy, feedback_steps: int, reward,
                 label: str) -> int:
    """final_policy restart: the feedback phase's policy (``feedback_steps`` PPO steps) moves to ppo-feedback/ and a
    fresh policy trains in ppo/ on ``reward`` for the steps left (_fresh_policy); the PPO steps of both."""
    policy.close()
    fresh = _fresh_policy(config, run_dir, feedback_steps)
    try:
        return feedback_steps + fresh.finish(reward, label)
    finally:
        fresh.close()


def _best_at_equal_steps(config: PrefsConfig, spec, run_dir: Path, policy: _OnePolicy, feedback_steps: int,
                         reward, label: str, choice: dict | None, record) -> tuple[int, dict]:
    """final_policy best with choose_at equal: the feedback phase's policy moves to ppo-feedback/ and a fresh one
    trains in ppo/ until it has as many PPO steps as that policy (or the steps left, if fewer); then
    choose_final_policy runs both under the final reward, ``record(choice)`` saves the choice (state.json), and the
    one kept trains on for the rest of the budget: the fresh one to the steps left, the feedback phase's (moved
    back to ppo/, the fresh one to ppo-restart/) to ``config.steps`` minus the fresh one's steps. The PPO steps of
    all and the choice. Resumable: ``choice`` is the recorded one of a resumed run (None before it was made)."""
    ppo_dir = run_dir / PPO_DIR
    left = config.steps - feedback_steps
    at = min(feedback_steps, left)
    policy.close()
    fresh = None
    try:
        if choice is None:
            fresh = _fresh_policy(config, run_dir, feedback_steps)
            fresh.train(at, reward, label)
            choice = dict(choose_final_policy(config, spec, run_dir, reward, label), at_step=at)
            if choice["kept"] == "fresh":  # the choice's export of the fresh policy at ``at``; it trains on
                from robreward.rl.export import POLICY_FILE

                (ppo_dir / POLICY_FILE).unlink(missing_ok=True)
            record(choice)
        if choice["kept"] == "fresh":
            if fresh is None:  # resumed after the choice: from the fresh policy's checkpoint
                fresh = _OnePolicy(config, run_dir, steps=left, fresh=True)
            return feedback_steps + fresh.finish(reward, label, new_phase=False), choice
        if fresh is not None:
            fresh.close()
            fresh = None
        apply_final_choice(run_dir, choice)
        kept = _OnePolicy(config, run_dir, steps=config.steps - at)
        try:
            return at + kept.finish(reward, label), choice
        finally:
            kept.close()
    finally:
        if fresh is not None:
            fresh.close()


def shrink_and_perturb(trainer, checkpoint: Path, keep: float) -> None:
    """The trainer's one (new) policy becomes ``keep`` x the checkpoint's weights + (1 - keep) x its own new ones
    (Ash & Adams 2020), actor, critic and log std alike, and takes the checkpoint's observation statistics (the
    kept weights read observations normalized by them)."""
    old, new = _checkpoint_model(checkpoint), trainer.net.unstack(0)
    with torch.no_grad():
        for mine, theirs in zip(new.parameters(), old.parameters()):
            mine.mul_(1.0 - keep).add_(theirs, alpha=keep)
        for mine, theirs in zip(new.normalizer.buffers(), old.normalizer.buffers()):
            mine.copy_(theirs)
    trainer.net.load_candidate(0, new)


def _checkpoint_model(checkpoint: Path):
    """The ActorCritic of a PPO checkpoint (weights only), in eval mode."""
    from robreward.rl.config import TrainConfig
    from robreward.rl.ppo import ActorCritic
    from robreward.rl.runner import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ActorCritic(ckpt["obs_dim"], ckpt["act_dim"], TrainConfig.from_dict(migrate_config(ckpt["config"])).ppo)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model


def export_checkpoint_policy(ppo_dir: Path, spec) -> Path | None:
    """Write ``ppo_dir``/policy.onnx from its latest checkpoint (the deterministic policy, as a finished training
    exports it) unless it is there; its path, or None without a checkpoint."""
    from robreward.rl.export import POLICY_FILE, DeterministicPolicy, export_onnx
    from robreward.rl.runner import LATEST

    path, checkpoint = ppo_dir / POLICY_FILE, ppo_dir / "checkpoints" / LATEST
    if path.is_file():
        return path
    if not checkpoint.is_file():
        return None
    model = _checkpoint_model(checkpoint)
    return export_onnx(DeterministicPolicy(model.normalizer, model.actor, spec.action_low, spec.action_high),
                       spec.obs_dim, path)


CHOICE_EPISODES = 64
"""final_policy best: episodes each policy runs under the final learned reward to pick the one kept."""
CHOICE_SEED_OFFSET = 7_919
"""Their evaluation seed is the run's seed plus this: not the final evaluation's episodes."""


def choose_final_policy(config: PrefsConfig, spec, run_dir: Path, reward, label: str) -> dict:
    """final_policy best: the fresh policy (ppo/) and the feedback phase's (ppo-feedback/), each run for
    CHOICE_EPISODES deterministic episodes on the same seed under the final learned reward; the one with the higher
    mean return is kept. No hand reward and no teacher is read: the choice uses only what the run learned. The
    returns' std over the episodes is recorded beside the means (how far apart two policies' means must be to
    differ by more than the episodes' noise)."""
    from robreward.eval.evaluate import run_episodes
    from robreward.rl.export import load_policy

    seed, returns, spread = config.seed + CHOICE_SEED_OFFSET, {}, {}
    for name, folder in (("fresh", PPO_DIR), ("feedback", FEEDBACK_PPO_DIR)):
        path = export_checkpoint_policy(run_dir / folder, spec)
        if path is None:  # no feedback phase (every label before the first PPO step): nothing to choose from
            continue
        data = run_episodes(spec, load_policy(path), episodes=CHOICE_EPISODES, seed=seed, train_reward=reward)
        returns[name], spread[name] = float(np.mean(data["train_return"])), float(np.std(data["train_return"]))
    kept = "feedback" if returns.get("feedback", -math.inf) > returns.get("fresh", -math.inf) else "fresh"
    return {"kept": kept, "learned_return": returns, "learned_return_std": spread, "episodes": CHOICE_EPISODES,
            "eval_seed": seed}


def apply_final_choice(run_dir: Path, choice: dict) -> None:
    """Make ppo/ the kept policy: when the feedback phase's won, ppo/ (the fresh one) moves to ppo-restart/ and
    ppo-feedback/ becomes ppo/. Idempotent (a run killed between the two renames finishes them on resume)."""
    if choice.get("kept") != "feedback":
        return
    fresh, kept, restart = run_dir / PPO_DIR, run_dir / FEEDBACK_PPO_DIR, run_dir / RESTART_PPO_DIR
    if kept.exists():
        if fresh.exists():
            fresh.rename(restart)
        kept.rename(fresh)


def _sampling_policy(run_dir: Path, seed: int):
    """The current PPO policy, sampling its Gaussian (seeded); None before any PPO step (random actions)."""
    from robreward.rl.runner import LATEST

    checkpoint = run_dir / PPO_DIR / "checkpoints" / LATEST
    if not checkpoint.is_file():
        return None
    model = _checkpoint_model(checkpoint)
    gen = torch.Generator().manual_seed(int(seed))

    def policy(obs):
        with torch.no_grad():
            mean = model.actor(model.normalizer(obs.to("cpu", torch.float32)))
            return mean + model.log_std.exp() * torch.randn(mean.shape, generator=gen)

    return policy
