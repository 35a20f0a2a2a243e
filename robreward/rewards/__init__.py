"""Rewards: the Reward protocol, hand baselines, reward programs, learned-reward wrappers, and the
reward-spec parser with its registry of reward sources (robreward.rewards.spec).

The names below load on first use (PEP 562): robreward.rewards.spec is importable without torch."""

_LAZY = {
    "HandReward": "robreward.rewards.base", "Reward": "robreward.rewards.base",
    "SparseReward": "robreward.rewards.base", "SumReward": "robreward.rewards.base",
    "check_reward_output": "robreward.rewards.base", "resolve_reward": "robreward.rewards.base",
    "RewardSource": "robreward.rewards.spec", "RewardSpec": "robreward.rewards.spec",
    "normalize_reward_spec": "robreward.rewards.spec", "parse_reward_spec": "robreward.rewards.spec",
    "register_reward_source": "robreward.rewards.spec",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robreward.rewards' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = sorted(_LAZY)
