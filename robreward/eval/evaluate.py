"""Evaluate a policy on a task: exact, seeded episode counts in a batched env -> eval.json.

    result = evaluate("push", policy, episodes=100, seed=0)
    write_eval_json("runs/push-hand", result)

``policy`` is a callable ``obs float32 [B, obs_dim] -> action [B, act_dim]`` (what
``robreward.rl.load_policy`` returns; numpy in/out is accepted too). A callable with the
attribute ``uses_state = True`` receives the env's live ``TaskState`` instead of the
observation (scripted experts: ``TaskSpec.expert``); see :func:`state_policy`.

eval.json (docs/architecture.md, "eval.json"; every number is a float, ``None`` where undefined)::

    task                      str    task name
    task_version              int    TaskSpec.version
    reward                    str    what the policy was trained on ("hand", "sparse", a file, "pref:RUN", ...)
    episodes                  int    episodes per policy seed (exact)
    seeds                     [int]  the policy's training seed(s)
    return_mean, return_std   float  episode return under the task's HAND reward (std over episodes;
                                     with several seeds: std over the per-seed means)
    train_reward_return_mean  float  episode return under the training reward (None if it cannot be built)
    success_rate              float  fraction of successful episodes (success at any step; locomotion
                                     tasks with success_threshold: episode fitness >= threshold)
    fitness_mean              float  mean over episodes of the episode fitness (mean of per-step fitness;
                                     tasks with fitness_over_episode_length: sum / episode_length)
    episode_length_mean       float  mean steps per episode
    terms                     {str: float}  mean episode sum of each hand-reward term
    eval_seed                 int    seed of the evaluation env (initial-state distribution)
    deterministic             bool   whether the policy acted deterministically
    per_seed                  [dict] only with several policy seeds (evaluate_seeds): the fields above
                                     from return_mean to terms, plus "seed", for each policy seed
"""

from __future__ import annotations

import contextlib
import inspect
import math
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from robreward.rundir import EVAL_FIELDS, read_eval, write_eval  # noqa: F401  (EVAL_FIELDS: re-exported)

PER_SEED_FIELDS = ("return_mean", "return_std", "train_reward_return_mean", "success_rate", "fitness_mean",
                   "episode_length_mean", "terms")

DEFAULT_MAX_ENVS = 64


def state_policy(fn: Callable) -> Callable:
    """Mark a callable as taking the env's TaskState (e.g. a task's scripted expert)."""

    def policy(state):
        return fn(state)

    policy.uses_state = True
    policy.__name__ = getattr(fn, "__name__", "state_policy")
    return policy


def _accepts_deterministic(policy) -> bool:
    try:
        params = inspect.signature(policy).parameters
    except (TypeError, ValueError):
        return False
    return "deterministic" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _act(policy, env, obs, deterministic: bool, pass_det: bool) -> torch.Tensor:
    inp = env.state if getattr(policy, "uses_state", False) else obs
    out = policy(inp, deterministic=deterministic) if pass_det else policy(inp)
    if isinstance(out, tuple):  # (action, extras) from some policy wrappers
        out = out[0]
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(np.asarray(out))
    if tuple(out.shape) != (env.num_envs, env.act_dim):
        raise ValueError(f"the policy returned actions of shape {list(out.shape)}; task {env.spec.name!r} needs "
                         f"[{env.num_envs}, {env.act_dim}] (one action of size {env.act_dim} per world)")
    return out.detach().to(env.device, torch.float32)


def check_policy_fits(policy, spec) -> None:
    """Refuse, before any episode runs, a policy whose declared observation/action sizes
    (``obs_dim``/``act_dim``, as policy files have) differ from the task's."""
    if getattr(policy, "uses_state", False):
        return
    from robreward.rl.export import check_policy_task

    check_policy_task(policy, spec)


def _episode_quota(episodes: int, num_envs: int) -> np.ndarray:
    """How many episodes each world counts: its first ones, so the total is exactly `episodes`."""
    base, extra = divmod(episodes, num_envs)
    return np.array([base + (1 if i < extra else 0) for i in range(num_envs)], dtype=np.int64)


def _float(x) -> Optional[float]:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _resolve_train_reward(train_reward, reward_name):
    if train_reward is not None:
        return train_reward
    if reward_name in ("hand", "sparse"):
        return reward_name
    return None


def run_episodes(task, policy, *, episodes: int = 100, seed: int = 0, num_envs: Optional[int] = None,
                 deterministic: bool = True, train_reward=None, video=None, video_episodes: int = 1,
                 video_size=None, backend: str = "cpu", device="cpu") -> dict:
    """Run exactly `episodes` episodes; return per-episode numpy arrays (world order, then episode order):
    hand_return, train_return (or None), success, fitness, length, terms {name: [E]}.

    video: an mp4 path: the first episodes of worlds 0..video_episodes-1 tiled into one grid
    (robreward.eval.video.EpisodeGrid), each tile video_size (default 480x360) with an overlay."""
    import robreward
    from robreward.envs.registry import get_task

    spec = get_task(task)
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    check_policy_fits(policy, spec)
    n = int(num_envs) if num_envs is not None else min(int(episodes), DEFAULT_MAX_ENVS)
    if n < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs!r}")
    env = robreward.make(spec, num_envs=n, seed=seed, reward=train_reward if train_reward is not None else "hand",
                         backend=backend, device=device)
    quota = _episode_quota(int(episodes), n)
    done_count = np.zeros(n, dtype=np.int64)
    records: list[list[dict]] = [[] for _ in range(n)]

    dev = env.device
    hand_ret = torch.zeros(n, dtype=torch.float64, device=dev)
    train_ret = torch.zeros(n, dtype=torch.float64, device=dev)
    fit_sum = torch.zeros(n, dtype=torch.float64, device=dev)
    length = torch.zeros(n, dtype=torch.long, device=dev)
    any_success = torch.zeros(n, dtype=torch.bool, device=dev)
    term_sums: dict[str, torch.Tensor] = {}

    pass_det = _accepts_deterministic(policy) and not getattr(policy, "uses_state", False)
    threshold = spec.success_threshold
    horizon = spec.fitness_horizon
    max_steps = int(quota.max()) * spec.episode_length + 1
    stack = contextlib.ExitStack()
    grid = None
    if video:
        from robreward.eval.video import DEFAULT_SIZE, EpisodeGrid

        label = train_reward if isinstance(train_reward, str) else ("hand" if train_reward is None else "training")
        grid = stack.enter_context(EpisodeGrid(env, video, episodes=video_episodes, size=video_size or DEFAULT_SIZE,
                                               reward_label=Path(label).name if label.endswith(".py") else label))
    obs, _ = env.reset(seed=seed)
    with stack, torch.no_grad():
        for _ in range(max_steps):
            if (done_count >= quota).all():
                break
            if grid is not None and not grid.finished:
                grid.capture()
            action = _act(policy, env, obs, deterministic, pass_det)
            obs, reward, terminated, truncated, info = env.step(action)
            if grid is not None and not grid.finished:
                grid.record(reward, info["success"], terminated | truncated, info["fitness"])
            hand_ret += info["hand_reward"].to(torch.float64)
            train_ret += reward.to(torch.float64)
            fit_sum += info["fitness"].to(torch.float64)
            length += 1
            any_success |= info["success"].to(torch.bool)
            for name, value in info["hand_terms"].items():
                term_sums.setdefault(name, torch.zeros(n, dtype=torch.float64, device=dev))
                term_sums[name] += value.to(torch.float64)
            done = (terminated | truncated).cpu().numpy()
            if not done.any():
                continue
            ids = np.nonzero(done)[0]
            h, t, f, L, s = (x.cpu().numpy() for x in (hand_ret, train_ret, fit_sum, length, any_success))
            terms_np = {k: v.cpu().numpy() for k, v in term_sums.items()}
            for i in ids:
                if done_count[i] < quota[i]:
                    fitness = f[i] / max(horizon or int(L[i]), 1)
                    success = bool(fitness >= threshold) if threshold is not None else bool(s[i])
                    records[i].append({"hand_return": h[i], "train_return": t[i], "fitness": fitness,
                                       "success": success, "length": int(L[i]),
                                       "terms": {k: v[i] for k, v in terms_np.items()}})
                    done_count[i] += 1
            rows = torch.as_tensor(ids, device=dev)
            for acc in (hand_ret, train_ret, fit_sum, *term_sums.values()):
                acc[rows] = 0.0
            length[rows] = 0
            any_success[rows] = False
        else:
            raise RuntimeError(f"evaluation did not finish {episodes} episodes in {max_steps} steps")
    env.close()
    flat = [r for world in records for r in world]
    assert len(flat) == episodes, (len(flat), episodes)
    names = list(flat[0]["terms"])
    return {
        "hand_return": np.array([r["hand_return"] for r in flat]),
        "train_return": np.array([r["train_return"] for r in flat]) if train_reward is not None else None,
        "success": np.array([r["success"] for r in flat], dtype=bool),
        "fitness": np.array([r["fitness"] for r in flat]),
        "length": np.array([r["length"] for r in flat]),
        "terms": {k: np.array([r["terms"][k] for r in flat]) for k in names},
        "spec": spec,
    }


def summarize(episodes_data: Mapping) -> dict:
    """Per-episode arrays -> the numeric eval.json fields."""
    h = episodes_data["hand_return"]
    tr = episodes_data["train_return"]
    return {
        "return_mean": _float(np.mean(h)),
        "return_std": _float(np.std(h)),
        "train_reward_return_mean": _float(np.mean(tr)) if tr is not None else None,
        "success_rate": _float(np.mean(episodes_data["success"])),
        "fitness_mean": _float(np.mean(episodes_data["fitness"])),
        "episode_length_mean": _float(np.mean(episodes_data["length"])),
        "terms": {k: _float(np.mean(v)) for k, v in episodes_data["terms"].items()},
    }


def evaluate(task, policy, *, episodes: int = 100, seed: int = 0, num_envs: Optional[int] = None,
             deterministic: bool = True, reward_name: str = "hand", train_reward=None, video=None,
             policy_seed: Optional[int] = None, video_episodes: int = 1, video_size=None,
             backend: str = "cpu", device="cpu") -> dict:
    """Evaluate `policy` for exactly `episodes` episodes; returns the eval.json dict.

    seed: the evaluation env's seed (same seed, same policy -> identical numbers).
    reward_name: the label of the reward the policy was trained on (eval.json "reward").
    train_reward: a reward spec to also measure the return under ("hand", "sparse", a file,
        a Reward object); by default "hand"/"sparse" when reward_name is one of those, else
        train_reward_return_mean is None.
    policy_seed: the policy's training seed for eval.json "seeds" (default: `seed`).
    video: mp4 path: the first episodes of worlds 0..video_episodes-1 tiled into one grid video,
        video_size (W, H) or "WxH" per tile (default 480x360), framed on the robot, with an overlay of
        the step, the training reward and success (robreward.eval.video).
    """
    tr = _resolve_train_reward(train_reward, reward_name)
    data = run_episodes(task, policy, episodes=episodes, seed=seed, num_envs=num_envs, deterministic=deterministic,
                        train_reward=tr, video=video, video_episodes=video_episodes, video_size=video_size,
                        backend=backend, device=device)
    spec = data["spec"]
    result = {
        "task": spec.name,
        "task_version": int(spec.version),
        "reward": str(reward_name),
        "episodes": int(episodes),
        "seeds": [int(policy_seed if policy_seed is not None else seed)],
        **summarize(data),
        "eval_seed": int(seed),
        # a policy that cannot sample (policy.onnx, experts) acts deterministically whatever was asked
        "deterministic": bool(deterministic or getattr(policy, "uses_state", False)
                              or not _accepts_deterministic(policy)),
    }
    if video:
        result["video"] = str(video)
    return result


def aggregate_seeds(per_seed: Sequence[Mapping], base: Mapping) -> dict:
    """Aggregate per-seed eval dicts: means of the per-seed means; return_std = std (ddof=1 when
    >= 2 seeds) of the per-seed return means; `base` supplies task/reward/... fields."""
    def mean_of(key):
        vals = [r[key] for r in per_seed if r.get(key) is not None]
        return _float(np.mean(vals)) if vals else None

    returns = [r["return_mean"] for r in per_seed]
    term_names = sorted({k for r in per_seed for k in (r.get("terms") or {})})
    out = {k: base[k] for k in EVAL_FIELDS if k in base}
    out.update({
        "seeds": [int(r["seed"]) for r in per_seed],
        "return_mean": mean_of("return_mean"),
        "return_std": _float(np.std(returns, ddof=1)) if len(returns) >= 2 else per_seed[0].get("return_std"),
        "train_reward_return_mean": mean_of("train_reward_return_mean"),
        "success_rate": mean_of("success_rate"),
        "fitness_mean": mean_of("fitness_mean"),
        "episode_length_mean": mean_of("episode_length_mean"),
        "terms": {k: _float(np.mean([r["terms"][k] for r in per_seed if k in (r.get("terms") or {})]))
                  for k in term_names},
    })
    out = {k: out[k] for k in EVAL_FIELDS if k in out}
    out.update({k: v for k, v in base.items() if k not in out})
    out["per_seed"] = [dict(r) for r in per_seed]
    return out


def evaluate_seeds(task, policies, **kwargs) -> dict:
    """Evaluate one policy per training seed (a dict seed -> policy, or a list of (seed, policy))
    on the same evaluation seed; returns the aggregate eval.json dict with a "per_seed" list."""
    items = list(policies.items()) if isinstance(policies, Mapping) else list(policies)
    if not items:
        raise ValueError("evaluate_seeds needs at least one (seed, policy)")
    video = kwargs.pop("video", None)
    per_seed, first = [], None
    for k, (pseed, policy) in enumerate(items):
        r = evaluate(task, policy, policy_seed=int(pseed), video=video if k == 0 else None, **kwargs)
        first = first or r
        per_seed.append({"seed": int(pseed), **{f: r[f] for f in PER_SEED_FIELDS}})
    base = {k: first[k] for k in ("task", "task_version", "reward", "episodes", "eval_seed", "deterministic")}
    if video:
        base["video"] = str(video)
    return aggregate_seeds(per_seed, base)


def write_eval_json(run_dir_or_path, result: Mapping) -> Path:
    """Write eval.json atomically into a run dir, or to a .json path (robreward.rundir.write_eval)."""
    return write_eval(run_dir_or_path, dict(result))


def read_eval_json(run_dir_or_path) -> dict:
    """Read a run's eval.json (a run dir or the file itself), with a clear error."""
    return read_eval(run_dir_or_path)
