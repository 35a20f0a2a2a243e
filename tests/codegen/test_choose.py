"""ICPL preferences from a person (`generate --preferences human`): candidate videos, the chooser
page in a real headless Chromium, the choice in the next prompt, errors over real HTTP, resume."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from robreward.codegen.choose import CHOICE_FILE, PENDING_FILE, ask, check_choice, create_choice_app
from robreward.codegen.loop import GenerateConfig, generate
from robreward.web.server import BackgroundServer

from tests.codegen.test_loop import EXP, NEGDIST, TANH, Script, config
from tests.feedback.test_app_browser import CHROMIUM, require_browser
from tests.web.client import Site

PREFERRED = "by a person who watched a video of each candidate's policy"


def run_in_thread(cfg: GenerateConfig, **kwargs):
    """generate(cfg) in a thread; returns (thread, log lines, outcome {"result" | "error"})."""
    lines, outcome = [], {}

    def target():
        try:
            outcome["result"] = generate(cfg, log=lines.append, **kwargs)
        except BaseException as err:  # noqa: BLE001  (the test reads it)
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, lines, outcome


def chooser_url(lines, thread, timeout=60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        for line in list(lines):
            found = re.match(r"the candidate chooser is at (http://\S+?): ", line)
            if found:
                return found.group(1)
        time.sleep(0.05)
    pytest.fail(f"generate printed no chooser address: {lines}")


@pytest.mark.browser  # drives chromium (make browser installs it): make test-all
@pytest.mark.timeout(300)
def test_a_person_picks_in_chromium_and_the_next_prompt_says_so(openai_server, tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    openai_server.text_fn = Script([[EXP, NEGDIST], [TANH, EXP]])
    out = tmp_path / "gen"
    cfg = config(openai_server, out, iterations=2, preferences="human", port=0)
    thread, lines, outcome = run_in_thread(cfg)
    url = chooser_url(lines, thread)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        page.goto(url)
        # the page waits while the candidates train, then shows one playing video per candidate
        page.wait_for_selector('.cand[data-id="cand_01"] video', timeout=120000)
        # a function, not an expression: Playwright evals a string expression in the page when it polls, which
        # the page's CSP (no unsafe-eval) refuses whenever the videos are not ready at the first check
        page.wait_for_function("() => Array.from(document.querySelectorAll('video')).length === 2 && "
                               "Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2)",
                               timeout=30000)
        expect(page.locator("#submit")).to_be_disabled()
        page.click('button[name="best-cand_01"]')
        page.click('button[name="worst-cand_01"]')
        expect(page.locator("#submit")).to_be_disabled()  # the same candidate cannot be both
        page.click('button[name="worst-cand_00"]')
        page.click("#submit")
        expect(page.locator("#status")).to_contain_text("saved: iteration 0, best cand_01, worst cand_00")
        browser.close()
    thread.join(240)
    assert "result" in outcome, outcome
    choice = json.loads((out / "iter_00" / CHOICE_FILE).read_text())
    assert (choice["best"], choice["worst"]) == ("cand_01", "cand_00")
    assert sorted(p.name for p in (out / "iter_00" / "videos").glob("*.mp4")) == ["cand_00.mp4", "cand_01.mp4"]
    assert not (out / "iter_01" / PENDING_FILE).exists()  # the last iteration informs no prompt: nobody is asked
    sampling = [r["body"]["messages"][-1]["content"] for r in openai_server.requests]
    assert PREFERRED not in sampling[0]
    assert any("candidate iter_00/cand_01" in text and PREFERRED in text and "iter_00/cand_00" in text
               for text in sampling[1:])


def http(site: Site, path: str, body=None) -> tuple[int, object]:
    """(status, parsed JSON or raw bytes) of a GET of the page's ``path``, or of a POST of ``body`` (str: sent
    as is, else as JSON), with the page's token."""
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    answer = site.request("GET" if body is None else "POST", path, data, headers={"Content-Type": "application/json"})
    return answer.status, answer.json() if "json" in answer.headers.get("content-type", "") else answer.body


def test_the_chooser_refuses_bad_choices_over_http(tmp_path):
    iter_dir = tmp_path / "iter_03"
    (iter_dir / "videos").mkdir(parents=True)
    (iter_dir / "videos" / "cand_00.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with BackgroundServer(create_choice_app(tmp_path), port=0) as server:
        site = Site.from_url(server.url)
        assert site.prefix == "/choose"
        assert http(site, "/api/pending") == (200, {"iteration": None, "candidates": []})
        assert http(site, "/api/choice", {"iteration": 3, "best": "a", "worst": "b"})[0] == 409
        ask(iter_dir, 3, [{"id": "cand_00", "fitness": 0.5}, {"id": "cand_01", "fitness": 0.1}])
        status, pending = http(site, "/api/pending")
        assert pending["iteration"] == 3 and [c["video"] for c in pending["candidates"]] == [
            "/choose/videos/cand_00.mp4", "/choose/videos/cand_01.mp4"]
        assert http(site, "/videos/cand_00.mp4") == (200, b"\x00\x00\x00\x18ftypmp42")
        assert http(site, "/videos/..%2Fchoose.json")[0] == 404
        assert http(site, "/videos/cand_01.mp4")[0] == 404  # not rendered
        bad = [("not json", 400, "must be JSON"),
               ({"iteration": 3, "best": "cand_00"}, 400, "the body must be"),
               ({"iteration": 3, "best": "cand_00", "worst": "cand_00"}, 400, "the same candidate"),
               ({"iteration": 3, "best": "cand_07", "worst": "cand_00"}, 400, "not a candidate of iteration 3"),
               ({"iteration": 2, "best": "cand_00", "worst": "cand_01"}, 409, "reload the page")]
        for body, expected, message in bad:
            status, answer = http(site, "/api/choice", body)
            assert status == expected and message in answer["detail"], (status, answer)
        assert not (iter_dir / CHOICE_FILE).exists()
        assert http(site, "/api/choice", {"iteration": 3, "best": "cand_01", "worst": "cand_00"}) == (200, {"ok": True})
        assert http(site, "/api/pending")[1]["iteration"] is None  # answered: nothing waits
    assert json.loads((iter_dir / CHOICE_FILE).read_text())["best"] == "cand_01"
    with pytest.raises(ValueError, match="the body must be"):
        check_choice([], {"iteration": 0, "candidates": []})


@pytest.mark.slow  # a long end-to-end run (generate, stopped and resumed): make test-all
def test_a_run_that_waited_too_long_resumes_at_the_same_question(openai_server, tmp_path):
    openai_server.text_fn = Script([[EXP, NEGDIST], [TANH, EXP]])
    out = tmp_path / "gen"
    cfg = config(openai_server, out, iterations=2, preferences="human", port=0, choice_timeout=1.0)
    with pytest.raises(TimeoutError, match="no choice for iteration 0 after 1 s"):
        generate(cfg)
    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "stopped" and "waiting for a choice" in state["stop_reason"]
    videos = {p.name: p.stat().st_mtime_ns for p in (out / "iter_00" / "videos").glob("*.mp4")}
    assert sorted(videos) == ["cand_00.mp4", "cand_01.mp4"]
    requests_before = len(openai_server.requests)
    # the person answers later (here: straight into the file the page writes), the run resumes
    (out / "iter_00" / CHOICE_FILE).write_text(json.dumps({"iteration": 0, "best": "cand_00", "worst": "cand_01"}))
    result = generate(GenerateConfig(**{**cfg.to_dict(), "choice_timeout": 0.0}), resume=True)
    assert result["state"]["status"] == "done"
    assert {p.name: p.stat().st_mtime_ns for p in (out / "iter_00" / "videos").glob("*.mp4")} == videos  # kept
    later = [r["body"]["messages"][-1]["content"] for r in openai_server.requests[requests_before:]]
    assert any(PREFERRED in text and "candidate iter_00/cand_00" in text for text in later)


@pytest.mark.slow  # a long end-to-end run (generate, 2 iterations and a final seed): make test-all
@pytest.mark.timeout(300)
def test_a_text_task_without_fitness_is_selected_by_the_persons_picks(openai_server, tmp_path):
    """--text without --fitness, --preferences human: each iteration (the last too) the person picks
    among the candidates and the best so far; the pick is the best, no fitness is invented."""
    openai_server.text_fn = Script([[EXP, NEGDIST], [TANH, EXP]])
    out = tmp_path / "gen"
    cfg = config(openai_server, out, iterations=2, preferences="human", port=0, text="hold the gripper still",
                 final_seeds=1, final_steps=2048)
    thread, lines, outcome = run_in_thread(cfg)
    site = Site.from_url(chooser_url(lines, thread))
    picks = {0: ("cand_01", "cand_00"), 1: ("best-so-far", "cand_00")}
    shown = {}
    while thread.is_alive() and len(shown) < 2:
        _, pending = http(site, "/api/pending")
        it = pending["iteration"]
        if it is not None and it not in shown:
            shown[it] = sorted(c["id"] for c in pending["candidates"])
            assert all(c["fitness"] is None for c in pending["candidates"])
            best, worst = picks[it]
            assert http(site, "/api/choice", {"iteration": it, "best": best, "worst": worst}) == (200, {"ok": True})
        time.sleep(0.1)
    thread.join(240)
    assert "result" in outcome, outcome
    assert shown == {0: ["cand_00", "cand_01"], 1: ["best-so-far", "cand_00", "cand_01"]}
    state = outcome["result"]["state"]
    assert state["best"]["id"] == "iter_00/cand_01" and state["best"]["chosen_by"] == "person"
    assert [it["best"] for it in state["iterations"]] == ["iter_00/cand_01", "iter_00/cand_01"]
    assert all(c["fitness"] is None for it in state["iterations"] for c in it["candidates"])
    assert (out / "best" / "reward.py").read_text() == (out / "iter_00" / "cand_01" / "reward.py").read_text()
    second_prompt = json.loads((out / "iter_01" / "prompt.json").read_text())[-1]["content"]
    assert PREFERRED in second_prompt and "candidate iter_00/cand_01" in second_prompt and "fitness" not in \
        second_prompt.split(PREFERRED)[0].rsplit("\n", 1)[-1]
    report = (out / "report.md").read_text()
    assert "by a person's preference" in report and "## Best reward: iter_00/cand_01 (picked by a person)" in report
    assert "| 1 | " in report and not (out / "compare.json").exists()
    assert not (out / "task" / "fitness.py").exists()


def test_a_text_task_needs_a_fitness_or_a_person():
    with pytest.raises(ValueError, match="give --fitness EXPR.*or --preferences human"):
        GenerateConfig(task="reach", llm="m", out="x", text="wave")
    with pytest.raises(ValueError, match="--halving ranks candidates by fitness"):
        GenerateConfig(task="reach", llm="m", out="x", text="wave", preferences="human", halving=1)
    assert GenerateConfig(task="reach", llm="m", out="x", text="wave", preferences="human").by_preference
