"""Stable-Baselines3 VecEnv over a BatchedEnv (same-step autoreset, terminal_observation in infos)."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robreward.envs.batched import BatchedEnv
from robreward.envs.gym_adapter import _spaces


class SB3VecEnv(VecEnv):
    def __init__(self, env: BatchedEnv | str, num_envs: int | None = None, **kwargs):
        if not isinstance(env, BatchedEnv):
            env = BatchedEnv(env, num_envs=num_envs or 1, **kwargs)
        self.env = env
        obs_space, act_space = _spaces(env)
        super().__init__(env.num_envs, obs_space, act_space)
        self._actions = None
        self._seed = None

    def reset(self):
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs.cpu().numpy()

    def seed(self, seed=None):
        self._seed = seed
        return [seed] * self.num_envs

    def step_async(self, actions):
        self._actions = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.env.device)

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        done = (terminated | truncated).cpu().numpy()
        final_obs = info["final_obs"].cpu().numpy()
        trunc = truncated.cpu().numpy()
        success = info["success"].cpu().numpy()
        infos = []
        for i in range(self.num_envs):
            item = {"success": bool(success[i])}
            if done[i]:
                item["terminal_observation"] = final_obs[i]
                item["TimeLimit.truncated"] = bool(trunc[i])
            infos.append(item)
        return obs.cpu().numpy(), reward.cpu().numpy().astype(np.float32), done, infos

    def close(self):
        self.env.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        setattr(self.env, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._get_indices(indices))

    def get_images(self):
        return list(self.env.render(range(self.num_envs), renderer="egl"))
