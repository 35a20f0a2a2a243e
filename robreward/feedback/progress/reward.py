"""`progress:RUN` as a reward: potential-based shaping with the learned progress Φ.

    r'(s, a, s') = r(s, a, s') + γ Φ(s') − Φ(s)          (Ng, Harada & Russell 1999)

This Reward is only the shaping part (term ``progress_shaping``); it is added to a base reward with a
sum spec: ``sparse+progress:RUN`` or ``hand+progress:RUN``. A shaping term of this form changes every
policy's action values by −Φ(s) alone, so the optimal policy of the base reward is unchanged: dense
progress can speed learning up but cannot be exploited (a policy that stalls at high Φ earns nothing
from it: the term telescopes to γ^T Φ(s_T) − Φ(s_0) over an episode).

*Episode ends.* The telescoping, and so the invariance, holds only if Φ of a terminal state is 0: a
terminated episode has no future, and a nonzero Φ(s_T) would be a bonus (or a penalty) for ending
there that the base reward does not have, which changes what is optimal (e.g. it pays to fall off
early at a state of high progress). A time-out is not a termination: the episode is cut, not over,
and the trainer bootstraps γ V(s_T) there (rl/storage.py bootstrap_truncated), so the transition
keeps γ Φ(s_T) as any other; zeroing it would also reward or punish the clock.

*Which Φ(s).* Φ(s) is the previous state's progress of each world. The env tells the reward where an
episode starts: BatchedEnv calls ``on_reset(world_ids, state)`` after it resets worlds (reset, the
auto-reset of ended worlds, set_state, set_reward), and this reward stores Φ of those worlds' first
states. Called before any reset it raises: it would not know Φ(s).

*Image inputs.* A model that reads frames gets the env through ``bind_env(env)`` (BatchedEnv.set_reward
calls it) and renders every world's post-step frame with one ``render_batch`` call per step (tiled EGL
on the CPU backend, MuJoCo Warp's batch renderer on backend="warp"), then scores all N in one forward
pass; ``on_reset`` renders only the worlds that start an episode. Without an OpenGL renderer the env
refuses the reward when it is set (RendererUnavailable says what to set).

γ is the trainer's discount: the PPO default 0.99 (robreward.rl.config.PPOConfig.gamma), or
``progress:RUN,gamma=G`` when training with another ``--ppo.gamma``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robreward.envs.spec import TaskSpec, TaskState


DEFAULT_WEIGHT = 10.0
"""W of weight * (γΦ(s') − Φ(s)): with Φ in [0, 1] the term sums to about W over a successful episode, about ten
steps of a sparse success reward (benchmarks/progress.py measured W = 10; docs/progress.md)."""


def _default_gamma() -> float:
    from robreward.rl.config import PPOConfig

    return float(PPOConfig.gamma)


class ProgressShaping:
    """``(state, action) -> (γ Φ(s') − Φ(s) [N], {"progress_shaping": same})``; see the module docstring."""

    def __init__(self, net, spec: TaskSpec, gamma: float | None = None, weight: float = DEFAULT_WEIGHT, name: str = "progress",
                 image_size: int = 64, camera: str | None = None):
        self.net, self.spec, self.name = net, spec, name
        self.gamma = _default_gamma() if gamma is None else float(gamma)
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"progress shaping: gamma must be in (0, 1], got {self.gamma}")
        self.weight = float(weight)
        self.prev_phi: torch.Tensor | None = None  # Φ of each world's previous state [N]
        self.uses_image = bool(getattr(net, "uses_image", False))
        self.image_size = int(image_size)
        self.camera = camera or None
        self._env = None  # a weak reference to the env whose worlds are rendered (image inputs)
        self._worlds: tuple[int, int] | None = None  # (first world, count) of the env's worlds this reward sees
        self.render_seconds = 0.0  # time spent rendering (image inputs), for benchmarks

    def bind_env(self, env, worlds: tuple[int, int] | None = None) -> None:
        """The env whose worlds this reward renders (image inputs); checks a renderer is there. ``worlds``
        (first, count): the reward sees only those of the env's worlds, its world 0 being the env's ``first``
        (a candidate of the K-candidate trainer, rl.candidates); default all of them."""
        import weakref

        if self.uses_image:
            model_camera = isinstance(self.camera or env.spec.camera, (str, int))
            if not (env.backend == "warp" and model_camera):
                from robreward.envs.render import probe_renderer

                probe_renderer()
        self._env = weakref.ref(env)
        self._worlds = None if worlds is None or tuple(worlds) == (0, env.num_envs) else (int(worlds[0]), int(worlds[1]))

    def _num_worlds(self, env) -> int:
        return env.num_envs if self._worlds is None else self._worlds[1]

    def _frames(self, world_ids=None):
        import time

        from robreward.feedback.vision.frames import render_batch

        env = self._env() if self._env is not None else None
        if env is None:
            raise RuntimeError("an image progress reward renders the env's worlds: use it in a robreward BatchedEnv "
                               "(robreward.make(..., reward=...) or env.set_reward), which binds it to the env")
        if self._worlds is not None:  # this reward's worlds are a slice of the env's: its ids, shifted
            first, count = self._worlds
            local = torch.arange(count) if world_ids is None else world_ids.to("cpu", torch.long)
            world_ids = local + first
        start = time.perf_counter()
        frames = render_batch(env, world_ids, (self.image_size, self.image_size), self.camera)
        self.render_seconds += time.perf_counter() - start
        return frames

    @torch.no_grad()
    def potential(self, state: TaskState, world_ids: torch.Tensor | None = None) -> torch.Tensor:
        """weight * Φ [N] (or [n] of ``world_ids``) of ``state``'s observations, on the state's device. An image
        model reads the frames of the bound env's worlds as they are now (the env's post-step state in a
        step, the first states in on_reset), whatever ``state`` holds."""
        obs = self.spec.observe(state).to(torch.float32)
        if world_ids is not None:
            obs = obs[world_ids.to(obs.device)]
        if next(self.net.parameters()).device != obs.device:
            self.net.to(obs.device)
        if not self.uses_image:
            return self.weight * self.net.phi(obs)
        return self.weight * self.net.phi(obs, self._frames(world_ids)).to(obs.device)

    def on_reset(self, world_ids: torch.Tensor, state: TaskState) -> None:
        """Worlds ``world_ids`` [n] start an episode at ``state`` (all N worlds' TaskState): keep their Φ."""
        env = self._env() if self.uses_image and self._env is not None else None
        fresh = self.prev_phi is None or env is None or self.prev_phi.shape[0] != self._num_worlds(env)
        if fresh or not self.uses_image:
            phi = self.potential(state)
            if fresh or self.prev_phi.device != phi.device:
                self.prev_phi = phi.clone()
                return
            ids = world_ids.to(phi.device)
            self.prev_phi[ids] = phi[ids]
            return
        ids = world_ids.to(self.prev_phi.device)  # image inputs: render only the worlds that start
        if len(ids):
            self.prev_phi[ids] = self.potential(state, world_ids)

    def __call__(self, state: TaskState, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.prev_phi is None or self.prev_phi.shape[0] != action.shape[0]:
            raise RuntimeError("progress shaping needs Φ of each world's previous state: use it in a robreward "
                               "BatchedEnv (robreward.make(..., reward=...) or env.set_reward), which reports episode "
                               "starts through on_reset; call env.reset() first")
        phi_next = self.potential(state)
        terminated = self.spec.terminated(state).to(torch.bool)
        # Φ of a terminal state is 0 (module docstring); a time-out keeps γΦ(s') and is bootstrapped
        shaping = self.gamma * torch.where(terminated, torch.zeros_like(phi_next), phi_next) - self.prev_phi
        self.prev_phi = phi_next  # the env overwrites the worlds it resets through on_reset
        return shaping, {"progress_shaping": shaping}


    @torch.no_grad()
    def state_tables(self, states: TaskState, frames):
        """This shaping on sampled states (reward distances, robreward.rewards.state_tables): potential = weight
        * Φ(s), next_potential = γ * weight * Φ(s') with Φ = 0 at a terminal state; an image model scores the
        frames ``frames`` renders of those states (at this reward's image size and camera)."""
        from robreward.rewards.state_tables import StateTables

        obs = self.spec.observe(states).to(torch.float32).cpu()
        device = next(self.net.parameters()).device
        phi = torch.empty(obs.shape[0], dtype=torch.float64)
        if self.uses_image:
            for rows, chunk in frames.chunks((self.image_size, self.image_size), self.camera):
                phi[rows] = self.net.phi(obs[rows].to(device), chunk.to(device)).double().cpu()
        else:
            for lo in range(0, obs.shape[0], 4096):
                phi[lo:lo + 4096] = self.net.phi(obs[lo:lo + 4096].to(device)).double().cpu()
        phi = self.weight * phi
        terminated = self.spec.terminated(states).to(torch.bool).cpu()
        return StateTables(potential=phi, next_potential=self.gamma * torch.where(terminated, 0.0, phi))


def parse_arg(arg: str) -> tuple[str, dict]:
    """'RUN' or 'RUN,gamma=0.98,weight=2' -> (RUN, {gamma: 0.98, weight: 2.0})."""
    run, *options = arg.split(",")
    values = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key.strip() not in ("gamma", "weight"):
            raise ValueError(f"progress:{arg}: unknown option {option!r}; write progress:RUN, or "
                             "progress:RUN,gamma=G,weight=W")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"progress:{arg}: {key.strip()} must be a number, got {value!r}") from None
    return run, values


def load_progress_reward(arg: str, spec: TaskSpec) -> ProgressShaping:
    """The Reward of ``progress:RUN[,gamma=G][,weight=W]`` on task ``spec``."""
    from robreward.feedback.progress.run import load_progress_run

    run, options = parse_arg(arg)
    net, meta, spec = load_progress_run(Path(run), spec)
    config = meta.get("config") or {}
    return ProgressShaping(net, spec, gamma=options.get("gamma"), weight=options.get("weight", DEFAULT_WEIGHT),
                           name=f"progress:{arg}", image_size=int(config.get("image_size", 64)),
                           camera=config.get("camera") or None)
