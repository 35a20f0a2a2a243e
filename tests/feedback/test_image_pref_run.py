"""`robreward prefs train --reward-inputs image`: tiny runs end to end with the oracle and with the VLM teacher
against the local fake vision endpoint, a resumed image run, `pref:RUN` of an image run, and the bad inputs."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import robreward
from robreward.cli.main import main

os.environ.setdefault("MUJOCO_GL", "egl")
HERE = Path(__file__).resolve().parent
TINY = ["--task", "reach", "--queries", "16", "--per-round", "8", "--segment", "10", "--steps", "2048", "--envs", "8",
        "--eval-episodes", "0", "--seed", "1", "--no-progress", "--reward-inputs", "image", "--image-size", "24",
        "--image-camera", "top"]


def helpers_of(relative: str):
    """Another test file's helpers (the fake vision server, the person at the labeling app)."""
    spec = importlib.util.spec_from_file_location(f"image_pref_{Path(relative).stem}", HERE / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_vision_server():
    """The local OpenAI-compatible vision server of the VLM teacher's tests."""
    return helpers_of("vision/test_vlm_teacher.py").FakeVision()


@pytest.mark.slow  # two feedback rounds with PPO between them, then a resumed round (about 40 s)
def test_an_image_run_with_the_oracle_resumes_and_its_reward_trains(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prefs", "train", *TINY, "--teacher", "oracle", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["reward_inputs"], config["image_size"], config["image_camera"]) == ("image", 24, "top")
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    assert len(rounds) == 2 and all(r["heldout_accuracy_true"] is not None and r["epic_distance"] is not None
                                    for r in rounds)
    # each round renders its query and held-out worlds' frames at most once (8 worlds x 100 steps)
    assert all(0 < r["frames_rendered"] <= 8 * 100 for r in rounds)
    assert sorted(p.name for p in (out / "reward_frames").iterdir()) == ["round_000.npz", "round_001.npz"]
    # a run killed during its second round resumes from the first round's model and frames
    state = json.loads((out / "state.json").read_text())
    (out / "state.json").write_text(json.dumps({**state, "rounds_done": 1, "finished": False}))
    assert main(["prefs", "train", "--resume", str(out), "--no-progress"]) == 0
    assert "2 feedback rounds, 16 queries (16 answered)" in capsys.readouterr().out
    assert len(json.loads((out / "metrics.json").read_text())["rounds"]) == 2
    # pref:RUN is the image reward: every world's frame scored in the env
    env = robreward.make("reach", 4, seed=0, reward=f"pref:{out}")
    try:
        env.reset()
        _, reward, *_ = env.step(torch.zeros(4, env.act_dim))
        assert reward.shape == (4,) and torch.isfinite(reward).all()
    finally:
        env.close()
    # prefs eval measures an image run too (on frames of its fresh rollout)
    assert main(["prefs", "eval", str(out), "--pairs", "20", "--bootstrap", "0", "--episodes", "2"]) == 0
    result = json.loads((out / "prefs_eval.json").read_text())
    assert result["epic_distance"] is not None and result["preference_accuracy"] is not None


@pytest.mark.slow  # a preference run labelled by the fake vision endpoint (about 30 s)
def test_an_image_run_labelled_by_the_fake_vlm(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-image-pref")
    fake = fake_vision_server()
    try:
        fake.answers = ["1", "0", "-1"]
        out = tmp_path / "run"
        assert main(["prefs", "train", *TINY, "--teacher", "vlm:fake-vlm,size=32", "--base-url", fake.base_url,
                     "--out", str(out)]) == 0
    finally:
        fake.server.shutdown()
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    assert len(rounds) == 2 and all(r["vlm_answered"] > 0 and r["vlm_unsure"] > 0 for r in rounds)
    assert rounds[-1]["fit"]["num_pairs"] == sum(r["vlm_answered"] for r in rounds)
    assert rounds[-1]["heldout_accuracy_true"] is not None
    from robreward.feedback.preferences.image_model import ImagePreferenceReward
    from robreward.feedback.preferences.model import load_preference_reward

    assert isinstance(load_preference_reward(out), ImagePreferenceReward)


@pytest.mark.slow  # a preference run labelled by a person in the app, over HTTP (about 30 s)
def test_an_image_run_labelled_by_a_person_in_the_app(tmp_path):
    import threading

    from robreward.feedback.preferences.loop import train_preferences

    human = helpers_of("test_human_teacher.py")
    port, out = human.free_port(), tmp_path / "run"
    stop, given = threading.Event(), []
    labeler = threading.Thread(target=human.label_all, args=(out, port, stop, given), daemon=True)
    labeler.start()
    try:
        summary = train_preferences(human.tiny(out, port, reward_inputs="image", image_size=24, image_camera="top"))
    finally:
        stop.set()
        labeler.join(10)
    assert summary["rounds"] == 2 and summary["labels_answered"] == 6  # 2 of the 8 answers were "skip"
    assert (out / "reward_frames" / "round_001.npz").is_file() and any((out / "clips").iterdir())
    assert json.loads((out / "metrics.json").read_text())["rounds"][-1]["fit"]["num_pairs"] == 6


def test_bad_reward_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "8", "--per-round", "8", "--reward-inputs",
              "pixels", "--out", str(tmp_path / "a")])
    assert "invalid choice: 'pixels'" in capsys.readouterr().err
    assert main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "8", "--per-round", "8", "--image-camera", "top",
                 "--out", str(tmp_path / "b")]) != 0
    assert "add --reward-inputs image" in capsys.readouterr().err
    assert main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "8", "--per-round", "8", "--reward-inputs",
                 "image", "--image-size", "8", "--out", str(tmp_path / "c")]) != 0
    assert "--image-size must be an integer in 16..256" in capsys.readouterr().err
    assert main(["prefs", "train", "--task", "reach", "--teacher", "oracle", "--queries", "8", "--per-round", "8",
                 "--reward-inputs", "image", "--image-camera", "nowhere", "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr().err
    assert "image camera 'nowhere' is not in the scene of task 'reach'" in err and "named views are top" in err, err
    assert not (tmp_path / "e").exists()
    # no renderer: what to set, before anything is written
    out = tmp_path / "d"
    proc = subprocess.run([sys.executable, "-m", "robreward.cli.main", "prefs", "train", "--task", "reach",
                           "--teacher", "oracle", "--queries", "8", "--per-round", "8", "--reward-inputs", "image", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "disable"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--reward-inputs image renders frames" in proc.stderr and "MUJOCO_GL=egl" in proc.stderr, proc.stderr
    assert not out.exists()
