"""`--algo sb3`: a tiny Stable-Baselines3 run writes the same policy.onnx format, and its
checkpoint is plain data that resume loads (never SB3's pickled .zip or VecNormalize's .pkl)."""

import numpy as np
import pytest
import torch

from robreward.rl import TrainConfig, load_policy, resume, train
from robreward.rl.sb3 import LATEST_SB3, load_sb3_checkpoint, rl_zoo_policy_kwargs


def test_sb3_smoke_run_exports_policy_and_resumes(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robreward.envs.gym_adapter import GymEnv

    out = tmp_path / "sb3"
    summary = train(TrainConfig(task="reach", algo="sb3", num_envs=1, steps=1024, seed=0, out=str(out),
                                eval_episodes=0, progress=False))
    assert summary["steps"] >= 1024
    for name in ("config.yaml", "progress.csv", "policy.onnx", "MODEL_CARD.md", f"checkpoints/{LATEST_SB3}"):
        assert (out / name).is_file(), name
    assert not list((out / "checkpoints").glob("*.zip")) and not list((out / "checkpoints").glob("*.pkl"))
    assert "rl-zoo3" in (out / "MODEL_CARD.md").read_text()
    ckpt = torch.load(out / "checkpoints" / LATEST_SB3, weights_only=True)  # plain data
    assert ckpt["num_timesteps"] == summary["steps"]

    # the ONNX policy = SB3's deterministic prediction on VecNormalize-normalized observations
    model = PPO("MlpPolicy", DummyVecEnv([lambda: GymEnv("reach")]), policy_kwargs=rl_zoo_policy_kwargs(),
                device="cpu")
    model.policy.load_state_dict(ckpt["policy"])
    norm = ckpt["vecnormalize"]
    rng = np.random.default_rng(0)
    obs = rng.normal(0.0, 0.3, size=(32, 13)).astype(np.float32)
    normalized = np.clip((obs - norm["obs_rms.mean"].numpy()) / np.sqrt(norm["obs_rms.var"].numpy() + norm["epsilon"]),
                         -norm["clip_obs"], norm["clip_obs"]).astype(np.float32)
    expected, _ = model.predict(normalized, deterministic=True)
    actual = load_policy(out / "policy.onnx")(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(actual, np.clip(expected, -1.0, 1.0), atol=1e-5)

    # resume continues from the plain checkpoint: counters, weights and statistics carried over
    resumed = resume(out, steps=2048, progress=False)
    assert resumed["steps"] >= 2048
    after = load_sb3_checkpoint(out / "checkpoints" / LATEST_SB3)
    assert after["n_updates"] > ckpt["n_updates"] and after["vecnormalize"]["obs_rms.count"] > norm["obs_rms.count"]


def test_sb3_resume_refuses_the_old_pickled_checkpoints(tmp_path):
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.yaml").write_text("task: reach\nalgo: sb3\nnum_envs: 1\nsteps: 2048\n")
    (out / "checkpoints" / "latest_sb3.zip").write_bytes(b"PK\x03\x04 not opened")
    (out / "checkpoints" / "latest_vecnormalize.pkl").write_bytes(b"\x80\x04 not unpickled")
    with pytest.raises(ValueError, match=r"old pickled format \(latest_sb3.zip, latest_vecnormalize.pkl\).*"
                                         r"without --resume"):
        resume(out)


def test_an_sb3_run_whose_reward_turns_nan_fails_with_a_record(tmp_path, monkeypatch):
    """The env zeroes and counts invalid rewards whatever trains on it; SB3's run fails like runner's."""
    import csv
    import json

    import robreward.envs.batched as batched
    from robreward.rl.validity import InvalidRewardError

    class NanFromCall10:
        name = "nan-from-call-10"
        calls = 0

        def __call__(self, state, action):
            self.calls += 1
            d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
            return (d * float("nan") if self.calls >= 10 else d), {"d": d}

    monkeypatch.setattr(batched, "resolve_reward", lambda reward, spec: NanFromCall10())
    out = tmp_path / "sb3-nan"
    with pytest.raises(InvalidRewardError, match=r"in 503 world-steps of the 512 trained so far"):
        train(TrainConfig(task="reach", algo="sb3", num_envs=1, steps=2048, seed=0, out=str(out), eval_episodes=0,
                          progress=False))
    failed = json.loads((out / "failed.json").read_text())
    assert (failed["trainer"], failed["reward_invalid"], failed["step"]) == ("sb3", 503, 512)
    rows = list(csv.DictReader(open(out / "progress.csv")))
    assert int(rows[0]["reward_invalid"]) == 503 and float(rows[0]["reward_invalid_share"]) == 503 / 512
