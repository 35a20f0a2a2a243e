"""Shared pieces of the Gymnasium-v5 twin tasks: their XML (from the installed package) and
the observation/reset conventions Gymnasium uses."""

from __future__ import annotations

import warnings
from pathlib import Path

import mujoco
import numpy as np
import torch

from robreward.envs.spec import ResetSample, TaskContext


def gymnasium_asset(name: str) -> Path:
    """Path of a MuJoCo scene shipped inside the installed gymnasium package (never copied)."""
    import gymnasium.envs.mujoco as gym_mujoco

    path = Path(gym_mujoco.__file__).parent / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install gymnasium[mujoco] >= 1.0")
    return path


def load_gymnasium_model(name: str) -> mujoco.MjModel:
    """Compile a Gymnasium scene, unchanged.

    Tasks that observe cfrc_ext list it in sim_fields; the CPU backend then runs
    mj_rnePostConstraint after every step, as Gymnasium does. (A hidden force sensor would
    not do: these scenes use RK4, and the last Runge-Kutta stage, whose values mj_step leaves
    in MjData, skips sensors.)"""
    spec = mujoco.MjSpec.from_file(str(gymnasium_asset(name)))
    with warnings.catch_warnings():  # gymnasium's XML uses a deprecated compiler attribute
        warnings.simplefilter("ignore", UserWarning)
        return spec.compile()


def uniform_noise_reset(scale: float, qvel_normal: bool):
    """Gymnasium's reset: qpos0 + U(-s, s); qvel + U(-s, s) or s * N(0, 1)."""

    def sample(rng: np.random.Generator, n: int, ctx: TaskContext) -> ResetSample:
        model = ctx.model
        qpos = model.qpos0[None, :] + rng.uniform(-scale, scale, size=(n, model.nq))
        if qvel_normal:
            qvel = scale * rng.standard_normal(size=(n, model.nv))
        else:
            qvel = rng.uniform(-scale, scale, size=(n, model.nv))
        return ResetSample(qpos=qpos, qvel=qvel)

    return sample


def ctrl_cost(state, action) -> torch.Tensor:
    return (action.to(torch.float32) ** 2).sum(-1)


def never(state) -> torch.Tensor:
    return torch.zeros(state.num_envs, dtype=torch.bool, device=state.qpos.device)


def ctrl_range(model: mujoco.MjModel) -> tuple[tuple[float, ...], tuple[float, ...]]:
    low, high = model.actuator_ctrlrange.T
    return tuple(float(x) for x in low), tuple(float(x) for x in high)


def distance_version(v0, name: str, version: int, goal: float, description: str, v0_test: str):
    """A version of locomotion task ``v0`` whose success is the torso reaching x >= ``goal`` m from the start
    (hopper-hop-v1, humanoid-run-v1): success at any step, the fitness (hence the sparse reward) 1 on each step
    beyond it, else 0; body, observation, hand reward, termination and reset stay v0's. ``v0_test``: what v0's
    success test was, for the notes."""
    import dataclasses

    def reached(state):
        return state.x_position >= goal

    return dataclasses.replace(
        v0, name=name, version=version, description=description, success=reached,
        fitness=lambda s: reached(s).to(torch.float32), success_threshold=None, gymnasium_twin=None,
        notes=f"fitness: 1 on each step with the torso at x >= {goal:g} m, else 0 (the episode mean is the share of "
              f"steps beyond the goal); success: x >= {goal:g} m at some step. v0 ({v0.name}): {v0_test}")
