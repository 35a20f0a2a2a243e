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


def load_gymnasium_model(name: str, need_cfrc_ext: bool = False) -> mujoco.MjModel:
    """Compile a Gymnasium scene. With need_cfrc_ext, add one hidden accelerometer so that
    every mj_step runs mj_rnePostConstraint and fills cfrc_ext, which Gymnasium gets by calling
    it after stepping; physics are unchanged (a sensor applies no force)."""
    spec = mujoco.MjSpec.from_file(str(gymnasium_asset(name)))
    if need_cfrc_ext:
        body = spec.worldbody.first_body()
        site = body.add_site(name="robreward_rnepost", group=5, size=[0.001, 0.001, 0.001])
        spec.add_sensor(name="robreward_rnepost", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER,
                        objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site.name)
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
