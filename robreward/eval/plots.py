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
                         title: str | None = None, summary: Sequence[Mapping] | None = None,
                         baselines: Mapping | None = None) -> Path:
    """runs: (label, [progress dict per seed]) -> a PNG of the PANELS (draw_learning_curves); with ``summary``
    (one dict per compared run, see draw_summary) a second row of panels: per-run success and fitness
    points with the hand and sparse baselines, and EPIC/STARC to the hand reward."""
    import matplotlib.pyplot as plt

    fig = draw_learning_curves(runs, title, summary=summary, baselines=baselines)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def draw_learning_curves(runs: Sequence[tuple[str, Sequence[Mapping[str, np.ndarray]]]], title: str | None = None,
                         summary: Sequence[Mapping] | None = None, baselines: Mapping | None = None):
    """The figure: one panel per PANELS entry (hand-reward return, training-reward return, success
    rate), steps on x, one line per run: the mean over seeds, shaded +-1 std when several seeds; with
    ``summary``, a second row drawn by draw_summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    if summary:
        fig, grid = plt.subplots(2, len(PANELS), figsize=(5 * len(PANELS), 8.6), dpi=100)
        axes = grid[0]
        draw_summary(grid[1], summary, baselines or {})
    else:
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


SUMMARY_PANELS = ("success_rate", "fitness_mean")


def draw_summary(axes, rows: Sequence[Mapping], baselines: Mapping) -> None:
    """Three panels, one x position per compared run (``rows``: {"label", "success_rate": [per seed],
    "fitness_mean": [per seed], "epic", "starc", "distance_note"}): success and fitness per seed (dots)
    and their mean (a bar), with the hand and sparse baselines as dashed and dotted lines
    (``baselines``: {"success_rate": (hand, sparse), "fitness_mean": (hand, sparse)}, from the one
    reference task; none drawn for several tasks); and EPIC and STARC to the hand reward as paired bars,
    "n/a" where undefined (the comparison's notes say why), "-" where not measured."""
    labels = [str(r["label"]) for r in rows]
    x = np.arange(len(rows))
    for ax, key in zip(axes, SUMMARY_PANELS):
        for i, row in enumerate(rows):
            vals = [v for v in (row.get(key) or []) if v is not None and np.isfinite(v)]
            if vals:
                ax.bar(i, float(np.mean(vals)), width=0.6, color="C0", alpha=0.35)
                ax.plot(np.full(len(vals), i, dtype=float), vals, "o", color="C0", ms=4)
        hand, sparse = (baselines.get(key) or (None, None))
        for value, style, name in ((hand, "--", "hand baseline"), (sparse, ":", "sparse baseline")):
            if value is not None and np.isfinite(value):
                ax.axhline(value, linestyle=style, color="black" if name.startswith("hand") else "grey", label=name)
        ax.set_ylabel(f"final {key.replace('_', ' ')} (dots: seeds)")
        if key == "success_rate":
            ax.set_ylim(-0.05, 1.05)
    dist = axes[2]
    for offset, metric, color in ((-0.2, "epic", "C1"), (0.2, "starc", "C2")):
        vals = [r.get(metric) for r in rows]
        known = [(i, v) for i, v in enumerate(vals) if v is not None]
        if known:
            dist.bar([i + offset for i, _ in known], [v for _, v in known], width=0.4, color=color,
                     label=f"{metric.upper()} to hand")
        for i, v in enumerate(vals):
            if v is not None:
                dist.text(i + offset, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=6, rotation=90)
            else:
                dist.text(i + offset, 0.02, "n/a" if rows[i].get("distance_note") else "-", ha="center",
                          va="bottom", fontsize=7, rotation=90)
    dist.set_ylim(0, 1.05)
    dist.set_ylabel("distance to the hand reward (0 = same)")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
