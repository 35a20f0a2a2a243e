"""LabeledPairs: every query of a preference run with its label and round, saved to / loaded from the run's
labels.npz (loop.py)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from robreward.feedback.preferences.segments import SegmentPairs, cat_pairs
from robreward.fileio import atomic_write_bytes


class LabeledPairs:
    """Every labeled query so far, with its round; saved to / loaded from labels.npz."""

    def __init__(self):
        self.pairs: list[SegmentPairs] = []
        self.labels: list = []
        self.rounds: list[int] = []

    def add(self, pairs: SegmentPairs, labels, round_index: int) -> None:
        self.pairs.append(pairs)
        self.labels.extend(labels)
        self.rounds.extend([round_index] * pairs.size)

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def answered(self) -> int:
        return sum(y is not None for y in self.labels)

    def all_pairs(self) -> SegmentPairs:
        return cat_pairs(self.pairs)

    def save(self, path: Path) -> None:
        arrays = self.all_pairs().to_arrays()
        arrays["labels"] = np.array([np.nan if y is None else y for y in self.labels], dtype=np.float64)
        arrays["round"] = np.array(self.rounds, dtype=np.int64)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path, rounds_done: int) -> "LabeledPairs":
        """The pairs of rounds < rounds_done (a crash may have saved part of an unfinished round)."""
        out = cls()
        if rounds_done == 0:
            return out
        with np.load(path) as data:
            keep = data["round"] < rounds_done
            pairs = SegmentPairs.from_arrays(data, keep)
            labels = [None if math.isnan(y) else float(y) for y in data["labels"][keep]]
            rounds = data["round"][keep].tolist()
        for r in sorted(set(rounds)):
            rows = torch.as_tensor([i for i, x in enumerate(rounds) if x == r])
            out.add(pairs.index(rows), [labels[i] for i in rows.tolist()], r)
        return out
