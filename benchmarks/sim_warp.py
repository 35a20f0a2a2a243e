"""Warp backend env-steps/s vs a raw `mjw.step` loop on the same model and world count.

    python benchmarks/sim_warp.py                       # CUDA: cheetah-run, humanoid-run, push x 1024..16384
    python benchmarks/sim_warp.py --device cpu          # Warp's CPU device, tiny world counts (smoke test)

Env-steps/s counts control steps (frame_skip physics steps each) summed over worlds, for both:
the raw loop runs frame_skip x mjw.step captured in one CUDA graph with constant ctrl; the env
runs robreward's BatchedEnv.step (policy-free random actions, task state, reward, auto-reset).
Writes benchmarks/results/sim_warp.json (or --out) with the device name. Target: env >= 0.8x raw.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def raw_rate(task: str, nworld: int, device: str, seconds: float) -> dict:
    import mujoco_warp as mjw
    import warp as wp

    from robreward.envs.registry import get_task
    from robreward.envs.warp_backend import WarpSimulator

    spec = get_task(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = WarpSimulator(spec.build_model(), nworld, (), torch.device(device))  # same model, buffers
    m, d = sim.m, sim.d
    sim._ctrl.uniform_(-0.5, 0.5)
    with wp.ScopedDevice(sim.wp_device):
        mjw.step(m, d)  # compile
        with wp.ScopedCapture() as cap:
            for _ in range(spec.frame_skip):
                mjw.step(m, d)
        wp.capture_launch(cap.graph)
        wp.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                wp.capture_launch(cap.graph)
            wp.synchronize()
            n += 10
        elapsed = time.perf_counter() - start
    return {"env_steps_per_s": n * nworld / elapsed, "physics_steps_per_s": n * nworld * spec.frame_skip / elapsed,
            "nconmax": sim.nconmax, "njmax": sim.njmax}


def env_rate(task: str, nworld: int, device: str, seconds: float) -> dict:
    import robreward

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = robreward.make(task, num_envs=nworld, backend="warp", device=device, seed=0)
    env.reset()
    lo, hi = env.action_low, env.action_high

    def act():
        return lo + (hi - lo) * torch.rand(nworld, env.act_dim, device=env.device)

    for _ in range(3):
        env.step(act())
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    sync()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            env.step(act())
        sync()
        n += 10
    elapsed = time.perf_counter() - start
    return {"env_steps_per_s": n * nworld / elapsed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda:0", help="cuda:N (default) or cpu (Warp's CPU device, tiny counts)")
    p.add_argument("--tasks", default="cheetah-run,humanoid-run,push")
    p.add_argument("--worlds", default=None, help="comma list (default 1024,4096,16384 on CUDA; 8,32 on cpu)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per measurement (default 5 on CUDA, 2 on cpu)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/sim_warp.json; sim_warp_cpu.json on cpu)")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("sim_warp.py: no CUDA GPU visible to torch. This benchmark measures MuJoCo Warp on a GPU; "
              "run it on a GPU machine (benchmarks/gpu_setup.sh installs the stack), or pass --device cpu "
              "for a slow smoke test on Warp's CPU device.", file=sys.stderr)
        return 2
    worlds = [int(w) for w in (args.worlds or ("1024,4096,16384" if cuda else "8,32")).split(",")]
    seconds = args.seconds or (5.0 if cuda else 2.0)
    import mujoco
    import mujoco_warp
    import warp as wp

    wp.init()
    device_name = torch.cuda.get_device_name(torch.device(args.device)) if cuda else platform.processor() or "cpu"
    rows = []
    out = Path(args.out) if args.out else RESULTS / ("sim_warp.json" if cuda else "sim_warp_cpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        for n in worlds:
            raw = raw_rate(task, n, args.device, seconds)
            env = env_rate(task, n, args.device, seconds)
            row = {"task": task, "worlds": n, "raw": raw, "env": env,
                   "env_over_raw": env["env_steps_per_s"] / raw["env_steps_per_s"]}
            rows.append(row)
            print(f"{task:14s} {n:6d} worlds: raw {raw['env_steps_per_s']:12,.0f}  env {env['env_steps_per_s']:12,.0f} "
                  f"env-steps/s  ({row['env_over_raw']:.2f}x)", flush=True)
            # written after every point: a run stopped at a time limit keeps the points it measured
            result = {"benchmark": "sim_warp", "device": args.device, "device_name": device_name,
                      "versions": {"mujoco": mujoco.__version__, "mujoco_warp": mujoco_warp.__version__,
                                   "warp": wp.__version__, "torch": torch.__version__},
                      "seconds_per_point": seconds, "target_env_over_raw": 0.8, "results": rows}
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
