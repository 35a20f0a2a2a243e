"""Native MuJoCo backend: `mujoco.batch.Batch`, threaded, bit-identical to mj_step."""

from __future__ import annotations

import os
import warnings

import mujoco
import numpy as np
import torch
from mujoco.batch import Batch, SimulationError

# mjtWarning counters that mean the physics broke (MuJoCo resets such a world silently)
_BAD_WARNINGS = [
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class CpuSimulator:
    """N worlds of one model on a thread pool; raw fields come out as float64 torch tensors."""

    backend = "cpu"

    def __init__(self, model: mujoco.MjModel, num_envs: int, fields: tuple[str, ...], device: torch.device,
                 nthread: int | None = None):
        self.model = model
        self.num_envs = num_envs
        self.device = device
        self.batch = Batch(model, num_envs, nthread if nthread is not None else default_threads())
        self.fields = ("qpos", "qvel") + tuple(f for f in fields if f not in ("qpos", "qvel"))
        self._views = {name: self.batch.bind(name) for name in self.fields}
        self._ctrl = self.batch.bind("ctrl")
        self._mocap_pos = self.batch.bind("mocap_pos") if model.nmocap else None
        self.nstate = self.batch.nstate

    # -- raw data -----------------------------------------------------------------------
    def read(self) -> dict[str, torch.Tensor]:
        """A snapshot (copy) of every bound field, float64 [N, ...] on the env's device."""
        out = {}
        for name, view in self._views.items():
            out[name] = torch.from_numpy(np.array(view, dtype=np.float64)).to(self.device)
        return out

    def set_ctrl(self, ctrl: torch.Tensor) -> None:
        self._ctrl[:] = ctrl.detach().to("cpu", torch.float64).numpy()

    # -- stepping -----------------------------------------------------------------------
    def step(self, nstep: int) -> np.ndarray:
        """Advance every world nstep substeps. Returns a bool mask [N] of worlds that broke."""
        before = self.batch.warning[:, _BAD_WARNINGS, 1].copy()
        broken = np.zeros(self.num_envs, dtype=bool)
        try:
            self.batch.step(nstep=nstep)
        except SimulationError as err:  # those worlds kept their old state; reset them
            broken[err.ids] = True
        broken |= (self.batch.warning[:, _BAD_WARNINGS, 1] > before).any(axis=1)
        state = self.batch.state
        broken |= ~np.isfinite(state).all(axis=1)
        broken |= (np.abs(state) > 1e8).any(axis=1)  # overflow on the way to inf
        return broken

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray, mocap_pos=None,
              model_fields=None) -> None:
        """mj_resetData, then the given initial conditions, then mj_forward (as Gymnasium does)."""
        if model_fields:
            for name, values in model_fields.items():
                self.batch.expand(name)[ids] = values
        self.batch.reset(ids, stage=int(mujoco.mjtStage.mjSTAGE_NONE))
        self._views["qpos"][ids] = qpos
        self._views["qvel"][ids] = qvel
        if mocap_pos is not None:
            self._mocap_pos[ids] = mocap_pos
        self.batch.forward(ids)

    def get_state(self) -> torch.Tensor:
        return torch.from_numpy(self.batch.state.copy()).to(self.device)

    def set_state(self, states: np.ndarray, ids: np.ndarray) -> None:
        self.batch.state[ids] = states
        self.batch.forward(ids)

    def model_of(self, world: int) -> mujoco.MjModel:
        return self.batch.get_model(world)

    def data_of(self, world: int, model: mujoco.MjModel | None = None) -> mujoco.MjData:
        """An MjData of one world with every derived field computed (for rendering)."""
        model = model if model is not None else self.model_of(world)
        data = self.batch.get_data(world, mujoco.MjData(model))
        mujoco.mj_forward(model, data)
        return data


