"""MODEL_CARD.md: what a run's policy is, its training numbers and its evaluation section (which
`robreward eval` replaces in place)."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import torch

from robreward.fileio import atomic_write_text
from robreward.rundir.layout import CARD_FILE, POLICY_FILE

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
