"""`robreward bench sim --task humanoid-run --envs 256 [--steps N] [--raw]`: env-steps/s as
JSON on stdout. --steps counts env steps summed over all worlds."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench")
    sub = parser.add_subparsers(dest="bench_what", metavar="WHAT", required=True)
    sim = sub.add_parser("sim", help="env-steps/s of a task's batched env on the CPU backend")
    sim.add_argument("--task", required=True, help="task name or task folder")
    sim.add_argument("--envs", type=int, default=256, help="number of worlds (default 256)")
    sim.add_argument("--steps", type=int, default=None,
                     help="env steps summed over all worlds, per repeat (default: 50 per world)")
    sim.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    sim.add_argument("--threads", type=int, default=None, help="simulator threads (default: all usable CPUs)")
    sim.add_argument("--raw", action="store_true",
                     help="also time a raw mujoco.batch loop doing the same physics, and the ratio")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=run_sim)


def run_sim(args) -> int:
    from robreward.envs.bench import compare, machine_info

    if args.envs < 1:
        raise ValueError(f"--envs must be >= 1, got {args.envs}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    total = args.steps if args.steps is not None else 50 * args.envs
    if total < args.envs:
        raise ValueError(f"--steps counts env steps over all worlds: give at least --envs ({args.envs})")
    result = compare(args.task, args.envs, max(1, total // args.envs), repeats=args.repeats,
                     nthread=args.threads, seed=args.seed, raw=args.raw)
    result["machine"] = machine_info()
    print(json.dumps(result, indent=2))
    return 0
