"""The one training engine: a persistent `Trainer` of K PPO policies in one BatchedEnv of K x M
worlds (K reward candidates; a single run is K=1), each writing the run directory of docs/architecture.md.

    trainer = Trainer([TrainConfig(task="reach", steps=200_000, out="runs/reach")])
    trainer.learn()            # to the budget (or learn(steps): to that many env steps per candidate)
    trainer.set_reward(model)  # a new reward from the next step on (the preference loop)
    trainer.save()             # checkpoints/latest.pt of every live candidate
    results = trainer.finish() # checkpoint, policy.onnx, MODEL_CARD.md, eval.json (or failed.json)

The final evaluation (eval.json and the model card's numbers) is ``evaluate``, a function with
robreward.eval.evaluate's signature passed by the caller: rl sits below eval and never imports it
(the CLI, generate and the scripts pass ``robreward.eval.evaluate``). Without it no eval.json is written.

What candidate k sees is what a separate K=1 run of its config sees (seeding, resets, rewards, the
PPO update): the env's world groups give it its own reset RNG, its reward is evaluated on its group
only (candidates.CandidateRewards), its network is initialised after ``torch.manual_seed(seed)``
and its action noise and mini-batches come from its own generator continuing that stream; the
numbers match up to float rounding (a batched matmul sums in another order).

A single run (K=1, ``isolate_failures`` False) trains on the env's reward directly: a reward that
raises stops the run, and one that is invalid on more than validity.invalid_reward_limit of the
budget fails it with InvalidRewardError and failed.json. With K candidates a failing candidate is
isolated instead: its worlds get reward 0, its policy is frozen, failed.json gets the reason, and
the others train on.

Checkpoints (``save``/``load``) are per candidate in runner.py's plain-data format (its network,
torch.optim.Adam's state dict, learning rate, reward-scaler statistics, RNG states with its own
generator's as torch's), so old run directories resume here and either runner continues the other's
checkpoints. A resumed run restarts every episode (reset with seed + 7919 * update).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import robreward
from robreward.rl.candidates import CandidateRewards, load_rewards
from robreward.rl.checkpoint import load_checkpoint, restore_rng, rng_state
from robreward.rl.config import TrainConfig
from robreward.rl.export import POLICY_FILE, DeterministicPolicy, export_onnx, load_policy
from robreward.rl.logger import EpisodeTracker, RunLog
from robreward.rl.ppo import PPO, ActorCritic, BatchedActorCritic, RewardNormalizer
from robreward.rl.rollout import Timers, collect_rollout
from robreward.rl.storage import RolloutStorage
from robreward.rl.validity import InvalidRewardError, invalid_reward_limit, invalid_reward_message
from robreward.rundir import LATEST, SCHEMA_VERSION, RunDir

SHARED = ("task", "num_envs", "backend", "device", "ppo", "init_from_demos", "bc_epochs", "bc_noise_std",
          "reset_from_demos", "demo_reset_fraction")  # what K candidates of one Trainer share
# (each candidate may have its own seed: K rewards x M seeds as K*M candidates, one world group each)


class Trainer:
    """K PPO policies trained at once, one run directory each (module docstring).

    configs: one TrainConfig per candidate (same task, worlds, backend, device and PPO config; each its own
    seed or one for all: a candidate with seed s starts as a separate run of seed s).
    rewards: a Reward object or spec per candidate (default: each config's reward; then config.reward
    is only its label). resume_from: each candidate's checkpoint to continue from (all at one step).
    rollout_threads/update_threads: torch's threads while collecting and during the PPO update
    (default: config.torch_threads). periodic_checkpoints: also keep step_*.pt every checkpoint_every.
    evaluate: the final evaluation (robreward.eval.evaluate's signature; finish_with_eval), None for none."""

    def __init__(self, configs: Sequence[TrainConfig], rewards: Sequence | None = None, *,
                 resume_from: Sequence | None = None, isolate_failures: bool | None = None,
                 rollout_threads: int | None = None, update_threads: int | None = None,
                 periodic_checkpoints: bool = True, evaluate=None):
        self.configs = list(configs)
        self.evaluate = evaluate
        _check_shared(self.configs)
        first = self.configs[0]
        self.num, self.per, self.cfg = len(self.configs), first.num_envs, first.ppo
        self.isolate = self.num > 1 if isolate_failures is None else bool(isolate_failures)
        self.run_dirs = [Path(c.out) for c in self.configs]
        self.runs = [RunDir(path) for path in self.run_dirs]  # their files, through robreward.rundir
        self.locks: list = []  # each run directory locked while this trainer writes it (RunDir.lock)
        new_dirs = [run.path for run in self.runs if not run.path.exists()]
        try:
            for run in self.runs:
                self.locks.append(run.lock())
            self._setup(resume_from, rewards, rollout_threads, update_threads, periodic_checkpoints)
        except BaseException:
            self._release()
            for path in new_dirs:  # a trainer that could not start leaves no empty run directory behind
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            raise

    def _setup(self, resume_from, rewards, rollout_threads, update_threads, periodic_checkpoints) -> None:
        first = self.configs[0]
        self.rollout_threads = int(rollout_threads or first.torch_threads)
        self.update_threads = int(update_threads or first.torch_threads)
        self.periodic = periodic_checkpoints
        torch.set_num_threads(max(1, self.rollout_threads))
        self.env, self.rewards = self._make_env(rewards)
        self.device = self.env.device
        self.bc_stats = self._init_networks(warm_start=resume_from is None)
        self.ppo = PPO(self.net, self.cfg, self.generators)
        self.reward_scaler = (RewardNormalizer(self.num * self.per, self.cfg.gamma, groups=self.num, device=self.device)
                              if self.cfg.normalize_rewards else None)
        self.storage = RolloutStorage(self.cfg.num_steps, self.num * self.per, self.env.obs_dim, self.env.act_dim,
                                      self.device, groups=self.num)
        self.hand_only = [c.reward == "hand" for c in self.configs]
        self.tracker = EpisodeTracker(self.num * self.per, self.device, track_hand_terms=not all(self.hand_only),
                                      groups=self.num, horizon=self.env.spec.fitness_horizon)
        self.global_step, self.update, self.elapsed_before = 0, 0, 0.0
        self.invalid = [0] * self.num  # world-steps with an invalid reward, per candidate
        self.failed_at: list[int | None] = [0 if f is not None else None for f in self.failed]
        self.stats: list[dict] = [{} for _ in range(self.num)]
        self.timers = Timers()
        if resume_from is not None:
            self.load(resume_from)
        self.logs = self._open_run_dirs(resumed=resume_from is not None)
        self._invalid_seen = self._invalid_counts()
        self.restart_episodes()  # a resumed run restarts every episode
        # torch.optim's first optimizer imports torch._dynamo (about 1 s); the checkpoints hold Adam's
        # state in torch.optim's format, so the first save would pay it inside the training clock
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
        self._start = time.perf_counter()

    # -- setup ------------------------------------------------------------------------------------
    def _make_env(self, rewards):
        first = self.configs[0]
        specs = list(rewards) if rewards is not None else [c.reward for c in self.configs]
        if len(specs) != self.num:
            raise ValueError(f"need one reward per config: got {len(specs)} reward(s) for {self.num} config(s)")
        task = first.task
        if first.reset_from_demos:  # a share of the training resets start at demo states (evaluation: the task's)
            from robreward.demos.resets import with_demo_resets
            from robreward.envs.registry import get_task

            task = with_demo_resets(get_task(first.task), first.reset_from_demos, first.demo_reset_fraction)
        if not self.isolate:  # the env's own reward: a reward that raises stops the run
            if self.num != 1:
                raise ValueError("isolate_failures=False trains one candidate only (K=1)")
            env = robreward.make(task, self.per, backend=first.backend, device=first.device, seed=first.seed,
                                 reward=specs[0])
            return env, None
        env = robreward.make(task, self.num * self.per, backend=first.backend, device=first.device,
                             seed=self._env_seed(), groups=self.num)
        loaded, errors = load_rewards(specs, env.spec)
        candidates = CandidateRewards([r if r is not None else _never for r in loaded],
                                      [c.reward for c in self.configs], self.per,
                                      max_invalid=invalid_reward_limit(first.steps), budget=first.steps)
        candidates.failed = list(errors)
        env.set_reward(candidates)  # env.hand_reward stays the task's hand reward, computed once for all worlds
        return env, candidates

    def _env_seed(self, offset: int = 0):
        """The env's reset seed: one int when the candidates share their seed, else one per world group."""
        seeds = [c.seed + offset for c in self.configs]
        return seeds[0] if len(set(seeds)) == 1 else seeds

    @property
    def failed(self) -> list[str | None]:
        """Each candidate's failure (None: training); a single run raises instead."""
        return self.rewards.failed if self.rewards is not None else [None]

    def _init_networks(self, warm_start: bool) -> dict | None:
        """K ActorCritics, each initialised as a separate run would (torch.manual_seed(seed) first), an
        optional BC warm start, and per-candidate generators continuing that run's global torch RNG."""
        first, env = self.configs[0], self.env
        if len({c.seed for c in self.configs}) > 1:
            return self._init_networks_per_seed(warm_start)
        seed_everything(first.seed)
        models = [ActorCritic(env.obs_dim, env.act_dim, self.cfg)]
        for _ in range(self.num - 1):
            torch.manual_seed(first.seed)
            models.append(ActorCritic(env.obs_dim, env.act_dim, self.cfg))
        bc_stats = None
        if first.init_from_demos and warm_start:  # the actor imitates the demos before PPO
            from robreward.demos.bc import bc_pretrain

            for model in models:
                bc_stats = bc_pretrain(model.actor, model.normalizer, first.init_from_demos, epochs=first.bc_epochs,
                                       lr=self.cfg.learning_rate, task=env.spec, seed=first.seed)
                model.log_std.data.fill_(math.log(first.bc_noise_std))
        state = torch.get_rng_state() if self.device.type == "cpu" else torch.cuda.get_rng_state(self.device)
        self.generators = []
        for _ in range(self.num):
            self.generators.append(torch.Generator(device=self.device))
            self.generators[-1].set_state(state.clone())
        self.net = BatchedActorCritic(models, self.cfg).to(self.device)
        return bc_stats

    def _init_networks_per_seed(self, warm_start: bool) -> dict | None:
        """Candidates with their own seeds: each network (and BC warm start) made after seed_everything(its
        seed), its generator continuing that stream, as a separate run of that seed would."""
        first, env, models, self.generators, bc_stats = self.configs[0], self.env, [], [], None
        for config in self.configs:
            seed_everything(config.seed)
            models.append(ActorCritic(env.obs_dim, env.act_dim, self.cfg))
            if first.init_from_demos and warm_start:
                from robreward.demos.bc import bc_pretrain

                bc_stats = bc_pretrain(models[-1].actor, models[-1].normalizer, first.init_from_demos,
                                       epochs=first.bc_epochs, lr=self.cfg.learning_rate, task=env.spec,
                                       seed=config.seed)
                models[-1].log_std.data.fill_(math.log(first.bc_noise_std))
            state = torch.get_rng_state() if self.device.type == "cpu" else torch.cuda.get_rng_state(self.device)
            self.generators.append(torch.Generator(device=self.device))
            self.generators[-1].set_state(state.clone())
        self.net = BatchedActorCritic(models, self.cfg).to(self.device)
        return bc_stats

    def _open_run_dirs(self, resumed: bool) -> list[RunLog]:
        logs = []
        for config, run in zip(self.configs, self.runs):
            run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            run.clear_failed()  # a new attempt; it writes its own record if it fails
            run.write_config(config.to_dict())
            logs.append(RunLog(run.path, config.steps, f"{config.task} [{config.reward}]", config.progress,
                               resume_step=self.global_step if resumed else None))
        return logs

    # -- training ---------------------------------------------------------------------------------
    def set_reward(self, reward, k: int = 0, label: str | None = None) -> None:
        """Candidate k trains on ``reward`` (a Reward object) from the next step on; label: its new name
        in config.yaml, checkpoints and the model card."""
        if self.rewards is None:
            self.env.set_reward(reward)
        else:
            self.rewards.rewards[k] = reward
        if label is not None and label != self.configs[k].reward:
            self.configs[k] = dataclasses.replace(self.configs[k], reward=label)
            self.runs[k].write_config(self.configs[k].to_dict())

    def restart_episodes(self) -> None:
        """Every world starts a fresh episode (reset with seed + 7919 * update), as a resumed run's do: a
        caller that changes the reward between phases and restarts them trains exactly as if it had
        been killed and resumed there (the preference loop does, so a resumed run repeats its numbers)."""
        self.obs, _ = self.env.reset(seed=self._env_seed(7919 * self.update))

    def learn(self, steps: int | None = None) -> list[dict]:
        """Train until every live candidate has ``steps`` env steps (default: its config's budget);
        each candidate's latest episode statistics. Checkpoints every latest_every updates."""
        target = self.configs[0].steps if steps is None else int(steps)
        while self.global_step < target and any(f is None for f in self.failed):
            self._iteration()
        return self.stats

    def _iteration(self) -> None:
        """One rollout, one PPO update of every live candidate, its logs and checkpoints."""
        t0 = time.perf_counter()
        self.obs = collect_rollout(self.env, self.net, self.generators, self.storage, self.obs, self._track,
                                   self.reward_scaler, self.cfg.gamma, self.cfg.gae_lambda, self.timers)
        collect_s = time.perf_counter() - t0
        for k, error in enumerate(self.failed):  # isolate candidates whose reward failed during this rollout
            if error is not None and self.failed_at[k] is None:
                self.failed_at[k] = self.global_step
        self.ppo.active = torch.tensor([f is None for f in self.failed])
        mark = time.perf_counter()
        with _threads(self.update_threads, self.rollout_threads):
            results = self.ppo.update(self.storage)
        self.storage.clear()
        mark = self.timers.add("update", mark)
        self.update += 1
        self.global_step += self.cfg.num_steps * self.per
        self._log(results, collect_s, time.perf_counter() - t0)
        latest, periodic = self.update % self.configs[0].latest_every == 0, self.update % self.configs[0].checkpoint_every == 0
        if latest or periodic:
            self.save(periodic=periodic and self.periodic)
        self.timers.add("overhead", mark)

    def _track(self, reward, info, done) -> None:
        """Fold one step into the episode statistics; with K candidates each one's own reward terms into
        its group (masked where a world was reset for non-finite physics, as the env masks its terms)."""
        if self.rewards is None:
            self.tracker.step(reward, info, done)
            return
        done_f = self.tracker.step(reward, info, done, reward_terms=False)
        keep = ~info["nan_reset"]
        for k, terms in enumerate(self.rewards.terms):
            if self.rewards.failed[k] is None and terms:
                rows = keep[k * self.per:(k + 1) * self.per]
                self.tracker.add_terms(k, {name: torch.where(rows, v, 0.0) for name, v in terms.items()}, done_f)

    def _invalid_counts(self) -> list[int]:
        return list(self.rewards.invalid) if self.rewards is not None else [self.env.reward_invalid_count]

    def _log(self, results, collect_s: float, iter_s: float) -> None:
        """A progress.csv row and TensorBoard scalars per live candidate; a single run over its limit of
        invalid rewards fails here (failed.json, InvalidRewardError)."""
        means, counts = self.tracker.collect_groups(), self._invalid_counts()
        transitions = self.cfg.num_steps * self.per
        for k, log in enumerate(self.logs):
            if self.failed_at[k] is not None:
                continue
            self.stats[k] = {key: v for key, v in means[k].items()
                             if not (self.hand_only[k] and key.startswith("hand_terms/"))}
            invalid_now = counts[k] - self._invalid_seen[k]
            self.invalid[k] += invalid_now
            log.log(self.global_step, self.update, self.elapsed(), transitions / iter_s, collect_s, self.stats[k],
                    results[k], float(self.net.log_std[k].detach().exp().mean()), invalid=(invalid_now, transitions))
        self._invalid_seen = counts
        if self.rewards is None and self.invalid[0] > invalid_reward_limit(self.configs[0].steps):
            fail_invalid_reward(self.run_dirs[0], self.configs[0], self.invalid[0], self.global_step)

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._start

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoint_state(self, k: int) -> dict:
        """Candidate k's checkpoint in runner.py's plain-data format (its torch RNG state: its generator's)."""
        config, env, model = self.configs[k], self.env, self.net.unstack(k)
        rng = rng_state()
        if self.generators[k].device.type == "cpu":
            rng["torch"] = self.generators[k].get_state()
        state = {"model": model.state_dict(), "optimizer": self.ppo.torch_adam_state(k, model),
                 "learning_rate": float(self.ppo.learning_rate[k]), "global_step": self.global_step,
                 "update": self.update, "elapsed_s": self.elapsed(), "rng": rng, "reward_invalid": self.invalid[k],
                 "reward_scaler": self.reward_scaler.state_dict(k) if self.reward_scaler is not None else None,
                 "config": {"schema_version": SCHEMA_VERSION, **config.to_dict()}, "task": env.spec.name, "task_version": env.spec.version,
                 "obs_dim": env.obs_dim, "act_dim": env.act_dim, "action_low": env.action_low.cpu(),
                 "action_high": env.action_high.cpu()}
        if self.isolate:
            state["trainer"] = "batched"
        return state

    def save(self, periodic: bool = False) -> None:
        """checkpoints/latest.pt of every live candidate (and step_*.pt when periodic); flushes the logs."""
        for k, run in enumerate(self.runs):
            if self.failed_at[k] is None:
                run.save_checkpoint(self.checkpoint_state(k), periodic=periodic)
                self.logs[k].flush()

    def load(self, paths: Sequence) -> None:
        """Continue each candidate from its checkpoint (either runner's; all at one step)."""
        checkpoints = [load_checkpoint(path) for path in paths]
        steps = sorted({int(c["global_step"]) for c in checkpoints})
        if len(checkpoints) != self.num or len(steps) != 1:
            raise ValueError(f"resuming needs one checkpoint per candidate, all at one step; got {len(checkpoints)} "
                             f"for {self.num} candidate(s) at steps {steps}: resume the run dirs of each step apart")
        self.global_step, self.update = steps[0], int(checkpoints[0]["update"])
        self.elapsed_before = max(float(c.get("elapsed_s", 0.0)) for c in checkpoints)
        if self.num == 1:
            restore_rng(checkpoints[0]["rng"])
        for k, ckpt in enumerate(checkpoints):
            model = ActorCritic(self.env.obs_dim, self.env.act_dim, self.cfg)
            model.load_state_dict(ckpt["model"])
            self.net.load_candidate(k, model)
            self.ppo.adam_step = self.ppo.load_torch_adam_state(k, model, ckpt["optimizer"]) or self.ppo.adam_step
            self.ppo.learning_rate[k] = float(ckpt["learning_rate"])
            if self.generators[k].device.type == "cpu":  # runner.py saves the CPU generator's state
                self.generators[k].set_state(ckpt["rng"]["torch"])
            if self.reward_scaler is not None and ckpt.get("reward_scaler") is not None:
                self.reward_scaler.load_state_dict(ckpt["reward_scaler"], group=k)
            self.invalid[k] = int(ckpt.get("reward_invalid", 0))
            if self.rewards is not None:
                self.rewards.invalid[k] = self.invalid[k]
            else:
                self.env.reward_invalid_count = self.invalid[k]

    # -- the end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the logs and the env, and let the run directories go (idempotent)."""
        self._close_io()
        self._release()

    def _close_io(self) -> None:
        for log in getattr(self, "logs", []):
            log.close()
        self.logs = []
        self.env.close()

    def _release(self) -> None:
        for lock in self.locks:
            lock.release()

    def finish(self, card_extra: dict | None = None, on_done=None) -> list[dict]:
        """Per candidate: failed.json, or its checkpoint, policy.onnx, MODEL_CARD.md and eval.json; then close.
        Returns [{"run_dir", "steps", "failed", "stats", "eval"}]; on_done(k, run_dir) after each candidate."""
        try:
            return self._finish(card_extra, on_done)
        finally:
            self._release()  # after the exports: they write into the run directories too

    def _finish(self, card_extra: dict | None, on_done) -> list[dict]:
        self.seconds = seconds = self.elapsed()
        for k in range(self.num):
            if self.failed_at[k] is None:
                self.runs[k].save_checkpoint(self.checkpoint_state(k))
        self._close_io()
        records = []
        for k, (config, run_dir) in enumerate(zip(self.configs, self.run_dirs)):
            record = {"run_dir": str(run_dir), "steps": self.global_step, "failed": self.failed[k],
                      "stats": self.stats[k], "eval": None}
            if record["failed"] is None:
                try:
                    record["eval"] = self._export(k, seconds, card_extra or {})
                except Exception as err:  # noqa: BLE001 - an export/eval failure is this candidate's alone
                    if not self.isolate:
                        raise
                    record["failed"] = f"{type(err).__name__}: {err}"
            if record["failed"] is not None:
                at = self.failed_at[k] if self.failed_at[k] is not None else self.global_step
                self.runs[k].write_failed({"error": record["failed"], "step": at, "trainer": "batched",
                                           "reward_invalid": self._invalid_counts()[k]})
            records.append(record)
            if on_done is not None:
                on_done(k, str(run_dir))
        return records

    def _export(self, k: int, seconds: float, extra: dict) -> dict | None:
        config, run_dir, env, stats = self.configs[k], self.run_dirs[k], self.env, self.stats[k]
        model = self.net.unstack(k)
        export_onnx(DeterministicPolicy(model.normalizer, model.actor, env.action_low.cpu(), env.action_high.cpu()),
                    env.obs_dim, run_dir / POLICY_FILE)
        card_extra = {"training time (s)": round(seconds, 1), "final train return": stats.get("return", float("nan")),
                      "final train success": stats.get("success", float("nan")),
                      **invalid_reward_card(self.invalid[k], self.global_step), **extra}
        if self.bc_stats is not None:
            bc = self.bc_stats
            card_extra["BC warm start"] = (f"{config.init_from_demos}: {bc['samples']} samples, {bc['epochs']} epochs, "
                                           f"MSE {bc['loss_first']:.3g} -> {bc['loss_last']:.3g}, then noise std "
                                           f"{config.bc_noise_std:g}")
        if config.reset_from_demos:
            card_extra["demo-state resets"] = (f"{config.reset_from_demos}: {config.demo_reset_fraction:g} of the "
                                               "training resets (evaluation: the task's own)")
        if self.isolate:
            card_extra["trainer"] = (f"batched: {self.num} candidates x {self.per} worlds in one env "
                                     "(robreward.rl.trainer)")
        self.runs[k].write_model_card(config.to_dict(), env.spec, self.global_step, None, card_extra)
        return finish_with_eval(config, run_dir, env.spec, self.global_step, card_extra, self.evaluate)

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _threads:
    """torch's intra-op threads set to `inside` for a block, then back to `outside` (no call if equal)."""

    def __init__(self, inside: int, outside: int):
        self.inside, self.outside = max(1, inside), max(1, outside)

    def __enter__(self):
        if self.inside != self.outside:
            torch.set_num_threads(self.inside)

    def __exit__(self, *exc):
        if self.inside != self.outside:
            torch.set_num_threads(self.outside)


def _check_shared(configs: Sequence[TrainConfig]) -> None:
    if not configs:
        raise ValueError("a Trainer needs at least one TrainConfig")
    for name in SHARED:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise ValueError(f"the candidates of one Trainer must share {name}; got {sorted(values)}")
    if any(c.algo != "ppo" for c in configs):
        raise ValueError("the Trainer is robreward's PPO (algo='ppo'); train algo='sb3' with robreward.rl.sb3")


def _never(state, action):
    raise RuntimeError("this candidate's reward failed to load")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- run directory writes (through robreward.rundir) -----------------------------------------------------
def fail_invalid_reward(run_dir: Path, config: TrainConfig, count: int, step: int, trainer: str = "single") -> None:
    """Record (failed.json) and raise InvalidRewardError: the run's reward was invalid too often."""
    message = invalid_reward_message(config.reward, count, step, config.steps)
    RunDir(run_dir).write_failed({"error": f"InvalidRewardError: {message}", "step": step, "trainer": trainer,
                                  "reward_invalid": count, "reward_invalid_limit": invalid_reward_limit(config.steps)})
    raise InvalidRewardError(message)


def invalid_reward_card(count: int, steps: int) -> dict:
    """The model card's line on invalid rewards (world-steps whose reward was replaced by 0)."""
    share = count / steps if steps else 0.0
    return {"invalid reward (world-steps set to 0)": f"{count:,} of {steps:,} ({100 * share:.3g}%)"}


def finish_with_eval(config: TrainConfig, run_dir: Path, spec, steps: int, card_extra: dict,
                     evaluate=None) -> dict | None:
    """Evaluate policy.onnx with ``evaluate`` (robreward.eval.evaluate, passed from above rl) into eval.json
    and the model card; None without it or with eval_episodes 0."""
    if config.eval_episodes <= 0 or evaluate is None:
        return None
    result = evaluate(config.task, load_policy(run_dir / POLICY_FILE), episodes=config.eval_episodes,
                      seed=config.seed, reward_name=config.reward)
    run = RunDir(run_dir)
    run.write_eval(result)
    run.write_model_card(config.to_dict(), spec, steps, result, card_extra)
    return result


__all__ = ["LATEST", "Trainer", "fail_invalid_reward", "finish_with_eval", "invalid_reward_card"]
