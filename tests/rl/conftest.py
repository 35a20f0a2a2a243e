import pytest

from robreward.eval.evaluate import evaluate
from robreward.rl import TrainConfig, train

REACH_STEPS = 49_152  # 24 updates of 64 worlds x 32 steps


@pytest.fixture(scope="session")
def reach_run(tmp_path_factory):
    """One small PPO run on reach (fixed seed), shared by the learning and export tests."""
    out = tmp_path_factory.mktemp("runs") / "reach-hand"
    config = TrainConfig(task="reach", reward="hand", num_envs=64, steps=REACH_STEPS, seed=0, out=str(out),
                         eval_episodes=100, progress=False)
    summary = train(config, evaluate=evaluate)
    return out, summary
