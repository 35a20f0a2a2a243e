"""TrainConfig round trips, and configs saved by older versions keep meaning what they meant."""

from pathlib import Path

import yaml

from robreward.rl import TrainConfig
from robreward.rl.config import PPOConfig


def test_config_round_trips_through_yaml():
    config = TrainConfig(task="reach", num_envs=8, ppo=PPOConfig(desired_kl=0.03, actor_hidden=(32, 16)))
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config


def test_a_config_saved_before_reward_scaling_existed_trains_without_it():
    assert PPOConfig().normalize_rewards  # the default for new runs
    data = TrainConfig(task="reach").to_dict()
    del data["ppo"]["normalize_rewards"]
    assert TrainConfig.from_dict(data).ppo.normalize_rewards is False
    assert all(yaml.safe_load((Path(__file__).parents[2] / "policies" / task / "config.yaml").read_text())["ppo"].get("normalize_rewards", False) is False
               for task in ("reach", "cheetah-run"))
