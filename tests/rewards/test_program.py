"""Reward programs: static allow-list, compiled in the sandbox (real subprocesses), the graph in training."""

from __future__ import annotations

import textwrap

import pytest
import torch

import robreward
from robreward.cli.main import main as cli_main
from robreward.envs.spec import TaskState
from robreward.rewards.program import (CheckResult, RewardProgram, RewardProgramError, check_reward_program,
                                       load_reward_program)

TASK = "cheetah-run"

GOOD = """
import torch

def compute_reward(state, action):
    speed = state.x_velocity
    terms = {"speed": speed, "ctrl": -0.1 * (action ** 2).sum(-1)}
    return terms["speed"] + terms["ctrl"], terms
"""

# what LLMs tend to write: typing imports, annotations, helpers, F, math, loops, in-place on fresh tensors
GOOD_LLM_STYLE = '''
"""Run fast, stay upright."""
from typing import Dict, Tuple
import math
import torch
import torch.nn.functional as F

SPEED_TEMP: float = 2.0


def _upright(pitch: torch.Tensor, temp: float = 0.5) -> torch.Tensor:
    return torch.exp(-(pitch / temp) ** 2)


def compute_reward(state, action: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    with torch.no_grad():
        speed = torch.tanh(state["x_velocity"] / SPEED_TEMP)
    bonus = torch.zeros(state.num_envs, dtype=torch.float32)
    bonus[state.x_velocity > 1.0] = 0.1
    bonus += 0.0
    effort = sum(action[:, i] ** 2 for i in range(action.shape[1]))
    terms = {"speed": speed, "upright": 0.1 * _upright(state.qpos[:, 2]), "bonus": bonus}
    terms["effort"] = -0.01 * F.relu(effort) * math.cos(0.0)
    total = torch.stack(list(terms.values())).sum(0)
    for name in [f"{k}" for k in terms]:
        assert terms[name].shape == total.shape
    return total, terms
'''


def body(code: str) -> str:
    """A program whose compute_reward body is `code` (indented), returning a valid reward."""
    return ("import torch\nimport math\n\ndef compute_reward(state, action):\n"
            + textwrap.indent(textwrap.dedent(code).strip("\n"), "    ")
            + "\n    r = state.x_velocity * 1.0\n    return r, {'r': r}\n")


# (id, program, substring of a reason): every one must be rejected by the static checks
STATIC_HOSTILE = [
    ("import-os", "import os\n" + body("os.system('true')"), "import of 'os' is not allowed"),
    ("from-os", "from os import system\n" + body("system('true')"), "import from 'os' is not allowed"),
    ("import-numpy", "import numpy as np\n" + body("pass"), "import of 'numpy' is not allowed"),
    ("open", body("open('/etc/passwd').read()"), "open() is not allowed"),
    ("dunder-import", body("__import__('os').system('true')"), "dunder name '__import__'"),
    ("class-bases", body("().__class__.__bases__[0].__subclasses__()"), "dunder attribute `.__class__`"),
    ("getattr-string", body("getattr(torch, 'lo' + 'ad')('x.pt')"), "getattr() is not allowed"),
    ("torch-load", body("torch.load('x.pt')"), "`torch.load` is not allowed (file I/O)"),
    ("from-torch-load", "from torch import load\n" + body("load('x.pt')"), "`from torch import load` is not allowed"),
    ("torch-save", body("torch.save(state.qpos, 'x.pt')"), "`torch.save` is not allowed (file I/O)"),
    ("torch-from-file", body("torch.from_file('/etc/passwd', size=10)"), "`torch.from_file` is not allowed"),
    ("torch-hub", body("torch.hub.load('a/b', 'c')"), "`torch.hub.load` is not allowed (downloads code)"),
    ("torch-ops", body("torch.ops.aten.add(state.qpos, 1)"), "`torch.ops.aten.add` is not allowed"),
    ("torch-utils", body("torch.utils.data.DataLoader([])"), "is not allowed (file and process utilities)"),
    ("module-alias", body("t = torch\nt.load('x.pt')"), "the module 'torch' may only be used as `torch.NAME`"),
    ("exec", body("exec('import os')"), "exec() is not allowed"),
    ("eval", body("eval('1+1')"), "eval() is not allowed"),
    ("while-true", body("while True:\n    pass"), "while loops are not allowed"),
    ("builtins-os-system", body("__builtins__['__import__']('os').system('true')"), "dunder name '__builtins__'"),
    ("func-globals", body("compute_reward.__globals__['torch']"), "dunder attribute `.__globals__`"),
    ("generator-frame", body("g = (x for x in [1])\nb = g.gi_frame.f_back"), "frame/code object access"),
    ("format-string", body("'{0.__class__}'.format(action)"), "attribute `.format` is not allowed"),
    ("augassign-state", body("state.qpos += 1"), "assigning to an attribute"),
    ("augassign-alias", body("q = state.qpos[:, 0]\nq += 1"), "in-place `q += ...` may modify a state tensor"),
    ("augassign-dict-alias", body("d = {'v': state.x_velocity}\nd['v'] += 1"), "assigning into a tensor that may be"),
    ("setitem-state", body("state.qpos[:, 0] = 0.0"), "assigning into a tensor that may be (a view of) a state"),
    ("inplace-method", body("state.qpos.add_(1)"), "in-place method `.add_()` is not allowed"),
    ("out-kwarg", body("torch.add(state.qpos, 1, out=state.qpos)"), "`out=` is not allowed"),
    ("inplace-kwarg", "import torch.nn.functional as F\n" + body("F.relu(state.qpos, inplace=True)"), "`inplace=` is not allowed"),
    ("kwargs-unpack", body("torch.add(state.qpos, 1, **{'out': state.qpos})"), "`**kwargs` unpacking"),
    ("dot-data", body("state.qpos.data.mul(2)"), "attribute `.data` is not allowed"),
    ("numpy", body("a = state.qpos.numpy()"), "attribute `.numpy` is not allowed"),
    ("manual-seed", body("torch.manual_seed(0)"), "`torch.manual_seed` is not allowed (RNG seeding)"),
    ("random", body("n = torch.randn(3)"), "random numbers"),
    ("class-def", "class A:\n    pass\n" + body("pass"), "class definitions are not allowed"),
    ("try-except", body("try:\n    pass\nexcept Exception:\n    pass"), "try/except is not allowed"),
    ("global", body("global X"), "`global` is not allowed"),
    ("decorator", "import torch\n\n@torch.jit.script\ndef compute_reward(state, action):\n    r = state.x_velocity\n"
                  "    return r, {'r': r}\n", "decorators are not allowed"),
    ("top-level-code", "import torch\ntorch.zeros(10)\n" + body("pass").replace("import torch\n", ""),
     "top-level code other than imports"),
    ("unknown-field", body("v = state.speed"), "state has no field 'speed'; valid fields: action, qpos, qvel, x_position, x_velocity"),
    ("unknown-field-key", body("v = state['speed']"), "state has no field 'speed'"),
    ("missing-compute-reward", "import torch\n\ndef reward(state, action):\n    return state.x_velocity, {}\n",
     "no top-level `def compute_reward(state, action):` found"),
    ("two-compute-reward", GOOD + GOOD, "compute_reward is defined 2 times"),
    ("wrong-signature", "def compute_reward(state):\n    return state.x_velocity, {}\n",
     "exactly the signature `compute_reward(state, action)`"),
    ("reassigned", GOOD + "compute_reward = None\n", "compute_reward may not be reassigned"),
    ("syntax-error", "import torch\ndef compute_reward(state, action):\n    return (state.x_velocity", "syntax error"),
    ("truncated", GOOD[: len(GOOD) // 2], "syntax error"),
    ("empty", "", "no top-level `def compute_reward"),
]


@pytest.mark.parametrize("program,reason", [p[1:] for p in STATIC_HOSTILE], ids=[p[0] for p in STATIC_HOSTILE])
def test_hostile_programs_rejected_statically(program, reason):
    result = check_reward_program(program, TASK)
    assert not result.ok
    assert any(reason in r.message for r in result.reasons), result.format()
    assert set(result.stages) <= {"parse", "static"}  # never ran
    with pytest.raises(RewardProgramError, match="rejected"):
        load_reward_program(program, TASK)


def test_every_reason_is_reported():
    program = body("""
        x = state.qpos
        x += 1
        state.qpos.add_(1)
        torch.save(x, "f")
        y = state.foo
        exec("1")
    """)
    result = check_reward_program(program, TASK)
    messages = "\n".join(result.messages)
    for part in ("`x += ...`", ".add_()", "torch.save", "'foo'", "exec()"):
        assert part in messages
    with pytest.raises(RewardProgramError) as info:
        load_reward_program(program, TASK)
    assert len(info.value.reasons) == len(result.reasons) >= 5


# -- compiled in a real sandbox process, then the dry run of the graph ------------------------------------------------------------------
DRY_RUN_HOSTILE = [
    ("wrong-shape", "import torch\ndef compute_reward(state, action):\n    r = state.qpos.sum()\n    return r, {'r': r}\n",
     "total must have shape [N]=[16], got []"),
    ("hardcoded-n", "import torch\ndef compute_reward(state, action):\n    r = torch.zeros(4096)\n    return r, {'r': r}\n",
     "got [4096]"),
    ("returns-nan", body("r = state.x_velocity * float('nan')\nreturn r, {'r': r}"), "non-finite values"),
    ("terms-not-summing", body("r = state.x_velocity\nreturn r + 1.0, {'r': r}"), "terms do not sum to the total"),
    ("int-total", body("r = (state.x_velocity > 0).long()\nreturn r, {'r': r}"), "must be a float tensor"),
    ("not-a-pair", body("return state.x_velocity"), "must return a pair (total, terms), got a single tensor"),
    ("exception", body("v = state.qpos[:, 99]"), "IndexError"),
    ("runtime-mutation", body("q = max([state.qpos])\nq += 1"), "modified the state in place (field(s) qpos)"),
    ("memory-bomb", body("big = torch.zeros(10**11)"), "exceeded memory limit"),
    ("memory-bomb-1gb", body("big = torch.ones(2**28)"), "exceeded memory limit (256 MB)"),
    ("memory-bomb-list", body("big = [0.0] * 10**9"), "exceeded memory limit"),
]


@pytest.mark.parametrize("program,reason", [p[1:] for p in DRY_RUN_HOSTILE], ids=[p[0] for p in DRY_RUN_HOSTILE])
def test_hostile_programs_rejected_by_dry_run(program, reason):
    result = check_reward_program(program, TASK, timeout_s=10, memory_mb=256)
    assert not result.ok
    assert set(result.stages) <= {"compile", "dry-run"} and result.stages
    assert any(reason in r.message for r in result.reasons), result.format()


def test_infinite_loop_times_out_quickly():
    program = body("for i in range(10**12):\n    pass")
    with pytest.raises(RewardProgramError, match=r"timed out after 2s"):
        load_reward_program(program, TASK, timeout_s=2)


def test_error_reports_the_program_line():
    result = check_reward_program(body("v = state.qpos[:, 99]"), TASK)
    message = result.reasons[0].message
    assert "line 5, in compute_reward: v = state.qpos[:, 99]" in message


def test_good_program_passes_with_stats():
    result = check_reward_program(GOOD, TASK)
    assert isinstance(result, CheckResult) and result.ok and not result.reasons, result.format()
    assert set(result.stats) == {"total", "speed", "ctrl"}
    assert result.stats["ctrl"]["max"] <= 0 and result.num_states == 32
    assert result.to_dict()["ok"] is True


def test_llm_style_program_passes():
    result = check_reward_program(GOOD_LLM_STYLE, TASK)
    assert result.ok, result.format()
    assert set(result.stats) == {"total", "speed", "upright", "bonus", "effort"}


# -- training process --------------------------------------------------------------------------
def test_make_with_reward_file_matches_direct_computation(tmp_path):
    path = tmp_path / "my_reward.py"
    path.write_text(GOOD)
    env = robreward.make(TASK, 4, seed=0, reward=str(path))
    assert isinstance(env.reward_fn, RewardProgram) and env.reward_fn.name == "my_reward"
    env.reset(seed=0)
    for _ in range(5):
        action = torch.rand(4, env.act_dim) * 2 - 1
        _, reward, _, _, info = env.step(action)
        state = info["final_state"]
        expected = state.x_velocity - 0.1 * (state.action ** 2).sum(-1)
        torch.testing.assert_close(reward, expected)
        torch.testing.assert_close(info["reward_terms"]["speed"], state.x_velocity)


def test_make_with_bad_reward_file_raises_clearly(tmp_path):
    path = tmp_path / "bad_reward.py"
    path.write_text(body("torch.save(state.qpos, 'x.pt')"))
    with pytest.raises(RewardProgramError, match=r"'bad_reward' rejected:\n.*torch\.save"):
        robreward.make(TASK, 4, reward=str(path))
    with pytest.raises(FileNotFoundError, match="not found"):
        robreward.make(TASK, 4, reward=str(tmp_path / "missing.py"))


def _state(n=4):
    return TaskState({"qpos": torch.randn(n, 9), "qvel": torch.randn(n, 9), "action": torch.rand(n, 6),
                      "x_position": torch.randn(n), "x_velocity": torch.randn(n)})


def test_in_place_modification_of_the_state_is_rejected_when_compiled():
    with pytest.raises(RewardProgramError, match=r"modified the state in place \(field\(s\) qpos\)"):
        load_reward_program(body("q = max([state.qpos])\nq += 1"), TASK)


def test_the_graph_returns_raw_values_and_leaves_the_state_alone():
    """Non-finite values are the trainer's per-step check (every reward kind has it): the graph
    returns what the program computes; the state tensors come back unchanged."""
    program = body("x = state.x_velocity\nr = torch.where(x > 0, x * float('nan'), x)\nreturn r, {'r': r}")
    reward = load_reward_program(program, TASK, dry_run=False)
    state = TaskState({**_state(), "x_velocity": torch.tensor([1.0, -1.0, 2.0, -2.0])})
    before = {k: v.clone() for k, v in state.items()}
    total, terms = reward(state, state.action)
    assert torch.isnan(total[[0, 2]]).all() and torch.equal(total[[1, 3]], torch.tensor([-1.0, -2.0]))
    assert set(terms) == {"r"}
    assert all(torch.equal(before[k], v) for k, v in state.items())


def test_an_exception_while_tracing_is_a_clear_rejection():
    with pytest.raises(RewardProgramError, match=r"(?s)\[compile\] compute_reward raised an exception:\n.*line 5.*IndexError"):
        load_reward_program(body("v = state.qpos[:, 99]"), TASK, dry_run=False)


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_check_reward(tmp_path, capsys):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(GOOD)
    bad.write_text("import os\n" + body("torch.load('x')\nexec('1')"))
    assert cli_main(["check-reward", "--task", TASK, str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK good") and "speed" in out and "ctrl" in out
    assert cli_main(["check-reward", "--task", TASK, str(bad)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED bad" in out and "3 reason(s)" in out
    for part in ("'os'", "torch.load", "exec()"):
        assert part in out
