"""robreward: reward learning and batched MuJoCo sim training for robotics."""

__version__ = "0.1.0"

from robreward.envs import BatchedEnv, get_task, make, task_names  # noqa: E402
from robreward.envs.gym_adapter import register_gymnasium_envs  # noqa: E402

register_gymnasium_envs()

__all__ = ["BatchedEnv", "__version__", "get_task", "make", "task_names"]
