"""`robreward progress fit | eval | adapt | show` through the installed command, and its bad inputs (exit 2,
one line, no traceback); a fitted run trains a policy through `train --reward sparse+progress:RUN`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
COMMAND = Path(sys.executable).with_name("robreward")
DEMOS = ROOT / "demos"


def robreward(*args, cwd, timeout=300):
    return subprocess.run([str(COMMAND), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**__import__("os").environ, "MUJOCO_GL": "egl"})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    where = tmp_path_factory.mktemp("progress-cli")
    result = robreward("progress", "fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--negatives",
                       DEMOS / "reach-noisy.h5", "--epochs", "60", "--out", "prog-reach", cwd=where)
    assert result.returncode == 0, result.stderr
    return where, json.loads(result.stdout)


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_fit_writes_a_run_with_held_out_metrics(run):
    where, out = run
    assert out["task"] == "reach" and out["held_out"]["successes"] >= 1
    assert out["held_out"]["value_order_correlation"] > 0.8
    meta = json.loads((where / "prog-reach" / "progress.json").read_text())
    assert meta["task"] == "reach" and meta["input_spec"]["kind"] == "observation part norms"  # obs-norms, the default
    assert meta["metrics"]["split"]["held_out"]


@pytest.mark.slow  # two more fits (about 20 s)
def test_fit_takes_the_raw_observation_heights_and_no_mixed_negatives_when_asked(tmp_path):
    result = robreward("progress", "fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--epochs", "5",
                       "--features", "observation", "--no-mix", "--out", "raw", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "raw" / "progress.json").read_text())
    assert meta["config"]["features"] == "observation" and meta["config"]["mix_weight"] == 0.0
    assert meta["input_spec"]["kind"] == "observation" and meta["input_spec"]["dim"] == 13
    heights = robreward("progress", "fit", "--task", "lift", "--demos", DEMOS / "lift-expert.h5", "--epochs", "5",
                        "--features", "obs-norms-z", "--members", "2", "--out", "heights", cwd=tmp_path)
    assert heights.returncode == 0, heights.stderr
    meta = json.loads((tmp_path / "heights" / "progress.json").read_text())
    assert meta["config"]["features"] == "obs-norms-z" and meta["config"]["negatives"] == []
    assert meta["config"]["members"] == 2  # an ensemble of two nets, trained through the reward below
    ev = robreward("progress", "eval", "heights", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    scored = json.loads(ev.stdout)
    assert scored["scored"] == "the run's held-out episodes (out of bag)" and scored["successes"] >= 5
    shaped = robreward("train", "--task", "lift", "--reward", "sparse+progress:heights", "--steps", "512", "--envs",
                       "4", "--out", "shaped", cwd=tmp_path)
    assert shaped.returncode == 0, shaped.stderr
    assert (tmp_path / "shaped" / "policy.onnx").is_file()
    assert meta["input_spec"]["kind"] == "observation part norms and heights" and meta["input_spec"]["dim"] == 10
    bad = robreward("progress", "fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--features", "norms",
                    "--out", "bad", cwd=tmp_path)
    assert bad.returncode != 0 and "invalid choice: 'norms'" in bad.stderr and "Traceback" not in bad.stderr
    none = robreward("progress", "fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--members", "0",
                     "--out", "none", cwd=tmp_path)
    assert none.returncode == 2 and "--members must be in 1..32" in none.stderr and "Traceback" not in none.stderr
    assert not (tmp_path / "none").exists()


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_eval_reports_metrics_and_writes_a_plot(run):
    where, _ = run
    result = robreward("progress", "eval", "prog-reach", "--demos", DEMOS / "reach-noisy.h5", "--plot", "curves.png",
                       cwd=where)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["successes"] == 20 and report["value_order_correlation"] > 0.8
    # the dataset it was fitted on (but its held-out quarter) stays within the range of its features
    assert report["outside_demo_range"]["share_of_steps"] <= 0.05, report["outside_demo_range"]
    assert (where / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_adapt_fine_tunes_on_one_demo(run):
    where, _ = run
    result = robreward("progress", "adapt", "prog-reach", "--demos", DEMOS / "reach-noisy.h5", "--episode", "0",
                       "--epochs", "20", "--out", "prog-adapted", cwd=where)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["episodes"] == 1
    meta = json.loads((where / "prog-adapted" / "progress.json").read_text())
    assert meta["adapted_from"].endswith("prog-reach") and "adaptation" in meta["metrics"]


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_show_writes_a_video_with_the_curve(run):
    where, _ = run
    result = robreward("progress", "show", "prog-reach", "--episode", "3", "--video", "ep3.mp4", "--size", "64",
                       cwd=where)
    assert result.returncode == 0, result.stderr
    assert (where / "ep3.mp4").stat().st_size > 1000


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_train_accepts_a_progress_shaping_sum(run):
    where, _ = run
    result = robreward("train", "--task", "reach", "--reward", "sparse+progress:prog-reach", "--steps", "1024",
                       "--envs", "8", "--out", "shaped", cwd=where)
    assert result.returncode == 0, result.stderr
    assert "progress:" in (where / "shaped" / "config.yaml").read_text()


@pytest.mark.parametrize("argv, message", [
    (["fit", "--task", "push", "--demos", DEMOS / "lift-expert.h5", "--out", "x"], "holds demos of task 'lift'"),
    (["fit", "--task", "push", "--demos", DEMOS / "lift-expert.h5", "--inputs", "image", "--out", "x"],
     "holds demos of task 'lift'"),  # checked before anything is rendered
    (["fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--inputs", "image", "--camera", "nope",
      "--out", "x"], "'nope' is not a camera"),
    (["fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--inputs", "pixels", "--out", "x"],
     "invalid choice: 'pixels'"),
    (["fit", "--task", "reach", "--demos", "missing.h5", "--out", "x"], "not found"),
    (["fit", "--task", "push", "--demos", DEMOS / "push-expert.h5", "--mix-frames", "100", "--out", "x"],
     "--mix-frames must be >= 0 and is for image inputs"),
    (["fit", "--task", "reach", "--demos", DEMOS / "reach-expert.h5", "--inputs", "image", "--mix-frames", "100",
      "--out", "x"], "at least two moving parts"),
    (["eval", "nowhere"], "not a progress run"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, message):
    result = robreward("progress", *argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_features_choices_are_the_models():
    """The parser lists the feature choices literally (it imports no torch); they must be the model's."""
    from robreward.cli.main import build_parser
    from robreward.feedback.progress.features import FEATURES

    parser = build_parser(["progress"])
    verbs = next(a for a in parser._subparsers._group_actions if a.dest == "verb").choices["progress"]
    fit = next(a for a in verbs._subparsers._group_actions if a.dest == "progress_verb").choices["fit"]
    assert tuple(next(a for a in fit._actions if a.dest == "features").choices) == FEATURES


@pytest.mark.slow  # shares the module's fitted run (about 20 s)
def test_a_dataset_without_successes_or_too_few_episodes_is_refused(run, tmp_path):
    import h5py

    where, _ = run
    few = tmp_path / "few.h5"
    few.write_bytes((DEMOS / "reach-expert.h5").read_bytes())
    with h5py.File(few, "a") as f:  # keep one episode: nothing left to hold out
        for name in sorted(f["episodes"])[1:]:
            del f["episodes"][name]
    for inputs in ("state", "image"):
        result = robreward("progress", "fit", "--task", "reach", "--demos", few, "--inputs", inputs, "--out", "x",
                           cwd=tmp_path)
        assert result.returncode == 2 and "at least 2 are needed" in result.stderr, result.stderr
    with h5py.File(few, "a") as f:
        f["episodes"][sorted(f["episodes"])[0]].attrs["success"] = False
        f["episodes"][sorted(f["episodes"])[0]]["success"][...] = False
    for inputs in ("state", "image"):
        result = robreward("progress", "fit", "--task", "reach", "--demos", few, "--inputs", inputs, "--out", "x",
                           cwd=tmp_path)
        assert result.returncode == 2 and "no successful episode" in result.stderr, result.stderr


@pytest.mark.slow  # renders ~300 frames and fits a small CNN (about 30 s)
def test_image_model_fit_eval_adapt_show(tmp_path):
    import h5py

    tiny = tmp_path / "tiny.h5"
    tiny.write_bytes((DEMOS / "reach-expert.h5").read_bytes())
    with h5py.File(tiny, "a") as f:  # five episodes are enough to exercise the verbs
        for name in sorted(f["episodes"])[5:]:
            del f["episodes"][name]
    fit = robreward("progress", "fit", "--task", "reach", "--demos", tiny, "--inputs", "both", "--image-size", "32",
                    "--camera", "top", "--epochs", "5", "--out", "img", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    out = json.loads(fit.stdout)
    assert out["inputs"] == "both" and out["held_out"]["successes"] >= 1
    assert list((tmp_path / "img").glob("frames-*-top.npz"))  # the frames are cached in the run
    ev = robreward("progress", "eval", "img", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["value_order_correlation"] is not None and (tmp_path / "img" / "eval.png").is_file()
    ad = robreward("progress", "adapt", "img", "--demos", tiny, "--episode", "0", "--epochs", "3", "--out", "img2",
                   cwd=tmp_path)
    assert ad.returncode == 0, ad.stderr
    sh = robreward("progress", "show", "img2", "--episode", "1", "--video", "ep1.mp4", "--size", "64", cwd=tmp_path)
    assert sh.returncode == 0, sh.stderr
    assert (tmp_path / "ep1.mp4").stat().st_size > 1000
