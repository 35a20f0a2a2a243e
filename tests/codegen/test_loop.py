"""The Eureka loop end to end on `reach` with tiny budgets, against the local fake
OpenAI-compatible server of conftest.py serving hand-written responses (good, broken, hostile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import robreward.rl.runner as runner
from robreward.codegen.extract import extract_program
from robreward.codegen.llm import BudgetExceeded
from robreward.codegen.loop import GenerateConfig, check_fitness_expression, generate, load_config, train_candidates
from robreward.envs.registry import get_task


ROOT = Path(__file__).resolve().parents[2]


def program(body: str, imports: str = "import torch") -> str:
    """A response as an LLM writes it: a sentence and one fenced program."""
    return f"Here is the reward.\n\n```python\n{imports}\n\n\ndef compute_reward(state, action):\n{body}\n```\n"


EXP = program("""    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    dist_temp = 0.1
    reach = torch.exp(-dist / dist_temp)
    bonus = 0.5 * (dist < 0.05).float()
    return reach + bonus, {"reach": reach, "bonus": bonus}""")
TANH = program("""    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    reach = 1.0 - torch.tanh(dist / 0.2)
    effort = -0.01 * (action[:, :3] ** 2).sum(-1)
    return reach + effort, {"reach": reach, "effort": effort}""")
NEGDIST = program("""    progress = -torch.linalg.norm(state.ee_to_goal, dim=-1)
    return progress, {"progress": progress}""")
TRUNCATED = "Sure:\n\n```python\nimport torch\n\ndef compute_reward(state, action):\n    dist = torch.linalg.norm("
SENTINEL = "/tmp/robreward-test-loop-pwned"
IMPORT_OS = program(f"""    os.system("touch {SENTINEL}")
    total = state.ee_pos[:, 0] * 0.0
    return total, {{"zero": total}}""", imports="import os\nimport torch")
ENDLESS = program("""    total = torch.linalg.norm(state.ee_to_goal, dim=-1)
    for i in range(10 ** 12):
        total = total * 1.0
    return total, {"dist": total}""")
DUNDER = program("""    os = __import__("os")
    total = state.ee_pos[:, 0] * 0.0
    return total, {"zero": total}""")
REPAIR_ASK = "Checking the reward function code above"


class FakeTokens:
    """The fake server's usage per request and per choice (conftest.FakeLLMServer)."""

    PROMPT, COMPLETION = 11, 7


class Script:
    """The fake server's text_fn: the i-th sampling request gets ``samples[i]`` (one text per
    choice), a repair request gets ``repair(its error text)``."""

    def __init__(self, samples: list[list[str]], repair=lambda error: EXP):
        self.samples, self.repair, self.sampling_of = samples, repair, {}

    def __call__(self, request: int, choice: int, body: dict) -> str:
        last = body["messages"][-1]["content"]
        if last.startswith(REPAIR_ASK):
            return self.repair(last)
        number = self.sampling_of.setdefault(request, len(self.sampling_of))
        return self.samples[min(number, len(self.samples) - 1)][choice]


def config(server, out, **overrides) -> GenerateConfig:
    options = dict(task="reach", llm="fake-model", base_url=server.base_url, out=str(out), samples=2, iterations=1,
                   steps=4096, num_envs=16, eval_episodes=16, final_seeds=0, dry_run_timeout_s=3.0, llm_timeout_s=10.0,
                   candidate_seeds=1, final_match="search")  # one-seed search (multi-seed: test_selection.py)
    return GenerateConfig(**{**options, **overrides})


@pytest.fixture
def trainings(monkeypatch):
    """Every PPO training the loop starts: (run dir, resume_from). One runner.train call per
    candidate with the sequential path (config(..., batched=False); the batched one is tested in
    tests/rl/test_multi.py)."""
    calls, real_train = [], runner.train

    def spy(config, resume_from=None, **kwargs):
        calls.append((config.out, resume_from))
        return real_train(config, resume_from=resume_from, **kwargs)

    monkeypatch.setattr(runner, "train", spy)
    return calls


def cand_codes(out: Path) -> dict[str, str]:
    return {str(p.parent.relative_to(out)): p.read_text() for p in sorted(out.glob("iter_*/cand_*/reward.py"))}


# -- the full loop (run once for the tests below) ------------------------------------------------------
_FULL_RUN: dict = {}


@pytest.fixture
def full_run(openai_server, tmp_path_factory):
    """K=2, 2 iterations, 8192 steps x 16 worlds, 1 final seed. Iteration 1: a good program and a
    truncated one (repaired into TANH); iteration 2: two revisions. Run by the first test that
    asks; returns (result, config, the server's requests during the run, run dir)."""
    if not _FULL_RUN:
        openai_server.text_fn = Script([[EXP, TRUNCATED], [NEGDIST, TANH]], repair=lambda error: TANH)
        out = tmp_path_factory.mktemp("gen") / "reach"
        cfg = config(openai_server, out, iterations=2, steps=8192, final_seeds=1, final_steps=4096)
        result = generate(cfg)
        _FULL_RUN["run"] = (result, cfg, list(openai_server.requests), out)
    return _FULL_RUN["run"]


def test_full_loop_end_to_end(full_run):
    result, cfg, requests, out = full_run
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "done" and [it["done"] for it in state["iterations"]] == [True, True]
    trained = [c for it in state["iterations"] for c in it["candidates"] if c["status"] == "trained"]
    assert len(trained) == 4
    # the best candidate is the one with the highest eval.json fitness_mean
    fitness = {c["id"]: json.loads((out / c["id"] / "run" / "eval.json").read_text())["fitness_mean"] for c in trained}
    best = state["best"]
    assert best["fitness"] == max(fitness.values()) == fitness[best["id"]]
    assert result["best"]["id"] == best["id"]
    assert (out / "best" / "reward.py").read_text() == (out / best["id"] / "reward.py").read_text()
    assert (out / "best" / "policy.onnx").is_file() and (out / "final" / "seed_1" / "eval.json").is_file()
    report = (out / "report.md").read_text()
    assert f"## Best reward: {best['id']}" in report and "## Final comparison" in report
    assert "shipped hand baseline" in report and (out / "curves.png").is_file()
    # iteration 2 was prompted with the best program of iteration 1 and its reflection
    prompt = json.loads((out / "iter_01" / "prompt.json").read_text())[-1]["content"]
    first_best = state["iterations"][0]["best"]
    assert (out / first_best / "reward.py").read_text().strip() in prompt
    assert "Training statistics over" in prompt and "task_score (fitness)" in prompt
    # tokens and cost: 2 sampling requests + 1 repair, counted as the server saw them
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["requests"] == len(requests) == 3
    assert ledger["prompt_tokens"] == 3 * FakeTokens.PROMPT
    assert ledger["completion_tokens"] == (2 + 1 + 2) * FakeTokens.COMPLETION
    assert len(list((out / "transcript").glob("call-*.json"))) == 3
    assert json.loads((out / "config.json").read_text())["samples"] == 2
    assert "api_key" not in (out / "config.json").read_text() and "sk-" not in (out / "config.json").read_text()


def test_broken_response_is_repaired(full_run):
    _, _, requests, out = full_run
    check = json.loads((out / "iter_00" / "cand_01" / "check.json").read_text())
    first, second = check["attempts"]
    assert not first["ok"] and first["stage"] == "extract" and "truncated" in first["reasons"][0]
    assert second["ok"] and check["status"] == "passed"
    assert (out / "iter_00" / "cand_01" / "reward.py").read_text() == extract_program(TANH).code
    repair = next(r["body"]["messages"] for r in requests if r["body"]["messages"][-1]["content"]
                  .startswith(REPAIR_ASK))
    assert "truncated" in repair[-1]["content"] and repair[-2]["role"] == "assistant"


def test_replay_of_the_transcript_reproduces_the_candidates(full_run, tmp_path):
    _, cfg, _, out = full_run
    replay = GenerateConfig(**{**cfg.to_dict(), "llm": f"replay:{out / 'transcript'}", "base_url": None,
                               "out": str(tmp_path / "replay"), "final_seeds": 0})
    result = generate(replay)
    assert cand_codes(tmp_path / "replay") == cand_codes(out)
    assert result["state"]["replay_fallbacks"] == 0  # every request matched the recorded one exactly
    assert result["best"]["id"] == json.loads((out / "state.json").read_text())["best"]["id"]
    assert json.loads((tmp_path / "replay" / "ledger.json").read_text())["requests"] == 0


def test_feedback_round_starts_from_the_best_of_an_earlier_run(full_run, openai_server, tmp_path):
    _, _, _, earlier = full_run
    openai_server.text_fn = Script([[EXP, NEGDIST], [TANH, EXP]])
    out = tmp_path / "gen"
    generate(config(openai_server, out, iterations=2, steps=2048, from_run=str(earlier),
                    feedback="the arm overshoots the goal", preferences="fitness"))
    first = json.loads((out / "iter_00" / "prompt.json").read_text())[-1]["content"]
    assert (earlier / "best" / "reward.py").read_text().strip() in first
    assert "Training statistics over" in first and "the arm overshoots the goal" in first
    second = json.loads((out / "iter_01" / "prompt.json").read_text())[-1]["content"]
    assert "the arm overshoots the goal" in second
    assert "was preferred over candidate" in second  # ICPL: the task metric picked best and worst
    with pytest.raises(ValueError, match="was a run on task 'reach', not 'push'"):
        generate(config(openai_server, tmp_path / "other", task="push", from_run=str(earlier), feedback="x"))


# -- hostile programs -------------------------------------------------------------------------------------------------
def test_hostile_programs_are_rejected_with_their_reason_and_the_iteration_redone(openai_server, tmp_path, trainings):
    Path(SENTINEL).unlink(missing_ok=True)
    openai_server.text_fn = Script([[IMPORT_OS, ENDLESS], [EXP, NEGDIST]], repair=lambda error: DUNDER)
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, repair_rounds=1, max_redo=1, dry_run_timeout_s=2.0, batched=False))
    os_check = json.loads((out / "iter_00" / "cand_00" / "check.json").read_text())
    loop_check = json.loads((out / "iter_00" / "cand_01" / "check.json").read_text())
    assert os_check["status"] == loop_check["status"] == "rejected"
    assert "import of 'os' is not allowed" in os_check["attempts"][0]["reasons"][0]
    assert loop_check["attempts"][0]["stage"] == "dry_run" and "timed out" in loop_check["attempts"][0]["reasons"][0]
    assert any("__import__" in r for r in loop_check["reasons"])  # the repair was hostile too
    assert not Path(SENTINEL).exists()  # nothing the programs asked for ever ran
    # every candidate of attempt 1 failed: the iteration was sampled again, not wasted
    iteration = result["state"]["iterations"][0]
    assert iteration["attempt"] == 1
    assert [c["status"] for c in iteration["candidates"]] == ["rejected", "rejected", "trained", "trained"]
    assert sorted(Path(o).name for o, _ in trainings) == ["run", "run"] and len(trainings) == 2
    assert not (out / "iter_00" / "cand_00" / "run").exists()
    assert "rejected" in (out / "report.md").read_text()


# -- one candidate never takes down the others or the run ------------------------------------------------------------
ZERO = """    total = state.ee_pos[:, 0] * 0.0
    return total, {"zero": total}"""
DEEP_MINUS = program("    deep = " + "-" * 1200 + "1\n" + ZERO)  # RecursionError in an AST walk
DEEP_PARENS = program("    deep = " + "(" * 1200 + "1" + ")" * 1200 + "\n" + ZERO)  # the parser refuses it
HUGE = program(ZERO + "\n" + "    # padding\n" * 20_000)
BOOM = program("    boom = 1  # the checker raises on this one\n" + ZERO)


def test_a_program_that_breaks_the_checks_is_rejected_and_the_run_goes_on(openai_server, tmp_path, trainings,
                                                                          monkeypatch):
    """Deep nesting, a huge response, and checks that raise (the loop's own guard, whatever the
    layers below it do): each is its candidate's rejection with the reason; the good one trains."""
    import robreward.codegen.loop_check as checks  # the checks stage of generate's loop

    real_preflight, real_extract = checks.preflight, checks.extract_program

    def preflight(code, *args, **kwargs):
        if "boom = 1" in (getattr(code, "code", None) or ""):
            raise ZeroDivisionError("a bug in a check")
        return real_preflight(code, *args, **kwargs)

    def extract_program(text):
        if "\u2603" in text:
            raise MemoryError
        return real_extract(text)

    monkeypatch.setattr(checks, "preflight", preflight)
    monkeypatch.setattr(checks, "extract_program", extract_program)
    openai_server.text_fn = Script([[DEEP_MINUS, EXP, DEEP_PARENS, HUGE, BOOM, "\u2603" + EXP]])
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, samples=6, repair_rounds=0, max_redo=0, batched=False))
    cands = result["state"]["iterations"][0]["candidates"]
    assert [c["status"] for c in cands] == ["rejected", "trained", "rejected", "rejected", "rejected", "rejected"]
    assert len(trainings) == 1 and result["best"]["id"] == "iter_00/cand_01"
    checks = [json.loads((out / c["id"] / "check.json").read_text()) for c in cands]
    assert all(check["done"] and bool(check["reasons"]) == (check["status"] == "rejected") for check in checks)
    assert "nested" in checks[2]["reasons"][0] and "too_long" not in checks[3]["reasons"][0]
    assert "over the 100,000 accepted" in checks[3]["reasons"][0]
    assert checks[4]["stage"] == "check" and "ZeroDivisionError: a bug in a check" in checks[4]["reasons"][0]
    assert checks[5]["stage"] == "check" and "extracting the program failed" in checks[5]["reasons"][0]
    assert "MemoryError" in cands[5]["reason"] and "rejected" in (out / "report.md").read_text()


def test_a_huge_response_is_not_sent_back_in_its_repair_request(openai_server, tmp_path, trainings):
    openai_server.text_fn = Script([[HUGE]], repair=lambda error: EXP)
    result = generate(config(openai_server, tmp_path / "gen", samples=1, repair_rounds=1, batched=False))
    assert [c["status"] for c in result["state"]["iterations"][0]["candidates"]] == ["trained"]
    repair = openai_server.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": f"(a response of {len(HUGE):,} characters, too long to "
                                                          "repeat here)"}
    assert "over the 100,000 accepted" in repair[-1]["content"]


def test_resume_checks_a_pending_hostile_candidate_instead_of_crashing(openai_server, tmp_path, trainings,
                                                                         monkeypatch):
    """The run went down while checking a 1200-deep program (samples_a0.json holds it): --resume
    checks it again from the file, rejects it, and trains the other."""
    import robreward.codegen.loop_check as checks  # the checks stage of generate's loop

    real_preflight = checks.preflight

    def machine_goes_down(*args, **kwargs):
        raise KeyboardInterrupt

    openai_server.text_fn = Script([[DEEP_MINUS, EXP]])
    out = tmp_path / "gen"
    monkeypatch.setattr(checks, "preflight", machine_goes_down)
    with pytest.raises(KeyboardInterrupt):
        generate(config(openai_server, out, repair_rounds=0, batched=False))
    state = json.loads((out / "state.json").read_text())
    assert [c["status"] for c in state["iterations"][0]["candidates"]] == ["pending"]
    assert DEEP_MINUS in json.loads((out / "iter_00" / "samples_a0.json").read_text())["texts"]

    monkeypatch.setattr(checks, "preflight", real_preflight)
    result = generate(load_config(out), resume=True)
    assert [c["status"] for c in result["state"]["iterations"][0]["candidates"]] == ["rejected", "trained"]
    assert result["state"]["status"] == "done" and openai_server.count == 1 and len(trainings) == 1


# -- resume and the spend cap -----------------------------------------------------------------------------------------
def test_budget_cap_stops_cleanly_and_resume_redoes_nothing(openai_server, tmp_path, trainings):
    openai_server.text_fn = Script([[EXP, TANH], [NEGDIST, EXP]])
    out = tmp_path / "gen"
    per_request = openai_server.PROMPT_TOKENS + 2 * openai_server.COMPLETION_TOKENS
    with pytest.raises(BudgetExceeded, match=r"token cap reached.*--resume .*--max-cost USD.*--max-tokens"):
        generate(config(openai_server, out, iterations=2, max_tokens=per_request, batched=False))
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "stopped" and "spend cap" in state["stop_reason"]
    assert state["iterations"][0]["done"] and openai_server.count == 1 and len(trainings) == 2
    assert "Status: stopped" in (out / "report.md").read_text()

    resumed = load_config(out, max_tokens=10 * per_request)
    assert resumed.max_tokens == 10 * per_request and resumed.samples == 2
    result = generate(resumed, resume=True)
    assert result["state"]["status"] == "done"
    assert openai_server.count == 2  # only iteration 2's request
    assert [Path(o).parent.parent.name for o, _ in trainings[2:]] == ["iter_01", "iter_01"]  # nothing retrained
    assert json.loads((out / "ledger.json").read_text())["requests"] == 2


def test_resume_after_a_crash_redoes_nothing(openai_server, tmp_path, monkeypatch):
    openai_server.text_fn = Script([[EXP, TANH]])
    out = tmp_path / "gen"
    calls, real_train = [], runner.train

    def crash_on_second(config, resume_from=None, **kwargs):
        calls.append(config.out)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the machine went down before candidate 2 trained
        return real_train(config, resume_from=resume_from, **kwargs)

    monkeypatch.setattr(runner, "train", crash_on_second)
    cfg = config(openai_server, out, final_seeds=1, final_steps=2048, batched=False)  # one runner.train call each
    with pytest.raises(KeyboardInterrupt):
        generate(cfg)
    assert json.loads((out / "state.json").read_text())["stop_reason"] == "interrupted"
    requests = openai_server.count
    result = generate(load_config(out), resume=True)
    assert openai_server.count == requests  # no LLM request redone
    assert [str(Path(c).relative_to(out)) for c in calls[2:]] == ["iter_00/cand_01/run", "final/seed_1"]
    assert result["state"]["status"] == "done" and (out / "report.md").is_file()
    with pytest.raises(ValueError, match="already holds a generate run.*--resume"):
        generate(cfg)


def test_train_candidates_resumes_a_killed_run_from_its_checkpoint(tmp_path, trainings):
    reward = tmp_path / "reward.py"
    reward.write_text(extract_program(EXP).code)
    run = tmp_path / "run"
    train_candidates("reach", [reward], 2048, 0, [run], num_envs=16, eval_episodes=8)
    (run / "eval.json").unlink()  # as if killed after its last checkpoint, before the evaluation
    done = []
    assert train_candidates("reach", [reward], 4096, 0, [run], num_envs=16, eval_episodes=8,
                            on_done=lambda i, d: done.append((i, d))) == [str(run)]
    assert trainings[1][1] == run / "checkpoints" / "latest.pt" and done == [(0, str(run))]
    steps = [int(line.split(",")[0]) for line in (run / "progress.csv").read_text().splitlines()[1:]]
    assert steps == list(range(512, 4097, 512))  # the first 2048 steps were kept, not redone
    train_candidates("reach", [reward], 4096, 0, [run])
    assert len(trainings) == 2  # a finished run is not trained again



# -- successive halving ------------------------------------------------------------------------------------------------
AWAY = program("""    away = torch.linalg.norm(state.ee_to_goal, dim=-1)
    return away, {"away": away}""")


def test_successive_halving_continues_the_best_half_from_their_checkpoints(openai_server, tmp_path, monkeypatch):
    """K=4, one rung: all train 2048 steps (batched), the best 2 by fitness go on from their
    checkpoints to 4096 (batched, resumed), the others stop at 2048. A crash at the start of the
    second rung resumes without redoing the first."""
    from robreward.rl import multi

    openai_server.text_fn = Script([[AWAY, EXP, NEGDIST, TANH]])
    out = tmp_path / "gen"
    calls, real_many = [], multi.train_many

    def crash_in_rung_2(task, rewards, steps, *args, **kwargs):
        calls.append((steps, len(rewards), kwargs["resume"]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_many(task, rewards, steps, *args, **kwargs)

    monkeypatch.setattr(multi, "train_many", crash_in_rung_2)
    cfg = config(openai_server, out, samples=4, halving=1)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg)
    result = generate(load_config(out), resume=True)
    assert calls == [(2048, 4, False), (4096, 2, True), (4096, 2, True)]  # rung 1 was not redone

    cands = result["state"]["iterations"][0]["candidates"]
    rung = {c["id"]: json.loads((out / c["id"] / "run" / "rung_0.json").read_text()) for c in cands}
    ranked = sorted(cands, key=lambda c: -rung[c["id"]]["fitness"])  # stable: ties go to the earlier candidate
    survivors, dropped = ranked[:2], ranked[2:]
    assert all(rung[c["id"]]["steps"] == rung[c["id"]]["steps_trained"] == 2048 for c in cands)
    for cand in survivors:
        rows = (out / cand["id"] / "run" / "progress.csv").read_text().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == list(range(512, 4097, 512))  # continued, not restarted
        assert "stopped_at" not in cand and cand["status"] == "trained"
    for cand in dropped:
        rows = (out / cand["id"] / "run" / "progress.csv").read_text().splitlines()[1:]
        assert int(rows[-1].split(",")[0]) == 2048 and cand["stopped_at"] == 2048
        assert cand["fitness"] == rung[cand["id"]]["fitness"]
    assert result["best"]["id"] in [c["id"] for c in survivors]
    assert "stopped at 2,048 steps by successive halving" in (out / "report.md").read_text()


def test_halving_budgets():
    from robreward.codegen.loop import halving_budgets

    assert halving_budgets(200_000, 0, 2) == [200_000]
    assert halving_budgets(200_000, 2, 2) == [50_000, 100_000, 200_000]
    assert halving_budgets(90_000, 1, 3) == [30_000, 90_000]
    with pytest.raises(ValueError, match="--halving must be >= 0"):
        GenerateConfig(task="reach", llm="m", out="x", halving=-1)
    with pytest.raises(ValueError, match="first rung 3 steps, less than one step of 32 worlds"):
        GenerateConfig(task="reach", llm="m", out="x", steps=200, halving=6)

# -- CARD filter, --text tasks -----------------------------------------------------------------------------------------
def test_card_filter_keeps_a_reward_that_ignores_the_task_from_training(openai_server, tmp_path, trainings):
    away = program("""    away = torch.linalg.norm(state.cube_to_goal[:, :2], dim=-1)
    return away, {"away": away}""")
    example = f"```python\n{(ROOT / 'examples' / 'push_reward.py').read_text()}```"
    openai_server.text_fn = Script([[away, example]])
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, task="push", demos=str(ROOT / "demos" / "push-noisy.h5"),
                             repair_rounds=0, steps=2048, batched=False))
    statuses = [c["status"] for c in result["state"]["iterations"][0]["candidates"]]
    assert statuses == ["filtered", "trained"]
    card = json.loads((out / "iter_00" / "cand_00" / "check.json").read_text())["attempts"][0]["card"]
    assert card["passed"] is False and card["fraction"] < 0.5 and "Trajectory preference test failed" in card["feedback"]
    assert len(trainings) == 1 and not (out / "iter_00" / "cand_00" / "run").exists()


def test_card_filter_needs_demos_with_successes_and_failures(openai_server, tmp_path):
    with pytest.raises(ValueError, match="20 of 20 episodes succeed.*successful and failed"):
        generate(config(openai_server, tmp_path / "gen", demos=str(ROOT / "demos" / "reach-noisy.h5")))
    assert openai_server.count == 0


def test_text_task_selects_by_the_given_fitness(openai_server, tmp_path):
    openai_server.text_fn = Script([[EXP]])
    out = tmp_path / "gen"
    fitness = "state.ee_pos[:, 2] > 0.2"
    generate(config(openai_server, out, samples=1, steps=2048, text="raise the grip point above 20 cm",
                    fitness=fitness, final_seeds=1, final_steps=2048))
    ev = json.loads((out / "iter_00" / "cand_00" / "run" / "eval.json").read_text())
    assert ev["task"] == "reach-text"  # trained and evaluated on the scene with the user's fitness
    prompt = json.loads((out / "iter_00" / "prompt.json").read_text())[-1]["content"]
    assert prompt.startswith("Task: raise the grip point above 20 cm") and fitness not in prompt
    report = (out / "report.md").read_text()
    assert "A --text task has no hand or sparse baseline" in report and "shipped hand baseline" not in report


def test_fitness_expression_is_checked_like_a_reward_program():
    spec = get_task("reach")
    assert "def compute_reward" in check_fitness_expression("state.ee_pos[:, 2] > 0.2", spec)
    with pytest.raises(ValueError, match="not a Python expression"):
        check_fitness_expression("import os", spec)
    with pytest.raises(ValueError, match="rejected by the reward-program checks.*nope"):
        check_fitness_expression("state.nope > 0", spec)
    with pytest.raises(ValueError, match="rejected by the reward-program checks.*open"):
        check_fitness_expression("open('/etc/passwd')", spec)


def test_config_errors_say_how_to_fix_them(tmp_path):
    base = dict(task="reach", llm="gpt-4o", out=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="--text task has no fitness.*--fitness EXPR"):
        GenerateConfig(**base, text="wave")
    with pytest.raises(ValueError, match="--feedback needs --from RUN"):
        GenerateConfig(**base, feedback="too fast")
    with pytest.raises(ValueError, match="--samples must be >= 1"):
        GenerateConfig(**base, samples=0)
    with pytest.raises(FileNotFoundError, match="not a generate run directory"):
        load_config(tmp_path)
