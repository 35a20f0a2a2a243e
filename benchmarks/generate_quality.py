"""Does the search's winner survive fresh seeds? Selection bias of one-seed vs multi-seed selection (issue 25).

Replays the recorded generate runs in ../shared/transcripts (push-k4-2it: 8 programs over two
iterations; lift-k4-1it: 4 programs), and trains every program, and the task's hand reward beside
them, on 5 seeds at the search budget with the search's settings (today's engine, --envs worlds,
--eval-episodes deterministic evaluation episodes). Each (program, seed) run is a cell: a run
directory under --out that is skipped once it has eval.json, so a killed benchmark continues where it
stopped (the batched trainer also checkpoints every 5 updates); --ray ADDRESS runs the cells as Ray
tasks through the engine's path (robreward.codegen.training.train_candidates).

From the 5-seed table it reports, per transcript:

- ``literal``: the picks of one-seed selection (Eureka's argmax over the search seed 0, what the
  recorded run did) and of the new rule (lower confidence bound over seeds 0..M-1, M = the default
  --candidate-seeds): which program, its search estimate, its 5-seed mean, the bias (estimate -
  5-seed mean), whether it is within one standard error of the best 5-seed mean, and its 5-seed
  fitness against the hand reward's (same engine and settings; Welch's one-sided p; and, indicative only,
  HNS with the shipped sparse baseline's S, which was trained at the shipped budget, not this one);
- ``resampled``: the same over every choice of the M search seeds among the 5 (all C(5, M) subsets),
  for M = 1..4 and both rules (mean, lcb): average bias against the 5-seed mean and against the mean
  of the held-out seeds (the seeds selection did not see: an unbiased truth), the share of picks
  within one SE of the best, the mean regret, and the search cost in env steps (K x M x steps).

    python benchmarks/generate_quality.py                          # the full run: 60 + 10 runs of 1M steps
    python benchmarks/generate_quality.py --steps 20000 --envs 8 --eval-episodes 10   # a quick pass
    python benchmarks/generate_quality.py --ray local              # cells as Ray tasks

Writes benchmarks/results/generate_quality.json (--results; each recorded run's entry has its own settings; the
entries of runs not given are kept). The programs are data from outside the
project: they are written only under --out, never into the repository or the results.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRANSCRIPTS = ROOT.parent / "shared" / "transcripts"
# recorded run -> (task, its transcript/ folder; relative: under --transcripts). reach-example is the repository's
# hand-written reach transcript (examples/transcripts/reach): not an LLM's programs, but reach learns at budgets
# small enough for a quick measurement on 2 cores, where push and lift still have fitness 0 everywhere
RUNS = {"push-k4-2it": ("push", "push-k4-2it/transcript"), "lift-k4-1it": ("lift", "lift-k4-1it/transcript"),
        "reach-example": ("reach", str(ROOT / "examples" / "transcripts" / "reach"))}
DEFAULT_RUNS = ("push-k4-2it", "lift-k4-1it")
SEEDS = 5
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "generate_quality.json"


# -- the programs ----------------------------------------------------------------------------------
def programs(transcript: Path, task: str) -> list[tuple[str, str]]:
    """(id, code) of every program in a recorded transcript that passes generate's checks, in order:
    call c's answer k is call_{c:02d}/cand_{k:02d} (in the shared runs one call per iteration, so call_01 is
    iteration 1; a repair call's answer is one more program)."""
    from robreward.codegen.extract import extract_program, preflight

    calls = sorted(Path(transcript).glob("call-*.json"))
    if not calls:
        raise FileNotFoundError(f"no call-*.json in {transcript}: pass a generate run's transcript/ folder")
    found = []
    for c, path in enumerate(calls):
        for k, text in enumerate(json.loads(path.read_text())["completion"]["texts"]):
            result = preflight(extract_program(text), task, name=f"iter_{c:02d}/cand_{k:02d}")
            if result.ok:
                found.append((f"call_{c:02d}/cand_{k:02d}", result.code))
    return found


# -- the cells -------------------------------------------------------------------------------------
def train_cells(name: str, task: str, progs: list[tuple[str, str]], out: Path, steps: int, envs: int,
                seeds: int, eval_episodes: int, ray: str | None) -> dict:
    """Train every program and the hand reward on seeds 0..seeds-1 (finished cells are skipped); returns
    {program id or "hand": [per-seed {"seed", "ok", "fitness", "success"}]}."""
    from robreward.codegen.loop import _run_result
    from robreward.codegen.training import train_candidates

    base = out / name
    (base / "programs").mkdir(parents=True, exist_ok=True)
    files, dirs, seed_list, owners = [], [], [], []
    for pid, code in progs:
        path = base / "programs" / (pid.replace("/", "_") + ".py")
        if not path.is_file() or path.read_text() != code:
            path.write_text(code)
        for seed in range(seeds):
            files.append(path), dirs.append(base / pid.replace("/", "_") / f"seed_{seed}")
            seed_list.append(seed), owners.append(pid)
    for seed in range(seeds):
        files.append("hand"), dirs.append(base / "hand" / f"seed_{seed}"), seed_list.append(seed), owners.append("hand")
    todo = sum(not (d / "eval.json").is_file() and not (d / "failed.json").is_file() for d in dirs)
    print(f"{name}: {len(dirs)} cells ({todo} to train), {steps:,} steps x {envs} worlds each", flush=True)
    start = time.perf_counter()
    if todo:
        train_candidates(task, files, steps, seed_list, dirs, num_envs=envs, eval_episodes=eval_episodes, ray=ray)
    table: dict[str, list] = {}
    for pid, seed, run_dir in zip(owners, seed_list, dirs):
        result = _run_result(run_dir)
        table.setdefault(pid, []).append({"seed": seed, "ok": result["ok"], "fitness": result["fitness"],
                                          "success": result["success"]})
    print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return table


# -- the analysis (pure: tests/codegen/test_generate_quality.py) ------------------------------------
def _fit(rows: list[dict], seeds) -> list[float] | None:
    """The fitness of ``seeds`` (indices into rows), None if any of them failed (generate drops such a candidate)."""
    values = [rows[s]["fitness"] for s in seeds]
    return None if any(not rows[s]["ok"] or v is None for s, v in zip(seeds, values)) else values


def truth(table: dict) -> dict:
    """Per program: 5-seed mean and SE of its fitness (over its ok seeds)."""
    out = {}
    for pid, rows in table.items():
        xs = [r["fitness"] for r in rows if r["ok"] and r["fitness"] is not None]
        out[pid] = {"mean": float(np.mean(xs)) if xs else None,
                    "se": float(np.std(xs, ddof=1) / math.sqrt(len(xs))) if len(xs) > 1 else None,
                    "n": len(xs)}
    return out


def select_on(table: dict, seeds, rule: str) -> dict | None:
    """The pick of ``rule`` when each program is trained on ``seeds`` only (hand excluded); None if nothing trained."""
    from robreward.codegen import selection

    pids, groups = [], []
    for pid, rows in table.items():
        values = _fit(rows, seeds) if pid != "hand" else None
        if values is not None:
            pids.append(pid), groups.append(values)
    if not pids:
        return None
    rows = selection.score(groups, rule)
    chosen = selection.pick(rows)
    return {"pick": pids[chosen], "estimate": rows[chosen]["mean"], "lcb": rows[chosen]["lcb"],
            "p_best": rows[chosen]["p_best"]}


def judge(table: dict, choice: dict, seeds) -> dict:
    """How a pick fares: its 5-seed mean, bias, held-out mean and bias, regret, within one SE of the best."""
    t = truth(table)
    programs_only = {p: v for p, v in t.items() if p != "hand" and v["mean"] is not None}
    best = max(programs_only, key=lambda p: programs_only[p]["mean"])
    mine = t[choice["pick"]]
    held = [r["fitness"] for i, r in enumerate(table[choice["pick"]]) if i not in set(seeds) and r["ok"]]
    held_mean = float(np.mean(held)) if held else None
    margin = t[best]["se"] or 0.0
    return {**choice, "five_seed_mean": mine["mean"], "five_seed_se": mine["se"],
            "bias": choice["estimate"] - mine["mean"], "held_out_mean": held_mean,
            "held_out_bias": None if held_mean is None else choice["estimate"] - held_mean,
            "best": best, "best_five_seed_mean": t[best]["mean"], "best_five_seed_se": t[best]["se"],
            "regret": t[best]["mean"] - mine["mean"], "within_one_se": mine["mean"] >= t[best]["mean"] - margin - 1e-12}


def resampled(table: dict, m: int, rule: str, seeds: int = SEEDS) -> dict:
    """judge() averaged over every choice of m search seeds among the seeds trained."""
    outcomes = []
    for subset in itertools.combinations(range(seeds), m):
        choice = select_on(table, subset, rule)
        if choice is not None:
            outcomes.append(judge(table, choice, subset))
    mean = lambda key: (float(np.mean([o[key] for o in outcomes if o[key] is not None]))  # noqa: E731
                        if any(o[key] is not None for o in outcomes) else None)
    picks: dict[str, int] = {}
    for o in outcomes:
        picks[o["pick"]] = picks.get(o["pick"], 0) + 1
    return {"m": m, "rule": rule, "subsets": len(outcomes), "bias": mean("bias"), "held_out_bias": mean("held_out_bias"),
            "within_one_se": mean("within_one_se"), "regret": mean("regret"), "picks": picks}


def against_hand(table: dict, pid: str, sparse_fitness: float | None) -> dict:
    """The pick's 5-seed fitness vs the hand reward's (same engine and settings)."""
    from robreward.eval.hns import hns
    from robreward.eval.stats import welch_one_sided

    mine = [r["fitness"] for r in table[pid] if r["ok"]]
    hand = [r["fitness"] for r in table["hand"] if r["ok"]]
    out = {"pick_mean": float(np.mean(mine)) if mine else None, "hand_mean": float(np.mean(hand)) if hand else None,
           "hand_per_seed": hand, "pick_per_seed": mine, "p_pick_better": None, "hns_shipped_sparse": None,
           "sparse_fitness_shipped": sparse_fitness}
    if len(mine) > 1 and len(hand) > 1:
        out["p_pick_better"] = welch_one_sided(mine, hand)[1]
    if out["pick_mean"] is not None and out["hand_mean"] is not None and sparse_fitness is not None:
        score = hns(out["pick_mean"], out["hand_mean"], sparse_fitness)
        out["hns_shipped_sparse"] = getattr(score, "value", None)  # S at the shipped budget: indicative only
    return out


def analyse(table: dict, steps: int, new_m: int, sparse_fitness: float | None, seeds: int = SEEDS) -> dict:
    programs_k = sum(1 for p in table if p != "hand")
    literal = {}
    for label, subset, rule in (("one_seed", (0,), "mean"), ("new_rule", tuple(range(new_m)), "lcb")):
        choice = select_on(table, subset, rule)
        if choice is not None:
            literal[label] = {**judge(table, choice, subset), "seeds": list(subset), "rule": rule,
                              "cost_env_steps": programs_k * len(subset) * steps,
                              "vs_hand": against_hand(table, choice["pick"], sparse_fitness)}
    grid = [{**resampled(table, m, rule, seeds), "cost_env_steps": programs_k * m * steps}
            for m in range(1, seeds) for rule in ("mean", "lcb")]
    return {"truth": truth(table), "literal": literal, "resampled": grid}


def target_met(result: dict, m: int) -> dict:
    """The issue's target on the resampled numbers: the rule's picks within one SE of the best (on average over
    seed choices, >= 0.5 of the time and at least as often as one-seed selection), and |bias| at most half of
    one-seed selection's."""
    grid = {(g["m"], g["rule"]): g for g in result["resampled"]}
    one, new = grid.get((1, "mean")), grid.get((m, "lcb"))
    if not one or not new or one["bias"] is None or new["bias"] is None:
        return {"met": None}
    half = abs(new["bias"]) <= 0.5 * abs(one["bias"]) + 1e-9
    within = new["within_one_se"] >= max(0.5, one["within_one_se"])
    return {"met": bool(half and within), "bias_halved": bool(half), "within_one_se": bool(within),
            "one_seed_bias": one["bias"], "new_bias": new["bias"]}


# -- the command -----------------------------------------------------------------------------------
def main(argv=None) -> int:
    from robreward.codegen.config import GenerateConfig

    default_m = GenerateConfig.__dataclass_fields__["candidate_seeds"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transcripts", default=str(TRANSCRIPTS), help="folder of the recorded runs")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS), help=f"which recorded runs (of {', '.join(RUNS)})")
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per run (the recorded search: 1M)")
    parser.add_argument("--envs", type=int, default=32, help="worlds per run (the recorded search: 32)")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="training seeds per program (5)")
    parser.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes per run (the search: 50)")
    parser.add_argument("--candidate-seeds", type=int, default=default_m, help="M of the new rule's literal pick")
    parser.add_argument("--out", default="runs/bench/generate_quality", help="the cells' run directories (resumable)")
    parser.add_argument("--ray", default=None, help="run the cells as Ray tasks: an address, or local")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="the JSON written")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown recorded run(s) {', '.join(unknown)}: choose from {', '.join(RUNS)}")
    if args.seeds < 2 or not 1 <= args.candidate_seeds < args.seeds:
        parser.error(f"--seeds must be >= 2 and --candidate-seeds in 1..{args.seeds - 1}")

    from benchmarks.ppo_cpu import machine_info
    from robreward.eval.baseline import load_baseline
    from robreward.fileio import atomic_write_json

    settings = {"steps": args.steps, "envs": args.envs, "seeds": args.seeds, "eval_episodes": args.eval_episodes,
                "candidate_seeds": args.candidate_seeds,
                "engine": "robreward.rl.trainer (batched)" if args.ray is None else f"ray {args.ray}"}
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.is_file() else {}  # other recorded runs' results are kept
    results.update(benchmark="generate_quality", runs=results.get("runs", {}), description=(
        "issue 25: every program of a recorded generate run and the hand reward trained on `seeds` seeds at one "
        "budget; literal: the picks of one-seed selection (seed 0, mean) and of the lower-bound rule over seeds "
        "0..M-1; resampled: both rules averaged over every choice of M search seeds (bias = search estimate - "
        "5-seed mean; held_out_bias against the seeds selection did not see); cost_env_steps = K x M x steps"))
    for name in names:
        start = time.perf_counter()
        task, folder = RUNS[name]
        progs = programs(Path(args.transcripts) / folder, task)
        table = train_cells(name, task, progs, Path(args.out), args.steps, args.envs, args.seeds,
                            args.eval_episodes, args.ray)
        base = load_baseline(task)
        result = analyse(table, args.steps, args.candidate_seeds, base.sparse_fitness if base else None, args.seeds)
        result.update(task=task, programs=[pid for pid, _ in progs], table=table, settings=settings,
                      machine=machine_info(), target=target_met(result, args.candidate_seeds))
        results["runs"][name] = result
        for label, lit in result["literal"].items():
            print(f"{name} {label}: picks {lit['pick']} (estimate {lit['estimate']:.3f}, 5-seed "
                  f"{lit['five_seed_mean']:.3f}, bias {lit['bias']:+.3f}, within 1 SE of the best "
                  f"{lit['best']}: {lit['within_one_se']}; hand {lit['vs_hand']['hand_mean']:.3f})", flush=True)
        for g in result["resampled"]:
            held = "-" if g["held_out_bias"] is None else f"{g['held_out_bias']:+.3f}"
            print(f"{name} M={g['m']} {g['rule']:>4}: bias {g['bias']:+.3f} held-out bias {held} within 1 SE "
                  f"{g['within_one_se']:.2f} regret {g['regret']:.3f} cost {g['cost_env_steps']:,} steps", flush=True)
        result["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(path, results)
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
