"""Headless rendering, videos and the expert/tasks CLI verbs."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest

import robreward
from robreward.cli.main import main
from robreward.envs.render import write_video


def test_render_frames_are_images_of_the_scene():
    env = robreward.make("cheetah-run", num_envs=3, seed=0)
    env.reset()
    frames = env.render([0, 2], width=96, height=64)
    assert frames.shape == (2, 64, 96, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # not a blank image
    with pytest.raises(ValueError, match="world id 5 out of range"):
        env.render([5])
    with pytest.raises(ValueError, match="camera 'nope' is not in the scene"):
        env.render([0], camera="nope")


def test_write_video_roundtrip(tmp_path):
    env = robreward.make("cheetah-run", num_envs=1)
    env.reset()
    frames = [env.render([0], 64, 48)[0] for _ in range(5)]
    path = write_video(tmp_path / "v.mp4", frames, fps=20)
    read = imageio.mimread(path)
    assert len(read) == 5 and read[0].shape == (48, 64, 3)
    assert not list(tmp_path.glob("*.tmp*"))


def test_tasks_cli(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in robreward.task_names():
        assert name in out
    assert main(["tasks", "show", "cheetah-run"]) == 0
    out = capsys.readouterr().out
    assert "x_velocity" in out and "TaskState fields" in out
    assert "ctrl" not in out.split("TaskState fields")[0].lower().replace("control:", "")  # no reward leak
    assert main(["tasks", "show", "cheetah-rn"]) == 2
    assert "Did you mean 'cheetah-run'" in capsys.readouterr().err


EXPERT_TASKS = [n for n in robreward.task_names() if robreward.get_task(n).expert]


@pytest.mark.skipif(not EXPERT_TASKS, reason="no task with a scripted expert in the suite")
def test_expert_cli_writes_video(tmp_path, capsys):
    task = EXPERT_TASKS[0]
    video = tmp_path / "e.mp4"
    assert main(["expert", "--task", task, "--episodes", "4", "--video", str(video)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 4 and 0.0 <= result["success_rate"] <= 1.0
    assert video.stat().st_size > 1000


def test_expert_cli_refuses_task_without_expert(capsys):
    assert main(["expert", "--task", "cheetah-run", "--episodes", "2"]) == 2
    assert "has no scripted expert" in capsys.readouterr().err
