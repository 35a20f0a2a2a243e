"""Finding tasks: by name in the `sims` suite, or from any folder a user points at."""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the spec module imports torch and MuJoCo: task names and registration do not need them
    from robreward.envs.spec import TaskSpec


BACKENDS = ("cpu", "warp")
"""The simulation backends robreward.make takes (declared here, light, so configs check them without torch)."""


class UnknownTaskError(ValueError):
    """A task name that is neither in the suite nor a task folder."""


@functools.lru_cache(maxsize=None)
def task_names() -> tuple[str, ...]:
    """Names of the tasks shipped in `sims/`, e.g. ("ant-run", "cheetah-run", ...)."""
    import sims

    names = [
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(sims.__path__)
        if info.ispkg and not info.name.startswith("_")
    ]
    return tuple(sorted(names))


def _load_from_folder(folder: Path) -> TaskSpec:
    candidates = [folder / "task.py", folder / "__init__.py"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise UnknownTaskError(
            f"task folder {str(folder)!r} has no task.py (or __init__.py) defining TASK = TaskSpec(...); "
            "see sims/cheetah_run/ for an example"
        )
    module_name = f"robreward_user_task_{abs(hash(str(folder.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a user's file: say which one failed
        raise UnknownTaskError(f"could not load task folder {str(folder)!r}: {type(err).__name__}: {err}") from err
    finally:
        sys.path.remove(str(folder))
    return _task_of(module, str(folder))


def _task_of(module, where: str) -> TaskSpec:
    from robreward.envs.spec import TaskSpec

    task = getattr(module, "TASK", None)
    if task is None and hasattr(module, "make_task"):
        task = module.make_task()
    if not isinstance(task, TaskSpec):
        raise UnknownTaskError(f"{where} must define TASK = TaskSpec(...) (found {type(task).__name__})")
    return task


@functools.lru_cache(maxsize=None)
def _load_named(name: str) -> TaskSpec:
    module = importlib.import_module(f"sims.{name.replace('-', '_')}")
    return _task_of(module, f"sims/{name.replace('-', '_')}")


def get_task(task: str | os.PathLike | TaskSpec, *, allow_folder: bool = True) -> TaskSpec:
    """Resolve a task name, a task folder path, or a TaskSpec to a TaskSpec.

    allow_folder=False: `task` came from a file (a demo's attribute, a run's config.yaml, a
    checkpoint) and may only name a task of the suite. A task folder holds code, so only the
    command line (``--task FOLDER``) may name one; a data file never picks code to run."""
    from robreward.envs.spec import TaskSpec

    if isinstance(task, TaskSpec):
        return task
    text = str(task)
    if text in task_names():
        return _load_named(text)
    if not allow_folder:
        raise UnknownTaskError(
            f"the file names the task {text[:200]!r}, which is not a task of the suite "
            f"({', '.join(task_names())}); a file never selects a task folder (its code would run): "
            "if you trust that folder, pass it explicitly with --task FOLDER")
    path = Path(text)
    if path.is_dir():
        return _load_from_folder(path)
    if os.sep in text or text.startswith("."):
        raise UnknownTaskError(f"task folder {text!r} does not exist")
    close = difflib.get_close_matches(text, task_names(), n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownTaskError(
        f"unknown task {text!r}.{hint} Available tasks: {', '.join(task_names())}; "
        "or pass a folder containing task.py"
    )


def register_gymnasium_envs() -> None:
    """Register every suite task with Gymnasium as ``robreward/<task>-v0`` (done on ``import robreward``;
    the adapters load only when an env is made, so this costs no torch or MuJoCo import). A later task
    version, named ``<task>-vN`` in the suite (hopper-hop-v1), is also ``robreward/<task>-vN``, beside v0."""
    import re

    import gymnasium

    for name, env_id in [(n, f"robreward/{n}-v0") for n in task_names()] + [
            (n, f"robreward/{n}") for n in task_names() if re.search(r"-v\d+$", n)]:
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="robreward.envs.gym_adapter:GymEnv",
            vector_entry_point="robreward.envs.gym_adapter:GymVectorEnv",
            kwargs={"task": name},
            disable_env_checker=False,
        )
