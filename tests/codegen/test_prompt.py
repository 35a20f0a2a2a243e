"""Prompt contents: task text, typed state abstraction, the Reward contract, tips, later-iteration
sections, the repair round, determinism; and that no hand reward or success code leaks."""

from __future__ import annotations

import importlib
import inspect

import pytest

from robreward.codegen.prompt import build_prompt, repair_prompt, state_abstraction
from robreward.envs.registry import get_task

TASKS = ["push", "cheetah-run"]


def user_text(messages) -> str:
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def all_text(messages) -> str:
    return "\n".join(m["content"] for m in messages)


@pytest.mark.parametrize("name", TASKS)
def test_prompt_has_task_fields_contract_and_tips(name):
    spec = get_task(name)
    messages = build_prompt(spec)
    text = user_text(messages)
    assert spec.description.strip() in text
    for field in spec.state_fields:
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{field.name}: Tensor"))
        shape = "[N" + "".join(f", {s}" for s in field.shape) + "]"
        assert shape in line and field.unit in line and field.meaning in line
    action = next(line for line in text.splitlines() if line.strip().startswith("action: Tensor"))
    assert f"[N, {spec.act_dim}]" in action and "each in [-1, 1]" in action
    assert "def compute_reward(state, action):" in text and "return total, terms" in text
    assert "`total`: float tensor [N]" in text and "`terms`: dict str -> float tensor [N]" in text
    assert "they must sum to `total`" in text
    assert "`import torch`, `import math`" in text and "any other import" in text
    assert "attributes (`state.qpos`)" in text
    assert "temperature" in text and "its own named term" in text and "comparable scales" in text
    assert f"episodes of {spec.episode_length} steps" in text
    assert "```python" in messages[0]["content"]
    # first iteration: no later-iteration sections
    for absent in ("best reward program so far", "Preferences between", "Feedback from a person"):
        assert absent not in text


@pytest.mark.parametrize("name", TASKS)
def test_prompt_never_contains_hand_reward_or_success_code(name):
    spec = get_task(name)
    text = all_text(build_prompt(spec, task_text="run", feedback="f", reflection="r", best_code="x = 1",
                                 preferences=[(1, 2)]))
    module = importlib.import_module(f"sims.{name.replace('-', '_')}")
    assert inspect.getsource(module) not in text
    assert "RewardTerm" not in text and "reward_terms" not in text
    for fn in [t.fn for t in spec.reward_terms] + [spec.success, spec.fitness]:
        source = inspect.getsource(fn).strip()
        code = source[source.index("lambda"):] if "lambda" in source else source
        assert code.rstrip("),") not in text
        if fn.__name__ != "<lambda>":
            assert fn.__name__ + "(" not in text
    assert "closeness" not in text and "ctrl_cost" not in text and "_arm." not in text
    if spec.notes:
        assert spec.notes not in text


def test_state_abstraction_is_a_typed_stub():
    stub = state_abstraction(get_task("push"))
    lines = stub.splitlines()
    assert lines[0].startswith("class TaskState:")
    assert lines[-1] == "    num_envs: int  # N"
    assert "    cube_to_goal: Tensor     # [N, 3]   m          goal_pos - cube_pos" in lines
    assert "    gripper_opening: Tensor  # [N]      m" in stub


def test_task_text_replaces_the_goal_and_keeps_the_scene():
    spec = get_task("push")
    text = user_text(build_prompt(spec, task_text="  push the block to the goal without tipping it "))
    assert text.startswith("Task: push the block to the goal without tipping it\n")
    assert "Scene (push; where this background names another goal, the task above is the one to solve): " in text
    assert spec.description.strip() in text


def test_later_iteration_sections():
    spec = get_task("cheetah-run")
    best = "import torch\n\ndef compute_reward(state, action):\n    r = state.x_velocity\n    return r, {'r': r}\n"
    text = user_text(build_prompt(spec, feedback="it hops on its back", reflection="speed: [0.1, 0.5], Max 0.5",
                                  best_code=best, preferences=[(3, 1), "candidate 2 fell over in every video"]))
    assert "The best reward program so far:\n```python\n" + best + "```" in text
    assert "over training:\nspeed: [0.1, 0.5], Max 0.5" in text
    assert ("(from a person or the task metric, comparing videos of their trained policies):\n"
            "- candidate 3 was preferred over candidate 1\n- candidate 2 fell over in every video") in text
    assert "Feedback from a person who watched the trained policy: it hops on its back" in text
    # order: best code, preferences, human feedback, final instruction
    assert text.index("best reward") < text.index("Preferences") < text.index("Feedback from") < \
        text.index("Reply with the complete program")


def test_prompt_is_deterministic_and_checks_inputs():
    spec = get_task("push")
    kwargs = dict(feedback="slower", reflection="r", best_code="x = 1", preferences=[(2, 0)])
    assert build_prompt(spec, **kwargs) == build_prompt(spec, **kwargs)
    with pytest.raises(ValueError, match=r"a preference must be a sentence or a \(preferred, other\) pair"):
        build_prompt(spec, preferences=[(1, 2, 3)])
    with pytest.raises(TypeError, match="needs a TaskSpec"):
        build_prompt("push")


def test_repair_prompt_appends_code_and_error():
    spec = get_task("push")
    messages = build_prompt(spec)
    before = [dict(m) for m in messages]
    code = "import os\ndef compute_reward(state, action):\n    return 0, {}\n"
    error = "line 1: import of 'os' is not allowed"
    repaired = repair_prompt(messages, code, error)
    assert messages == before  # not modified
    assert repaired[:2] == messages
    assert [m["role"] for m in repaired[2:]] == ["assistant", "user"]
    assert repaired[2]["content"] == "```python\n" + code + "```"
    assert error in repaired[3]["content"] and "Please fix" in repaired[3]["content"]
    assert repair_prompt(messages, None, "no code found")[2]["content"] == "(the response contained no usable program)"
    raw = "Sure:\n```python\nx = (\n```"
    assert repair_prompt(messages, raw, "truncated")[2]["content"] == raw
    assert repair_prompt(messages, code, error) == repaired
