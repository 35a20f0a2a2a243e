"""A hostile corpus against the reward sandbox, written as an attacker would (issue 19): each
program or graph below was a way out before, or is one a compiler must refuse. Every layer is
attacked on its own: the static checks, the locked-down child (programs that skip the static
checks), the graph format the parent accepts, and training with what passed."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
import torch

from robreward.rewards import checker, sandbox
from robreward.rewards.graph import GraphError, RewardGraph
from robreward.rewards.program import (RewardProgramError, check_reward_program, compile_program,
                                       load_reward_program, record_states)
from robreward.envs.registry import get_task
from robreward.envs.spec import TaskState

TASK = "cheetah-run"
TRANSCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "transcripts")


def program(code: str) -> str:
    return "import torch\n\ndef compute_reward(state, action):\n" + textwrap.indent(textwrap.dedent(code).strip(), "    ") + "\n"


def _states():
    return record_states(get_task(TASK))


# -- the static checks: the bypasses that worked on main ------------------------------------------
def test_a_module_alias_used_above_its_import_is_judged_like_any_other_use():
    source = textwrap.dedent("""
        def compute_reward(state, action):
            T.utils.cpp_extension.subprocess.run(["sh", "-c", "id"])
            r = state.x_velocity * 1.0
            return r, {"r": r}
        import torch as T
    """)
    problems = "\n".join(m for _, m in checker.static_check(source, ["x_velocity", "action"]))
    assert "`torch.utils.cpp_extension.subprocess.run` is not allowed" in problems


def test_a_module_name_may_not_be_rebound_in_any_scope():
    source = textwrap.dedent("""
        import torch as T

        def helper(T):
            return T.ops.aten.add(1, 1)

        def compute_reward(state, action):
            r = state.x_velocity * 1.0
            return r, {"r": r}
    """)
    problems = "\n".join(m for _, m in checker.static_check(source, ["x_velocity", "action"]))
    assert "the name 'T' is an imported module and may not be bound again" in problems
    assert "`torch.ops.aten.add` is not allowed" in problems


@pytest.mark.parametrize("expr", ["(" * 1200 + "1" + ")" * 1200, "-" * 1200 + "1", "[" * 1200 + "]" * 1200,
                                  " + ".join(["state.x_velocity"] * 5000)])
def test_deeply_nested_programs_are_rejected_not_crashes(expr):
    result = check_reward_program(program(f"x = {expr}\nr = state.x_velocity * 1.0\nreturn r, {{'r': r}}"), TASK)
    assert not result.ok and result.stages[0] in ("parse", "static")
    assert any(("nested too deeply" in m or "too many nested" in m) for m in result.messages), result.format()


def test_torch_tensor_is_not_falsely_rejected():
    result = check_reward_program(program("""
        w = torch.tensor([0.5, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        r = (state.qpos * w).sum(-1) + torch.tensor(0.1) * state.x_velocity
        return r, {"r": r}
    """), TASK)
    assert result.ok, result.format()


# -- the child: what a program that got past the static checks could still try ------------------
def _lock_down_and_try(probe) -> dict:
    """Fork, lock down like a sandbox child, run `probe()` -> dict, send it back as JSON."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            locked = sandbox.lock_down(8 * 2**30, 30)
            os.write(w, json.dumps({"locked": locked, **probe()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def _attempt(fn) -> str:
    try:
        fn()
        return "done"
    except OSError as err:
        return f"refused: {err.errno}"


def test_the_locked_down_child_cannot_open_files_connect_or_start_processes(tmp_path):
    import socket
    import subprocess
    import threading

    marker = tmp_path / "marker"

    def probe():
        seen = []
        thread = threading.Thread(target=lambda: seen.append(1))  # torch may need threads: they still work
        thread.start()
        thread.join()
        return {
            "read": _attempt(lambda: open("/etc/hostname").read()),
            "write": _attempt(lambda: open(marker, "w").write("x")),
            "mkdir": _attempt(lambda: os.mkdir(tmp_path / "d")),
            "socket": _attempt(lambda: socket.socket().connect(("127.0.0.1", 9))),
            "subprocess": _attempt(lambda: subprocess.run(["sh", "-c", f"touch {marker}"])),
            "fork": _attempt(os.fork),
            "thread": len(seen),
        }

    result = _lock_down_and_try(probe)
    assert result["locked"] is True
    for key in ("read", "write", "mkdir", "socket", "subprocess", "fork"):
        assert result[key].startswith("refused"), (key, result)
    assert result["thread"] == 1
    assert not marker.exists() and not (tmp_path / "d").exists()


ESCAPE = """
import torch

def compute_reward(state, action):
    found = 0.0
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "Popen":
            try:
                cls(["sh", "-c", "touch {marker}"]).wait()
                found = found + 1.0
            except:  # noqa: E722 - the program has no Exception name
                pass
        if cls.__name__ == "FileIO":
            try:
                cls("{marker}", "w").write(b"x")
                found = found + 10.0
            except:  # noqa: E722 - the program has no Exception name
                pass
    r = state.x_velocity * 0.0 + found
    return r, {{"r": r}}
"""


def test_a_program_that_skips_the_static_checks_still_reaches_no_process_or_file(tmp_path):
    """compile_program is the sandbox layer alone (no static checks): the dunder walk to Popen and
    FileIO works in Python, and the kernel refuses what they ask for."""
    marker = tmp_path / "escaped"
    reasons, graph, _ = compile_program(ESCAPE.format(marker=marker), "<escape>", _states(), 10, 512)
    assert not marker.exists()
    if not reasons:  # it traced: the attempts are baked in as the constant they returned
        state = TaskState({k: torch.from_numpy(v) for k, v in _states()[0].items()})
        total, _ = graph.bind("cpu")(*[state["action" if k == "__action__" else k] for k in graph.used_inputs])
        assert torch.equal(total, torch.zeros_like(total))


def test_module_state_is_frozen_into_the_graph_so_late_misbehaviour_cannot_happen():
    """Behave for the 32 dry-run calls, then hang, allocate, turn NaN or break the terms: with the
    Python gone, the graph computes call 1's function forever."""
    source = textwrap.dedent("""
        import torch

        CALLS = [0]

        def compute_reward(state, action):
            CALLS.append(1)
            n = len(CALLS)
            if n > 32:
                for i in range(10 ** 12):
                    pass
            r = state.x_velocity * (1.0 if n < 40 else float("nan"))
            return r, {"r": r if n < 50 else r * 2.0}
    """)
    reward = load_reward_program(source, TASK)
    state = TaskState({k: torch.from_numpy(v) for k, v in _states()[0].items()})
    first = reward(state, state.action)
    for _ in range(100):
        total, terms = reward(state, state.action)
        assert torch.equal(total, first[0]) and torch.equal(terms["r"], first[1]["r"])
    assert torch.isfinite(total).all()


@pytest.mark.parametrize("code,reason", [
    ("r = state.x_velocity * 1.0\nif r.mean() > 0:\n    r = r * 2.0\nreturn r, {'r': r}", "use torch.where"),
    ("r = state.x_velocity * 1.0\nwhile_ = float(r.sum())\nreturn r, {'r': r}", "use torch.where"),
    ("r = state.x_velocity[state.x_velocity > 0].sum() + state.x_velocity\nreturn r, {'r': r}", "boolean-mask"),
    ("r = state.x_velocity.to_sparse()\nreturn r, {'r': r}", "not on the allow-list"),
    ("r = state.x_velocity + torch.bernoulli(state.x_velocity.clamp(0, 1))\nreturn r, {'r': r}",
     "random numbers"),
])
def test_what_cannot_be_compiled_is_rejected_with_what_to_do(code, reason):
    result = check_reward_program(program(code), TASK)
    assert not result.ok and any(reason in m for m in result.messages), result.format()


def test_a_meta_device_result_still_runs_on_the_input_device():
    reward = load_reward_program(program("r = state.x_velocity.to('meta')\nr = r * 1.0\nreturn r, {'r': r}"), TASK)
    state = TaskState({k: torch.from_numpy(v) for k, v in _states()[0].items()})
    total, _ = reward(state, state.action)
    assert total.device.type == "cpu" and torch.equal(total, state.x_velocity)


def test_work_beyond_the_limit_is_rejected_before_it_runs():
    code = "m = torch.ones(8000, 8000) @ torch.ones(8000, 8000)\nr = state.x_velocity + m[0, 0]\nreturn r, {'r': r}"
    result = check_reward_program(program(code), TASK, memory_mb=4096)
    assert not result.ok and any("operations per call" in m for m in result.messages), result.format()


# -- the graph format: answers the parent must refuse -------------------------------------------
def _graph(nodes, output=None, constants=None, inputs=("x_velocity", "__action__")):
    return {"format": sandbox.GRAPH_FORMAT, "inputs": list(inputs), "nodes": nodes, "constants": constants or {},
            "output": output or {"total": {"ref": "v0"}, "terms": {"r": {"ref": "v0"}}}}


@pytest.mark.parametrize("op", ["builtins.eval", "os.system", "aten.copy_.default", "aten.add_.Tensor",
                                "aten.add.out", "aten.rand.default", "aten.empty.memory_format",
                                "aten.set_.source_Tensor", "aten._local_scalar_dense.default", "aten.add.Nope",
                                "torch.ops.aten.add.Tensor", "aten..", "operator.attrgetter"])
def test_ops_off_the_allow_list_are_refused(op):
    with pytest.raises(GraphError):
        RewardGraph(_graph([{"op": op, "args": [{"ref": "in:x_velocity"}, 1.0], "kwargs": {}}]))


@pytest.mark.parametrize("node", [
    {"op": "aten.add.Tensor", "args": [{"ref": "v5"}, 1.0], "kwargs": {}},              # a later node
    {"op": "aten.add.Tensor", "args": [{"ref": "in:qpos"}, 1.0], "kwargs": {}},         # not an input
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, {"code": "1"}], "kwargs": {}},
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, 1.0], "kwargs": {"a=1); import os; (b": 1}},
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, 1.0], "kwargs": {"lambda": 1}},
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, {"dtype": "object"}], "kwargs": {}},
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, [[[[[[[[[[1]]]]]]]]]]], "kwargs": {}},
    {"op": "aten.add.Tensor", "args": [{"ref": "in:x_velocity"}, "x" * 1000], "kwargs": {}},
])
def test_malformed_nodes_are_refused(node):
    with pytest.raises(GraphError):
        RewardGraph(_graph([node]))


def test_oversized_or_malformed_constants_are_refused():
    too_big = {"c0": {"dtype": "float32", "shape": [400, 400], "values": [0.0] * 160_000}}
    with pytest.raises(GraphError, match="at most"):
        RewardGraph(_graph([], constants=too_big))
    with pytest.raises(GraphError, match="as many as"):
        RewardGraph(_graph([], constants={"c0": {"dtype": "float32", "shape": [10**9], "values": [1.0]}}))
    with pytest.raises(GraphError, match="numbers"):
        RewardGraph(_graph([], constants={"c0": {"dtype": "float32", "shape": [1], "values": ["__import__"]}}))


def test_term_names_and_strings_are_data_never_code():
    evil = "r'}; import os; os.system('touch /tmp/pwned'); {'"
    graph = RewardGraph(_graph([{"op": "aten.mul.Tensor", "args": [{"ref": "in:x_velocity"}, 2.0], "kwargs": {}}],
                               output={"total": {"ref": "v0"}, "terms": {evil: {"ref": "v0"}}}))
    total, terms = graph.bind("cpu")(torch.ones(3))
    assert list(terms) == [evil] and torch.equal(total, torch.full((3,), 2.0))


def test_an_output_that_is_an_input_is_copied():
    graph = RewardGraph(_graph([], output={"total": {"ref": "in:x_velocity"}, "terms": {"v": {"ref": "in:x_velocity"}}}))
    x = torch.ones(3)
    total, terms = graph.bind("cpu")(x)
    total.add_(1.0)
    assert torch.equal(x, torch.ones(3)) and torch.equal(terms["v"], torch.ones(3))


# -- real programs still compile, and the graph computes what the program computes ---------------
def _transcript_programs():
    from robreward.codegen.extract import extract_program

    out = []
    for run in ("push-k4-2it", "lift-k4-1it"):
        folder = os.path.join(TRANSCRIPTS, run, "transcript")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            with open(os.path.join(folder, name)) as f:
                texts = json.load(f)["completion"]["texts"]
            out += [(f"{run}/{name}/{i}", run.split("-")[0], extract_program(t).code) for i, t in enumerate(texts)]
    return out


def test_every_recorded_llm_program_compiles_and_its_graph_matches_the_program():
    programs = _transcript_programs() + [("examples/push_reward.py", "push",
                                          open(os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                                            "push_reward.py")).read())]
    assert len(programs) == 13, "the shared transcripts (12 programs) are missing"
    for label, task, source in programs:
        spec = get_task(task)
        result = check_reward_program(source, spec, name=label)
        assert result.ok, result.format()
        reward = load_reward_program(source, spec, name=label)
        eager = sandbox.load_function(source, label)  # trusted data here: the test compares the two
        for arrays in record_states(spec)[::8]:
            state = TaskState({k: torch.from_numpy(v) for k, v in arrays.items()})
            want, want_terms = eager(state, state.action)
            got, got_terms = reward(state, state.action)
            torch.testing.assert_close(got, want)
            assert list(got_terms) == list(want_terms)
            for k in want_terms:
                torch.testing.assert_close(got_terms[k], want_terms[k])


def test_a_compiled_program_is_picklable_as_plain_data():
    import pickle

    reward = load_reward_program(program("r = state.x_velocity * 2.0\nreturn r, {'r': r}"), TASK)
    again = pickle.loads(pickle.dumps(reward))
    state = TaskState({k: torch.from_numpy(v) for k, v in _states()[0].items()})
    assert torch.equal(again(state, state.action)[0], reward(state, state.action)[0])


def test_rejections_raise_one_error_with_every_reason():
    with pytest.raises(RewardProgramError, match="rejected"):
        load_reward_program(program("r = torch.randn(3)\nreturn r, {'r': r}"), TASK)


def test_ops_with_several_results_compile_and_match():
    source = program("""
        top = state.qpos.max(-1).values + torch.min(state.qvel, dim=-1)[0]
        std, mean = torch.std_mean(state.qpos, dim=-1)
        r = top + std - mean.abs() + torch.linalg.norm(state.qvel[:, 3:], dim=-1)
        return r, {"r": r}
    """)
    reward = load_reward_program(source, TASK)
    eager = sandbox.load_function(source, "<multi>")
    state = TaskState({k: torch.from_numpy(v) for k, v in _states()[3].items()})
    torch.testing.assert_close(reward(state, state.action)[0], eager(state, state.action)[0])


FORGE = """
import torch

def compute_reward(state, action):
    wrote = 0.0
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            g = cls.__init__.__globals__
            line = b'{{"graph": {{"forged": 1}}}}\\n'
            for fd in range(0, 64):
                try:
                    g["write"](fd, line)
                    wrote = wrote + 1.0
                except:  # noqa: E722
                    pass
            try:
                g["write"](2, b"x" * 10000000)
            except:  # noqa: E722 - the program has no Exception name
                pass
    r = state.x_velocity * 0.0 + wrote
    return r, {{"r": r}}
"""


def test_a_program_cannot_forge_the_answer_of_the_next_one():
    """Every descriptor but the child's own answer pipe is closed: a write to the server's answer
    channel (which would desynchronise it, so the NEXT program got a forged graph) or an endless
    stderr line fails; the only write that works is into its own answer, which it cannot forge
    without losing its own."""
    reasons, graph, _ = compile_program(FORGE.format(), "<forge>", _states(), 10, 512)
    if not reasons:
        state = TaskState({k: torch.from_numpy(v) for k, v in _states()[0].items()})
        total, _ = graph.bind("cpu")(*[state["action" if k == "__action__" else k] for k in graph.used_inputs])
        assert float(total.max()) <= 1.0  # at most its own pipe took the line
    good = program("r = state.x_velocity * 3.0\nreturn r, {'r': r}")
    reasons, graph, _ = compile_program(good, "<next>", _states(), 10, 512)
    assert not reasons and graph.op_counts() == {"mul": 1}


def test_a_bare_nan_in_the_answer_is_a_value_not_a_name():
    graph = RewardGraph(json.loads(json.dumps(_graph(
        [{"op": "aten.mul.Tensor", "args": [{"ref": "in:x_velocity"}, float("nan")], "kwargs": {}}]))))
    total, _ = graph.bind("cpu")(torch.ones(2))
    assert torch.isnan(total).all()
