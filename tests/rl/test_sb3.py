"""`--algo sb3`: a tiny Stable-Baselines3 run writes the same policy.onnx format."""

import numpy as np
import torch

from robreward.rl import TrainConfig, load_policy, train


def test_sb3_smoke_run_exports_policy(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    out = tmp_path / "sb3"
    summary = train(TrainConfig(task="reach", algo="sb3", num_envs=1, steps=1024, seed=0, out=str(out),
                                eval_episodes=0, progress=False))
    assert summary["steps"] >= 1024
    for name in ("config.yaml", "progress.csv", "policy.onnx", "MODEL_CARD.md",
                 "checkpoints/latest_sb3.zip", "checkpoints/latest_vecnormalize.pkl"):
        assert (out / name).is_file(), name
    assert "rl-zoo3" in (out / "MODEL_CARD.md").read_text()

    # the ONNX policy = SB3's deterministic prediction on VecNormalize-normalized observations
    model = PPO.load(str(out / "checkpoints" / "latest_sb3.zip"), device="cpu")
    import gymnasium
    from robreward.envs.gym_adapter import GymEnv

    norm = VecNormalize.load(str(out / "checkpoints" / "latest_vecnormalize.pkl"),
                             DummyVecEnv([lambda: GymEnv("reach")]))
    rng = np.random.default_rng(0)
    obs = rng.normal(0.0, 0.3, size=(32, 13)).astype(np.float32)
    expected, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    actual = load_policy(out / "policy.onnx")(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(actual, np.clip(expected, -1.0, 1.0), atol=1e-5)
