"""Gymnasium adapters over the same BatchedEnv: a single Env, and a VectorEnv in
Gymnasium's default NEXT_STEP autoreset mode, so Gymnasium's own wrappers work."""

from __future__ import annotations

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from robreward.envs.batched import BatchedEnv
from robreward.envs.registry import register_gymnasium_envs  # noqa: F401  (its home before; kept importable)


def _spaces(env: BatchedEnv):
    obs_space = spaces.Box(-np.inf, np.inf, shape=(env.obs_dim,), dtype=np.float32)
    act_space = spaces.Box(np.asarray(env.spec.action_low, np.float32), np.asarray(env.spec.action_high, np.float32),
                           dtype=np.float32)
    return obs_space, act_space


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class GymEnv(gymnasium.Env):
    """One world of a robreward task as a plain Gymnasium Env (``gymnasium.make("robreward/cheetah-run-v0")``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, task: str, render_mode: str | None = None, width: int = 320, height: int = 240, **kwargs):
        self.env = BatchedEnv(task, num_envs=1, **kwargs)
        self.observation_space, self.action_space = _spaces(self.env)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.env.dt))}
        self._size = (width, height)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is None and self.env.state is None:
            seed = int(self.np_random.integers(2**31))
        obs, _ = self.env.reset(seed=seed)
        return _to_numpy(obs[0]), {}

    def step(self, action):
        action = torch.as_tensor(np.asarray(action, dtype=np.float32).reshape(1, -1))
        _, reward, terminated, truncated, info = self.env.step(action)
        obs = _to_numpy(info["final_obs"][0])  # the caller resets; the batched env already did
        out_info = {"reward_terms": {k: float(v[0]) for k, v in info["reward_terms"].items()},
                    "success": bool(info["success"][0]), "fitness": float(info["fitness"][0])}
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), out_info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.env.render([0], *self._size, renderer="egl")[0]

    def close(self):
        self.env.close()


class GymVectorEnv(VectorEnv):
    """N worlds as a Gymnasium VectorEnv (NEXT_STEP autoreset: a world that ended is reset on
    the following step, which returns its first observation with zero reward)."""

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, task: str, num_envs: int, render_mode: str | None = None, **kwargs):
        self.env = kwargs.pop("env", None) or BatchedEnv(task, num_envs=num_envs, **kwargs)
        self.num_envs = self.env.num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self._pending = np.zeros(self.num_envs, dtype=bool)  # worlds to present as reset next step
        self._pending_states = None
        self._pending_obs = None

    def reset(self, *, seed=None, options=None):
        if seed is not None and not isinstance(seed, int):
            seed = int(seed[0])
        obs, _ = self.env.reset(seed=seed)
        self._pending[:] = False
        return _to_numpy(obs), {}

    def step(self, actions):
        actions = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.env.device)
        obs, reward, terminated, truncated, info = self.env.step(actions)
        out_obs = _to_numpy(info["final_obs"]).copy()
        reward = _to_numpy(reward).astype(np.float64)
        terminated = _to_numpy(terminated).copy()
        truncated = _to_numpy(truncated).copy()
        pending = np.flatnonzero(self._pending)
        if len(pending):
            # these worlds ended last step: undo this step for them and present their reset obs
            self.env.set_state(self._pending_states, pending)
            out_obs[pending] = self._pending_obs
            reward[pending] = 0.0
            terminated[pending] = False
            truncated[pending] = False
        done = np.flatnonzero(terminated | truncated)
        self._pending[:] = False
        if len(done):
            self._pending[done] = True
            self._pending_states = self.env.get_state()[done].cpu().numpy()
            self._pending_obs = _to_numpy(self.env.obs[done])
        infos = {"success": _to_numpy(info["success"]), "fitness": _to_numpy(info["fitness"])}
        return out_obs, reward, terminated, truncated, infos

    def render(self):
        return self.env.render(range(self.num_envs), renderer="egl") if self.render_mode == "rgb_array" else None

    def close_extras(self, **kwargs):
        self.env.close()
