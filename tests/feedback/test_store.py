"""The human teacher's SQLite label store: queries in, labels out, nothing lost, clear errors."""

import sqlite3
import threading
import time

import pytest

from robreward.feedback.preferences.store import LabelStore, RoundClosedError, UnknownQueryError


def make_run(tmp_path, num_clips=6):
    """A run dir with fake clip files (the store checks that clips exist, not that they play)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(num_clips):
        (clips / f"c{i}.mp4").write_bytes(b"not really a video")
    return LabelStore(tmp_path / "labels.sqlite")


def add(store, round, num, first_clip=0):
    meta = [{"first": {"world": i, "start": 0}, "second": {"world": i, "start": 5}} for i in range(num)]
    clips = [(f"c{(first_clip + 2 * i) % 6}.mp4", store.clips_dir / f"c{(first_clip + 2 * i + 1) % 6}.mp4")
             for i in range(num)]
    return store.add_queries(round, meta, clips)


def test_add_queries_returns_ids_in_order_and_pending_lists_them(tmp_path):
    store = make_run(tmp_path)
    ids0 = add(store, 0, 3)
    ids1 = add(store, 1, 2)
    assert ids0 == sorted(ids0) and ids1[0] > ids0[-1]
    pending = store.pending()
    assert [q.id for q in pending] == ids0 + ids1
    assert [q.id for q in store.pending(round=1)] == ids1
    first = pending[0]
    assert (first.round, first.left_clip, first.right_clip, first.status, first.value) == (0, "c0.mp4", "c1.mp4",
                                                                                          "pending", None)
    assert first.meta == {"first": {"world": 0, "start": 0}, "second": {"world": 0, "start": 5}}
    assert store.next_pending().id == ids0[0]
    assert store.progress() == (0, 5) and store.progress(round=1) == (0, 2)


def test_label_values_skip_and_labels_of_a_round(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 4)
    for query_id, value in zip(ids, [0, 1, 0.5, None]):
        store.label(query_id, value)
    assert store.labels(0) == {ids[0]: 0.0, ids[1]: 1.0, ids[2]: 0.5, ids[3]: None}
    assert [store.get(q).status for q in ids] == ["labeled", "labeled", "labeled", "skipped"]
    assert store.pending() == [] and store.next_pending() is None
    assert store.progress() == (4, 4)
    assert store.labels(1) == {}


def test_labels_only_lists_answered_queries_and_relabeling_replaces(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 3)
    store.label(ids[1], 1)
    assert store.labels(0) == {ids[1]: 1.0}
    store.label(ids[1], 0)
    assert store.labels(0) == {ids[1]: 0.0}
    assert store.progress() == (1, 3)


@pytest.mark.parametrize("value", [0.3, 2, -1, "left", True, float("nan"), [1]])
def test_label_rejects_values_other_than_left_right_equal_skip(tmp_path, value):
    store = make_run(tmp_path)
    ids = add(store, 0, 1)
    with pytest.raises(ValueError, match=r"label must be 0 \(left preferred\), 1 \(right preferred\), 0.5"):
        store.label(ids[0], value)
    assert store.get(ids[0]).status == "pending"


def test_label_for_an_unknown_query_says_which_ids_exist(tmp_path):
    store = make_run(tmp_path)
    with pytest.raises(UnknownQueryError, match="unknown query id 7: .* holds no queries yet"):
        store.label(7, 1)
    ids = add(store, 0, 2)
    with pytest.raises(UnknownQueryError, match=rf"unknown query id 99: .* holds ids {ids[0]}..{ids[1]}"):
        store.label(99, 1)
    with pytest.raises(ValueError, match="query id must be an integer"):
        store.label("1", 1)


def test_labels_survive_reopening_and_the_file_is_in_wal_mode(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 3)
    store.label(ids[0], 1)
    store.label(ids[2], None)
    # no close(): a crash does not close anything either
    other = LabelStore(tmp_path / "labels.sqlite")
    assert other.labels(0) == {ids[0]: 1.0, ids[2]: None}
    raw = sqlite3.connect(tmp_path / "labels.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("SELECT COUNT(*) FROM queries WHERE status != 'pending'").fetchone()[0] == 2
    raw.close()
    assert (store._conn.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL


def test_wait_for_labels_returns_once_another_connection_answers(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 3)
    app_side = LabelStore(tmp_path / "labels.sqlite")  # its own connection, as the web app has

    def label_slowly():
        for query_id, value in zip(ids, [1, None, 0.5]):
            time.sleep(0.1)
            app_side.label(query_id, value)

    thread = threading.Thread(target=label_slowly)
    start = time.monotonic()
    thread.start()
    answers = store.wait_for_labels(ids, timeout=20, poll=0.02)
    thread.join()
    assert answers == {ids[0]: 1.0, ids[1]: None, ids[2]: 0.5}
    assert list(answers) == ids
    assert time.monotonic() - start >= 0.3


def test_wait_for_labels_times_out_saying_how_many_are_missing(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 3)
    store.label(ids[0], 0)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"2 of 3 queries still unlabeled after 0.2 s: label them with "
                                           r"`robreward label "):
        store.wait_for_labels(ids, timeout=0.2, poll=0.05)
    assert time.monotonic() - start < 2.0
    assert store.wait_for_labels(ids[:1], timeout=0) == {ids[0]: 0.0}


def test_wait_for_labels_rejects_unknown_ids_at_once(tmp_path):
    store = make_run(tmp_path)
    ids = add(store, 0, 1)
    with pytest.raises(UnknownQueryError, match="unknown query id 41, 42"):
        store.wait_for_labels(ids + [41, 42], timeout=None)


def test_add_queries_checks_its_input(tmp_path):
    store = make_run(tmp_path)
    meta = [{"a": 1}]
    with pytest.raises(ValueError, match="pairs_meta has 1 entries and clip_paths 2"):
        store.add_queries(0, meta, [("c0.mp4", "c1.mp4")] * 2)
    with pytest.raises(ValueError, match="round must be an integer >= 0"):
        store.add_queries(-1, meta, [("c0.mp4", "c1.mp4")])
    with pytest.raises(ValueError, match=r"clip_paths\[0\] must be a \(left, right\) pair"):
        store.add_queries(0, meta, ["c0.mp4"])
    with pytest.raises(ValueError, match="clips must be .mp4 files"):
        store.add_queries(0, meta, [("c0.webm", "c1.mp4")])
    with pytest.raises(ValueError, match="clip 'missing.mp4' does not exist in"):
        store.add_queries(0, meta, [("c0.mp4", "missing.mp4")])
    outside = tmp_path / "elsewhere" / "c0.mp4"
    with pytest.raises(ValueError, match="is not in .*clips.*, the folder the labeling app serves"):
        store.add_queries(0, meta, [(outside, "c1.mp4")])
    with pytest.raises(ValueError, match=r"pairs_meta\[0\] is not JSON-serializable"):
        store.add_queries(0, [{"x": object()}], [("c0.mp4", "c1.mp4")])
    assert store.progress() == (0, 0)  # nothing half-added


def test_store_path_must_be_a_file(tmp_path):
    with pytest.raises(ValueError, match="is a directory: pass .*labels.sqlite"):
        LabelStore(tmp_path)


def test_a_closed_round_keeps_the_labels_the_loop_used(tmp_path):
    store = make_run(tmp_path)
    ids0, ids1 = add(store, 0, 2), add(store, 1, 1)
    store.label(ids0[0], 1)
    with pytest.raises(ValueError, match="round 0 still has 1 unanswered queries: wait for their labels"):
        store.close_round(0)
    store.label(ids0[1], None)
    store.label(ids0[0], 0.5)  # an open round: the answer may change
    assert store.close_round(0) == {ids0[0]: 0.5, ids0[1]: None}
    assert store.closed_rounds() == [0]
    with pytest.raises(RoundClosedError, match=f"query {ids0[0]} belongs to round 0, which the training loop has "
                                               "already used: its labels can no longer change"):
        store.label(ids0[0], 0)
    with pytest.raises(RoundClosedError, match="round 0 is closed"):
        add(store, 0, 1)
    # another connection (the app's) sees the closed round too; round 1 stays open
    other = LabelStore(tmp_path / "labels.sqlite")
    with pytest.raises(RoundClosedError):
        other.label(ids0[1], 1)
    other.label(ids1[0], 0)
    assert store.close_round(0) == {ids0[0]: 0.5, ids0[1]: None}  # idempotent: a resumed loop closes it again
    assert store.labels(0) == {ids0[0]: 0.5, ids0[1]: None}


def test_out_of_range_ids_and_huge_values_are_clear_errors_not_overflows(tmp_path):
    store = make_run(tmp_path)
    add(store, 0, 1)
    for query_id in (-1, 2 ** 63, 10 ** 100):
        with pytest.raises(UnknownQueryError, match="unknown query id"):
            store.label(query_id, 1)
        with pytest.raises(UnknownQueryError, match="unknown query id"):
            store.get(query_id)
    with pytest.raises(UnknownQueryError, match="unknown query id"):
        store.wait_for_labels([2 ** 64], timeout=0)
    for value in (10 ** 400, float("nan"), float("inf"), 2):
        with pytest.raises(ValueError, match=r"label must be 0 \(left preferred\)"):
            store.label(1, value)


def test_a_store_of_schema_1_gets_the_closed_rounds_table(tmp_path):
    (tmp_path / "clips").mkdir()
    with sqlite3.connect(tmp_path / "labels.sqlite") as conn:  # what robreward wrote before closed rounds
        conn.execute("CREATE TABLE queries (id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, "
                     "left_clip TEXT NOT NULL, right_clip TEXT NOT NULL, meta TEXT NOT NULL, created_at REAL NOT NULL, "
                     "status TEXT NOT NULL DEFAULT 'pending', value REAL, answered_at REAL)")
        conn.execute("INSERT INTO queries (round, left_clip, right_clip, meta, created_at, status, value) "
                     "VALUES (0, 'a.mp4', 'b.mp4', '{}', 0, 'labeled', 1.0)")
        conn.execute("PRAGMA user_version = 1")
    store = LabelStore(tmp_path / "labels.sqlite")
    assert store.closed_rounds() == [] and store.open_rounds() == [0]
    assert store.close_round(0) == {1: 1.0} and store.open_rounds() == []
