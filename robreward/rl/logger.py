"""What a training writes while it runs, per run directory: progress.csv (one row per update,
columns rundir.CSV_FIELDS, written through robreward.rundir.ProgressLog), TensorBoard scalars (tb/)
and the progress bar; and the per-update episode statistics they report (EpisodeTracker)."""

from __future__ import annotations

from pathlib import Path

import torch

from robreward.rundir import CSV_FIELDS, PROGRESS_FILE, RunDir


class EpisodeTracker:
    """Per-world running episode sums; completed episodes are folded into per-update means
    with masked tensor ops (no Python loop over worlds).

    groups: the worlds are that many equal consecutive groups (the batched trainer's candidates),
    each with its own means (``collect_groups``); one set of tensor ops serves them all.

    horizon: the task's episode length when its episode fitness is a share of the whole nominal episode
    (TaskSpec.fitness_over_episode_length): fitness_mean is then the fitness sum over episodes x horizon."""

    def __init__(self, num_envs: int, device, track_hand_terms: bool = True, groups: int = 1,
                 horizon: int | None = None):
        if groups < 1 or num_envs % groups:
            raise ValueError(f"{num_envs} worlds do not split into {groups} equal groups")
        self.device = device
        self.track_hand_terms = track_hand_terms
        self.running: dict[str, torch.Tensor] = {}
        self.done_sums: dict[str, torch.Tensor] = {}
        self.groups = groups
        self.episodes = torch.zeros(groups, device=device)
        self.num_envs = num_envs
        self.horizon = horizon
        self.last: list[dict[str, float]] = [{} for _ in range(groups)]
        self.group_running: dict[tuple[int, str], torch.Tensor] = {}  # add_terms: one group's own keys
        self.group_done_sums: dict[tuple[int, str], torch.Tensor] = {}

    def _add(self, key: str, value: torch.Tensor, done_f: torch.Tensor | None, reduce: str = "sum") -> None:
        if key not in self.running:
            self.running[key] = torch.zeros(self.num_envs, device=self.device)
            self.done_sums[key] = torch.zeros(self.groups, device=self.device)
        run = self.running[key]
        if reduce == "max":
            torch.maximum(run, value, out=run)
        else:
            run += value
        if done_f is not None:
            self.done_sums[key] += (run * done_f).view(self.groups, -1).sum(1)
            run *= 1.0 - done_f

    def step(self, reward, info, done, reward_terms: bool = True) -> torch.Tensor | None:
        """Fold in one env step. reward_terms=False: leave info["reward_terms"] out (each group's own
        terms then come through add_terms). Returns the done mask as floats (None: no world done)."""
        done_f = done.to(torch.float32) if bool(done.any()) else None
        if done_f is not None:
            self.episodes += done_f.view(self.groups, -1).sum(1)
        self._add("return", reward, done_f)
        self._add("hand_return", info["hand_reward"], done_f)
        self._add("length", torch.ones_like(reward), done_f)
        self._add("success", info["success"].to(torch.float32), done_f, reduce="max")
        self._add("fitness_sum", info["fitness"], done_f)
        if reward_terms:
            for name, value in info["reward_terms"].items():
                self._add(f"terms/{name}", value, done_f)
        if self.track_hand_terms:  # the hand terms too, when training on another reward
            for name, value in info["hand_terms"].items():
                self._add(f"hand_terms/{name}", value, done_f)
        return done_f

    def add_terms(self, group: int, terms: dict[str, torch.Tensor], done_f: torch.Tensor | None) -> None:
        """One group's own reward terms ({name: [num_envs / groups]}) for the step that step() just
        folded in (done_f: what it returned); they appear as terms/NAME in that group's means only."""
        per = self.num_envs // self.groups
        done_g = None if done_f is None else done_f[group * per:(group + 1) * per]
        for name, value in terms.items():
            key = (group, f"terms/{name}")
            if key not in self.group_running:
                self.group_running[key] = torch.zeros(per, device=self.device)
                self.group_done_sums[key] = torch.zeros((), device=self.device)
            run = self.group_running[key]
            run += value
            if done_g is not None:
                self.group_done_sums[key] += (run * done_g).sum()
                run *= 1.0 - done_g

    def collect(self) -> dict[str, float]:
        """Means over the episodes completed since the last call (or the previous means if none)."""
        if self.groups != 1:
            raise ValueError(f"this tracker has {self.groups} groups: use collect_groups()")
        return self.collect_groups()[0]

    def collect_groups(self) -> list[dict[str, float]]:
        """collect() for each group of worlds, in order."""
        counts = self.episodes.tolist()
        if any(c > 0 for c in counts):
            sums = {k: v.tolist() for k, v in self.done_sums.items()}
            own = {key: float(v) for key, v in self.group_done_sums.items()}
            for g, count in enumerate(counts):
                if count > 0:
                    last = {k: v[g] / count for k, v in sums.items()
                            if k != "fitness_sum" and not k.startswith("hand_terms/")}
                    last.update({key: v / count for (group, key), v in own.items() if group == g})
                    last.update({k: v[g] / count for k, v in sums.items() if k.startswith("hand_terms/")})
                    steps = count * self.horizon if self.horizon else sums["length"][g]
                    last["fitness_mean"] = sums["fitness_sum"][g] / max(steps, 1.0)
                    last["episodes"] = count
                    self.last[g] = last
            for v in (*self.done_sums.values(), *self.group_done_sums.values()):
                v.zero_()
            self.episodes.zero_()
        return [dict(last) for last in self.last]


class RunLog:
    """progress.csv, tb/ and the progress bar of one run directory. resume_step: a resumed run keeps
    the rows up to that step (the checkpoint it continues from) and drops the later ones; the bar
    starts there."""

    def __init__(self, run_dir: Path, total_steps: int, desc: str, progress: bool, resume_step: int | None = None):
        run = RunDir(run_dir)
        self.writer = _summary_writer(run.tb_dir, purge_step=resume_step)
        self.progress = run.open_progress(keep_until=resume_step)
        from tqdm import tqdm

        self.bar = tqdm(total=total_steps, initial=resume_step or 0, unit="step", unit_scale=True,
                        disable=not progress, desc=desc, dynamic_ncols=True, mininterval=1.0)

    def log(self, step, update, elapsed, steps_per_s, collect_s, stats, result, noise_std: float,
            invalid: tuple[int, int] = (0, 1)) -> dict:
        return _log(self.writer, self.progress, self.bar, step, update, elapsed, steps_per_s, collect_s, stats, result,
                    noise_std, invalid)

    def flush(self) -> None:
        self.progress.flush()
        self.writer.flush()

    def close(self) -> None:
        self.bar.close()
        self.progress.close()
        self.writer.close()


class _NullWriter:
    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def _summary_writer(tb_dir: Path, purge_step=None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV still has every number
        return _NullWriter()
    return SummaryWriter(str(tb_dir), purge_step=purge_step)


def _log(writer, progress, bar, step, update, elapsed, steps_per_s, collect_s, stats, result, noise_std: float,
         invalid: tuple[int, int] = (0, 1)) -> dict:
    """One progress.csv row and the TensorBoard scalars of an update; invalid: (world-steps whose
    reward was invalid in this update, world-steps of the update)."""
    invalid_share = invalid[0] / max(invalid[1], 1)
    row = {
        "step": step, "update": update, "time_s": round(elapsed, 3), "steps_per_s": round(steps_per_s, 1),
        "episodes": stats.get("episodes", 0), "return_mean": stats.get("return", ""),
        "hand_return_mean": stats.get("hand_return", ""), "success_rate": stats.get("success", ""),
        "fitness_mean": stats.get("fitness_mean", ""), "episode_length": stats.get("length", ""),
        "learning_rate": result.learning_rate, "kl": result.kl, "policy_loss": result.policy_loss,
        "value_loss": result.value_loss, "entropy": result.entropy, "noise_std": noise_std,
        "clip_fraction": result.clip_fraction, "reward_invalid": invalid[0], "reward_invalid_share": invalid_share,
    }
    progress.append(row)
    scalars = {"perf/steps_per_s": steps_per_s, "perf/collect_s": collect_s, "loss/policy": result.policy_loss,
               "loss/value": result.value_loss, "loss/entropy": result.entropy, "train/kl": result.kl,
               "train/learning_rate": result.learning_rate, "train/noise_std": noise_std,
               "train/reward_invalid": invalid[0], "train/reward_invalid_share": invalid_share}
    if stats:
        scalars.update({"episode/return": stats["return"], "episode/hand_return": stats["hand_return"],
                        "episode/success": stats["success"], "episode/length": stats["length"],
                        "episode/fitness_mean": stats["fitness_mean"]})
        scalars.update({f"reward_{k}": v for k, v in stats.items() if k.startswith(("terms/", "hand_terms/"))})
    for key, value in scalars.items():
        writer.add_scalar(key, value, step)
    bar.update(step - bar.n)
    if stats:
        bar.set_postfix(sps=f"{steps_per_s:,.0f}", ret=f"{stats['return']:.3g}", succ=f"{stats['success']:.2f}",
                        refresh=False)
    return row


__all__ = ["CSV_FIELDS", "PROGRESS_FILE", "EpisodeTracker", "RunLog"]
