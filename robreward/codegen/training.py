"""Training the candidates of the Eureka loop, and the statistics its reflection reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

from robreward.fileio import atomic_write_json


BATCHED = True
"""train_candidates trains >= 2 fresh candidates at once (robreward.rl.multi.train_many) unless False."""


def train_candidates(task: str, files: Sequence, steps: int, seed: int, out_dirs: Sequence, *, num_envs: int = 32,
                     eval_episodes: int = 50, on_done: Callable[[int, str], None] | None = None,
                     batched: bool | None = None) -> list[str]:
    """Train one PPO policy per reward file into its run dir. A run with eval.json (or failed.json)
    is done and skipped. With ``batched`` (default: the module's BATCHED) and two or more fresh
    candidates, those train at once in one K x num_envs-world env (robreward.rl.multi.train_many;
    same run-dir layout, same per-candidate numbers up to float rounding). A candidate with a
    checkpoint resumes from it on the sequential runner (the batched path does not resume: a killed
    batched run retrains its unfinished candidates; its final checkpoint lets a candidate killed
    during evaluation finish here). A candidate whose training raises gets ``failed.json`` in its
    run dir instead of stopping the others."""
    from robreward.rl.config import TrainConfig
    from robreward.rl.runner import LATEST, train

    batched = BATCHED if batched is None else batched
    out_dirs = [Path(out) for out in out_dirs]
    finished = lambda out: (out / "eval.json").is_file() or (out / "failed.json").is_file()  # noqa: E731
    fresh = [i for i, out in enumerate(out_dirs) if not finished(out) and not (out / "checkpoints" / LATEST).is_file()]
    if batched and len(fresh) >= 2:
        from robreward.rl.multi import train_many

        for i in fresh:
            if out_dirs[i].exists():
                shutil.rmtree(out_dirs[i])  # stale logs of a killed run would mix with the new ones
        try:
            train_many(task, [str(Path(files[i]).resolve()) for i in fresh], steps, seed, [out_dirs[i] for i in fresh],
                       num_envs_per_candidate=num_envs, eval_episodes=eval_episodes)
        except Exception as err:  # noqa: BLE001 - a failure of the shared trainer is every open candidate's record
            for i in fresh:
                if not finished(out_dirs[i]):
                    atomic_write_json(out_dirs[i] / "failed.json", {"error": f"{type(err).__name__}: {err}"})

    for index, (file, out) in enumerate(zip(files, out_dirs)):
        if not finished(out):
            config = TrainConfig(task=str(task), reward=str(Path(file).resolve()), num_envs=num_envs, steps=steps,
                                 seed=seed, out=str(out), eval_episodes=eval_episodes, progress=False, latest_every=5)
            checkpoint = out / "checkpoints" / LATEST
            if not checkpoint.is_file() and out.exists():
                shutil.rmtree(out)  # killed before its first checkpoint: stale logs would mix with the new ones
            try:
                train(config, resume_from=checkpoint if checkpoint.is_file() else None)
            except Exception as err:  # noqa: BLE001 - one candidate's failure is a record, not the end of the run
                out.mkdir(parents=True, exist_ok=True)
                atomic_write_json(out / "failed.json", {"error": f"{type(err).__name__}: {err}"})
        if on_done is not None:
            on_done(index, str(out))
    return [str(out) for out in out_dirs]


def training_stats(run_dir, *, success: bool = True) -> dict:
    """The per-update series reflection_text reads, from a run's TensorBoard events: per-term
    episode sums (``reward_terms/*``) divided by the episode length (per-step means), the total,
    fitness, episode length and (``success=True``) the success rate. Falls back to progress.csv
    (the total only) when there are no events. Empty dict if no episode ever finished."""
    run_dir = Path(run_dir)
    scalars = _tb_scalars(run_dir / "tb")
    terms = {tag.split("/", 1)[1]: v for tag, v in scalars.items() if tag.startswith("reward_terms/")}
    if terms and "episode/length" in scalars:
        series = {"terms": terms, "length": scalars["episode/length"], "total": scalars.get("episode/return", {}),
                  "fitness": scalars.get("episode/fitness_mean", {}), "success": scalars.get("episode/success", {})}
    else:
        from robreward.eval.plots import read_progress

        progress = read_progress(run_dir / "progress.csv")
        if "return_mean" not in progress:
            return {}
        by_step = lambda column: {s: v for s, v in zip(progress["step"], progress[column]) if v == v}  # noqa: E731
        series = {"terms": {"total": by_step("return_mean")}, "length": by_step("episode_length"),
                  "total": by_step("return_mean"), "fitness": by_step("fitness_mean"),
                  "success": by_step("success_rate")}
    steps = sorted(set(series["length"]).intersection(*[set(v) for v in series["terms"].values()]))
    if not steps:
        return {}
    length = [max(series["length"][s], 1.0) for s in steps]
    per_step = lambda values: [values[s] / n for s, n in zip(steps, length)]  # noqa: E731
    stats = {"terms": {name: per_step(values) for name, values in series["terms"].items()},
             "episode_length": [series["length"][s] for s in steps]}
    if set(steps) <= set(series["total"]):
        stats["total"] = per_step(series["total"])
    keys = ("fitness", "success") if success else ("fitness",)
    stats.update({key: [series[key][s] for s in steps] for key in keys if set(steps) <= set(series[key])})
    return stats


def _tb_scalars(tb_dir: Path) -> dict[str, dict[float, float]]:
    if not tb_dir.is_dir():
        return {}
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: {float(e.step): float(e.value) for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
