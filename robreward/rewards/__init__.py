"""Rewards: the Reward protocol, hand baselines, reward programs, learned-reward wrappers."""

from robreward.rewards.base import HandReward, Reward, SparseReward, check_reward_output, resolve_reward

__all__ = ["HandReward", "Reward", "SparseReward", "check_reward_output", "resolve_reward"]
