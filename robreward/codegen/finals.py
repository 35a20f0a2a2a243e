"""Like-for-like finals: the settings the best reward is retrained with, and every one that differs from
the shipped hand baseline it is compared with (generate --final-match).

The shipped baselines (robreward.eval.baseline: policies/v1/<task>/ when present, else policies/<task>/)
keep the config.yaml their hand reward was trained with. With ``--final-match baseline`` (the default)
the final seeds train with its world count, budget, backend and PPO settings, so that the HNS and the
test against the hand reward compare rewards, not training setups; ``--final-steps`` still overrides the
budget. Whatever differs (a user's override, ``--final-match search``, a baseline trained by an older
robreward whose PPO code may differ where its settings match) is listed beside the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

COMPARED = ("num_envs", "steps", "backend", "algo", "init_from_demos", "reset_from_demos")  # TrainConfig fields, then every ppo.*


@dataclass
class FinalSettings:
    """What the final seeds train with, and how that compares with the baseline's config.yaml."""

    num_envs: int
    steps: int
    backend: str
    ppo: object  # robreward.rl.config.PPOConfig
    baseline: str | None = None  # the baseline's config.yaml (None: no shipped baseline with a config)
    differs: list = field(default_factory=list)  # [{"setting", "final", "baseline"}]
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        import dataclasses

        ppo = dataclasses.asdict(self.ppo)
        return {"num_envs": self.num_envs, "steps": self.steps, "backend": self.backend, "ppo": _plain(ppo),
                "baseline_config": self.baseline, "differs": self.differs, "notes": self.notes}


def baseline_config(task: str) -> tuple[dict, str] | None:
    """The shipped hand baseline's training config (migrated to today's fields) and its path; None if there is
    no shipped baseline or it has no config.yaml."""
    from robreward.eval.baseline import load_baseline
    from robreward.rundir import read_config

    base = load_baseline(task)
    if base is None:
        return None
    path = Path(base.path).parent / "config.yaml"
    if not path.is_file():
        return None
    raw = read_config(path, migrate=False)
    data = read_config(path)
    data["_schema_version"] = raw.get("schema_version", 0)
    return data, str(path)


def baseline_train_config(task: str):
    """The shipped hand baseline's TrainConfig (worlds, PPO settings, budget) and its config.yaml's path; None as
    baseline_config."""
    from robreward.rl.config import TrainConfig

    found = baseline_config(task)
    if found is None:
        return None
    data, path = found
    data.pop("_schema_version")
    return TrainConfig.from_dict(data), path


def final_settings(config, task: str, searched_ppo=None) -> FinalSettings:
    """The final seeds' settings for a GenerateConfig ``config`` on ``task`` (the task's name) and the list of
    those that differ from the shipped baseline's."""
    from robreward.rl.config import PPOConfig, TrainConfig

    ppo = searched_ppo or PPOConfig()
    steps = config.final_steps or config.steps
    found = None if config.text else baseline_config(task)
    if found is None:
        return FinalSettings(config.num_envs, steps, "cpu", ppo,
                             notes=["no shipped baseline config.yaml for this task: the search's settings"])
    data, path = found
    schema = data.pop("_schema_version")
    theirs = TrainConfig.from_dict(data)
    final = FinalSettings(config.num_envs, steps, "cpu", ppo, baseline=path)
    if config.final_match == "baseline":
        final.num_envs, final.backend, final.ppo = theirs.num_envs, theirs.backend, theirs.ppo
        final.steps = config.final_steps or theirs.steps
    ours = TrainConfig(task=theirs.task, reward="hand", num_envs=final.num_envs, steps=final.steps,
                       backend=final.backend, ppo=final.ppo, out="final")
    for name in COMPARED:
        a, b = getattr(ours, name), getattr(theirs, name)
        if a != b:
            final.differs.append({"setting": name, "final": _plain(a), "baseline": _plain(b)})
    mine, base = ours.to_dict()["ppo"], theirs.to_dict()["ppo"]
    for name in sorted(set(mine) | set(base)):
        if mine.get(name) != base.get(name):
            final.differs.append({"setting": f"ppo.{name}", "final": _plain(mine.get(name)),
                                  "baseline": _plain(base.get(name))})
    if schema == 0:
        final.notes.append(f"the baseline's config ({path}) predates config schema versions: it was trained by an "
                           "older robreward, whose PPO code may differ from today's even where the settings match")
    return final


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


__all__ = ["FinalSettings", "baseline_config", "final_settings"]
