"""Shipped baselines: ``policies/<task>/eval.json``, the H and S of every comparison.

Schema (written by ``make baselines``; an eval.json of the hand-reward policies over several
training seeds, as :func:`robreward.eval.evaluate_seeds` returns it, plus the sparse baseline)::

    {
      "task": "push", "task_version": 0,
      "reward": "hand",
      "episodes": 100,                 # evaluation episodes per seed
      "seeds": [0, 1, 2],              # training seeds of the hand-reward policies
      "return_mean": ..., "return_std": ...,          # aggregate over seeds (std over seed means)
      "train_reward_return_mean": ..., "success_rate": ..., "fitness_mean": ...,
      "episode_length_mean": ..., "terms": {"reach": ..., ...},
      "per_seed": [                    # one entry per training seed, same numeric fields
        {"seed": 0, "return_mean": ..., "return_std": ..., "train_reward_return_mean": ...,
         "success_rate": ..., "fitness_mean": ..., "episode_length_mean": ..., "terms": {...}},
        ...
      ],
      "steps": 2000000,                # optional: env steps per seed (the CPU budget)
      "policy_seed": 1,                # optional: the seed whose policy.onnx is shipped (median)
      "sparse": {                      # the sparse-reward baseline, same schema minus "sparse"
        "reward": "sparse", "episodes": 100, "seeds": [0, 1, 2],
        "return_mean": ..., "return_std": ..., "success_rate": ..., "fitness_mean": ...,
        "episode_length_mean": ..., "per_seed": [...], "steps": ...
      }
    }

Only ``fitness_mean`` (H, S) and ``per_seed[*].fitness_mean`` (the hand side of the
significance test) are required for comparisons; everything else is reported when present.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

POLICIES_ENV = "ROBREWARD_POLICIES"


def policies_root() -> Path:
    """$ROBREWARD_POLICIES, else the repository's policies/ folder."""
    env = os.environ.get(POLICIES_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "policies"


@dataclasses.dataclass(frozen=True)
class Baseline:
    task: str
    path: Path
    hand: dict
    sparse: Optional[dict]

    @property
    def hand_fitness(self) -> Optional[float]:
        return self.hand.get("fitness_mean")

    @property
    def sparse_fitness(self) -> Optional[float]:
        return self.sparse.get("fitness_mean") if self.sparse else None

    @property
    def hand_fitness_per_seed(self) -> list[float]:
        per = self.hand.get("per_seed") or []
        vals = [r.get("fitness_mean") for r in per if r.get("fitness_mean") is not None]
        return vals or ([self.hand_fitness] if self.hand_fitness is not None else [])


def baseline_path(task: str, root=None) -> Optional[Path]:
    root = Path(root) if root is not None else policies_root()
    for name in dict.fromkeys((task, task.replace("-", "_"), task.replace("_", "-"))):
        path = root / name / "eval.json"
        if path.is_file():
            return path
    return None


def load_baseline(task: str, root=None) -> Optional[Baseline]:
    """The shipped baseline of `task` (policies/<task>/eval.json), or None if there is none."""
    path = baseline_path(task, root)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"baseline {str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or "fitness_mean" not in data:
        raise ValueError(f"baseline {str(path)!r} lacks 'fitness_mean' (see robreward/eval/baseline.py for the schema)")
    sparse = data.get("sparse")
    hand = {k: v for k, v in data.items() if k != "sparse"}
    return Baseline(task=data.get("task", task), path=path, hand=hand,
                    sparse=sparse if isinstance(sparse, dict) else None)


def is_baseline_file(path) -> bool:
    """True for a shipped-baseline eval.json (has 'sparse'), which `robreward eval` must not overwrite."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "sparse" in data
