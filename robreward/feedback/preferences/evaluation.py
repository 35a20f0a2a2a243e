"""`robreward prefs eval`: the final reward model and policy of a preference run, measured; and the
label-efficiency plot of several runs (success or return against queries, per teacher, with the
hand and sparse baselines as horizontal lines)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from robreward.feedback.preferences.loop import (EVAL_FILE, PPO_DIR, STATE_FILE, _collect, _model_path, _read_json,
                                                 attach_bank, check_task, check_teacher, load_prefs_config,
                                                 reward_metrics)
from robreward.feedback.preferences.image_model import ImagePreferenceReward
from robreward.feedback.preferences.model import PreferenceReward
from robreward.fileio import atomic_path, atomic_write_json
from robreward.rewards.state_tables import register_tables_adapter

PLOT_METRICS = ("success_rate", "return_mean", "fitness_mean")


def evaluate_preferences(run_dir, *, episodes: int = 100, heldout_pairs: int = 1000, seed: int = 12345,
                         bootstrap: int = 100) -> dict:
    """Preference accuracy of the final reward model, and its EPIC, DARD and STARC distances to the
    hand reward (robreward.rewards.distance, with ``bootstrap`` intervals over episodes), on a fresh
    rollout of the final policy; the hand reward's own distances (0: the check that the
    measurement is sound); and the policy's success/return against the task's hand baseline
    (policies/<task>/eval.json) and its sparse baseline. Written to prefs_eval.json."""
    from robreward.eval.baseline import load_baseline
    from robreward.eval.evaluate import evaluate, read_eval_json, write_eval_json
    from robreward.rewards.base import HandReward
    from robreward.rewards.distance import Coverage, reward_distances
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
    bank = attach_bank(model, spec)  # image inputs: the fresh rollout's frames
    teacher = check_teacher(config.teacher)
    if callable(getattr(teacher, "label_round", None)):  # a VLM teacher labels frames: the oracle's accuracy only
        teacher = None
    ppo_dir = run_dir / PPO_DIR

    # the reward model, on pairs from a fresh rollout of the final policy
    rollout, env = _collect(config, spec, run_dir, seed=seed)
    env.close()
    try:
        metrics = reward_metrics(model, spec, rollout, teacher, heldout_pairs, config.segment,
                                 np.random.default_rng(seed))
    finally:
        if bank is not None:
            bank.close()
    coverage = Coverage.from_rollout(rollout)  # an image run's rollout keeps its post-step MuJoCo states
    distances = {"hand": reward_distances(spec, HandReward(spec), HandReward(spec), coverage, seed=seed,
                                          bootstrap=bootstrap)}
    if bank is None:
        distances["preference"] = reward_distances(spec, model, HandReward(spec), coverage, seed=seed,
                                                   bootstrap=bootstrap)
    else:  # an image model: scored on frames rendered from the coverage's states (rewards.state_tables)
        try:
            distances["preference"] = reward_distances(spec, on_frames(model), HandReward(spec), coverage, seed=seed,
                                                       bootstrap=bootstrap)
        except (ValueError, RuntimeError) as err:  # e.g. no renderer: the held-out EPIC, said so
            distances["preference"] = {"epic": metrics["epic_distance"], "dard": None, "starc": None,
                                       "note": f"image inputs: EPIC over the held-out rollout's frames, no interval; "
                                               f"DARD and STARC not measured ({err})"}
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
    sparse = ({k: baseline.sparse.get(k) for k in keys} if baseline is not None and baseline.sparse else None)
    fraction = None
    if policy and hand:
        fraction = {k: (policy[k] / hand[k] if policy[k] is not None and hand[k] and hand[k] > 0 else None)
                    for k in keys}
    diagnosis = (reward_or_policy(spec, model, ppo_dir, policy_eval, baseline)
                 if policy_eval is not None and baseline is not None else None)
    result = {
        "task": spec.name, "task_version": int(spec.version), "teacher": config.teacher, "select": config.select,
        "rounds": done, "queries_used": state["queries_used"], "labels_answered": state["labels_answered"],
        "ppo_steps": state["ppo_step"], "finished": bool(state.get("finished")),
        "preference_accuracy": metrics["heldout_accuracy_true"],
        "preference_accuracy_teacher": metrics["heldout_accuracy"],
        "heldout_pairs": metrics["heldout_pairs"], "epic_distance": distances["preference"]["epic"],
        "starc_distance": distances["preference"]["starc"], "distances": distances,
        "policy": policy, "baseline": hand, "sparse_baseline": sparse,
        "baseline_path": str(baseline.path) if baseline else None, "fraction_of_baseline": fraction,
        "diagnosis": diagnosis,
    }
    atomic_write_json(run_dir / EVAL_FILE, result, indent=2)
    return result


SHORT_OF_HAND = 0.9
"""A policy whose success or return is under this fraction of the hand baseline's falls short of it."""


def reward_or_policy(spec, model, ppo_dir: Path, policy_eval: dict, baseline) -> Optional[dict]:
    """Where a run that falls short of the hand baseline went wrong: the baseline's policy (its folder's policy.onnx)
    and the run's, each under the learned reward on the run evaluation's seed and episodes. A reward that pays the
    hand policy more than the run's is right about what is better and PPO did not get there (``policy``); one that
    pays the run's policy as much or more is wrong about it (``reward``). Both are measured here, on the same
    episodes (an eval.json's learned return may be another reward's). None without the baseline's policy file."""
    from robreward.eval.evaluate import evaluate
    from robreward.rl.export import load_policy

    if not (baseline.folder / "policy.onnx").is_file():
        return None
    episodes, seed = int(policy_eval["episodes"]), int(policy_eval.get("eval_seed", 0))
    short = [k for k in ("success_rate", "return_mean") if policy_eval.get(k) is not None and
             (baseline.hand.get(k) or 0) > 0 and policy_eval[k] < SHORT_OF_HAND * baseline.hand[k]]
    try:
        mine, theirs = (evaluate(spec, load_policy(folder), episodes=episodes, seed=seed, reward_name="pref",
                                 train_reward=model)["train_reward_return_mean"]
                        for folder in (ppo_dir, baseline.folder))
    except ValueError as err:  # e.g. a baseline policy of another observation size
        return {"verdict": "unknown", "short_of_hand": short, "learned_return": None,
                "explanation": f"the policies could not both be scored by the learned reward: {err}"}
    learned = {"policy": float(mine), "hand_policy": float(theirs)}
    if not short:
        return {"verdict": "none", "short_of_hand": [], "learned_return": learned,
                "explanation": f"the policy reaches {SHORT_OF_HAND:g} of the hand baseline's success and return"}
    if theirs > mine:
        return {"verdict": "policy", "short_of_hand": short, "learned_return": learned,
                "explanation": f"the learned reward pays the hand baseline's policy more ({theirs:.4g} an episode) "
                               f"than this run's ({mine:.4g}): it ranks them right and PPO did not get there (more "
                               "PPO steps, a warm start from demos, another seed)"}
    return {"verdict": "reward", "short_of_hand": short, "learned_return": learned,
            "explanation": f"the learned reward pays this run's policy ({mine:.4g} an episode) at least as much as "
                           f"the hand baseline's ({theirs:.4g}), which does the task better: the reward is wrong about "
                           "what matters (more queries, other --features, demos as free preferences)"}


class _ImageModelOnFrames:
    """An image preference model (image_model.ImagePreferenceReward) as a tabled reward for the distances
    (robreward.rewards.state_tables): the frames of every coverage state encoded once, the ensemble's mean
    head (as the model's own __call__ computes it) on (encoding of s', state features of (s', a))."""

    uses_image = True

    def __init__(self, model):
        self.model, self.name = model, model.name

    @torch.no_grad()
    def state_tables(self, states, frames):
        from robreward.rewards.state_tables import StateTables

        m = self.model
        size = (m.image.image_size, m.image.image_size)
        feats = torch.cat([m.encode(chunk) for _, chunk in frames.chunks(size, m.image.camera or None)])

        def value_of(rows, action):
            x = m._inputs(feats[rows.to(feats.device)],
                          m.featurizer(states.index(rows), action) if m.uses_state else None)
            return m.standardized(torch.stack([head(x).squeeze(-1) for head in m.members]).mean(0))

        return StateTables(value_of=value_of)


def on_frames(model):
    """``model`` for reward distances: itself when it is a state model or gives its own ``state_tables``, else
    an image model's frame-scoring view (_ImageModelOnFrames)."""
    if not getattr(model, "image", None) or callable(getattr(model, "state_tables", None)):
        return model
    return _ImageModelOnFrames(model)


# compare and `robreward distance` rebuild a pref:RUN of an image model through the reward registry: the rewards
# layer tables it through this view (robreward.rewards.state_tables), never importing this package
register_tables_adapter(ImagePreferenceReward, _ImageModelOnFrames)


# -- label efficiency ------------------------------------------------------------------------------
def label_efficiency(results: Sequence[dict], metric: str = "success_rate") -> dict:
    """The label-efficiency curves of several prefs_eval.json results (one task): per teacher, the
    policy's ``metric`` at each query budget (mean and std over the runs, i.e. seeds, at that budget),
    and the hand and sparse baselines. {"task", "metric", "teachers": {teacher: [{"queries", "mean",
    "std", "runs"}]}, "hand", "sparse"}. ValueError for runs of several tasks or without a policy."""
    if metric not in PLOT_METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(PLOT_METRICS)}")
    if not results:
        raise ValueError("no runs to plot: pass at least one `robreward prefs train` run directory")
    tasks = sorted({r["task"] for r in results})
    if len(tasks) > 1:
        raise ValueError(f"the runs are of several tasks ({', '.join(tasks)}): plot one task at a time")
    points: dict[str, dict[int, list[float]]] = {}
    for r in results:
        value = (r.get("policy") or {}).get(metric)
        if value is None:
            raise ValueError(f"run of teacher {r['teacher']!r} at {r['queries_used']} queries has no policy {metric} "
                             "yet (no ppo/policy.onnx): let it finish, or leave it out of the plot")
        points.setdefault(str(r["teacher"]), {}).setdefault(int(r["queries_used"]), []).append(float(value))
    teachers = {t: [{"queries": q, "mean": float(np.mean(v)), "std": float(np.std(v)), "runs": len(v)}
                    for q, v in sorted(by_q.items())] for t, by_q in sorted(points.items())}
    first = results[0]
    return {"task": tasks[0], "metric": metric, "teachers": teachers,
            "hand": (first.get("baseline") or {}).get(metric), "sparse": (first.get("sparse_baseline") or {}).get(metric)}


def plot_label_efficiency(results: Sequence[dict], path, metric: str = "success_rate",
                          title: Optional[str] = None) -> dict:
    """Write the label-efficiency PNG (``label_efficiency``'s curves: a line with std error bars per
    teacher, dashed horizontal lines for the hand and sparse baselines) to ``path``; returns the curves."""
    curves = label_efficiency(results, metric)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for teacher, pts in curves["teachers"].items():
        ax.errorbar([p["queries"] for p in pts], [p["mean"] for p in pts], yerr=[p["std"] for p in pts],
                    marker="o", capsize=3, label=f"{teacher} ({sum(p['runs'] for p in pts)} runs)")
    for name, style in (("hand", "--"), ("sparse", ":")):
        value = curves[name]
        if value is not None and math.isfinite(value):
            ax.axhline(value, linestyle=style, color="black" if name == "hand" else "grey", label=f"{name} baseline")
    budgets = sorted({p["queries"] for pts in curves["teachers"].values() for p in pts})
    if budgets[0] > 0 and budgets[-1] >= 4 * budgets[0]:  # 50, 200, 1000: evenly spaced on a log axis
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
    ax.set_xlabel("queries (labels asked)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"{curves['task']}: label efficiency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return curves
