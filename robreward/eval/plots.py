"""Learning-curve PNGs from run progress.csv files (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from robreward.fileio import atomic_path

PANELS = (("hand_return_mean", "episode return under the hand reward"),
          ("return_mean", "episode return under each run's training reward"),
          ("success_rate", "success rate"))
"""(progress.csv column, y-axis label) per panel: the hand reward's return is comparable across runs;
the training reward's return is in each run's own units (robreward.rundir.PROGRESS_COLUMNS)."""


def read_progress(path) -> dict[str, np.ndarray]:
    """progress.csv -> {column: float array} (empty cells are NaN); {} if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    out = {}
    for col in rows[0]:
        vals = []
        for r in rows:
            try:
                vals.append(float(r.get(col)))
            except (TypeError, ValueError):
                vals.append(np.nan)
        out[col] = np.asarray(vals, dtype=np.float64)
    if "steps" not in out and "step" in out:  # the trainer's column name (robreward.rl.runner.CSV_FIELDS)
        out["steps"] = out["step"]
    return out


def mean_curve(curves: Sequence[Mapping[str, np.ndarray]], column: str):
    """Mean and std over seeds of `column` vs steps, on the first seed's step grid (others
    interpolated, cut to the steps every seed reached). Returns (steps, mean, std) or None."""
    usable = [c for c in curves if "steps" in c and column in c and np.isfinite(c[column]).any()]
    if not usable:
        return None
    cleaned = []
    for c in usable:
        ok = np.isfinite(c["steps"]) & np.isfinite(c[column])
        order = np.argsort(c["steps"][ok], kind="stable")
        cleaned.append((c["steps"][ok][order], c[column][ok][order]))
    end = min(s[-1] for s, _ in cleaned)
    grid = cleaned[0][0][cleaned[0][0] <= end]
    if len(grid) == 0:
        grid = cleaned[0][0][:1]
    ys = np.stack([np.interp(grid, s, y) for s, y in cleaned])
    return grid, ys.mean(0), ys.std(0)


def plot_learning_curves(runs: Sequence[tuple[str, Sequence[Mapping[str, np.ndarray]]]], path,
                         title: str | None = None) -> Path:
    """runs: (label, [progress dict per seed]) -> a PNG of the PANELS (draw_learning_curves)."""
    import matplotlib.pyplot as plt

    fig = draw_learning_curves(runs, title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def draw_learning_curves(runs: Sequence[tuple[str, Sequence[Mapping[str, np.ndarray]]]], title: str | None = None):
    """The figure: one panel per PANELS entry (hand-reward return, training-reward return, success
    rate), steps on x, one line per run: the mean over seeds, shaded +-1 std when several seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, curves) in enumerate(runs):
        color = colors[k % len(colors)]
        for ax, (col, _) in zip(axes, PANELS):
            res = mean_curve(curves, col)
            if res is None:
                continue
            x, m, s = res
            n = sum(1 for c in curves if col in c)
            ax.plot(x, m, color=color, label=f"{label} ({n} seed{'s' if n != 1 else ''})", lw=1.8)
            if n > 1:
                ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, lw=0)
    for ax, (col, name) in zip(axes, PANELS):
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if col == "success_rate":
            ax.set_ylim(-0.05, 1.05)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, f"no {col} in progress.csv", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
