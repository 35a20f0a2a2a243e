"""MuJoCo Warp backend: N worlds of one model on a GPU (or on Warp's CPU device, for CI).

Mirrors :class:`robreward.envs.cpu_backend.CpuSimulator` (read / set_ctrl / step / reset /
get_state / set_state / model_of / data_of / nstate) so that ``BatchedEnv`` and every task run
unchanged on ``backend="warp"``.

How it works
  * ``mjw.put_model`` once, ``mjw.make_data(nworld=N, nconmax, njmax)`` with buffers sized per
    task: a short native-MuJoCo rollout with random controls measures the largest ncon/nefc,
    times a margin, never below MJWarp's own defaults (override: ``nconmax=``/``njmax=`` or the
    ROBREWARD_WARP_NCONMAX / ROBREWARD_WARP_NJMAX environment variables).
  * The decimated control step (frame_skip x ``mjw.step``) is captured once per frame skip in a
    graph (``wp.ScopedCapture``: a CUDA graph on the GPU; Warp 1.19 also replays graphs on its
    CPU device, so CI exercises the same path) and replayed with ``wp.capture_launch``.
  * Fields come out through ``wp.to_torch`` zero-copy views of the float32 device buffers;
    ``read()`` casts them to float64, which is a copy, so what it returns never changes when the
    simulator steps. On CUDA, Warp work runs on Warp's stream, ordered against torch's current
    stream with stream waits (no host synchronisation per step). ``step`` returns the broken
    mask as a bool tensor on the device (``BatchedEnv`` accepts it like the numpy mask).
  * Broken worlds: ``d.overflow`` bits for buffer overflows (nefc > njmax per world; contact
    overflow is global in MJWarp - contacts past naconmax are dropped from unknown worlds - so it
    flags every world), and any non-finite or > 1e8 value in qpos/qvel/qacc_warmstart. The bits
    are cleared after each step. Solver iteration-limit bits are not breakage and are ignored.
  * ``reset``: ``mjw.reset_data(m, d, reset=mask)``, then the given qpos/qvel/mocap rows, then
    ``mjw.forward``. MJWarp's forward has no world mask, so derived fields of the other worlds
    are saved and restored around it (their qpos/qvel/warm start are never touched).
  * ``get_state``/``set_state`` use MuJoCo's mjSTATE_INTEGRATION layout, float64, component
    sizes from ``mujoco.mj_stateSize``, so states move between the cpu and warp backends (values
    pass through float32 on the warp side). Plugin state is not supported (MJWarp has none).
  * Per-world model fields (``ResetSample.model_fields``): the batched ("*") MJWarp model array is
    expanded to nworld rows on first use and written per world; graphs are re-captured.
    Derived model constants are not recomputed (the cpu backend does not either).
  * cfrc_ext: MJWarp runs ``rne_postconstraint`` when an accelerometer-like sensor is present
    (what the tasks add) and we also set ``opt.run_rne_postconstraint`` whenever a task reads
    cfrc_ext, so it matches MuJoCo's mj_rnePostConstraint.
  * Rendering, two paths (``BatchedEnv.render(renderer=...)`` picks one):
      - ``render_batch``: MJWarp's ray-traced batch renderer on the Warp device. One render
        context per (width, height, camera) is built on first use and cached (it uploads
        textures and builds mesh and scene BVHs); each call runs ``refit_bvh`` (bodies move)
        and ``render`` on all N worlds (the kernel has no world mask) and returns the asked
        worlds as a uint8 torch tensor [B, H, W, 3] on the env device. The renderer's packed
        0xAARRGGBB uint32 pixels are reinterpreted as bytes in torch (no float round trip, no
        host copy). Model cameras only (a name or id): MJWarp has no free/tracking camera, so
        the tracking view that robreward.envs.render uses for ``camera=None`` is EGL-only.
        No shadows, textures on, geom groups 0-2, black background, no skybox (like the fast
        EGL settings). MJWarp draws geoms only, not sites: push's green goal site is missing
        from its frames. Matches EGL to ~7/255 mean abs. per pixel (push, 64 px; the cube's
        pixels coincide: tests/envs/test_warp_render.py). On Warp's CPU device (CI) a 2-world
        64x64 render takes ~20 ms after the first call.
      - EGL: ``data_of(world)`` copies one world's integration state into a CPU MjData
        (``mj_setState`` + ``mj_forward``) for MuJoCo's OpenGL renderer (any camera).

Differences from the cpu backend (measured by tests/envs/test_warp.py)
  * float32 physics: one control step from the same full state agrees to ~1e-5 in qpos/qvel on
    smooth models (HalfCheetah); long rollouts diverge chaotically, so returns are compared
    statistically.
  * PGS: MJWarp implements only CG and Newton (``put_model`` raises for PGS). Gymnasium's
    humanoid.xml uses PGS, so the warp backend switches such models to Newton with a warning;
    that task's parity is statistical, not per step.
  * RK4 (hopper, ant) matches MuJoCo to ~1e-7 per substep: not a source of difference.
  * ant-run: pyramidal friction cones + MJWarp's plane-capsule contact frame. MuJoCo takes the
    capsule axis as the contact's first tangent; MJWarp replaces it by a fixed axis when the
    axis projected on the plane is shorter than 0.5 (a leg steeper than 60 degrees), so the
    friction pyramid is rotated and the step differs (~5e-3 rel. qvel). With elliptic cones
    (tangent-frame independent) the same states agree to ~1e-6; the task keeps Gymnasium's
    pyramidal cones, so its per-step bound is looser and longer horizons are statistical.
  * lift / push: one or two worlds in eight with gripper/cube box contacts differ (lift 7e-4,
    push 4e-2 rel. qvel after one control step); elliptic cones do not remove it, so it is in
    MJWarp's box contact generation or its float32 solve. Not diagnosed further yet.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings

import mujoco
import numpy as np
import torch

_INTEGRATION = int(mujoco.mjtState.mjSTATE_INTEGRATION)
# state components in mjSTATE bit order -> MJWarp Data attribute (None: must be empty)
_STATE_ATTRS = {
    int(mujoco.mjtState.mjSTATE_TIME): "time",
    int(mujoco.mjtState.mjSTATE_QPOS): "qpos",
    int(mujoco.mjtState.mjSTATE_QVEL): "qvel",
    int(mujoco.mjtState.mjSTATE_ACT): "act",
    int(mujoco.mjtState.mjSTATE_HISTORY): "history",
    int(mujoco.mjtState.mjSTATE_WARMSTART): "qacc_warmstart",
    int(mujoco.mjtState.mjSTATE_CTRL): "ctrl",
    int(mujoco.mjtState.mjSTATE_QFRC_APPLIED): "qfrc_applied",
    int(mujoco.mjtState.mjSTATE_XFRC_APPLIED): "xfrc_applied",
    int(mujoco.mjtState.mjSTATE_EQ_ACTIVE): "eq_active",
    int(mujoco.mjtState.mjSTATE_MOCAP_POS): "mocap_pos",
    int(mujoco.mjtState.mjSTATE_MOCAP_QUAT): "mocap_quat",
    int(mujoco.mjtState.mjSTATE_USERDATA): "userdata",
    int(mujoco.mjtState.mjSTATE_PLUGIN): None,
    int(mujoco.mjtState.mjSTATE_PLASTIC): "plastic",
}
_OVERFLOW_LIMIT = 1e8  # like the cpu backend: on the way to inf


def _import_warp():
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("backend='warp' needs MuJoCo Warp: pip install -e '.[warp]' "
                          "(mujoco-warp==4.0.0, warp-lang==1.19.0)") from err
    wp.config.quiet = True
    if hasattr(wp, "LOG_WARNING"):  # warp >= 1.19 logs every module load at INFO
        wp.config.log_level = wp.LOG_WARNING
    wp.init()
    return wp, mjw


def _round_size(n: float) -> int:
    """Round up to MJWarp's size ladder 16, 24, 32, 48, 64, 96, ..."""
    sizes = (2 + (np.arange(24) % 2)) * (2 ** (np.arange(24) // 2 + 3))
    return int(sizes[np.searchsorted(sizes, n)])


def contact_budget(mjm: mujoco.MjModel, episodes: int = 3, steps: int = 300, seed: int = 0) -> tuple[int, int]:
    """Largest ncon and nefc seen in short native rollouts with random controls from qpos0."""
    data = mujoco.MjData(mjm)
    rng = np.random.default_rng(seed)
    lo, hi = mjm.actuator_ctrlrange[:, 0].copy(), mjm.actuator_ctrlrange[:, 1].copy()
    unlimited = ~mjm.actuator_ctrllimited.astype(bool)
    lo[unlimited], hi[unlimited] = -1.0, 1.0
    ncon = nefc = 0
    for _ in range(episodes):
        mujoco.mj_resetData(mjm, data)
        data.qvel[:] = 0.1 * rng.standard_normal(mjm.nv)
        for _ in range(steps):
            data.ctrl[:] = rng.uniform(lo, hi)
            mujoco.mj_step(mjm, data)
            if not np.isfinite(data.qpos).all():
                break
            ncon, nefc = max(ncon, data.ncon), max(nefc, data.nefc)
    return ncon, nefc


def prepare_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy of the model with the options MJWarp supports (PGS -> Newton, with a warning)."""
    mjm = copy.copy(model)
    if mjm.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        warnings.warn("MuJoCo Warp does not implement the PGS solver: the warp backend uses Newton "
                      "for this model (same constraints, different solver; parity is statistical)",
                      stacklevel=3)
        mjm.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    return mjm


class WarpSimulator:
    """N worlds of one model in MuJoCo Warp; raw fields come out as float64 torch tensors."""

    backend = "warp"

    def __init__(self, model: mujoco.MjModel, num_envs: int, fields: tuple[str, ...], device: torch.device,
                 nconmax: int | None = None, njmax: int | None = None):
        wp, mjw = _import_warp()
        self.wp, self.mjw = wp, mjw
        self.device = torch.device(device)
        self.num_envs = num_envs
        self.model = model  # what the task and the renderer see
        self.mjm = prepare_model(model)  # what MJWarp simulates
        if self.device.type == "cuda":
            self.wp_device = wp.get_device(f"cuda:{self.device.index or 0}")
        else:
            self.wp_device = wp.get_device("cpu")
        env_con, env_efc = os.environ.get("ROBREWARD_WARP_NCONMAX"), os.environ.get("ROBREWARD_WARP_NJMAX")
        nconmax = nconmax or (int(env_con) if env_con else None)
        njmax = njmax or (int(env_efc) if env_efc else None)
        if nconmax is None or njmax is None:
            ncon, nefc = contact_budget(self.mjm)
            nconmax = nconmax or _round_size(max(48, 2 * ncon + 8))
            njmax = njmax or _round_size(max(64, 1.5 * nefc + 16))
        self.nconmax, self.njmax = int(nconmax), int(njmax)
        self.fields = ("qpos", "qvel") + tuple(f for f in fields if f not in ("qpos", "qvel"))
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(self.mjm)
            self.d = mjw.make_data(self.mjm, nworld=num_envs, nconmax=self.nconmax, njmax=self.njmax)
            self._mask = wp.zeros(num_envs, dtype=bool)
        # we detect overflow per world ourselves; keep only MJWarp's once-per-step contact prints
        ot = mjw.OverflowType
        self.m.opt.warn_overflow = int(ot.BROADPHASE | ot.NARROWPHASE)
        self._bad_bits = int(ot.ALL) & ~int(ot.ITERATIONS) & ~int(ot.LS_ITERATIONS)
        if "cfrc_ext" in self.fields:
            self.m.opt.run_rne_postconstraint = True
        probe = mujoco.MjData(self.mjm)
        self._shapes = {}
        for name in self.fields:
            if not hasattr(self.d, name) or not hasattr(probe, name):
                raise ValueError(f"the warp backend cannot read MjData field {name!r}: MuJoCo Warp's Data has no such field")
            self._shapes[name] = tuple(np.shape(getattr(probe, name)))
        self._views = {name: self._view(name) for name in self.fields}
        self._ctrl = self._view("ctrl")
        self._mocap_pos = self._view("mocap_pos") if self.mjm.nmocap else None
        self._overflow = wp.to_torch(self.d.overflow)
        self._mask_t = wp.to_torch(self._mask)
        self._layout = self._state_layout()
        self.nstate = mujoco.mj_stateSize(self.mjm, _INTEGRATION)
        self._graphs: dict[int, object] = {}
        self._use_graph = os.environ.get("ROBREWARD_WARP_GRAPH", "1") != "0"
        self._randomized: set[str] = set()
        self._warm = False
        self._render_ctx: dict[tuple[int, int, int], object] = {}  # (width, height, camera id)
        if self.device.type == "cuda":
            self._wp_stream = wp.get_stream(self.wp_device)
            self._torch_stream = wp.stream_to_torch(self._wp_stream)

    # -- plumbing -----------------------------------------------------------------------
    def _view(self, name: str, n: int | None = None) -> torch.Tensor:
        """Zero-copy torch view [N, ...] of a Data field, MuJoCo's per-world shape."""
        arr = getattr(self.d, name)
        n = self.num_envs if n is None else n
        if arr.size == 0:
            return torch.zeros((n, 0), device=self.device)
        t = self.wp.to_torch(arr)
        shape = self._shapes.get(name) or tuple(np.shape(getattr(mujoco.MjData(self.mjm), name)))
        return t.reshape(n, *shape)

    @contextlib.contextmanager
    def _on_warp_stream(self):
        """Run Warp launches (and torch writes into Warp buffers) ordered after torch's current
        stream, and let torch's current stream wait for them afterwards: no host sync."""
        if self.device.type != "cuda":
            with self.wp.ScopedDevice(self.wp_device):
                yield
            return
        caller = torch.cuda.current_stream(self.device)
        self._torch_stream.wait_stream(caller)
        with self.wp.ScopedDevice(self.wp_device), torch.cuda.stream(self._torch_stream):
            yield
        caller.wait_stream(self._torch_stream)

    def _rows(self, ids) -> torch.Tensor:
        return torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device)

    # -- raw data -----------------------------------------------------------------------
    def read(self) -> dict[str, torch.Tensor]:
        """A snapshot (float64 copy) of every bound field [N, ...] on the env's device."""
        return {name: view.to(torch.float64) for name, view in self._views.items()}

    def set_ctrl(self, ctrl: torch.Tensor) -> None:
        with self._on_warp_stream():
            self._ctrl.copy_(ctrl.detach().to(self.device, torch.float32))

    # -- stepping -----------------------------------------------------------------------
    def _launch_steps(self, nstep: int) -> None:
        for _ in range(nstep):
            self.mjw.step(self.m, self.d)

    def _graph(self, nstep: int):
        """The captured graph of nstep substeps (None: plain launches). Capture records without
        running, on CUDA and on Warp's CPU device alike."""
        graph = self._graphs.get(nstep)
        if graph is not None or not self._use_graph:
            return graph
        if not self._warm:
            # compile and load every module on a scratch one-world Data, so the capture records
            # launches only and the real worlds do not move
            scratch = self.mjw.make_data(self.mjm, nworld=1, nconmax=self.nconmax, njmax=self.njmax)
            self.mjw.step(self.m, scratch)
            self._warm = True
        try:
            with self.wp.ScopedCapture(device=self.wp_device) as cap:
                self._launch_steps(nstep)
        except Exception as err:  # pragma: no cover - depends on the Warp build and driver
            warnings.warn(f"Warp graph capture failed ({type(err).__name__}: {err}); using plain launches")
            self._use_graph = False
            return None
        self._graphs[nstep] = cap.graph
        return cap.graph

    def step(self, nstep: int) -> torch.Tensor:
        """Advance every world nstep substeps. Returns a bool mask [N] (device tensor) of broken worlds."""
        with self._on_warp_stream():
            graph = self._graph(nstep)
            if graph is not None:
                self.wp.capture_launch(graph)
            else:
                self._launch_steps(nstep)
            broken = (self._overflow & self._bad_bits) != 0
            for name in ("qpos", "qvel", "qacc_warmstart"):
                v = self._view(name) if name not in self._views else self._views[name]
                broken |= ~(torch.isfinite(v) & (v.abs() <= _OVERFLOW_LIMIT)).all(-1)
            self._overflow.zero_()
        return broken

    # -- resets and states -------------------------------------------------------------
    @contextlib.contextmanager
    def _keep_others(self, mask: torch.Tensor):
        """MJWarp's forward has no world mask: keep the derived fields the task reads of the
        worlds not in `mask` as they were (qpos/qvel/warm start are not touched by forward)."""
        derived = [n for n in self.fields if n not in ("qpos", "qvel")]
        keep = ~mask
        saved = {n: self._views[n].clone() for n in derived} if bool(keep.any()) else {}
        yield
        for n, old in saved.items():
            self._views[n][keep] = old[keep]

    def _expand_model_field(self, name: str) -> torch.Tensor:
        arr = getattr(self.m, name, None)
        if arr is None or not hasattr(arr, "shape"):
            raise ValueError(f"per-world model field {name!r} does not exist in MuJoCo Warp's Model")
        if arr.shape[0] != self.num_envs:
            if arr.shape[0] != 1:
                raise ValueError(f"model field {name!r} cannot be randomized per world on the warp backend")
            host = np.repeat(arr.numpy(), self.num_envs, axis=0)
            setattr(self.m, name, self.wp.array(host, dtype=arr.dtype, device=self.wp_device))
            self._graphs.clear()  # graphs hold the old pointers
            self._randomized.add(name)
        return self.wp.to_torch(getattr(self.m, name)).reshape(self.num_envs, -1)

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray, mocap_pos=None,
              model_fields=None) -> None:
        """reset_data on the masked worlds, then the given initial conditions, then forward."""
        rows = self._rows(ids)
        if len(rows) == 0:
            return
        with self._on_warp_stream():
            for name, values in (model_fields or {}).items():
                view = self._expand_model_field(name)
                view[rows] = torch.as_tensor(np.asarray(values), dtype=view.dtype, device=self.device).reshape(len(rows), -1)
            self._mask_t.zero_()
            self._mask_t[rows] = True
            with self._keep_others(self._mask_t):
                self.mjw.reset_data(self.m, self.d, reset=self._mask)
                self._views["qpos"][rows] = torch.as_tensor(qpos, dtype=torch.float32, device=self.device)
                self._views["qvel"][rows] = torch.as_tensor(qvel, dtype=torch.float32, device=self.device)
                if mocap_pos is not None and self._mocap_pos is not None:
                    self._mocap_pos[rows] = torch.as_tensor(mocap_pos, dtype=torch.float32, device=self.device)
                self.mjw.forward(self.m, self.d)
            self._overflow[rows] = 0

    def _state_layout(self) -> list[tuple[str | None, int]]:
        layout = []
        for bit, attr in _STATE_ATTRS.items():
            size = mujoco.mj_stateSize(self.mjm, bit)
            if size and attr is None:
                raise ValueError("the warp backend does not support plugin state (mjSTATE_PLUGIN)")
            layout.append((attr, size))
        assert sum(s for _, s in layout) == mujoco.mj_stateSize(self.mjm, _INTEGRATION)
        return layout

    def _flat(self, attr: str) -> torch.Tensor:
        arr = getattr(self.d, attr)
        t = self.wp.to_torch(arr)
        return t.reshape(self.num_envs, -1)

    def get_state(self) -> torch.Tensor:
        """Full integration states [N, nstate] float64 (mjSTATE_INTEGRATION layout)."""
        parts = [self._flat(attr).to(torch.float64) for attr, size in self._layout if size]
        return torch.cat(parts, dim=1) if parts else torch.zeros(self.num_envs, 0, dtype=torch.float64, device=self.device)

    def set_state(self, states: np.ndarray, ids: np.ndarray) -> None:
        """Write integration states into worlds `ids`, then forward (other worlds keep theirs)."""
        rows = self._rows(ids)
        if len(rows) == 0:
            return
        src = torch.as_tensor(np.asarray(states, dtype=np.float64), device=self.device).reshape(len(rows), -1)
        with self._on_warp_stream():
            self._mask_t.zero_()
            self._mask_t[rows] = True
            with self._keep_others(self._mask_t):
                adr = 0
                for attr, size in self._layout:
                    if size:
                        view = self._flat(attr)
                        chunk = src[:, adr:adr + size]
                        view[rows] = chunk != 0 if view.dtype == torch.bool else chunk.to(view.dtype)
                    adr += size
                self.mjw.forward(self.m, self.d)
            self._overflow[rows] = 0

    # -- rendering and inspection ------------------------------------------------------
    def model_of(self, world: int) -> mujoco.MjModel:
        """The CPU MjModel of one world (with its randomized fields, if any)."""
        if not self._randomized:
            return self.model
        model = copy.copy(self.model)
        for name in self._randomized:
            values = self.wp.to_torch(getattr(self.m, name))[world].cpu().double().numpy()
            getattr(model, name)[...] = values.reshape(getattr(model, name).shape)
        return model

    def data_of(self, world: int, model: mujoco.MjModel | None = None) -> mujoco.MjData:
        """An MjData of one world with every derived field computed (for the EGL renderer)."""
        model = model if model is not None else self.model_of(world)
        data = mujoco.MjData(model)
        state = self.get_state()[world].cpu().numpy()
        mujoco.mj_setState(model, data, state, _INTEGRATION)
        mujoco.mj_forward(model, data)
        return data

    def _camera_id(self, camera) -> int:
        """A model camera id from a name or id; MJWarp's batch renderer has no free camera."""
        if isinstance(camera, str):
            cid = mujoco.mj_name2id(self.mjm, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if cid < 0:
                raise ValueError(f"camera {camera!r} is not a camera of this model")
            return int(cid)
        if isinstance(camera, (int, np.integer)) and not isinstance(camera, bool):
            if not 0 <= camera < self.mjm.ncam:
                raise ValueError(f"camera id {camera} out of range [0, {self.mjm.ncam})")
            return int(camera)
        raise ValueError(f"the warp batch renderer renders model cameras only (a name or id), got "
                         f"{camera!r}; use renderer='egl' for a free/tracking camera")

    def render_batch(self, world_ids, width: int, height: int, camera) -> torch.Tensor:
        """RGB frames of worlds `world_ids` from model camera `camera` with MJWarp's batch
        renderer: uint8 tensor [len(world_ids), height, width, 3] on the env's device."""
        ids = np.asarray(world_ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"world id out of range [0, {self.num_envs}): {ids.tolist()[:8]}")
        rows = self._rows(ids)
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise ValueError(f"width and height must be >= 1, got {width}x{height}")
        cid = self._camera_id(camera)
        key = (width, height, cid)
        with self._on_warp_stream():
            rc = self._render_ctx.get(key)
            if rc is None:
                rc = self.mjw.create_render_context(
                    self.mjm, nworld=self.num_envs, cam_res=(width, height), cam_active=[cid],
                    render_rgb=True, render_depth=False, render_seg=False, use_shadows=False)
                self._render_ctx[key] = rc
            self.mjw.refit_bvh(self.m, self.d, rc)
            self.mjw.render(self.m, self.d, rc)
        # on the caller's stream (it waits for the render above): [N, H*W] uint32 0xAARRGGBB,
        # row 0 at the top, little-endian bytes B, G, R, A. The gather copies, so the next
        # render does not change what is returned.
        packed = self.wp.to_torch(rc.rgb_data)
        frames = packed.view(torch.uint8).reshape(self.num_envs, height, width, 4)
        return frames[rows][..., [2, 1, 0]]

    def info(self) -> dict:
        return {"device": str(self.wp_device), "nworld": self.num_envs, "nconmax": self.nconmax,
                "njmax": self.njmax, "solver": int(self.mjm.opt.solver), "graph": self._use_graph}
