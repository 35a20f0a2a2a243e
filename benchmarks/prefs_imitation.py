"""One cell of `imitation`'s PreferenceComparisons (the comparison in benchmarks/prefs.py).

Runs in its own virtual environment (imitation 1.0.1 pins gymnasium 0.29 and SB3 2.2;
`make .venv-imitation` builds it), never imports robreward, and is started by
`benchmarks/prefs.py --imitation` once per (budget, seed):

    .venv-imitation/bin/python benchmarks/prefs_imitation.py --budget 200 --seed 0 --out DIR

What runs is imitation's own experiment script, `imitation.scripts.train_preference_comparisons`,
with its tuned `seals_half_cheetah` named config (its PPO hyperparameters, reward net, fragment
length 100, hyperbolic query schedule, synthetic oracle gatherer) on Gymnasium's HalfCheetah-v4,
for the same env-step and query budget as the robreward cell. Only the environment, the budgets,
the seed and the log directory are overridden.

The finished agent is then scored like robreward's policies: deterministic actions, 10 episodes
of HalfCheetah-v4 under its own reward, resets seeded 0..9. imitation's own score (its
`imit_stats`, 50 episodes with sampled actions) is kept beside it. DIR/result.json is written
last (atomically), so a cell with that file is finished and a killed one is simply rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ENV_ID = "HalfCheetah-v4"
EVAL_EPISODES = 10


def evaluate(model_zip: Path, episodes: int = EVAL_EPISODES) -> list[float]:
    """Undiscounted true returns of the saved agent, deterministic actions, resets seeded 0..n-1."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    agent = PPO.load(str(model_zip), device="cpu")
    env = gym.make(ENV_ID)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, required=True, help="total comparisons (queries)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps", type=int, default=1_000_000, help="PPO env steps (default 1000000)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="feedback iterations (default: the named config's 50; fewer only for smoke runs)")
    parser.add_argument("--out", required=True, help="cell directory")
    args = parser.parse_args(argv)

    import imitation
    import torch
    from imitation.scripts.train_preference_comparisons import train_preference_comparisons_ex

    torch.set_num_threads(1)  # as robreward's cells run (torch_threads=1): a fair share of the 2 cores

    out = Path(args.out)
    log_dir = out / "imitation"
    started = time.perf_counter()
    run = train_preference_comparisons_ex.run(
        named_configs=["seals_half_cheetah"],
        config_updates={"environment": {"gym_id": ENV_ID}, "total_timesteps": args.steps,
                        "total_comparisons": args.budget, "seed": args.seed,
                        "logging": {"log_dir": str(log_dir)},
                        **({"num_iterations": args.iterations} if args.iterations else {})})
    train_seconds = time.perf_counter() - started
    returns = evaluate(log_dir / "checkpoints" / "final" / "policy" / "model.zip")
    stats = run.result["imit_stats"]
    row = {"library": "imitation", "version": imitation.__version__, "env": ENV_ID, "config": "seals_half_cheetah",
           "queries": args.budget, "seed": args.seed, "steps": args.steps,
           "return_mean": sum(returns) / len(returns), "returns": returns,
           "imitation_eval_return_mean": stats["monitor_return_mean"], "imitation_eval_episodes": stats["n_traj"],
           "reward_accuracy": run.result.get("reward_accuracy"), "seconds": train_seconds,
           "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".result.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(row, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / "result.json")
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
