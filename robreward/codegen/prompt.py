"""Prompts for reward-code generation: the task text, a compact typed abstraction of the
TaskState (Text2Reward-style, generated from ``spec.state_fields``), the Reward contract, what
the checks allow, and Eureka's tips; later iterations add the previous best program with its
reflection, human feedback and ICPL-style preferences.

    build_prompt(spec, task_text=None, feedback=None, reflection=None, best_code=None,
                 preferences=None) -> [{"role": "system", ...}, {"role": "user", ...}]
    repair_prompt(messages, code, error) -> messages + [assistant: the code, user: the error]

What an LLM sees of a task is only what ``robreward tasks show`` prints (description, fields,
action bounds, timing): never the hand reward terms, success or fitness code, and never the
task's source. Output is deterministic: the same arguments give the same messages, byte for byte.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from robreward.codegen.extract import SIGNATURE
from robreward.envs.spec import TaskSpec

SYSTEM = (
    "You are a reward engineer for reinforcement learning in robotics. You write reward functions "
    "for batched MuJoCo simulations as Python code over PyTorch tensors. A policy is trained with "
    "PPO on your reward, and the reward is judged by how well that policy solves the task. "
    "Reply with exactly one ```python code block holding the complete program, and nothing "
    "inside it but the program."
)

CONTRACT = f"""\
Write a Python file that defines

```python
import torch

{SIGNATURE}
    ...
    return total, terms
```

- `state`: the TaskState above, for all N worlds at once; read fields as attributes (`state.qpos`).
- `action`: float32 tensor [N, act_dim], the same as `state.action`.
- `total`: float tensor [N], the reward of each world for this step.
- `terms`: dict str -> float tensor [N] of the named parts of the reward; they must sum to `total`.
- It is called once per control step on the post-step state, vectorized over N: no Python loops over worlds."""

RULES = """\
Allowed: `import torch`, `import math` (and `torch.nn.functional`, `typing`); torch and math functions;
helper functions and constants at the top level of the file.
Not allowed (the program is rejected): any other import, file/network/process access, print/open/eval/exec,
`while` loops, try/except, classes, random numbers, dunder attributes, and modifying the state in place
(no `+=` on state tensors or their slices, no `.add_()`-style methods, no `out=`): build new tensors instead.
The program is checked statically and then run on recorded states: every output must have shape [N], be
finite, and the terms must sum to the total."""

TIPS = """\
Tips:
- Give every distinct part of the reward its own named term, with its weight applied inside the term.
- When you transform a term with torch.exp or torch.tanh, give the transform its own named temperature
  constant (e.g. `dist_temp = 0.1`; `torch.exp(-dist / dist_temp)`) so it can be tuned.
- Keep the terms on comparable scales (roughly within an order of magnitude per step); a term that
  dwarfs the others makes them irrelevant, a tiny one has no effect.
- Prefer dense, smooth progress terms over sparse bonuses alone; mind the units of each field."""

PREFERENCE_HEADER = ("Preferences between the candidates of the last iteration (from a person or the task "
                     "metric, comparing videos of their trained policies):")


def _shape(shape: Sequence[int]) -> str:
    return "[N" + "".join(f", {s}" for s in shape) + "]"


def _bounds(low: Sequence[float], high: Sequence[float]) -> str:
    if len(set(low)) == 1 and len(set(high)) == 1:
        return f"each in [{low[0]:g}, {high[0]:g}]"
    return "per dimension in " + ", ".join(f"[{lo:g}, {hi:g}]" for lo, hi in zip(low, high))


def state_abstraction(spec: TaskSpec) -> str:
    """The TaskState as a typed class stub, one documented field per line (from state_fields)."""
    rows = []
    for f in spec.state_fields:
        meaning = f.meaning
        if f.name == "action":
            meaning += f"; {spec.act_dim} dims, {_bounds(spec.action_low, spec.action_high)}"
        rows.append((f"    {f.name}: Tensor", f"# {_shape(f.shape)}", f"{f.unit}", meaning))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    lines = ["class TaskState:  # every field: a float32 torch.Tensor, first dimension N (worlds)"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c:<{w2}}  {d}" for a, b, c, d in rows]
    lines.append("    num_envs: int  # N")
    return "\n".join(lines)


def _control(spec: TaskSpec) -> str:
    text = (f"Control: a {spec.act_dim}-dim action per step ({_bounds(spec.action_low, spec.action_high)}), "
            f"{spec.frame_skip} physics steps per action")
    try:
        dt = float(spec.build_model().opt.timestep) * spec.frame_skip
        text += f" ({dt:g} s per control step)"
    except Exception:  # noqa: BLE001 - a scene that fails to build is reported where it is used
        pass
    return text + f"; episodes of {spec.episode_length} steps."


def _format_preferences(preferences: Iterable) -> list[str]:
    lines = []
    for p in preferences:
        if isinstance(p, str):
            lines.append(f"- {p.strip()}")
        elif isinstance(p, (tuple, list)) and len(p) == 2:
            lines.append(f"- candidate {p[0]} was preferred over candidate {p[1]}")
        else:
            raise ValueError(f"a preference must be a sentence or a (preferred, other) pair of candidate ids, "
                             f"got {p!r}")
    return lines


def _fenced(code: str) -> str:
    return "```python\n" + code.strip("\n") + "\n```"


def build_prompt(spec: TaskSpec, task_text: str | None = None, feedback: str | None = None,
                 reflection: str | None = None, best_code: str | None = None,
                 preferences: Iterable | None = None) -> list[dict]:
    """Chat messages (system + user) asking for one reward program for `spec`.

    task_text: the task to solve (the user's ``--text``); default: the task's description.
    best_code / reflection: the best program so far and the reflection on its training.
    feedback: free text from a person. preferences: sentences, or (preferred, other) id pairs.
    """
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"build_prompt needs a TaskSpec (robreward.envs.registry.get_task(name)), "
                        f"got {type(spec).__name__}")
    parts = []
    if task_text and task_text.strip():
        parts += [f"Task: {task_text.strip()}", "",
                  f"Scene ({spec.name}; where this background names another goal, the task above is the one "
                  f"to solve): {spec.description.strip()}"]
    else:
        parts += [f"Task ({spec.name}): {spec.description.strip()}"]
    parts += ["", _control(spec), "",
              "The state your reward reads (all N simulated worlds at once, after the step):",
              "```python", state_abstraction(spec), "```", "", CONTRACT, "", RULES, "", TIPS]
    if best_code:
        parts += ["", "The best reward program so far:", _fenced(best_code)]
        if reflection:
            parts += ["", "We trained a policy with it and tracked every reward term and the task metrics "
                          "over training:", reflection.strip()]
        parts += ["", "Analyze this feedback and write an improved reward program. Terms that have no effect, "
                      "dominate the others or work against the task should be rescaled, rewritten or dropped; "
                      "if the success rate stays near zero, rewrite the reward."]
    elif reflection:
        parts += ["", "Training feedback on the previous reward:", reflection.strip()]
    if preferences:
        pref_lines = _format_preferences(preferences)
        if pref_lines:
            parts += ["", PREFERENCE_HEADER] + pref_lines
    if feedback and feedback.strip():
        parts += ["", f"Feedback from a person who watched the trained policy: {feedback.strip()}",
                  "Take it into account in the new program."]
    parts += ["", "Reply with the complete program in one ```python block."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


REPAIR_ANSWER_CHARS = 20_000
"""A rejected answer longer than this is not sent back in the repair request."""


def repair_prompt(messages: Sequence[dict], code: str | None, error: str) -> list[dict]:
    """The messages of one repair round: the conversation so far, the candidate as the
    assistant's answer (the extracted program, or the raw response when extraction failed),
    then the checker's error. The input list is not modified."""
    if code is None or not code.strip():
        answer = "(the response contained no usable program)"
    elif len(code) > REPAIR_ANSWER_CHARS:  # a huge response is not paid for twice
        answer = f"(a response of {len(code):,} characters, too long to repeat here)"
    elif "```" in code:
        answer = code.strip("\n")
    else:
        answer = _fenced(code)
    ask = (f"Checking the reward function code above gave the following error:\n{error.strip()}\n\n"
           "Please fix the problem and reply with the complete corrected program in one ```python block.")
    return [dict(m) for m in messages] + [{"role": "assistant", "content": answer}, {"role": "user", "content": ask}]


__all__ = ["SYSTEM", "build_prompt", "repair_prompt", "state_abstraction"]
