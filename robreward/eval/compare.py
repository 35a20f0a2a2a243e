"""Compare runs: a markdown table (steps, return, success, fitness, HNS with its 95% interval,
significance vs hand) and a PNG of learning curves.

    compare(["runs/push-mine", "runs/push-llm"], out="runs/compare")

A run is a run directory (config.yaml, eval.json, progress.csv; docs/architecture.md "Run
directory") or a seed group: a directory holding ``seed_0/``, ``seed_1/``, ... run dirs.
A single run dir whose eval.json has a "per_seed" list counts as several seeds.

H and S (hand and sparse fitness) are the SHIPPED baselines' (baseline.py): the newest version
present for the task (``policies/v1/<task>/`` over ``policies/<task>/``, which is v0) or the
``baseline_version`` asked for, and the table says which. A user's own hand and sparse runs are
H and S only when asked (``baselines=(HAND_RUN, SPARSE_RUN)``, the CLI's ``--baselines``). A
run passed that IS the reference (the shipped folder, or one of the --baselines runs) is shown
but never scored against itself. The p-value is the one-sided Welch test of "fitness better
than the hand reward's" over seeds (stats.py), the hand side's seeds being the reference's.

EPIC and STARC to the hand reward (add_distances) are measured per task on one set of transitions (half
the worlds acting with the task's shipped hand policy, half at random), each row's reward rebuilt from
its run's config: hand, sparse, reward programs, pref:, progress: and sums as they are; image rewards
(clip:, image progress and preference models) on frames rendered from the transitions' MuJoCo states
(robreward.rewards.state_tables; the notes give the frames' cost); RoboCLIP's episode-level reward is
n/a, with the reason in the notes (docs/distances.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from robreward import rundir
from robreward.eval.baseline import Baseline, policies_root, shipped_baselines, shipped_folders
from robreward.eval.hns import HNS, hns, hns_interval
from robreward.eval.plots import plot_learning_curves, read_progress
from robreward.eval.stats import better_than_hand, format_p
from robreward.fileio import atomic_write_json, atomic_write_text

SEED_DIR = rundir.SEED_DIR


@dataclasses.dataclass
class Run:
    """One row of the comparison: a run dir or a seed group."""

    label: str
    path: Path
    task: Optional[str]
    reward: str
    seeds: list
    evals: list  # per seed: eval dict (numeric fields) or None
    progress: list  # per seed: {column: array}
    eval_json: Optional[dict] = None  # the run's own eval.json (single run)
    steps: Optional[int] = None  # env steps per seed (config.yaml "steps")

    def per_seed(self, key: str) -> list[float]:
        return [e[key] for e in self.evals if e and e.get(key) is not None]

    def mean(self, key: str) -> Optional[float]:
        vals = self.per_seed(key)
        return float(np.mean(vals)) if vals else None


def _read_json(path: Path) -> Optional[dict]:
    return rundir.read_eval(path) if path.is_file() else None


def _seed_dirs(path: Path) -> list[tuple[int, Path]]:
    return rundir.seed_dirs(path)


def _load_single(path: Path) -> tuple[dict, Optional[dict], dict]:
    config = rundir.read_config(path) if (path / rundir.CONFIG_FILE).is_file() else {}
    ev = _read_json(path / rundir.EVAL_FILE)
    progress = read_progress(path / rundir.PROGRESS_FILE)
    if not config and ev is None and not progress:
        raise ValueError(f"{str(path)!r} is not a run directory: no config.yaml, eval.json or progress.csv "
                         "(nor seed_0/, seed_1/, ... sub-runs)")
    return config, ev, progress


def load_run(path) -> Run:
    """Read a run dir or a seed group dir, or a prefs / generate run's final policy run
    (rundir.find_policy_run); clear errors for a missing or empty one."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a directory: compare takes run directories")
    label = path.name or str(path)
    if not (path / rundir.CONFIG_FILE).is_file() and not rundir.seed_dirs(path):
        try:
            found = rundir.find_policy_run(path)
        except FileNotFoundError:
            found = None
        if found is not None and found.kind in ("prefs", "generate"):
            if found.policy_path.is_file():
                raise ValueError(f"{str(path)!r} is a generate run without its final seeds (final/seed_N/): compare "
                                 "reads training runs; let the run finish its final stage, or resume it")
            run = load_run(found.policy_path)
            run.label, run.path = label, path
            return run
    subs = _seed_dirs(path)
    if subs:
        seeds, evals, progress, task, reward, steps = [], [], [], None, None, None
        for seed, sub in subs:
            config, ev, prog = _load_single(sub)
            steps = steps or config.get("steps")
            seeds.append(int(config.get("seed", seed)))
            evals.append(ev)
            progress.append(prog)
            task = task or config.get("task") or (ev or {}).get("task")
            reward = reward or config.get("reward") or (ev or {}).get("reward")
        return Run(label, path, task, str(reward or "?"), seeds, evals, progress, steps=_int(steps))
    config, ev, prog = _load_single(path)
    task = config.get("task") or (ev or {}).get("task")
    reward = str(config.get("reward") or (ev or {}).get("reward") or "?")
    if ev and ev.get("per_seed"):
        per = ev["per_seed"]
        return Run(label, path, task, reward, [int(r.get("seed", i)) for i, r in enumerate(per)], list(per),
                   [prog] if prog else [], ev, _int(config.get("steps") or ev.get("steps")))
    seed = config.get("seed", (ev or {}).get("seeds", [None])[0] if ev else None)
    return Run(label, path, task, reward, [seed], [ev], [prog] if prog else [], ev, _int(config.get("steps")))


def _int(x) -> Optional[int]:
    try:
        return int(x) if x is not None else None
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass
class Reference:
    """H and S for one task, where they came from, and which passed paths are the reference itself."""

    task: Optional[str]
    h: Optional[float]
    s: Optional[float]
    hand_seeds: list
    sparse_seeds: list
    source: str  # "shipped baselines v0 of push (policies/push, 3 seeds)", "your runs ...", "none: ..."
    kind: str = "none"  # "shipped", "runs" or "none"
    version: Optional[str] = None  # the shipped baselines' version
    steps: Optional[int] = None  # the baselines' env steps per seed, when known
    self_paths: dict = dataclasses.field(default_factory=dict)  # resolved path -> "H" or "S"

    @property
    def h_source(self) -> str:  # kept for readers of compare.json before the versions
        return self.source

    @property
    def s_source(self) -> str:
        return self.source


def _resolved(path) -> str:
    return str(Path(path).resolve())


def _reward_kind(reward: str) -> str:
    return str(reward).strip().lower()


def shipped_reference(task: Optional[str], base: Optional[Baseline], version: Optional[str]) -> Reference:
    if base is None:
        asked = f" {version}" if version else ""
        return Reference(task, None, None, [], [], f"none: no shipped baselines{asked} of {task} (policies/); "
                         "pass your own with --baselines HAND_RUN,SPARSE_RUN")
    return Reference(task, base.hand_fitness, base.sparse_fitness, base.hand_fitness_per_seed,
                     base.sparse_fitness_per_seed, base.describe(), "shipped", base.version,
                     _int(base.hand.get("steps")), {_resolved(base.folder): "H"})


def runs_reference(hand: Run, sparse: Run) -> Reference:
    if hand.task != sparse.task:
        raise ValueError(f"--baselines: the hand run {hand.label!r} is on task {hand.task!r} and the sparse run "
                         f"{sparse.label!r} on {sparse.task!r}: pass two runs of one task")
    for run, role in ((hand, "hand (H)"), (sparse, "sparse (S)")):
        if not run.per_seed("fitness_mean"):
            raise ValueError(f"--baselines: {run.label!r}, the {role} run, has no evaluated fitness "
                             f"(no eval.json with fitness_mean): run `robreward eval {run.path}` first")
    odd = [f"{r.label} was trained on reward {r.reward!r}" for r, kind in ((hand, "hand"), (sparse, "sparse"))
           if _reward_kind(r.reward) != kind]
    source = (f"your runs {hand.label} (H, {len(hand.seeds)} seed{'s' if len(hand.seeds) != 1 else ''}) and "
              f"{sparse.label} (S, {len(sparse.seeds)} seed{'s' if len(sparse.seeds) != 1 else ''})"
              + (f" (note: {'; '.join(odd)})" if odd else ""))
    return Reference(hand.task, hand.mean("fitness_mean"), sparse.mean("fitness_mean"), hand.per_seed("fitness_mean"),
                     sparse.per_seed("fitness_mean"), source, "runs", None, hand.steps,
                     {_resolved(hand.path): "H", _resolved(sparse.path): "S"})


def _fmt(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _steps(x: Optional[int]) -> str:
    if x is None:
        return "-"
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return str(x)


def _return_cell(run: Run) -> str:
    vals = run.per_seed("return_mean")
    if len(vals) >= 2:
        return f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"
    if vals:
        std = (run.evals[0] or {}).get("return_std") if len(run.evals) == 1 else None
        return f"{vals[0]:.1f} ± {std:.1f}" if std is not None else f"{vals[0]:.1f}"
    return "-"


def baseline_runs(base: Baseline) -> list[Run]:
    """The shipped baseline's hand and sparse results as table rows (no learning curves)."""
    rows = []
    for kind, data in (("hand", base.hand), ("sparse", base.sparse)):
        if not data or data.get("fitness_mean") is None:
            continue
        per = data.get("per_seed") or [data]
        seeds = [int(r.get("seed", i)) for i, r in enumerate(per)]
        rows.append(Run(f"shipped {kind} baseline {base.version}", base.folder, base.task, kind, seeds, list(per), [], data,
                        _int(data.get("steps") or base.hand.get("steps"))))
    return rows


def _hns_cell(score: HNS, ci) -> str:
    if not score.defined:
        return score.format()
    return score.format() + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def build_rows(runs: Sequence[Run], baseline_root=None, baseline_version: Optional[str] = None,
               baselines: Optional[tuple] = None, with_runs: bool = False):
    """One dict per row (numbers + formatted cells) and the reference per task.

    Without `baselines` each task's reference is its shipped baselines (newest version, or
    `baseline_version`), whose hand and sparse rows come first; with `baselines` = (hand Run,
    sparse Run) those two are the reference of their task (every run must be on it)."""
    refs, reference_rows = {}, []
    if baselines is not None:
        hand, sparse = baselines
        ref = runs_reference(hand, sparse)
        others = sorted({str(r.task) for r in runs if r.task != ref.task})
        if others:
            raise ValueError(f"--baselines are runs of task {ref.task!r}; the runs passed include task(s) "
                             f"{', '.join(others)}: compare one task at a time with your own baselines")
        refs[ref.task] = ref
        reference_rows = [r for r in (hand, sparse) if _resolved(r.path) not in {_resolved(x.path) for x in runs}]
    else:
        for task in dict.fromkeys(r.task for r in runs):
            base = shipped_baselines(task, baseline_version, baseline_root) if task else None
            refs[task] = shipped_reference(task, base, baseline_version)
            if base is not None:
                reference_rows += baseline_runs(base)
    shipped = set(shipped_folders(baseline_root))
    rows, row_runs = [], [*reference_rows, *runs]
    for run in row_runs:
        ref = refs[run.task]
        fitness = run.mean("fitness_mean")
        path = _resolved(run.path)
        if any(run is r for r in reference_rows):
            role = "H" if _reward_kind(run.reward) == "hand" else "S"
        else:
            role = ref.self_paths.get(path)
        score: HNS = hns(fitness, ref.h, ref.s)
        ci = None
        if role is None and score.defined and len(run.per_seed("fitness_mean")) >= 2:
            ci = hns_interval(run.per_seed("fitness_mean"), ref.hand_seeds, ref.sparse_seeds)
        test = None if role or not ref.hand_seeds else better_than_hand(run.per_seed("fitness_mean"),
                                                                                ref.hand_seeds)
        hns_cell = f"{score.format()} (= {role})" if role and score.defined else _hns_cell(score, ci)
        rows.append({
            "run": run.label, "path": str(run.path), "task": run.task, "reward": run.reward,
            "role": role, "shipped": Path(path) in shipped and role is None,
            "seeds": len(run.seeds), "steps": run.steps, "return_mean": run.mean("return_mean"),
            "success_rate": run.mean("success_rate"), "fitness_mean": fitness,
            "hns": score.to_dict(), "hns_ci": list(ci) if ci else None, "vs_hand": test,
            "cells": [run.label, str(run.task or "-"), run.reward, str(len(run.seeds)), _steps(run.steps),
                      _return_cell(run), _fmt(run.mean("success_rate")), _fmt(fitness), hns_cell,
                      "-" if role else ("no hand seeds" if not ref.hand_seeds else format_p(test))],
        })
    return (rows, refs, row_runs) if with_runs else (rows, refs)


DISTANCE_WORLDS = 32
DISTANCE_STEPS = 64  # per world: 2,048 transitions per task


def _coverage(spec, policy_file: Optional[Path], seed: int = 0):
    """Transitions to measure reward distances on: half the worlds act with the shipped hand policy
    (where one is shipped), half with uniform random actions (all random without one); -> (Coverage, how)."""
    import torch

    import robreward
    from robreward.rewards.distance import collect_transitions

    env = robreward.make(spec, num_envs=DISTANCE_WORLDS, seed=seed)
    policy, how = None, f"{DISTANCE_WORLDS * DISTANCE_STEPS:,} transitions of uniform random actions"
    if policy_file is not None and policy_file.is_file():
        from robreward.rl import load_policy

        shipped = load_policy(str(policy_file), task=spec)
        gen = torch.Generator().manual_seed(seed)
        low, high = env.action_low.cpu(), env.action_high.cpu()
        half = DISTANCE_WORLDS // 2

        def policy(obs):
            act = torch.as_tensor(np.asarray(shipped(obs)), dtype=torch.float32).clone()
            act[half:] = low + (high - low) * torch.rand(DISTANCE_WORLDS - half, env.act_dim, generator=gen)
            return act

        try:
            shown = policy_file.resolve().relative_to(policies_root().resolve().parent)
        except ValueError:
            shown = policy_file
        how = (f"{DISTANCE_WORLDS * DISTANCE_STEPS:,} transitions, half of the worlds acting with the shipped hand "
               f"policy ({shown}), half with uniform random actions")
    try:  # the MuJoCo states too: image rewards are scored on frames rendered from them
        return collect_transitions(env, DISTANCE_STEPS, policy=policy, seed=seed, record_sim_states=True), how
    finally:
        env.close()


def _distances(reward: str, spec, coverage) -> dict:
    """{"epic", "starc", "notes", "cost"} of one reward spec to the hand reward on the coverage. Image rewards
    (clip:, an image progress or preference model) are scored on frames rendered from the coverage's
    MuJoCo states (robreward.rewards.state_tables); RoboCLIP's episode-level reward gets n/a and why."""
    from robreward.rewards.base import resolve_reward
    from robreward.rewards.distance import reward_distances
    from robreward.rewards.state_tables import EpisodeLevelReward, bind_to_coverage, frames_cost

    if _reward_kind(reward) == "hand":
        return {"epic": 0.0, "starc": 0.0, "notes": {}}
    try:
        built = resolve_reward(reward, spec)
    except Exception as err:  # noqa: BLE001  (a moved file, a learned reward not here, a model not here, ...)
        return {"epic": None, "starc": None, "notes": {
            "epic": f"reward {reward!r} cannot be rebuilt here ({type(err).__name__}: {_first_line(err)})"}}
    try:
        bound = bind_to_coverage(built, coverage, spec)
        result = reward_distances(spec, bound, "hand", coverage, bootstrap=0)
    except EpisodeLevelReward as err:
        return {"epic": None, "starc": None, "notes": {"epic": f"n/a: {_first_line(err).split(': ', 1)[-1]}"}}
    except (ValueError, RuntimeError) as err:  # no renderer, frames of another shape, a non-finite reward, ...
        return {"epic": None, "starc": None, "notes": {
            "epic": f"reward {reward!r} could not be measured here ({type(err).__name__}: {_first_line(err)})"}}
    result["cost"] = frames_cost(bound)
    return result


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def _hand_policy_folder(task, ref: Optional[Reference], baseline_root=None) -> Optional[Path]:
    """The shipped hand policy's folder the distance transitions come from: the reference's when it is the shipped
    baselines, else the task's newest shipped one (your own H and S runs do not change where rewards are compared)."""
    if ref is not None and ref.kind == "shipped":
        return next((Path(p) for p, role in ref.self_paths.items() if role == "H"), None)
    try:
        base = shipped_baselines(str(task), None, baseline_root)
    except Exception:  # noqa: BLE001  (no shipped baselines: random actions only)
        return None
    return Path(base.folder) if base is not None else None


def add_distances(rows: list[dict], runs_by_row: list[Run], refs: dict, baseline_root=None) -> dict:
    """EPIC and STARC from each row's reward to the hand reward (robreward.rewards.distance), measured
    per task on one set of transitions; a reward that cannot be rebuilt or measured here gets None and a
    note (an episode-level reward: "n/a: " and why). Returns {task: how the transitions were sampled, or
    why no distance was measured}."""
    from robreward.envs.registry import get_task

    per_task: dict = {}
    cache: dict = {}
    for row, run in zip(rows, runs_by_row):
        task, reward = run.task, str(run.reward)
        row["epic"] = row["starc"] = row["distance_note"] = row["distance_cost"] = None
        if task not in per_task:
            try:
                spec = get_task(str(task), allow_folder=False)
            except Exception as err:  # noqa: BLE001  (an unknown name, a task folder: no distances)
                per_task[task] = (None, None, f"no distances: {task!r} is not a task of the suite "
                                              f"({type(err).__name__})")
            else:
                folder = _hand_policy_folder(task, refs.get(task), baseline_root)
                coverage, how = _coverage(spec, folder / "policy.onnx" if folder is not None else None)
                per_task[task] = (spec, coverage, how)
        spec, coverage, how = per_task[task]
        if spec is None:
            row["distance_note"] = how
            continue
        key = (task, reward)
        if key not in cache:
            cache[key] = _distances(reward, spec, coverage)
        result = cache[key]
        row["epic"], row["starc"] = result.get("epic"), result.get("starc")
        row["distance_cost"] = result.get("cost") or None
        if row["epic"] is None or row["starc"] is None:
            row["distance_note"] = next(iter((result.get("notes") or {}).values()), "undefined")
    return {task: how for task, (_spec, _cov, how) in per_task.items()}


def _distance_cell(row: dict, metric: str) -> str:
    """The distance, or "n/a" where it is undefined (the notes say why); "-" where none was measured."""
    value = row.get(metric)
    if value is not None:
        return f"{value:.2f}"
    return "n/a" if row.get("distance_note") else "-"


HEADER = ("run", "task", "reward", "seeds", "steps", "return (hand) mean ± std", "success", "fitness",
          "HNS [95% CI]", "vs hand")
DISTANCE_HEADER = ("EPIC to hand", "STARC to hand")



def summary_line(rows: Sequence[dict], refs: dict) -> str:
    """The one line to quote: every scored run's HNS (with its interval) and what it is against."""
    kinds = {ref.kind for ref in refs.values()}
    if kinds == {"runs"}:
        against = "; ".join(ref.source for ref in refs.values())
    else:
        shipped = [ref for ref in refs.values() if ref.kind == "shipped"]
        versions = sorted({ref.version for ref in shipped})
        if len(versions) == 1:
            against = f"shipped {versions[0]} baselines"
        elif shipped:
            against = "shipped baselines (" + ", ".join(f"{r.task} {r.version}" for r in shipped) + ")"
        else:
            against = "no baselines"
        missing = [str(ref.task) for ref in refs.values() if ref.kind == "none"]
        if missing:
            against += f" (none shipped for {', '.join(missing)})"
    parts = []
    for row in rows:
        if row["role"] is not None:
            continue
        value, ci = row["hns"]["value"], row["hns_ci"]
        if value is None:
            parts.append(f"{row['run']} n/a")
        elif ci:
            parts.append(f"{row['run']} {value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")
        else:
            parts.append(f"{row['run']} {value:.2f} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''}, "
                         "no interval)")
    if not parts:
        return f"HNS against {against}: no run to score (every run passed is a baseline itself)"
    return f"HNS of your runs against {against}: " + ", ".join(parts)


def markdown_table(rows: Sequence[dict], refs: dict, distances: Optional[dict] = None) -> str:
    header = HEADER + (DISTANCE_HEADER if distances is not None else ())
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = list(row["cells"])
        if distances is not None:
            cells += [_distance_cell(row, "epic"), _distance_cell(row, "starc")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes = []
    for task, ref in refs.items():
        budget = f"; {_steps(ref.steps)} env steps per seed" if ref.steps else ""
        notes.append(f"- {task}: H = {_fmt(ref.h, 3)}, S = {_fmt(ref.s, 3)}: {ref.source}{budget}")
    for row in rows:
        if row["role"] is None and row["path"] and row["shipped"]:
            notes.append(f"- {row['run']}: a shipped baseline of another version, scored as any run")
    undefined: dict[str, list[str]] = {}  # one note per reason, naming its runs
    for row in rows:
        if row["hns"]["reason"]:
            undefined.setdefault(row["hns"]["reason"], []).append(row["run"])
    notes += [f"- {', '.join(names)}: HNS undefined: {reason}" for reason, names in undefined.items()]
    for row in rows:
        if row["vs_hand"] and row["vs_hand"].get("testable"):
            notes.append(f"- {row['run']}: {row['vs_hand']['summary']}")
    if distances is not None:
        for task, how in distances.items():
            notes.append(f"- {task}: EPIC and STARC to the hand reward (0 = the same reward up to shaping and "
                         f"scale; robreward distance) measured on {how}")
        undefined_d: dict[str, list[str]] = {}
        for row in rows:
            if row.get("distance_note"):
                undefined_d.setdefault(row["distance_note"], []).append(row["run"])
        notes += [f"- {', '.join(names)}: {why}" if why.startswith("n/a: ") else
                  f"- {', '.join(names)}: distance undefined: {why}" for why, names in undefined_d.items()]
        notes += [f"- {row['run']}: its frames for the distances: {row['distance_cost']}" for row in rows
                  if row.get("distance_cost")]
    notes.append("- HNS = (M - S)/|H - S| on fitness; (= H)/(= S): the reference itself, not scored; [95% CI]: "
                 "bootstrap over the run's seeds and the baselines' seeds (>= 2 run seeds); return: mean ± std over "
                 "seeds (one seed: over episodes); vs hand: one-sided Welch t-test on per-seed fitness, "
                 "* = significant at 0.05")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n\n" + summary_line(rows, refs) + "\n"


COMPARE_FILES = ("compare.md", "compare.json", "curves.png")


def _baseline_lines(rows: Sequence[dict]) -> dict:
    """{"success_rate": (H's, S's), "fitness_mean": (H's, S's)} from the reference rows, for the plot."""
    lines = {}
    for key in ("success_rate", "fitness_mean"):
        by_role = {row["role"]: row[key] for row in rows if row["role"] in ("H", "S")}
        lines[key] = (by_role.get("H"), by_role.get("S"))
    return lines


def compare(run_dirs: Sequence, out=None, baseline_root=None, overwrite: bool = False,
            baseline_version: Optional[str] = None, baselines: Optional[Sequence] = None,
            distances: bool = True) -> dict:
    """Read the runs, write <out>/compare.md, <out>/compare.json and <out>/curves.png.

    H and S: the shipped baselines (newest version, or `baseline_version` "v0"/"v1"/...), or with
    `baselines` = (HAND_RUN, SPARSE_RUN) those two run directories. out defaults to the first
    run's parent / "compare". An existing comparison there is refused unless ``overwrite``
    (FileExistsError). distances: add EPIC and STARC from each row's reward to the hand reward
    (a few seconds per reward on a CPU). Returns {table, summary, markdown, json, png, rows, out}.
    """
    if not run_dirs:
        raise ValueError("compare needs at least one run directory")
    if baselines is not None and baseline_version is not None:
        raise ValueError("--baselines (your own H and S runs) and --baseline-version (which shipped baselines) "
                         "exclude each other: pass one")
    if baselines is not None and len(baselines) != 2:
        raise ValueError(f"--baselines takes two runs, HAND_RUN,SPARSE_RUN; got {len(baselines)}")
    out = Path(out) if out is not None else Path(run_dirs[0]).resolve().parent / "compare"
    existing = [name for name in COMPARE_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds a comparison ({', '.join(existing)}): pass --overwrite to "
                              "replace it, or --out DIR for a new one")
    runs = [load_run(p) for p in run_dirs]
    refs_runs = tuple(load_run(p) for p in baselines) if baselines is not None else None
    rows, refs, row_runs = build_rows(runs, baseline_root, baseline_version, refs_runs, with_runs=True)
    how = add_distances(rows, row_runs, refs, baseline_root) if distances else None
    table = markdown_table(rows, refs, how)
    summary = summary_line(rows, refs)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic_write_text(out / "compare.md", "# Comparison\n\n" + table + "\n![learning curves](curves.png)\n")
    payload = {"summary": summary, "distances": how,
               "rows": [{k: v for k, v in r.items() if k != "cells"} for r in rows],
               "references": {str(t): {**dataclasses.asdict(r), "self_paths": sorted(r.self_paths)}
                              for t, r in refs.items()}}
    js = atomic_write_json(out / "compare.json", payload, indent=2)
    tasks = sorted({str(r.task) for r in runs})
    passed = {_resolved(r.path) for r in runs}
    extra = [r for r in (refs_runs or ()) if _resolved(r.path) not in passed]  # --baselines runs not passed
    curves = [(r.label, r.progress) for r in [*extra, *runs]]
    first_passed = len(row_runs) - len(runs)  # row_runs: the reference rows (shipped or --baselines), then the runs
    summary_rows = [{"label": row["run"], "success_rate": run.per_seed("success_rate"),
                     "fitness_mean": run.per_seed("fitness_mean"), "epic": row.get("epic"),
                     "starc": row.get("starc"), "distance_note": row.get("distance_note")}
                    for i, (row, run) in enumerate(zip(rows, row_runs))
                    if i >= first_passed or any(run is r for r in extra)]
    png = plot_learning_curves(curves, out / "curves.png", title=", ".join(tasks), summary=summary_rows,
                               baselines=_baseline_lines(rows) if len(refs) == 1 else None)
    return {"table": table, "summary": summary, "markdown": md, "json": js, "png": png, "rows": rows, "out": out}
