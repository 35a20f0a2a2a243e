"""Gymnasium Env / VectorEnv and SB3 VecEnv adapters over the same BatchedEnv."""

import dataclasses
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import robreward
from robreward.envs.gym_adapter import GymVectorEnv
from robreward.envs.registry import get_task
from robreward.envs.sb3_adapter import SB3VecEnv

TASKS = robreward.task_names()


@pytest.mark.parametrize("task", TASKS)
def test_env_checkers_pass(task):
    env = gymnasium.make(f"robreward/{task}-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # a checker warning fails the test
        # unbounded observations, exactly as Gymnasium's own MuJoCo envs declare them
        warnings.filterwarnings("ignore", message=".*observation space (minimum|maximum) value is")
        # Humanoid-v5's own action space is [-0.4, 0.4]; the twin keeps it
        warnings.filterwarnings("ignore", message="We recommend you to use a symmetric and normalized Box")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_gymnasium_make_matches_batched_env():
    env = gymnasium.make("robreward/cheetah-run-v0")
    obs, _ = env.reset(seed=5)
    batched = robreward.make("cheetah-run", num_envs=1, seed=5)
    ref, _ = batched.reset()
    np.testing.assert_array_equal(obs, ref[0].numpy())
    action = np.full(6, 0.3, dtype=np.float32)
    obs, reward, terminated, truncated, info = env.step(action)
    ref, ref_reward, *_ = batched.step(torch.from_numpy(action)[None])
    np.testing.assert_array_equal(obs, ref[0].numpy())
    assert reward == pytest.approx(float(ref_reward[0]))
    assert set(info["reward_terms"]) == {"forward", "ctrl"}


def test_vector_env_next_step_autoreset():
    short = dataclasses.replace(get_task("cheetah-run"), episode_length=3)
    venv = GymVectorEnv(short, num_envs=2, seed=0)
    assert venv.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, 17) and venv.observation_space.contains(obs)
    actions = np.zeros((2, 6), dtype=np.float32)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = venv.step(actions)
    assert truncated.all()
    last = obs.copy()
    # NEXT_STEP: the step after the end returns the reset observation with zero reward
    obs, reward, terminated, truncated, _ = venv.step(actions)
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    assert not np.allclose(obs, last)
    assert (venv.env.episode_step == 0).all()
    # and the following step is the first step of the new episode
    venv.step(actions)
    assert (venv.env.episode_step == 1).all()


def test_vector_env_works_with_gymnasium_wrappers():
    venv = gymnasium.make_vec("robreward/cheetah-run-v0", num_envs=4)
    assert isinstance(venv.unwrapped, GymVectorEnv)
    venv = gymnasium.wrappers.vector.RecordEpisodeStatistics(venv)
    venv = gymnasium.wrappers.vector.NormalizeObservation(venv)
    obs, _ = venv.reset(seed=0)
    for _ in range(5):
        obs, *_ = venv.step(venv.action_space.sample())
    assert obs.shape == (4, 17) and np.isfinite(obs).all()


def test_sb3_vec_env_terminal_observation_and_ppo_smoke():
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    short = dataclasses.replace(get_task("cheetah-run"), episode_length=4)
    venv = SB3VecEnv(short, num_envs=2, seed=0)
    venv.reset()
    for _ in range(4):
        obs, reward, done, infos = venv.step(np.zeros((2, 6), dtype=np.float32))
    assert done.all()
    assert infos[0]["terminal_observation"].shape == (17,)
    assert infos[0]["TimeLimit.truncated"] is True
    assert not np.allclose(infos[0]["terminal_observation"], obs[0])
    model = PPO("MlpPolicy", VecMonitor(venv), n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    assert model.num_timesteps >= 64
