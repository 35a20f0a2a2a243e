"""The PPO side of a preference run (loop.py): the one policy trained between the feedback rounds, the fresh
policy of ``final_policy="restart"``, and the current policy as the sampling policy of a round's rollout."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from robreward.feedback.preferences.config import PrefsConfig
from robreward.feedback.preferences.run_layout import FEEDBACK_PPO_DIR, PPO_DIR
from robreward.rundir import migrate_config


class _OnePolicy:
    """The one PPO policy of the run, in ppo/: one robreward.rl.trainer.Trainer kept between rounds, the
    round's reward set on it before it trains on (a resumed run continues from ppo/'s checkpoint). Its
    progress bar spans the whole run; ``finish`` exports policy.onnx and the model card."""

    def __init__(self, config: PrefsConfig, run_dir: Path, folder: str = PPO_DIR, steps: int | None = None):
        self.config, self.ppo_dir, self.steps = config, run_dir / folder, config.steps if steps is None else steps
        self.trainer = None

    def train(self, until: int, reward, label: str) -> int:
        """Train up to ``until`` steps on ``reward`` (checkpointed); the policy's step after."""
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
                                       progress=config.progress, ppo=config.ppo)
            self.trainer = Trainer([train_config], [reward], isolate_failures=False,
                                   resume_from=[checkpoint] if checkpoint.is_file() else None)
        elif self.trainer.global_step < until:  # a new phase: fresh episodes, as a run resumed here has
            self.trainer.restart_episodes()
        self.trainer.set_reward(reward, label=label)
        self.trainer.learn(until)
        self.trainer.save()
        return self.trainer.global_step

    def finish(self, reward, label: str) -> int:
        """Train to the end of its budget, then export policy.onnx and the model card; its step."""
        step = self.train(self.steps, reward, label)
        if self.trainer is not None:
            self.trainer.finish()
            self.trainer = None
        return step

    def close(self) -> None:
        if self.trainer is not None:
            self.trainer.close()
            self.trainer = None


def _restart_ppo(config: PrefsConfig, run_dir: Path, policy: _OnePolicy, feedback_steps: int, reward,
                 label: str) -> int:
    """final_policy restart: the feedback phase's policy (``feedback_steps`` PPO steps) moves to ppo-feedback/ and a
    fresh policy trains from scratch in ppo/ on ``reward`` for the steps left; the PPO steps of both. Resumable:
    the move is one rename, done once."""
    ppo_dir, kept = run_dir / PPO_DIR, run_dir / FEEDBACK_PPO_DIR
    policy.close()
    if feedback_steps > 0 and not kept.exists():
        ppo_dir.rename(kept)
    fresh = _OnePolicy(config, run_dir, steps=config.steps - feedback_steps)
    try:
        return feedback_steps + fresh.finish(reward, label)
    finally:
        fresh.close()


def _sampling_policy(run_dir: Path, seed: int):
    """The current PPO policy, sampling its Gaussian (seeded); None before any PPO step (random actions)."""
    from robreward.rl.config import TrainConfig
    from robreward.rl.ppo import ActorCritic
    from robreward.rl.runner import LATEST, load_checkpoint

    checkpoint = run_dir / PPO_DIR / "checkpoints" / LATEST
    if not checkpoint.is_file():
        return None
    ckpt = load_checkpoint(checkpoint)
    model = ActorCritic(ckpt["obs_dim"], ckpt["act_dim"], TrainConfig.from_dict(migrate_config(ckpt["config"])).ppo)
    model.load_state_dict(ckpt["model"])
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))

    def policy(obs):
        with torch.no_grad():
            mean = model.actor(model.normalizer(obs.to("cpu", torch.float32)))
            return mean + model.log_std.exp() * torch.randn(mean.shape, generator=gen)

    return policy
