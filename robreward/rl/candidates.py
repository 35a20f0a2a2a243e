"""K reward candidates as one env reward: candidate k's Reward on its group of worlds only, each
checked on its own terms and failed alone (robreward.rl.trainer trains K candidates with it)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import torch

from robreward.envs.batched import REWARD_SUM_TOLERANCE, invalid_rewards, reset_hooks, reward_mismatch
from robreward.rewards.base import resolve_reward
from robreward.rewards.spec import parse_reward_spec

Tensor = torch.Tensor


class CandidateRewards:
    """The env's reward over K*M worlds: candidate k's Reward on its world slice only.

    Returns (total [K*M], {"total": total}); each candidate's own terms are kept in
    ``self.terms[k]`` ({name: [M]}). Every call checks each candidate's output on its own terms
    (batched.reward_mismatch: float tensors [M] on the env's device, a finite total that its terms
    sum to) with one fused reduction over all K*M worlds, and ``invalid[k]`` counts candidate k's
    invalid world-steps. An invalid world's terms become 0 and its total NaN: the env's guard then
    treats it as a separate run's env treats an invalid reward (reward 0, the episode ends as
    terminated, flagged in info["nan_reset"]), so the candidate's worlds keep stepping like that
    run's. A candidate fails (``failed[k]``: the reason; reward 0 from then on, never called
    again) when its reward raises, returns unusable tensors, or its count passes ``max_invalid``.

    max_invalid: the invalid world-steps each candidate may have. train_many gives each
    candidate what a separate run of its budget may have (validity.invalid_reward_limit), so a
    reward fails or passes alike whether its candidate trains batched, alone or on Ray; the
    default 0 fails a candidate at its first invalid world-step."""

    name = "candidates"

    def __init__(self, rewards: Sequence, names: Sequence[str], worlds_per_candidate: int, max_invalid: int = 0,
                 budget: int | None = None):
        self.rewards, self.names = list(rewards), list(names)
        self._named = [_Named(name) for name in self.names]
        self.per = int(worlds_per_candidate)
        self.max_invalid, self.budget = int(max_invalid), budget
        self.failed: list[str | None] = [None] * len(self.rewards)
        self.terms: list[dict[str, Tensor]] = [{} for _ in self.rewards]
        self.invalid = [0] * len(self.rewards)
        self.seconds = 0.0

    def __call__(self, state, action: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        start = time.perf_counter()
        total = torch.zeros(action.shape[0], device=action.device)
        mismatch = torch.zeros(action.shape[0], device=action.device)  # sum(terms) - total (failed candidates: 0)
        for k, reward in enumerate(self.rewards):
            self.terms[k] = {}
            if self.failed[k] is not None:
                continue
            rows = slice(k * self.per, (k + 1) * self.per)
            try:
                value, terms = reward(state.index(rows), action[rows])
                mismatch[rows] = reward_mismatch(value, terms, self.per, action.device, self._named[k])
            except Exception as err:  # noqa: BLE001 - one candidate's bug must not stop the others
                self.failed[k] = f"{type(err).__name__}: {err}"
                continue
            total[rows] = value
            self.terms[k] = {name: v.to(torch.float32) for name, v in terms.items()}
        if not float(mismatch.abs().amax()) <= REWARD_SUM_TOLERANCE:  # one check for all candidates (NaN fails it)
            invalid = invalid_rewards(mismatch, total)
            if bool(invalid.any()):
                self._zero_invalid(total, invalid)
        self.seconds += time.perf_counter() - start
        return total, {"total": total}

    def bind_env(self, env) -> None:
        """BatchedEnv.set_reward hands the env to each candidate's reward (and its sum parts) that reads more than
        the TaskState (``bind_env``: an image progress:RUN renders its worlds) with the candidate's world slice,
        so it renders and scores only its own M worlds. A reward whose bind_env takes no slice (clip:, an image
        pref: model) is left unbound and fails its candidate alone at its first step, saying it needs the env."""
        import inspect

        for k, reward in enumerate(self.rewards):
            for bind in reset_hooks(reward, "bind_env"):
                if "worlds" not in inspect.signature(bind).parameters:
                    continue
                try:
                    bind(env, worlds=(k * self.per, self.per))
                except Exception as err:  # noqa: BLE001 - e.g. no renderer: this candidate fails, not the others
                    self.failed[k] = f"{type(err).__name__}: {err}"
                    break

    def on_reset(self, world_ids: Tensor, state) -> None:
        """Episode starts, forwarded to each candidate's reward (and its sum parts) that keeps per-world history
        (``on_reset``: potential-based shaping, progress:RUN) with the world ids inside its own slice and
        the TaskState of that slice; a hook that raises fails its candidate alone."""
        for k, reward in enumerate(self.rewards):
            hooks = reset_hooks(reward)
            if not hooks or self.failed[k] is not None:
                continue
            lo = k * self.per
            mine = world_ids[(world_ids >= lo) & (world_ids < lo + self.per)] - lo
            if not len(mine):
                continue
            try:
                sub = state.index(slice(lo, lo + self.per))
                for hook in hooks:
                    hook(mine, sub)
            except Exception as err:  # noqa: BLE001 - one candidate's bug must not stop the others
                self.failed[k] = f"{type(err).__name__}: {err}"

    def _zero_invalid(self, total: Tensor, invalid: Tensor) -> None:
        """Where invalid [K*M]: count per candidate, fail those over max_invalid (reward 0), else
        terms 0 and a NaN total for the env's guard (class docstring)."""
        counts = invalid.view(len(self.rewards), self.per).sum(1).tolist()
        for k in (k for k, count in enumerate(counts) if count):
            rows = slice(k * self.per, (k + 1) * self.per)
            self.invalid[k] += int(counts[k])
            if self.invalid[k] > self.max_invalid:
                what = ("returned non-finite values (NaN or inf)" if not bool(torch.isfinite(total[rows]).all())
                        else "returned terms that do not sum to the total")
                of_budget = f" ({self.budget:,} world-steps)" if self.budget else ""
                self.failed[k] = (f"InvalidRewardError: reward {self.names[k]!r} {what} in {self.invalid[k]:,} "
                                  f"world-step(s), over its limit of {self.max_invalid:,} for its budget{of_budget}; "
                                  "those steps got reward 0. Guard its divisions, logs and square roots, and make "
                                  "the total the sum of the terms")
                self.terms[k] = {}
                total[rows] = 0.0
                continue
            bad = invalid[rows]
            total[rows] = torch.where(bad, float("nan"), total[rows])
            self.terms[k] = {name: torch.where(bad, 0.0, v) for name, v in self.terms[k].items()}


class _Named:
    """What reward_mismatch's error message reads from a reward: its name."""

    def __init__(self, name: str):
        self.name = name


def reward_name(reward) -> str:
    """A reward's label in its run's config: a spec (a reward file's path made absolute), or a Reward object's name."""
    if isinstance(reward, (str, os.PathLike)):
        text = str(reward)
        try:
            parsed = parse_reward_spec(text)
        except ValueError:  # not a spec: loading it fails the candidate with the parser's reason
            return text
        return str(Path(parsed.arg).resolve()) if parsed.kind == "file" else text
    return str(getattr(reward, "name", type(reward).__name__))


def check_reward_files(reward) -> None:
    """A reward spec (robreward.rewards.spec) parses and the reward files it names exist: a clear error before
    the env is built (ValueError naming the valid forms; FileNotFoundError). A Reward object passes."""
    if not isinstance(reward, (str, os.PathLike)):
        return
    parsed = parse_reward_spec(str(reward))
    for part in parsed.parts or (parsed,):
        if part.kind == "file" and not Path(part.arg).is_file():
            raise FileNotFoundError(f"reward file {part.arg!r} not found: pass an existing .py file defining "
                                    "compute_reward(state, action), or 'hand' / 'sparse'")


def load_rewards(rewards, spec) -> tuple[list, list[str | None]]:
    """Each reward spec resolved (a reward file is checked and dry-run here, as train() does);
    a candidate whose reward fails to load is failed from the start."""
    loaded, errors = [], []
    for reward in rewards:
        try:
            check_reward_files(reward)
            loaded.append(resolve_reward(str(reward) if isinstance(reward, os.PathLike) else reward, spec))
            errors.append(None)
        except Exception as err:  # noqa: BLE001 - recorded as the candidate's failure
            loaded.append(None)
            errors.append(f"{type(err).__name__}: {err}")
    return loaded, errors


__all__ = ["CandidateRewards", "check_reward_files", "load_rewards", "reward_name"]
