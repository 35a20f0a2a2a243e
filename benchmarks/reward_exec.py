"""Cost of running a reward program as its compiled graph, against calling the same Python function
directly (what robreward did before issue 19), and env.step throughput with it against the hand reward.

1. Per call, at 64, 256 and 4096 worlds: every program below on states of push (recorded from a
   seeded random rollout), the compiled graph (``RewardProgram.__call__``: field lookup + generated
   code over the graph) against the eager Python ``compute_reward`` on the same TaskState;
   repeats interleaved, medians reported, and their ratio (target <= 1.1).
2. env.step on push, 256 worlds, random actions: the env with the LLM-style program as its reward
   against the env with the hand reward (target >= 0.9).

The programs: examples/push_reward.py and the 8 push programs a capable LLM wrote in the recorded
run ../shared/transcripts/push-k4-2it (data from outside: read by path, never copied here).

    .venv/bin/python benchmarks/reward_exec.py [--repeats 15] [--device cpu|cuda]

Writes benchmarks/results/reward_exec.json with the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPT = ROOT.parent / "shared" / "transcripts" / "push-k4-2it" / "transcript"
TASK = "push"
WORLDS = (64, 256, 4096)
TARGET_CALL, TARGET_STEP = 1.1, 0.9


def programs() -> dict[str, str]:
    from robreward.codegen.extract import extract_program

    out = {"examples/push_reward.py": (ROOT / "examples" / "push_reward.py").read_text()}
    for path in sorted(TRANSCRIPT.glob("*.json")) if TRANSCRIPT.is_dir() else ():
        for i, text in enumerate(json.loads(path.read_text())["completion"]["texts"]):
            code = extract_program(text).code
            if code:
                out[f"push-k4-2it/{path.stem}/{i}"] = code
    return out


def _time(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def states_at(n: int, device: str):
    """A TaskState of push with n worlds after a few random steps."""
    import robreward

    env = robreward.make(TASK, n, seed=0, device=device)
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        action = env.action_low + (env.action_high - env.action_low) * torch.rand(n, env.act_dim, generator=gen).to(env.device)
        env.step(action)
    state = env.state
    env.close()
    return state


def per_call(progs: dict, repeats: int, device: str, worlds=WORLDS) -> list[dict]:
    from robreward.rewards import sandbox
    from robreward.rewards.program import load_reward_program

    rows = []
    compiled = {name: load_reward_program(src, TASK, name=name) for name, src in progs.items()}
    eager = {name: sandbox.load_function(src, name) for name, src in progs.items()}  # the baseline (trusted data)
    for n in worlds:
        state = states_at(n, device)
        action = state.action
        calls = max(20, 20_000 // n)
        for name in progs:
            direct = lambda f=eager[name]: f(state, action)  # noqa: E731
            graph = lambda f=compiled[name]: f(state, action)  # noqa: E731
            direct(), graph()  # first calls (allocator, bind at this N) outside the clock
            times = {"direct": [], "compiled": []}
            for r in range(repeats):
                for label, fn in (("direct", direct), ("compiled", graph)) if r % 2 == 0 else (
                        ("compiled", graph), ("direct", direct)):
                    if device != "cpu":
                        torch.cuda.synchronize()
                    times[label].append(_time(fn, calls))
                    if device != "cpu":
                        torch.cuda.synchronize()
            d, c = statistics.median(times["direct"]), statistics.median(times["compiled"])
            rows.append({"worlds": n, "program": name, "ops": len(compiled[name].graph.kinds),
                         "direct_us": round(d * 1e6, 2), "compiled_us": round(c * 1e6, 2), "ratio": round(c / d, 3)})
            print(f"N={n:<5} {name:<28} direct {d * 1e6:8.1f} us  compiled {c * 1e6:8.1f} us  ratio {c / d:.3f}",
                  flush=True)
    return rows


def env_steps(program: str, repeats: int, device: str, n: int = 256, steps: int = 50) -> dict:
    import robreward
    from robreward.rewards.program import load_reward_program

    envs = {"hand": robreward.make(TASK, n, seed=0, device=device),
            "program": robreward.make(TASK, n, seed=0, device=device,
                                      reward=load_reward_program(program, TASK, name="llm"))}
    gen = torch.Generator().manual_seed(0)
    actions = [(torch.rand(n, envs["hand"].act_dim, generator=gen) * 2 - 1).to(envs["hand"].device)
               for _ in range(steps)]
    for env in envs.values():
        env.reset(seed=0)
        env.step(actions[0])
    rates = {k: [] for k in envs}
    for r in range(repeats):
        for label in (("hand", "program") if r % 2 == 0 else ("program", "hand")):
            env = envs[label]
            start = time.perf_counter()
            for a in actions:
                env.step(a)
            rates[label].append(n * steps / (time.perf_counter() - start))
    for env in envs.values():
        env.close()
    hand, prog = statistics.median(rates["hand"]), statistics.median(rates["program"])
    print(f"env.step {TASK} N={n}: hand {hand:,.0f}/s  program {prog:,.0f}/s  ratio {prog / hand:.3f}", flush=True)
    return {"worlds": n, "hand_steps_per_s": round(hand), "program_steps_per_s": round(prog),
            "ratio": round(prog / hand, 3)}


def main(argv=None) -> int:
    from robreward.envs.bench import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worlds", default=",".join(map(str, WORLDS)), help="comma-separated world counts")
    parser.add_argument("--env-worlds", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "reward_exec.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    progs = programs()
    worlds = [int(w) for w in args.worlds.split(",")]
    rows = per_call(progs, args.repeats, args.device, worlds)
    llm = next((k for k in progs if k.startswith("push-k4-2it")), "examples/push_reward.py")
    step = env_steps(progs[llm], max(5, args.repeats // 3), args.device, n=args.env_worlds)
    summary = {n: statistics.median(r["ratio"] for r in rows if r["worlds"] == n) for n in worlds}
    report = {
        "benchmark": "reward_exec",
        "description": "seconds per call of a reward program's compiled graph vs the same Python function called "
                       "directly (medians of interleaved repeats, torch on 1 thread), and env.step throughput with "
                       f"an LLM-written program vs the hand reward on {TASK}",
        "device": args.device,
        "targets": {"compiled_over_direct_max": TARGET_CALL, "env_step_program_over_hand_min": TARGET_STEP},
        "median_ratio_by_worlds": summary,
        "env_step": step,
        "meets_targets": all(v <= TARGET_CALL for v in summary.values()) and step["ratio"] >= TARGET_STEP,
        "machine": machine_info(),
        "per_call": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("median compiled/direct by worlds:", {k: round(v, 3) for k, v in summary.items()}, f"-> wrote {out}")
    return 0 if report["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
