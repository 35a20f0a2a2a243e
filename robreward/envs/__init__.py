"""Batched MuJoCo environments (torch tensors, same-step auto-reset) and their adapters.

The names below load on first use (PEP 562), so `robreward.envs.registry` (task names, Gymnasium
registration) is importable without torch or MuJoCo."""

from robreward._lazy import lazy_attributes  # noqa: E402

_LAZY = {
    "BatchedEnv": "robreward.envs.batched", "make": "robreward.envs.batched",
    "UnknownTaskError": "robreward.envs.registry", "get_task": "robreward.envs.registry",
    "task_names": "robreward.envs.registry",
    "ResetSample": "robreward.envs.spec", "RewardTerm": "robreward.envs.spec", "StateField": "robreward.envs.spec",
    "TaskSpec": "robreward.envs.spec", "TaskState": "robreward.envs.spec",
}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


from robreward.envs import recording as _recording  # noqa: E402  (light: no torch)

_recording.register()  # the dry run of reward programs simulates through robreward.envs

__all__ = ["BatchedEnv", "ResetSample", "RewardTerm", "StateField", "TaskSpec", "TaskState",
           "UnknownTaskError", "get_task", "make", "task_names"]
