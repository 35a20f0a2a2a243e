"""The README's plot: success of the shipped hand-reward and sparse-reward baselines per task.

Reads policies/<task>/eval.json (v0) or policies/v1/<task>/eval.json (--version v1) of the version's
tasks (scripts/baselines.py's VERSION_BUDGETS, in its order: a folder kept from an earlier task list,
such as policies/v1/humanoid-run, is not drawn) and writes a bar chart with the per-seed success rates
as dots (the bars are the means over seeds).

    .venv/bin/python benchmarks/plot_baselines.py --out docs/img/baselines-v0.png
    .venv/bin/python benchmarks/plot_baselines.py --version v1 --out docs/img/baselines-v1.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from baselines import VERSION_BUDGETS, dest_folder  # noqa: E402 - scripts/ is not a package


def load(version: str) -> list[tuple[str, dict]]:
    if version not in VERSION_BUDGETS:
        raise SystemExit(f"unknown baselines version {version!r}; versions: {', '.join(VERSION_BUDGETS)}")
    rows = []
    for task in VERSION_BUDGETS[version]:
        path = dest_folder(version, ROOT / "policies", task) / "eval.json"
        if path.is_file():
            rows.append((task, json.loads(path.read_text())))
    if not rows:
        raise SystemExit(f"no baselines {version} under {ROOT / 'policies'}: train them with `make baselines`")
    return rows


def per_seed(result: dict) -> list[float]:
    return [seed["success_rate"] for seed in result.get("per_seed", [])] or [result["success_rate"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="v0", help="v0 (policies/<task>) or v1 (policies/v1/<task>)")
    parser.add_argument("--out", default="docs/img/baselines-v0.png")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = load(args.version)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    for offset, key, label, color in ((-0.2, None, "hand reward", "tab:blue"),
                                      (0.2, "sparse", "sparse reward\n(task metric only)", "tab:gray")):
        results = [(r if key is None else r.get(key, {})) for _, r in rows]
        seeds = [per_seed(r) if r else [np.nan] for r in results]
        ax.bar(x + offset, [np.mean(s) for s in seeds], width=0.4, color=color, label=label)
        for i, values in enumerate(seeds):
            ax.plot([x[i] + offset] * len(values), values, "k.", markersize=3)
    ax.set_xticks(x, [task for task, _ in rows], rotation=20, ha="right")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"shipped PPO baselines {args.version}: mean over seeds (bars), each seed (dots)", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
