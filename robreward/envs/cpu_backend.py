"""Native MuJoCo backend: `mujoco.batch.Batch`, threaded, bit-identical to mj_step."""

from __future__ import annotations

import os

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
# consecutive in mjtWarning: a slice reads them without a fancy-index copy (per-step cost)
_BAD_SLICE = (slice(min(_BAD_WARNINGS), max(_BAD_WARNINGS) + 1)
              if sorted(_BAD_WARNINGS) == list(range(min(_BAD_WARNINGS), max(_BAD_WARNINGS) + 1)) else _BAD_WARNINGS)
_OVERFLOW = 1e8  # |state| beyond this is on the way to inf


# MjData fields that only mj_rnePostConstraint computes. Gymnasium calls it after mj_step; a
# sensor that triggers it inside mj_step is not equivalent for RK4 models (Hopper, Ant,
# Humanoid): mj_step's derived fields come from the last Runge-Kutta stage, whose forward pass
# skips sensors. So these fields are computed after every step, per world, from the batch's
# persistent MjData, exactly as Gymnasium's mj_rnePostConstraint after mj_step.
RNE_POST_FIELDS = ("cacc", "cfrc_int", "cfrc_ext")


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
        self.fields = ("qpos", "qvel") + tuple(f for f in fields if f not in ("qpos", "qvel"))
        self._post_fields = tuple(f for f in self.fields if f in RNE_POST_FIELDS)
        # persistent: one MjData per world, so get_data() sees the world's own derived fields
        self.batch = Batch(model, num_envs, nthread if nthread is not None else default_threads(),
                           persistent=bool(self._post_fields))
        self._views = {name: self.batch.bind(name) for name in self.fields if name not in self._post_fields}
        if self._post_fields:
            self._scratch = mujoco.MjData(model)
            for name in self._post_fields:
                self._views[name] = np.zeros((num_envs, *getattr(self._scratch, name).shape))
        self._ctrl = self.batch.bind("ctrl")
        self._mocap_pos = self.batch.bind("mocap_pos") if model.nmocap else None
        self.nstate = self.batch.nstate
        self._warnings = None  # per-world bad-warning counts after the last step (None: count afresh)

    # -- raw data -----------------------------------------------------------------------
    def read(self) -> dict[str, torch.Tensor]:
        """A snapshot (copy) of every bound field, float64 [N, ...] on the env's device."""
        if self.device.type == "cpu":  # the per-step path: skip a no-op .to() per field
            return {name: torch.from_numpy(np.array(view, dtype=np.float64)) for name, view in self._views.items()}
        return {name: torch.from_numpy(np.array(view, dtype=np.float64)).to(self.device)
                for name, view in self._views.items()}

    def set_ctrl(self, ctrl: torch.Tensor) -> None:
        self._ctrl[:] = ctrl.detach().cpu().numpy()  # numpy casts to float64 in the copy

    # -- stepping -----------------------------------------------------------------------
    def step(self, nstep: int) -> np.ndarray:
        """Advance every world nstep substeps. Returns a bool mask [N] of worlds that broke."""
        # the counts after the last step, unless a reset or set_state since may have cleared them
        warnings_before = self._warnings if self._warnings is not None else self._warning_counts()
        broken = np.zeros(self.num_envs, dtype=bool)
        try:
            self.batch.step(nstep=nstep)
        except SimulationError as err:  # those worlds kept their old state; reset them
            broken[err.ids] = True
        self._warnings = self._warning_counts()
        broken |= self._warnings > warnings_before
        # NaN, inf or overflow: NaN fails every comparison (and NaN is what max and min return
        # when there is one). The per-world check runs only when the extremes are out of bounds.
        # (Not np.dot: BLAS threads would compete with the simulator's pool.)
        state = self.batch.state
        if not (state.max() <= _OVERFLOW and state.min() >= -_OVERFLOW):
            broken |= ~(np.abs(state).max(axis=1) <= _OVERFLOW)
        if self._post_fields:
            self._rne_post()
        return broken

    def _warning_counts(self) -> np.ndarray:
        return self.batch.warning[:, _BAD_SLICE, 1].sum(axis=1)

    def _rne_post(self) -> None:
        """mj_rnePostConstraint on every world's MjData after the step, as Gymnasium does."""
        data, batch, views = self._scratch, self.batch, self._views
        per_world_model = bool(batch._expanded) or batch.models is not None
        for k in range(self.num_envs):
            batch.get_data(k, data)
            mujoco.mj_rnePostConstraint(batch.get_model(k) if per_world_model else self.model, data)
            for name in self._post_fields:
                views[name][k] = getattr(data, name)

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray, mocap_pos=None,
              model_fields=None) -> None:
        """mj_resetData, then the given initial conditions, then mj_forward (as Gymnasium does)."""
        self._warnings = None  # mj_resetData clears warnings: the next step counts afresh
        if model_fields:
            for name, values in model_fields.items():
                self.batch.expand(name)[ids] = values
        if self.batch._expanded or self.batch.models is not None:
            # per-world models: their default states may differ (qpos0, mocap bodies)
            self.batch.reset(ids, stage=int(mujoco.mjtStage.mjSTAGE_NONE))
        else:
            # the state row mj_resetData leaves, written without a call into the thread pool:
            # a call for a few worlds waits for the pool's threads to wake, milliseconds on a
            # loaded machine. Derived fields are all recomputed by the forward() below.
            self.batch.state[ids] = self._reset_state()
        self._views["qpos"][ids] = qpos
        self._views["qvel"][ids] = qvel
        if mocap_pos is not None:
            self._mocap_pos[ids] = mocap_pos
        self.batch.forward(ids)

    def _reset_state(self) -> np.ndarray:
        """The mjSTATE_INTEGRATION row of a freshly mj_resetData'd MjData of the model."""
        if getattr(self, "_default_state", None) is None:
            data = mujoco.MjData(self.model)
            mujoco.mj_resetData(self.model, data)
            state = np.empty(self.nstate)
            mujoco.mj_getState(self.model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
            self._default_state = state
        return self._default_state

    def get_state(self) -> torch.Tensor:
        return torch.from_numpy(self.batch.state.copy()).to(self.device)

    def set_state(self, states: np.ndarray, ids: np.ndarray) -> None:
        self._warnings = None
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


