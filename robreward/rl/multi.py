"""K reward candidates trained at once: one BatchedEnv of K x M worlds (K world groups), K PPO
policies as one batched network, each candidate on its own reward (issue 5, step 5 of the loop).
The engine is robreward.rl.trainer.Trainer; train_many is its caller for K run directories.

    train_many("reach", ["hand", "cand_01/reward.py"], 49_152, 0, ["runs/a", "runs/b"])

World k*M .. (k+1)*M - 1 belong to candidate k. What each candidate sees is what a separate
`train(TrainConfig(num_envs=M, seed=seed, reward=...))` would see:

- resets: every candidate draws its initial states from its own reset RNG, seeded like the
  separate run's env (``np.random.default_rng(seed)``) and consumed in the same order
  (the env's world groups, ``BatchedEnv(..., groups=K)``), so a candidate's worlds start, and restart, where the separate run's do;
- rewards: candidate k's reward is evaluated on its slice of the TaskState only
  (`candidates.CandidateRewards`, ``state.index(slice)`` views, no copies);
- networks: each candidate's ActorCritic is initialised after ``torch.manual_seed(seed)`` as in
  the separate run, then the K MLPs are stacked into [K, ...] weights (`ppo.BatchedActorCritic`,
  one ``baddbmm`` per layer); action noise and mini-batch permutations come from one
  torch.Generator per candidate that continues the separate run's global RNG stream;
- PPO: per-candidate observation normalizer, log std, GAE, mini-batches, advantage
  normalisation, gradient-norm clip and adaptive-KL learning rate (a hand-written Adam over
  the stacked parameters with a [K] learning rate; the losses are summed over candidates, so
  gradients never mix).

The numbers then match a separate run up to floating-point rounding (a batched matmul sums in
another order than a single one), not bit for bit.

Each candidate gets the run directory of runner.py (config.yaml, progress.csv with CSV_FIELDS,
tb/ with the same tags incl. reward_terms/*, checkpoints/latest.pt at the end, policy.onnx,
MODEL_CARD.md, eval.json), so compare, reflection and `load_policy` read it unchanged. Every
step checks each candidate's reward on its own terms (`CandidateRewards`): a world whose total is
NaN/inf or whose terms do not sum to it gets reward 0 and is counted, as in a separate run. A
candidate whose reward raises, returns something other than float tensors [M] on the env's device,
or is invalid on more world-steps than a separate run may have (validity.invalid_reward_limit of
its budget) is isolated: its worlds get zero reward from then on, its policy stops updating, its
run dir gets failed.json with the reason, and the others train on.

Checkpoints and resume: every ``latest_every`` updates each live candidate's
checkpoints/latest.pt is written in runner.py's format (its own network, Adam state, learning
rate, reward-scaler statistics, and its torch generator's state as the run's torch RNG state).
``train_many(..., resume=True)`` continues K such run dirs (written by this trainer or by
runner.py, all at the same step) batched, with more steps if asked; as runner.resume does,
every world then starts a fresh episode (reset with seed + 7919 * update). So a killed batched
run loses at most ``latest_every`` updates, successive halving continues its survivors from
where the short run stopped, and either runner can continue the other's checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from robreward.rl.candidates import CandidateRewards, reward_name
from robreward.rl.config import PPOConfig, TrainConfig, demo_start_fields
from robreward.rl.ppo import BatchedActorCritic
from robreward.rl.trainer import LATEST, Trainer


def update_threads(num_candidates: int) -> int:
    """train_many's default torch threads for the PPO update: one per 8 candidates, up to the cores."""
    return min(os.cpu_count() or 1, max(1, num_candidates // 8))


def train_many(task, rewards: Sequence, steps_per_candidate: int, seed: int | Sequence[int], out_dirs: Sequence, *,
               num_envs_per_candidate: int = 32, ppo: PPOConfig | None = None, eval_episodes: int = 100,
               backend: str = "cpu", device="cpu", torch_threads: int | None = None, resume: bool = False,
               latest_every: int = 5, on_done: Callable[[int, str], None] | None = None, evaluate=None,
               demo_start: Mapping[str, Any] | None = None) -> dict:
    """Train one PPO policy per reward (a spec: hand, sparse, a reward file, or a Reward object)
    in one process on one K x M-world env; each into its own run dir (see the module docstring).
    ``seed``: one for every candidate, or one per candidate (candidate k then trains as a separate run of
    seed[k]: a reward listed M times with M seeds is trained on M seeds at once).
    ``resume``: continue every run dir from its checkpoints/latest.pt (all at one step) up to
    ``steps_per_candidate``; checkpoints are written every ``latest_every`` updates. torch_threads:
    torch's intra-op threads of the PPO update (default: one per 8 candidates, up to the cores: the
    K=16 update is 1.7x faster on 2 threads of 2 quiet cores; K=3 ones are too small to gain). The
    rollout's small policy forwards run on 1 thread (3x slower on 2 threads under load).

    Returns {"candidates": [{"run_dir", "steps", "failed" (error or None), "stats", "eval"}],
    "seconds", "timing" (seconds per stage: physics, rewards, policy, update, overhead, finish)}.
    on_done(k, run_dir) is called after candidate k's run dir is complete (or failed). evaluate: each
    candidate's final evaluation into eval.json (pass robreward.eval.evaluate; rl never imports eval).
    demo_start: every run's BC warm start and demo-state resets, as TrainConfig's fields (rl.config.DEMO_FIELDS,
    e.g. {"init_from_demos": FILE, "reset_from_demos": FILE, "demo_reset_fraction": 0.1})."""
    if len(rewards) != len(out_dirs) or not rewards:
        raise ValueError(f"need one run directory per reward: got {len(rewards)} reward(s) and "
                         f"{len(out_dirs)} run dir(s)")
    if steps_per_candidate < 1 or num_envs_per_candidate < 1 or latest_every < 1:
        raise ValueError(f"steps_per_candidate, num_envs_per_candidate and latest_every must be >= 1, got "
                         f"{steps_per_candidate}, {num_envs_per_candidate} and {latest_every}")
    cfg = ppo or PPOConfig()
    run_dirs = [Path(out) for out in out_dirs]
    threads = int(torch_threads or update_threads(len(rewards)))
    seeds = [int(seed)] * len(rewards) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != len(rewards):
        raise ValueError(f"need one seed, or one seed per reward: got {len(seeds)} seed(s) for {len(rewards)} reward(s)")
    demo = demo_start_fields(demo_start)
    configs = [TrainConfig(task=str(task), reward=reward_name(r), num_envs=int(num_envs_per_candidate),
                           steps=steps_per_candidate, seed=s, out=str(out), backend=backend, device=str(device),
                           torch_threads=threads, eval_episodes=eval_episodes, progress=False, ppo=cfg,
                           latest_every=latest_every, **demo)
               for r, s, out in zip(rewards, seeds, run_dirs)]
    resume_from = [d / "checkpoints" / LATEST for d in run_dirs] if resume else None
    trainer = Trainer(configs, list(rewards), resume_from=resume_from, isolate_failures=True, rollout_threads=1,
                      update_threads=threads, periodic_checkpoints=False, evaluate=evaluate)
    try:
        trainer.learn()
    except BaseException:
        trainer.close()
        raise
    seconds = trainer.elapsed()
    timing = dict(trainer.timers.seconds)
    timing["rewards"] = trainer.rewards.seconds
    timing["physics"] = timing.pop("env_step", 0.0) - trainer.rewards.seconds
    finish_start = time.perf_counter()
    records = trainer.finish(on_done=on_done)
    timing["finish"] = time.perf_counter() - finish_start
    return {"candidates": records, "seconds": seconds, "timing": timing}


__all__ = ["BatchedActorCritic", "CandidateRewards", "train_many", "update_threads"]
