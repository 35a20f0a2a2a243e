"""Demonstrations as free preferences (Ibarz et al. 2018, "Reward learning from human preferences
and demonstrations in Atari"): a segment of a successful expert demonstration is preferred to a
segment of the policy's rollout. Each feedback round adds ``demo_pairs`` such pairs, labeled without
asking the teacher (a person never sees them: they are not queries and do not count in the budget),
and the reward ensemble trains on them beside the teacher's labels.

    demos = DemoSegments.load(["demos/push-expert.h5"], spec, featurizer, length=25)
    pairs, labels = demos.pairs(policy_segments, 50, rng)   # labels: 1.0 where the demo is the second

A demo step's features are the reward model's own (Featurizer) of the state after the step and the
step's action, as the rollouts' are: every recorded state is written into a BatchedEnv (set_state,
the episode's randomized model fields too) and read back as a TaskState, so any feature preset
works. Only successful episodes are used; a dataset of another task or model is refused
(robreward.feedback.progress.model.load_episodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from robreward.envs.spec import TaskSpec, TaskState
from robreward.feedback.preferences.segments import SegmentBatch, SegmentPairs

CHUNK = 256  # worlds of the env the demo states are written into


def _task_states(states: np.ndarray, model_fields: dict | None, env) -> TaskState:
    """The TaskState [T] of full integration states [T, nstate], read back from ``env``'s worlds."""
    from robreward.feedback.vision.frames import write_states

    parts = [{k: v[:len(ids)].clone() for k, v in env.state.items()} for ids in write_states(env, states, model_fields)]
    return TaskState({k: torch.cat([p[k] for p in parts]) for k in parts[0]})


class DemoSegments:
    """Fixed-length segments of successful demonstrations, in the reward model's features."""

    def __init__(self, segments: SegmentBatch, episodes: int, sources: Sequence[str]):
        self.segments = segments
        self.episodes = episodes
        self.sources = list(sources)

    @classmethod
    def load(cls, paths: Sequence, spec: TaskSpec, featurizer, length: int) -> "DemoSegments":
        from robreward.envs.batched import BatchedEnv
        from robreward.feedback.progress.model import load_episodes

        if not paths:
            raise ValueError("demos as preferences need at least one demo dataset (--demos FILE.h5)")
        episodes = [ep for ep in load_episodes(paths, spec, states=True, actions=True) if ep.success]
        if not episodes:
            raise ValueError(f"no successful episode in {', '.join(map(str, paths))}: demos as preferences take expert "
                             f"demos (robreward demos record --task {spec.name} --source expert --out FILE.h5)")
        features, rewards = [], []
        env = BatchedEnv(spec, num_envs=min(CHUNK, max(len(ep.obs) for ep in episodes)), seed=0)
        env.reset()
        try:
            for ep in episodes:
                actions = torch.as_tensor(ep.actions)
                steps = len(actions)
                if steps < length:
                    continue
                state = _task_states(ep.states[1:steps + 1], ep.model_fields, env)  # after each step
                feats = featurizer(state, actions)
                hand, _ = env.hand_reward(state, actions)
                starts = range(0, steps - length + 1, max(1, length // 2))  # windows overlapping by half
                features += [feats[s:s + length] for s in starts]
                rewards += [hand.to(torch.float32)[s:s + length] for s in starts]
        finally:
            env.close()
        if not features:
            raise ValueError(f"every successful demo is shorter than a segment ({length} steps): use a shorter "
                             "--segment or longer demos")
        batch = SegmentBatch.from_features(torch.stack(features), torch.stack(rewards))
        return cls(batch, len(episodes), [str(Path(p)) for p in paths])

    def pairs(self, policy: SegmentBatch, count: int, rng: np.random.Generator) -> tuple[SegmentPairs, list[float]]:
        """``count`` pairs of a random demo segment and a random policy segment, the demo on a random side;
        the label (P(second preferred)) says the demo is preferred."""
        if count < 1 or policy.size == 0:
            raise ValueError(f"need count >= 1 and policy segments, got count={count}, {policy.size} segments")
        demo_rows = torch.as_tensor(rng.integers(0, self.segments.size, count))
        policy_rows = torch.as_tensor(rng.integers(0, policy.size, count))
        demo = self.segments.index(demo_rows)
        mine = policy.index(policy_rows)
        mine = SegmentBatch(mine.features.float(), mine.rewards.float(), mine.mask, mine.world, mine.start)
        second_is_demo = torch.as_tensor(rng.random(count) < 0.5)

        def side(demo_side: torch.Tensor) -> SegmentBatch:
            pick = demo_side.view(-1, 1)
            return SegmentBatch(torch.where(pick.unsqueeze(-1), demo.features, mine.features),
                                torch.where(pick, demo.rewards, mine.rewards),
                                torch.where(pick, demo.mask, mine.mask),
                                torch.where(demo_side, demo.world, mine.world),
                                torch.where(demo_side, demo.start, mine.start))

        pairs = SegmentPairs(side(~second_is_demo), side(second_is_demo))
        return pairs, [1.0 if s else 0.0 for s in second_is_demo.tolist()]


__all__ = ["DemoSegments"]
