"""How much invalid reward a training tolerates, and what it says when there was more.

The env checks every world's reward on every step (``robreward.envs.batched.reward_excess``): a
non-finite total, or terms that do not sum to it, is replaced by 0 and counted. Both trainers
(runner.train for one run, multi.train_many per candidate) stop a training whose count passes
``invalid_reward_limit`` of its step budget: it fails with `InvalidRewardError` and a failed.json
record instead of ending as if the reward had been fine.
"""

from __future__ import annotations

MAX_INVALID_REWARD_SHARE = 0.01
"""A training fails once more than this share of its budget of world-steps (``--steps``) had an
invalid reward. Counting against the budget, not the steps done so far, means a few invalid steps
early on never fail a run that stays under the share, and a reward that is mostly NaN fails after
about 1% of the budget instead of training on zeros to the end. 1%: a reward program that divides
by a distance which is zero once in a while stays far below it; one that is NaN in a whole region
of the state space passes it as soon as the policy goes there."""


class InvalidRewardError(ValueError):
    """The reward was invalid (NaN/inf, or terms not summing to the total) on too many steps."""


def invalid_reward_limit(budget_steps: int) -> int:
    """The most world-steps with an invalid reward a training of ``budget_steps`` may have."""
    return int(MAX_INVALID_REWARD_SHARE * max(int(budget_steps), 0))


def invalid_reward_message(reward_name: str, count: int, steps_done: int, budget_steps: int) -> str:
    """Why a training failed: how many world-steps were invalid, against which limit, and what to fix."""
    return (f"reward {reward_name!r} was invalid (NaN or inf, or terms that do not sum to the total) in {count:,} "
            f"world-steps of the {steps_done:,} trained so far, more than {100 * MAX_INVALID_REWARD_SHARE:g}% of the "
            f"budget of {budget_steps:,} (limit {invalid_reward_limit(budget_steps):,}); those steps got reward 0. "
            "Guard the reward's divisions, logs and square roots, and make the total the sum of the terms; "
            "progress.csv's reward_invalid column shows when it happened")


__all__ = ["MAX_INVALID_REWARD_SHARE", "InvalidRewardError", "invalid_reward_limit", "invalid_reward_message"]
