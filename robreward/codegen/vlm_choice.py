"""ICPL preferences from a vision-language model: frames of each candidate's policy, the model
picks the best and the worst (``robreward generate --preferences vlm``).

The same videos as the person's chooser (codegen/choose.py: one deterministic evaluation
episode per candidate, the same reset seed for all) are cut into a few evenly spaced frames,
sent as images in one chat request with the task text, and the model answers with JSON
``{"best": ID, "worst": ID}``. An answer that is not that (no JSON, an unknown id, best ==
worst) goes back to the model once with the reason; if the second answer fails too, the
iteration gets no VLM preference and ``choose`` raises ``VLMChoiceError`` saying why. The
choice is written to ``iter_XX/choice.json`` (with ``"by": "vlm"``, the model and its answer), so
a resumed run does not ask again.

Images are OpenAI-style ``image_url`` parts (data URLs), which OpenAI, vLLM, Ollama, llama.cpp
and LM Studio accept; the Anthropic client converts them to its base64 image blocks.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from pathlib import Path
from typing import Callable

from robreward.codegen.choose import CHOICE_FILE, VIDEOS_DIR, read_choice, render_candidate_videos
from robreward.fileio import atomic_write_json

FRAMES_PER_VIDEO = 4
FRAME_SIZE = 256
SYSTEM = ("You judge robot behaviour. You see a few frames, in time order, of one episode of each candidate "
          "policy, each trained on a different reward function for the same task. Judge only how well the "
          "behaviour does the task.")


class VLMChoiceError(RuntimeError):
    """The model gave no usable choice (after one repair round)."""


def video_frames(path, count: int = FRAMES_PER_VIDEO, size: int = FRAME_SIZE) -> list[bytes]:
    """``count`` evenly spaced frames of an mp4 (first and last included) as JPEG bytes, at most
    ``size`` pixels on the longer side."""
    import imageio.v2 as imageio
    from PIL import Image

    with imageio.get_reader(str(path)) as reader:  # keep only the picked frames: a 1000-step episode is 230 MB
        total = reader.count_frames()
        picks = sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(count)}) if total else []
        frames = {i: frame for i, frame in enumerate(reader) if i in picks}
    if not frames:
        raise ValueError(f"video {str(path)!r} has no frames")
    images = []
    for index in sorted(frames):
        image = Image.fromarray(frames[index])
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        images.append(buffer.getvalue())
    return images


def choice_messages(task_text: str, frames: dict[str, list[bytes]]) -> list[dict]:
    """The chat request: the task, then per candidate its id and its frames, then the question."""
    content: list[dict] = [{"type": "text", "text": f"Task: {task_text.strip()}\n\nCandidates ({len(frames)}):"}]
    for cand_id, images in frames.items():
        content.append({"type": "text", "text": f"Candidate {cand_id}: {len(images)} frames, in time order."})
        content += [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"
                                                          + base64.b64encode(image).decode()}} for image in images]
    ids = ", ".join(frames)
    content.append({"type": "text", "text": f"Which candidate does the task best, and which worst? Answer with one "
                                            f"JSON object and nothing else: {{\"best\": ID, \"worst\": ID}}, "
                                            f"two different ids from: {ids}."})
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def parse_choice(text: str, ids) -> dict:
    """{"best", "worst"} from the model's answer; ValueError saying what is wrong with it."""
    ids = list(ids)
    found = re.search(r"\{[^{}]*\}", text or "", re.S)
    if found is None:
        raise ValueError("the answer has no JSON object")
    try:
        data = json.loads(found.group(0))
    except json.JSONDecodeError as err:
        raise ValueError(f"the JSON object does not parse ({err.msg})") from None
    if not isinstance(data, dict) or not {"best", "worst"} <= set(data):
        raise ValueError("the JSON object needs the keys \"best\" and \"worst\"")
    best, worst = str(data["best"]).strip(), str(data["worst"]).strip()
    unknown = [x for x in (best, worst) if x not in ids]
    if unknown:
        raise ValueError(f"unknown candidate id(s) {', '.join(map(repr, unknown))}; the ids are {', '.join(ids)}")
    if best == worst:
        raise ValueError("best and worst are the same candidate")
    return {"best": best, "worst": worst}


class VLMChooser:
    """The chooser of ``--preferences vlm``: same ``choose`` as codegen.choose.HumanChooser.

    complete(messages) -> the model's answer text (the run's LLM client, so the request is
    cached, counted against the spend cap and kept in the transcript)."""

    def __init__(self, complete: Callable[[list[dict]], str], task_text: str, model: str,
                 announce: Callable[[str], None] = print):
        self.complete, self.task_text, self.model, self.announce = complete, task_text, model, announce

    def choose(self, iter_dir: Path, iteration: int, task, candidates: list[dict], seed: int = 0) -> dict:
        """The model's {"best", "worst"} among candidates [{"id", "policy", ...}] of one iteration."""
        answer = read_choice(iter_dir)
        if answer is not None:
            return answer
        videos = render_candidate_videos(task, {c["id"]: c["policy"] for c in candidates}, iter_dir / VIDEOS_DIR, seed)
        messages = choice_messages(self.task_text, {cand_id: video_frames(path) for cand_id, path in videos.items()})
        reasons = []
        for attempt in range(2):
            text = self.complete(messages)
            try:
                choice = parse_choice(text, videos)
            except ValueError as err:
                reasons.append(str(err))
                messages = messages + [{"role": "assistant", "content": text or ""},
                                       {"role": "user", "content": f"That answer cannot be used: {err}. Reply with "
                                        "only the JSON object {\"best\": ID, \"worst\": ID}."}]
                continue
            record = {"iteration": iteration, **choice, "by": "vlm", "model": self.model, "response": text,
                      "attempts": attempt + 1, "time": time.time()}
            atomic_write_json(iter_dir / CHOICE_FILE, record)
            self.announce(f"iteration {iteration}: {self.model} picked {choice['best']} as best and "
                          f"{choice['worst']} as worst")
            return record
        raise VLMChoiceError(f"{self.model} gave no usable choice for iteration {iteration}: "
                             + "; then ".join(reasons))

    def close(self) -> None:
        pass
