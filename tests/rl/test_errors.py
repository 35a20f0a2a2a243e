"""Bad input gives clear errors that say how to fix it."""

import pytest

from robreward.cli.main import main
from robreward.rl import TrainConfig, resume, train

BAD_SHAPE_REWARD = '''
import torch

def compute_reward(state, action):
    total = state.qpos[:, :2].sum(-1, keepdim=True)  # [N, 1], not [N]
    return total, {"wrong": total}
'''


def test_missing_reward_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"reward file '.*nope\.py' not found"):
        train(TrainConfig(task="reach", reward=str(tmp_path / "nope.py"), steps=2048, out=str(tmp_path / "r")))


def test_missing_reward_file_cli(tmp_path, capsys):
    code = main(["train", "--task", "reach", "--reward", str(tmp_path / "nope.py"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_reward_file_failing_the_protocol(tmp_path):
    path = tmp_path / "bad_reward.py"
    path.write_text(BAD_SHAPE_REWARD)
    with pytest.raises(ValueError, match=r"shape"):
        train(TrainConfig(task="reach", reward=str(path), num_envs=4, steps=2048, out=str(tmp_path / "r"),
                          eval_episodes=0, progress=False))


def test_unknown_values_list_the_valid_ones(tmp_path, capsys):
    assert main(["train", "--task", "reach", "--algo", "a2c", "--out", str(tmp_path / "r")]) == 2
    assert "choose one of ppo, sb3" in capsys.readouterr().err
    assert main(["train", "--task", "reach", "--backend", "gpu", "--out", str(tmp_path / "r")]) == 2
    assert "choose one of cpu, warp" in capsys.readouterr().err
    assert main(["train", "--task", "reach", "--reward", "handy", "--out", str(tmp_path / "r")]) == 2
    assert "use one of hand, sparse" in capsys.readouterr().err
    assert main(["train", "--task", "reachh", "--out", str(tmp_path / "r")]) == 2
    assert "Available tasks" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown algo 'a2c': choose one of ppo, sb3"):
        TrainConfig(algo="a2c")


def test_unreadable_run_dir(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resume(tmp_path / "missing")
    with pytest.raises(ValueError, match="cannot read the run config"):
        resume(tmp_path)  # a directory without config.yaml
    (tmp_path / "config.yaml").write_text("task: [unclosed")
    with pytest.raises(ValueError, match="cannot read the run config"):
        resume(tmp_path)
    (tmp_path / "config.yaml").write_text("task: reach\nsteps: 4096\n")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        resume(tmp_path)
    (tmp_path / "config.yaml").write_text("task: reach\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown fields \\['learning_rate'\\]"):
        resume(tmp_path)
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--resume", str(empty)]) == 2
    assert "not a readable run directory" in capsys.readouterr().err
