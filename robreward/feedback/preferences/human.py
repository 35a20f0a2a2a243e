"""The human teacher: a person labels each round's queries in the labeling web app.

    teacher = HumanTeacher(run_dir, port=8765)          # serves the app from this process
    labels = teacher.label_round(k, queries, rollout, env)   # renders clips, waits for the labels
    teacher.close()

Per round: both segments of every query are rendered to mp4 clips (``RUN_DIR/clips``) from the
full MuJoCo states the rollout recorded, the queries go into the run's label store
(``RUN_DIR/labels.sqlite``), and the call blocks until every one is answered in the browser
(left, right, equal or skip), showing a progress bar. The app runs in a thread of this process
(``serve=True``) or is started separately with ``robreward label RUN_DIR`` (``serve=False``).

Nothing a person did is lost: each label is committed to SQLite when it is given, and the
round's queries (the segment pairs themselves) are written to ``RUN_DIR/pending_round.npz``
before they are shown. A run killed while waiting resumes the same round with the same pairs:
the labels already given count, only the missing ones are asked for. Once every answer is in, the
round is closed in the store: the app refuses to change a label the loop has used (409).
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from robreward.feedback.preferences.clips import pairs_meta, render_pair_clips
from robreward.feedback.preferences.segments import Rollout, SegmentPairs
from robreward.feedback.preferences.store import STORE_NAME, Label, LabelStore
from robreward.fileio import atomic_write_bytes

PENDING_FILE = "pending_round.npz"


def is_human(spec: str) -> bool:
    """Whether a teacher spec names the human teacher (alone; it does not compose with simulated ones)."""
    names = [part.split(":")[0].split("@")[0].strip().lower() for part in str(spec).split(",")]
    if "human" in names and len(names) > 1:
        raise ValueError(f"teacher {spec!r}: 'human' cannot be combined with simulated teachers; pass "
                         "--teacher human alone")
    return names == ["human"]


def save_pending(run_dir: Path, round_index: int, pairs: SegmentPairs) -> None:
    """The round's query pairs, atomically, before a person sees them."""
    buffer = io.BytesIO()
    np.savez(buffer, round=np.int64(round_index), **pairs.to_arrays())
    atomic_write_bytes(run_dir / PENDING_FILE, buffer.getvalue())


def load_pending(run_dir: Path, round_index: int) -> Optional[SegmentPairs]:
    """The pairs saved for ``round_index`` by an earlier (killed) process, or None."""
    path = run_dir / PENDING_FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        if int(data["round"]) != round_index:
            return None
        return SegmentPairs.from_arrays(data)


class HumanTeacher:
    """Labels from a person in the web app (see the module docstring)."""

    name = "human"

    def __init__(self, run_dir, *, host: str = "127.0.0.1", port: int = 8765, serve: bool = True,
                 timeout: Optional[float] = None, poll: float = 0.5, progress: bool = True,
                 announce: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.timeout, self.poll, self.progress, self.announce = timeout, poll, progress, announce
        self.server = None
        if serve:
            from robreward.feedback.preferences.app import background_server

            self.server = background_server(self.run_dir, host, port)
            self.url = self.server.url  # the page with the run's token (RUN_DIR/web_token)
        else:
            self.url = None
        self.store = LabelStore(self.run_dir / STORE_NAME)

    def pending_pairs(self, round_index: int) -> Optional[SegmentPairs]:
        """The pairs of a round that was shown before a crash (resume asks the same ones), or None."""
        return load_pending(self.run_dir, round_index)

    def label_round(self, round_index: int, pairs: SegmentPairs, rollout: Optional[Rollout], env) -> list[Label]:
        """Labels (P(second preferred), 0.5 equal, None skipped) for every pair, from the person.

        The pairs' clips are rendered from ``rollout`` (recorded with sim states) in ``env`` unless
        this round's queries are already in the store (a resumed round)."""
        # the loop asks rounds in order: every earlier round is in labels.npz already (a run from before
        # rounds were closed, resumed, has them open)
        for earlier in self.store.open_rounds():
            if earlier < round_index:
                self.store.close_round(earlier)
        queries = self.store.queries(round_index)
        if queries and len(queries) != pairs.size:
            raise ValueError(f"the label store {self.store.path} holds {len(queries)} queries for round "
                             f"{round_index}, the run has {pairs.size}: the store belongs to another run; "
                             "use a new --out")
        if queries:
            ids = [q.id for q in queries]
        else:
            if rollout is None:
                raise ValueError(f"round {round_index} has no stored queries and no rollout to render them from")
            save_pending(self.run_dir, round_index, pairs)
            paths = render_pair_clips(env, rollout, pairs, self.store.clips_dir, prefix=f"r{round_index:03d}")
            ids = self.store.add_queries(round_index, pairs_meta(pairs), paths)
        self._wait(round_index, ids)
        # the round is used from here on: closing it returns its final labels and refuses any later change, so
        # the labels the loop trains on (labels.npz) are the store's
        answers = self.store.close_round(round_index)
        return [answers[i] for i in ids]

    def _wait(self, round_index: int, ids: list[int]) -> dict[int, Label]:
        from tqdm import tqdm

        where = self.url or f"the app of `robreward label {self.run_dir}`"
        done = len(self.store.labels(round_index))
        if done < len(ids):
            self.announce(f"round {round_index}: {len(ids) - done} of {len(ids)} queries wait for your labels at "
                          f"{where} (keys: 1 / left arrow, 2 / right arrow, e equal, s skip)")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with tqdm(total=len(ids), initial=done, desc=f"labels, round {round_index}", unit="label",
                  disable=not self.progress) as bar:
            while True:
                answered = self.store.labels(round_index)
                bar.update(len(answered) - bar.n)
                if len(answered) >= len(ids):  # the round's queries are exactly ids
                    return answered
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{len(ids) - len(answered)} of {len(ids)} queries of round {round_index} "
                                       f"still unlabeled after {self.timeout:g} s (label them at {where})")
                time.sleep(self.poll if deadline is None else max(0.0, min(self.poll, deadline - time.monotonic())))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.store.close()


def timeout_seconds(value: float) -> Optional[float]:
    """A label timeout from the config: 0 (or less) waits forever."""
    return None if value is None or value <= 0 or math.isinf(value) else float(value)


__all__ = ["HumanTeacher", "PENDING_FILE", "is_human", "load_pending", "save_pending", "timeout_seconds"]
