"""Batched MuJoCo environments (torch tensors, same-step auto-reset) and their adapters."""

from robreward.envs.batched import BatchedEnv, make
from robreward.envs.registry import UnknownTaskError, get_task, task_names
from robreward.envs.spec import ResetSample, RewardTerm, StateField, TaskSpec, TaskState

__all__ = ["BatchedEnv", "ResetSample", "RewardTerm", "StateField", "TaskSpec", "TaskState",
           "UnknownTaskError", "get_task", "make", "task_names"]
