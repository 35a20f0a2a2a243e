r"""Preference-learning quality: the policy a preference run trains, as a fraction of the hand-reward
baseline of policies/<task>/ (success rate where the task has one that the baseline reaches, else
return), over a grid of task x teacher x query budget x seed.

    .venv/bin/python benchmarks/prefs.py                                   # the whole grid (days on 2 cores)
    .venv/bin/python benchmarks/prefs.py --tasks cheetah-run --teachers oracle --budgets 50,200 --seeds 0
    .venv/bin/python benchmarks/prefs.py --list                            # the cells and which are done
    .venv/bin/python benchmarks/prefs.py --plot                            # the label-efficiency plots

Every cell is one `robreward prefs train` run directory under --work (default
benchmarks/results/prefs_runs/TASK/TEACHER/qBUDGET/sSEED). A finished cell is read back, an
interrupted one is resumed (at its last finished round, then the PPO checkpoint), so the grid can
be run piece by piece, by any subset, over several sessions. The JSON (--out) is rewritten after
every cell with all finished cells of the grid, the machine, and per (task, teacher, budget) the
mean fraction over seeds; at the end, each task's label-efficiency plot of the variant run (success or return
against queries per teacher, the hand and sparse baselines as lines; prefs_label_efficiency_TASK.png beside it).
Targets (issue 23): at 200 queries, the oracle >= 0.9 of the hand baseline on push and cheetah-run (5 seeds), the
noisy teachers >= 0.8 on every seed, and the same defaults >= 0.8 on tasks they were not tuned on.

With --retrain, each cell also trains a fresh PPO policy from scratch on its final learned reward
(CELL/retrain, the loop's PPO settings, seed and steps again), reported beside the loop's own policy:
whether the reward is good enough, apart from what became of the policy trained while it was learned.

Every cell runs PrefsConfig's defaults (robreward/feedback/preferences/config.py: features auto, rounds over
0.25 of the steps, a fresh policy on the final reward, kept or not at equal steps) unless --features,
--feedback-fraction, --final-policy, --choose-at, --init-from-demos or --pairing say otherwise. A cell's directory
suffix names what differs from the settings the grid began with (the observation, 0.75, continue, mixed, a choice at
the end), so a cell of today's defaults is e.g. s0-norm_ee_pos+...+best+ff0.25+eq on push and s0-best+ff0.25+eq on
cheetah-run (best+ff0.5 from 2026-12 to 2026-12-07, restart+ff0.5 before the best-of-two choice), and the older
rows of prefs.json keep their meaning.

With --hand-seeds S,..., the hand reward is trained here too, with the shipped baseline's config.yaml (the same
steps, worlds and PPO) on each of those seeds (WORK/TASK/hand/sSEED, resumable), and every summary row of the task
judged against that shipped baseline gains fraction_of_hand_here: its mean over the same-machine hand mean. A
shipped baseline is three seeds trained on whichever machine made it; on another, the same config and seeds return
otherwise (floating point), so the ratio of means over many seeds of both, run on one machine, is the comparison
that does not depend on where each side ran. Every cell and hand run records its CPU (``machine``; those saved
before the field existed ran on one Intel VM, prefs_hand.LEGACY_MACHINE), and a row is compared only with hand runs
of the machine all its cells ran on. With --hand-steps N they train for N steps instead (the budget a preference
run's fresh policy gets: 811584 with the defaults on cheetah-run, 623168 with rounds over half), into
WORK/TASK/hand/sSEED-N; the JSON's hand_spread then says, per task, steps and machine, how often the hand reward
itself meets the goals' per-seed 0.8 and 5-seed mean 0.9 with that budget.

    .venv/bin/python benchmarks/prefs.py --tasks cheetah-run --teachers oracle --budgets 200 --seeds 0,1,2 \
        --hand-seeds 0,1,2,3,4
    .venv/bin/python benchmarks/prefs.py --tasks cheetah-run --seeds "" --hand-seeds 0,1,2,3,4 --hand-steps 623168

With --imitation, each cheetah-run oracle cell also runs `imitation`'s PreferenceComparisons at
the same query budget, seed and PPO steps (benchmarks/prefs_imitation.py: its own tuned
seals_half_cheetah config with SB3 PPO on Gymnasium's HalfCheetah-v4, in its own virtual
environment, `make imitation-venv`; imitation 1.0.1 pins gymnasium 0.29 and SB3 2.2). Its cells
live under --work/imitation/qBUDGET/sSEED and are resumable the same way (a finished cell has
result.json; a run that imitation itself aborts leaves failed.json with its error, and is reported
as such rather than stopping the grid). The summary then gives robreward's mean return over imitation's at each budget
(target >= 1.5 at 200 queries).

    make imitation-venv && .venv/bin/python benchmarks/prefs.py --tasks cheetah-run --teachers oracle \
        --budgets 200 --seeds 0 --imitation
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from robreward.configs import ConfigError
from robreward.envs.bench import machine_info
from robreward.feedback.preferences.config import CHOOSE_AT, FINAL_POLICIES, PrefsConfig
from robreward.feedback.preferences.model import EnsembleConfig
from robreward.fileio import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.prefs_hand import (  # noqa: E402
    hand_here, hand_key, hand_spread, machine_of, run_hand_cell, this_machine,
)

HERE = Path(__file__).parent
TASKS = ("push", "cheetah-run")
TEACHERS = ("oracle", "mistake:0.1", "stochastic:1")
BUDGETS = (50, 200, 1000)
SEEDS = (0, 1, 2)
# PPO steps per cell: the hand baselines' budgets (policies/<task>/MODEL_CARD.md)
STEPS = {"push": 3_000_000, "cheetah-run": 1_000_000, "reach": 150_000, "lift": 1_000_000, "drawer-open": 1_000_000,
         "ant-run": 1_000_000, "hopper-hop-v1": 1_000_000, "humanoid-kneel-v2": 500_000}
TARGETS = {("push", "oracle", 200): 0.9}
IMITATION_TARGET = 1.5  # robreward's return over imitation's, cheetah-run, oracle, same budget
IMITATION_PYTHON = HERE.parent / ".venv-imitation" / "bin" / "python"


# The naming reference: a cell run with these settings has no suffix. They are the defaults the grid began with
# (mixed pairing, PEBBLE's continuing policy, rounds over 0.75 of the steps), kept so a cell's directory and variant
# mean the same thing in every row of prefs.json; the defaults since 2026-12-07 (PrefsConfig: best chosen at equal
# steps, 0.25, features auto) are cells with the suffix "[norm_...+]best+ff0.25+eq" (best+ff0.5 before, and
# restart+ff0.5 before the best-of-two choice).
PAIRING, FINAL_POLICY, FEEDBACK_FRACTION = "mixed", "continue", 0.75
DEMO_PAIRS = 50  # --demos: free pairs per round (PrefsConfig.demo_pairs)
STOP_ACCURACY = 0.97  # EnsembleConfig.stop_accuracy the grid began with (B-Pref's)
# --example NAME: the reward fit of examples/prefs-NAME.yaml, the config a user passes to `prefs train --config`
# (surf: SURF, Park et al. 2022; rime: RIME, Cheng et al. 2024; label-smoothing; prior: Hindsight PRIOR; min-steps:
# the 97% stop held off for 25 gradient steps; restandardize: new input statistics for a feature whose spread grew
# more than 10x since the first fit; end-worst: the reward's zero, what ending an episode is worth, at the lowest
# trained step, not their mean); --surf is --example surf
EXAMPLES = HERE.parent / "examples"
ENSEMBLE_EXAMPLES = ("surf", "rime", "label-smoothing", "prior", "min-steps", "restandardize", "end-worst",
                     "end-learned")


def variant_name(pairing: str = PAIRING, features: tuple[str, ...] = (), action: bool = True,
                 final_policy: str = FINAL_POLICY, feedback_fraction: float = FEEDBACK_FRACTION,
                 demo_pairs: int = 0, stop_accuracy: float | None = STOP_ACCURACY, example: str = "",
                 warm_start: str = "", restart_keep: float = 0.0, choose_at: str = "end") -> str:
    """'' for the naming reference (PAIRING, FINAL_POLICY, FEEDBACK_FRACTION, the observation), else what differs, e.g. 'any' or 'norm_ee_to_cube+norm_cube_to_goal+noact'
    (``|x|``, the norm of field x, is written norm_x; final_policy restart or best adds its name, a feedback
    fraction of 0.5 'ff0.5', demos as free preferences 'demos' and the pairs per round unless 50, e.g. 'demos20', a
    reward fit that never stops at a train accuracy 'nostop', one that stops at another 'stop0.99', an example's
    reward fit its name (SURF 'surf', RIME 'rime', 'label-smoothing'), the
    policies behaviour-cloned from the task's expert demos first 'bc', only the fresh one 'bcfresh', a fresh policy
    started from a share of the feedback phase's weights 'keep0.5', best choosing at equal steps 'eq'):
    the suffix of the cell directory and the row's variant."""
    parts = [] if pairing == PAIRING else [pairing]
    from robreward.feedback.preferences.model import norm_field

    parts += [f if norm_field(f) == f else f"norm_{norm_field(f)}" for f in features]
    parts += [] if action else ["noact"]
    parts += [] if final_policy == FINAL_POLICY else [final_policy]
    parts += [] if feedback_fraction == FEEDBACK_FRACTION else [f"ff{feedback_fraction:g}"]
    parts += [] if not demo_pairs else ["demos" if demo_pairs == DEMO_PAIRS else f"demos{demo_pairs}"]
    parts += [] if stop_accuracy == STOP_ACCURACY else ["nostop" if stop_accuracy is None else f"stop{stop_accuracy:g}"]
    parts += [example] if example else []
    parts += [] if not warm_start else ["bc" if warm_start == "both" else f"bc{warm_start}"]
    parts += [f"keep{restart_keep:g}"] if restart_keep else []
    parts += [] if choose_at == "end" else ["eq"]
    return "+".join(parts)


def example_settings(name: str) -> dict:
    """The EnsembleConfig fields of --example NAME: examples/prefs-NAME.yaml's."""
    import yaml

    return dict(yaml.safe_load((EXAMPLES / f"prefs-{name}.yaml").read_text())["ensemble"])


def cell_dir(work: Path, task: str, teacher: str, budget: int, seed: int, variant: str = "",
             steps: int | None = None) -> Path:
    """A cell's run directory; a PPO budget other than the task's default (STEPS) is part of its name, so two
    budgets never share (or read back) one run."""
    safe = teacher.replace(":", "-").replace(",", "+")
    if steps is not None and steps != STEPS.get(task):
        variant = "+".join(filter(None, [variant, f"steps{steps}"]))
    return work / task / safe / f"q{budget}" / (f"s{seed}-{variant}" if variant else f"s{seed}")


MANIPULATION = ("reach", "push", "lift", "drawer-open")


def expert_demos(task: str) -> Path:
    """The shipped expert demos of a task (demos/<task>-expert.h5), for --demos and --init-from-demos."""
    path = HERE.parent / "demos" / f"{task}-expert.h5"
    if not path.is_file():
        raise SystemExit(f"--demos/--init-from-demos: no shipped expert demos for {task!r} ({path}); the arm tasks have them")
    return path


def metric_for(task: str) -> str:
    """success_rate on the manipulation tasks and humanoid-kneel-v2 (what their baselines are judged by: reach a
    pose and hold it), return_mean on running and hopping (the issue compares returns there; their success is a
    velocity threshold)."""
    return "success_rate" if task in MANIPULATION + ("humanoid-kneel-v2",) else "return_mean"


def run_cell(task: str, teacher: str, budget: int, seed: int, steps: int, work: Path, per_round: int,
             pairing: str = PAIRING, features: tuple[str, ...] = (), action: bool = True,
             final_policy: str = FINAL_POLICY, feedback_fraction: float = FEEDBACK_FRACTION,
             demo_pairs: int = 0, stop_accuracy: float | None = STOP_ACCURACY, example: str = "",
             warm_start: str = "", restart_keep: float = 0.0, choose_at: str = "end") -> dict:
    from robreward.eval.baseline import load_baseline
    from robreward.feedback.preferences.loop import STATE_FILE, PrefsConfig, load_prefs_config, train_preferences

    variant = variant_name(pairing, features, action, final_policy, feedback_fraction, demo_pairs, stop_accuracy,
                           example, warm_start, restart_keep, choose_at)
    out = cell_dir(work, task, teacher, budget, seed, variant, steps)
    config = PrefsConfig(task=task, teacher=teacher, queries=budget, per_round=min(per_round, budget), steps=steps,
                         num_envs=64, seed=seed, out=str(out), progress=False, pairing=pairing, features=features,
                         feature_action=action, final_policy=final_policy, feedback_fraction=feedback_fraction,
                         demos=(str(expert_demos(task)),) if demo_pairs else (), demo_pairs=demo_pairs or DEMO_PAIRS,
                         init_from_demos=str(expert_demos(task)) if warm_start else "",
                         init_policies=warm_start or "both", restart_keep=restart_keep, choose_at=choose_at,
                         ensemble=dataclasses.replace(EnsembleConfig(), stop_accuracy=stop_accuracy,
                                                      **(example_settings(example) if example else {})))
    state_path = out / STATE_FILE
    started = time.perf_counter()
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if not state.get("finished"):
            print(f"resuming {out}", flush=True)
            train_preferences(load_prefs_config(out), resume=True)
    else:
        train_preferences(config)
    seconds = time.perf_counter() - started
    result = json.loads((out / "ppo" / "eval.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())["rounds"][-1]
    key = metric_for(task)
    baseline = load_baseline(task)
    if baseline is None:
        raise SystemExit(f"no hand baseline for {task!r} (policies/{task}/eval.json): `make baselines` first")
    hand = baseline.hand[key]
    return {"task": task, "teacher": teacher, "queries": budget, "seed": seed, "variant": variant, "pairing": pairing,
            "features": list(features), "feature_action": action, "final_policy": final_policy,
            "feedback_fraction": feedback_fraction, "demo_pairs": demo_pairs, "stop_accuracy": stop_accuracy, "surf": example == "surf",
            "ensemble_example": example, "warm_start": warm_start, "restart_keep": restart_keep, "choose_at": choose_at, "steps": steps, "run_dir": str(out), "metric": key,
            "policy": result[key], "hand_baseline": hand, "fraction_of_hand": result[key] / hand,
            "success_rate": result["success_rate"], "return_mean": result["return_mean"],
            "heldout_accuracy": metrics.get("heldout_accuracy"), "epic_distance": metrics.get("epic_distance"),
            "final_choice": json.loads(state_path.read_text()).get("final_choice"),  # final_policy best
            "seconds_this_invocation": seconds, "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": this_machine()}


RETRAIN_DIR = "retrain"


def is_retrained(row: dict) -> bool:
    """Whether the cell's fresh policy (retrain_cell) has finished."""
    return (Path(row["run_dir"]) / RETRAIN_DIR / "eval.json").is_file()


def retrain_cell(row: dict) -> dict:
    """A fresh PPO policy (the loop's PPO config and seed, same steps and worlds) trained from scratch on the
    cell's final learned reward (``pref:CELL``), evaluated like the cell's own policy: is the reward good
    enough, whatever became of the policy that was trained while it was being learned? Resumable (its own
    run directory, CELL/retrain); the extra PPO steps are reported, never hidden."""
    from robreward.codegen.training import train_one
    from robreward.feedback.preferences.loop import load_prefs_config
    from robreward.rl.config import TrainConfig

    cell = Path(row["run_dir"])
    out = cell / RETRAIN_DIR
    if not is_retrained(row):
        loop = load_prefs_config(cell)
        train_one(TrainConfig(task=row["task"], reward=f"pref:{cell}", num_envs=loop.num_envs, steps=loop.steps,
                              seed=loop.seed, out=str(out), eval_episodes=loop.eval_episodes, progress=False,
                              ppo=loop.ppo))  # resumed from its checkpoint if it has one
    result = json.loads((out / "eval.json").read_text())
    key = row["metric"]
    return {"run_dir": str(out), "steps": row["steps"], "policy": result[key],
            "fraction_of_hand": result[key] / row["hand_baseline"], "success_rate": result["success_rate"],
            "return_mean": result["return_mean"]}


def run_imitation_cell(budget: int, seed: int, steps: int, work: Path, python: Path) -> dict:
    """imitation's PreferenceComparisons on HalfCheetah-v4 (benchmarks/prefs_imitation.py), or its
    finished result."""
    out = work / "imitation" / f"q{budget}" / f"s{seed}"
    result, failed = out / "result.json", out / "failed.json"
    if not result.is_file() and not failed.is_file():
        if not python.is_file():
            raise SystemExit(f"--imitation needs imitation's own virtual environment ({python} is missing): "
                             "run `make imitation-venv` first")
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "stderr.txt", "w") as err:
            done = subprocess.run([str(python), str(HERE / "prefs_imitation.py"), "--budget", str(budget), "--seed",
                                   str(seed), "--steps", str(steps), "--out", str(out)], stderr=err)
        if done.returncode != 0:  # imitation itself failed: a result of the comparison, kept (rm failed.json to retry)
            lines = [x for x in (out / "stderr.txt").read_text().splitlines() if x.strip()]
            atomic_write_json(failed, {"library": "imitation", "queries": budget, "seed": seed, "steps": steps,
                                       "failed": True, "error": lines[-1] if lines else f"exit {done.returncode}",
                                       "return_mean": None}, indent=2)
    return json.loads((result if result.is_file() else failed).read_text())


def compare_imitation(rows: list[dict], imitation_rows: list[dict]) -> list[dict]:
    """Per budget: robreward's cheetah-run oracle return over imitation's, over the seeds both have."""
    out = []
    for budget in sorted({r["queries"] for r in imitation_rows}):
        crashed = sorted(r["seed"] for r in imitation_rows if r["queries"] == budget and r.get("failed"))
        theirs = {r["seed"]: r["return_mean"] for r in imitation_rows if r["queries"] == budget and not r.get("failed")}
        ours = {r["seed"]: r["return_mean"] for r in rows if r["seed"] in theirs and
                (r["task"], r["teacher"], r["queries"], r["variant"]) == ("cheetah-run", "oracle", budget, "")}
        if not ours:
            if crashed:
                out.append({"queries": budget, "seeds": [], "imitation_failed_seeds": crashed, "ratio": None,
                            "target": IMITATION_TARGET, "meets_target": None})
            continue
        seeds = sorted(ours)
        mine, other = float(np.mean([ours[s] for s in seeds])), float(np.mean([theirs[s] for s in seeds]))
        ratio = mine / other if other > 0 else None
        out.append({"queries": budget, "seeds": seeds, "imitation_failed_seeds": crashed,
                    "robreward_return_mean": mine, "imitation_return_mean": other,
                    "ratio": ratio, "target": IMITATION_TARGET,  # mine >= 1.5 x theirs, also when theirs <= 0
                    "meets_target": bool(mine >= IMITATION_TARGET * other)})
    return out


def summarize(rows: list[dict], hand_rows: list[dict] = ()) -> list[dict]:
    here = hand_here(hand_rows)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["teacher"], row["queries"], row["variant"], row["steps"]), []).append(row)
    out = []
    for (task, teacher, budget, variant, steps), members in sorted(groups.items()):
        fractions = [m["fraction_of_hand"] for m in members]
        retrained = [m["retrained"]["fraction_of_hand"] for m in members if m.get("retrained")]
        target = TARGETS.get((task, teacher, budget))
        machines = sorted({machine_of(m) for m in members})
        hand = here.get((task, steps, members[0].get("hand_baseline"), machines[0])) if len(machines) == 1 else None
        same_machine = {} if hand is None else {
            "hand_here": hand, "fraction_of_hand_here": float(np.mean([m["policy"] for m in members])) / hand["mean"]}
        out.append({"task": task, "teacher": teacher, "queries": budget, "variant": variant, "steps": steps,
                    "pairing": members[0]["pairing"], "features": members[0]["features"],
                    "seeds": sorted(m["seed"] for m in members), "machines": machines,
                    "metric": members[0]["metric"], "fraction_mean": float(np.mean(fractions)),
                    "fraction_std": float(np.std(fractions)), "target": target,
                    "meets_target": None if target is None else bool(np.mean(fractions) >= target),
                    "retrained_seeds": sorted(m["seed"] for m in members if m.get("retrained")),
                    "retrained_fraction_mean": float(np.mean(retrained)) if retrained else None,
                    "retrained_fraction_std": float(np.std(retrained)) if retrained else None, **same_machine})
    return out


def default_variant(task: str) -> str:
    """The variant of a cell run with PrefsConfig's defaults (no flags)."""
    from robreward.envs.registry import get_task
    from robreward.feedback.preferences.model import expand_features

    defaults = PrefsConfig(task=task)
    return variant_name(defaults.pairing, expand_features(get_task(task), defaults.features), defaults.feature_action,
                        defaults.final_policy, defaults.feedback_fraction, choose_at=defaults.choose_at)


def plot_path(out: Path, task: str, variant: str) -> Path:
    """Where the label-efficiency plot of a task's cells goes: beside --out, named by the task, and by the variant
    unless it is the defaults'."""
    suffix = "" if variant == default_variant(task) else f"_{variant or 'reference'}"
    return out.with_name(f"{out.stem}_label_efficiency_{task}{suffix}.png")


def plot_cells(rows: list[dict], task: str, variant: str, steps: int, path: Path) -> dict | None:
    """The label-efficiency plot (issue 23) of a task's cells of one variant and PPO budget, every teacher and query
    budget the file holds for them: the policy's success or return against queries (mean and std over seeds), the
    shipped hand and sparse baselines as lines; its curves, or None when there is no such cell."""
    from robreward.eval.baseline import load_baseline
    from robreward.feedback.preferences.evaluation import plot_label_efficiency

    mine = [r for r in rows if (r["task"], r["variant"], r["steps"]) == (task, variant, steps)]
    if not mine:
        return None
    metric, baseline = mine[0]["metric"], load_baseline(task)
    hand = baseline.hand.get(metric) if baseline else None
    sparse = baseline.sparse.get(metric) if baseline and baseline.sparse else None
    results = [{"task": task, "teacher": r["teacher"], "queries_used": r["queries"], "policy": {metric: r["policy"]},
                "baseline": {metric: hand}, "sparse_baseline": {metric: sparse}} for r in mine]
    return plot_label_efficiency(results, path, metric=metric,
                                 title=f"{task}: label efficiency ({steps:,} PPO steps"
                                       f"{'' if variant == default_variant(task) else ', ' + (variant or 'reference')})")


def row_key(row: dict) -> tuple:
    """One row per cell, the PPO budget included (the same cell at another budget is another row)."""
    return row["task"], row["teacher"], row["queries"], row["seed"], row["variant"], row["steps"]


def load_results(out: Path) -> tuple[dict, dict, dict]:
    """The cells ``out`` holds: ({row_key: cell}, imitation's {(queries, seed): cell}, the hand runs'
    {(task, seed, steps, machine): cell}); empty without the file."""
    previous = json.loads(out.read_text()) if out.is_file() else {}
    return ({row_key(r): r for r in previous.get("cells", [])},
            {(r["queries"], r["seed"]): r for r in previous.get("imitation_cells", [])},
            {hand_key(r): r for r in previous.get("hand_cells", [])})


def save_results(out: Path, rows: dict, theirs: dict, hand: dict | None = None,
                 ran: tuple[set, set, set] | None = None) -> None:
    """Write the grid's JSON with ``rows``, ``theirs`` and ``hand`` (as load_results gives them), keeping the cells
    the file holds that they lack (earlier runs, and a benchmark run beside this one, which saves its own cells into
    the same file): the dicts take those in, in place. ``ran``: the keys of the cells, imitation cells and hand runs
    this process trained or read back from their run directories; the file's version of every other key wins, so
    a cell that a run beside this one trained again since this one read the file is not put back as it was. None:
    every key the dicts hold is this process's."""
    hand = {} if hand is None else hand
    for index, (mine, saved) in enumerate(zip((rows, theirs, hand), load_results(out))):
        for key, row in saved.items():
            if ran is None or key in ran[index]:
                mine.setdefault(key, row)
            else:
                mine[key] = row
    atomic_write_json(out, {"benchmark": "prefs", "machine": machine_info(), "date": time.strftime("%Y-%m-%d"),
                            "summary": summarize(list(rows.values()), list(hand.values())),
                            "imitation": compare_imitation(list(rows.values()), list(theirs.values())),
                            "cells": list(rows.values()), "imitation_cells": list(theirs.values()),
                            "hand_cells": list(hand.values()), "hand_spread": hand_spread(list(hand.values()))},
                      indent=2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--teachers", default=",".join(TEACHERS), help="teacher specs, separated by ';' or ','")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--steps", type=int, default=None, help="PPO steps per cell (default: the baseline's)")
    parser.add_argument("--per-round", type=int, default=50, help="queries per feedback round (default 50)")
    defaults = PrefsConfig(task="reach")
    parser.add_argument("--pairing", default=defaults.pairing,
                        help=f"query pairing: any | episode | mixed (default {defaults.pairing})")
    parser.add_argument("--features", default=",".join(defaults.features),
                        help="TaskState fields the reward reads, comma-separated, |x| for the norm of x, obs-norms (the "
                             "observation's fields, vectors as their norms), offsets, observation, or auto (the default, "
                             "PrefsConfig's: obs-norms where the observation is made of fields, else the observation)")
    parser.add_argument("--no-action", action="store_true", help="the reward reads no action")
    parser.add_argument("--final-policy", default=defaults.final_policy,
                        help=f"after the last feedback round: restart a fresh policy on the final reward for the steps "
                             f"left, or continue the loop's policy (same PPO budget; default {defaults.final_policy})")
    parser.add_argument("--feedback-fraction", type=float, default=defaults.feedback_fraction,
                        help="fraction of the PPO steps the feedback rounds are spread over "
                             f"(default {defaults.feedback_fraction})")
    parser.add_argument("--demos", type=int, default=0, metavar="PAIRS",
                        help=f"demonstrations as free preferences: PAIRS free pairs per round from demos/<task>-expert.h5 "
                             f"(0: none, the default; {DEMO_PAIRS}: PrefsConfig's)")
    parser.add_argument("--stop-accuracy", default=str(STOP_ACCURACY), metavar="ACC|none",
                        help="the reward fit stops at this train accuracy (EnsembleConfig.stop_accuracy; default "
                             f"{STOP_ACCURACY}, B-Pref's), or none: always its full epochs")
    parser.add_argument("--example", default="", choices=ENSEMBLE_EXAMPLES,
                        help="the reward fit of examples/prefs-NAME.yaml (cell suffix NAME): surf (SURF: cropped "
                             "pairs and sure pseudo-labels), rime (RIME: unlikely labels set aside, impossible ones "
                             "flipped), label-smoothing (targets 0.95 / 0.05), prior (Hindsight PRIOR: rewards spread "
                             "over the steps a world model's attention weighs), min-steps (the 97%% stop held off "
                             "for 25 gradient steps a fit), restandardize (new input statistics for a feature "
                             "whose spread grew more than 10x since the first fit), end-worst (the reward's zero, what "
                             "ending an episode is worth, at the lowest trained step, not their mean)")
    parser.add_argument("--surf", action="store_const", dest="example", const="surf", help="--example surf")
    parser.add_argument("--init-from-demos", nargs="?", const="both", default="", choices=("both", "fresh"),
                        help="warm start: the PPO policies of a cell (both, the default; or only the fresh one) "
                             "behaviour-clone demos/<task>-expert.h5 first (PrefsConfig.init_from_demos and "
                             "init_policies; cell suffix 'bc' or 'bcfresh')")
    parser.add_argument("--restart-keep", type=float, default=defaults.restart_keep, metavar="SHARE",
                        help="the fresh policy starts from this share of the feedback phase's weights (shrink and "
                             "perturb; PrefsConfig.restart_keep; cell suffix 'keepSHARE'; default 0: from scratch)")
    parser.add_argument("--choose-at", choices=CHOOSE_AT, default="auto",
                        help="final policy best: choose once the fresh policy has trained as many steps as the "
                             "feedback phase's, the one kept training on (equal; cell suffix 'eq'), or at the end "
                             "(end); auto (the default, PrefsConfig's): equal with best, end otherwise")
    parser.add_argument("--work", default=str(HERE / "results" / "prefs_runs"), help="cell run directories")
    parser.add_argument("--out", default=str(HERE / "results" / "prefs.json"))
    parser.add_argument("--retrain", action="store_true",
                        help="also train a fresh policy on each cell's final learned reward (CELL/retrain, as many "
                             "PPO steps again) and report it beside the cell's own policy")
    parser.add_argument("--hand-seeds", default="", metavar="S,...",
                        help="also train the hand reward here with the shipped baseline's config on these seeds, and "
                             "report each row's fraction of their mean (fraction_of_hand_here)")
    parser.add_argument("--hand-steps", type=int, default=None, metavar="N",
                        help="with --hand-seeds: train the hand reward for N PPO steps instead of the shipped "
                             "config's (e.g. a preference run's fresh policy's budget: what the hand reward itself "
                             "reaches with it; WORK/TASK/hand/sSEED-N)")
    parser.add_argument("--list", action="store_true", help="list the cells and their status, run nothing")
    parser.add_argument("--plot", action="store_true",
                        help="draw each task's label-efficiency plot from --out, run nothing (the cells of this "
                             "variant and PPO budget, every teacher and query budget there; beside --out, "
                             "e.g. prefs_label_efficiency_push.png; drawn after every run of cells too)")
    parser.add_argument("--imitation", action="store_true",
                        help="also run imitation's PreferenceComparisons for each cheetah-run oracle cell")
    parser.add_argument("--imitation-python", default=str(IMITATION_PYTHON),
                        help="python of imitation's virtual environment "
                             "(default .venv-imitation, `make imitation-venv`)")
    args = parser.parse_args(argv)

    from robreward.envs.registry import get_task
    from robreward.feedback.preferences.model import expand_features
    from robreward.feedback.preferences.teachers import make_teacher

    tasks = [t for t in args.tasks.split(",") if t]
    sep = ";" if ";" in args.teachers else ","
    teachers = [t for t in args.teachers.split(sep) if t]
    for teacher in teachers:
        make_teacher(teacher)  # a bad spec fails before hours of training
    try:
        budgets = [int(b) for b in args.budgets.split(",") if b]
        seeds = [int(s) for s in args.seeds.split(",") if s]
        hand_seeds = [int(s) for s in args.hand_seeds.split(",") if s]
    except ValueError as err:
        parser.error(f"--budgets, --seeds and --hand-seeds are comma-separated integers ({err})")
    if args.final_policy not in FINAL_POLICIES:
        parser.error(f"unknown --final-policy {args.final_policy!r}: choose one of {', '.join(FINAL_POLICIES)}")
    unknown = [t for t in tasks if t not in STEPS and args.steps is None]
    if unknown:
        parser.error(f"no default step budget for {unknown}: pass --steps")
    if args.hand_steps is not None and (args.hand_steps <= 0 or not hand_seeds):
        parser.error(f"--hand-steps {args.hand_steps}: a positive number of PPO steps, with --hand-seeds")
    work = Path(args.work)
    given = tuple(f.strip() for f in args.features.split(",") if f.strip())
    try:  # a preset (obs-norms) names its fields, so a cell's directory says what its reward read
        features = {task: expand_features(get_task(task), given) for task in tasks}
    except ValueError as err:
        parser.error(str(err))
    try:
        stop_accuracy = None if args.stop_accuracy.lower() == "none" else float(args.stop_accuracy)
        dataclasses.replace(EnsembleConfig(), stop_accuracy=stop_accuracy)
    except ValueError as err:
        parser.error(f"--stop-accuracy: {err} (a number in (0, 1], or none)")
    try:  # the final policy's settings, checked together by the config (the flag named is the field's)
        args.choose_at = PrefsConfig(task="reach", final_policy=args.final_policy, restart_keep=args.restart_keep,
                                     choose_at=args.choose_at).choose_at  # auto resolved
    except ConfigError as err:
        parser.error(f"--{err.field.replace('_', '-')}: {err}")
    variant = {task: variant_name(args.pairing, features[task], not args.no_action, args.final_policy,
                                  args.feedback_fraction, args.demos, stop_accuracy, args.example, args.init_from_demos,
                                  args.restart_keep, args.choose_at)
               for task in tasks}
    cells = [(t, te, b, s) for t in tasks for te in teachers for b in budgets for s in seeds]
    if args.list:
        for cell in cells:
            state = cell_dir(work, *cell, variant[cell[0]], args.steps or STEPS.get(cell[0])) / "state.json"
            status = json.loads(state.read_text()) if state.is_file() else None
            label = "finished" if status and status.get("finished") else (
                f"round {status['rounds_done']}" if status else "not started")
            print(f"{cell[0]:<12} {cell[1]:<14} q{cell[2]:<5} s{cell[3]}  {label}")
        return 0

    out = Path(args.out)
    rows, theirs, hand = load_results(out)

    def plot() -> None:
        for task in tasks:
            path = plot_path(out, task, variant[task])
            curves = plot_cells(list(rows.values()), task, variant[task], args.steps or STEPS[task], path)
            if curves is None:
                print(f"no finished {task} cells of this variant in {out}: no plot", flush=True)
            else:
                print(f"wrote {path}: {curves['metric']} against queries, {', '.join(curves['teachers'])}", flush=True)

    if args.plot:
        plot()
        return 0

    ran: tuple[set, set, set] = (set(), set(), set())  # what this process trains or reads back (save_results)

    def write() -> None:
        save_results(out, rows, theirs, hand, ran)

    budget = "" if args.hand_steps is None else f", {args.hand_steps:,} PPO steps"
    for task in tasks:
        for seed in hand_seeds:
            print(f"hand {task} s{seed} (the shipped baseline's config{budget}, on this machine)", flush=True)
            row = run_hand_cell(task, seed, work, metric_for(task), args.hand_steps)
            hand[hand_key(row)] = row
            ran[2].add(hand_key(row))
            print(json.dumps(row), flush=True)
            write()

    for task, teacher, budget, seed in cells:
        steps = args.steps or STEPS[task]
        print(f"cell {task} {teacher} q{budget} s{seed} ({steps:,} PPO steps)", flush=True)
        row = run_cell(task, teacher, budget, seed, steps, work, args.per_round, args.pairing, features[task],
                       not args.no_action, args.final_policy, args.feedback_fraction, args.demos, stop_accuracy,
                       args.example, args.init_from_demos, args.restart_keep, args.choose_at)
        rows[row_key(row)] = row
        ran[0].add(row_key(row))
        print(json.dumps(row), flush=True)
        write()
        if args.retrain or is_retrained(row):  # a finished retraining is read back, with or without --retrain
            print(f"retrain {task} {teacher} q{budget} s{seed}: a fresh policy on the learned reward", flush=True)
            row["retrained"] = retrain_cell(row)
            print(json.dumps(row["retrained"]), flush=True)
            write()
        if args.imitation and (task, teacher) == ("cheetah-run", "oracle"):
            print(f"cell imitation HalfCheetah-v4 q{budget} s{seed} ({steps:,} PPO steps)", flush=True)
            theirs[(budget, seed)] = run_imitation_cell(budget, seed, steps, work, Path(args.imitation_python))
            ran[1].add((budget, seed))
            write()
    plot()
    print(json.dumps({"summary": summarize(list(rows.values()), list(hand.values())),
                      "imitation": compare_imitation(list(rows.values()), list(theirs.values()))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
