"""K reward candidates trained at once: one BatchedEnv of K x M worlds, K PPO policies as one
batched network, each candidate on its own reward (issue 5, step 5 of the loop).

    train_many("reach", ["hand", "cand_01/reward.py"], 49_152, 0, ["runs/a", "runs/b"])

World k*M .. (k+1)*M - 1 belong to candidate k. What each candidate sees is what a separate
`train(TrainConfig(num_envs=M, seed=seed, reward=...))` would see:

- resets: every candidate draws its initial states from its own reset RNG, seeded like the
  separate run's env (``np.random.default_rng(seed)``) and consumed in the same order
  (`MultiCandidateEnv`), so a candidate's worlds start, and restart, where the separate run's do;
- rewards: candidate k's reward is evaluated on its slice of the TaskState only
  (`CandidateRewards`, ``state.index(slice)`` views, no copies);
- networks: each candidate's ActorCritic is initialised after ``torch.manual_seed(seed)`` as in
  the separate run, then the K MLPs are stacked into [K, ...] weights (`batched_ppo.BatchedActorCritic`,
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
from typing import Callable, Sequence

import numpy as np
import torch

from robreward.envs.batched import REWARD_SUM_TOLERANCE, BatchedEnv, invalid_rewards, reward_mismatch
from robreward.rewards.base import resolve_reward
from robreward.rl.config import PPOConfig, TrainConfig
from robreward.rl.export import POLICY_FILE, DeterministicPolicy, export_onnx, write_model_card
from robreward.rl.batched_ppo import BatchedActorCritic, BatchedPPO
from robreward.rl.ppo import ActorCritic, RewardNormalizer
from robreward.fileio import atomic_write_json
from robreward.rl.storage import bootstrap_truncated, compute_gae
from robreward.rl.validity import invalid_reward_limit

Tensor = torch.Tensor


# -- the env: K x M worlds, per-candidate reset RNGs --------------------------------------------
class MultiCandidateEnv(BatchedEnv):
    """A BatchedEnv of K*M worlds whose candidate k (worlds k*M .. (k+1)*M-1) draws its reset
    samples from its own RNG, seeded and consumed exactly as a separate M-world env's. One RNG
    for all K*M worlds would interleave the candidates' draws (a reset of candidate 0's worlds
    would shift candidate 1's samples), so no candidate could match a separate run."""

    def __init__(self, task, num_candidates: int, worlds_per_candidate: int, seed: int = 0, **kwargs):
        if num_candidates < 1 or worlds_per_candidate < 1:
            raise ValueError(f"need >= 1 candidate and >= 1 world per candidate, got {num_candidates} x "
                             f"{worlds_per_candidate}")
        self.num_candidates, self.worlds_per_candidate = int(num_candidates), int(worlds_per_candidate)
        super().__init__(task, num_envs=self.num_candidates * self.worlds_per_candidate, seed=seed, **kwargs)
        self._rngs = [np.random.default_rng(seed) for _ in range(self.num_candidates)]

    def _reset(self, seed: int | None = None):
        if seed is not None:
            self._rngs = [np.random.default_rng(seed) for _ in range(self.num_candidates)]
        return super()._reset(seed)

    def _reset_worlds(self, ids: np.ndarray) -> None:
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        owners = ids // self.worlds_per_candidate
        samples = [self.spec.sample_reset(self._rngs[k], int((owners == k).sum()), self.ctx) for k in np.unique(owners)]
        cat = lambda parts: np.concatenate(parts, axis=0)  # noqa: E731
        mocap = None if samples[0].mocap_pos is None else cat([s.mocap_pos for s in samples])
        fields = {name: cat([s.model_fields[name] for s in samples]) for name in samples[0].model_fields}
        self.sim.reset(ids, cat([s.qpos for s in samples]), cat([s.qvel for s in samples]), mocap, fields)
        self.episode_step[torch.as_tensor(ids, device=self.device)] = 0


class CandidateRewards:
    """The env's reward over K*M worlds: candidate k's Reward on its world slice only.

    Returns (total [K*M], {"total": total}); each candidate's own terms are kept in
    ``self.terms[k]`` ({name: [M]}). Every call checks each candidate's output on its own terms
    (batched.reward_mismatch: float tensors [M] on the env's device, a finite total that its terms
    sum to) with one fused reduction over all K*M worlds, and ``invalid[k]`` counts candidate k's
    invalid world-steps. An invalid world's terms become 0 and its total NaN: the env's guard then
    treats it as a separate run's env treats an invalid reward (reward 0, the episode ends as
    terminated, flagged in info["nan_reset"]), so the candidate's worlds keep stepping like that
    run's. A candidate fails (``failed[k]``: the reason; reward 0 from then on, never called
    again) when its reward raises, returns unusable tensors, or its count passes ``max_invalid``.

    max_invalid: the invalid world-steps each candidate may have. train_many gives each
    candidate what a separate run of its budget may have (validity.invalid_reward_limit), so a
    reward fails or passes alike whether its candidate trains batched, alone or on Ray; the
    default 0 fails a candidate at its first invalid world-step."""

    name = "candidates"

    def __init__(self, rewards: Sequence, names: Sequence[str], worlds_per_candidate: int, max_invalid: int = 0,
                 budget: int | None = None):
        self.rewards, self.names = list(rewards), list(names)
        self._named = [_Named(name) for name in self.names]
        self.per = int(worlds_per_candidate)
        self.max_invalid, self.budget = int(max_invalid), budget
        self.failed: list[str | None] = [None] * len(self.rewards)
        self.terms: list[dict[str, Tensor]] = [{} for _ in self.rewards]
        self.invalid = [0] * len(self.rewards)
        self.seconds = 0.0

    def __call__(self, state, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        start = time.perf_counter()
        total = torch.zeros(action.shape[0], device=action.device)
        mismatch = torch.zeros(action.shape[0], device=action.device)  # sum(terms) - total (failed candidates: 0)
        for k, reward in enumerate(self.rewards):
            self.terms[k] = {}
            if self.failed[k] is not None:
                continue
            rows = slice(k * self.per, (k + 1) * self.per)
            try:
                value, terms = reward(state.index(rows), action[rows])
                mismatch[rows] = reward_mismatch(value, terms, self.per, action.device, self._named[k])
            except Exception as err:  # noqa: BLE001 - one candidate's bug must not stop the others
                self.failed[k] = f"{type(err).__name__}: {err}"
                continue
            total[rows] = value
            self.terms[k] = {name: v.to(torch.float32) for name, v in terms.items()}
        if not float(mismatch.abs().amax()) <= REWARD_SUM_TOLERANCE:  # one check for all candidates (NaN fails it)
            invalid = invalid_rewards(mismatch, total)
            if bool(invalid.any()):
                self._zero_invalid(total, invalid)
        self.seconds += time.perf_counter() - start
        return total, {"total": total}

    def _zero_invalid(self, total: Tensor, invalid: Tensor) -> None:
        """Where invalid [K*M]: count per candidate, fail those over max_invalid (reward 0), else
        terms 0 and a NaN total for the env's guard (class docstring)."""
        counts = invalid.view(len(self.rewards), self.per).sum(1).tolist()
        for k in (k for k, count in enumerate(counts) if count):
            rows = slice(k * self.per, (k + 1) * self.per)
            self.invalid[k] += int(counts[k])
            if self.invalid[k] > self.max_invalid:
                what = ("returned non-finite values (NaN or inf)" if not bool(torch.isfinite(total[rows]).all())
                        else "returned terms that do not sum to the total")
                of_budget = f" ({self.budget:,} world-steps)" if self.budget else ""
                self.failed[k] = (f"InvalidRewardError: reward {self.names[k]!r} {what} in {self.invalid[k]:,} "
                                  f"world-step(s), over its limit of {self.max_invalid:,} for its budget{of_budget}; "
                                  "those steps got reward 0. Guard its divisions, logs and square roots, and make "
                                  "the total the sum of the terms")
                self.terms[k] = {}
                total[rows] = 0.0
                continue
            bad = invalid[rows]
            total[rows] = torch.where(bad, float("nan"), total[rows])
            self.terms[k] = {name: torch.where(bad, 0.0, v) for name, v in self.terms[k].items()}


class _Named:
    """What reward_mismatch's error message reads from a reward: its name."""

    def __init__(self, name: str):
        self.name = name


# -- the training loop ------------------------------------------------------------------------------
class _Timers:
    """Wall-clock seconds per stage, for benchmarks/generate.py's breakdown."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[key] = self.seconds.get(key, 0.0) + now - start
        return now


class _StdShim:
    """What runner._log reads from a policy: log_std."""

    def __init__(self, log_std: Tensor):
        self.log_std = log_std


def _reward_name(reward) -> str:
    if isinstance(reward, (str, os.PathLike)):
        text = str(reward)
        return str(Path(text).resolve()) if text.endswith(".py") else text
    return str(getattr(reward, "name", type(reward).__name__))


def _write_failed(run_dir: Path, error: str, step: int, reward_invalid: int = 0) -> None:
    atomic_write_json(run_dir / "failed.json", {"error": error, "step": step, "trainer": "batched",
                                                "reward_invalid": reward_invalid})


def _load_rewards(rewards, spec) -> tuple[list, list[str | None]]:
    """Each reward spec resolved (a reward file is checked and dry-run here, as train() does);
    a candidate whose reward fails to load is failed from the start."""
    loaded, errors = [], []
    for reward in rewards:
        try:
            if isinstance(reward, (str, os.PathLike)) and str(reward).endswith(".py") and not Path(reward).is_file():
                raise FileNotFoundError(f"reward file {str(reward)!r} not found")
            loaded.append(resolve_reward(str(reward) if isinstance(reward, os.PathLike) else reward, spec))
            errors.append(None)
        except Exception as err:  # noqa: BLE001 - recorded as the candidate's failure
            loaded.append(None)
            errors.append(f"{type(err).__name__}: {err}")
    return loaded, errors


def _initial_models(num: int, obs_dim: int, act_dim: int, cfg: PPOConfig, seed: int, device):
    """K ActorCritics, each initialised as a separate run would (torch.manual_seed(seed) first),
    and per-candidate generators continuing that run's global torch RNG stream."""
    from robreward.rl.runner import seed_everything

    seed_everything(seed)
    models = [ActorCritic(obs_dim, act_dim, cfg)]
    state = torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state(device)
    for _ in range(num - 1):
        torch.manual_seed(seed)
        models.append(ActorCritic(obs_dim, act_dim, cfg))
    generators = []
    for _ in range(num):
        generator = torch.Generator(device=device)
        generator.set_state(state.clone())
        generators.append(generator)
    return models, generators


def update_threads(num_candidates: int) -> int:
    """train_many's default torch threads for the PPO update: one per 8 candidates, up to the cores."""
    return min(os.cpu_count() or 1, max(1, num_candidates // 8))


def train_many(task, rewards: Sequence, steps_per_candidate: int, seed: int, out_dirs: Sequence, *,
               num_envs_per_candidate: int = 32, ppo: PPOConfig | None = None, eval_episodes: int = 100,
               backend: str = "cpu", device="cpu", torch_threads: int | None = None, resume: bool = False,
               latest_every: int = 5, on_done: Callable[[int, str], None] | None = None) -> dict:
    """Train one PPO policy per reward (a spec: hand, sparse, a reward file, or a Reward object)
    in one process on one K x M-world env; each into its own run dir (see the module docstring).
    ``resume``: continue every run dir from its checkpoints/latest.pt (all at one step) up to
    ``steps_per_candidate``; checkpoints are written every ``latest_every`` updates. torch_threads:
    torch's intra-op threads of the PPO update (default: one per 8 candidates, up to the cores: the
    K=16 update is 1.7x faster on 2 threads of 2 quiet cores; K=3 ones are too small to gain). The
    rollout's small policy forwards run on 1 thread (3x slower on 2 threads under load).

    Returns {"candidates": [{"run_dir", "steps", "failed" (error or None), "stats", "eval"}],
    "seconds", "timing" (seconds per stage: physics, rewards, policy, update, overhead, finish)}.
    on_done(k, run_dir) is called after candidate k's run dir is complete (or failed)."""
    from robreward.rl import runner

    if len(rewards) != len(out_dirs) or not rewards:
        raise ValueError(f"need one run directory per reward: got {len(rewards)} reward(s) and "
                         f"{len(out_dirs)} run dir(s)")
    if steps_per_candidate < 1 or num_envs_per_candidate < 1 or latest_every < 1:
        raise ValueError(f"steps_per_candidate, num_envs_per_candidate and latest_every must be >= 1, got "
                         f"{steps_per_candidate}, {num_envs_per_candidate} and {latest_every}")
    cfg = ppo or PPOConfig()
    num, per = len(rewards), int(num_envs_per_candidate)
    run_dirs = [Path(out) for out in out_dirs]
    names = [_reward_name(r) for r in rewards]
    torch_threads = int(torch_threads or update_threads(len(rewards)))
    configs = [TrainConfig(task=str(task), reward=name, num_envs=per, steps=steps_per_candidate, seed=seed,
                           out=str(out), backend=backend, device=str(device), torch_threads=torch_threads,
                           eval_episodes=eval_episodes, progress=False, ppo=cfg) for name, out in zip(names, run_dirs)]
    torch.set_num_threads(1)
    timers = _Timers()
    start = time.perf_counter()

    env = MultiCandidateEnv(task, num, per, seed=seed, backend=backend, device=device)
    loaded, load_errors = _load_rewards(rewards, env.spec)
    reward_fn = CandidateRewards([r if r is not None else _never for r in loaded], names, per,
                                 max_invalid=invalid_reward_limit(steps_per_candidate), budget=steps_per_candidate)
    reward_fn.failed = list(load_errors)
    env.reward_fn = reward_fn  # env.hand_reward stays the task's hand reward, computed once for all worlds
    device = env.device
    models, generators = _initial_models(num, env.obs_dim, env.act_dim, cfg, seed, device)
    checkpoints = _load_checkpoints(run_dirs, models) if resume else None
    net = BatchedActorCritic(models, cfg).to(device)
    learner = BatchedPPO(net, cfg, generators)
    reward_scaler = (RewardNormalizer(num * per, cfg.gamma, groups=num, device=device) if cfg.normalize_rewards
                     else None)
    global_step, update, elapsed_before = 0, 0, 0.0
    if checkpoints is not None:
        global_step, update = checkpoints[0]["global_step"], checkpoints[0]["update"]
        elapsed_before = max(c.get("elapsed_s", 0.0) for c in checkpoints)
        for k, (model, ckpt) in enumerate(zip(models, checkpoints)):
            learner.adam_step = learner.load_torch_adam_state(k, model, ckpt["optimizer"]) or learner.adam_step
            learner.learning_rate[k] = float(ckpt["learning_rate"])
            if generators[k].device.type == "cpu":  # runner.py saves the CPU generator's state
                generators[k].set_state(ckpt["rng"]["torch"])
            if reward_scaler is not None and ckpt.get("reward_scaler") is not None:
                reward_scaler.load_state_dict(ckpt["reward_scaler"], group=k)
            reward_fn.invalid[k] = int(ckpt.get("reward_invalid", 0))

    logs = []
    for k, (config, run_dir) in enumerate(zip(configs, run_dirs)):
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "failed.json").unlink(missing_ok=True)
        runner.write_config(run_dir, config)
        csv_file, csv_writer = runner._open_progress(run_dir, keep_until=global_step if resume else None)
        logs.append({"writer": runner._summary_writer(run_dir, purge_step=global_step if resume else None),
                     "csv_file": csv_file, "csv": csv_writer, "bar": runner._progress_bar(config, global_step)})
    # episode statistics of all K x M worlds in one tracker, means per candidate; a candidate trained on
    # the hand reward leaves the hand terms out (runner.py's tracker does not track them either)
    hand_only = [config.reward == "hand" for config in configs]
    tracker = runner.EpisodeTracker(num * per, device, track_hand_terms=not all(hand_only), groups=num)
    failed_at: list[int | None] = [0 if e is not None else None for e in load_errors]
    rollout_len, transitions = cfg.num_steps, cfg.num_steps * per
    shape = (rollout_len, num, per)
    buffers = {"obs": torch.zeros(*shape, env.obs_dim, device=device),
               "actions": torch.zeros(*shape, env.act_dim, device=device),
               "action_mean": torch.zeros(*shape, env.act_dim, device=device),
               "action_std": torch.zeros(*shape, env.act_dim, device=device),
               **{key: torch.zeros(shape, device=device) for key in ("log_probs", "values", "rewards", "dones")}}
    stats: list[dict] = [{} for _ in range(num)]
    invalid_seen = list(reward_fn.invalid)
    obs, _ = env.reset(seed=seed + 7919 * update)  # as runner.py: a resumed run restarts every episode
    try:
        while global_step < steps_per_candidate and any(f is None for f in reward_fn.failed):
            t0 = mark = time.perf_counter()
            # 1. rollout: one env step for all K x M worlds, K policies in one batched forward
            with torch.no_grad():
                for t in range(rollout_len):
                    obs3 = obs.view(num, per, -1)
                    obs_norm = net.normalize(obs3, update=True)
                    action, log_prob, value, mean, std = net.act(obs_norm, generators)
                    mark = timers.add("policy", mark)
                    obs, reward, terminated, truncated, info = env.step(action.reshape(num * per, -1))
                    mark = timers.add("env_step", mark)
                    done = terminated | truncated
                    _track(tracker, reward, info, done, reward_fn, per)
                    if reward_scaler is not None:
                        reward = reward_scaler(reward, done)
                    if bool(truncated.any()):  # time-out: bootstrap from the true last observation
                        final_values = net.value(net.normalize(info["final_obs"].view(num, per, -1))).reshape(-1)
                        reward = bootstrap_truncated(reward, truncated, final_values, cfg.gamma)
                    for key, val in (("obs", obs_norm), ("actions", action), ("log_probs", log_prob),
                                     ("values", value), ("action_mean", mean), ("action_std", std)):
                        buffers[key][t] = val
                    buffers["rewards"][t] = reward.view(num, per)
                    buffers["dones"][t] = done.view(num, per).to(torch.float32)
                    mark = timers.add("overhead", mark)
                last_values = net.value(net.normalize(obs.view(num, per, -1)))
                advantages, returns = compute_gae(buffers["rewards"].flatten(1), buffers["values"].flatten(1),
                                                  buffers["dones"].flatten(1), last_values.flatten(), cfg.gamma,
                                                  cfg.gae_lambda)
            # [T, K, M, ...] -> [K, T*M, ...]: each candidate's transitions in RolloutStorage's (step, world) order
            per_candidate = lambda x: x.transpose(0, 1).reshape(num, transitions, *x.shape[3:])  # noqa: E731
            rollout = {key: per_candidate(value) for key, value in buffers.items() if key not in ("rewards", "dones")}
            rollout["advantages"] = per_candidate(advantages.view(shape))
            rollout["returns"] = per_candidate(returns.view(shape))
            collect_s = time.perf_counter() - t0
            mark = timers.add("overhead", mark)
            # 2. isolate candidates whose reward failed during this rollout, then one PPO update for all
            for k, error in enumerate(reward_fn.failed):
                if error is not None and failed_at[k] is None:
                    failed_at[k] = global_step
            learner.active = torch.tensor([f is None for f in reward_fn.failed])
            torch.set_num_threads(max(1, torch_threads))
            try:
                results = learner.update(rollout)
            finally:
                torch.set_num_threads(1)
            mark = timers.add("update", mark)
            update += 1
            global_step += transitions
            # 3. logging, per candidate, in runner.py's format
            iter_s = time.perf_counter() - t0
            means = tracker.collect_groups()
            for k, log in enumerate(logs):
                if failed_at[k] is not None:
                    continue
                stats[k] = {key: v for key, v in means[k].items()
                            if not (hand_only[k] and key.startswith("hand_terms/"))}
                invalid_now, invalid_seen[k] = reward_fn.invalid[k] - invalid_seen[k], reward_fn.invalid[k]
                runner._log(log["writer"], log["csv"], log["bar"], global_step, update,
                            elapsed_before + time.perf_counter() - start, transitions / iter_s, collect_s, stats[k],
                            results[k], _StdShim(net.log_std[k]), invalid=(invalid_now, transitions))
            if update % latest_every == 0:  # 4. checkpoints: a killed run resumes here (resume=True)
                for k, (config, log) in enumerate(zip(configs, logs)):
                    if failed_at[k] is None:
                        runner.atomic_torch_save(
                            _checkpoint_state(k, config, env, net, learner, global_step,
                                              elapsed_before + time.perf_counter() - start, reward_scaler,
                                              reward_fn.invalid[k]),
                            run_dirs[k] / "checkpoints" / runner.LATEST)
                        log["csv_file"].flush()
                        log["writer"].flush()
            timers.add("overhead", mark)
    finally:
        for log in logs:
            log["bar"].close()
            log["csv_file"].close()
            log["writer"].close()
        env.close()
    seconds = elapsed_before + time.perf_counter() - start
    timing = dict(timers.seconds)
    timing["rewards"] = reward_fn.seconds
    timing["physics"] = timing.pop("env_step", 0.0) - reward_fn.seconds

    # 5. per candidate: failed.json, or checkpoint, export, model card and evaluation
    finish_start = time.perf_counter()
    results_out = []
    for k, (config, run_dir) in enumerate(zip(configs, run_dirs)):
        record = {"run_dir": str(run_dir), "steps": global_step, "failed": reward_fn.failed[k], "stats": stats[k],
                  "eval": None}
        if reward_fn.failed[k] is None:
            try:
                record["eval"] = _finish(k, config, run_dir, env, net, learner, global_step, seconds, stats[k],
                                         reward_scaler, reward_fn.invalid[k])
            except Exception as err:  # noqa: BLE001 - an export/eval failure is this candidate's alone
                record["failed"] = f"{type(err).__name__}: {err}"
        if record["failed"] is not None:
            _write_failed(run_dir, record["failed"], failed_at[k] if failed_at[k] is not None else global_step,
                          reward_fn.invalid[k])
        results_out.append(record)
        if on_done is not None:
            on_done(k, str(run_dir))
    timing["finish"] = time.perf_counter() - finish_start
    return {"candidates": results_out, "seconds": seconds, "timing": timing}


def _never(state, action):
    raise RuntimeError("this candidate's reward failed to load")


def _track(tracker, reward, info, done, reward_fn: CandidateRewards, per: int) -> None:
    """Fold one step of all K x M worlds into the tracker; each candidate's own reward terms into its
    group (masked where a world was reset for non-finite physics, as the env masks its terms)."""
    done_f = tracker.step(reward, info, done, reward_terms=False)
    keep = ~info["nan_reset"]
    for k, terms in enumerate(reward_fn.terms):
        if reward_fn.failed[k] is not None or not terms:
            continue
        rows = keep[k * per:(k + 1) * per]
        tracker.add_terms(k, {name: torch.where(rows, v, 0.0) for name, v in terms.items()}, done_f)


def _load_checkpoints(run_dirs: Sequence[Path], models: Sequence[ActorCritic]) -> list[dict]:
    """Each run dir's checkpoints/latest.pt (either runner's), its network loaded into models[k];
    all must be at one step (train_candidates groups run dirs by their checkpoint's step)."""
    from robreward.rl import runner

    checkpoints = [runner.load_checkpoint(run_dir / "checkpoints" / runner.LATEST) for run_dir in run_dirs]
    steps = sorted({int(c["global_step"]) for c in checkpoints})
    if len(steps) != 1:
        raise ValueError(f"resume=True needs checkpoints at one step, got steps {steps}: resume the run dirs of "
                         "each step in their own train_many call")
    for model, ckpt in zip(models, checkpoints):
        model.load_state_dict(ckpt["model"])
    return checkpoints


def _checkpoint_state(k: int, config: TrainConfig, env, net: BatchedActorCritic, learner: BatchedPPO, steps: int,
                      seconds: float, reward_scaler: RewardNormalizer | None, reward_invalid: int) -> dict:
    """Candidate k's checkpoint in runner.py's format (its torch RNG state: its own generator's)."""
    from robreward.rl import runner

    model = net.unstack(k)
    generator = learner.generators[k]
    rng = runner.rng_state()
    if generator.device.type == "cpu":
        rng["torch"] = generator.get_state()
    return {
        "model": model.state_dict(), "optimizer": learner.torch_adam_state(k, model),
        "learning_rate": float(learner.learning_rate[k]), "global_step": steps, "update": steps // (
            config.ppo.num_steps * config.num_envs), "elapsed_s": seconds,
        "rng": rng, "reward_invalid": int(reward_invalid), "config": config.to_dict(), "task": env.spec.name, "task_version": env.spec.version,
        "obs_dim": env.obs_dim, "act_dim": env.act_dim, "action_low": env.action_low.cpu(),
        "action_high": env.action_high.cpu(), "trainer": "batched",
        "reward_scaler": reward_scaler.state_dict(k) if reward_scaler is not None else None,
    }


def _finish(k: int, config: TrainConfig, run_dir: Path, env, net: BatchedActorCritic, learner: BatchedPPO,
            steps: int, seconds: float, stats: dict, reward_scaler: RewardNormalizer | None,
            reward_invalid: int) -> dict | None:
    """Candidate k's checkpoint (runner.py's format), policy.onnx, MODEL_CARD.md and eval.json."""
    from robreward.rl import runner

    model = net.unstack(k)
    runner.atomic_torch_save(_checkpoint_state(k, config, env, net, learner, steps, seconds, reward_scaler,
                                               reward_invalid), run_dir / "checkpoints" / runner.LATEST)
    deterministic = DeterministicPolicy(model.normalizer, model.actor, env.action_low.cpu(), env.action_high.cpu())
    export_onnx(deterministic, env.obs_dim, run_dir / POLICY_FILE)
    card_extra = {"training time (s)": round(seconds, 1), "final train return": stats.get("return", float("nan")),
                  "final train success": stats.get("success", float("nan")),
                  **runner.invalid_reward_card(reward_invalid, steps),
                  "trainer": f"batched: {net.num} candidates x {config.num_envs} worlds in one env (robreward.rl.multi)"}
    write_model_card(run_dir, config.to_dict(), env.spec, steps, None, card_extra)
    return runner.finish_with_eval(config, run_dir, env.spec, steps, card_extra)


__all__ = ["BatchedActorCritic", "BatchedPPO", "CandidateRewards", "MultiCandidateEnv", "train_many", "update_threads"]
