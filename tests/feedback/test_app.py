"""The labeling web app over real HTTP: a uvicorn server on a free port (in a thread, or the
`robreward label` command in a subprocess), spoken to with http.client (tests/web/client.py: the
run's token in a header, as the page's cookie carries it)."""

import contextlib
import json
import os
import re
import subprocess
import sys
import threading

import pytest

from robreward.feedback.preferences.app import ServeError, background_server, bind_socket
from robreward.feedback.preferences.store import LabelStore

from tests.web.client import Site

CLIP_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4  # served byte for byte; not decoded here


def make_run(tmp_path, num_queries=3):
    run = tmp_path / "run"
    (run / "clips").mkdir(parents=True)
    pairs = []
    for i in range(num_queries):
        for side in "lr":
            (run / "clips" / f"q{i}_{side}.mp4").write_bytes(CLIP_BYTES + side.encode())
        pairs.append((f"q{i}_l.mp4", f"q{i}_r.mp4"))
    store = LabelStore(run / "labels.sqlite")
    ids = store.add_queries(0, [{"i": i} for i in range(num_queries)], pairs)
    return run, store, ids


@contextlib.contextmanager
def running_app(run_dir):
    """The app on 127.0.0.1:<free port>, served by uvicorn in a thread; yields the page's Site."""
    with background_server(run_dir, "127.0.0.1", 0) as server:
        yield Site.from_url(server.url)


def test_page_is_one_static_html_page_with_videos_buttons_keys_and_counter(tmp_path):
    run, _, _ = make_run(tmp_path)
    with running_app(run) as site:
        assert site.prefix == "/label"
        page = site.get("/", token=None, prefix=False)
        assert page.status == 307 and page.headers["location"] == "/label/"  # the root leads to the page
        response = site.get("/")
    status, headers, page = response.status, response.headers, response.body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert page.count("<video") == 2 and page.count("autoplay loop muted") == 2
    for button in ("left-btn", "right-btn", "equal-btn", "skip-btn", "counter"):
        assert f'id="{button}"' in page
    for key in ("ArrowLeft", "ArrowRight", '"1"', '"2"', "e:", "s:"):
        assert key in page
    assert "labeled" in page and '"api/next"' in page and '"api/label"' in page  # relative to /label/


def test_next_serves_the_oldest_pending_pair_and_the_progress(tmp_path):
    run, store, ids = make_run(tmp_path)
    with running_app(run) as site:
        status, body = site.get_json("/api/next")
        assert status == 200
        assert body == {"query": {"id": ids[0], "round": 0, "left": "/label/clips/q0_l.mp4",
                                  "right": "/label/clips/q0_r.mp4"}, "labeled": 0, "total": 3}
        store.label(ids[0], 0.5)  # the loop or another tab may answer too: the app reads the file each time
        assert site.get_json("/api/next")[1]["query"]["id"] == ids[1]


def test_each_label_is_in_sqlite_when_the_post_returns(tmp_path):
    run, _, ids = make_run(tmp_path)
    with running_app(run) as site:
        for count, (query_id, value) in enumerate(zip(ids, [1, None, 0]), start=1):
            status, body = site.post_json("/api/label", {"query_id": query_id, "value": value})
            assert (status, body) == (200, {"ok": True, "labeled": count, "total": 3})
            # a fresh connection (the loop's) sees it at once: it was committed before the answer
            assert LabelStore(run / "labels.sqlite").labels(0)[query_id] == (None if value is None else value)
        assert site.get_json("/api/next")[1] == {"query": None, "labeled": 3, "total": 3}


def test_a_label_for_an_unknown_query_is_a_404_with_a_message(tmp_path):
    run, _, ids = make_run(tmp_path)
    with running_app(run) as site:
        status, body = site.post_json("/api/label", {"query_id": 999, "value": 1})
    assert status == 404
    assert body["detail"].startswith(f"unknown query id 999: the store {run / 'labels.sqlite'} holds ids {ids[0]}..")


@pytest.mark.parametrize("body, raw, message", [
    ({"query_id": 1, "value": 0.3}, None, r"label must be 0 \(left preferred\)"),
    ({"query_id": 1, "value": "left"}, None, r"label must be 0 \(left preferred\)"),
    ({"query_id": "1", "value": 1}, None, "query_id must be an integer"),
    ({"value": 1}, None, "the body must be"),
    (None, b"left please", "the body must be JSON"),
])
def test_a_malformed_label_is_a_400_that_says_what_is_expected(tmp_path, body, raw, message):
    run, store, _ = make_run(tmp_path)
    with running_app(run) as site:
        status, answer = site.post_json("/api/label", body, raw=raw)
    assert status == 400
    assert re.search(message, answer["detail"])
    assert store.progress() == (0, 3)


def test_clips_are_served_as_mp4_with_ranges(tmp_path):
    run, _, _ = make_run(tmp_path)
    with running_app(run) as site:
        response = site.get("/clips/q1_r.mp4")
        assert (response.status, response.headers["content-type"], response.body) == (
            200, "video/mp4", CLIP_BYTES + b"r")
        response = site.get("/clips/q1_r.mp4", headers={"Range": "bytes=4-11"})
        assert (response.status, response.body) == (206, b"ftypmp42")  # browsers seek in looping videos
        assert site.get("/clips/q9_l.mp4").status == 404


@pytest.mark.parametrize("path", [
    "/clips/../labels.sqlite", "/clips/..%2Flabels.sqlite", "/clips/%2e%2e/labels.sqlite",
    "/clips/..%2F..%2Fsecret.mp4", "/clips/%2Fetc%2Fpasswd", "/clips/.hidden.mp4", "/clips/sub/q0_l.mp4",
    "/clips/q0_l.mp4%00.txt", "/clips/link.mp4",
])
def test_clip_paths_cannot_leave_the_clips_folder(tmp_path, path):
    run, _, _ = make_run(tmp_path)
    (tmp_path / "secret.mp4").write_bytes(b"SECRET")
    (run / "clips" / "sub").mkdir()
    (run / "clips" / "sub" / "q0_l.mp4").write_bytes(b"SECRET")
    (run / "clips" / ".hidden.mp4").write_bytes(b"SECRET")
    os.symlink(tmp_path / "secret.mp4", run / "clips" / "link.mp4")
    with running_app(run) as site:
        response = site.get(path)
    assert response.status in (400, 404), response
    assert b"SECRET" not in response.body and b"SQLite" not in response.body


def test_binding_an_occupied_port_says_to_pass_another_one():
    taken = bind_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ServeError, match=f"port {port} is in use: pass --port"):
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()
    with pytest.raises(ServeError, match="is not an address of this machine: pass --host 127.0.0.1"):
        bind_socket("192.0.2.1", 0)  # TEST-NET-1: never local
    with pytest.raises(ServeError, match="port must be an integer in 0..65535"):
        bind_socket("127.0.0.1", 70000)


# -- the `robreward label` command ---------------------------------------------------------------
def start_cli(*args):
    code = "import sys; from robreward.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "label", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_url(process, timeout=60):
    """The URL the command prints once it listens."""
    lines = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines and "http://" in lines[0], f"no URL printed: {lines} {process.poll()}"
    return lines[0].split("at ", 1)[1].split()[0]


def test_label_command_prints_the_url_serves_and_refuses_an_occupied_port(tmp_path):
    run, _, ids = make_run(tmp_path)
    server = start_cli(run, "--port", 0)
    try:
        url = read_url(server)
        assert url.startswith("http://127.0.0.1:") and "/label/?token=" in url
        site = Site.from_url(url)
        assert site.token == (run / "web_token").read_text().strip()  # kept in the run: a restart keeps it
        assert site.get_json("/api/next")[1]["query"]["id"] == ids[0]
        assert site.get("/api/next", token=None).status == 403  # the address holds the token; without it, no
        port = str(site.port)
        second = subprocess.run([sys.executable, "-c", "import sys; from robreward.cli.main import main; "
                                 "sys.exit(main(sys.argv[1:]))", "label", str(run), "--port", port],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"robreward label: error: port {port} is in use: pass --port" in second.stderr
    finally:
        server.terminate()
        server.wait(20)


def test_label_command_reports_a_missing_run_directory(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sys; from robreward.cli.main import main; "
                             "sys.exit(main(sys.argv[1:]))", "label", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "run directory" in result.stderr and "does not exist" in result.stderr


@pytest.mark.parametrize("files, message", [
    ({"config.yaml": "task: reach\n", "progress.csv": "step\n0\n"},
     "is not a preference run with a human teacher (it has no labels.sqlite and no config.json with a teacher)"),
    ({"config.json": json.dumps({"task": "reach", "teacher": "oracle"})},
     "is a preference run with the simulated teacher 'oracle': it asks nobody for labels"),
    ({"config.json": "{not json"}, "config.json is not a readable preference-run config"),
])
def test_label_command_refuses_a_run_that_is_not_a_human_teacher_run_and_writes_nothing(tmp_path, files, message):
    run = tmp_path / "ppo"
    run.mkdir()
    for name, text in files.items():
        (run / name).write_text(text)
    result = subprocess.run([sys.executable, "-c", "import sys; from robreward.cli.main import main; "
                             "sys.exit(main(sys.argv[1:]))", "label", str(run), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and "pass the --out folder of `robreward prefs train --teacher human`" in \
        result.stderr
    assert sorted(p.name for p in run.iterdir()) == sorted(files)  # no labels.sqlite, no web_token, no clips/


def test_a_human_teacher_run_is_served_before_its_first_query(tmp_path):
    """`robreward label` may start before `prefs train --no-app` stored anything: its config says human."""
    run = tmp_path / "prefs"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "reach", "teacher": "human"}))
    with running_app(run) as site:
        assert site.get_json("/api/next") == (200, {"query": None, "labeled": 0, "total": 0})
    assert (run / "labels.sqlite").is_file()


# -- the clips the app serves ----------------------------------------------------------------------
def reach_rollout(steps=8):
    import robreward
    from robreward.feedback.preferences.segments import collect_rollout

    env = robreward.make("reach", num_envs=2, seed=0)
    rollout, _ = collect_rollout(env, None, steps, seed=0, record_sim_states=True)
    return env, rollout


def test_pair_clips_replay_the_stored_states_and_pad_a_terminated_segment_with_its_last_frame(tmp_path):
    import imageio.v2 as imageio
    import numpy as np
    import torch

    from robreward.feedback.preferences.clips import pairs_meta, render_pair_clips, render_states
    from robreward.feedback.preferences.segments import SegmentBatch, SegmentPairs

    env, rollout = reach_rollout()
    length = 6
    mask = torch.ones(1, length, dtype=torch.bool)
    short = mask.clone()
    short[0, 4:] = False  # an episode that terminated after 4 steps
    feats = torch.zeros(1, length, 1)
    first = SegmentBatch(feats, torch.zeros(1, length), mask, torch.tensor([0]), torch.tensor([1]))
    second = SegmentBatch(feats, torch.zeros(1, length), short, torch.tensor([1]), torch.tensor([2]))
    pairs = SegmentPairs(first, second)
    (left, right), = render_pair_clips(env, rollout, pairs, tmp_path / "clips", "r007", width=64, height=48)
    assert (left.name, right.name) == ("r007_0000_l.mp4", "r007_0000_r.mp4")
    # a comprehension, not list(reader): the reader's len() is inf, list() would try to preallocate it
    left_frames = np.stack([frame for frame in imageio.get_reader(str(left), format="FFMPEG")])
    right_frames = np.stack([frame for frame in imageio.get_reader(str(right), format="FFMPEG")])
    assert left_frames.shape == right_frames.shape == (length, 48, 64, 3)
    held = np.abs(right_frames[4:].astype(int) - right_frames[3]).mean()  # padding holds the last real frame
    moving = np.abs(left_frames[5].astype(int) - left_frames[3]).mean()
    assert held < 0.3 < 1.0 < moving
    # frame t shows the state before step start + t, i.e. the post-step state of step start + t - 1
    frames = render_states(env, rollout.sim_states[1:1 + length, 0], world=0, width=64, height=48)
    assert torch.allclose(env.state["qpos"][0], rollout.states["qpos"][length - 1, 0])
    assert np.abs(frames[-1].astype(int) - frames[0]).max() > 50  # the arm moved on screen
    assert pairs_meta(pairs) == [{"first": {"world": 0, "start": 1, "steps": 6, "length": 6},
                                  "second": {"world": 1, "start": 2, "steps": 4, "length": 6}}]


def test_clips_need_recorded_states_and_rollout_provenance(tmp_path):
    import dataclasses

    import torch

    from robreward.feedback.preferences.clips import render_pair_clips, render_states
    from robreward.feedback.preferences.segments import SegmentBatch, SegmentPairs

    env, rollout = reach_rollout()
    batch = SegmentBatch.from_features(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="segment 0 has no rollout provenance"):
        render_pair_clips(env, rollout, SegmentPairs(batch, batch), tmp_path, "x")
    without = dataclasses.replace(rollout, sim_states=None)
    with pytest.raises(ValueError, match=r"record_sim_states=True"):
        render_pair_clips(env, without, SegmentPairs(batch, batch), tmp_path, "x")
    with pytest.raises(ValueError, match="clip prefix must be"):
        render_pair_clips(env, rollout, SegmentPairs(batch, batch), tmp_path, "../x")
    with pytest.raises(ValueError, match=r"sim_states must be \[T, nstate\]"):
        render_states(env, torch.zeros(3, 5))
