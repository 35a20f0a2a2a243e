"""ICPL preferences picked by a vision-language model (codegen/vlm_choice.py), against the local
fake OpenAI-compatible server of conftest.py: frames go out as images, the answer is checked,
a bad answer gets one repair round, and the pick drives the run."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from robreward.codegen.choose import CHOICE_FILE
from robreward.codegen.llm import anthropic_content
from robreward.codegen.loop import generate
from robreward.codegen.vlm_choice import choice_messages, parse_choice, video_frames
from robreward.envs.render import write_video
from tests.codegen.test_loop import EXP, NEGDIST, TANH, Script, config

JUDGED = "by a vision-language model (fake-model) shown frames of each candidate's policy"


class Judge:
    """The fake server's text_fn: sampling and repair requests go to ``script``; a request with
    images gets the next of ``answers`` (and is kept in ``seen``)."""

    def __init__(self, script: Script, answers: list[str]):
        self.script, self.answers, self.seen = script, list(answers), []

    def __call__(self, request: int, choice: int, body: dict) -> str:
        images = [m for m in body["messages"] if isinstance(m["content"], list)]
        if not images:
            return self.script(request, choice, body)
        self.seen.append(body)
        return self.answers.pop(0)


def test_parse_choice_says_what_is_wrong():
    ids = ["cand_00", "cand_01", "best-so-far"]
    assert parse_choice('I think {"best": "cand_01", "worst": "best-so-far"}.', ids) == {
        "best": "cand_01", "worst": "best-so-far"}
    for text, reason in (("cand_01 is best", "no JSON object"), ('{"best": "cand_01"}', "keys"),
                         ('{"best": "cand_07", "worst": "cand_00"}', "unknown candidate id.*cand_07"),
                         ('{"best": "cand_00", "worst": "cand_00"}', "the same candidate"),
                         ("{best: cand_00}", "does not parse")):
        with pytest.raises(ValueError, match=reason):
            parse_choice(text, ids)


def test_frames_of_a_video_go_out_as_jpeg_images(tmp_path):
    frames = np.zeros((30, 120, 160, 3), dtype=np.uint8)
    for t in range(30):
        frames[t, :, : 5 * t + 5] = 255  # a white bar that grows: the frames differ
    write_video(tmp_path / "a.mp4", frames)
    images = video_frames(tmp_path / "a.mp4", count=4, size=64)
    from PIL import Image

    decoded = [np.asarray(Image.open(io.BytesIO(b))) for b in images]
    assert len(decoded) == 4 and decoded[0].shape == (48, 64, 3)  # thumbnail keeps the aspect ratio
    assert [float(d.mean()) for d in decoded] == sorted(float(d.mean()) for d in decoded)  # first to last
    messages = choice_messages("stack the cube", {"cand_00": images, "cand_01": images[:2]})
    parts = messages[1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 6 and base64.b64decode(urls[0].split(",", 1)[1]) == images[0]
    assert parts[0]["text"].startswith("Task: stack the cube") and "cand_00, cand_01" in parts[-1]["text"]
    converted = anthropic_content(parts)
    assert converted[2] == {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                                        "data": urls[0].split(",", 1)[1]}}
    assert anthropic_content("plain text") == "plain text"


@pytest.mark.slow  # a long end-to-end run (generate, 2 iterations, resumed): make test-all
@pytest.mark.timeout(300)
def test_a_vlm_selects_a_text_task_and_its_bad_answer_is_repaired(openai_server, tmp_path):
    judge = Judge(Script([[EXP, NEGDIST], [TANH, EXP]]),
                  ["cand_01 looks best to me",  # no JSON: goes back with the reason
                   '{"best": "cand_01", "worst": "cand_00"}',
                   'Here: {"best": "best-so-far", "worst": "cand_01"}'])
    openai_server.text_fn = judge
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, iterations=2, preferences="vlm", text="hold the gripper still",
                             final_seeds=0))
    assert len(judge.seen) == 3
    first = judge.seen[0]["messages"][1]["content"]
    assert sum(p["type"] == "image_url" for p in first) == 8  # 4 frames x 2 candidates
    assert all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in first if p["type"] == "image_url")
    assert first[0]["text"].startswith("Task: hold the gripper still") and judge.seen[0]["temperature"] == 0.0
    assert "no JSON object" in judge.seen[1]["messages"][-1]["content"]  # the repair round
    assert sum(p["type"] == "image_url" for p in judge.seen[2]["messages"][1]["content"]) == 12  # + best-so-far
    choice = json.loads((out / "iter_00" / CHOICE_FILE).read_text())
    assert (choice["best"], choice["worst"], choice["by"], choice["attempts"]) == ("cand_01", "cand_00", "vlm", 2)
    state = result["state"]
    assert state["best"]["id"] == "iter_00/cand_01" and state["best"]["chosen_by"] == "vlm"
    second_prompt = json.loads((out / "iter_01" / "prompt.json").read_text())[-1]["content"]
    assert JUDGED in second_prompt and "candidate iter_00/cand_01" in second_prompt
    report = (out / "report.md").read_text()
    assert "picked by a vision-language model (fake-model)" in report
    requests = len(openai_server.requests)
    generate(config(openai_server, out, iterations=2, preferences="vlm", text="hold the gripper still",
                    final_seeds=0), resume=True)
    assert len(openai_server.requests) == requests  # resumed: nothing asked again


@pytest.mark.slow  # a long end-to-end run (generate, 2 iterations): make test-all
@pytest.mark.timeout(300)
def test_a_vlm_without_a_usable_answer_leaves_the_iteration_without_a_preference(openai_server, tmp_path):
    judge = Judge(Script([[EXP, NEGDIST], [TANH, EXP]]), ["no idea", "still no idea"])
    openai_server.text_fn = judge
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, iterations=2, preferences="vlm"))
    rec = result["state"]["iterations"][0]
    assert rec["preferences"] == [] and "gave no usable choice for iteration 0" in rec["preference_error"]
    assert result["state"]["status"] == "done" and result["best"] is not None  # selected by fitness as usual
    assert not (out / "iter_00" / CHOICE_FILE).exists()


def test_vlm_options_need_preferences_vlm():
    from robreward.codegen.config import GenerateConfig

    with pytest.raises(ValueError, match="add --preferences vlm"):
        GenerateConfig(task="reach", llm="m", out="x", vlm="gpt-4o")
    assert GenerateConfig(task="reach", llm="m", out="x", text="wave", preferences="vlm").by_preference
