"""PPO end to end on the GPU: robreward PPO vs SB3 PPO, both on the warp backend.

    python benchmarks/ppo_gpu.py                      # cheetah-run, 4096 worlds, 30M steps, cuda:0
    python benchmarks/ppo_gpu.py --steps 5000000 --sb3-steps 200000

Runs `robreward train` (the real CLI, so the same code path users get) in subprocesses:
  1. --algo ppo --backend warp --device cuda:0 --envs 4096: env-steps/s end to end (from the
     run's progress.csv: step / time_s) and the wall time at which return_mean first >= 5000;
  2. --algo sb3 on the same GPU env through the SB3 adapter (--sb3-envs worlds).
Writes benchmarks/results/ppo_gpu.json with the device name. Targets: >= 600k env-steps/s on an
H100; robreward >= 10x SB3. Refuses without CUDA.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def run_train(task, algo, envs, steps, device, seed, out_dir, timeout, extra=()) -> dict:
    cmd = [sys.executable, "-m", "robreward.cli.main", "train", "--task", task, "--algo", algo,
           "--backend", "warp", "--device", device, "--envs", str(envs), "--steps", str(steps),
           "--seed", str(seed), "--out", str(out_dir), "--eval-episodes", "0", "--no-progress", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    timed_out = False
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # keep what the run logged so far: the rate does not need the whole budget
        timed_out = True
    wall = time.perf_counter() - start
    log = Path(out_dir) / "progress.csv"
    if not timed_out and proc.returncode != 0:
        return {"ok": False, "cmd": cmd, "rc": proc.returncode, "stderr_tail": proc.stderr[-3000:], "wall_s": wall}
    if not log.is_file():
        return {"ok": False, "cmd": cmd, "rc": None, "timed_out": timed_out, "wall_s": wall}
    rows = list(csv.DictReader(open(log)))
    if not rows:
        return {"ok": False, "cmd": cmd, "rc": None, "timed_out": timed_out, "wall_s": wall,
                "note": "no rollout finished: progress.csv is empty"}

    def num(row, key):
        try:
            return float(row[key])
        except (KeyError, TypeError, ValueError):
            return float("nan")

    last = rows[-1] if rows else {}
    steps_done, train_time = num(last, "step"), num(last, "time_s")
    # steady-state rate: skip the first rollout (compile + graph capture)
    if len(rows) > 2:
        s0, t0 = num(rows[0], "step"), num(rows[0], "time_s")
        rate = (steps_done - s0) / max(train_time - t0, 1e-9)
    else:
        rate = steps_done / max(train_time, 1e-9)
    t5000 = next((num(r, "time_s") for r in rows if num(r, "return_mean") >= 5000), None)
    s5000 = next((num(r, "step") for r in rows if num(r, "return_mean") >= 5000), None)
    return {"ok": True, "timed_out": timed_out, "cmd": cmd, "wall_s": wall, "steps": steps_done, "train_time_s": train_time,
            "env_steps_per_s": rate, "final_return_mean": num(last, "return_mean"),
            "time_to_return_5000_s": t5000, "steps_to_return_5000": s5000, "progress_rows": len(rows)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="cheetah-run")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--envs", type=int, default=4096)
    p.add_argument("--steps", type=int, default=30_000_000)
    p.add_argument("--sb3-envs", type=int, default=4096, help="worlds of the GPU env SB3 drives")
    p.add_argument("--sb3-steps", type=int, default=500_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=3600, help="seconds of robreward's training run (the rate and "
                   "return so far are kept when it runs out)")
    p.add_argument("--sb3-timeout", type=int, default=None, help="seconds of SB3's training run (default --timeout)")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "ppo_gpu.json"))
    args = p.parse_args(argv)
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print("ppo_gpu.py: needs a CUDA GPU (torch sees none). Set one up with benchmarks/gpu_setup.sh.", file=sys.stderr)
        return 2
    result = {"benchmark": "ppo_gpu", "task": args.task, "device": args.device,
              "device_name": torch.cuda.get_device_name(torch.device(args.device)),
              "torch": torch.__version__, "targets": {"robreward_env_steps_per_s_h100": 600_000, "robreward_over_sb3": 10}}
    with tempfile.TemporaryDirectory() as tmp:
        result["robreward"] = {"envs": args.envs, **run_train(args.task, "ppo", args.envs, args.steps, args.device,
                                                              args.seed, Path(tmp) / "ppo", args.timeout)}
        if not args.skip_sb3:
            result["sb3"] = {"envs": args.sb3_envs, **run_train(args.task, "sb3", args.sb3_envs, args.sb3_steps,
                                                                args.device, args.seed, Path(tmp) / "sb3",
                                                                args.sb3_timeout or args.timeout)}
    r, s = result.get("robreward", {}), result.get("sb3", {})
    if r.get("ok") and s.get("ok"):
        result["robreward_over_sb3"] = r["env_steps_per_s"] / max(s["env_steps_per_s"], 1e-9)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("robreward", "sb3")}, indent=2))
    for name in ("robreward", "sb3"):
        if name in result:
            v = result[name]
            print(name, "ok" if v.get("ok") else f"FAILED rc={v.get('rc')}: {v.get('stderr_tail', '')[-500:]}",
                  f"{v.get('env_steps_per_s', 0):,.0f} env-steps/s" if v.get("ok") else "")
    print(f"wrote {out}")
    return 0 if r.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
