"""Record -> replay is bit-exact (max error exactly 0) for every task with an expert and for
cheetah-run under random actions; a tampered action is caught at the right step."""

import shutil

import h5py
import mujoco
import numpy as np
import pytest

from robreward.demos.format import DemoDataset
from robreward.demos.record import record
from robreward.demos.replay import render_episode, replay

MANIPULATION = ("reach", "push", "lift", "drawer-open")


@pytest.mark.parametrize("task", MANIPULATION)
def test_expert_record_replay_bit_exact(task, tmp_path):
    out = tmp_path / f"{task}.h5"
    # 5 episodes on 3 worlds: worlds record several episodes each, across auto-resets
    result = record(task, "expert", 5, out, seed=1, noise=0.3, num_envs=3, progress=False)
    assert result["episodes"] == 5
    with DemoDataset(out, task=task) as ds:
        assert len(ds) == 5
        ep = ds.episode(2)
        T = ep["attrs"]["length"]
        assert ep["actions"].shape == (T, ds.spec.act_dim)
        assert ep["qpos"].shape[0] == ep["qvel"].shape[0] == ep["obs"].shape[0] == T + 1
        assert ep["initial_state"].dtype == np.float64 and ep["qpos"].dtype == np.float64
        model = ds.spec.build_model()
        assert ep["initial_state"].shape == (mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION),)
        assert set(ep["reward_terms"]) == {t.name for t in ds.spec.reward_terms}
        np.testing.assert_allclose(sum(ep["reward_terms"].values()), ep["rewards"], rtol=1e-5, atol=1e-5)
        assert ep["attrs"]["success"] == bool(ep["success"].any())
    rep = replay(out, progress=False)
    assert rep["diverged"] == 0
    assert rep["max_abs_error"] == 0.0
    for r in rep["episodes"]:
        assert r["first_divergent_step"] is None and r["max_abs_error"] == 0.0


def test_cheetah_random_actions_bit_exact(tmp_path, random_policy):
    out = tmp_path / "cheetah.h5"
    record("cheetah-run", "random", 2, out, seed=0, num_envs=2, policy=random_policy(6), progress=False)
    rep = replay(out, progress=False)
    assert [r["length"] for r in rep["episodes"]] == [1000, 1000]
    assert rep["max_abs_error"] == 0.0 and rep["diverged"] == 0


def test_tampered_action_diverges_at_that_step(reach_file, tmp_path):
    bad = tmp_path / "tampered.h5"
    shutil.copyfile(reach_file, bad)
    with h5py.File(bad, "a") as f:
        f["episodes/ep_00001/actions"][10] = -f["episodes/ep_00001/actions"][10] + 0.5
    rep = replay(bad, progress=False)
    by_ep = {r["episode"]: r for r in rep["episodes"]}
    assert rep["diverged"] == 1
    assert by_ep[0]["max_abs_error"] == 0.0
    assert by_ep[1]["first_divergent_step"] == 11  # the state after action 10
    assert by_ep[1]["max_abs_error"] > 0


def test_noise_gives_mixed_quality_with_per_episode_flags(tmp_path):
    out = tmp_path / "push-noisy.h5"
    record("push", "expert", 6, out, seed=0, noise=0.8, num_envs=6, progress=False)
    with DemoDataset(out) as ds:
        flags = ds.successes()
        assert ds.episode_attrs(0)["noise"] == 0.8
    assert flags.any() and not flags.all(), flags


def test_state_mode_video(reach_file, tmp_path):
    video = tmp_path / "ep1.mp4"
    frames = render_episode(reach_file, 1, video, mode="state", width=64, height=48)
    assert frames.shape == (51, 48, 64, 3) and frames.dtype == np.uint8
    assert video.stat().st_size > 0
    # the stored states and the re-simulated ones look the same
    again = render_episode(reach_file, 1, None, mode="actions", width=64, height=48)
    assert np.array_equal(frames, again)


def test_frames_are_stored(tmp_path):
    out = tmp_path / "frames.h5"
    record("reach", "expert", 2, out, seed=0, num_envs=2, frames=True, frame_size=(32, 24), progress=False)
    with DemoDataset(out) as ds:
        ep = ds.episode(0)
        assert ep["frames"].shape == (51, 24, 32, 3) and ep["frames"].dtype == np.uint8
        assert ds.summary()["frames"] is True


def test_recording_a_seed_already_in_the_file_is_refused(tmp_path, cli):
    """Issue 24: the same seed into an existing file would append the same episodes again."""
    out = tmp_path / "reach.h5"
    args = ("demos", "record", "--task", "reach", "--episodes", "2", "--num-envs", "2", "--quiet", "--out", out)
    assert cli(*args, "--seed", "0")[0] == 0
    assert cli(*args, "--seed", "1")[0] == 0
    before = out.read_bytes()
    code, _, err = cli(*args, "--seed", "1")
    assert code == 2
    assert "already holds episodes recorded with seed 1" in err and "seeds in the file: 0, 1" in err
    assert "--seed 2" in err and "--overwrite" in err
    assert out.read_bytes() == before  # the file is not modified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reach.h5"]  # no temporary file left
    with DemoDataset(out) as ds:
        assert len(ds) == 4 and ds.summary()["seeds"] == [0, 1]
    assert cli(*args, "--seed", "2")[0] == 0  # the seed it suggests is accepted
    assert cli(*args, "--seed", "1", "--overwrite")[0] == 0  # --overwrite starts a new file
    with DemoDataset(out) as ds:
        assert len(ds) == 2 and ds.summary()["seeds"] == [1]
