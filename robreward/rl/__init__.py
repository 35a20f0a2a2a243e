"""PPO for batched envs (rsl_rl style), its runner, checkpoints and the exported policy file.

    from robreward.rl import TrainConfig, train, load_policy
    from robreward.eval import evaluate        # the final evaluation (eval.json): rl never imports eval
    train(TrainConfig(task="reach", steps=200_000, out="runs/reach"), evaluate=evaluate)
    policy = load_policy("runs/reach")      # obs [B, obs_dim] -> actions [B, act_dim]
    train_many("reach", ["hand", "r.py"], 49_152, 0, ["runs/a", "runs/b"])   # K candidates at once
"""

from robreward.rl.config import PPOConfig, TrainConfig
from robreward.rl.export import OnnxPolicy, TorchPolicy, export_onnx, load_policy

__all__ = ["OnnxPolicy", "PPOConfig", "TorchPolicy", "TrainConfig", "export_onnx", "load_policy", "resume", "train",
           "train_many"]


def train(config, resume_from=None, reward=None, evaluate=None):
    """Train one policy (see robreward.rl.runner.train); evaluate=robreward.eval.evaluate writes eval.json."""
    from robreward.rl.runner import train as _train

    return _train(config, resume_from=resume_from, reward=reward, evaluate=evaluate)


def resume(run_dir, steps=None, evaluate=None, **overrides):
    """Continue a killed run from its latest checkpoint (see robreward.rl.runner.resume)."""
    from robreward.rl.runner import resume as _resume

    return _resume(run_dir, steps=steps, evaluate=evaluate, **overrides)


def train_many(task, rewards, steps_per_candidate, seed, out_dirs, **kwargs):
    """Train K reward candidates at once in one batched env (see robreward.rl.multi.train_many)."""
    from robreward.rl.multi import train_many as _train_many

    return _train_many(task, rewards, steps_per_candidate, seed, out_dirs, **kwargs)
