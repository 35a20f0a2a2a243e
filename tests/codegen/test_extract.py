"""Code extraction from LLM responses (good and broken), and the pre-flight record over the
project's reward-program checks (static allow-list, sandboxed dry run in a real subprocess)."""

from __future__ import annotations

import json

import pytest

from robreward.codegen.extract import ExtractResult, PreflightResult, extract_program, preflight

TASK = "cheetah-run"

GOOD = """\
import torch

SPEED_TEMP = 2.0


def _effort(action):
    return (action ** 2).sum(-1)


def compute_reward(state, action):
    speed = torch.tanh(state.x_velocity / SPEED_TEMP)
    terms = {"speed": speed, "ctrl": -0.1 * _effort(action)}
    return terms["speed"] + terms["ctrl"], terms
"""

OTHER = GOOD.replace("SPEED_TEMP = 2.0", "SPEED_TEMP = 3.0")
HELPER = "import torch\n\ndef _effort(action):\n    return (action ** 2).sum(-1)\n"
CUT = GOOD[: GOOD.index('"ctrl"')]  # ends inside the dict literal


def fenced(code: str, tag: str = "python", fence: str = "```") -> str:
    return f"{fence}{tag}\n{code.rstrip()}\n{fence}\n"


# (id, response, expected kind, substring of the error or None)
RESPONSES = [
    ("fenced", "Here is the reward:\n\n" + fenced(GOOD) + "\nIt rewards speed and penalizes effort.", "ok", None),
    ("bare-fence", fenced(GOOD, tag=""), "ok", None),
    ("py-tag-tilde-fence", fenced(GOOD, tag="py", fence="~~~"), "ok", None),
    ("indented-fence", "1. The reward:\n" + "".join("   " + line if line.strip() else line
                                                        for line in fenced(GOOD).splitlines(True)), "ok", None),
    ("unfenced-code", GOOD, "ok", None),
    ("unfenced-with-prose", "Sure! Here it is:\n" + GOOD + "\nThis reward makes the cheetah run.\n", "ok", None),
    ("same-block-twice", fenced(GOOD) + "\nAgain, in full:\n" + fenced(GOOD), "ok", None),
    ("helper-block-then-program", fenced(HELPER) + "and the reward:\n" + fenced(GOOD), "ok", None),
    ("other-language-block", "Install nothing:\n" + fenced("pip install torch", tag="bash") + fenced(GOOD), "ok", None),
    ("closed-program-then-cut-example", fenced(GOOD) + "Example:\n```python\nr, t = compute_", "ok", None),
    ("annotated-signature", fenced(GOOD.replace("def compute_reward(state, action):",
                                                "def compute_reward(state: 'TaskState', action: torch.Tensor) -> tuple:")),
     "ok", None),
    ("two-different-blocks", fenced(GOOD) + "Or, alternatively:\n" + fenced(OTHER), "several",
     "several compute_reward definitions"),
    ("two-defs-one-block", fenced(GOOD + "\n\n" + GOOD.split("\n\n\n")[-1]), "several",
     "several compute_reward definitions"),
    ("wrong-signature-one-arg", fenced("def compute_reward(state):\n    return state.x_velocity, {}\n"), "signature",
     "exactly the signature `def compute_reward(state, action):` (got `def compute_reward(state):`)"),
    ("wrong-signature-self", fenced("def compute_reward(self, state, action):\n    return 0, {}\n"), "signature",
     "got `def compute_reward(self, state, action):`"),
    ("wrong-signature-kwargs", fenced("def compute_reward(state, action, **kw):\n    return 0, {}\n"), "signature",
     "exactly the signature"),
    ("async", fenced("async def compute_reward(state, action):\n    return 0, {}\n"), "signature", "async def"),
    ("truncated-fence", "Here you go:\n```python\n" + CUT, "truncated", "truncated"),
    ("truncated-complete-lines", "```python\n" + GOOD.split("    terms =")[0], "truncated", "never closed"),
    ("truncated-unfenced", CUT, "truncated", "truncated"),
    ("syntax-error-mid-block", fenced(GOOD.replace("SPEED_TEMP = 2.0", "SPEED_TEMP = = 2.0")), "syntax",
     "syntax error at line 3"),
    ("no-code", "I am sorry, I cannot write that reward function.", "no_code", "no code found"),
    ("only-bash-block", fenced("pip install torch", tag="bash"), "no_code", "no code block defines"),
    ("block-without-program", fenced(HELPER), "no_code", "no code block defines"),
    ("lambda", fenced("compute_reward = lambda state, action: (state.x_velocity, {})\n"), "no_code",
     "no code block defines"),
    ("nested-def", fenced("if True:\n    def compute_reward(state, action):\n        return 0, {}\n"), "no_code",
     "nested inside another statement"),
    ("empty", "", "empty", "the response is empty"),
    ("whitespace", "  \n\t\n", "empty", "the response is empty"),
]


@pytest.mark.parametrize("response,kind,error", [r[1:] for r in RESPONSES], ids=[r[0] for r in RESPONSES])
def test_extraction_table(response, kind, error):
    result = extract_program(response)
    assert isinstance(result, ExtractResult)
    assert result.kind == kind, result.error
    if kind == "ok":
        assert result.ok and result.error is None
        assert "def compute_reward(state" in result.code and result.code.endswith("\n")
        assert "```" not in result.code and "Sure!" not in result.code and "This reward" not in result.code
        compile(result.code, "<extracted>", "exec")
    else:
        assert result.code is None and not result.ok
        assert error in result.error


def test_fenced_program_is_extracted_verbatim():
    assert extract_program("Here:\n" + fenced(GOOD) + "Done.").code == GOOD
    assert extract_program(GOOD).code == GOOD
    assert extract_program(fenced(HELPER) + fenced(GOOD)).code == GOOD


def test_none_response_is_empty():
    assert extract_program(None).kind == "empty"


# -- pre-flight -------------------------------------------------------------------------------------
def test_preflight_passes_a_good_program_with_term_stats():
    result = preflight(extract_program(fenced(GOOD)), TASK)
    assert isinstance(result, PreflightResult)
    assert result.ok and result.stage == "dry_run" and result.reasons == (), result.reasons
    assert set(result.term_stats) == {"total", "speed", "ctrl"}
    assert result.term_stats["ctrl"]["max"] <= 0
    assert json.loads(json.dumps(result.to_dict()))["ok"] is True


def test_preflight_rejects_malicious_import_statically():
    code = "import os\n\n" + GOOD.replace("    speed =", "    os.system('touch /tmp/pwned')\n    speed =")
    result = preflight(code, TASK)
    assert not result.ok and result.stage == "static"
    assert any("import of 'os' is not allowed" in r for r in result.reasons), result.reasons
    assert result.term_stats == {}


def test_preflight_rejects_an_infinite_loop_in_the_dry_run():
    code = GOOD.replace("    speed =", "    for i in range(10**12):\n        pass\n    speed =")
    result = preflight(code, TASK, timeout_s=2)
    assert not result.ok and result.stage == "dry_run"
    assert any("timed out after 2s" in r for r in result.reasons), result.reasons


def test_preflight_reports_non_finite_output_from_the_dry_run():
    code = GOOD.replace("speed = torch.tanh(", "speed = float('nan') * torch.tanh(")
    result = preflight(code, TASK)
    assert not result.ok and result.stage == "dry_run"
    assert any("non-finite" in r for r in result.reasons), result.reasons


def test_preflight_extract_stage():
    broken = extract_program("no code here")
    result = preflight(broken, TASK)
    assert not result.ok and result.stage == "extract" and result.reasons == (broken.error,)
    wrong = preflight("def compute_reward(state):\n    return state.x_velocity, {}\n", TASK)
    assert wrong.stage == "extract" and "exactly the signature" in wrong.reasons[0]
    assert preflight(None, TASK).stage == "extract"


def test_preflight_static_only():
    result = preflight(GOOD, TASK, dry_run=False)
    assert result.ok and result.stage == "static" and result.term_stats == {}


# -- hostile responses: a rejection with its reason, never an exception ---------------------------------
DEEP_PARENS = GOOD.replace("    speed =", "    deep = " + "(" * 1200 + "1" + ")" * 1200 + "\n    speed =")
DEEP_MINUS = GOOD.replace("    speed =", "    deep = " + "-" * 1200 + "1\n    speed =")
DEEP_DEFAULT = GOOD.replace("def compute_reward(state, action):",
                            "def compute_reward(state, action, extra=" + "-" * 1200 + "1):")


@pytest.mark.parametrize("response, kind, error", [
    (fenced(DEEP_PARENS), "syntax", "too many nested parentheses"),
    (fenced("-" * 90_000 + "1\n" + GOOD), "syntax", "nested too deeply"),  # the parser runs out of memory
    (fenced(GOOD.replace("SPEED_TEMP = 2.0", "SPEED_TEMP = 2.0\x00")), "syntax", "null bytes"),
    (fenced(DEEP_DEFAULT), "signature", "cannot be read (the code is nested too deeply"),
    (fenced(GOOD) + "# padding\n" * 20_000, "too_long", "characters long, over the 100,000"),
    ("Here:\n" + GOOD + "x = " + "-" * 90_000 + "1\nDone.", "ok", None),  # unfenced: the parseable part
], ids=["1200 parens", "100k minus", "NUL byte", "deep default", "huge", "unfenced deep tail"])
def test_hostile_responses_are_rejected_not_raised(response, kind, error):
    result = extract_program(response)
    assert result.kind == kind, result
    assert error is None or error in result.error


def test_the_same_deep_program_twice_is_compared_without_recursing():
    result = extract_program(fenced(DEEP_MINUS) + fenced(DEEP_MINUS))
    assert result.ok and result.code == DEEP_MINUS


def test_preflight_turns_a_checker_that_raises_into_a_rejection(monkeypatch):
    import robreward.rewards.program as program

    def broken_checker(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(program, "check_reward_program", broken_checker)
    result = preflight(DEEP_MINUS, TASK)
    assert not result.ok and result.stage == "check" and result.code == DEEP_MINUS
    assert "RecursionError" in result.reasons[0] and "nested too deeply" in result.reasons[0]


def test_preflight_of_a_deeply_nested_program_is_a_rejection():
    """Through the real checks (whichever layer catches it: the checker, or preflight)."""
    result = preflight(DEEP_MINUS, TASK, timeout_s=5)
    assert not result.ok and result.stage in ("static", "dry_run", "check") and result.reasons
