"""`train(config)`: the PPO training loop over a BatchedEnv, writing the run directory of
ARCHITECTURE.md (config.yaml, checkpoints/, tb/, progress.csv, policy.onnx, MODEL_CARD.md,
eval.json).

Resume (`resume(run_dir)`) restores the model, optimizer, normalizer, learning rate, step
counter and the torch/numpy/python RNG states from checkpoints/latest.pt and trains on with
the saved config. The envs' episode state is not saved: every world starts a fresh episode
on resume (reset with seed + update, so resets differ from the first run's), which costs at
most one partial episode per world and leaves the learned state untouched.

Checkpoints are plain data: tensors, dicts, lists and numbers (the RNG states too), read with
``torch.load(weights_only=True)``, so a checkpoint from someone else cannot run code. Those
written before that (numpy arrays in the RNG state) still load, through an allow-list of exactly
numpy's array reconstruction and dtype. A run's config.yaml names a task; resume refuses one that
names a task folder (code) unless the caller passes that folder explicitly (``task=``, ``--task``).

The reward is checked on every step (robreward.envs.batched); the world-steps where it was
invalid are reported per update (progress.csv ``reward_invalid``, ``reward_invalid_share``; TensorBoard
``train/reward_invalid*``; the model card), and a run over ``validity.invalid_reward_limit`` of its
budget fails with InvalidRewardError and failed.json.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import robreward
from robreward.fileio import atomic_write_json
from robreward.rl.checkpoint import atomic_torch_save, load_checkpoint, restore_rng, rng_state
from robreward.rl.config import TrainConfig
from robreward.rl.export import DeterministicPolicy, POLICY_FILE, export_onnx, load_policy, write_model_card
from robreward.rl.ppo import PPO, ActorCritic, RewardNormalizer
from robreward.rl.storage import RolloutStorage, bootstrap_truncated
from robreward.rl.validity import InvalidRewardError, invalid_reward_limit, invalid_reward_message

CONFIG_FILE = "config.yaml"
PROGRESS_FILE = "progress.csv"
LATEST = "latest.pt"
CSV_FIELDS = ("step", "update", "time_s", "steps_per_s", "episodes", "return_mean", "hand_return_mean",
              "success_rate", "fitness_mean", "episode_length", "learning_rate", "kl", "policy_loss",
              "value_loss", "entropy", "noise_std", "clip_fraction", "reward_invalid", "reward_invalid_share")
FAILED_FILE = "failed.json"


# -- run directory helpers ------------------------------------------------------------------
def write_config(run_dir: Path, config: TrainConfig) -> None:
    tmp = run_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    os.replace(tmp, run_dir / CONFIG_FILE)


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The resolved config of an existing run directory (its config.yaml)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist: pass the --out DIR of an earlier run")
    path = run_dir / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read the run config {str(path)!r} ({type(err).__name__}: {err}); "
                         f"is {str(run_dir)!r} a robreward run directory?") from err
    if not isinstance(data, dict):
        raise ValueError(f"run config {str(path)!r} is not a YAML mapping; is {str(run_dir)!r} a robreward run directory?")
    return TrainConfig.from_dict(data)


def policy_from_checkpoint(path: str | os.PathLike) -> DeterministicPolicy:
    """The deterministic policy (normalization, actor, action clip) stored in a checkpoint."""
    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(ckpt["config"])
    model = ActorCritic(ckpt["obs_dim"], ckpt["act_dim"], config.ppo)
    model.load_state_dict(ckpt["model"])
    return DeterministicPolicy(model.normalizer, model.actor, ckpt["action_low"], ckpt["action_high"])


def _check_reward_spec(reward: str) -> None:
    if isinstance(reward, str) and reward.endswith(".py") and not Path(reward).is_file():
        raise FileNotFoundError(f"reward file {reward!r} not found: pass an existing .py file defining "
                                "compute_reward(state, action), or 'hand' / 'sparse'")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class EpisodeTracker:
    """Per-world running episode sums; completed episodes are folded into per-update means
    with masked tensor ops (no Python loop over worlds).

    groups: the worlds are that many equal consecutive groups (the batched trainer's candidates),
    each with its own means (``collect_groups``); one set of tensor ops serves them all."""

    def __init__(self, num_envs: int, device, track_hand_terms: bool = True, groups: int = 1):
        if groups < 1 or num_envs % groups:
            raise ValueError(f"{num_envs} worlds do not split into {groups} equal groups")
        self.device = device
        self.track_hand_terms = track_hand_terms
        self.running: dict[str, torch.Tensor] = {}
        self.done_sums: dict[str, torch.Tensor] = {}
        self.groups = groups
        self.episodes = torch.zeros(groups, device=device)
        self.num_envs = num_envs
        self.last: list[dict[str, float]] = [{} for _ in range(groups)]
        self.group_running: dict[tuple[int, str], torch.Tensor] = {}  # add_terms: one group's own keys
        self.group_done_sums: dict[tuple[int, str], torch.Tensor] = {}

    def _add(self, key: str, value: torch.Tensor, done_f: torch.Tensor | None, reduce: str = "sum") -> None:
        if key not in self.running:
            self.running[key] = torch.zeros(self.num_envs, device=self.device)
            self.done_sums[key] = torch.zeros(self.groups, device=self.device)
        run = self.running[key]
        if reduce == "max":
            torch.maximum(run, value, out=run)
        else:
            run += value
        if done_f is not None:
            self.done_sums[key] += (run * done_f).view(self.groups, -1).sum(1)
            run *= 1.0 - done_f

    def step(self, reward, info, done, reward_terms: bool = True) -> torch.Tensor | None:
        """Fold in one env step. reward_terms=False: leave info["reward_terms"] out (each group's own
        terms then come through add_terms). Returns the done mask as floats (None: no world done)."""
        done_f = done.to(torch.float32) if bool(done.any()) else None
        if done_f is not None:
            self.episodes += done_f.view(self.groups, -1).sum(1)
        self._add("return", reward, done_f)
        self._add("hand_return", info["hand_reward"], done_f)
        self._add("length", torch.ones_like(reward), done_f)
        self._add("success", info["success"].to(torch.float32), done_f, reduce="max")
        self._add("fitness_sum", info["fitness"], done_f)
        if reward_terms:
            for name, value in info["reward_terms"].items():
                self._add(f"terms/{name}", value, done_f)
        if self.track_hand_terms:  # the hand terms too, when training on another reward
            for name, value in info["hand_terms"].items():
                self._add(f"hand_terms/{name}", value, done_f)
        return done_f

    def add_terms(self, group: int, terms: dict[str, torch.Tensor], done_f: torch.Tensor | None) -> None:
        """One group's own reward terms ({name: [num_envs / groups]}) for the step that step() just
        folded in (done_f: what it returned); they appear as terms/NAME in that group's means only."""
        per = self.num_envs // self.groups
        done_g = None if done_f is None else done_f[group * per:(group + 1) * per]
        for name, value in terms.items():
            key = (group, f"terms/{name}")
            if key not in self.group_running:
                self.group_running[key] = torch.zeros(per, device=self.device)
                self.group_done_sums[key] = torch.zeros((), device=self.device)
            run = self.group_running[key]
            run += value
            if done_g is not None:
                self.group_done_sums[key] += (run * done_g).sum()
                run *= 1.0 - done_g

    def collect(self) -> dict[str, float]:
        """Means over the episodes completed since the last call (or the previous means if none)."""
        if self.groups != 1:
            raise ValueError(f"this tracker has {self.groups} groups: use collect_groups()")
        return self.collect_groups()[0]

    def collect_groups(self) -> list[dict[str, float]]:
        """collect() for each group of worlds, in order."""
        counts = self.episodes.tolist()
        if any(c > 0 for c in counts):
            sums = {k: v.tolist() for k, v in self.done_sums.items()}
            own = {key: float(v) for key, v in self.group_done_sums.items()}
            for g, count in enumerate(counts):
                if count > 0:
                    last = {k: v[g] / count for k, v in sums.items()
                            if k != "fitness_sum" and not k.startswith("hand_terms/")}
                    last.update({key: v / count for (group, key), v in own.items() if group == g})
                    last.update({k: v[g] / count for k, v in sums.items() if k.startswith("hand_terms/")})
                    last["fitness_mean"] = sums["fitness_sum"][g] / max(sums["length"][g], 1.0)
                    last["episodes"] = count
                    self.last[g] = last
            for v in (*self.done_sums.values(), *self.group_done_sums.values()):
                v.zero_()
            self.episodes.zero_()
        return [dict(last) for last in self.last]


# -- training ---------------------------------------------------------------------------------
def train(config: TrainConfig, resume_from: str | os.PathLike | None = None, reward=None) -> dict:
    """Train one policy; returns a summary (run_dir, steps, seconds, final stats, eval result).

    reward: a Reward object to train on instead of the one ``config.reward`` names; config.reward
    is then only its label (e.g. ``pref:RUN``). The caller may update that object between calls
    (train to step t, change the reward, resume to step t' with ``resume_from``): how the
    preference loop trains one policy on a reward that improves during training.
    """
    if config.algo == "sb3":
        if reward is not None:
            raise ValueError("a Reward object (reward=...) trains with algo='ppo' only")
        from robreward.rl.sb3 import train_sb3

        return train_sb3(config, resume_from=resume_from)
    if reward is None:
        _check_reward_spec(config.reward)
    run_dir = Path(config.out)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # a new attempt; it writes its own record if it fails
    torch.set_num_threads(max(1, config.torch_threads))
    seed_everything(config.seed)
    cfg = config.ppo

    env = robreward.make(config.task, config.num_envs, backend=config.backend, device=config.device,
                         seed=config.seed, reward=config.reward if reward is None else reward)
    device = env.device
    policy = ActorCritic(env.obs_dim, env.act_dim, cfg).to(device)
    bc_stats = None
    if config.init_from_demos and resume_from is None:
        # BC warm start: the actor imitates the demos before PPO (a resumed run has its weights)
        from robreward.demos.bc import bc_pretrain

        bc_stats = bc_pretrain(policy.actor, policy.normalizer, config.init_from_demos, epochs=config.bc_epochs,
                               lr=cfg.learning_rate, task=env.spec, seed=config.seed)
        policy.log_std.data.fill_(math.log(config.bc_noise_std))
    ppo = PPO(policy, cfg)
    reward_scaler = RewardNormalizer(config.num_envs, cfg.gamma, device=device) if cfg.normalize_rewards else None
    global_step, update, elapsed_before = 0, 0, 0.0
    invalid_total, invalid_limit = 0, invalid_reward_limit(config.steps)  # world-steps with an invalid reward

    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        policy.load_state_dict(ckpt["model"])
        ppo.optimizer.load_state_dict(ckpt["optimizer"])
        ppo._set_lr(ckpt["learning_rate"])
        global_step, update, elapsed_before = ckpt["global_step"], ckpt["update"], ckpt.get("elapsed_s", 0.0)
        invalid_total = int(ckpt.get("reward_invalid", 0))
        restore_rng(ckpt["rng"])
        if reward_scaler is not None and "reward_scaler" in ckpt:
            reward_scaler.load_state_dict(ckpt["reward_scaler"])
    write_config(run_dir, config)

    storage = RolloutStorage(cfg.num_steps, config.num_envs, env.obs_dim, env.act_dim, device)
    tracker = EpisodeTracker(config.num_envs, device, track_hand_terms=config.reward != "hand")
    writer = _summary_writer(run_dir, purge_step=global_step if resume_from is not None else None)
    csv_file, csv_writer = _open_progress(run_dir, keep_until=global_step if resume_from is not None else None)
    bar = _progress_bar(config, global_step)

    def checkpoint(periodic: bool) -> None:
        state = {
            "model": policy.state_dict(), "optimizer": ppo.optimizer.state_dict(),
            "learning_rate": ppo.learning_rate, "global_step": global_step, "update": update,
            "elapsed_s": elapsed_before + time.perf_counter() - start,
            "rng": rng_state(), "reward_invalid": invalid_total,
            "reward_scaler": reward_scaler.state_dict() if reward_scaler is not None else None,
            "config": config.to_dict(), "task": env.spec.name, "task_version": env.spec.version,
            "obs_dim": env.obs_dim, "act_dim": env.act_dim,
            "action_low": env.action_low.cpu(), "action_high": env.action_high.cpu(),
        }
        atomic_torch_save(state, ckpt_dir / LATEST)
        if periodic:
            atomic_torch_save(state, ckpt_dir / f"step_{global_step:012d}.pt")

    obs, _ = env.reset(seed=config.seed + 7919 * update)
    start = time.perf_counter()
    stats: dict[str, float] = {}
    invalid_seen = env.reward_invalid_count
    try:
        while global_step < config.steps:
            t0 = time.perf_counter()
            # 1. rollout: num_steps batched env steps, storage on the env's device
            with torch.no_grad():
                for _ in range(cfg.num_steps):
                    obs_norm = policy.normalize(obs, update=True)
                    action, log_prob, value, mean, std = policy.act(obs_norm)
                    obs, reward, terminated, truncated, info = env.step(action)  # checks the reward
                    done = terminated | truncated
                    tracker.step(reward, info, done)
                    if reward_scaler is not None:
                        reward = reward_scaler(reward, done)
                    if bool(truncated.any()):  # time-out: bootstrap from the true last observation
                        final_values = policy.value(policy.normalize(info["final_obs"]))
                        reward = bootstrap_truncated(reward, truncated, final_values, cfg.gamma)
                    storage.add(obs_norm, action, log_prob, value, reward, done, mean, std)
                last_values = policy.value(policy.normalize(obs))
                storage.compute_returns(last_values, cfg.gamma, cfg.gae_lambda)
            collect_s = time.perf_counter() - t0
            # 2. PPO update
            result = ppo.update(storage)
            storage.clear()
            update += 1
            global_step += cfg.num_steps * config.num_envs
            # 3. logging and checkpoints
            iter_s = time.perf_counter() - t0
            stats = tracker.collect()
            invalid_now, invalid_seen = env.reward_invalid_count - invalid_seen, env.reward_invalid_count
            invalid_total += invalid_now
            _log(writer, csv_writer, bar, global_step, update, elapsed_before + time.perf_counter() - start,
                 cfg.num_steps * config.num_envs / iter_s, collect_s, stats, result, policy,
                 invalid=(invalid_now, cfg.num_steps * config.num_envs))
            if invalid_total > invalid_limit:
                fail_invalid_reward(run_dir, config, invalid_total, global_step)
            if update % config.latest_every == 0 or update % config.checkpoint_every == 0:
                checkpoint(periodic=update % config.checkpoint_every == 0)
                csv_file.flush()
                writer.flush()
        checkpoint(periodic=False)
    finally:
        bar.close()
        csv_file.close()
        writer.close()
        env.close()
    seconds = elapsed_before + time.perf_counter() - start

    # 4. export, model card and evaluation
    deterministic = DeterministicPolicy(_copy_cpu(policy.normalizer), _copy_cpu(policy.actor),
                                        env.action_low.cpu(), env.action_high.cpu())
    export_onnx(deterministic, env.obs_dim, run_dir / POLICY_FILE)
    card_extra = {"training time (s)": round(seconds, 1), "final train return": stats.get("return", float("nan")),
                  "final train success": stats.get("success", float("nan")),
                  **invalid_reward_card(invalid_total, global_step)}
    if bc_stats is not None:
        card_extra["BC warm start"] = (f"{config.init_from_demos}: {bc_stats['samples']} samples, "
                                       f"{bc_stats['epochs']} epochs, MSE {bc_stats['loss_first']:.3g} -> {bc_stats['loss_last']:.3g}")
    write_model_card(run_dir, config.to_dict(), env.spec, global_step, None, card_extra)
    eval_result = finish_with_eval(config, run_dir, env.spec, global_step, card_extra)
    return {"run_dir": str(run_dir), "steps": global_step, "seconds": seconds, "stats": stats, "eval": eval_result}


def fail_invalid_reward(run_dir: Path, config: TrainConfig, count: int, step: int, trainer: str = "single") -> None:
    """Record (failed.json) and raise InvalidRewardError: the run's reward was invalid too often."""
    message = invalid_reward_message(config.reward, count, step, config.steps)
    atomic_write_json(run_dir / FAILED_FILE, {"error": f"InvalidRewardError: {message}", "step": step,
                                              "trainer": trainer, "reward_invalid": count,
                                              "reward_invalid_limit": invalid_reward_limit(config.steps)})
    raise InvalidRewardError(message)


def invalid_reward_card(count: int, steps: int) -> dict:
    """The model card's line on invalid rewards (world-steps whose reward was replaced by 0)."""
    share = count / steps if steps else 0.0
    return {"invalid reward (world-steps set to 0)": f"{count:,} of {steps:,} ({100 * share:.3g}%)"}


def finish_with_eval(config: TrainConfig, run_dir: Path, spec, steps: int, card_extra: dict) -> dict | None:
    """Evaluate policy.onnx with robreward.eval (when that module exists) into eval.json."""
    if config.eval_episodes <= 0 or importlib.util.find_spec("robreward.eval") is None:
        return None
    from robreward.eval import evaluate
    from robreward.eval.evaluate import write_eval_json

    result = evaluate(config.task, load_policy(run_dir / POLICY_FILE), episodes=config.eval_episodes,
                      seed=config.seed, reward_name=config.reward)
    write_eval_json(run_dir, result)
    write_model_card(run_dir, config.to_dict(), spec, steps, result, card_extra)
    return result


def resume(run_dir: str | os.PathLike, steps: int | None = None, task: str | None = None, **overrides) -> dict:
    """Continue a killed run from checkpoints/latest.pt with its saved config (optionally more steps).

    A config.yaml that names a task folder (code) is refused unless ``task`` passes that folder
    explicitly: a run directory from someone else never picks code to run."""
    from robreward.envs.registry import get_task

    config = load_run_config(run_dir)
    if task is None:
        try:
            get_task(config.task, allow_folder=False)
        except ValueError as err:
            raise ValueError(f"cannot resume {str(run_dir)!r}: its config.yaml names the task {config.task[:200]!r}, "
                             "which is not a task of the suite but a folder of code; if you trust that folder, "
                             "pass it explicitly: robreward train --resume RUN --task FOLDER") from err
    changes = {"out": str(run_dir), **overrides}
    if task is not None:
        changes["task"] = str(task)
    if steps is not None:
        changes["steps"] = steps
    data = config.to_dict()
    data.update(changes)
    config = TrainConfig.from_dict(data)
    checkpoint = Path(run_dir) / "checkpoints" / LATEST
    if config.algo == "sb3":
        from robreward.rl.sb3 import LATEST_SB3, load_sb3_checkpoint

        load_sb3_checkpoint(checkpoint.with_name(LATEST_SB3))  # a clear error before the env is built
        return train(config, resume_from=checkpoint.with_name(LATEST_SB3))
    load_checkpoint(checkpoint)  # a clear error before the env is built
    return train(config, resume_from=checkpoint)


# -- logging ----------------------------------------------------------------------------------
def _copy_cpu(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module).to("cpu")


class _NullWriter:
    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def _summary_writer(run_dir: Path, purge_step=None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV still has every number
        return _NullWriter()
    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


def _open_progress(run_dir: Path, keep_until: int | None):
    path = run_dir / PROGRESS_FILE
    rows = []
    if keep_until is not None and path.is_file():  # drop rows logged after the checkpoint we resume from
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(float(r.get("step") or 0)) <= keep_until]
    f = open(path, "w", newline="")
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return f, writer


def _progress_bar(config: TrainConfig, initial: int):
    from tqdm import tqdm

    return tqdm(total=config.steps, initial=initial, unit="step", unit_scale=True, disable=not config.progress,
                desc=f"{config.task} [{config.reward}]", dynamic_ncols=True, mininterval=1.0)


def _log(writer, csv_writer, bar, step, update, elapsed, steps_per_s, collect_s, stats, result, policy,
         invalid: tuple[int, int] = (0, 1)) -> dict:
    """One progress.csv row and the TensorBoard scalars of an update; invalid: (world-steps whose
    reward was invalid in this update, world-steps of the update)."""
    noise_std = float(policy.log_std.detach().exp().mean())
    invalid_share = invalid[0] / max(invalid[1], 1)
    row = {
        "step": step, "update": update, "time_s": round(elapsed, 3), "steps_per_s": round(steps_per_s, 1),
        "episodes": stats.get("episodes", 0), "return_mean": stats.get("return", ""),
        "hand_return_mean": stats.get("hand_return", ""), "success_rate": stats.get("success", ""),
        "fitness_mean": stats.get("fitness_mean", ""), "episode_length": stats.get("length", ""),
        "learning_rate": result.learning_rate, "kl": result.kl, "policy_loss": result.policy_loss,
        "value_loss": result.value_loss, "entropy": result.entropy, "noise_std": noise_std,
        "clip_fraction": result.clip_fraction, "reward_invalid": invalid[0], "reward_invalid_share": invalid_share,
    }
    csv_writer.writerow(row)
    scalars = {"perf/steps_per_s": steps_per_s, "perf/collect_s": collect_s, "loss/policy": result.policy_loss,
               "loss/value": result.value_loss, "loss/entropy": result.entropy, "train/kl": result.kl,
               "train/learning_rate": result.learning_rate, "train/noise_std": noise_std,
               "train/reward_invalid": invalid[0], "train/reward_invalid_share": invalid_share}
    if stats:
        scalars.update({"episode/return": stats["return"], "episode/hand_return": stats["hand_return"],
                        "episode/success": stats["success"], "episode/length": stats["length"],
                        "episode/fitness_mean": stats["fitness_mean"]})
        scalars.update({f"reward_{k}": v for k, v in stats.items() if k.startswith(("terms/", "hand_terms/"))})
    for key, value in scalars.items():
        writer.add_scalar(key, value, step)
    bar.update(step - bar.n)
    if stats:
        bar.set_postfix(sps=f"{steps_per_s:,.0f}", ret=f"{stats['return']:.3g}", succ=f"{stats['success']:.2f}",
                        refresh=False)
    return row
