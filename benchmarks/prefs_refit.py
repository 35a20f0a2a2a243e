"""Refit a preference run's reward ensemble offline on its own labels, with other ensemble settings,
and score each fit against the hand reward: is a bad learned reward the model's fault or the labels'?

For each run directory (a `robreward prefs train` run or a benchmarks/prefs.py cell), the labels in
labels.npz are fitted again round by round, as the loop fitted them (round k's fit sees the labels
of rounds 0..k and continues from round k-1's weights), once per ensemble variant and ensemble
seed. Each model, the run's own last-round model included, is scored on the same reference
rollouts of the task (one episode per world; a third each of the scripted expert, the expert with
Gaussian action noise of std 0.5, and uniform random actions):

- pearson: correlation of the learned and the hand reward per step, over all steps;
- spearman: rank correlation of the learned and the hand return per episode.

Writes benchmarks/results/prefs_refit.json.

    .venv/bin/python benchmarks/prefs_refit.py benchmarks/results/prefs_runs/push/oracle/q200/s1-norm_ee_pos+...
    .venv/bin/python benchmarks/prefs_refit.py RUN1 RUN2 --variants base,members7 --ensemble-seeds 0,1,2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robreward.envs.bench import machine_info  # noqa: E402
from robreward.fileio import atomic_write_json  # noqa: E402

VARIANTS = {  # EnsembleConfig fields changed from the run's own
    "base": {},
    "members7": {"num_members": 7},
    "hidden64": {"hidden": (64, 64)},
    "no-stop": {"stop_accuracy": None},
    "validation": {"validation_fraction": 0.2, "stop_accuracy": None, "epochs": 200},
}
NOISE = 0.5


def reference_rollouts(spec, worlds: int, seed: int):
    """(states, actions, hand rewards [T, N]) of one episode per world: expert, noisy expert, random."""
    import robreward

    if spec.expert is None:
        raise SystemExit(f"task {spec.name!r} has no scripted expert to make reference rollouts from")
    env = robreward.make(spec, num_envs=worlds, seed=seed)
    env.reset()
    gen = torch.Generator().manual_seed(seed)
    kind = torch.arange(worlds) % 3
    low = torch.as_tensor(spec.action_low, dtype=torch.float32)
    high = torch.as_tensor(spec.action_high, dtype=torch.float32)
    states, actions, hand = [], [], []
    alive = torch.ones(worlds, dtype=torch.bool)  # each world counts its first episode only
    masks = []
    for _ in range(spec.episode_length):
        expert = spec.expert(env.state).float()
        noisy = expert + NOISE * torch.randn(expert.shape, generator=gen)
        uniform = low + (high - low) * torch.rand(expert.shape, generator=gen)
        action = torch.where((kind == 0)[:, None], expert, torch.where((kind == 1)[:, None], noisy, uniform))
        action = torch.maximum(torch.minimum(action, high), low)
        _, _, terminated, truncated, info = env.step(action)
        states.append(info["final_state"])
        actions.append(action)
        hand.append(info["hand_reward"].float())
        masks.append(alive.clone())
        alive &= ~(terminated | truncated).cpu()
    env.close()
    return states, actions, torch.stack(hand), torch.stack(masks)


def score(model, reference) -> dict:
    from scipy.stats import spearmanr

    states, actions, hand, mask = reference
    with torch.no_grad():
        learned = torch.stack([model(s, a)[0] for s, a in zip(states, actions)])
    pearson = float(np.corrcoef(learned[mask].numpy(), hand[mask].numpy())[0, 1])
    returns = (learned * mask).sum(0).numpy(), (hand * mask).sum(0).numpy()
    return {"pearson": round(pearson, 4), "spearman": round(float(spearmanr(*returns).correlation), 4)}


def refit(run_dir: Path, spec, ensemble):
    """The run's reward model fitted again on its labels.npz, round by round, with `ensemble`."""
    from robreward.feedback.preferences.loop import LABELS_FILE, STATE_FILE, LabeledPairs, load_prefs_config
    from robreward.feedback.preferences.model import Featurizer, FeatureSpec, PreferenceReward

    config = load_prefs_config(run_dir)
    labeled = LabeledPairs.load(run_dir / LABELS_FILE, json.loads((run_dir / STATE_FILE).read_text())["rounds_done"])
    pairs, rounds = labeled.all_pairs(), torch.as_tensor(labeled.rounds)
    model = PreferenceReward(featurizer=Featurizer(spec, FeatureSpec(config.features, config.feature_action)),
                             config=ensemble, name="refit")
    for k in sorted(set(labeled.rounds)):
        rows = torch.nonzero(rounds <= k).squeeze(1)
        model.fit(pairs.index(rows), [labeled.labels[i] for i in rows.tolist()])
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="preference run directories (one task)")
    parser.add_argument("--variants", default="base", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--ensemble-seeds", default="", help="comma-separated; default: each run's own")
    parser.add_argument("--worlds", type=int, default=96, help="reference episodes (default 96)")
    parser.add_argument("--seed", type=int, default=123, help="seed of the reference rollouts")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "prefs_refit.json"))
    args = parser.parse_args(argv)

    from robreward.envs.registry import get_task
    from robreward.feedback.preferences.loop import load_prefs_config
    from robreward.feedback.preferences.model import load_preference_reward

    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}: choose from {', '.join(VARIANTS)}")
    runs = [Path(r) for r in args.runs]
    configs = [load_prefs_config(r) for r in runs]
    tasks = {c.task for c in configs}
    if len(tasks) != 1:
        parser.error(f"the runs are of several tasks ({', '.join(sorted(tasks))}): give runs of one task")
    spec = get_task(tasks.pop())
    torch.set_num_threads(1)
    reference = reference_rollouts(spec, args.worlds, args.seed)
    rows = []
    for run, config in zip(runs, configs):
        row = {"run": str(run), "seed": config.seed, "teacher": config.teacher, "queries": config.queries,
               "features": list(config.features), "saved_model": score(load_preference_reward(run, spec), reference),
               "refits": []}
        seeds = [int(s) for s in args.ensemble_seeds.split(",") if s] or [config.ensemble.seed]
        for variant in variants:
            for seed in seeds:
                ensemble = dataclasses.replace(config.ensemble, seed=seed, **VARIANTS[variant])
                row["refits"].append({"variant": variant, "ensemble_seed": seed,
                                      **score(refit(run, spec, ensemble), reference)})
                print(run.name[:40], variant, seed, row["refits"][-1], flush=True)
        rows.append(row)
    atomic_write_json(Path(args.out), {"benchmark": "prefs_refit", "machine": machine_info(),
                                       "date": time.strftime("%Y-%m-%d"), "task": spec.name,
                                       "reference": {"worlds": args.worlds, "seed": args.seed,
                                                     "kinds": ["expert", f"expert + N(0, {NOISE})", "uniform random"]},
                                       "runs": rows}, indent=2)
    print(json.dumps([{"run": r["run"], "saved_model": r["saved_model"]} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
