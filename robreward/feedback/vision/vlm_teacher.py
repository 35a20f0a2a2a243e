"""RL-VLM-F (Wang et al. 2024): preference labels from a vision-language chat model.

    robreward prefs train --task drawer-open --teacher vlm:gpt-4o --queries 500 --out runs/pref-vlm
    robreward prefs train --task reach --teacher vlm:qwen2.5-vl --base-url http://localhost:8000/v1 ...
    robreward prefs train --task reach --teacher anthropic:claude-sonnet-4-6 --max-cost 5 ...

Each query is two segments of the policy's rollouts. Each segment is shown as one image: its last real
frame (RL-VLM-F's choice: the state the segment reached), or a strip of ``frames=K`` evenly spaced frames
side by side. Two requests per query, as the paper does:

1. *analysis*: both images and the goal; "what is shown in image 1, in image 2, which is closer to the
   goal?";
2. *label*: the same images, the goal and the analysis; "reply 0 if the goal is better achieved in image 1,
   1 if in image 2, -1 if unsure or there is no difference".

0 -> label 0.0 (the first segment preferred), 1 -> 1.0, -1 -> None (unsure: dropped, counted), anything
else -> None (malformed: dropped, counted). Labels are cached on disk (``RUN/vlm_labels/KEY.json``), keyed by
the model, the goal, the prompt version and the sha256 of both images, so a resumed or repeated run asks
nothing twice. Each round's counts and the agreement of the answered labels with B-Pref's oracle (the hand
reward's return, on the same pairs; pairs the oracle calls equal are left out) are in ``round_stats``,
which the preference loop writes to the round's metrics.

The requests go through ``complete(messages) -> text``: the CLI passes robreward.codegen.llm's client
(retries with backoff on 429/5xx, the spend cap --max-cost, API-key redaction), which this package may not
import itself (robreward.feedback and robreward.codegen are independent layers).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from robreward.fileio import atomic_write_json

PROMPT_VERSION = "rl-vlm-f-1"
LABEL_DIR = "vlm_labels"
SYSTEM = "You are an expert judge of robot behaviour. You compare images of a robot doing a task."
ANALYSIS = ("Consider the two images. Image 1: the first image above. Image 2: the second image above.\n"
            "1. What is shown in Image 1?\n2. What is shown in Image 2?\n3. The goal is: {goal}. Is there any "
            "difference between Image 1 and Image 2 in terms of achieving the goal?")
LABEL = ("Based on the text below to the questions:\n1. What is shown in Image 1?\n2. What is shown in Image 2?\n"
         "3. The goal is: {goal}. Is there any difference between Image 1 and Image 2 in terms of achieving the "
         "goal?\n\n{analysis}\n\nIs the goal better achieved in Image 1 or Image 2? Reply a single line of 0 if the "
         "goal is better achieved in Image 1, or 1 if it is better achieved in Image 2. Reply -1 if the text is "
         "unsure or there is no difference.")
_ANSWER = re.compile(r"(?<![\w.\-])(-1|0|1)(?!\w|\.\d)")


def parse_label(text: str) -> Optional[int]:
    """0, 1 or -1 from the label stage's answer; None when it is not exactly one of them (malformed)."""
    found = set(_ANSWER.findall((text or "").strip()))
    return int(found.pop()) if len(found) == 1 else None


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_part(png: bytes) -> dict:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}


def query_messages(goal: str, first: bytes, second: bytes, analysis: Optional[str] = None) -> list[dict]:
    """The analysis request (``analysis`` None) or the label request, with both PNG images."""
    text = ANALYSIS.format(goal=goal) if analysis is None else LABEL.format(goal=goal, analysis=analysis.strip())
    content = [{"type": "text", "text": "Image 1:"}, _image_part(first), {"type": "text", "text": "Image 2:"},
               _image_part(second), {"type": "text", "text": text}]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def strip_of(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` evenly spaced frames [T, H, W, 3] (last included) side by side: [H, count*W, 3]; one: the last."""
    if count <= 1:
        return frames[-1]
    picks = np.round(np.linspace(0, len(frames) - 1, min(count, len(frames)))).astype(int)
    return np.concatenate(list(frames[picks]), axis=1)


class VLMTeacher:
    """Labels from a vision chat model (module docstring). ``complete(messages) -> str`` sends one request.

    goal: the goal text shown to the model (default: the task's description). frames: frames per segment
    image (1: the last frame). size: render size in pixels. spent: () -> USD spent so far (for the stats)."""

    def __init__(self, complete: Callable[[list[dict]], str], model: str, goal: Optional[str] = None,
                 frames: int = 1, size: int = 224, spent: Optional[Callable[[], float]] = None,
                 spec: str = "", camera=None):
        if goal is not None and not goal.strip():
            raise ValueError("the VLM teacher's goal text is empty: give goal=TEXT (what the robot should achieve), "
                             "or leave it out to use the task's description")
        if frames < 1 or size < 16:
            raise ValueError(f"frames must be >= 1 and size >= 16 pixels, got frames={frames}, size={size}")
        self.complete, self.model, self.goal = complete, model, goal
        self.frames, self.size, self.spent, self.camera = int(frames), int(size), spent, camera
        self.spec = spec or f"vlm:{model}"
        self.cache_dir: Optional[Path] = None
        self.on_start: Optional[Callable] = None  # (run_dir) -> None: e.g. the spend ledger of the run
        self.round_stats: dict = {}

    @property
    def name(self) -> str:
        return self.spec

    def start(self, run_dir) -> None:
        """Cache labels under ``run_dir/vlm_labels`` (the preference loop calls it before the first round)."""
        self.cache_dir = Path(run_dir) / LABEL_DIR
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self.on_start is not None:
            self.on_start(run_dir)

    def label(self, pairs, rng=None, *, reference_return=None):
        raise ValueError(f"teacher {self.spec!r} labels rendered frames: it needs the rollout's MuJoCo states "
                         "(the preference loop calls label_round); it cannot label from rewards alone")

    # -- one query -----------------------------------------------------------------------------------
    def _key(self, first: bytes, second: bytes, goal: str) -> str:
        record = {"model": self.model, "goal": goal, "prompt": PROMPT_VERSION,
                  "images": [hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()]}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()

    def ask(self, first: np.ndarray, second: np.ndarray, goal: str) -> tuple[Optional[float], str, bool]:
        """(label, outcome, cached) for one pair of images: label 0.0/1.0 or None; outcome "answered", "unsure"
        or "malformed"."""
        png0, png1 = png_bytes(first), png_bytes(second)
        key = self._key(png0, png1, goal)
        path = self.cache_dir / f"{key}.json" if self.cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                return record["label"], record["outcome"], True
            except (ValueError, KeyError):  # a damaged cache entry is asked again
                pass
        analysis = self.complete(query_messages(goal, png0, png1))
        answer = self.complete(query_messages(goal, png0, png1, analysis=analysis or ""))
        value = parse_label(answer)
        label, outcome = {0: (0.0, "answered"), 1: (1.0, "answered"), -1: (None, "unsure")}.get(
            value, (None, "malformed"))  # type: ignore[arg-type]
        if path is not None:
            atomic_write_json(path, {"label": label, "outcome": outcome, "model": self.model, "goal": goal,
                                     "prompt": PROMPT_VERSION, "analysis": analysis, "answer": answer})
        return label, outcome, False

    def label_images(self, firsts: Sequence[np.ndarray], seconds: Sequence[np.ndarray], goal: str,
                     oracle: Optional[Sequence[Optional[float]]] = None) -> list[Optional[float]]:
        """Labels of image pairs; sets ``round_stats`` (counts, agreement with ``oracle`` labels if given)."""
        spent_before = self.spent() if self.spent else 0.0
        labels, counts, cached = [], {"answered": 0, "unsure": 0, "malformed": 0}, 0
        for first, second in zip(firsts, seconds):
            label, outcome, hit = self.ask(first, second, goal)
            labels.append(label)
            counts[outcome] += 1
            cached += hit
        agree = [float(y == o) for y, o in zip(labels, oracle or []) if y is not None and o in (0.0, 1.0)]
        self.round_stats = {"vlm_model": self.model, "vlm_answered": counts["answered"], "vlm_unsure": counts["unsure"],
                            "vlm_malformed": counts["malformed"], "vlm_cached": cached,
                            "vlm_oracle_agreement": float(np.mean(agree)) if agree else None,
                            "vlm_oracle_compared": len(agree),
                            "vlm_cost_usd": (self.spent() - spent_before) if self.spent else None}
        return labels

    # -- a round of the preference loop ------------------------------------------------------------------
    def segment_image(self, env, rollout, segments, index: int) -> np.ndarray:
        """The image of segment ``index``: its world set to its recorded states and rendered (last frame, or a
        strip of ``frames``)."""
        from robreward.feedback.preferences.clips import segment_sim_states
        from robreward.feedback.vision.frames import render_batch

        states = segment_sim_states(rollout, segments, index).cpu().numpy()
        world = int(segments.world[index])
        picks = [len(states) - 1] if self.frames <= 1 else \
            np.round(np.linspace(0, len(states) - 1, min(self.frames, len(states)))).astype(int).tolist()
        frames = []
        for t in picks:
            env.set_state(states[t][None], [world])
            frames.append(render_batch(env, [world], (self.size, self.size), self.camera)[0].cpu().numpy())
        return strip_of(np.stack(frames), len(frames))

    def label_round(self, round_index: int, pairs, rollout, env) -> list[Optional[float]]:
        """Labels (1.0: second preferred, 0.0: first, None: unsure or malformed) for every pair of the round,
        rendered from ``rollout`` (recorded with sim states) in ``env``."""
        from robreward.feedback.preferences.teachers import make_teacher

        goal = self.goal or env.spec.description
        firsts = [self.segment_image(env, rollout, pairs.first, i) for i in range(pairs.size)]
        seconds = [self.segment_image(env, rollout, pairs.second, i) for i in range(pairs.size)]
        oracle = make_teacher("oracle").label(pairs)
        labels = self.label_images(firsts, seconds, goal, oracle)
        self.round_stats["round"] = round_index
        return labels


def parse_teacher_spec(spec: str) -> tuple[str, str, dict]:
    """'vlm:MODEL,base_url=URL,max_cost=5,frames=3,size=224,goal=TEXT' -> (provider, MODEL, options);
    provider "openai" for vlm:, "anthropic" for anthropic:."""
    kind, _, rest = spec.strip().partition(":")
    provider = {"vlm": "openai", "anthropic": "anthropic"}.get(kind.strip().lower())
    if provider is None:
        raise ValueError(f"not a VLM teacher spec: {spec!r} (vlm:MODEL or anthropic:MODEL)")
    model, *items = [p.strip() for p in rest.split(",")]
    if not model:
        raise ValueError(f"teacher {spec!r} names no model: write vlm:MODEL (e.g. vlm:gpt-4o) or anthropic:MODEL")
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("base_url", "max_cost", "frames", "size", "goal", "timeout"):
            raise ValueError(f"teacher {spec!r}: unknown option {item!r}; the options are base_url=URL, max_cost=USD, "
                             "frames=K, size=PX, goal=TEXT, timeout=S")
        try:
            options[key] = (int(value) if key in ("frames", "size") else float(value)
                            if key in ("max_cost", "timeout") else value)
        except ValueError:
            raise ValueError(f"teacher {spec!r}: {key} must be a number, got {value!r}") from None
        if key == "goal" and not value:
            raise ValueError(f"teacher {spec!r}: goal= is empty: give the goal text, or leave it out to use the "
                             "task's description")
    return provider, model, options


__all__ = ["LABEL_DIR", "PROMPT_VERSION", "VLMTeacher", "parse_label", "parse_teacher_spec", "png_bytes",
           "query_messages", "strip_of"]

