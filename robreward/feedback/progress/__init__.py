"""Progress reward models from demonstrations (VLAC / Robo-Dopamine style), used as potential-based shaping.

    net, report = fit_progress(ProgressConfig(task="push", demos=("demos/push-expert.h5",),
                                              negatives=("demos/push-noisy.h5",)))
    save_progress_run("runs/prog-push", net, config, spec, report)
    env = robreward.make("push", 64, reward="sparse+progress:runs/prog-push")

``progress:RUN`` of ``--reward`` is a reward source this package provides: it registers it here, on
import, and declares it as the entry point ``robreward.reward_sources: progress`` (pyproject.toml), as
robreward.feedback.preferences does for ``pref:`` (see robreward/rewards/spec.py). See docs/progress.md.
"""

from pathlib import Path

from robreward.rewards.spec import RewardSource, register_reward_source


def _load_progress_reward(arg: str, spec):
    from robreward.feedback.progress.reward import load_progress_reward

    return load_progress_reward(arg, spec)


def _normalize_run(arg: str) -> str:
    from robreward.feedback.progress.reward import parse_arg
    from robreward.feedback.progress.run import META_FILE

    run, options = parse_arg(arg)
    if not (Path(run) / META_FILE).is_file():
        raise FileNotFoundError(f"progress:{arg}: {run!r} is not a progress run (no {META_FILE}); pass "
                                "progress:RUN_DIR, the --out of `robreward progress fit`")
    return ",".join([str(Path(run).resolve()), *(f"{k}={v:g}" for k, v in options.items())])


PROGRESS_REWARD = RewardSource(
    kind="progress", form="progress:RUN",
    help="potential-based shaping with the progress model of `robreward progress fit --out RUN` "
         "(progress:RUN,gamma=G for another --ppo.gamma)",
    load=_load_progress_reward, normalize=_normalize_run)
register_reward_source(PROGRESS_REWARD)

from robreward.feedback.progress.adapt import adapt_progress  # noqa: E402  (after the registration, as preferences does)
from robreward.feedback.progress.metrics import auroc, episode_metrics, spearman  # noqa: E402
from robreward.feedback.progress.model import (  # noqa: E402
    Episode,
    ProgressConfig,
    ProgressNet,
    fit_progress,
    load_episodes,
    split_episodes,
)
from robreward.feedback.progress.reward import ProgressShaping, load_progress_reward  # noqa: E402
from robreward.feedback.progress.run import load_progress_run, save_progress_run  # noqa: E402

__all__ = ["PROGRESS_REWARD", "Episode", "ProgressConfig", "ProgressNet", "ProgressShaping", "adapt_progress", "auroc",
           "episode_metrics", "fit_progress", "load_episodes", "load_progress_reward", "load_progress_run",
           "save_progress_run", "spearman", "split_episodes"]
