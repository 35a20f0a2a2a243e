"""The human teacher's label store: one SQLite file per run (``RUN_DIR/labels.sqlite``).

The training loop writes queries (pairs of rendered clips) and waits; the labeling web app
(``robreward label RUN_DIR``, :mod:`robreward.feedback.preferences.app`) reads the pending
ones and writes each answer the moment it is given:

    store = LabelStore(run_dir / "labels.sqlite")
    ids = store.add_queries(round=0, pairs_meta=meta, clip_paths=[(left_mp4, right_mp4), ...])
    answers = store.wait_for_labels(ids, timeout=3600)       # {query_id: 0.0 | 1.0 | 0.5 | None}

A label is P(right clip preferred), as for the simulated teachers: 0.0 left (sigma0), 1.0 right
(sigma1), 0.5 equal, None skipped (the pair is dropped).

Durability: the file is in WAL mode with ``synchronous=FULL`` and every label is one
transaction, committed before the app answers the browser, so killing the app (or the
loop, or the machine) loses no label that was acknowledged. Two processes (loop and app)
share the file; SQLite's locking serializes their writes (``busy_timeout`` waits out a lock).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

Label = Optional[float]
LABEL_VALUES = (0.0, 1.0, 0.5, None)
STORE_NAME = "labels.sqlite"
CLIPS_DIR = "clips"
SCHEMA_VERSION = 2  # 2: closed_rounds (a round the loop has used takes no new label)
MAX_ID = 2 ** 63 - 1  # SQLite's INTEGER

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    round       INTEGER NOT NULL,
    left_clip   TEXT NOT NULL,
    right_clip  TEXT NOT NULL,
    meta        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'labeled', 'skipped')),
    value       REAL,
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS queries_status ON queries (status, id);
CREATE INDEX IF NOT EXISTS queries_round ON queries (round, id);
CREATE TABLE IF NOT EXISTS closed_rounds (
    round       INTEGER PRIMARY KEY,
    closed_at   REAL NOT NULL
);
"""


class UnknownQueryError(LookupError):
    """A label (or a wait) for a query id that the store does not hold."""


class RoundClosedError(RuntimeError):
    """A label for a query of a round the training loop has already used (``close_round``)."""


@dataclasses.dataclass(frozen=True)
class Query:
    """One stored query: two clips (names inside ``RUN_DIR/clips``) and its answer, if any."""

    id: int
    round: int
    left_clip: str
    """Clip of sigma0 (the first segment), shown on the left."""
    right_clip: str
    """Clip of sigma1 (the second segment), shown on the right."""
    meta: dict
    """Whatever the loop stored with the pair (e.g. world/start of each segment)."""
    status: str
    """'pending', 'labeled' or 'skipped'."""
    value: Label
    """P(right preferred): 0.0, 1.0, 0.5; None while pending or when skipped."""
    created_at: float
    answered_at: Optional[float]

    @property
    def answered(self) -> bool:
        return self.status != "pending"


def check_label(value: Any) -> Label:
    """A label value as stored (float or None); anything else is a ValueError saying what is allowed."""
    if value is None:
        return None
    # (ints are compared as ints: float(10 ** 400) would overflow)
    if isinstance(value, bool) or not (isinstance(value, int) and value in (0, 1) or isinstance(value, float)
                                       and math.isfinite(value) and value in (0.0, 1.0, 0.5)):
        raise ValueError("label must be 0 (left preferred), 1 (right preferred), 0.5 (equal) or None / null "
                         f"(skip), got {value!r}")
    return float(value)


class LabelStore:
    """Queries and their labels in one SQLite file, safe to share between two processes.

    One connection per store object, usable from several threads (a lock serializes them):
    the web app's request handlers run on a thread pool.
    """

    def __init__(self, path: Union[str, Path], *, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"LabelStore needs the path of a SQLite file, {str(self.path)!r} is a directory: "
                             f"pass {str(self.path / STORE_NAME)!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clips_dir = self.path.parent / CLIPS_DIR
        self._lock = threading.RLock()  # reentrant: error messages read inside a write
        # autocommit mode: every write below opens its own transaction explicitly
        self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"could not put {self.path} in WAL mode (got {mode!r}); "
                                   "is it on a network file system? keep the run directory on a local disk")
            self._conn.execute("PRAGMA synchronous = FULL")
            for statement in _SCHEMA.split(";"):  # each is idempotent (IF NOT EXISTS)
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- loop side -------------------------------------------------------------------------
    def add_queries(self, round: int, pairs_meta: Sequence[Mapping], clip_paths: Sequence[tuple]) -> list[int]:
        """Store one round of queries (all in one transaction); returns their ids, in order.

        pairs_meta: one JSON-serializable mapping per query (e.g. :func:`clips.pairs_meta`).
        clip_paths: one (left, right) pair of mp4 files per query, inside ``RUN_DIR/clips``
            (a bare file name or a path there); left shows sigma0, right sigma1.
        """
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise ValueError(f"round must be an integer >= 0, got {round!r}")
        if len(pairs_meta) != len(clip_paths):
            raise ValueError(f"pairs_meta has {len(pairs_meta)} entries and clip_paths {len(clip_paths)}: "
                             "give one of each per query")
        rows = []
        now = time.time()
        for i, (meta, clips) in enumerate(zip(pairs_meta, clip_paths)):
            if not isinstance(meta, Mapping):
                raise ValueError(f"pairs_meta[{i}] must be a mapping (dict), got {type(meta).__name__}")
            try:
                meta_json = json.dumps(dict(meta), sort_keys=True)
            except (TypeError, ValueError) as err:
                raise ValueError(f"pairs_meta[{i}] is not JSON-serializable ({err}): store plain ints, "
                                 "floats, strings, lists and dicts") from None
            if isinstance(clips, (str, Path)) or len(clips) != 2:
                raise ValueError(f"clip_paths[{i}] must be a (left, right) pair of mp4 paths, got {clips!r}")
            left, right = (self._clip_name(c, f"clip_paths[{i}]") for c in clips)
            rows.append((round, left, right, meta_json, now))
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM closed_rounds WHERE round = ?", (round,)).fetchone():
                raise RoundClosedError(f"round {round} is closed (the loop has used its labels): add queries to a "
                                       "new round")
            ids = [conn.execute("INSERT INTO queries (round, left_clip, right_clip, meta, created_at) "
                                "VALUES (?, ?, ?, ?, ?)", row).lastrowid for row in rows]
        return [int(i) for i in ids]

    def wait_for_labels(self, query_ids: Iterable[int], timeout: Optional[float] = None,
                        poll: float = 0.5) -> dict[int, Label]:
        """Block until every query in ``query_ids`` is labeled or skipped; returns {id: label}.

        Raises TimeoutError (saying how many are missing) after ``timeout`` seconds, and
        UnknownQueryError at once for an id the store does not hold.
        """
        ids = [int(q) for q in query_ids]
        if poll <= 0:
            raise ValueError(f"poll must be > 0 seconds, got {poll!r}")
        self._require_known(ids)
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            answers = self._answers(ids)
            if len(answers) == len(set(ids)):
                return {q: answers[q] for q in ids}
            if deadline is not None and time.monotonic() >= deadline:
                missing = len(set(ids)) - len(answers)
                raise TimeoutError(
                    f"{missing} of {len(set(ids))} queries still unlabeled after {timeout:g} s: label them with "
                    f"`robreward label {self.path.parent}` (the store is {self.path})")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    def labels(self, round: int) -> dict[int, Label]:
        """{query_id: label} of the answered (labeled or skipped) queries of one round, by id."""
        rows = self._read("SELECT id, status, value FROM queries WHERE round = ? AND status != 'pending' "
                          "ORDER BY id", (int(round),))
        return {int(r["id"]): (None if r["status"] == "skipped" else float(r["value"])) for r in rows}

    def close_round(self, round: int) -> dict[int, Label]:
        """Close a round whose queries are all answered and return its labels ({query_id: label}, by id).

        One transaction: the labels returned are the round's final ones, since ``label`` refuses
        every later answer for it (RoundClosedError), so what the loop trains on (labels.npz) and
        the store can never disagree. Closing a closed round again returns the same labels.
        """
        if isinstance(round, bool) or not isinstance(round, int) or not 0 <= round <= MAX_ID:
            raise ValueError(f"round must be an integer >= 0, got {round!r}")
        with self._write() as conn:
            pending = conn.execute("SELECT COUNT(*) FROM queries WHERE round = ? AND status = 'pending'",
                                   (round,)).fetchone()[0]
            if pending:
                raise ValueError(f"round {round} still has {pending} unanswered queries: wait for their labels "
                                 "(wait_for_labels) before closing it")
            conn.execute("INSERT OR IGNORE INTO closed_rounds (round, closed_at) VALUES (?, ?)", (round, time.time()))
            rows = conn.execute("SELECT id, status, value FROM queries WHERE round = ? ORDER BY id", (round,)).fetchall()
        return {int(r["id"]): (None if r["status"] == "skipped" else float(r["value"])) for r in rows}

    def closed_rounds(self) -> list[int]:
        """The rounds the loop has used (``close_round``), ascending."""
        return [int(r["round"]) for r in self._read("SELECT round FROM closed_rounds ORDER BY round")]

    def open_rounds(self) -> list[int]:
        """The rounds with queries that are not closed yet, ascending."""
        return [int(r["round"]) for r in self._read(
            "SELECT DISTINCT round FROM queries WHERE round NOT IN (SELECT round FROM closed_rounds) ORDER BY round")]

    def queries(self, round: int) -> list[Query]:
        """Every query of one round (answered or not), by id: the order ``add_queries`` returned."""
        return [self._query(r) for r in self._read("SELECT * FROM queries WHERE round = ? ORDER BY id", (int(round),))]

    # -- app side --------------------------------------------------------------------------
    def pending(self, round: Optional[int] = None) -> list[Query]:
        """Unanswered queries, oldest first (all rounds, or one)."""
        where, args = ("status = 'pending'", ()) if round is None else \
            ("status = 'pending' AND round = ?", (int(round),))
        return [self._query(r) for r in self._read(f"SELECT * FROM queries WHERE {where} ORDER BY id", args)]

    def next_pending(self) -> Optional[Query]:
        """The oldest unanswered query, or None."""
        rows = self._read("SELECT * FROM queries WHERE status = 'pending' ORDER BY id LIMIT 1")
        return self._query(rows[0]) if rows else None

    def label(self, query_id: int, value: Label) -> Query:
        """Record an answer (one committed transaction); answering again replaces the answer
        until the loop has used the round (then RoundClosedError).

        value: 0 (left preferred), 1 (right preferred), 0.5 (equal) or None (skip).
        """
        value = check_label(value)
        status = "skipped" if value is None else "labeled"
        query_id = _query_id(query_id)
        with self._write() as conn:
            row = conn.execute("SELECT round FROM queries WHERE id = ?", (_storable(query_id),)).fetchone()
            if row is None:
                raise UnknownQueryError(self._unknown_message([query_id]))
            if conn.execute("SELECT 1 FROM closed_rounds WHERE round = ?", (row["round"],)).fetchone():
                raise RoundClosedError(f"query {query_id} belongs to round {row['round']}, which the training loop "
                                       "has already used: its labels can no longer change")
            conn.execute("UPDATE queries SET status = ?, value = ?, answered_at = ? WHERE id = ?",
                         (status, value, time.time(), query_id))
            row = conn.execute("SELECT * FROM queries WHERE id = ?", (query_id,)).fetchone()
        return self._query(row)

    def get(self, query_id: int) -> Query:
        rows = self._read("SELECT * FROM queries WHERE id = ?", (_storable(_query_id(query_id)),))
        if not rows:
            raise UnknownQueryError(self._unknown_message([query_id]))
        return self._query(rows[0])

    def progress(self, round: Optional[int] = None) -> tuple[int, int]:
        """(answered, total) queries, over all rounds or one."""
        where, args = ("", ()) if round is None else ("WHERE round = ?", (int(round),))
        row = self._read(f"SELECT COUNT(*) AS total, COALESCE(SUM(status != 'pending'), 0) AS answered "
                         f"FROM queries {where}", args)[0]
        return int(row["answered"]), int(row["total"])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LabelStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    # -- helpers ---------------------------------------------------------------------------
    def _clip_name(self, clip: Union[str, Path], what: str) -> str:
        clip = Path(clip)
        if clip.suffix != ".mp4":
            raise ValueError(f"{what}: clips must be .mp4 files, got {str(clip)!r}")
        if clip.parent != Path("."):
            # a path: it must point into RUN_DIR/clips, the only folder the app serves
            if clip.resolve().parent != self.clips_dir.resolve():
                raise ValueError(f"{what}: {str(clip)!r} is not in {str(self.clips_dir)!r}, the folder the "
                                 "labeling app serves: render clips there")
        if not (self.clips_dir / clip.name).is_file():
            raise ValueError(f"{what}: clip {clip.name!r} does not exist in {str(self.clips_dir)!r}: render it "
                             "before adding the query")
        return clip.name

    def _write(self):
        return _Transaction(self._conn, self._lock)

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _answers(self, ids: list[int]) -> dict[int, Label]:
        answers = {}
        for chunk in _chunks(sorted(set(ids)), 500):
            marks = ",".join("?" * len(chunk))
            for r in self._read(f"SELECT id, status, value FROM queries WHERE id IN ({marks}) "
                                "AND status != 'pending'", tuple(chunk)):
                answers[int(r["id"])] = None if r["status"] == "skipped" else float(r["value"])
        return answers

    def _require_known(self, ids: list[int]) -> None:
        known = set()
        for chunk in _chunks(sorted({_storable(i) for i in ids}), 500):
            marks = ",".join("?" * len(chunk))
            known |= {int(r["id"]) for r in self._read(f"SELECT id FROM queries WHERE id IN ({marks})", tuple(chunk))}
        unknown = sorted(set(ids) - known)
        if unknown:
            raise UnknownQueryError(self._unknown_message(unknown))

    def _unknown_message(self, ids: Sequence) -> str:
        shown = ", ".join(str(i)[:40] for i in list(ids)[:8]) + (", ..." if len(ids) > 8 else "")
        total = self._read("SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM queries")[0]
        held = f"ids {total['lo']}..{total['hi']}" if total["n"] else "no queries yet"
        return f"unknown query id {shown}: the store {self.path} holds {held}"

    @staticmethod
    def _query(row: sqlite3.Row) -> Query:
        value = None if row["value"] is None else float(row["value"])
        return Query(id=int(row["id"]), round=int(row["round"]), left_clip=row["left_clip"],
                     right_clip=row["right_clip"], meta=json.loads(row["meta"]), status=row["status"],
                     value=value, created_at=float(row["created_at"]),
                     answered_at=None if row["answered_at"] is None else float(row["answered_at"]))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error) under the store's thread lock."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn, self.lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


def _query_id(query_id: Any) -> int:
    if isinstance(query_id, bool) or not isinstance(query_id, int):
        raise ValueError(f"query id must be an integer, got {str(query_id)[:80]!r}")
    return int(query_id)


def _storable(query_id: int) -> int:
    """The id as SQLite can take it: an id out of its range matches no row (-1) instead of overflowing."""
    return query_id if 0 <= query_id <= MAX_ID else -1


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


__all__ = ["CLIPS_DIR", "LABEL_VALUES", "STORE_NAME", "Label", "LabelStore", "Query", "RoundClosedError",
           "UnknownQueryError", "check_label"]
