"""compare places image and progress rewards beside the others: a CLIP run (tiny random model), progress runs
(state and image models), preference runs (pref:MODEL.pt of a state and an image model: the rewards a VLM-labelled
or any prefs run leaves)
and a RoboCLIP run get success, fitness, HNS and EPIC/STARC to hand (RoboCLIP: n/a and why) in one table,
one JSON and one plot."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import importlib
from robreward.envs.registry import get_task
from robreward.eval import compare

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[2]
compare_module = importlib.import_module("robreward.eval.compare")  # the module (robreward.eval.compare is also the function)


def make_run(path: Path, reward: str, fitness: float, success: float, ret: float, seeds=(0,)) -> Path:
    """A finished reach run (config.yaml, eval.json, progress.csv); several seeds -> seed_N/ sub-runs."""
    for k, seed in enumerate(seeds):
        run = path / f"seed_{seed}" if len(seeds) > 1 else path
        run.mkdir(parents=True)
        f, s = fitness + 0.01 * k, success
        (run / "config.yaml").write_text(yaml.safe_dump({"task": "reach", "reward": reward, "seed": seed, "steps": 4096}))
        (run / "progress.csv").write_text("steps,return_mean,hand_return_mean,success_rate,fitness_mean\n"
                                          f"0,0,0,0,0\n2048,{ret / 2},{ret / 2},{s / 2},{f / 2}\n4096,{ret},{ret},{s},{f}\n")
        ev = {"task": "reach", "task_version": 0, "reward": reward, "episodes": 10, "seeds": [seed], "return_mean": ret,
              "return_std": 1.0, "train_reward_return_mean": ret, "success_rate": s, "fitness_mean": f,
              "episode_length_mean": 50.0, "terms": {}}
        (run / "eval.json").write_text(json.dumps(ev))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from robreward.feedback.preferences import Featurizer, PreferenceReward
    from robreward.feedback.progress import ProgressConfig, save_progress_run
    from robreward.feedback.progress.model import make_net
    from robreward.feedback.vision.random_models import save_random_model

    root = tmp_path_factory.mktemp("runs")
    spec = get_task("reach")
    model = save_random_model(root / "clip-tiny", kind="clip", size="tiny")
    torch.manual_seed(0)
    progress = {}
    for inputs in ("state", "image"):
        config = ProgressConfig(task="reach", demos=("unused.h5",), inputs=inputs, image_size=24, embed_dim=8, hidden=16)
        progress[inputs] = save_progress_run(root / f"prog-{inputs}", make_net(config, spec), config, spec, {})
    pref = PreferenceReward(featurizer=Featurizer(spec)).save(root / "pref-model.pt")
    from robreward.feedback.preferences import EnsembleConfig
    from robreward.feedback.preferences.image_model import ImageInputs, ImagePreferenceReward

    image_pref = ImagePreferenceReward(Featurizer(spec), ImageInputs("image", image_size=24, embed_dim=8, channels=4),
                                       config=EnsembleConfig(num_members=2, hidden=(16,))).save(root / "pref-image.pt")
    return {
        "hand": make_run(root / "reach-hand", "hand", 0.80, 0.9, 40.0, seeds=(0, 1)),
        "sparse": make_run(root / "reach-sparse", "sparse", 0.20, 0.3, 10.0, seeds=(0, 1)),
        "clip": make_run(root / "reach-clip", f"clip:{model},goal=a robot arm touching the green target,"
                         "baseline=a robot arm,alpha=0.5", 0.35, 0.4, 20.0, seeds=(0, 1)),
        "sparse+progress": make_run(root / "reach-sparse-progress", f"sparse+progress:{progress['state']}", 0.5, 0.6, 25.0),
        "hand+progress-image": make_run(root / "reach-hand-progress-image", f"hand+progress:{progress['image']}",
                                        0.7, 0.8, 35.0),
        "pref": make_run(root / "reach-pref", f"pref:{pref}", 0.6, 0.7, 30.0),
        "pref-image": make_run(root / "reach-pref-image", f"pref:{image_pref}", 0.55, 0.6, 28.0),
        "roboclip": make_run(root / "reach-roboclip", f"roboclip:{model},demo={ROOT / 'demos/reach-expert.h5'}",
                             0.1, 0.1, 5.0),
    }


def test_compare_places_image_and_progress_rewards_beside_the_others(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(compare_module, "DISTANCE_WORLDS", 8)  # 8 worlds x 24 steps: 192 frames per image reward
    monkeypatch.setattr(compare_module, "DISTANCE_STEPS", 24)
    order = ("clip", "sparse+progress", "hand+progress-image", "pref", "pref-image", "roboclip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shipped demo's MuJoCo patch version
        res = compare([runs[k] for k in order], out=tmp_path / "cmp", baselines=(runs["hand"], runs["sparse"]))
    rows = {r["run"]: r for r in res["rows"]}
    for key in order:  # success, fitness and HNS against H = 0.805, S = 0.205 on every row
        row = rows[runs[key].name]
        assert row["success_rate"] is not None and row["fitness_mean"] is not None
        assert row["hns"]["value"] == pytest.approx((row["fitness_mean"] - 0.205) / 0.6)
    for key in order[:-1]:  # finite distances for every reward but RoboCLIP's
        row = rows[runs[key].name]
        assert row["epic"] is not None and row["starc"] is not None, (key, row["distance_note"])
        assert np.isfinite(row["epic"]) and np.isfinite(row["starc"]) and row["distance_note"] is None, key
        assert 0.0 <= row["epic"] <= 1.0 and 0.0 <= row["starc"] <= 1.0
    # hand + progress shaping is hand up to potential shaping: EPIC removes it exactly (same draws for both terms)
    assert rows["reach-hand-progress-image"]["epic"] == pytest.approx(0.0, abs=1e-6)
    # sparse + progress shaping: EPIC as far from hand as sparse itself is (EPIC of sparse measured alike)
    assert rows["reach-sparse-progress"]["epic"] == pytest.approx(rows["reach-sparse"]["epic"], abs=1e-6)
    assert rows["reach-clip"]["epic"] > 0.05  # a random CLIP model is not the hand reward
    robo = rows["reach-roboclip"]
    assert robo["epic"] is None and robo["starc"] is None
    assert robo["distance_note"].startswith("n/a: an episode-level reward")
    # the table: n/a in the cells, the reason and the frames' cost in the notes, one summary line
    table = (tmp_path / "cmp" / "compare.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| reach-roboclip "))
    assert line.rstrip(" |").endswith("n/a | n/a")
    assert "- reach-roboclip: n/a: an episode-level reward" in table
    assert "- reach-clip: its frames for the distances: 192 frames rendered and scored in" in table
    assert "- reach-hand-progress-image: its frames for the distances: 192 frames" in table
    assert "- reach-pref-image: its frames for the distances: 192 frames" in table
    assert len(res["summary"].splitlines()) == 1 and "reach-clip 0.2" in res["summary"]
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert {r["run"] for r in saved["rows"]} >= {runs[k].name for k in order}
    # the one plot: learning curves and the per-run row (success, fitness with the baselines, distances)
    with Image.open(res["png"]) as img:
        assert img.format == "PNG" and img.size[1] > 700
        assert np.asarray(img.convert("RGB")).std() > 5
