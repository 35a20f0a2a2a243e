"""BatchedEnv: N worlds of one task as torch tensors, same-step auto-reset (rsl_rl / mjlab).

    obs, info = env.reset(seed)                         obs [N, obs_dim]
    obs, reward, terminated, truncated, info = env.step(action[N, act_dim])

reward, info["reward_terms"], info["success"] and info["fitness"] describe the transition
just taken, computed on the post-step state before any reset; ended worlds are then reset,
``obs`` holds their first observation and ``info["final_obs"]`` their last one. A reward with an
``on_reset(world_ids, state)`` method (or a sum with such parts) is told after every reset which worlds
start an episode (`BatchedEnv._notify_reset`): potential-based shaping keeps Φ of each world's previous state.
A reward with a ``bind_env(env)`` method (or a sum with such parts) is given the env when it is set, so
it can read what the TaskState lacks (a CLIP reward renders every world's post-step frame in step).

Every step checks the reward of every world with one fused reduction (`reward_mismatch`, then
`invalid_rewards` only when the cheap test fails): a total that is NaN or inf, or terms that do
not sum to it (within REWARD_SUM_TOLERANCE * (1 + |total|)), make that world's reward invalid. Like a world whose physics broke, it gets reward 0 (and terms
0) and ends as terminated, flagged in ``info["nan_reset"]``; ``info["reward_invalid"]`` [N] marks
the reward's part and ``env.reward_invalid_count`` counts such world-steps (the trainer reports
and limits them). A reward that returns something other than float tensors [N] on the env's
device (a meta or sparse tensor, a wrong shape) raises ValueError naming the reward, at any step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from collections.abc import Mapping

from robreward.envs.registry import BACKENDS, get_task
from robreward.envs.spec import TaskContext, TaskSpec, TaskState, check_fields
from robreward.rewards.base import HandReward, resolve_reward

REWARD_SUM_TOLERANCE = 1e-4
"""Terms sum to the total when |sum - total| <= this * (1 + |total|) (as rewards.base.check_reward_output)."""


def _parse_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda:0'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU here: use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use 'cpu' or 'cuda:N'")
    return dev


class _SingleTorchThread:
    """Run torch single-threaded inside env calls on the CPU backend, then restore the caller's
    setting. The simulator's thread pool already occupies the cores; torch's intra-op threads
    competing with it (OpenMP workers spin-waiting) made per-step tensor work 10-20x slower
    (measured: torch.isfinite on [256, 348] took ~13 ms instead of <1 ms on 2 cores)."""

    __slots__ = ("active", "prev")

    def __init__(self, active: bool):
        self.active = active
        self.prev = 1

    def __enter__(self):
        if self.active:
            self.prev = torch.get_num_threads()
            if self.prev != 1:
                torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.active and self.prev != 1:
            torch.set_num_threads(self.prev)
        return False


def _as(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x in dtype, without a call when it already is (the per-step path: a no-op .to() still costs ~1 us)."""
    return x if x.dtype == dtype else x.to(dtype)


_SIGNS: dict = {}  # (number of terms, dtype, device) -> [-1, 1, ..., 1]


def reward_mismatch(total, terms, num_envs: int, device: torch.device, reward_fn=None) -> torch.Tensor:
    """mismatch [N] = sum(terms) - total, as one matrix-vector product over the stacked outputs (no
    per-term op or sync). A NaN or inf in a world's total or terms makes its mismatch NaN or inf
    (inf - inf is NaN), so ``mismatch.abs().amax() <= REWARD_SUM_TOLERANCE`` proves every world
    valid with one number; `invalid_rewards` gives the per-world verdict. Raises ValueError
    (naming reward_fn) unless total and terms are dense float tensors [num_envs] on ``device``."""
    try:
        stacked = torch.stack([total, *terms.values()])
        usable = (stacked.shape == (1 + len(terms), num_envs) and stacked.is_floating_point()
                  and stacked.device == device and stacked.layout == torch.strided)
    except Exception as err:  # noqa: BLE001 - whatever the reward returned, the error names it
        raise reward_protocol_error(total, terms, num_envs, device, reward_fn, err) from None
    if not usable:
        raise reward_protocol_error(total, terms, num_envs, device, reward_fn, None)
    key = (len(terms), stacked.dtype, stacked.device)
    signs = _SIGNS.get(key)
    if signs is None:
        signs = _SIGNS[key] = torch.tensor([-1.0] + [1.0] * len(terms), dtype=stacked.dtype, device=stacked.device)
    return signs @ stacked if terms else stacked[0] - stacked[0]  # no terms: only finiteness is checked


def invalid_rewards(mismatch: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """bool [N]: the worlds whose reward is invalid: |mismatch| > REWARD_SUM_TOLERANCE * (1 + |total|),
    NaN (anything non-finite), or an infinite total (its tolerance would be infinite too)."""
    bound = total.abs().to(mismatch.dtype).add_(1.0).mul_(REWARD_SUM_TOLERANCE)
    return ~((mismatch.abs() <= bound) & torch.isfinite(bound))


def reward_protocol_error(total, terms, num_envs: int, device, reward_fn, cause) -> ValueError:
    """The first way (total, terms) breaks the Reward protocol, as an error that says how to fix it."""
    where = f"reward {getattr(reward_fn, 'name', type(reward_fn).__name__)!r}"
    if not isinstance(terms, Mapping):
        return ValueError(f"{where}: terms must be a dict of name -> tensor [N], got {type(terms).__name__}")
    for label, value in [("total", total), *((f"term {name!r}", v) for name, v in terms.items())]:
        if not isinstance(value, torch.Tensor):
            return ValueError(f"{where}: {label} must be a torch.Tensor, got {type(value).__name__}")
        if value.layout != torch.strided:
            return ValueError(f"{where}: {label} is a {value.layout} tensor: return dense tensors (.to_dense())")
        if value.device != device:
            return ValueError(f"{where}: {label} is on device {value.device}, the env's tensors are on {device}: "
                              "compute the reward from the state's tensors (or move it with .to(state.qpos.device))")
        if tuple(value.shape) != (num_envs,):
            return ValueError(f"{where}: {label} must have shape [N]=[{num_envs}], got {list(value.shape)}")
        if not value.is_floating_point():
            return ValueError(f"{where}: {label} must be a float tensor, got {value.dtype}; cast with .float()")
    return ValueError(f"{where}: its total and terms cannot be checked together ({cause}); return float tensors [N]")


class BatchedEnv:
    """N worlds of one task. See the module docstring for the step contract."""

    render_mode = "rgb_array"  # env.render() returns uint8 RGB frames

    def __init__(self, task, num_envs: int = 1, backend: str = "cpu", device="cpu", seed: int = 0,
                 reward=None, nthread: int | None = None, groups: int = 1):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 or num_envs % groups:
            raise ValueError(f"groups must be an integer >= 1 that divides num_envs ({num_envs}), got {groups!r}")
        self.groups = int(groups)
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.spec: TaskSpec = get_task(task)
        self.num_envs = int(num_envs)
        self.device = _parse_device(device)
        self.backend = backend
        try:
            self.model = self.spec.build_model()
        except Exception as err:
            raise ValueError(f"task {self.spec.name!r}: its scene failed to load: {err}") from err
        self.ctx = TaskContext(self.model, self.device)
        if backend == "cpu":
            from robreward.envs.cpu_backend import CpuSimulator

            self.sim = CpuSimulator(self.model, self.num_envs, self.spec.sim_fields, self.device, nthread)
        else:
            from robreward.envs.warp_backend import WarpSimulator

            self.sim = WarpSimulator(self.model, self.num_envs, self.spec.sim_fields, self.device)
        self.act_dim = self.spec.act_dim
        self.obs_dim = self.spec.obs_dim
        self.action_low = torch.tensor(self.spec.action_low, dtype=torch.float32, device=self.device)
        self.action_high = torch.tensor(self.spec.action_high, dtype=torch.float32, device=self.device)
        self.dt = float(self.model.opt.timestep) * self.spec.frame_skip
        self.reward_invalid_count = 0  # world-steps whose reward was invalid (module docstring)
        self.set_reward(resolve_reward(reward, self.spec))
        self.episode_step = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._rngs = self._group_rngs(seed)
        self._seed = seed
        self._raw = None
        self.state: TaskState | None = None
        self._obs = None
        self._zero_action = torch.zeros(self.num_envs, self.act_dim, device=self.device)
        self._renderer = None
        self._torch_threads = _SingleTorchThread(backend == "cpu" and self.device.type == "cpu")

    # -- helpers --------------------------------------------------------------------------
    def _compute_state(self, raw, pre, action) -> TaskState:
        task_fields = self.spec.compute_state(raw, pre, self.ctx)
        fields = {"qpos": raw["qpos"], "qvel": raw["qvel"], **task_fields}
        fields = {k: _as(v, torch.float32) for k, v in fields.items()}
        fields["action"] = _as(action, torch.float32)
        return TaskState(fields)

    def _pre(self, raw) -> dict:
        return self.spec.pre_step(raw, self.ctx) if self.spec.pre_step else {}

    def _check_action(self, action) -> torch.Tensor:
        if isinstance(action, np.ndarray):
            action = torch.from_numpy(action)
        if not isinstance(action, torch.Tensor):
            raise TypeError(f"action must be a torch.Tensor or numpy array [N, {self.act_dim}], got {type(action).__name__}")
        if tuple(action.shape) != (self.num_envs, self.act_dim):
            raise ValueError(
                f"action has shape {list(action.shape)}, expected [num_envs, act_dim] = "
                f"[{self.num_envs}, {self.act_dim}] for task {self.spec.name!r}"
            )
        if not action.is_floating_point():
            raise TypeError(f"action must be a float tensor, got dtype {action.dtype}; cast with .float()")
        if action.dtype != torch.float32 or action.device != self.device:
            action = action.to(self.device, torch.float32)
        # the sum of a finite batch is finite unless it overflows; only then look row by row
        if not math.isfinite(float(action.sum())) and not torch.isfinite(action).all():
            bad = torch.nonzero(~torch.isfinite(action).all(-1)).flatten()[:5].tolist()
            raise ValueError(f"action has NaN or inf values (worlds {bad}); check the policy output")
        return torch.clamp(action, self.action_low, self.action_high)

    def set_reward(self, reward) -> None:
        """Train on ``reward`` from the next step on (a Reward: ``reward(state, action) -> (total [N],
        terms {name: [N]})``, as resolve_reward returns). ``info["hand_reward"]`` stays the task's hand
        reward, computed once per step when it is also the training reward."""
        self.reward_fn = reward
        hand = isinstance(reward, HandReward) and reward.spec is self.spec
        self.hand_reward = reward if hand else getattr(self, "hand_reward", None) or HandReward(self.spec)
        self._reset_hooks = reset_hooks(reward)
        for bind in reset_hooks(reward, "bind_env"):  # a reward that renders the worlds (clip:) needs the env
            bind(self)
        if getattr(self, "state", None) is not None:  # the new reward starts from every world's current state
            self._notify_reset(np.arange(self.num_envs))

    def _notify_reset(self, ids: np.ndarray) -> None:
        """Tell the reward (and each part of a sum) which worlds start an episode here: ``on_reset(world_ids [n]
        long tensor, state)`` with ``self.state`` the TaskState of all N worlds, the reset ones at their first
        state. A reward that keeps per-world history (potential-based shaping needs Φ of the previous state)
        defines it; the others do not."""
        for hook in self._reset_hooks:
            hook(torch.as_tensor(ids, dtype=torch.long, device=self.device), self.state)

    def _group_rngs(self, seed) -> list:
        """One reset RNG per world group: ``seed`` an int (every group seeded alike, as separate envs of
        that seed) or one seed per group (group k as a separate env of seed[k]: K candidates x M seeds)."""
        if isinstance(seed, (int, np.integer)):
            return [np.random.default_rng(int(seed)) for _ in range(self.groups)]
        seeds = [int(s) for s in seed]
        if len(seeds) != self.groups:
            raise ValueError(f"seed: give one int, or one seed per world group ({self.groups}), got {len(seeds)}")
        return [np.random.default_rng(s) for s in seeds]

    @property
    def worlds_per_group(self) -> int:
        """M: the worlds of each of the ``groups`` equal consecutive groups (group k: worlds k*M .. (k+1)*M-1)."""
        return self.num_envs // self.groups

    def _reset_worlds(self, ids: np.ndarray) -> None:
        """Fresh initial states for worlds ``ids``. Each group of worlds draws from its own reset RNG,
        seeded and consumed as a separate env of M worlds would (one RNG for all groups would
        interleave their draws), so group k starts and restarts where that env does."""
        if self.groups == 1:
            sample = self.spec.sample_reset(self._rngs[0], len(ids), self.ctx)
            self.sim.reset(ids, sample.qpos, sample.qvel, sample.mocap_pos, sample.model_fields)
        else:
            ids = np.sort(np.asarray(ids, dtype=np.int64))
            owners = ids // self.worlds_per_group
            samples = [self.spec.sample_reset(self._rngs[k], int((owners == k).sum()), self.ctx)
                       for k in np.unique(owners)]
            cat = lambda parts: np.concatenate(parts, axis=0)  # noqa: E731
            mocap = None if samples[0].mocap_pos is None else cat([s.mocap_pos for s in samples])
            fields = {name: cat([s.model_fields[name] for s in samples]) for name in samples[0].model_fields}
            self.sim.reset(ids, cat([s.qpos for s in samples]), cat([s.qvel for s in samples]), mocap, fields)
        self.episode_step[torch.as_tensor(ids, device=self.device)] = 0

    def _refresh(self, ids: np.ndarray, zero_cfrc: bool, action=None) -> None:
        """Re-read the simulator after worlds `ids` were reset or written; recompute their
        state and observation (the other worlds keep theirs)."""
        raw = self.sim.read()
        rows = torch.as_tensor(ids, device=self.device)
        if zero_cfrc and "cfrc_ext" in raw:
            # Gymnasium's convention: cfrc_ext is computed only by stepping, zero after a reset
            raw["cfrc_ext"][rows] = 0.0
        self._raw = raw
        act = self._zero_action if action is None else action
        fresh = self._compute_state(raw, self._pre(raw), act)
        fresh_obs = self.spec.observe(fresh)
        if self.state is None or len(ids) == self.num_envs:
            self.state, self._obs = fresh, fresh_obs
            return
        merged = {k: v.clone() for k, v in self.state.items()}
        for k, v in merged.items():
            v[rows] = fresh[k][rows]
        self.state = TaskState(merged)
        obs = self._obs.clone()
        obs[rows] = fresh_obs[rows]
        self._obs = obs

    # -- the contract ---------------------------------------------------------------------
    def reset(self, seed: int | None = None):
        """Reset every world; returns (obs [N, obs_dim], info)."""
        with self._torch_threads:
            return self._reset(seed)

    def _reset(self, seed: int | None = None):
        if seed is not None:
            self._rngs = self._group_rngs(seed)
            self._seed = seed
        ids = np.arange(self.num_envs)
        self.state = None
        self._reset_worlds(ids)
        self._refresh(ids, zero_cfrc=True)
        check_fields(self.spec, {k: v for k, v in self.state.items()})
        self._notify_reset(ids)
        return self._obs, {"state": self.state}

    def step(self, action):
        """Advance every world one control step; see the module docstring."""
        with self._torch_threads:
            return self._step(action)

    def _step(self, action):
        if self.state is None:
            raise RuntimeError("call env.reset() before env.step()")
        action = self._check_action(action)
        pre = self._pre(self._raw)
        if self.spec.action_to_ctrl is not None:
            ctrl = self.spec.action_to_ctrl(action, self._raw, self.ctx)
        else:
            ctrl = action
        self.sim.set_ctrl(ctrl)
        broken = self.sim.step(self.spec.frame_skip)
        raw = self.sim.read()
        state = self._compute_state(raw, pre, action)
        self.episode_step += 1

        reward, terms = self.reward_fn(state, action)
        mismatch = reward_mismatch(reward, terms, self.num_envs, self.device, self.reward_fn)
        hand_total, hand_terms = (reward, terms) if self.reward_fn is self.hand_reward else self.hand_reward(state, action)
        success = _as(self.spec.success(state), torch.bool)
        fitness = _as(self.spec.fitness(state), torch.float32)
        terminated = _as(self.spec.terminated(state), torch.bool)
        obs = self.spec.observe(state)

        # NaN guard: nothing non-finite and no invalid reward reaches the learner. Any NaN/inf in
        # the observations makes their sum non-finite, and 0 * that sum NaN; every reward is valid
        # when no |mismatch| exceeds the smallest tolerance (NaN does not): on the CPU the per-row
        # masks are built only otherwise (or when the simulator flagged a world); on a GPU they are
        # built without a sync.
        if (self.device.type == "cpu" and not broken.any()
                and float(obs.sum() * 0.0 + mismatch.abs().amax()) <= REWARD_SUM_TOLERANCE):
            broken_t = torch.zeros(self.num_envs, dtype=torch.bool)
            invalid = torch.zeros(self.num_envs, dtype=torch.bool)
        else:
            invalid = invalid_rewards(mismatch, reward)
            broken_t = torch.as_tensor(broken, device=self.device) | ~torch.isfinite(obs.sum(-1)) | invalid
        if broken_t.any():
            self.reward_invalid_count += int(invalid.sum())
            keep = ~broken_t
            reward = torch.where(keep, reward, torch.zeros_like(reward))
            terms = {k: torch.where(keep, v, torch.zeros_like(v)) for k, v in terms.items()}
            if self.reward_fn is self.hand_reward:
                hand_total, hand_terms = reward, terms
            else:
                hand_total = torch.where(keep, hand_total, torch.zeros_like(hand_total))
                hand_terms = {k: torch.where(keep, v, torch.zeros_like(v)) for k, v in hand_terms.items()}
            obs = torch.where(keep[:, None], torch.nan_to_num(obs, 0.0, 0.0, 0.0), torch.zeros_like(obs))
            success &= keep
            fitness = torch.where(keep, fitness, torch.zeros_like(fitness))
            terminated |= broken_t
        truncated = (self.episode_step >= self.spec.episode_length) & ~terminated
        done = terminated | truncated

        info = {
            "reward_terms": terms,
            "hand_reward": hand_total,
            "hand_terms": hand_terms,
            "success": success,
            "fitness": fitness,
            "nan_reset": broken_t,
            "reward_invalid": invalid,
            "final_obs": obs,
            "final_state": state,
            "episode_step": self.episode_step.clone(),
        }
        self._raw, self.state, self._obs = raw, state, obs
        if done.any():
            ids = torch.nonzero(done).flatten().cpu().numpy()
            self._reset_worlds(ids)
            self._refresh(ids, zero_cfrc=True, action=action)
            self._notify_reset(ids)
            obs = self._obs
        return obs, reward, terminated, truncated, info

    # -- full MuJoCo integration states ----------------------------------------------------
    @property
    def nstate(self) -> int:
        return self.sim.nstate

    def get_state(self) -> torch.Tensor:
        """Full integration states (mjSTATE_INTEGRATION) of all worlds, float64 [N, nstate]."""
        return self.sim.get_state()

    def set_state(self, states, world_ids=None) -> None:
        """Write full integration states; the written worlds start a new episode (step 0)."""
        ids = np.arange(self.num_envs) if world_ids is None else np.asarray(
            world_ids.cpu() if isinstance(world_ids, torch.Tensor) else world_ids, dtype=np.int64).reshape(-1)
        states = np.asarray(states.cpu() if isinstance(states, torch.Tensor) else states, dtype=np.float64)
        states = states.reshape(len(ids), -1) if states.ndim == 1 else states
        if states.shape != (len(ids), self.nstate):
            raise ValueError(f"states must have shape [{len(ids)}, {self.nstate}] (mjSTATE_INTEGRATION), got {list(states.shape)}")
        if not np.isfinite(states).all():
            raise ValueError("states contain NaN or inf values (non-finite); pass states read with get_state()")
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"world_ids must be in [0, {self.num_envs}), got {ids.tolist()[:8]}")
        if self.state is None:
            self.reset()
        self.sim.set_state(states, ids)
        self.episode_step[torch.as_tensor(ids, device=self.device)] = 0
        self._refresh(ids, zero_cfrc=False)
        self._notify_reset(ids)

    @property
    def obs(self) -> torch.Tensor:
        return self._obs

    # -- rendering ---------------------------------------------------------------------------
    def render(self, world_ids=(0,), width: int = 320, height: int = 240, camera=None,
               renderer: str = "auto"):
        """uint8 frames [len(world_ids), height, width, 3] of the current state.

        camera: a model camera name/id, an ``mujoco.MjvCamera`` (EGL only), or None for the
        task's camera (``spec.camera``; if that is None too, a free camera tracking the root body,
        EGL only).
        renderer: "egl" - MuJoCo's OpenGL renderer on the CPU, one world at a time; returns a
        numpy array. "warp" - MuJoCo Warp's ray-traced batch renderer on the simulation device
        (backend="warp" only, model cameras only); returns a torch uint8 tensor on the env device,
        so image observations stay on the GPU. "auto" - "warp" when backend="warp" on a CUDA
        device and the camera is a model camera, else "egl".
        """
        if renderer not in ("auto", "egl", "warp"):
            raise ValueError(f"unknown renderer {renderer!r}: choose 'auto', 'egl' or 'warp'")
        if renderer == "warp" and self.backend != "warp":
            raise ValueError(f"renderer='warp' (MuJoCo Warp's batch renderer) needs backend='warp', "
                             f"this env has backend={self.backend!r}: use renderer='egl'")
        cam = camera if camera is not None else self.spec.camera
        if renderer == "auto":
            model_cam = isinstance(cam, (str, int, np.integer)) and not isinstance(cam, bool)
            renderer = "warp" if self.backend == "warp" and self.device.type == "cuda" and model_cam else "egl"
        if renderer == "warp":
            if self.state is None:
                self.reset()
            return self.sim.render_batch(list(world_ids), width, height, cam)
        from robreward.envs.render import render_worlds

        return render_worlds(self, list(world_ids), width, height, camera)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __repr__(self) -> str:
        return f"BatchedEnv({self.spec.name!r}, num_envs={self.num_envs}, backend={self.backend!r}, device={str(self.device)!r})"


def reset_hooks(reward, method: str = "on_reset") -> list:
    """The ``on_reset`` methods (or ``method``: ``bind_env(env)``, called by set_reward with the env, for a reward
    that reads more than the TaskState, e.g. renders the worlds) of a reward and of the parts of a sum
    (rewards.base.SumReward.parts), in order."""
    hooks = [getattr(reward, method)] if callable(getattr(reward, method, None)) else []
    for part in getattr(reward, "parts", None) or ():
        hooks += reset_hooks(part, method)
    return hooks


def make(task, num_envs: int = 1, backend: str = "cpu", device="cpu", seed: int = 0, reward=None, **kwargs) -> BatchedEnv:
    """Create a BatchedEnv: ``robreward.make("cheetah-run", num_envs=64, seed=0)``."""
    return BatchedEnv(task, num_envs=num_envs, backend=backend, device=device, seed=seed, reward=reward, **kwargs)
