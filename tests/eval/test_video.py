"""Videos (robreward.eval.video): framing that shows the robot, tile size, the overlay, the episode grid,
and the --video flags of eval and expert."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import robreward
from robreward.cli.main import main
from robreward.eval.evaluate import evaluate
from robreward.eval.video import (DEFAULT_SIZE, EpisodeGrid, Framing, draw_overlay, grid_shape, parse_size,
                                  tile)

SHORT_PUSH = """import dataclasses
from sims.push import TASK as _BASE
TASK = dataclasses.replace(_BASE, episode_length={n})
"""


@pytest.fixture
def short_push(tmp_path):
    folder = tmp_path / "short_push"
    folder.mkdir()
    (folder / "task.py").write_text(SHORT_PUSH.format(n=6))
    return folder


def read_video(path):
    with imageio.get_reader(path) as reader:
        return np.stack([frame for frame in reader])  # list(reader) asks len() = inf


def test_size_and_grid_helpers():
    assert DEFAULT_SIZE == (480, 360) and parse_size("640x480") == (640, 480) and parse_size(" 320 X 240 ") == (320, 240)
    for bad in ("480", "480x", "481x360", "32x32", "4000x300", "big"):
        with pytest.raises(ValueError, match="video size"):
            parse_size(bad)
    assert [grid_shape(n) for n in (1, 2, 3, 4, 5, 9)] == [(1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 3)]
    frames = [np.full((4, 6, 3), v, np.uint8) for v in (10, 20, 30)]
    grid = tile(frames, 2, 2)
    assert grid.shape == (8, 12, 3)
    assert grid[0, 0, 0] == 10 and grid[0, 6, 0] == 20 and grid[4, 0, 0] == 30 and grid[4, 6, 0] == 40  # empty: grey


@pytest.mark.parametrize("task", ["push", "cheetah-run"])
def test_framing_shows_no_black_sky(task):
    """The old view left the top eighth black (the sky: the skybox is off); the video cameras keep the
    floor/table up to the top edge and put the robot near the middle of the frame."""
    env = robreward.make(task, num_envs=2, seed=0)
    env.reset()
    if env.spec.expert is not None:
        for _ in range(10):
            env.step(env.spec.expert(env.state))
    framing = Framing(env)
    frame = framing.render(1, (480, 360), reset=True)
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8
    rows = frame.reshape(360, -1).max(axis=1)
    assert (rows[:45] > 0).all(), "a fully black row in the top eighth"
    old = env.render([1], 480, 360, renderer="egl")[0]
    assert (old.reshape(360, -1).max(axis=1)[:30] == 0).all()  # what the default view did: the test can fail
    env.close()


def test_the_gripper_is_bigger_than_in_the_old_video():
    """The old video (the task's front camera, 320x240) showed the fingers tiny; the new default (the
    arm framing, 480x360) shows the fingers and palm, painted magenta here, with several times the pixels."""
    env = robreward.make("lift", num_envs=1, seed=0)
    env.reset()
    for geom in ("finger_l", "finger_r", "palm"):
        env.model.geom(geom).rgba[:] = [1, 0, 1, 1]
    framing = Framing(env)

    def magenta(f):
        f = np.asarray(f).astype(int)
        return int(((f[..., 0] > 120) & (f[..., 2] > 120) & (f[..., 1] < 60)).sum())

    new, old = [], []
    for _ in range(3):
        new.append(magenta(framing.render(0, DEFAULT_SIZE)))
        old.append(magenta(env.render([0], 320, 240, renderer="egl")[0]))
        for _ in range(8):
            env.step(env.spec.expert(env.state))
    assert min(old) > 100  # the paint shows in both views
    assert np.mean(new) > 2.0 * np.mean(old)
    env.close()


def test_overlay_changes_with_the_step_and_only_in_its_box():
    frame = np.full((360, 480, 3), 120, np.uint8)
    a = draw_overlay(frame, [("push  ep 1  step 1/100", (255, 255, 255)), ("SUCCESS", (90, 230, 90))])
    b = draw_overlay(frame, [("push  ep 1  step 2/100", (255, 255, 255)), ("SUCCESS", (90, 230, 90))])
    assert a.shape == frame.shape and (frame == 120).all()  # the input is not drawn on
    diff = np.argwhere((a != b).any(-1))
    assert len(diff) > 5 and diff[:, 0].max() < 60 and diff[:, 1].max() < 300  # the step digits, top left
    assert (a[200:, 300:] == 120).all()  # the rest of the frame untouched
    green = (a[..., 1] > 200) & (a[..., 0] < 150)
    assert green.any()  # SUCCESS is drawn green


def test_eval_video_grid_of_episodes(short_push, tmp_path):
    """evaluate(video=..., video_episodes=3, video_size=(160, 120)): one mp4, 2x2 tiles of 160x120, one
    frame per step of the 6-step episodes (+ the held final frame), overlays that change every step."""
    from robreward.envs.registry import get_task

    spec = get_task(str(short_push))
    path = tmp_path / "v.mp4"

    def policy(obs):
        return torch.full((obs.shape[0], spec.act_dim), 0.5)

    res = evaluate(str(short_push), policy, episodes=4, seed=0, video=path, video_episodes=3, video_size="160x120")
    assert res["video"] == str(path)
    frames = read_video(path)
    assert frames.shape[1:] == (240, 320, 3)
    assert len(frames) == 6 + 1 + 12  # a frame per step, the final numbers, held half a second (25 fps)
    # tile 4 (bottom right) is the unused grey tile; tiles 1-3 show the scene
    assert abs(int(frames[0, 120:, 160:].mean()) - 40) <= 3
    for r, c in ((0, 0), (0, 160), (120, 0)):
        assert frames[0, r + 40:r + 120, c:c + 160].std() > 10
    # the overlay (top-left of tile 1) changes from step to step
    box = frames[:, :40, :120].astype(int)
    assert all(np.abs(box[k + 1] - box[k]).max() > 40 for k in range(4))
    assert not list(tmp_path.glob(".v.mp4*"))  # no temp file left


def _zero_onnx(path, obs_dim, act_dim):
    import robreward.rl.export as export

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(obs_dim, act_dim), torch.nn.Tanh())
    path.parent.mkdir(parents=True, exist_ok=True)
    export.export_onnx(module, obs_dim, path)
    return path


def test_cli_video_flags(short_push, tmp_path, capsys):
    from robreward.envs.registry import get_task

    spec = get_task(str(short_push))
    policy = _zero_onnx(tmp_path / "pol" / "policy.onnx", spec.obs_dim, spec.act_dim)
    base = ["eval", str(policy), "--task", str(short_push), "--out", str(tmp_path / "e.json")]
    assert main(base + ["--episodes", "2", "--video", str(tmp_path / "a.mp4"), "--video-episodes", "3"]) == 2
    assert "--video-episodes 3 needs 3 worlds" in capsys.readouterr().err
    assert main(base + ["--video", str(tmp_path / "a.mp4"), "--size", "481x360"]) == 2
    assert "must be even" in capsys.readouterr().err
    assert main(base + ["--video-episodes", "2"]) == 2
    assert "needs --video" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "e.json").exists()
    assert main(base + ["--episodes", "2", "--video", str(tmp_path / "a.mp4"), "--video-episodes", "2",
                        "--size", "128x96"]) == 0
    assert read_video(tmp_path / "a.mp4").shape[1:] == (96, 256, 3)
    capsys.readouterr()
    video = tmp_path / "x.mp4"
    assert main(["expert", "--task", "push", "--episodes", "2", "--video", str(video), "--video-episodes", "2",
                 "--size", "160x120"]) == 0
    assert json.loads(capsys.readouterr().out)["video"] == str(video)
    frames = read_video(video)
    assert frames.shape[1:] == (120, 320, 3) and len(frames) > spec.episode_length


def test_grid_refuses_more_episodes_than_worlds():
    env = robreward.make("push", num_envs=2, seed=0)
    with pytest.raises(ValueError, match="a video of 3 episodes needs >= 3 worlds"):
        EpisodeGrid(env, "x.mp4", episodes=3)
    env.close()


def test_a_runner_far_along_stays_on_a_drawn_floor_and_physics_is_unchanged(tmp_path):
    """cheetah-run leaves the scene's 80 m floor after a few seconds; while recording the floor is drawn
    without an edge (plane sizes are drawing-only: the physics stays bit-identical), and restored after."""
    import mujoco

    env = robreward.make("cheetah-run", num_envs=1, seed=0)
    env.reset(seed=0)
    state = env.sim.get_state().cpu().numpy().copy()
    state[0, 1] = 70.0  # root x: 30 m past the floor's edge
    env.sim.set_state(state, np.array([0]))
    floor = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    size = env.model.geom_size[floor].copy()
    with EpisodeGrid(env, tmp_path / "far.mp4", size=(240, 180)) as grid:
        frame = grid.capture()
        assert (frame.reshape(180, -1).max(axis=1) > 0).all()  # no black row: the floor is there
    assert (env.model.geom_size[floor] == size).all()
    env.close()

    def run(endless):
        e = robreward.make("cheetah-run", num_envs=2, seed=0)
        e.reset(seed=0)
        framing = Framing(e) if endless else None
        gen = torch.Generator().manual_seed(0)
        for _ in range(100):
            e.step(torch.rand(2, e.act_dim, generator=gen) * 2 - 1)
        out = e.sim.get_state().cpu().numpy().copy()
        if framing is not None:
            framing.restore()
        e.close()
        return out

    assert np.array_equal(run(False), run(True))
