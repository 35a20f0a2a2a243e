"""Simulation throughput: env-steps/s of a BatchedEnv, and of a raw `mujoco.batch.Batch` loop
doing the same physics work, so the env's overhead can be read as a ratio.

Used by `robreward bench sim` and by benchmarks/sim_cpu.py.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time

import mujoco
import numpy as np
import torch

from robreward.envs.cpu_backend import RNE_POST_FIELDS, default_threads
from robreward.envs.registry import get_task


def _action_bank(spec, num_envs: int, seed: int, bank: int = 8) -> np.ndarray:
    """A few random action batches inside the action space, made before timing starts."""
    rng = np.random.default_rng(seed)
    low, high = np.asarray(spec.action_low), np.asarray(spec.action_high)
    return rng.uniform(low, high, size=(bank, num_envs, spec.act_dim)).astype(np.float32)


def bench_env(env, steps: int, actions: list, seed: int = 0) -> dict:
    """Time `steps` calls of env.step with the given action batches (auto-reset included);
    the env is reset with `seed` first (untimed)."""
    env.reset(seed=seed)
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % len(actions)])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "env_steps_per_s": steps * env.num_envs / seconds}


def record_schedule(env, steps: int, actions: list, seed: int = 0):
    """One untimed env run (it also warms up): the initial states, and after each step the
    worlds the env reset and the states it reset them to. A raw loop replaying it simulates
    the env's trajectories bit for bit."""
    env.reset(seed=seed)
    initial = env.get_state().cpu().numpy().copy()
    resets = []
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        done = (terminated | truncated).cpu().numpy()
        ids = np.flatnonzero(done)
        resets.append((ids, env.get_state().cpu().numpy()[ids].copy()) if len(ids) else None)
    return initial, resets


class RawLoop:
    """The same physics a task's env does, with nothing else: per step, write ctrl, run
    frame_skip substeps on a `mujoco.batch.Batch` of task.build_model(), copy out the bound
    fields the task reads, and where it reads cfrc_ext run mj_rnePostConstraint per world on
    its persistent MjData (what Gymnasium does after mj_step); worlds the env reset are reset
    to the same states (write + mj_forward), so both simulate the same trajectories."""

    def __init__(self, task, num_envs: int, nthread: int | None = None):
        from mujoco.batch import Batch

        self.spec = get_task(task)
        self.model = self.spec.build_model()
        self.num_envs = num_envs
        fields = ("qpos", "qvel") + tuple(f for f in self.spec.sim_fields if f not in ("qpos", "qvel"))
        self.post = tuple(f for f in fields if f in RNE_POST_FIELDS)
        self.batch = Batch(self.model, num_envs, nthread if nthread is not None else default_threads(),
                           persistent=bool(self.post))
        self.ctrl = self.batch.bind("ctrl")
        self.views = [self.batch.bind(f) for f in fields if f not in self.post]
        self.data = mujoco.MjData(self.model)
        self.post_out = {f: np.zeros((num_envs, *getattr(self.data, f).shape)) for f in self.post}

    def step(self, ctrl: np.ndarray, reset=None) -> list:
        self.ctrl[:] = ctrl
        self.batch.step(nstep=self.spec.frame_skip)
        out = [np.array(v) for v in self.views]
        if self.post:
            for k in range(self.num_envs):
                self.batch.get_data(k, self.data)
                mujoco.mj_rnePostConstraint(self.model, self.data)
                for f in self.post:
                    self.post_out[f][k] = getattr(self.data, f)
        if reset is not None:
            ids, states = reset
            self.batch.state[ids] = states
            self.batch.forward(ids)
        return out

    def run(self, steps: int, actions: np.ndarray, schedule) -> dict:
        initial, resets = schedule
        self.batch.state[:] = initial
        self.batch.forward()
        start = time.perf_counter()
        for i in range(steps):
            self.step(actions[i % len(actions)], resets[i])
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "env_steps_per_s": steps * self.num_envs / seconds}


def compare(task, num_envs: int, steps: int, repeats: int = 5, nthread: int | None = None,
            seed: int = 0, raw: bool = True) -> dict:
    """Env vs raw loop on the same trajectories, interleaved repeats, medians."""
    from robreward.envs.batched import make

    nthread = nthread if nthread is not None else default_threads()
    env = make(task, num_envs=num_envs, seed=seed, nthread=nthread)
    bank = _action_bank(env.spec, num_envs, seed)
    actions = [torch.from_numpy(a) for a in bank]
    schedule = record_schedule(env, steps, actions, seed)
    loop = RawLoop(task, num_envs, nthread) if raw else None
    if raw:
        loop.run(min(3, steps), bank, schedule)  # warm up
    env_runs, raw_runs, same = [], [], True
    for _ in range(repeats):
        env_runs.append(bench_env(env, steps, actions, seed)["env_steps_per_s"])
        if raw:
            raw_runs.append(loop.run(steps, bank.astype(np.float64), schedule)["env_steps_per_s"])
            same &= bool(np.array_equal(loop.batch.state, env.get_state().cpu().numpy()))
    result = {
        "task": env.spec.name,
        "num_envs": num_envs,
        "frame_skip": env.spec.frame_skip,
        "steps_per_repeat": steps,
        "repeats": repeats,
        "threads": nthread,
        "episodes_ended": int(sum(len(r[0]) for r in schedule[1] if r is not None)),
        "env_steps_per_s": statistics.median(env_runs),
        "env_runs": env_runs,
    }
    if raw:
        result["raw_steps_per_s"] = statistics.median(raw_runs)
        result["raw_runs"] = raw_runs
        result["ratio"] = result["env_steps_per_s"] / result["raw_steps_per_s"]
        result["same_trajectories"] = same  # raw loop ended in the env's exact states
    return result


def machine_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "cpus_usable": default_threads(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mujoco": mujoco.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
