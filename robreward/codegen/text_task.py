"""A task given as text (``generate --text``) over the scene of an existing task: the user's
fitness expression, checked like a reward program, and the task folder that training, eval and
compare then load like any other task."""

from __future__ import annotations

import ast
from pathlib import Path

from robreward.codegen.extract import preflight
from robreward.fileio import atomic_write_text

FITNESS_PROGRAM = '''"""The fitness of a --text task, as given by --fitness (written by robreward generate)."""
import torch
import math


def compute_reward(state, action):
    fitness = ({expr}) * 1.0
    return fitness, {{"fitness": fitness}}
'''
TEXT_TASK = '''"""A task given as text over the scene of an existing task (written by robreward generate):
the scene's physics, state and hand reward; the user's fitness (fitness.py) instead of the scene's."""
import dataclasses
from pathlib import Path

from robreward.envs.registry import get_task
from robreward.rewards.program import load_reward_program

HERE = Path(__file__).resolve().parent
SCENE = get_task({scene!r})
_FITNESS = (load_reward_program(HERE / "fitness.py", SCENE, dry_run=False)  # dry-run once by generate
            if (HERE / "fitness.py").is_file() else None)


def _fitness(state):
    if _FITNESS is None:  # no --fitness: a person's preference selects; 0 measures nothing
        return state.action.new_zeros(state.action.shape[0])
    return _FITNESS(state, state.action)[0]


TASK = dataclasses.replace(
    SCENE, name=SCENE.name + "-text", fitness=_fitness, success_threshold=None,
    description=(HERE / "text.txt").read_text() + "\\n\\nScene: " + SCENE.description,
    notes=("--text task: fitness from fitness.py" if _FITNESS is not None else
           "--text task without a fitness (constant 0): a person's or a VLM's preference selects its rewards")
          + "; success is the scene's own success test")
'''


def check_fitness_expression(expr: str, spec) -> str:
    """The --fitness expression as a reward program source, after the reward-program checks
    (static allow-list + sandboxed dry run: shape [N], float, finite). ValueError says why not."""
    try:
        ast.parse(expr.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"--fitness {expr!r} is not a Python expression ({err.msg}); give one expression over "
                         "state fields, e.g. \"(torch.linalg.norm(state.ee_to_goal, dim=-1) < 0.05)\"") from None
    source = FITNESS_PROGRAM.format(expr=" ".join(expr.split()))
    result = preflight(source, spec, name="fitness")
    if not result.ok:
        raise ValueError(f"--fitness {expr!r} is rejected by the reward-program checks: " + "; ".join(result.reasons))
    return source


def write_text_task(folder: Path, scene: str, text: str, fitness_source: str | None) -> str:
    """Write the task folder of a --text task over `scene` (a task name or folder); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if fitness_source is not None:
        atomic_write_text(folder / "fitness.py", fitness_source)
    atomic_write_text(folder / "text.txt", text.strip())
    atomic_write_text(folder / "task.py", TEXT_TASK.format(scene=scene))
    return str(folder.resolve())


__all__ = ["check_fitness_expression", "write_text_task"]
