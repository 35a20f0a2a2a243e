"""The labeling app end to end in a real headless Chromium (Debian's `chromium`, driven by
Playwright): label by click and by key, kill the server, restart it, nothing is lost.

`make test` installs chromium when it is missing; this test fails (it does not skip) without it,
so a machine that cannot run it says so."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

import robreward
from robreward.feedback.preferences.clips import pairs_meta, render_pair_clips
from robreward.feedback.preferences.segments import collect_rollout, cut_segments, sample_pairs
from robreward.feedback.preferences.store import LabelStore

pytestmark = pytest.mark.browser  # chromium: `make browser` installs it; make test-all

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT, FRAMES = 96, 72, 10


def require_browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test` (it installs Debian's chromium) or "
                    "`apt-get install -y chromium`")
    try:
        import playwright.sync_api  # noqa: F401  (imported to check that it is installed)
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[test]' (or `make test`)")


def make_reach_run(run_dir, num_queries=3):
    """A run dir with a store of `num_queries` pairs of real H.264 clips rendered from `reach`."""
    env = robreward.make("reach", num_envs=2, seed=0)
    rollout, _ = collect_rollout(env, None, FRAMES + 4, seed=0, record_sim_states=True)
    segments = cut_segments(rollout, FRAMES, lambda state, action: action, num=8, rng=np.random.default_rng(0))
    pairs = sample_pairs(segments, num_queries, np.random.default_rng(1))
    clips = render_pair_clips(env, rollout, pairs, run_dir / "clips", "r000", width=WIDTH, height=HEIGHT)
    env.close()
    store = LabelStore(run_dir / "labels.sqlite")
    ids = store.add_queries(0, pairs_meta(pairs), clips)
    return store, ids


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run_dir, port):
    """`robreward label RUN_DIR --port PORT` in a subprocess; returns (process, URL it printed)."""
    code = "import sys; from robreward.cli.main import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, "label", str(run_dir), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if not lines or "http://" not in lines[0]:
        process.kill()
        pytest.fail(f"`robreward label` printed no URL: {lines} {process.stderr.read()}")
    return process, lines[0].split("at ", 1)[1].split()[0]


def wait_for_pair(page, query_id):
    page.wait_for_selector(f'body[data-state="ready"][data-query="{query_id}"]', timeout=15000)


def videos_play(page):
    """Both clips decoded (H.264 in Debian's chromium) at their size and playing."""
    page.wait_for_function(
        "([w, h]) => Array.from(document.querySelectorAll('video')).every(v => "
        "v.readyState >= 2 && v.videoWidth === w && v.videoHeight === h && !v.paused && v.loop && v.muted)",
        arg=[WIDTH, HEIGHT], timeout=15000)


@pytest.mark.timeout(240)
def test_label_in_chromium_kill_restart_and_nothing_is_lost(tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    run_dir = tmp_path / "run"
    store, ids = make_reach_run(run_dir)
    port = free_port()
    server, url = start_server(run_dir, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(url)
            wait_for_pair(page, ids[0])
            expect(page.locator("#counter")).to_have_text("0 / 3 labeled")
            videos_play(page)

            # first pair by button, second by keyboard
            page.click("#left-btn")
            wait_for_pair(page, ids[1])
            expect(page.locator("#counter")).to_have_text("1 / 3 labeled")
            page.keyboard.press("ArrowRight")
            wait_for_pair(page, ids[2])
            expect(page.locator("#counter")).to_have_text("2 / 3 labeled")
            assert store.labels(0) == {ids[0]: 0.0, ids[1]: 1.0}

            # a crash: no shutdown, no flush
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            assert LabelStore(run_dir / "labels.sqlite").labels(0) == {ids[0]: 0.0, ids[1]: 1.0}
            server, url = start_server(run_dir, port)
            page.reload()
            wait_for_pair(page, ids[2])
            expect(page.locator("#counter")).to_have_text("2 / 3 labeled")
            videos_play(page)

            page.keyboard.press("e")
            page.wait_for_selector('body[data-state="waiting"]', timeout=15000)
            expect(page.locator("#counter")).to_have_text("3 / 3 labeled")
            expect(page.locator("#message")).to_contain_text("All queries labeled")
            browser.close()
    finally:
        server.kill()
        server.wait(10)
    # the loop side: everything is answered and readable
    assert store.wait_for_labels(ids, timeout=0) == {ids[0]: 0.0, ids[1]: 1.0, ids[2]: 0.5}
    assert store.progress() == (3, 3)


@pytest.mark.timeout(240)
def test_skip_key_and_an_unknown_query_error_in_chromium(tmp_path):
    """`s` skips; a label the server refuses (the query vanished) is shown, not swallowed."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    run_dir = tmp_path / "run"
    store, ids = make_reach_run(run_dir, num_queries=2)
    server, url = start_server(run_dir, free_port())
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(url)
            wait_for_pair(page, ids[0])
            page.keyboard.press("s")
            wait_for_pair(page, ids[1])
            expect(page.locator("#counter")).to_have_text("1 / 2 labeled")
            # the page holds query ids[1]; make the server see an id it does not know
            page.evaluate("() => { current.id = 424242; }")
            page.click("#right-btn")
            expect(page.locator("#message")).to_contain_text("Not saved: unknown query id 424242")
            wait_for_pair(page, ids[1])  # still offered, still answerable
            page.keyboard.press("2")
            page.wait_for_selector('body[data-state="waiting"]', timeout=15000)
            expect(page.locator("#counter")).to_have_text("2 / 2 labeled")
            browser.close()
    finally:
        server.kill()
        server.wait(10)
    assert store.labels(0) == {ids[0]: None, ids[1]: 1.0}
