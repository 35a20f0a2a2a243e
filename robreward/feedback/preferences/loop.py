"""The PEBBLE-style preference loop: one PPO policy trained on a reward learned from preferences.

    config = PrefsConfig(task="reach", teacher="oracle", queries=150, per_round=50, steps=120_000, out="runs/p")
    summary = train_preferences(config)            # or train_preferences(config, resume=True) after a crash
    report = evaluate_preferences("runs/p")        # accuracy, EPIC, policy vs the hand baseline

Timeline (PEBBLE, Lee et al. 2021, adapted to on-policy PPO). The query budget is split into
rounds by ``query_schedule``; round k happens after the PPO has trained to step
``pretrain_steps + k * feedback_fraction * (steps - pretrain_steps) / rounds`` (rounded up to
whole PPO updates), so with the default fraction 0.25 every label is in by a quarter of training and the
rest (at least three quarters) sees the final reward. Before round 0 the policy either acts
uniformly at random (``pretrain_steps=0``) or has been pre-trained for ``pretrain_steps`` on
PEBBLE's unsupervised state-entropy reward (:class:`StateEntropyReward`), which spreads the
first segments over more of the state space. After the last round PPO trains on to ``steps``:
the same policy (``final_policy="continue"``, PEBBLE), or a fresh one from scratch on the final
reward for the steps left (``"restart"``): a policy shaped by the early rounds' rewards can stay in
what they paid for (on push, seed 1 of benchmarks/prefs.py held the arm at the cube), while the
final reward trains a new one well. The reverse happens too: a final reward learned from noisy labels
can pay a fresh policy nothing it finds from scratch while the feedback phase's policy, led there by the
earlier rewards, earns it (push, stochastic teacher, seed 1: the fresh policy 0.00 success, the feedback
phase's 0.98 in training). ``"best"`` (the default) restarts, then keeps whichever of the two earns more
of the final learned reward; with ``choose_at="equal"`` (the default) it chooses once the fresh policy has
trained as many steps as the feedback phase's, and the one kept trains on for the rest of the budget (the
feedback phase's policy is then not left at the steps it had when the rounds ended); ``"end"`` chooses after
the fresh policy has trained all the steps left.

One policy is trained continuously: between rounds ``robreward.rl.runner.train`` resumes from
the PPO checkpoint (model, optimizer, normalizer, learning rate, RNG) with the updated reward
model as its reward. PEBBLE relabels its replay buffer after each reward update; PPO is
on-policy, so its next rollouts simply read the updated reward. What resuming costs: each
world starts a fresh episode at a round boundary (the runner's resume semantics).

With ``teacher="human"`` a person labels: each round's pairs are rendered to clips, stored in
the run's label store and shown by the labeling web app (served from this process unless
``serve_app`` is off); the round waits for every answer (human.py). Killed while waiting, the
run resumes the same round with the same pairs and keeps the answers already given.

Each round's segments come from a separate rollout of the current (stochastic) policy, not
counted in ``steps``. The last quarter of its worlds are held out: their segments are never
queried; uniform pairs of them, labeled by the teacher and by the oracle (the hand reward),
give the held-out preference accuracy, and their transitions the coverage of the EPIC distance.

Run directory (``out``):

    config.json         the resolved PrefsConfig
    state.json          rounds done, queries used, PPO step; written last in a round (atomic)
    labels.npz          every queried pair: features, hand rewards, masks, provenance, label
                        (NaN = skipped), round; rewritten atomically per round
    demo_labels.npz     --demos: the free (demo, policy segment) pairs of each round, as labels.npz
    reward/round_KKK.pt the reward model after round K (PreferenceReward.save)
    reward_frames/      image inputs (--reward-inputs image|both): round_KKK.npz, the frames of round K's
                        labeled pairs (labels.npz holds each step's row), what later fits train on
    metrics.json        per-round fit report, held-out accuracy, EPIC distance (atomic)
    ppo/                the PPO run dir (config.yaml, checkpoints/, tb/, progress.csv, policy.onnx,
                        MODEL_CARD.md, eval.json under the HAND reward)
    ppo-feedback/       final_policy restart/best: the feedback phase's policy (ppo/ is the fresh one)
    ppo-restart/        final_policy best, when the feedback phase's policy was kept (it is then ppo/): the fresh one
    prefs_eval.json     what ``evaluate_preferences`` (``robreward prefs eval``) measured

Resume (``resume=True``) works at round granularity: a round is done once state.json says so;
a crash inside a round redoes that round's feedback (its partial labels are dropped), a crash
during PPO continues from the PPO's latest checkpoint. The reward model's optimizer state is
not saved, so a resumed run is not bit-identical to an uninterrupted one.

The loop's parts live beside it: run_layout.py (the run directory's names, its JSON files and config),
labeled.py (LabeledPairs, labels.npz), ppo_phase.py (the one PPO policy, the restart's fresh one, the
rollouts' sampling policy), rollouts.py (a round's rollout, its held-out worlds, segments and frame rows) and
run_reward.py (the reward model built, its frame bank, the held-out metrics); this module keeps the loop, its
timeline and the final evaluation, and re-exports the names imported from it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from robreward.feedback.preferences.config import (
    FINAL_POLICIES,
    RESUMABLE_CHANGES,
    PrefsConfig,
    check_task,
    check_teacher,
)
from robreward.feedback.preferences.demo_prefs import DemoSegments
from robreward.feedback.preferences.entropy import StateEntropyReward
from robreward.feedback.preferences.human import HumanTeacher, timeout_seconds
from robreward.feedback.preferences.image_model import check_image_inputs
from robreward.feedback.preferences.labeled import LabeledPairs
from robreward.feedback.preferences.model import FeatureSpec, Featurizer, FitReport, PreferenceReward
from robreward.feedback.preferences.ppo_phase import (_best_at_equal_steps, _OnePolicy, _restart_ppo, apply_final_choice,
                                                      choose_final_policy)
from robreward.feedback.preferences.rollouts import _add_frames, _collect, _pairs_with_frames, _segments, split_heldout
from robreward.feedback.preferences.run_layout import (
    CONFIG_FILE,
    DEMO_LABELS_FILE,
    EVAL_FILE as EVAL_FILE,
    FEEDBACK_PPO_DIR,
    LABELS_FILE,
    METRICS_FILE,
    PPO_DIR,
    RESTART_PPO_DIR,
    REWARD_DIR,
    STATE_FILE,
    _frames_path,
    _model_path,
    _read_json,
    load_prefs_config,
)
from robreward.feedback.preferences.run_reward import attach_bank, new_reward_model, reward_metrics
from robreward.feedback.preferences.segments import (
    cat_pairs,
    choose_queries,
    query_schedule,
    sample_pairs,
    segment_episodes,
    with_frame_rows,
)
from robreward.fileio import atomic_write_json
from robreward.rundir import RunLock

HELDOUT_SEED_OFFSET = 1_000_003
UNLABELED_PAIRS = 2000
"""SURF's pseudo-labels (``ensemble.pseudo_threshold``): random pairs of each round's segments the reward fit may
pseudo-label (the pool of that round's fit)."""


# -- the timeline (the configuration is config.py) ------------------------------------------
def round_steps(config: PrefsConfig, num_rounds: int) -> list[int]:
    """The PPO step at which each feedback round happens (whole PPO updates)."""
    per_update = config.num_envs * config.ppo.num_steps
    span = (config.steps - config.pretrain_steps) * config.feedback_fraction
    raw = [config.pretrain_steps + k * span / num_rounds for k in range(num_rounds)]
    return [int(math.ceil(t / per_update - 1e-9)) * per_update for t in raw]


def _round_line(k: int, rounds: int, metrics: dict) -> str:
    """The one line a round prints: its step, the labels so far and the held-out accuracy."""
    accuracy = metrics.get("heldout_accuracy")
    if accuracy is None:
        accuracy = metrics.get("heldout_accuracy_true")
    shown = "n/a" if accuracy is None else f"{accuracy:.2f}"
    return (f"round {k + 1}/{rounds}: step {metrics['ppo_step']:,}, labels {metrics['labels_answered']} "
            f"({metrics['queries_used']} queries), held-out accuracy {shown}")


def _fit_summary(report: Optional[FitReport]) -> Optional[dict]:
    return None if report is None else dataclasses.asdict(report)


# -- the loop --------------------------------------------------------------------------------
def train_preferences(config: PrefsConfig, resume: bool = False) -> dict:
    """Run (or resume) the PEBBLE-style loop; returns a summary. See the module docstring."""
    started = time.perf_counter()
    run_dir = Path(config.out)
    spec = check_task(config.task)
    teacher = check_teacher(config.teacher)
    if teacher is None and config.serve_app:  # a busy or bad app address fails before anything is written
        from robreward.feedback.preferences.app import bind_socket

        bind_socket(config.host, config.port).close()
    featurizer = Featurizer(spec, FeatureSpec(config.features, config.feature_action))
    if config.reward_inputs != "state":  # no renderer or no such camera: said before anything is written
        check_image_inputs(spec, config.image_camera)
    # demos as free preferences: their segments in the reward's features (a bad dataset fails before anything is written)
    demos = DemoSegments.load(config.demos, spec, featurizer, config.segment) if config.demos else None
    if config.init_from_demos or config.reset_from_demos:  # another task's file, or none to clone or start from
        from robreward.demos.resets import check_demo_files

        check_demo_files(spec, config.init_from_demos, config.reset_from_demos)
    schedule = query_schedule(config.queries, config.per_round, config.schedule)
    at_step = round_steps(config, len(schedule))
    label = f"pref:{run_dir}"
    torch.set_num_threads(max(1, config.torch_threads))
    with RunLock(run_dir):  # one process at a time writes a preference run (a second one stops at once)
        return _train_locked(config, resume, started, run_dir, spec, teacher, featurizer, demos, schedule, at_step,
                             label)


def _train_locked(config: PrefsConfig, resume: bool, started: float, run_dir: Path, spec, teacher, featurizer,
                  demos, schedule: list[int], at_step: list[int], label: str) -> dict:
    """train_preferences after its checks of the inputs, the run directory locked."""
    if resume:
        state = _read_json(run_dir / STATE_FILE, "its state")
        saved = load_prefs_config(run_dir).to_dict()
        changed = sorted(k for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES and saved.get(k) != v)
        if changed:
            raise ValueError(f"cannot resume {str(run_dir)!r} with a different config (changed: {', '.join(changed)}); "
                             "resume with the saved config (load_prefs_config) or start a new run")
    else:
        if (run_dir / STATE_FILE).exists():
            raise ValueError(f"{str(run_dir)!r} already holds a preference run: resume it (--resume {run_dir}) "
                             "or pass a new --out")
        (run_dir / REWARD_DIR).mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / CONFIG_FILE, config.to_dict(), indent=2)
        state = {"rounds_done": 0, "schedule": schedule, "round_steps": at_step, "queries_used": 0,
                 "labels_answered": 0, "ppo_step": 0, "collect_steps": 0, "finished": False}
        atomic_write_json(run_dir / STATE_FILE, state, indent=2)
        atomic_write_json(run_dir / METRICS_FILE, {"rounds": []}, indent=2)
    done = int(state["rounds_done"])
    metrics = _read_json(run_dir / METRICS_FILE, "its metrics")
    metrics["rounds"] = metrics["rounds"][:done]
    labeled = LabeledPairs.load(run_dir / LABELS_FILE, done)
    if done:
        model = PreferenceReward.load(_model_path(run_dir, done - 1), spec, device=config.device)
    else:
        model = new_reward_model(config, featurizer)
    bank = attach_bank(model, spec)
    demo_labeled = LabeledPairs.load(run_dir / DEMO_LABELS_FILE, done) if demos is not None else None
    if bank is not None:  # the frames of the labeled pairs of the rounds done
        for k in range(done):
            bank.load(_frames_path(run_dir, k))
    pretrain = StateEntropyReward(spec, config.entropy_k) if config.pretrain_steps else None
    human = None
    # a teacher that labels rendered frames (vlm:MODEL, robreward.feedback.vision.vlm_teacher) reads the rollout's
    # MuJoCo states like the person's clips; it caches its labels in the run directory
    frames_teacher = teacher if callable(getattr(teacher, "label_round", None)) else None
    if frames_teacher is not None:
        frames_teacher.start(run_dir)
    if teacher is None:  # a person labels in the web app, served from here unless serve_app is off
        human = HumanTeacher(run_dir, host=config.host, port=config.port, serve=config.serve_app,
                             timeout=timeout_seconds(config.label_timeout), progress=config.progress)
    policy = _OnePolicy(config, run_dir)
    try:
        for k, num_queries in enumerate(schedule):
            if k < done:
                continue
            rng = np.random.default_rng([config.seed, k])
            unlabeled = None
            rendered = (bank.rendered, bank.render_seconds) if bank is not None else None
            # 1. PPO up to this round: state-entropy pre-training before round 0, the learned reward after
            if k == 0:
                ppo_step = policy.train(at_step[0], pretrain, "state-entropy") if pretrain else 0
            else:
                ppo_step = policy.train(at_step[k], model, label)
            # 2. collect rollouts with the current policy (sampled), under the hand reward the teacher reads
            #    (with full MuJoCo states when a person labels: the clips are rendered from them)
            rollout, env = _collect(config, spec, run_dir, seed=config.seed * 7919 + k + 1,
                                    record_sim_states=human is not None or frames_teacher is not None)
            try:
                state["collect_steps"] += rollout.num_steps * rollout.num_envs
                query_worlds, heldout_worlds = split_heldout(rollout)
                # 3. cut fixed-length segments (episodes that terminated early are padded by segments.py)
                segments = _segments(query_worlds, config.segment, model.featurizer, rng)
                offset = _add_frames(model, query_worlds)  # image inputs: each step's frame row
                if offset is not None:
                    segments = with_frame_rows(segments, offset, query_worlds.num_envs)
                # 4. choose queries: uniform until a model exists, then the configured selection (a person's
                #    round that a crash interrupted asks the same pairs again: their labels are in the store)
                method = config.select if model.num_fits else "uniform"
                queries = human.pending_pairs(k) if human is not None else None
                groups = segment_episodes(query_worlds, segments) if config.pairing != "any" else None
                within = 0.5 if config.pairing == "mixed" else 1.0
                if config.ensemble.pseudo_threshold is not None:  # SURF: pairs of this round nobody labels
                    unlabeled = sample_pairs(segments, UNLABELED_PAIRS, np.random.default_rng([config.seed, k, 4]),
                                             groups, within)
                if queries is None:
                    queries = choose_queries(segments, num_queries, method, rng,
                                             model=model if model.num_fits else None, groups=groups,
                                             within=within)
                # (a person's pairs asked again after a crash get this rollout's frame rows)
                queries = _pairs_with_frames(queries, offset, query_worlds.num_envs)
                # 5. labels from the teacher (B-Pref's reference return: mean hand reward per step x H), or from
                #    the person: clips rendered, queries stored, wait until the web app has every answer
                if human is not None:
                    labels = human.label_round(k, queries, query_worlds, env)
                elif frames_teacher is not None:
                    labels = frames_teacher.label_round(k, queries, query_worlds, env)
                else:
                    reference = float(query_worlds.rewards.mean()) * config.segment
                    labels = teacher.label(queries, np.random.default_rng([config.seed, k, 1]),
                                           reference_return=reference)
            finally:
                env.close()
            labeled.add(queries, labels, k)
            if demo_labeled is not None:  # free pairs: a demo segment preferred to one of this round's segments
                demo_labeled.add(*demos.pairs(segments, config.demo_pairs, np.random.default_rng([config.seed, k, 3])), k)
            # 6. train the reward ensemble on every label so far (Bradley-Terry, ties 0.5, skips dropped), the free
            #    demo pairs beside them; "relabel": the next PPO phase reads the updated model (on-policy, no replay)
            report = None
            if labeled.answered:
                pairs, pair_labels = labeled.all_pairs(), labeled.labels
                if demo_labeled is not None:
                    pairs, pair_labels = cat_pairs([pairs, demo_labeled.all_pairs()]), pair_labels + demo_labeled.labels
                report = model.fit(pairs, pair_labels, unlabeled=unlabeled)
            # 7. metrics on the held-out worlds: preference accuracy, EPIC distance to the hand reward
            round_metrics = {"round": k, "ppo_step": ppo_step, "queries": num_queries, "select": method,
                             "queries_used": labeled.size, "labels_answered": labeled.answered,
                             "ties": sum(y == 0.5 for y in labels), "skipped": sum(y is None for y in labels),
                             "rollout_hand_reward_per_step": float(rollout.rewards.mean()), "fit": _fit_summary(report)}
            if demo_labeled is not None:
                round_metrics["demo_pairs"] = demo_labeled.size
            if frames_teacher is not None:  # unsure/malformed answers, agreement with the oracle, cost
                round_metrics.update(frames_teacher.round_stats)
            if model.num_fits:
                round_metrics.update(reward_metrics(model, spec, heldout_worlds,
                                                    None if frames_teacher is not None else teacher, config.heldout_pairs,
                                                    config.segment, np.random.default_rng([config.seed, k, 2])))
            if bank is not None:  # image inputs: frames this round rendered (each once) and the time it took
                round_metrics.update(frames_rendered=bank.rendered - rendered[0],
                                     frames_render_seconds=bank.render_seconds - rendered[1])
            # 8. checkpoint the round: model, labels, metrics, then state.json (the round is done when it says so)
            model.save(_model_path(run_dir, k))
            if bank is not None:  # the frames of this round's labeled pairs; the others are let go
                bank.save(_frames_path(run_dir, k), torch.cat([queries.first.frames, queries.second.frames]))
                every = labeled.all_pairs()
                bank.keep_only(torch.cat([every.first.frames, every.second.frames]))
            labeled.save(run_dir / LABELS_FILE)
            if demo_labeled is not None:
                demo_labeled.save(run_dir / DEMO_LABELS_FILE)
            metrics["rounds"].append(round_metrics)
            atomic_write_json(run_dir / METRICS_FILE, metrics, indent=2)
            state.update(rounds_done=k + 1, queries_used=labeled.size, labels_answered=labeled.answered,
                         ppo_step=ppo_step)
            atomic_write_json(run_dir / STATE_FILE, state, indent=2)
            if config.progress:
                from tqdm import tqdm

                tqdm.write(_round_line(k, len(schedule), round_metrics))
        # 9. train PPO on the final learned reward to the end of the budget: the same policy (continue), or a
        #    fresh one from scratch for the steps left (restart)
        if not model.num_fits:
            raise ValueError(f"the teacher {config.teacher!r} skipped all {labeled.size} queries: no reward model "
                             "was trained; use a teacher that answers (lower its skip threshold) or a larger budget")
        feedback_steps = int(metrics["rounds"][-1]["ppo_step"])
        choice = state.get("final_choice")
        if config.final_policy == "continue":
            state["ppo_step"] = policy.finish(model, label)
        elif config.choose_at == "equal" and feedback_steps > 0:  # best, choosing when the fresh policy has as
            def record(made: dict) -> None:  # many steps as the feedback phase's; the choice before folders move
                state["final_choice"] = made
                atomic_write_json(run_dir / STATE_FILE, state, indent=2)

            state["ppo_step"], choice = _best_at_equal_steps(config, spec, run_dir, policy, feedback_steps, model,
                                                             label, choice, record)
        elif choice is None:  # restart or best (a best run that already chose only finishes moving folders)
            state["ppo_step"] = _restart_ppo(config, run_dir, policy, feedback_steps, model, label)
            if config.final_policy == "best":
                choice = state["final_choice"] = choose_final_policy(config, spec, run_dir, model, label)
                atomic_write_json(run_dir / STATE_FILE, state, indent=2)  # the choice before the folders move
        if choice is not None:
            apply_final_choice(run_dir, choice)
    finally:
        policy.close()
        if human is not None:
            human.close()
        if bank is not None:
            bank.close()

    # 10. evaluate the deterministic policy under the HAND reward (eval.json), the learned one beside it
    eval_result = _final_eval(config, spec, run_dir, model, label, state["ppo_step"], feedback_steps,
                              state.get("final_choice"))
    state["finished"] = True
    atomic_write_json(run_dir / STATE_FILE, state, indent=2)
    return {"run_dir": str(run_dir), "rounds": state["rounds_done"], "queries": state["queries_used"],
            "labels_answered": state["labels_answered"], "steps": state["ppo_step"],
            "collect_steps": state["collect_steps"], "seconds": time.perf_counter() - started,
            "metrics": metrics["rounds"][-1] if metrics["rounds"] else None, "eval": eval_result}


def _final_eval(config: PrefsConfig, spec, run_dir: Path, model, label: str, steps: int,
                feedback_steps: int, choice: Optional[dict] = None) -> Optional[dict]:
    from robreward.eval.evaluate import evaluate, read_eval_json, write_eval_json
    from robreward.rl.export import load_policy, write_model_card
    from robreward.rl.runner import load_run_config

    ppo_dir = run_dir / PPO_DIR
    if config.eval_episodes <= 0:
        return None
    if (ppo_dir / "eval.json").is_file():  # a resumed run that only crashed after its evaluation
        return read_eval_json(ppo_dir / "eval.json")
    result = evaluate(spec, load_policy(ppo_dir), episodes=config.eval_episodes, seed=config.seed,
                      reward_name=label, train_reward=model, policy_seed=config.seed)
    write_eval_json(ppo_dir, result)
    extra = {"preference run": str(run_dir), "teacher": config.teacher, "queries": config.queries,
             "final policy": config.final_policy}
    fresh = f"{steps - feedback_steps:,} of the {steps:,} PPO steps"
    how = (f"from {config.restart_keep:g} of the feedback phase's weights (shrink and perturb)" if config.restart_keep
           else "from scratch")
    if config.final_policy == "restart":
        extra["final policy"] += (f": trained {how} on the final reward for {fresh}; the feedback phase's "
                                  f"policy ({feedback_steps:,} steps) is in {FEEDBACK_PPO_DIR}/")
    elif choice is not None:
        returns = ", ".join(f"{name} {value:.4g}" for name, value in choice["learned_return"].items())
        kept = "feedback phase" if choice["kept"] == "feedback" else "fresh"
        when, trained = "", f"the fresh policy trained {how} for {fresh}, the feedback phase's for {feedback_steps:,}"
        if "at_step" in choice:  # choose_at equal: chosen part way, the kept one trained on
            at = int(choice["at_step"])
            when = f" once the fresh one had trained {at:,} steps"
            if kept != "fresh":
                trained = (f"the feedback phase's policy trained on for {steps - at:,} of the {steps:,} PPO steps in "
                           f"all, the fresh one {how} for {at:,}")
        extra["final policy"] += (
            f": kept the {kept} policy, the higher mean return under the final learned reward over "
            f"{choice['episodes']} episodes ({returns}){when}; {trained}; the other is in "
            f"{RESTART_PPO_DIR if kept != 'fresh' else FEEDBACK_PPO_DIR}/")
    train_config = load_run_config(ppo_dir)
    if config.init_from_demos:  # the trainer's own card said so; this one replaces it
        which = "each PPO policy of the run" if config.init_policies == "both" else "the fresh policy"
        extra["BC warm start"] = (f"{config.init_from_demos}: {which} cloned it before PPO "
                                  f"({train_config.bc_epochs} epochs, then noise std {train_config.bc_noise_std})")
    if config.reset_from_demos:
        extra["demo-state resets"] = (f"{config.reset_from_demos}: {train_config.demo_reset_fraction:g} of each PPO "
                                      "phase's training resets (evaluation: the task's own)")
    write_model_card(ppo_dir, train_config.to_dict(), spec, steps, result, extra)
    return result


__all__ = ["FINAL_POLICIES", "LabeledPairs", "PrefsConfig", "StateEntropyReward", "attach_bank", "check_task",
           "check_teacher", "load_prefs_config", "new_reward_model", "reward_metrics", "round_steps", "split_heldout",
           "train_preferences"]
