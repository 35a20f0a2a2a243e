"""Record demonstrations: a task's scripted expert or a trained policy, with optional action
noise, batched over worlds (each world records whole episodes, one after another).

    record("push", "expert", episodes=50, out="demos/push-expert.h5", seed=0, noise=0.3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robreward.demos.format import DemoWriter, file_meta
from robreward.envs.batched import BatchedEnv
from robreward.envs.registry import get_task


class RecordingEnv(BatchedEnv):
    """A BatchedEnv that keeps the full float64 state of every world as it was right after a
    step, before the same-step auto-reset overwrote the worlds that ended (``final_full_state``)."""

    final_full_state: torch.Tensor | None = None

    def _reset_worlds(self, ids):
        if self.state is not None:  # inside step(): the post-step state of the ended worlds
            self.final_full_state = self.sim.get_state()
        super()._reset_worlds(ids)

    def step(self, action):
        self.final_full_state = None
        out = super().step(action)
        post = self.get_state()
        done = (out[2] | out[3]).to(post.device)
        if bool(done.any()):
            if self.final_full_state is None:  # BatchedEnv no longer resets through _reset_worlds
                raise RuntimeError("RecordingEnv could not capture the pre-reset states: BatchedEnv's "
                                   "auto-reset changed; update robreward/demos/record.py")
            post[done] = self.final_full_state.to(post.device)[done]
        out[4]["post_step_full_state"] = post  # float64 [N, nstate], before any reset
        return out


def state_slices(model) -> tuple[slice, slice]:
    """qpos and qvel inside an mjSTATE_INTEGRATION row (time comes first)."""
    return slice(1, 1 + model.nq), slice(1 + model.nq, 1 + model.nq + model.nv)


def model_field_names(spec, env) -> list[str]:
    """Names of the model fields the task randomizes per world (empty for most tasks)."""
    sample = spec.sample_reset(np.random.default_rng(0), 1, env.ctx)
    return sorted(sample.model_fields or {})


def read_model_fields(env, names, world: int) -> dict:
    if not names:
        return {}
    batch = getattr(env.sim, "batch", None)
    if batch is None:
        raise ValueError(f"recording a task with randomized model fields ({', '.join(names)}) needs the cpu backend")
    return {n: np.array(batch.expanded(n)[world]) for n in names}


def make_policy(source: str, spec, device="cpu"):
    """'expert' -> the task's scripted expert (TaskState -> action); else a run dir or policy
    file through robreward.rl.load_policy (obs -> action). Returns (fn(env) -> action, label)."""
    if source == "expert":
        if spec.expert is None:
            from robreward.envs.registry import task_names

            with_expert = [n for n in task_names() if get_task(n).expert is not None]
            raise ValueError(f"task {spec.name!r} has no scripted expert; tasks with one: "
                             f"{', '.join(with_expert) or 'none yet'}; or pass a policy file / run dir as --source")
        return (lambda env: spec.expert(env.state)), "expert"
    if callable(source):
        return (lambda env: source(env.obs)), getattr(source, "__name__", "callable")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"--source {source!r}: neither 'expert' nor an existing policy file or run directory")
    try:
        from robreward.rl import load_policy
    except ImportError as err:
        raise ValueError(f"--source {source!r} needs robreward.rl.load_policy, which is not available here ({err})") from None
    policy = load_policy(str(path), task=spec)  # refuses a policy of other observation/action sizes

    def act(env):
        out = policy(env.obs.detach().cpu().numpy() if not isinstance(env.obs, np.ndarray) else env.obs)
        return torch.as_tensor(np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out),
                               dtype=torch.float32, device=env.device)

    return act, str(path)


class _Episode:
    __slots__ = ("init", "fields", "obs", "qpos", "qvel", "actions", "rewards", "terms", "success", "frames", "world")

    def __init__(self, init, fields, obs0, qpos0, qvel0, frame0, world):
        self.init, self.fields, self.world = init, fields, world
        self.obs, self.qpos, self.qvel = [obs0], [qpos0], [qvel0]
        self.actions, self.rewards, self.terms, self.success = [], [], [], []
        self.frames = None if frame0 is None else [frame0]


def record(task, source, episodes: int, out, seed: int = 0, noise: float = 0.0, num_envs: int | None = None,
           frames: bool = False, frame_size=(160, 120), append: bool = True, force: bool = False,
           progress: bool = True, policy=None) -> dict:
    """Record `episodes` whole episodes of `task` into `out` (appending if it exists).

    source: 'expert' or a policy file / run dir (or any callable obs[B, D] -> actions, passed
    as `policy` with a descriptive `source` label). noise: Gaussian action noise with std =
    noise * half the action range (then clipped), for mixed-quality datasets.
    Returns a summary: episodes, success_rate, return_mean, path, first/last episode index.
    """
    spec = get_task(task)
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if noise < 0:
        raise ValueError(f"--noise must be >= 0, got {noise}")
    act_fn, label = make_policy(policy if policy is not None else source, spec)
    label = str(source) if policy is not None else label
    n = int(min(num_envs or 16, episodes))
    env = RecordingEnv(spec, num_envs=n, seed=seed)
    obs, _ = env.reset(seed=seed)
    model = env.model
    qs, vs = state_slices(model)
    names = model_field_names(spec, env)
    low, high = env.action_low, env.action_high
    half = (high - low) / 2.0
    gen = torch.Generator(device="cpu").manual_seed(int(seed) * 7919 + 1)
    meta = file_meta(spec, spec.build_model(), label)
    info_rec = {"seed": int(seed), "noise": float(noise), "episodes": int(episodes), "num_envs": n}

    def start(world, states, obs_rows):
        frame = env.render([world], *frame_size, renderer="egl")[0] if frames else None
        s = states[world].cpu().numpy().copy()
        return _Episode(s, read_model_fields(env, names, world), obs_rows[world].cpu().numpy(), s[qs], s[vs], frame, world)

    states = env.get_state()
    live = [start(w, states, obs) for w in range(n)]
    done_eps = []
    bar = tqdm(total=episodes, desc=f"record {spec.name} ({label})", disable=not progress, leave=False)
    with DemoWriter(out, meta, append=append, force=force, record_info=info_rec) as writer:
        while len(done_eps) < episodes:
            with torch.no_grad():
                action = act_fn(env)
            action = torch.as_tensor(action, dtype=torch.float32).to(env.device)
            if noise > 0:
                action = action + noise * half * torch.randn(action.shape, generator=gen).to(env.device)
            action = torch.clamp(action, low, high)  # what the env applies; stored as is
            obs, _, terminated, truncated, info = env.step(action)
            post = info["post_step_full_state"].cpu().numpy()
            final_obs = info["final_obs"].cpu().numpy()
            act_np = action.cpu().numpy()
            hand = info["hand_reward"].cpu().numpy()
            terms = {k: v.cpu().numpy() for k, v in info["hand_terms"].items()}
            succ = info["success"].cpu().numpy()
            done = (terminated | truncated).cpu().numpy()
            for w, ep in enumerate(live):
                ep.actions.append(act_np[w])
                ep.qpos.append(post[w, qs])
                ep.qvel.append(post[w, vs])
                ep.obs.append(final_obs[w])
                ep.rewards.append(hand[w])
                ep.terms.append({k: v[w] for k, v in terms.items()})
                ep.success.append(succ[w])
            if frames:  # frames of the post-step state: only for worlds still running
                for w, ep in enumerate(live):
                    if not done[w]:
                        ep.frames.append(env.render([w], *frame_size, renderer="egl")[0])
                    else:  # the world was reset already: render its final state from qpos/qvel
                        ep.frames.append(_render_state(env, w, post[w], frame_size))
            if done.any():
                states = env.get_state()
                for w in np.flatnonzero(done):
                    ep = live[w]
                    if len(done_eps) < episodes:
                        done_eps.append(ep)
                        _write(writer, ep, terminated[w].item(), seed, noise, label)
                        bar.update(1)
                    live[w] = start(w, states, obs)
    bar.close()
    env.close()
    succ_flags = [bool(np.any(ep.success)) for ep in done_eps]
    returns = [float(np.sum(ep.rewards)) for ep in done_eps]
    return {"task": spec.name, "source": label, "path": str(out), "episodes": len(done_eps),
            "first_episode": writer.first, "last_episode": writer.first + writer.count - 1,
            "success_rate": float(np.mean(succ_flags)), "return_mean": float(np.mean(returns)),
            "seed": int(seed), "noise": float(noise)}


def _render_state(env, world, full_state, size):
    """Render a world at a given full state, then put the world's live state back."""
    live = env.get_state()[world].clone()
    env.sim.set_state(np.asarray(full_state)[None], np.array([world]))
    frame = env.render([world], *size, renderer="egl")[0]
    env.sim.set_state(live.cpu().numpy()[None], np.array([world]))
    return frame


def _write(writer, ep, terminated, seed, noise, source):
    terms = {k: np.array([t[k] for t in ep.terms], np.float32) for k in (ep.terms[0] if ep.terms else {})}
    writer.add_episode(
        initial_state=ep.init, actions=np.stack(ep.actions), qpos=np.stack(ep.qpos), qvel=np.stack(ep.qvel),
        obs=np.stack(ep.obs), rewards=np.array(ep.rewards, np.float32), reward_terms=terms,
        success=np.array(ep.success, bool), model_fields=ep.fields,
        frames=None if ep.frames is None else np.stack(ep.frames),
        attrs={"terminated": bool(terminated), "seed": int(seed), "noise": float(noise), "source": source,
               "world": int(ep.world)})
