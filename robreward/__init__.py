"""robreward: reward learning and batched MuJoCo sim training for robotics.

    env = robreward.make("push", num_envs=64, seed=0)

`import robreward` is light (no torch, no MuJoCo): `make`, `get_task`, `task_names` and `BatchedEnv`
load robreward.envs on first use, so `robreward --version` and `--help` start in a fraction of a
second. The suite's tasks are registered with Gymnasium as ``robreward/<task>-v0`` on import.
"""

import os

# headless rendering: must be chosen before mujoco is imported anywhere
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

__version__ = "0.1.0"

from robreward._lazy import lazy_attributes  # noqa: E402

_LAZY = {"BatchedEnv": "robreward.envs.batched", "make": "robreward.envs.batched",
         "get_task": "robreward.envs.registry", "task_names": "robreward.envs.registry"}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def _register_gymnasium() -> None:
    try:
        from robreward.envs.registry import register_gymnasium_envs
    except ImportError:  # a broken install: the error shows where the task is used
        return
    register_gymnasium_envs()


_register_gymnasium()

__all__ = ["BatchedEnv", "__version__", "get_task", "make", "task_names"]
