"""K reward candidates trained at once vs one after the other (issue 5, "Performance").

One run, side by side, same per-candidate budget: K reward programs (tanh/exp distance rewards
with different temperatures, as an LLM writes them) on `reach`,

- batched:    robreward.rl.multi.train_many: one env of K x M worlds, K policies as one network;
- sequential: K runs of robreward.rl.runner.train (M worlds each), what train_candidates did before.

Both load (and dry-run) the K reward files and export K policies; neither evaluates (eval_episodes=0:
evaluation is the same per candidate on both paths). Time breakdown, both paths measured the same
way: physics = BatchedEnv.step without the reward call (MuJoCo, task state, observation, hand
reward, resets), rewards = the candidates' reward programs, networks = policy forward in the
rollout + PPO updates, overhead = the rest (episode statistics, storage, GAE, logging, reward
loading, export). CPU seconds (every thread of the process) are recorded per path and for its PPO
updates; the batched path's CPU seconds over the usable cores give the shortest wall any schedule of
its work could take here ("cpu_bound"). Writes benchmarks/results/generate.json.

    python benchmarks/generate.py                      # K=16, 20k steps x 16 worlds per candidate
    python benchmarks/generate.py --candidates 4 --steps 4096
    python benchmarks/generate.py --repeats 3          # 3 pairs, alternating which runs first; the median
    python benchmarks/generate.py --backend warp --device cuda --worlds 1024 --steps 1000000   # GPU: >= 8x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ppo_cpu import machine_info  # noqa: E402

PROGRAM = '''import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    reach = {shape}
    effort = -{effort} * (action[:, :3] ** 2).sum(-1)
    return reach + effort, {{"reach": reach, "effort": effort}}
'''


def write_programs(root: Path, count: int) -> list[Path]:
    files = []
    for i in range(count):
        temp = 0.05 + 0.05 * (i % 4)
        shape = f"1.0 - torch.tanh(dist / {temp:.2f})" if i % 2 == 0 else f"torch.exp(-dist / {temp:.2f})"
        path = root / f"cand_{i:02d}.py"
        path.write_text(PROGRAM.format(shape=shape, effort=0.001 * (1 + i // 4)))
        files.append(path)
    return files


class Timer:
    """Accumulates the wall-clock seconds, and the process's CPU seconds (all its threads), spent in a
    wrapped callable."""

    def __init__(self):
        self.seconds = self.cpu_seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.cpu_seconds += time.process_time() - cpu

        return timed


def cpu_seconds(total: float, update: Timer) -> dict:
    """CPU seconds of a path (every thread of the process: torch's, the simulator's) and of its PPO
    updates; cores_busy = total / wall says how much of the machine the path kept busy."""
    return {"total": total, "update": update.cpu_seconds, "rest": total - update.cpu_seconds}


def run_batched(files, args, root: Path) -> dict:
    from robreward.rl.multi import train_many
    from robreward.rl.ppo import PPO

    update, original = Timer(), PPO.update
    PPO.update = update.wrap(original)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        summary = train_many(args.task, files, args.steps, args.seed, [root / f"b{i:02d}" for i in range(len(files))],
                             num_envs_per_candidate=args.worlds, eval_episodes=0, torch_threads=args.batched_threads,
                             backend=args.backend, device=args.device)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        PPO.update = original
    t = summary["timing"]
    networks = t.get("policy", 0.0) + t.get("update", 0.0)
    breakdown = {"physics": t.get("physics", 0.0), "rewards": t.get("rewards", 0.0), "networks": networks}
    breakdown["overhead"] = wall - sum(breakdown.values())
    failed = [c["failed"] for c in summary["candidates"] if c["failed"]]
    return {"wall_s": wall, "breakdown_s": breakdown, "failed": failed,
            "networks_s": {"rollout": t.get("policy", 0.0), "update": t.get("update", 0.0)},
            "cpu_s": cpu_seconds(cpu, update), "cores_busy": cpu / wall,
            "final_success": [c["stats"].get("success") for c in summary["candidates"]]}


def run_sequential(files, args, root: Path) -> dict:
    from robreward.envs.batched import BatchedEnv
    from robreward.rewards.program import RewardProgram
    from robreward.rl import runner
    from robreward.rl.config import TrainConfig
    from robreward.rl.ppo import PPO, BatchedActorCritic

    step, reward, act, update = Timer(), Timer(), Timer(), Timer()
    originals = [(BatchedEnv, "step"), (RewardProgram, "__call__"), (BatchedActorCritic, "act"), (PPO, "update")]
    saved = [getattr(cls, name) for cls, name in originals]
    for (cls, name), timer in zip(originals, (step, reward, act, update)):
        setattr(cls, name, timer.wrap(getattr(cls, name)))
    finals = []
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i, file in enumerate(files):
            config = TrainConfig(task=args.task, reward=str(file), num_envs=args.worlds, steps=args.steps,
                                 seed=args.seed, out=str(root / f"s{i:02d}"), eval_episodes=0, progress=False,
                                 torch_threads=args.sequential_threads, backend=args.backend, device=args.device)
            finals.append(runner.train(config)["stats"].get("success"))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for (cls, name), original in zip(originals, saved):
            setattr(cls, name, original)
    breakdown = {"physics": step.seconds - reward.seconds, "rewards": reward.seconds,
                 "networks": act.seconds + update.seconds}
    breakdown["overhead"] = wall - sum(breakdown.values())
    return {"wall_s": wall, "breakdown_s": breakdown, "failed": [], "final_success": finals,
            "networks_s": {"rollout": act.seconds, "update": update.seconds},
            "cpu_s": cpu_seconds(cpu, update), "cores_busy": cpu / wall}


def network_gflop(task: str, steps: int, worlds: int) -> dict:
    """The arithmetic one candidate's networks do (GFLOP, multiply-add = 2): the rollout's actor and
    critic forward per env step, and PPO's epochs of forward + backward (~3x forward) per update."""
    from robreward.envs.registry import get_task
    from robreward.rl.config import PPOConfig

    spec, cfg = get_task(task), PPOConfig()
    macs = sum(a * b for sizes in ((spec.obs_dim, *cfg.actor_hidden, spec.act_dim), (spec.obs_dim, *cfg.critic_hidden, 1))
               for a, b in zip(sizes[:-1], sizes[1:]))  # per transition, actor + critic
    rollout = cfg.num_steps * worlds
    updates = steps // rollout
    return {"rollout": 2 * macs * steps / 1e9, "update": 6 * macs * updates * cfg.num_epochs * rollout / 1e9}


def matmul_peak_gflops(batch: int, rows: int, width: int, threads: int, seconds: float = 1.0,
                       device: str = "cpu") -> float:
    """GFLOP/s of torch.bmm on [batch, rows, width] x [batch, width, width] at `threads` torch threads
    (on a GPU: each call waited for, as the networks' small calls are): the hidden layer of a
    mini-batch, the rate the networks could reach at best."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    try:
        a, w = torch.randn(batch, rows, width, device=device), torch.randn(batch, width, width, device=device)
        for _ in range(10):
            torch.bmm(a, w)
        sync()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.bmm(a, w)
            sync()
            count += 1
        return 2 * batch * rows * width * width * count / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(before)


def cpu_bound(runs: dict, cores: int) -> dict:
    """The batched run's CPU seconds spread evenly over every usable core: no schedule of that work
    (threads, overlapping rollout and update) finishes sooner on this machine, so the sequential
    wall over it is the highest speedup reachable without doing less work. CPU seconds also count
    threads that spin while they wait; with OMP_WAIT_POLICY=PASSIVE (no spinning) the batched
    update's were the same at 16 worlds (19.6 against 19.5 core-s), so they measure work here."""
    wall = runs["batched"]["cpu_s"]["total"] / cores
    return {"cores": cores, "batched_min_wall_s": wall, "max_speedup": runs["sequential"]["wall_s"] / wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reach")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20_480, help="env steps per candidate (summed over its worlds)")
    parser.add_argument("--worlds", type=int, default=16, help="worlds per candidate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("cpu", "warp"), default="cpu",
                        help="simulator of both paths: cpu (native MuJoCo) or warp (MuJoCo Warp; with --device cuda "
                             "for the GPU target)")
    parser.add_argument("--device", default="cpu", help="torch device of both paths' envs and networks (cpu, cuda)")
    parser.add_argument("--batched-threads", type=int, default=None,
                        help="torch threads of the batched path (default: train_many's, one per 8 candidates up to "
                             "the cores; its [K, B, H] matmuls use them)")
    parser.add_argument("--sequential-threads", type=int, default=1,
                        help="torch threads of each sequential run (default 1, the runner's default: its small "
                             "matmuls are slower with 2 on 2 cores)")
    parser.add_argument("--order", choices=("alternate", "batched-first", "sequential-first"), default="alternate",
                        help="which path runs first in each repeat (alternate: batched first in repeats 1, 3, ...)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="pairs of runs (the machines are shared and noisy): the ratio reported is the median "
                             "pair's, every pair is kept under 'repeats'")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generate.json"))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    torch.set_num_threads(1)
    from robreward.envs.registry import get_task
    from robreward.rewards.program import load_reward_program

    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = write_programs(root, args.candidates)
        load_reward_program(files[0], get_task(args.task))  # start the dry-run sandbox before either clock runs
        # torch.optim's first optimizer imports torch._dynamo (~1 s); both paths build optimizers (the batched
        # one for its checkpoints), so that one-time import happens here, not on whichever path runs first
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        if args.backend != "cpu":  # MuJoCo Warp compiles its kernels on the first env: not on either clock
            import robreward

            warm = robreward.make(args.task, num_envs=args.worlds, backend=args.backend, device=args.device, seed=0)
            warm.reset(seed=0)
            warm.step(torch.zeros(args.worlds, warm.act_dim, device=warm.device))
            warm.close()
        pairs = []
        for repeat in range(args.repeats):
            batched_first = args.order == "batched-first" or (args.order == "alternate" and repeat % 2 == 0)
            order = ("batched", "sequential") if batched_first else ("sequential", "batched")
            runs = {}
            for name in order:
                runs[name] = (run_batched if name == "batched" else run_sequential)(files, args,
                                                                                   root / f"r{repeat}" / name)
                print(f"{name}: {runs[name]['wall_s']:.1f} s  "
                      f"{json.dumps({k: round(v, 1) for k, v in runs[name]['breakdown_s'].items()})}", flush=True)
            runs["order"] = "-".join(order)
            runs["speedup"] = runs["sequential"]["wall_s"] / runs["batched"]["wall_s"]
            print(f"repeat {repeat + 1}: {runs['speedup']:.2f}x", flush=True)
            pairs.append(runs)
    runs = sorted(pairs, key=lambda pair: pair["speedup"])[(len(pairs) - 1) // 2]  # the median pair (lower median)
    ratio = runs["speedup"]
    # how close each path's networks run to the matmul rate of these cores (compute-bound or not)
    from robreward.rl.config import PPOConfig
    from robreward.rl.multi import update_threads

    threads = {"batched": args.batched_threads or update_threads(args.candidates), "sequential": args.sequential_threads}
    per = network_gflop(args.task, args.steps, args.worlds)
    cfg = PPOConfig()
    rows, width = cfg.num_steps * args.worlds // cfg.num_minibatches, cfg.actor_hidden[0]
    for name in ("batched", "sequential"):
        peak = matmul_peak_gflops(args.candidates if name == "batched" else 1, rows, width, threads[name],
                                  device=args.device)
        spent = runs[name]["networks_s"]
        runs[name]["networks_gflop_per_s"] = {stage: args.candidates * per[stage] / spent[stage] for stage in per}
        runs[name]["matmul_peak_gflop_per_s"] = peak
        print(f"{name} networks: rollout {runs[name]['networks_gflop_per_s']['rollout']:.1f}, update "
              f"{runs[name]['networks_gflop_per_s']['update']:.1f} GFLOP/s; hidden-layer matmul peak {peak:.1f}")
    result = {
        "benchmark": "generate: K candidates trained at once vs sequentially",
        "task": args.task, "candidates": args.candidates, "steps_per_candidate": args.steps,
        "worlds_per_candidate": args.worlds, "seed": args.seed, "order": args.order,
        "backend": args.backend, "device": args.device,
        "torch_threads": threads, "network_gflop_per_candidate": per,
        "batched": runs["batched"], "sequential": runs["sequential"],
        "speedup_sequential_over_batched": ratio,
        "repeats": [{"order": pair["order"], "speedup": pair["speedup"], "batched_wall_s": pair["batched"]["wall_s"],
                     "sequential_wall_s": pair["sequential"]["wall_s"],
                     "batched_breakdown_s": pair["batched"]["breakdown_s"],
                     "sequential_breakdown_s": pair["sequential"]["breakdown_s"]} for pair in pairs],
        "speedup_min_max": [min(p["speedup"] for p in pairs), max(p["speedup"] for p in pairs)],
        "cpu_bound": cpu_bound(runs, machine["cpus_usable"]) if args.device == "cpu" else None,
        "target": ">= 4x on CPU at small budgets (issue 5); >= 8x on a GPU",
        "machine": machine, "load_avg_at_end": os.getloadavg(),
        "note": "wall-clock on a shared machine: background jobs' load is in load_avg_at_start/end",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    speedups = ", ".join(f"{pair['speedup']:.2f}" for pair in pairs)
    every = f" (median of {len(pairs)}: {speedups})" if len(pairs) > 1 else ""
    print(f"speedup (sequential / batched): {ratio:.2f}x{every}")
    bound = result["cpu_bound"]
    if bound is not None:
        print(f"batched CPU work {runs['batched']['cpu_s']['total']:.1f} core-s ({runs['batched']['cores_busy']:.2f} "
              f"cores busy): at best {bound['batched_min_wall_s']:.1f} s on {bound['cores']} cores, "
              f"{bound['max_speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
