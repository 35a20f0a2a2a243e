"""The policy file: policy.onnx (raw observations float32 [B, obs_dim] in, normalization
baked in, deterministic actions clipped to the action space [B, act_dim] out), its
MODEL_CARD.md, and `load_policy(path)` for a policy file or a run directory."""

from __future__ import annotations

import datetime
import os
import platform
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ONNX_OPSET = 17  # supported by onnxruntime >= 1.14
POLICY_FILE = "policy.onnx"
CARD_FILE = "MODEL_CARD.md"


class DeterministicPolicy(nn.Module):
    """Raw obs [B, obs_dim] -> clamp(actor(normalize(obs)), low, high) [B, act_dim]."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module, action_low, action_high):
        super().__init__()
        self.normalizer, self.actor = normalizer, actor
        self.register_buffer("action_low", torch.as_tensor(action_low, dtype=torch.float32).reshape(-1))
        self.register_buffer("action_high", torch.as_tensor(action_high, dtype=torch.float32).reshape(-1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.max(torch.min(self.actor(self.normalizer(obs)), self.action_high), self.action_low)


class TorchPolicy:
    """In-process policy callable: obs tensor [B, obs_dim] -> deterministic clipped actions [B, act_dim]."""

    def __init__(self, module: DeterministicPolicy):
        self.module = module.eval()
        self.device = next(iter(module.buffers())).device

    @torch.no_grad()
    def __call__(self, obs):
        if isinstance(obs, np.ndarray):
            return self.module(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).cpu().numpy()
        return self.module(obs.to(self.device, torch.float32)).to(obs.device)


class OnnxPolicy:
    """policy.onnx through onnxruntime (CPU): obs [B, obs_dim] (torch or numpy) -> actions of the same kind."""

    def __init__(self, path: str | os.PathLike):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.path = str(path)
        try:
            self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ValueError(f"could not load policy file {self.path!r}: {err}") from err
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.obs_dim = inp.shape[1]
        self.act_dim = self.session.get_outputs()[0].shape[1]

    def __call__(self, obs):
        if isinstance(obs, torch.Tensor):
            array = obs.detach().to("cpu", torch.float32).numpy()
            out = self.session.run(None, {self.input_name: array})[0]
            return torch.from_numpy(out).to(obs.device)
        return self.session.run(None, {self.input_name: np.asarray(obs, dtype=np.float32)})[0]

    def __repr__(self) -> str:
        return f"OnnxPolicy({self.path!r}, obs_dim={self.obs_dim}, act_dim={self.act_dim})"


def export_onnx(module: nn.Module, obs_dim: int, path: str | os.PathLike) -> Path:
    """Export a raw-obs -> action module to ONNX with a dynamic batch axis (written atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    module = module.to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module, (torch.zeros(1, obs_dim),), str(tmp), input_names=["obs"], output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=ONNX_OPSET, dynamo=False,
        )
    os.replace(tmp, path)
    return path


def load_policy(path: str | os.PathLike):
    """A callable obs [B, obs_dim] -> deterministic clipped actions [B, act_dim] from a policy.onnx file
    or a run directory (its policy.onnx; a run without one falls back to checkpoints/latest.pt)."""
    path = Path(path)
    if path.is_dir():
        if (path / POLICY_FILE).is_file():
            return OnnxPolicy(path / POLICY_FILE)
        checkpoint = path / "checkpoints" / "latest.pt"
        if checkpoint.is_file():
            from robreward.rl.runner import policy_from_checkpoint

            return TorchPolicy(policy_from_checkpoint(checkpoint))
        raise FileNotFoundError(
            f"run directory {str(path)!r} has neither {POLICY_FILE} nor checkpoints/latest.pt: "
            "train it first (robreward train --out DIR) or pass a policy.onnx file")
    if not path.exists():
        raise FileNotFoundError(f"no policy at {str(path)!r}: pass a policy.onnx file or a run directory")
    if path.suffix != ".onnx":
        raise ValueError(f"policy file {str(path)!r} is not an .onnx file: pass policy.onnx or a run directory")
    return OnnxPolicy(path)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_model_card(run_dir: str | os.PathLike, config: dict, spec, steps: int, eval_result: dict | None = None,
                     extra: dict | None = None) -> Path:
    """MODEL_CARD.md beside policy.onnx: task and version, reward source, steps, seeds, eval numbers."""
    run_dir = Path(run_dir)
    algo = config.get("algo", "ppo")
    lines = [
        f"# {spec.name} policy ({config.get('reward', 'hand')} reward)", "",
        f"- task: `{spec.name}` version {spec.version}",
        f"- reward: `{config.get('reward', 'hand')}`",
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
    lines += ["", "## Evaluation", ""]
    if eval_result:
        keys = ("episodes", "seeds", "return_mean", "return_std", "train_reward_return_mean", "success_rate",
                "fitness_mean", "episode_length_mean")
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(eval_result[k])} |" for k in keys if k in eval_result]
        lines += ["", "Returns are under the task's hand reward (eval.json has every field)."]
    else:
        lines.append("Not evaluated yet: `robreward eval RUN_DIR` writes eval.json.")
    path = run_dir / CARD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
