"""The robreward task suite: one sub-package per task, each defining TASK = TaskSpec(...)."""
