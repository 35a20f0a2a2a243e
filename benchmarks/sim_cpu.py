"""CPU simulation throughput: robreward's BatchedEnv vs a raw mujoco.batch.Batch loop.

For each (task, worlds) config, in one run: env-steps/s of `robreward.make(task, num_envs=N).step`
with random actions (auto-reset included) and of a raw `mujoco.batch.Batch` loop on the same
model (task.build_model()), frame skip, world count and threads, doing the same physics work
(frame_skip substeps, copying out the bound fields the task reads, and mj_rnePostConstraint per
world where the task observes cfrc_ext, as Gymnasium does). Env and raw repeats are interleaved;
medians are reported with the ratio env/raw (target >= 0.8).

    .venv/bin/python benchmarks/sim_cpu.py [--steps 100] [--repeats 7]

Writes benchmarks/results/sim_cpu.json with the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robreward.envs.bench import compare, machine_info

CONFIGS = [("cheetah-run", 64), ("cheetah-run", 256), ("humanoid-run", 64), ("humanoid-run", 256)]
TARGET = 0.8


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="batched steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="simulator threads (default: all usable CPUs)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sim_cpu.json"))
    args = parser.parse_args(argv)

    results = []
    for task, n in CONFIGS:
        steps = args.steps * (4 if task == "cheetah-run" else 1)  # cheetah steps are ~20x cheaper
        r = compare(task, n, steps, repeats=args.repeats, nthread=args.threads)
        r["meets_target"] = r["ratio"] >= TARGET
        results.append(r)
        print(f"{task:>14} N={n:<4} env {r['env_steps_per_s']:>10.0f}/s  raw {r['raw_steps_per_s']:>10.0f}/s  "
              f"ratio {r['ratio']:.3f}", flush=True)
    report = {
        "benchmark": "sim_cpu",
        "description": "env-steps/s (summed over worlds) of BatchedEnv.step vs a raw mujoco.batch loop "
                       "with the same model, frame skip, worlds, threads and physics work; medians of "
                       "interleaved repeats",
        "target_ratio": TARGET,
        "machine": machine_info(),
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["meets_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
