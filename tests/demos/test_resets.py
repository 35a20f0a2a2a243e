"""Demo-state resets (robreward/demos/resets.py): a share of the training resets start at states of the demos'
successful episodes, the task's own resets otherwise, and evaluation is left alone."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import robreward
from robreward.configs import ConfigError
from robreward.demos.format import DemoDataset
from robreward.demos.resets import demo_states, with_demo_resets
from robreward.envs.registry import get_task
from robreward.rl.config import PPOConfig, TrainConfig
from robreward.rl.trainer import Trainer

LIFT_DEMOS = Path(__file__).resolve().parents[2] / "demos" / "lift-expert.h5"


def _started_at_demo(qpos: torch.Tensor, bank: np.ndarray) -> np.ndarray:
    """Per world: does its qpos equal one of the bank's rows (float32 rounding)?"""
    diff = np.abs(qpos.double().numpy()[:, None, :] - bank[None, :, :]).max(-1)
    return diff.min(1) < 1e-5


def test_demo_states_are_the_successful_episodes_up_to_their_first_success(reach_file):
    qpos, qvel = demo_states(reach_file, get_task("reach"))
    expected = []
    with DemoDataset(reach_file) as ds:
        for i in range(len(ds)):
            ep = ds.episode(i, fields=("qpos", "success"))
            first = int(np.flatnonzero(ep["success"])[0])
            expected.append(ep["qpos"][:first + 2])  # row first + 1: the state after the first successful step
    assert np.array_equal(qpos, np.concatenate(expected))
    assert qvel.shape == (len(qpos), get_task("reach").build_model().nv)


def test_the_share_asked_starts_at_demo_states_and_a_seed_repeats_them(reach_file):
    bank, _ = demo_states(reach_file, get_task("reach"))
    plain = robreward.make("reach", 400, seed=5)
    plain.reset(seed=5)
    assert _started_at_demo(plain.state["qpos"], bank).mean() == 0.0  # the task's own resets never land on one

    share = []
    for _ in range(2):
        env = robreward.make(with_demo_resets(get_task("reach"), reach_file, fraction=0.3), 400, seed=5)
        env.reset(seed=5)
        share.append(_started_at_demo(env.state["qpos"], bank))
    assert np.array_equal(share[0], share[1])  # the env's reset RNG draws them: a seed gives the same resets
    assert 0.22 < share[0].mean() < 0.38, share[0].mean()

    every = robreward.make(with_demo_resets(get_task("reach"), reach_file, fraction=1.0), 64, seed=0)
    every.reset(seed=0)
    assert _started_at_demo(every.state["qpos"], bank).all()
    assert get_task("reach").sample_reset is not every.spec.sample_reset  # the suite's task is left as it was


def test_training_starts_at_demo_states_and_evaluation_does_not(reach_file, tmp_path):
    bank, _ = demo_states(reach_file, get_task("reach"))
    config = TrainConfig(task="reach", reward="sparse", num_envs=16, steps=16 * 32, seed=0, out=str(tmp_path / "run"),
                         eval_episodes=4, progress=False, ppo=PPOConfig(num_steps=32),
                         reset_from_demos=str(reach_file), demo_reset_fraction=1.0)
    evaluated = []

    def evaluate(task, policy, episodes, seed, reward_name):
        evaluated.append(task)  # the task's name: its env, built there, resets as the task does
        from robreward.eval.evaluate import evaluate as real

        return real(task, policy, episodes=episodes, seed=seed, reward_name=reward_name)

    with Trainer([config], evaluate=evaluate) as trainer:
        assert _started_at_demo(trainer.env.state["qpos"], bank).all()
        trainer.learn()
        trainer.finish()
    assert evaluated == ["reach"]
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "demo-state resets" in card and str(reach_file) in card
    assert "reset_from_demos" in (tmp_path / "run" / "config.yaml").read_text()


def test_bad_inputs_say_what_is_wrong(reach_file, tmp_path, cli):
    with pytest.raises(ValueError, match="task"):
        with_demo_resets(get_task("reach"), LIFT_DEMOS)  # a dataset of another task
    failed = tmp_path / "failed.h5"
    shutil.copy(reach_file, failed)
    with h5py.File(failed, "r+") as f:
        for name in f["episodes"]:
            f["episodes"][name]["success"][...] = False
            f["episodes"][name].attrs["success"] = False
    with pytest.raises(ValueError, match="no episode succeeds"):
        with_demo_resets(get_task("reach"), failed)
    with pytest.raises(ConfigError, match="demo_reset_fraction"):
        TrainConfig(task="reach", reset_from_demos=str(reach_file), demo_reset_fraction=0.0)
    with pytest.raises(ConfigError, match="bc_noise_std"):
        TrainConfig(task="reach", init_from_demos=str(reach_file), bc_noise_std=0.0)

    earlier = tmp_path / "run"
    earlier.mkdir()
    (earlier / "config.yaml").write_text("task: reach\n")  # an earlier run: a bad demo file must not cost it
    code, out, err = cli("train", "--task", "reach", "--reward", "sparse", "--steps", "512", "--num-envs", "8",
                         "--reset-from-demos", LIFT_DEMOS, "--out", earlier, "--overwrite")
    assert code != 0 and "Traceback" not in err + out
    assert "lift" in err and "reach" in err, err
    assert (earlier / "config.yaml").read_text() == "task: reach\n"
    code, out, err = cli("train", "--task", "reach", "--reward", "sparse", "--steps", "512", "--num-envs", "8",
                         "--reset-from-demos", failed, "--out", tmp_path / "run3")
    assert code != 0 and "no episode succeeds" in err and not (tmp_path / "run3").exists(), err
    code, out, err = cli("train", "--task", "reach", "--reward", "sparse", "--steps", "512", "--num-envs", "8",
                         "--reset-from-demos", reach_file, "--demo-reset-fraction", "1.5", "--out", tmp_path / "run2")
    assert code != 0 and "Traceback" not in err + out
    assert "--demo-reset-fraction must be in (0, 1]" in err, err


def test_the_cli_keeps_the_demo_files_path_absolute(reach_file, tmp_path, monkeypatch, cli):
    import yaml

    shutil.copy(reach_file, tmp_path / "mine.h5")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("train", "--task", "reach", "--reward", "sparse", "--steps", "256", "--num-envs", "8",
                         "--reset-from-demos", "mine.h5", "--init-from-demos", "mine.h5", "--eval-episodes", "0",
                         "--no-progress", "--out", "run")
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["reset_from_demos"] == config["init_from_demos"] == str(tmp_path / "mine.h5")  # resumable elsewhere


def test_a_task_with_demo_resets_is_still_a_hashable_spec(reach_file):
    spec = with_demo_resets(get_task("reach"), reach_file)
    assert hash(spec) == hash(spec) and spec != get_task("reach")


def test_the_benchmarks_demo_start_reaches_every_run_with_its_fields(reach_file, tmp_path):
    """codegen.training.train_candidates(demo_start={TrainConfig's demo fields}) (what benchmarks/progress.py
    --demo-start trains with), batched and one at a time: every run clones the file with the given noise and starts
    that share of its training episodes at its states; with cloning alone, none; a field that is not a demo field is
    refused before anything trains."""
    import yaml

    from robreward.codegen.training import train_candidates

    starts = {"resets": {"init_from_demos": str(reach_file), "reset_from_demos": str(reach_file),
                         "demo_reset_fraction": 0.1},
              "clone": {"init_from_demos": str(reach_file), "bc_noise_std": 0.3}}
    for batched in (True, False):
        for name, start in starts.items():
            dirs = [tmp_path / f"batched{batched}-{name}" / f"seed_{s}" for s in (0, 1)]
            train_candidates("reach", ["sparse", "sparse"], 256, [0, 1], dirs, num_envs=8, eval_episodes=0,
                             batched=batched, ppo=PPOConfig(num_steps=32), demo_start=start)
            for d in dirs:
                config = yaml.safe_load((d / "config.yaml").read_text())
                assert config["init_from_demos"] == str(reach_file), d
                card = (d / "MODEL_CARD.md").read_text()
                if name == "resets":
                    assert config["reset_from_demos"] == str(reach_file) and config["demo_reset_fraction"] == 0.1, d
                    assert "demo-state resets" in card and config["bc_noise_std"] == 0.1
                else:
                    assert config["reset_from_demos"] is None and config["bc_noise_std"] == 0.3, d
                    assert "demo-state resets" not in card and "then noise std 0.3" in card
    with pytest.raises(ValueError, match="demo fields.*not reset_fraction"):
        train_candidates("reach", ["sparse"], 256, 0, [tmp_path / "bad"], demo_start={"reset_fraction": 0.1})
    assert not (tmp_path / "bad").exists()
    with pytest.raises(TypeError, match="mapping of TrainConfig's demo fields"):  # the old form: a file name
        train_candidates("reach", ["sparse"], 256, 0, [tmp_path / "bad"], demo_start=str(reach_file))
