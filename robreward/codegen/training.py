"""Training the candidates of the Eureka loop, and the statistics its reflection reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from robreward.fileio import atomic_write_json


def train_candidates(task: str, files: Sequence, steps: int, seed: int | Sequence[int], out_dirs: Sequence, *,
                     num_envs: int = 32, eval_episodes: int = 50, on_done: Callable[[int, str], None] | None = None,
                     batched: bool = True, ray: str | None = None, ppo=None, backend: str = "cpu",
                     demo_start: Mapping[str, Any] | None = None) -> list[str]:
    """Train one PPO policy per reward file into its run dir. A run with eval.json (or failed.json)
    is done and skipped. seed: one for all runs, or one per run (the final seeds of one reward; K
    candidates x M seeds, each file listed once per seed). ppo: the PPOConfig (default: today's
    defaults), e.g. a shipped baseline's for a like-for-like final; backend: the env backend; demo_start: every run's
    BC warm start and demo-state resets, as TrainConfig's fields (rl.config.DEMO_FIELDS, e.g. {"init_from_demos":
    FILE, "reset_from_demos": FILE, "demo_reset_fraction": 0.1}).

    With ``batched`` (the default), unfinished runs train at once in
    one K x num_envs-world env (each run its own world group and seed) (robreward.rl.multi.train_many; same run-dir layout, same
    per-candidate numbers up to float rounding): the fresh ones together, and the ones whose
    checkpoint stopped short of ``steps`` together by checkpoint step (a killed batched run, or the
    survivors of a successive-halving rung continued to a larger budget). A group of one, and a run
    whose checkpoint already has ``steps`` (killed during its evaluation), go to the sequential
    runner, which resumes from the checkpoint. With ``ray`` (an address, or "local" for a Ray instance on this
    machine) every unfinished run is a Ray task instead (one GPU each where the cluster has GPUs,
    else one CPU), resuming from its checkpoint like the sequential runner; the run directories
    must be on a file system every node sees. A candidate whose training raises gets
    ``failed.json`` in its run dir instead of stopping the others. A run directory that another process is
    training in (it holds the directory's lock, robreward.rundir) is left alone: not removed, trained, marked
    failed or reported to on_done; it has no eval.json when this returns."""
    from robreward.rl.config import demo_start_fields
    from robreward.rl.runner import LATEST
    from robreward.rundir import RunDir

    demo_start_fields(demo_start)  # a wrong key is the caller's error, not every candidate's failure
    out_dirs = [Path(out) for out in out_dirs]
    busy = {i for i, out in enumerate(out_dirs) if RunDir(out).in_use()}
    seeds = [int(seed)] * len(out_dirs) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != len(out_dirs) or len(files) != len(out_dirs):
        raise ValueError(f"need one reward file, seed and run dir per run: got {len(files)} file(s), "
                         f"{len(seeds)} seed(s), {len(out_dirs)} run dir(s)")
    if ray is not None:
        _train_on_ray(ray, task, files, steps, seeds, out_dirs, num_envs, eval_episodes, on_done, ppo, backend,
                      demo_start)
        return [str(out) for out in out_dirs]
    if batched:
        from robreward.eval.evaluate import evaluate
        from robreward.rl.multi import train_many

        groups: dict[int, list[int]] = {}  # checkpoint step (0: fresh) -> runs
        for i, out in enumerate(out_dirs):
            if not _finished(out) and i not in busy:
                at = checkpoint_step(out / "checkpoints" / LATEST)
                if at is not None and at < steps:
                    groups.setdefault(at, []).append(i)
        for at, members in sorted(groups.items()):
            if len(members) < 2:
                continue
            for i in members if at == 0 else ():
                if out_dirs[i].exists():
                    shutil.rmtree(out_dirs[i])  # stale logs of a killed run would mix with the new ones
            try:
                train_many(task, [_spec(files[i]) for i in members], steps, [seeds[i] for i in members],
                           [out_dirs[i] for i in members], num_envs_per_candidate=num_envs,
                           eval_episodes=eval_episodes, resume=at > 0, evaluate=evaluate, ppo=ppo, backend=backend,
                           demo_start=demo_start)
            except Exception as err:  # noqa: BLE001 - a failure of the shared trainer is every open candidate's record
                for i in members:
                    if not _finished(out_dirs[i]):
                        _write_failed(out_dirs[i], err)

    for index, (file, out) in enumerate(zip(files, out_dirs)):
        if index in busy:
            continue
        trained = (eval_episodes == 0 and (out / "policy.onnx").is_file()  # no evaluation: no eval.json to find
                   and (checkpoint_step(out / "checkpoints" / LATEST) or 0) >= steps)
        if not _finished(out) and not trained:
            try:
                train_one(_config(task, file, steps, seeds[index], out, num_envs, eval_episodes, ppo=ppo,
                                  backend=backend, demo_start=demo_start))
            except Exception as err:  # noqa: BLE001 - one candidate's failure is a record, not the end of the run
                _write_failed(out, err)
        if on_done is not None:
            on_done(index, str(out))
    return [str(out) for out in out_dirs]


def checkpoint_step(path: Path) -> int | None:
    """The step of a run's checkpoint: 0 without one, None if it cannot be read (the sequential
    runner then says why)."""
    if not path.is_file():
        return 0
    from robreward.rl.runner import load_checkpoint

    try:
        return int(load_checkpoint(path)["global_step"])
    except Exception:  # noqa: BLE001 - a broken checkpoint is train_one's error to report
        return None


def _spec(file) -> str:
    """A reward file's absolute path; any other reward spec ("hand", "sparse", "sparse+progress:RUN", ...: a
    benchmark's baseline or shaped reward beside the candidates) normalized as a run's config stores it."""
    from robreward.rewards.spec import normalize_reward_spec, parse_reward_spec

    try:
        return normalize_reward_spec(str(file))
    except (ValueError, OSError):  # the trainer's own check of the spec says what is wrong with it
        try:
            kind = parse_reward_spec(str(file)).kind
        except ValueError:
            kind = "file"
        return str(Path(file).resolve()) if kind == "file" else str(file)


def _finished(out: Path) -> bool:
    return (out / "eval.json").is_file() or (out / "failed.json").is_file()


def _write_failed(out: Path, err: BaseException) -> None:
    """failed.json with the error, unless the trainer already wrote its own (fuller) record of it."""
    from robreward.rl.validity import InvalidRewardError

    out.mkdir(parents=True, exist_ok=True)
    if isinstance(err, InvalidRewardError) and (out / "failed.json").is_file():
        return
    atomic_write_json(out / "failed.json", {"error": f"{type(err).__name__}: {err}"})


def _config(task, file, steps: int, seed: int, out: Path, num_envs: int, eval_episodes: int, device: str = "cpu",
            ppo=None, backend: str = "cpu", demo_start: Mapping[str, Any] | None = None):
    from robreward.rl.config import PPOConfig, TrainConfig, demo_start_fields

    return TrainConfig(task=str(task), reward=_spec(file), num_envs=num_envs, steps=steps, seed=seed,
                       out=str(out), eval_episodes=eval_episodes, progress=False, latest_every=5, device=device,
                       ppo=ppo or PPOConfig(), backend=backend, **demo_start_fields(demo_start))


def train_one(config) -> str:
    """One sequential PPO run (resumed from its checkpoint if it has one), evaluated into eval.json; its run dir."""
    from robreward.eval.evaluate import evaluate
    from robreward.rl.runner import LATEST, train

    out = Path(config.out)
    checkpoint = out / "checkpoints" / LATEST
    if not checkpoint.is_file() and out.exists():
        shutil.rmtree(out)  # killed before its first checkpoint: stale logs would mix with the new ones
    train(config, resume_from=checkpoint if checkpoint.is_file() else None, evaluate=evaluate)
    return str(out)


def _ray_train(config_dict: dict) -> str:
    """The body of a Ray task (module level: Ray pickles it by reference)."""
    from robreward.rl.config import TrainConfig
    from robreward.rundir import migrate_config

    return train_one(TrainConfig.from_dict(migrate_config(config_dict)))


def connect_ray(address: str):
    """The ray module, connected to ``address`` ("local": a Ray instance on this machine, started
    on first use; otherwise e.g. "ray://head:10001" or "auto")."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs the ray package: pip install 'robreward[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    return ray


def _train_on_ray(address: str, task, files, steps: int, seeds: list[int], out_dirs: list[Path], num_envs: int,
                  eval_episodes: int, on_done, ppo=None, backend: str = "cpu",
                  demo_start: Mapping[str, Any] | None = None) -> None:
    from robreward.rundir import SCHEMA_VERSION

    ray = connect_ray(address)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    remote = ray.remote(_ray_train).options(num_cpus=1, num_gpus=1 if gpus else 0)
    device = "cuda" if gpus else "cpu"
    pending = {}  # future -> run index
    for index, (file, out) in enumerate(zip(files, out_dirs)):
        if _finished(out):
            if on_done is not None:
                on_done(index, str(out))
        else:
            config = _config(task, file, steps, seeds[index], out, num_envs, eval_episodes, device, ppo, backend,
                             demo_start)
            pending[remote.remote({"schema_version": SCHEMA_VERSION, **config.to_dict()})] = index
    while pending:  # report each run as it finishes, in whatever order
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        try:
            ray.get(ready[0])
        except Exception as err:  # noqa: BLE001 - a RayTaskError wraps the candidate's own exception
            cause = getattr(err, "cause", None) or err
            _write_failed(out_dirs[index], cause)
        if on_done is not None:
            on_done(index, str(out_dirs[index]))


def training_stats(run_dir, *, success: bool = True) -> dict:
    """The per-update series reflection_text reads, from a run's TensorBoard events: per-term
    episode sums (``reward_terms/*``) divided by the episode length (per-step means), the total,
    fitness, episode length and (``success=True``) the success rate. Falls back to progress.csv
    (the total only) when there are no events. The invalid-reward counts (progress.csv's
    ``reward_invalid`` and ``reward_invalid_share``) come from progress.csv either way. Empty dict
    if no episode ever finished."""
    from robreward.eval.plots import read_progress

    run_dir = Path(run_dir)
    progress = read_progress(run_dir / "progress.csv")
    scalars = _tb_scalars(run_dir / "tb")
    terms = {tag.split("/", 1)[1]: v for tag, v in scalars.items() if tag.startswith("reward_terms/")}
    if terms and "episode/length" in scalars:
        series = {"terms": terms, "length": scalars["episode/length"], "total": scalars.get("episode/return", {}),
                  "fitness": scalars.get("episode/fitness_mean", {}), "success": scalars.get("episode/success", {})}
    else:
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
    stats.update(_invalid_reward_series(progress, steps))
    return stats


def _invalid_reward_series(progress: dict, steps: list[float]) -> dict:
    """progress.csv's per-update invalid-reward counts on the iterations of `steps`: each update's
    count goes to the first of `steps` at or after it (the last one takes the rest), so iterations
    without a finished episode lose none; the share is over the world-steps gathered the same way."""
    if "reward_invalid" not in progress or "step" not in progress or not steps:
        return {}
    rows = np.asarray(progress["step"], dtype=np.float64)
    counts = np.nan_to_num(np.asarray(progress["reward_invalid"], dtype=np.float64))
    world_steps = np.diff(rows, prepend=0.0)
    bucket = np.minimum(np.searchsorted(np.asarray(steps), rows, side="left"), len(steps) - 1)
    invalid = np.bincount(bucket, weights=counts, minlength=len(steps))
    done = np.bincount(bucket, weights=world_steps, minlength=len(steps))
    share = np.divide(invalid, done, out=np.zeros_like(invalid), where=done > 0)
    return {"reward_invalid": [int(v) for v in invalid], "reward_invalid_share": [float(v) for v in share]}


def _tb_scalars(tb_dir: Path) -> dict[str, dict[float, float]]:
    if not tb_dir.is_dir():
        return {}
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    import logging

    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    quiet = logging.getLogger("tensorboard")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a resumed run's purge of stale events is expected, not worth a warning
    try:
        events.Reload()
    finally:
        quiet.setLevel(level)
    return {tag: {float(e.step): float(e.value) for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
