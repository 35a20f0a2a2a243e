"""TrainConfig round trips, and configs saved by older versions keep meaning what they meant."""

from pathlib import Path

import yaml

from robreward.rl import TrainConfig
from robreward.rl.config import PPOConfig
from robreward.rundir import migrate_config, read_config


def test_config_round_trips_through_yaml():
    config = TrainConfig(task="reach", num_envs=8, ppo=PPOConfig(desired_kl=0.03, actor_hidden=(32, 16)))
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config


def test_a_config_saved_before_reward_scaling_existed_trains_without_it():
    assert PPOConfig().normalize_rewards  # the default for new runs
    data = TrainConfig(task="reach").to_dict()
    del data["ppo"]["normalize_rewards"]  # a config.yaml of schema version 0 (no schema_version)
    assert TrainConfig.from_dict(migrate_config(data)).ppo.normalize_rewards is False


def test_make_baselines_trains_with_the_config_the_shipped_baselines_record():
    from tests.conftest import load_script

    root = Path(__file__).parents[2]
    script = load_script("scripts/baselines.py", "baselines_script")
    for task in script.BUDGETS:
        saved = TrainConfig.from_dict(read_config(root / "policies" / task))
        assert saved.ppo == script.BASELINE_PPO, task
        assert saved.steps == script.BUDGETS[task], task
