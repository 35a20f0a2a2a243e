"""Shipped baselines: the H and S of every comparison, in versions.

Layout: version v0 is ``policies/<task>/`` (the first baselines, kept as they were shipped);
later versions live in ``policies/<version>/<task>/`` (``policies/v1/push/``), each folder with
the same files: ``eval.json`` (below), ``MODEL_CARD.md``, ``config.yaml`` and ``policy.onnx``.
A new version never replaces an old one (as Gymnasium keeps v4 beside v5), so a number quoted
against "v0 baselines" stays reproducible. :func:`shipped_baselines` picks the newest version
present for a task unless a version is asked for.

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
import re
from pathlib import Path
from typing import Optional

POLICIES_ENV = "ROBREWARD_POLICIES"
VERSION_RE = re.compile(r"^v(\d+)$")


def policies_root() -> Path:
    """$ROBREWARD_POLICIES, else the repository's policies/ folder."""
    env = os.environ.get(POLICIES_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "policies"


@dataclasses.dataclass(frozen=True)
class Baseline:
    task: str
    path: Path  # the eval.json
    hand: dict
    sparse: Optional[dict]
    version: str = "v0"  # the baselines' version (not the task's version)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def hand_fitness(self) -> Optional[float]:
        return self.hand.get("fitness_mean")

    @property
    def sparse_fitness(self) -> Optional[float]:
        return self.sparse.get("fitness_mean") if self.sparse else None

    @staticmethod
    def _per_seed(data: Optional[dict]) -> list[float]:
        if not data:
            return []
        per = data.get("per_seed") or []
        vals = [r.get("fitness_mean") for r in per if r.get("fitness_mean") is not None]
        return vals or ([data["fitness_mean"]] if data.get("fitness_mean") is not None else [])

    @property
    def hand_fitness_per_seed(self) -> list[float]:
        return self._per_seed(self.hand)

    @property
    def sparse_fitness_per_seed(self) -> list[float]:
        return self._per_seed(self.sparse)

    def describe(self) -> str:
        """'shipped baselines v0 of push (policies/push, 3 seeds)'."""
        seeds = len(self.hand.get("seeds") or self.hand_fitness_per_seed)
        depth = 2 if self.version == "v0" else 3  # policies/push, policies/v1/push
        where = "/".join(self.folder.parts[-depth:])
        return f"shipped baselines {self.version} of {self.task} ({where}, {seeds} seed{'s' if seeds != 1 else ''})"


def _version_number(version: str) -> int:
    m = VERSION_RE.match(str(version))
    if not m:
        raise ValueError(f"baseline version {version!r} is not of the form v0, v1, ...")
    return int(m.group(1))


def _task_folder(base: Path, task: str) -> Optional[Path]:
    for name in dict.fromkeys((task, task.replace("-", "_"), task.replace("_", "-"))):
        if (base / name / "eval.json").is_file():
            return base / name / "eval.json"
    return None


def version_folder(version: str, root=None) -> Path:
    """Where a version's task folders live: policies/ for v0, policies/<version>/ after it."""
    root = Path(root) if root is not None else policies_root()
    return root if _version_number(version) == 0 else root / version


def baseline_versions(task: str, root=None) -> list[str]:
    """The baseline versions shipped for `task`, oldest first (['v0', 'v1'])."""
    root = Path(root) if root is not None else policies_root()
    found = []
    if _task_folder(root, task) is not None:
        found.append(0)
    if root.is_dir():
        for sub in root.iterdir():
            m = VERSION_RE.match(sub.name)
            if m and int(m.group(1)) > 0 and sub.is_dir() and _task_folder(sub, task) is not None:
                found.append(int(m.group(1)))
    return [f"v{n}" for n in sorted(found)]


def baseline_path(task: str, root=None, version: Optional[str] = None) -> Optional[Path]:
    """The eval.json of `task`'s shipped baselines (`version`, else the newest present), or None."""
    if version is None:
        versions = baseline_versions(task, root)
        if not versions:
            return None
        version = versions[-1]
    return _task_folder(version_folder(version, root), task)


def _read(path: Path, task: str, version: str) -> Baseline:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"baseline {str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or "fitness_mean" not in data:
        raise ValueError(f"baseline {str(path)!r} lacks 'fitness_mean' (see robreward/eval/baseline.py for the schema)")
    sparse = data.get("sparse")
    hand = {k: v for k, v in data.items() if k != "sparse"}
    return Baseline(task=data.get("task", task), path=path, hand=hand,
                    sparse=sparse if isinstance(sparse, dict) else None, version=version)


def shipped_baselines(task: str, version: Optional[str] = None, root=None) -> Optional[Baseline]:
    """The shipped hand and sparse baselines of `task`: `version` ("v0", "v1", ...) or, by
    default, the newest version present; None when no version of it is shipped. A version
    asked for but not shipped for this task is a ValueError naming the versions there are."""
    if version is None:
        versions = baseline_versions(task, root)
        if not versions:
            return None
        version = versions[-1]
    version = str(version)
    _version_number(version)
    path = baseline_path(task, root, version)
    if path is None:
        have = baseline_versions(task, root)
        raise ValueError(f"no shipped baselines {version} of task {task!r} (looked in "
                         f"{version_folder(version, root) / task}); versions shipped for it: "
                         f"{', '.join(have) if have else 'none'}")
    return _read(path, task, version)


def load_baseline(task: str, root=None, version: Optional[str] = None) -> Optional[Baseline]:
    """The shipped baseline of `task` (the newest version unless `version`), or None if there is none."""
    return shipped_baselines(task, version, root)


def shipped_folders(root=None) -> list[Path]:
    """Every shipped baseline's folder (all versions, all tasks), resolved."""
    root = Path(root) if root is not None else policies_root()
    if not root.is_dir():
        return []
    bases = [root] + [sub for sub in root.iterdir() if VERSION_RE.match(sub.name) and sub.is_dir()]
    return [p.parent.resolve() for base in bases for p in base.glob("*/eval.json")]


def is_baseline_file(path) -> bool:
    """True for a shipped-baseline eval.json (has 'sparse'), which `robreward eval` must not overwrite."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "sparse" in data
