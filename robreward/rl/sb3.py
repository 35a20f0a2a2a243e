"""`--algo sb3`: the same run through Stable-Baselines3 PPO over SB3VecEnv + VecNormalize,
with rl-zoo3's tuned HalfCheetah-v3 PPO hyperparameters, exported to the same policy.onnx
format (VecNormalize's observation statistics baked in) so eval and compare work on it.

Checkpoints (checkpoints/latest_sb3.pt) are plain data, like runner.py's: the SB3 policy's and
optimizer's state dicts, the step and update counters and VecNormalize's statistics as tensors and
numbers, read with torch.load(weights_only=True). Resume rebuilds the model as a new run does and
loads them. SB3's own ``.zip`` (cloudpickled entries) and VecNormalize's ``.pkl`` (a pickle) can
run code when loaded, so robreward neither writes nor loads them: a run directory holding only
those (written by an older robreward) is refused on resume with that reason."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import robreward
from robreward.rl.config import TrainConfig
from robreward.rl.export import POLICY_FILE, DeterministicPolicy, export_onnx, write_model_card
from robreward.rl.validity import invalid_reward_limit
from robreward.rundir import RunDir

# rl-zoo3 hyperparams/ppo.yml, HalfCheetah-v3 (normalize: true, n_envs: 1, n_timesteps: 1e6)
RL_ZOO_HALFCHEETAH = dict(
    batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762, clip_range=0.1,
    n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096,
)
RL_ZOO_NUM_ENVS = 1
LATEST_SB3 = "latest_sb3.pt"
PICKLED_FILES = ("latest_sb3.zip", "latest_vecnormalize.pkl")
"""What older robreward versions wrote for --algo sb3: pickles, refused on resume."""
_VECNORM_ARRAYS = ("obs_rms.mean", "obs_rms.var", "ret_rms.mean", "ret_rms.var", "returns")
_VECNORM_NUMBERS = ("obs_rms.count", "ret_rms.count", "clip_obs", "clip_reward", "gamma", "epsilon")


def rl_zoo_policy_kwargs() -> dict:
    return dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256]))


class VecNormalizeObs(nn.Module):
    """VecNormalize's observation transform: clip((obs - mean) / sqrt(var + eps), -clip, clip)."""

    def __init__(self, mean, var, epsilon: float, clip: float):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.sqrt(np.asarray(var) + epsilon), dtype=torch.float32))
        self.clip = float(clip)

    def forward(self, obs):
        return torch.clamp((obs - self.mean) / self.scale, -self.clip, self.clip)


def sb3_deterministic_policy(model, vec_normalize, action_low, action_high) -> DeterministicPolicy:
    """SB3 PPO MlpPolicy + VecNormalize stats -> raw obs -> clipped mean action (a CPU copy)."""
    import copy

    policy = model.policy
    actor = nn.Sequential(copy.deepcopy(policy.mlp_extractor.policy_net), copy.deepcopy(policy.action_net)).to("cpu")
    rms = vec_normalize.obs_rms
    normalizer = VecNormalizeObs(rms.mean, rms.var, vec_normalize.epsilon, vec_normalize.clip_obs)
    return DeterministicPolicy(normalizer, actor, action_low, action_high)


def _callback(config: TrainConfig, run_dir: Path, venv_norm, start_step: int, env):
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    from robreward.rl.trainer import fail_invalid_reward

    class ProgressCallback(BaseCallback):
        """progress.csv rows, a tqdm bar and atomic checkpoints at each rollout end."""

        def _on_training_start(self):
            self.bar = tqdm(total=config.steps, initial=start_step, unit="step", unit_scale=True,
                            disable=not config.progress, desc=f"{config.task} [{config.reward}] sb3", mininterval=1.0)
            # progress.csv through the run-directory module: the same columns as a PPO run (SB3 fills
            # the ones it knows); a resume keeps the rows up to the checkpoint's step
            self.progress = RunDir(run_dir).open_progress(keep_until=start_step if start_step else None)
            self.invalid_seen = env.reward_invalid_count
            self.t0 = time.perf_counter()
            self.last_t, self.last_step, self.rollouts = self.t0, self.num_timesteps, 0
            self.rollout_start = self.num_timesteps
            self.success = []

        def _on_step(self):
            for info in self.locals.get("infos", ()):
                if "episode" in info:
                    self.success.append(float(info.get("episode_success", 0.0)))
            return True

        def _on_rollout_end(self):
            now = time.perf_counter()
            sps = (self.num_timesteps - self.last_step) / max(now - self.last_t, 1e-9)
            self.last_t, self.last_step = now, self.num_timesteps
            episodes = list(self.model.ep_info_buffer)
            ret = float(np.mean([e["r"] for e in episodes])) if episodes else float("nan")
            length = float(np.mean([e["l"] for e in episodes])) if episodes else float("nan")
            succ = float(np.mean(self.success[-100:])) if self.success else float("nan")
            transitions = self.num_timesteps - self.rollout_start
            self.rollout_start = self.num_timesteps
            invalid_now, self.invalid_seen = env.reward_invalid_count - self.invalid_seen, env.reward_invalid_count
            self.progress.append({"step": self.num_timesteps, "update": self.rollouts + 1,
                                  "time_s": round(now - self.t0, 3), "steps_per_s": round(sps, 1), "return_mean": ret,
                                  "success_rate": succ, "episode_length": length, "reward_invalid": invalid_now,
                                  "reward_invalid_share": invalid_now / max(transitions, 1)})
            self.logger.record("train/reward_invalid", invalid_now)
            if env.reward_invalid_count > invalid_reward_limit(config.steps):  # as runner.train (this session's steps)
                self.progress.flush()
                fail_invalid_reward(run_dir, config, env.reward_invalid_count, self.num_timesteps, trainer="sb3")
            self.logger.record("episode/success", succ)
            self.bar.update(self.num_timesteps - self.bar.n)
            self.bar.set_postfix(sps=f"{sps:,.0f}", ret=f"{ret:.3g}", succ=f"{succ:.2f}", refresh=False)
            self.rollouts += 1
            if self.rollouts % config.latest_every == 0:
                self.progress.flush()
                save_sb3_checkpoint(self.model, venv_norm, run_dir / "checkpoints")

        def _on_training_end(self):
            self.bar.close()
            self.progress.close()

    return ProgressCallback()


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def save_sb3_checkpoint(model, venv_norm, ckpt_dir: Path) -> None:
    """checkpoints/latest_sb3.pt, atomically: plain tensors and numbers only (module docstring)."""
    from robreward.rundir import atomic_torch_save

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    vecnormalize = {key: torch.as_tensor(np.array(_get(venv_norm, key), dtype=np.float64)) for key in _VECNORM_ARRAYS}
    vecnormalize.update({key: float(_get(venv_norm, key)) for key in _VECNORM_NUMBERS})
    atomic_torch_save({"format": "robreward-sb3/1", "policy": model.policy.state_dict(),
                       "optimizer": model.policy.optimizer.state_dict(), "num_timesteps": int(model.num_timesteps),
                       "n_updates": int(model._n_updates), "vecnormalize": vecnormalize}, ckpt_dir / LATEST_SB3)


def load_sb3_checkpoint(path: Path) -> dict:
    """A latest_sb3.pt as plain data; refuses the pickles older versions wrote (module docstring)."""
    from robreward.rundir import load_plain

    path = Path(path)
    if not path.is_file():
        old = [name for name in PICKLED_FILES if (path.parent / name).is_file()]
        if old:
            raise ValueError(f"{str(path.parent)!r} holds an SB3 checkpoint in the old pickled format ({', '.join(old)}), "
                             "which can run code when loaded: robreward no longer loads it; start the run again "
                             "without --resume")
        raise FileNotFoundError(f"no SB3 checkpoint at {str(path)!r}: start the run again without --resume")
    ckpt = load_plain(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != "robreward-sb3/1":
        raise ValueError(f"{str(path)!r} is not a robreward SB3 checkpoint: pass a run directory trained with --algo sb3")
    return ckpt


def restore_sb3(model, venv_norm, ckpt: dict) -> None:
    """Load a latest_sb3.pt (load_sb3_checkpoint) into a freshly built PPO model and its VecNormalize."""
    model.policy.load_state_dict(ckpt["policy"])
    model.policy.optimizer.load_state_dict(ckpt["optimizer"])
    model.num_timesteps, model._n_updates = int(ckpt["num_timesteps"]), int(ckpt["n_updates"])
    for key, value in ckpt["vecnormalize"].items():
        owner, _, name = key.rpartition(".")
        target = _get(venv_norm, owner) if owner else venv_norm
        setattr(target, name, value.numpy().copy() if isinstance(value, torch.Tensor) else float(value))


class _SuccessInfo:
    """Adds `episode_success` (success at any step) to the info of the step that ends an episode."""

    def __init__(self, venv):
        self.any_success = np.zeros(venv.num_envs, dtype=bool)

    def __call__(self, infos, dones):
        for i, info in enumerate(infos):
            self.any_success[i] |= info.get("success", False)
            if dones[i]:
                info["episode_success"] = float(self.any_success[i])
                self.any_success[i] = False
        return infos


def train_sb3(config: TrainConfig, resume_from=None, evaluate=None) -> dict:
    """Train with SB3 PPO (rl-zoo3 HalfCheetah hyperparameters); writes the same run directory layout."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor, VecNormalize

    from robreward.envs.sb3_adapter import SB3VecEnv
    from robreward.rl.candidates import check_reward_files
    from robreward.rl.trainer import finish_with_eval, invalid_reward_card, seed_everything

    check_reward_files(config.reward)
    run_dir = Path(config.out)
    run = RunDir(run_dir)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run.clear_failed()  # a new attempt; it writes its own record if it fails
    torch.set_num_threads(max(1, config.torch_threads))
    seed_everything(config.seed)
    env = robreward.make(config.task, config.num_envs, backend=config.backend, device=config.device,
                         seed=config.seed, reward=config.reward)
    success = _SuccessInfo(env)

    class SuccessWrapper(VecEnvWrapper):
        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            obs, rewards, dones, infos = self.venv.step_wait()
            return obs, rewards, dones, success(infos, dones)

    venv = VecMonitor(SuccessWrapper(SB3VecEnv(env)), info_keywords=("episode_success",))
    venv.seed(config.seed)
    hp = dict(RL_ZOO_HALFCHEETAH)
    start_step = 0
    ckpt = load_sb3_checkpoint(resume_from) if resume_from is not None else None
    venv_norm = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=hp["gamma"])
    model = PPO("MlpPolicy", venv_norm, policy_kwargs=rl_zoo_policy_kwargs(), seed=config.seed,
                device=config.device, tensorboard_log=str(run_dir / "tb"), verbose=0, **hp)
    if ckpt is not None:
        restore_sb3(model, venv_norm, ckpt)
        start_step = model.num_timesteps
    run.write_config(config.to_dict())
    start = time.perf_counter()
    model.learn(total_timesteps=max(config.steps - start_step, 1),
                callback=_callback(config, run_dir, venv_norm, start_step, env),
                reset_num_timesteps=resume_from is None, tb_log_name="sb3")
    seconds = time.perf_counter() - start
    save_sb3_checkpoint(model, venv_norm, run_dir / "checkpoints")
    policy = sb3_deterministic_policy(model, venv_norm, env.action_low.cpu(), env.action_high.cpu())
    export_onnx(policy, env.obs_dim, run_dir / POLICY_FILE)
    episodes = list(model.ep_info_buffer)
    stats = {"return": float(np.mean([e["r"] for e in episodes])) if episodes else float("nan")}
    extra = {"training time (s)": round(seconds, 1), "final train return": stats["return"],
             **invalid_reward_card(env.reward_invalid_count, int(model.num_timesteps) - start_step),
             "hyperparameters": "rl-zoo3 HalfCheetah-v3 PPO: " + ", ".join(f"{k}={v}" for k, v in hp.items())}
    write_model_card(run_dir, config.to_dict(), env.spec, model.num_timesteps, None, extra)
    venv_norm.close()
    eval_result = finish_with_eval(config, run_dir, env.spec, model.num_timesteps, extra, evaluate)
    return {"run_dir": str(run_dir), "steps": int(model.num_timesteps), "seconds": seconds, "stats": stats,
            "eval": eval_result}
