"""`--teacher human`: the preference loop renders clips, serves the labeling app, waits for a
person's labels over real HTTP, trains on exactly those labels, and loses none of them when the
process is killed while it waits."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robreward.feedback.preferences import EnsembleConfig
from robreward.feedback.preferences.app import background_server
from robreward.feedback.preferences.loop import PrefsConfig, train_preferences
from robreward.feedback.preferences.store import LabelStore, RoundClosedError
from robreward.rl.config import PPOConfig

from tests.web.client import Site

# what the "person" answers, query after query: left, right, equal, skip, ...
ANSWERS = (0, 1, 0.5, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def person(run_dir, port) -> Site:
    """The labeling page as the person who opened the printed address sees it (the run's token: the
    address carries the one the run keeps in RUN_DIR/web_token)."""
    return Site("127.0.0.1", port, "/label", (Path(run_dir) / "web_token").read_text().strip())


def next_query(run_dir, port):
    """The oldest pending query, or None (also while the app does not listen yet)."""
    try:
        status, body = person(run_dir, port).get_json("/api/next")
    except OSError:  # no token yet, or not listening yet
        return None
    assert status == 200, body
    return body["query"]


def post_label(run_dir, port, query_id, value):
    status, body = person(run_dir, port).post_json("/api/label", {"query_id": query_id, "value": value})
    assert status == 200, body
    return body


def wait_for_query(run_dir, port, timeout=240.0, process=None):
    """The next pending query once the loop has stored one (the app answers before that too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the training process exited ({process.returncode}) before asking")
        query = next_query(run_dir, port)
        if query is not None:
            return query
        time.sleep(0.2)
    raise AssertionError("no query appeared in time")


def label_all(run_dir, port, stop, given):
    """A person at the browser: answers every query as it appears, until `stop` is set."""
    while not stop.is_set():
        query = next_query(run_dir, port)
        if query is None:
            time.sleep(0.1)
            continue
        value = ANSWERS[len(given) % len(ANSWERS)]
        post_label(run_dir, port, query["id"], value)
        given.append((query["id"], value))


def tiny(out, port, **overrides):
    base = dict(task="reach", teacher="human", queries=8, per_round=4, segment=10, steps=2048, num_envs=8, seed=5,
                eval_episodes=0, progress=False, heldout_pairs=50, out=str(out), port=port,
                ensemble=EnsembleConfig(hidden=(32,), epochs=5),
                ppo=PPOConfig(num_steps=16, actor_hidden=(32,), critic_hidden=(32,)))
    base.update(overrides)
    return PrefsConfig(**base)


def stored_labels(run_dir):
    with np.load(Path(run_dir) / "labels.npz") as data:
        return [None if np.isnan(y) else float(y) for y in data["labels"]], data["round"].tolist()


@pytest.mark.slow  # a long end-to-end run (prefs train labelled through the app): make test-all
def test_the_loop_trains_on_the_labels_a_person_gives_in_the_app(tmp_path):
    port = free_port()
    out = tmp_path / "run"
    stop, given = threading.Event(), []
    labeler = threading.Thread(target=label_all, args=(out, port, stop, given), daemon=True)
    labeler.start()
    try:
        # with demos as free preferences (issue 23): the person is asked the 8 queries and never a demo pair
        demos = Path(__file__).resolve().parents[2] / "demos" / "reach-expert.h5"
        summary = train_preferences(tiny(out, port, demos=(str(demos),), demo_pairs=6))
    finally:
        stop.set()
        labeler.join(10)
    assert summary["rounds"] == 2 and summary["queries"] == 8
    # the loop got exactly what was clicked, in query order; skips are kept as skips
    labels, rounds = stored_labels(out)
    assert labels == [value for _, value in given] and rounds == [0] * 4 + [1] * 4
    assert summary["labels_answered"] == 6  # 2 of the 8 answers were "skip"
    # every query was shown as two real clips
    store = LabelStore(out / "labels.sqlite")
    queries = store.queries(0) + store.queries(1)
    assert [q.id for q in queries] == [qid for qid, _ in given]
    for query in queries:
        for clip in (query.left_clip, query.right_clip):
            data = (out / "clips" / clip).read_bytes()
            assert len(data) > 1000 and data[4:8] == b"ftyp", clip
    assert store.closed_rounds() == [0, 1]
    store.close()
    # the loop has used both rounds: the app refuses to change their labels, so labels.sqlite and
    # labels.npz keep agreeing
    with background_server(out, "127.0.0.1", 0) as server:
        site = Site.from_url(server.url)
        first_id, first_value = given[0]
        status, body = site.post_json("/api/label", {"query_id": first_id, "value": 1 - first_value})
    assert status == 409 and "the training loop has already used" in body["detail"], body
    assert LabelStore(out / "labels.sqlite").get(first_id).value == first_value
    assert stored_labels(out)[0] == [value for _, value in given]
    metrics = json.loads((out / "metrics.json").read_text())["rounds"]
    assert metrics[-1]["heldout_accuracy"] is None  # no person labels 500 held-out pairs
    assert [r["demo_pairs"] for r in metrics] == [6, 12]  # the free pairs trained beside the person's labels
    assert metrics[-1]["heldout_accuracy_true"] is not None and metrics[-1]["skipped"] == 1
    # the app is gone with the run: its port can be listened on again (SO_REUSEADDR: past connections
    # may sit in TIME_WAIT, but a live listener would still block the bind)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1)


@pytest.mark.slow  # a long end-to-end run (prefs train killed and resumed in subprocesses): make test-all
def test_killed_while_waiting_the_resumed_run_keeps_the_labels_given(tmp_path):
    out = tmp_path / "run"
    port = free_port()
    cmd = [sys.executable, "-m", "robreward.cli.main", "prefs", "train", "--task", "reach", "--teacher", "human",
           "--queries", "4", "--per-round", "4", "--segment", "10", "--steps", "2048", "--envs", "8", "--seed", "2",
           "--eval-episodes", "0", "--no-progress", "--out", str(out), "--port", str(port)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        first = wait_for_query(out, port, process=process)
        post_label(out, port, first["id"], 1)
        second = next_query(out, port)
        post_label(out, port, second["id"], 0)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # killed mid-round: no state.json for round 0 yet
        output = process.communicate(timeout=30)[0]
    token = (out / "web_token").read_text().strip()
    assert f"wait for your labels at http://127.0.0.1:{port}/label/?token={token} " in output, output
    assert json.loads((out / "state.json").read_text())["rounds_done"] == 0

    # resumed (on another port): the same 4 queries, the 2 answered ones are not asked again
    port2 = free_port()
    stop, given = threading.Event(), []
    labeler = threading.Thread(target=label_all, args=(out, port2, stop, given), daemon=True)
    labeler.start()
    resumed = subprocess.run([sys.executable, "-m", "robreward.cli.main", "prefs", "train", "--resume", str(out),
                              "--port", str(port2), "--no-progress"], capture_output=True, text=True, timeout=600)
    stop.set()
    labeler.join(10)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert [qid for qid, _ in given] == [second["id"] + 1, second["id"] + 2]
    labels, _ = stored_labels(out)
    assert labels == [1.0, 0.0] + [ANSWERS[0], ANSWERS[1]]
    assert json.loads((out / "state.json").read_text())["finished"]


def test_human_teacher_errors_say_what_to_do(tmp_path, capsys):
    from robreward.cli.main import main

    with pytest.raises(ValueError, match="cannot be combined with simulated teachers"):
        train_preferences(tiny(tmp_path / "a", 0, teacher="human,mistake:0.1"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    try:
        code = main(["prefs", "train", "--task", "reach", "--teacher", "human", "--queries", "4", "--per-round", "4",
                     "--steps", "2048", "--envs", "8", "--out", str(tmp_path / "b"), "--no-progress",
                     "--port", str(busy)])
    finally:
        taken.close()
    assert code == 2
    assert f"port {busy} is in use: pass --port" in capsys.readouterr().err
    assert not (tmp_path / "b" / "state.json").exists()  # nothing written: the same command works on a free port


def test_a_round_is_closed_once_the_teacher_hands_its_labels_to_the_loop(tmp_path):
    """label_round returns the labels it closed; earlier rounds left open by an older run are closed too."""
    from types import SimpleNamespace

    from robreward.feedback.preferences.human import HumanTeacher

    run = tmp_path / "run"
    (run / "clips").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (run / "clips" / name).write_bytes(b"clip")
    store = LabelStore(run / "labels.sqlite")
    old = store.add_queries(0, [{}], [("a.mp4", "b.mp4")])
    ids = store.add_queries(1, [{}, {}], [("a.mp4", "b.mp4")] * 2)
    for query_id, value in zip(old + ids, (1, 0, None)):
        store.label(query_id, value)
    teacher = HumanTeacher(run, serve=False, progress=False, announce=lambda _: None)
    try:
        labels = teacher.label_round(1, SimpleNamespace(size=2), None, None)  # answered already: nothing rendered
    finally:
        teacher.close()
    assert labels == [0.0, None] and store.closed_rounds() == [0, 1]
    with pytest.raises(RoundClosedError):
        store.label(ids[0], 1)
