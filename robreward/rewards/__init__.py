"""Rewards: the Reward protocol, hand baselines, reward programs, learned-reward wrappers, and the
reward-spec parser with its registry of reward sources (robreward.rewards.spec), and the distances
between rewards (EPIC, DARD, STARC: robreward.rewards.distance).

The names below load on first use (PEP 562): robreward.rewards.spec is importable without torch."""

from robreward._lazy import lazy_attributes  # noqa: E402

_LAZY = {
    "HandReward": "robreward.rewards.base", "Reward": "robreward.rewards.base",
    "SparseReward": "robreward.rewards.base", "SumReward": "robreward.rewards.base",
    "check_reward_output": "robreward.rewards.base", "resolve_reward": "robreward.rewards.base",
    "RewardSource": "robreward.rewards.spec", "RewardSpec": "robreward.rewards.spec",
    "normalize_reward_spec": "robreward.rewards.spec", "parse_reward_spec": "robreward.rewards.spec",
    "register_reward_source": "robreward.rewards.spec",
    "Coverage": "robreward.rewards.distance", "TransitionReward": "robreward.rewards.distance",
    "collect_transitions": "robreward.rewards.distance", "reward_distances": "robreward.rewards.distance",
}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = sorted(_LAZY)
