"""robreward: reward learning and batched MuJoCo sim training for robotics."""

import os

# headless rendering: must be chosen before mujoco is imported anywhere
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

__version__ = "0.1.0"

from robreward.envs import BatchedEnv, get_task, make, task_names  # noqa: E402
from robreward.envs.gym_adapter import register_gymnasium_envs  # noqa: E402

register_gymnasium_envs()

__all__ = ["BatchedEnv", "__version__", "get_task", "make", "task_names"]
