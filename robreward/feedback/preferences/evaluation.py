"""`robreward prefs eval`: the final reward model and policy of a preference run, measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robreward.feedback.preferences.loop import (EVAL_FILE, PPO_DIR, STATE_FILE, _collect, _model_path, _read_json,
                                                 check_task, check_teacher, load_prefs_config,
                                                 reward_metrics)
from robreward.feedback.preferences.model import PreferenceReward
from robreward.fileio import atomic_write_json


def evaluate_preferences(run_dir, *, episodes: int = 100, heldout_pairs: int = 1000, seed: int = 12345) -> dict:
    """Preference accuracy and EPIC distance of the final reward model on a fresh rollout of the
    final policy, and the policy's success/return against the task's hand baseline
    (policies/<task>/eval.json). Written to prefs_eval.json."""
    from robreward.eval.baseline import load_baseline
    from robreward.eval.evaluate import evaluate, read_eval_json, write_eval_json
    from robreward.rl.export import load_policy

    run_dir = Path(run_dir)
    config = load_prefs_config(run_dir)
    state = _read_json(run_dir / STATE_FILE, "its state")
    spec = check_task(config.task)
    done = int(state["rounds_done"])
    if done == 0:
        raise ValueError(f"{str(run_dir)!r} has no finished feedback round yet: no reward model to evaluate; "
                         f"resume it with `robreward prefs train --resume {run_dir}`")
    model = PreferenceReward.load(_model_path(run_dir, done - 1), spec)
    teacher = check_teacher(config.teacher)
    ppo_dir = run_dir / PPO_DIR

    # the reward model, on pairs from a fresh rollout of the final policy
    rollout, env = _collect(config, spec, run_dir, seed=seed)
    env.close()
    metrics = reward_metrics(model, spec, rollout, teacher, heldout_pairs, config.segment,
                             np.random.default_rng(seed))
    # the policy, under the hand reward
    policy_eval = None
    if (ppo_dir / "eval.json").is_file():
        policy_eval = read_eval_json(ppo_dir / "eval.json")
    elif (ppo_dir / "policy.onnx").is_file():
        policy_eval = evaluate(spec, load_policy(ppo_dir), episodes=episodes, seed=config.seed,
                               reward_name=f"pref:{run_dir}", train_reward=model, policy_seed=config.seed)
        write_eval_json(ppo_dir, policy_eval)
    baseline = load_baseline(spec.name)
    keys = ("success_rate", "return_mean", "fitness_mean")
    policy = {k: policy_eval.get(k) for k in keys} if policy_eval else None
    hand = {k: baseline.hand.get(k) for k in keys} if baseline else None
    fraction = None
    if policy and hand:
        fraction = {k: (policy[k] / hand[k] if policy[k] is not None and hand[k] and hand[k] > 0 else None)
                    for k in keys}
    result = {
        "task": spec.name, "task_version": int(spec.version), "teacher": config.teacher, "select": config.select,
        "rounds": done, "queries_used": state["queries_used"], "labels_answered": state["labels_answered"],
        "ppo_steps": state["ppo_step"], "finished": bool(state.get("finished")),
        "preference_accuracy": metrics["heldout_accuracy_true"],
        "preference_accuracy_teacher": metrics["heldout_accuracy"],
        "heldout_pairs": metrics["heldout_pairs"], "epic_distance": metrics["epic_distance"],
        "policy": policy, "baseline": hand, "baseline_path": str(baseline.path) if baseline else None,
        "fraction_of_baseline": fraction,
    }
    atomic_write_json(run_dir / EVAL_FILE, result, indent=2)
    return result
