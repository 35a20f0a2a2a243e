"""`robreward vision score | bench` and `train --reward clip:MODEL --goal ... --baseline ... --alpha` through the
installed command, on a tiny random CLIP model saved with save_pretrained; bad inputs exit 2 with one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from robreward.feedback.vision.random_models import save_random_model

COMMAND = Path(sys.executable).with_name("robreward")
SLOW = pytest.mark.slow  # a fresh `robreward` process each (5-15 s on a busy 2-core machine)


def robreward(*args, cwd, timeout=600, **env):
    return subprocess.run([str(COMMAND), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "MUJOCO_GL": "egl", **env})


@pytest.fixture(scope="module")
def where(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision-cli")
    save_random_model(root / "tiny-clip", kind="clip", size="tiny")
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    (root / "frames").mkdir()
    for i in range(3):
        imageio.imwrite(root / "frames" / f"{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return root


@SLOW
def test_score_prints_a_reward_per_image(where):
    result = robreward("vision", "score", "--model", "tiny-clip", "--goal", "a red ball", "--baseline", "a ball",
                       "--json", "frames/0.png", "frames/1.png", "frames/2.png", cwd=where)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [row["image"] for row in out["scores"]] == ["frames/0.png", "frames/1.png", "frames/2.png"]
    assert all(-1.0 <= row["clip_reward"] <= 1.0 for row in out["scores"])  # R = 1 - |(x - g)P|^2 / 2 of unit x, g


@SLOW
@pytest.mark.parametrize("args, message", [
    (("--model", "tiny-clip", "--goal", "", "--baseline", "b", "frames/0.png"), "--goal TEXT is required and may not be empty"),
    (("--model", "tiny-clip", "--goal", "a", "frames/0.png"), "--baseline TEXT is required with --alpha > 0"),
    (("--model", "./models/nothing-here", "--goal", "a", "--alpha", "0", "frames/0.png"),
     "model folder './models/nothing-here' does not exist; to get weights"),
    (("--model", "tiny-clip", "--goal", "a", "--alpha", "0", "frames/9.png"), "image 'frames/9.png' not found"),
])
def test_score_bad_input(where, args, message):
    result = robreward("vision", "score", *args, cwd=where)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@SLOW
def test_bench_reports_frames_per_second(where):
    result = robreward("vision", "bench", "--task", "reach", "--envs", "4", "--model", "tiny-clip", "--steps", "2",
                       cwd=where)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["envs"] == 4 and out["image_size"] == [32, 32]
    for key in ("physics_env_steps_per_s", "render_frames_per_s", "render_score_frames_per_s",
                "step_render_score_env_steps_per_s"):
        assert out[key] > 0


@SLOW
def test_train_with_a_clip_reward(where):
    result = robreward("train", "--task", "reach", "--reward", "hand+clip:tiny-clip", "--goal", "a robot arm touching "
                       "the red ball", "--baseline", "a robot arm", "--alpha", "0.5", "--score-every", "2",
                       "--steps", "256", "--envs", "4", "--rollout-steps", "32", "--eval-episodes", "2",
                       "--no-progress", "--out", "run-clip", cwd=where)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((where / "run-clip" / "config.yaml").read_text())
    assert config["reward"] == (f"hand+clip:{where / 'tiny-clip'},goal=a robot arm touching the red ball,"
                                "baseline=a robot arm,alpha=0.5,every=2")
    assert result.stdout.startswith("trained ")
    assert json.loads((where / "run-clip" / "eval.json").read_text())["reward"] == config["reward"]


@pytest.mark.parametrize("args, message", [
    pytest.param(("--reward", "hand", "--goal", "a ball"), "--goal configure a clip:MODEL reward: give --reward "
                 "clip:MODEL", marks=SLOW),
    pytest.param(("--reward", "clip:tiny-clip", "--baseline", "a robot"), "no goal prompt: add --goal", marks=SLOW),
    pytest.param(("--reward", "clip:tiny-clip", "--goal", "a, b", "--baseline", "c"), "--goal 'a, b': give non-empty text",
                 marks=SLOW),
    pytest.param(("--reward", "hand", "--demo-video", "x.mp4"), "--demo-video configures a roboclip:MODEL reward",
                 marks=SLOW),
    pytest.param(("--reward", "roboclip:tiny-clip", "--demo-video", "missing.mp4"), "demo 'missing.mp4' not found", marks=SLOW),
])
def test_train_bad_vision_flags(where, args, message):
    result = robreward("train", "--task", "reach", *args, "--steps", "64", "--out", "never", cwd=where)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (where / "never").exists()


@SLOW
def test_random_model_and_render_then_score(tmp_path):
    made = robreward("vision", "random-model", "--out", "models/rc", "--kind", "siglip", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "models" / "rc" / "model.safetensors").is_file()
    again = robreward("vision", "random-model", "--out", "models/rc", cwd=tmp_path)
    assert again.returncode == 2 and "is not empty: choose a new folder" in again.stderr
    rendered = robreward("vision", "render", "--task", "reach", "--envs", "2", "--size", "48", "--out", "fr",
                         cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert sorted(p.name for p in (tmp_path / "fr").iterdir()) == ["world-000.png", "world-001.png"]
    scored = robreward("vision", "score", "--model", "models/rc", "--goal", "a red ball", "--alpha", "0",
                       "fr/world-000.png", "fr/world-001.png", cwd=tmp_path)
    assert scored.returncode == 0 and len(scored.stdout.splitlines()) == 2, scored.stderr


def test_train_flags_are_written_into_the_reward_spec():
    from types import SimpleNamespace

    from robreward.cli.main import CliError
    from robreward.cli.vision import fold_train_flags

    def args(**given):
        return SimpleNamespace(**{"goal": None, "baseline": None, "alpha": None, "score_every": None,
                                  "demo_video": None, **given})

    assert fold_train_flags("hand+clip:m", args(goal=["a ball", "a red ball"], baseline=["a robot"], alpha=0.25,
                                                score_every=4)) == \
        "hand+clip:m,goal=a ball|a red ball,baseline=a robot,alpha=0.25,every=4"
    assert fold_train_flags("roboclip:m", args(demo_video="d.mp4")) == "roboclip:m,demo=d.mp4"
    assert fold_train_flags("hand", args()) == "hand"
    with pytest.raises(CliError, match="--alpha configure a clip:MODEL reward"):
        fold_train_flags("hand", args(alpha=0.5))
    with pytest.raises(CliError, match="--goal 'a|b': give non-empty text without"):
        fold_train_flags("clip:m", args(goal=["a|b"]))
