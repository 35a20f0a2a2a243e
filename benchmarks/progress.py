"""Progress models from demos (issue 21): held-out quality per task and seed, the issue's PPO targets (hand vs
sparse vs sparse+progress at the shipped hand baseline's budget), shaped PPO on a task variant before and after
one-shot adaptation, and speed. Cells are resumable: each finished cell is saved in
benchmarks/results/progress.json at once (with the machine; cells another process saved are kept), and the
training runs of --targets/--adapt live under --target-root, where finished runs are skipped.

    python benchmarks/progress.py                      # quality cells: push, lift, drawer-open x seeds 0,1,2
    python benchmarks/progress.py --features obs-norms # the same with the obs-norms features
    python benchmarks/progress.py --targets --shaping 10,30@1                        # PPO targets, 3 tasks x 3 seeds
    python benchmarks/progress.py --targets --shaping 10,30@1 --features obs-norms --no-sparse
    python benchmarks/progress.py --targets --tasks lift --shaping 10,30@1 --features obs-norms-z --no-negatives --no-sparse
    python benchmarks/progress.py --targets --tasks lift --shaping 30@1 --features obs-norms-z --no-negatives --members 5 --no-sparse
    python benchmarks/progress.py --targets --tasks lift --shaping 30@1 --features obs-norms-z --no-negatives --demo-start
    python benchmarks/progress.py --targets --tasks lift --shaping 30@1 --features obs-norms-z --no-negatives --demo-start --demo-reset-fraction 0.1
    python benchmarks/progress.py --targets --tasks lift --shaping 30@1 --features obs-norms-z --no-negatives --demo-start --demo-reset-fraction 0 --bc-noise-std 0.3
    python benchmarks/progress.py --adapt --shaping 10,30@1                          # reach-beside, before/after
    python benchmarks/progress.py --inputs image --tasks push --seeds 0 --epochs 300   # image-input quality cells
    python benchmarks/progress.py --speed --tasks push     # frames/s of render+score; env-steps/s image shaping vs hand

Quality: fit on all expert + noisy episodes of a task with 25% of the successes and
failures held out (ProgressConfig defaults, state inputs), value-order correlation (Spearman of Φ vs time up to
the first success, mean and worst held-out episode) and the AUROC of final progress (held-out successes vs
failures). Image cells (--inputs image|both) fit on frames rendered from the demos (--camera, --image-size;
the default small CNN) and record the same metrics.
Targets (--targets): a state progress model fitted on 10 fresh expert + 10 noisy demos per task (--no-negatives: the
expert ones alone); hand, sparse
and each --shaping variant (W: progress:RUN,weight=W, pure potential-based shaping; W@G: gamma G, G=1 adds a
progress bonus) trained with the shipped hand baseline's config.yaml (worlds, PPO, budget) in one batched
process per task; success over 100 evaluation episodes and the steps to 80% training success.
--demo-start: every run of the cell (hand and sparse too) first clones the expert demos (the policy's noise std then
--bc-noise-std) and starts 0.25 (or --demo-reset-fraction; 0: cloning alone) of its training episodes at their states
(TrainConfig.init_from_demos, bc_noise_std, reset_from_demos; evaluation starts as the task does).
Speed cells (--speed): frames/s of render_batch + one forward pass of an image progress model over N worlds,
and env-steps/s of PPO training (a short budget) with hand vs hand+progress:RUN of an image model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

from robreward.envs.bench import machine_info  # noqa: E402
from robreward.fileio import atomic_write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "progress.json"
TASKS = ("push", "lift", "drawer-open")


def _load() -> dict:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"benchmark": "progress", "cells": {}}


def _save(results: dict) -> None:
    """Write ``results``, keeping the cells another process (a benchmark run beside this one) saved since."""
    cells = results.setdefault("cells", {})  # updated in place: main() keeps adding to this dict
    for key, cell in _load().get("cells", {}).items():
        cells.setdefault(key, cell)
    results.update({"machine": machine_info(), "date": time.strftime("%Y-%m-%d")})
    atomic_write_json(RESULTS, results, indent=1)


def quality_cell(task: str, seed: int, inputs: str = "state", epochs: int | None = None, camera: str = "",
                 image_size: int = 64, features: str = "") -> dict:
    from robreward.feedback.progress import ProgressConfig, fit_progress

    start = time.perf_counter()
    extra = {} if epochs is None else {"epochs": epochs}
    if features:
        extra["features"] = features
    if inputs != "state":
        extra.update(camera=camera, image_size=image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ProgressConfig(task=task, demos=(str(ROOT / f"demos/{task}-expert.h5"),),
                                negatives=(str(ROOT / f"demos/{task}-noisy.h5"),), seed=seed, inputs=inputs, **extra)
        cache = ROOT / "runs" / "bench-progress-frames" if config.uses_image else None
        _, report = fit_progress(config, cache_dir=cache)
    held = report["held_out"]
    image = {"camera": config.camera or "default", "image_size": config.image_size, "encoder": config.encoder or
             "SmallCNN", "batch": config.batch} if config.uses_image else {}
    return {"kind": "quality", "task": task, "seed": seed, "inputs": inputs, "epochs": config.epochs, **image,
            "features": config.features, "mix_weight": config.mix_weight,
            "value_order_correlation": held["value_order_correlation"],
            "value_order_correlation_min": held["value_order_correlation_min"],
            "final_progress_auroc": held["final_progress_auroc"], "held_out_successes": held["successes"],
            "held_out_failures": held["failures"], "train_value_order_correlation": report["train"]["value_order_correlation"],
            "fit_seconds": round(time.perf_counter() - start, 1)}


def _image_run(task: str, image_size: int, camera: str) -> Path:
    """A small image progress run for the speed cells (speed does not depend on the weights: 20 epochs)."""
    from robreward.envs.registry import get_task
    from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

    run = ROOT / "runs" / f"bench-progress-speed-{task}-{image_size}-{camera or 'default'}"
    if not (run / "progress.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = ProgressConfig(task=task, demos=(str(ROOT / f"demos/{task}-expert.h5"),), inputs="image",
                                    epochs=20, image_size=image_size, camera=camera)
            net, report = fit_progress(config, cache_dir=run)
        save_progress_run(run, net, config, get_task(task), report)
    return run


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def render_score_cell(task: str, num_envs: int, image_size: int, camera: str, repeats: int = 20,
                      backend: str = "cpu", device: str = "cpu") -> dict:
    """frames/s of one render_batch call over all worlds + one forward pass of the image progress model (on the
    warp backend with a model camera: MuJoCo Warp's batch renderer, frames and model on ``device``)."""
    import torch

    import robreward
    from robreward.feedback.progress import load_progress_run
    from robreward.feedback.vision.frames import render_batch

    run = _image_run(task, image_size, camera)
    net, _, spec = load_progress_run(run)
    net.to(device)
    env = robreward.make(task, num_envs, seed=0, backend=backend, device=device)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    times = {"render": 0.0, "score": 0.0}
    with torch.no_grad():
        for k in range(repeats + 2):
            env.step((torch.rand(num_envs, env.act_dim, generator=gen) * 2 - 1).to(env.device))
            _sync(device)
            t0 = time.perf_counter()
            frames = render_batch(env, size=image_size, camera=camera or None)
            _sync(device)
            t1 = time.perf_counter()
            net.phi(None, frames)
            _sync(device)
            t2 = time.perf_counter()
            if k >= 2:  # the first calls build the GL context and warm the caches
                times["render"] += t1 - t0
                times["score"] += t2 - t1
    n = repeats * num_envs
    from robreward.feedback.vision.frames import NAMED_VIEWS

    one_world = {}
    if backend == "cpu":
        view = NAMED_VIEWS[camera](env.model) if camera in NAMED_VIEWS else (camera or None)
        per_world_egl = time.perf_counter()
        for _ in range(3):  # the same frames, one world (one readPixels) at a time
            env.render(list(range(num_envs)), image_size, image_size, view)
        per_world_egl = (time.perf_counter() - per_world_egl) / 3
        one_world = {"one_world_at_a_time_egl_frames_per_s": round(num_envs / per_world_egl, 1)}
    env.close()
    return {"kind": "render_score", "task": task, "num_envs": num_envs, "image_size": image_size,
            "backend": backend, "device": device, **_device_name(device),
            "camera": camera or "default", "frames": n, "torch_threads": torch.get_num_threads(),
            "frames_per_s": round(n / (times["render"] + times["score"]), 1),
            "render_frames_per_s": round(n / times["render"], 1), "score_frames_per_s": round(n / times["score"], 1),
            **one_world}


def _device_name(device: str) -> dict:
    import torch

    return {"device_name": torch.cuda.get_device_name(torch.device(device))} if device.startswith("cuda") else {}


def train_speed_cell(task: str, reward: str, steps: int, num_envs: int, seed: int = 0, backend: str = "cpu",
                     device: str = "cpu") -> dict:
    """env-steps/s of PPO training for ``steps`` env steps (no evaluation)."""
    from robreward.rl.config import TrainConfig
    from robreward.rl.runner import train

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(task=task, reward=reward, steps=steps, seed=seed, num_envs=num_envs, backend=backend,
                             device=device, out=str(Path(tmp) / "run"), progress=False)
        start = time.perf_counter()
        summary = train(config)
        wall = time.perf_counter() - start
    return {"kind": "train_speed", "task": task, "reward": reward, "steps": int(summary["steps"]),
            "num_envs": num_envs, "backend": backend, "device": device, **_device_name(device),
            "seconds": round(wall, 1), "train_seconds": round(float(summary["seconds"]), 1),
            "env_steps_per_s": round(int(summary["steps"]) / float(summary["seconds"]), 1)}


# -- the PPO targets: sparse + progress shaping against the hand reward, like for like ----------
TARGET_DEMOS = 10  # the issue: 10 expert demos (+10 noisy ones as negatives)


def _target_model(task: str, root: Path, demos: int = TARGET_DEMOS, features: str = "", negatives: bool = True,
                  members: int = 1) -> Path:
    """A state progress run fitted on ``demos`` fresh expert episodes (seed 100) + as many noisy ones (noise 0.6,
    seed 101; with ``negatives``), recorded into ``root`` once (the shipped demo files are 20 episodes each)."""
    from robreward.demos.record import record
    from robreward.envs.registry import get_task
    from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

    run = root / task / ("model" + (f"-{features}" if features else "") + ("" if demos == TARGET_DEMOS else f"-{demos}")
                         + ("" if negatives else "-noneg") + ("" if members == 1 else f"-m{members}"))
    if (run / "progress.json").is_file():
        return run
    files = root / task / "demos"
    files.mkdir(parents=True, exist_ok=True)
    expert, noisy = files / f"expert{demos}.h5", files / f"noisy{demos}.h5"
    for path, seed, noise in ((expert, 100, 0.0), (noisy, 101, 0.6)):
        if not path.is_file():
            record(task, "expert", demos, path, seed=seed, noise=noise, append=False, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ProgressConfig(task=task, demos=(str(expert),), negatives=(str(noisy),) if negatives else (), seed=0,
                                features=features or "observation", members=members)  # the benchmark's default: the observation
        net, report = fit_progress(config)
    save_progress_run(run, net, config, get_task(task), report)
    return run


def steps_to(csv_path: Path, level: float = 0.8, window: int = 5) -> int | None:
    """The first env step at which the mean training success of the last ``window`` logged updates reaches
    ``level`` (progress.csv's success_rate: episodes that ended in that update); None if it never does."""
    import csv

    recent: list[float] = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("success_rate") in ("", None):
                continue
            recent = (recent + [float(row["success_rate"])])[-window:]
            if len(recent) == window and sum(recent) / window >= level:
                return int(row["step"])
    return None


def shaping_specs(items: str, model: Path) -> dict[str, str]:
    """"10,30@1" -> {label: reward spec}: W is progress:RUN,weight=W (pure potential-based shaping with the PPO's
    γ); W@G also sets the shaping's gamma=G (G=1: the potential term plus a (1 - γ_PPO) W Φ(s') bonus)."""
    out = {}
    for item in items.split(","):
        weight, _, gamma = item.strip().partition("@")
        w = float(weight)
        tail, label = (f",gamma={float(gamma):g}", f"w={w:g},gamma={float(gamma):g}") if gamma else ("", f"w={w:g}")
        out[f"sparse+progress({label})"] = f"sparse+progress:{model},weight={w:g}{tail}"
    return out


def _baseline_config(task: str):
    """The shipped hand baseline's TrainConfig of ``task`` (worlds, PPO settings, budget)."""
    from robreward.codegen.finals import baseline_train_config

    found = baseline_train_config(task)
    if found is None:
        raise SystemExit(f"no shipped baseline config.yaml for {task}")
    return found[0]


def _train_table(task: str, labels: dict[str, str], seeds: list[int], run_dir, budget: int, base,
                 eval_episodes: int, demo_start: dict | None = None) -> dict:
    """Train every reward of ``labels`` ({label: reward spec}) on every seed, into ``run_dir(label, seed)``, with
    ``base``'s worlds and PPO, at once in one batched process (finished runs are skipped; ``demo_start``: every run's
    TrainConfig demo fields, see demo_start_config); returns {label: [per-seed {seed, success_rate, fitness,
    steps_to_80}]}."""
    from robreward.codegen.training import train_candidates

    cells = [(label, reward, seed, run_dir(label, seed)) for label, reward in labels.items() for seed in seeds]
    todo = sum(not (d / "eval.json").is_file() for *_, d in cells)
    print(f"{task}: {len(cells)} runs ({todo} to train), {budget:,} steps x {base.num_envs} worlds each", flush=True)
    if todo:
        train_candidates(task, [c[1] for c in cells], budget, [c[2] for c in cells], [c[3] for c in cells],
                         num_envs=base.num_envs, eval_episodes=eval_episodes, ppo=base.ppo, backend=base.backend,
                         demo_start=demo_start)
    table: dict[str, list] = {}
    for label, _, seed, d in cells:
        if not (d / "eval.json").is_file():
            reason = (d / "failed.json").read_text() if (d / "failed.json").is_file() else "no eval.json"
            raise SystemExit(f"{d}: training failed: {reason}")
        result = json.loads((d / "eval.json").read_text())
        table.setdefault(label, []).append({"seed": seed, "success_rate": result["success_rate"],
                                            "fitness": result["fitness_mean"], "steps_to_80": steps_to(d / "progress.csv")})
    return table


def target_cells(task: str, seeds: list[int], shaping: str, root: Path, eval_episodes: int = 100,
                 steps: int | None = None, sparse: bool = True, features: str = "", demos: int = TARGET_DEMOS,
                 negatives: bool = True, members: int = 1, demo_start: bool = False,
                 demo_reset_fraction: float = 0.25, bc_noise_std: float = 0.1) -> dict:
    """hand, sparse, and sparse+progress:RUN for each item of ``shaping`` (shaping_specs), on each seed, with the shipped hand baseline's
    config.yaml (worlds, PPO settings, budget), trained at once in one batched process (resumable: finished runs
    are skipped). ``demo_start``: every run (hand and sparse too) first clones the expert demos the model was fitted
    on, with the policy's noise std ``bc_noise_std`` after cloning, and starts ``demo_reset_fraction`` of its training
    episodes at their states (0: cloning alone; demo_start_config).
    Returns {label: [per-seed {seed, success_rate, fitness, steps_to_80}]}."""
    base = _baseline_config(task)
    budget = steps or base.steps
    model = _target_model(task, root, demos=demos, features=features, negatives=negatives, members=members)
    meta = json.loads((model / "progress.json").read_text())
    tags = (([features] if features else []) + ([f"{demos} demos"] if demos != TARGET_DEMOS else [])
            + ([] if negatives else ["no negatives"]) + ([] if members == 1 else [f"{members} members"]))
    shaped = {(label[:-1] + "".join(f",{t}" for t in tags) + ")"): spec
              for label, spec in shaping_specs(shaping, model).items()}
    labels = {"hand": "hand", **({"sparse": "sparse"} if sparse else {}), **shaped}
    start_tag = demo_start_tag(demo_start, demo_reset_fraction, bc_noise_std)

    def run_dir(label: str, seed: int) -> Path:
        slug = label.replace("+", "_").replace("(", "_").replace(")", "").replace("=", "").replace(",", "_")
        return root / task / f"s{budget}" / start_tag / slug.replace(" ", "_") / f"seed_{seed}"

    expert = root / task / "demos" / f"expert{demos}.h5"  # recorded by _target_model
    start = time.perf_counter()
    fields = demo_start_config(expert, demo_reset_fraction, bc_noise_std) if demo_start else None
    table = _train_table(task, labels, seeds, run_dir, budget, base, eval_episodes, demo_start=fields)
    return {"task": task, "steps": budget, "num_envs": base.num_envs, "ppo": "the shipped hand baseline's config.yaml",
            "progress_model": str(model.relative_to(ROOT)) if model.is_relative_to(ROOT) else str(model),
            "progress_features": meta["config"].get("features") or "observation",
            "progress_members": meta["config"].get("members", 1),
            "progress_mix_weight": meta["config"].get("mix_weight", 0.0),
            "progress_held_out": {k: meta["metrics"]["held_out"][k] for k in
                                  ("value_order_correlation", "value_order_correlation_min", "final_progress_auroc")},
            "demos": f"{demos} expert (seed 100)" + (f" + {demos} noisy (noise 0.6, seed 101)" if negatives else
                                                     " (no negatives)") + ", 25% held out",
            **({"demo_start": describe_demo_start(demos, demo_reset_fraction, bc_noise_std)} if demo_start else {}),
            "eval_episodes": eval_episodes, "table": table, "seconds": round(time.perf_counter() - start, 1)}


def demo_start_config(expert, fraction: float, bc_noise_std: float) -> dict:
    """Every run's TrainConfig demo fields: clone ``expert`` (noise std ``bc_noise_std`` after), and start
    ``fraction`` of the training episodes at its states (none at 0: cloning alone)."""
    fields = {"init_from_demos": str(expert), "bc_noise_std": bc_noise_std}
    if fraction > 0:
        fields.update(reset_from_demos=str(expert), demo_reset_fraction=fraction)
    return fields


def describe_demo_start(demos: int, fraction: float, bc_noise_std: float) -> str:
    clone = f"every run clones the {demos} expert demos (TrainConfig.init_from_demos; noise std {bc_noise_std:g} after)"
    if fraction == 0:
        return clone + " and starts every training episode as the task does (cloning alone)"
    return (clone + f" and starts {fraction:g} of its training episodes at their states up to the first success "
            "(reset_from_demos); evaluation starts from the task's own resets")


def demo_start_tag(demo_start: bool, fraction: float, bc_noise_std: float = 0.1) -> str:
    """The cell's folder and key part of its demo start: "" without one, "demo-start" at the default 0.25 (the cells
    measured before the fraction was a flag), "demo-start-0.1" at another fraction, "demo-clone" at 0 (cloning
    alone); "-noise0.3" added where the cloned policy's noise std is not TrainConfig's default 0.1."""
    if not demo_start:
        return ""
    tag = "demo-clone" if fraction == 0 else "demo-start" if fraction == 0.25 else f"demo-start-{fraction:g}"
    return tag if bc_noise_std == 0.1 else f"{tag}-noise{bc_noise_std:g}"


def summarize_targets(cell: dict, sparse_v0: float | None, hand_shipped: float | None = None) -> dict:
    """Mean success per reward, its ratio to hand, the issue's test (>= 0.9 of hand), steps to 80%, and the
    shipped v0 sparse baseline's success (trained with the same config). In a --demo-start cell the cell's hand runs
    start from the demos too; the issue's hand baseline is the shipped one (``hand_shipped``, no start), so each row
    also gets its ratio to that and the test against it."""
    import statistics

    hand = statistics.mean(r["success_rate"] for r in cell["table"]["hand"])
    out = {}
    for label, rows in cell["table"].items():
        mean = statistics.mean(r["success_rate"] for r in rows)
        reached = [r["steps_to_80"] for r in rows if r["steps_to_80"] is not None]
        out[label] = {"success": [r["success_rate"] for r in rows], "success_mean": round(mean, 3),
                      "ratio_to_hand": round(mean / hand, 3) if hand > 0 else None,
                      "meets_0.9_of_hand": bool(hand > 0 and mean >= 0.9 * hand),
                      "steps_to_80": [r["steps_to_80"] for r in rows],
                      "steps_to_80_mean_of_reached": round(statistics.mean(reached)) if reached else None}
        if "demo_start" in cell and hand_shipped:
            out[label].update({"ratio_to_shipped_hand": round(mean / hand_shipped, 3),
                               "meets_0.9_of_shipped_hand": bool(mean >= 0.9 * hand_shipped)})
    out["sparse_shipped_v0"] = sparse_v0
    if "demo_start" in cell:
        out["hand_shipped"] = hand_shipped
    return out


# -- one-shot adaptation: the shaped policy's success on a task variant, before and after adapting -------
VARIANT = ROOT / "examples" / "tasks" / "reach-beside"


def adapt_cells(seeds: list[int], shaping: str, root: Path, steps: int | None = None,
                eval_episodes: int = 100) -> dict:
    """A reach progress model (the shipped reach demos) shapes PPO on reach-beside (the target 15 cm beside the
    marker) as it is ("before": the same net, saved as a run of the variant) and after `progress adapt` on one
    variant demo ("after"), beside sparse alone, on each seed, with reach's baseline config (batched)."""
    from robreward.cli.main import main as cli
    from robreward.demos.record import record
    from robreward.envs.registry import get_task
    from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

    variant = get_task(str(VARIANT))
    before, after, demo = root / "before", root / "after", root / "beside-1.h5"
    if not (before / "progress.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = ProgressConfig(task="reach", demos=(str(ROOT / "demos/reach-expert.h5"),),  # the variant's
                                    negatives=(str(ROOT / "demos/reach-noisy.h5"),), seed=0,  # goal is a direction:
                                    features="observation")  # obs-norms (distances) cannot express it
            net, report = fit_progress(config, get_task("reach"))
        save_progress_run(root / "reach", net, config, get_task("reach"), report)
        save_progress_run(before, net, config, variant, report, extra={"note": "the reach model, not adapted"})
    if not demo.is_file():
        record(str(VARIANT), "expert", 1, demo, seed=5, append=False, progress=False)
    if not (after / "progress.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cli(["progress", "adapt", str(root / "reach"), "--demos", str(demo), "--task", str(VARIANT),
                    "--out", str(after)]) != 0:
                raise SystemExit("progress adapt failed")
    base = _baseline_config("reach")
    budget = steps or base.steps
    labels = {"sparse": "sparse"}
    for name, model in (("before", before), ("after", after)):
        labels.update({label.replace("sparse+progress", f"sparse+progress[{name}]"): spec
                       for label, spec in shaping_specs(shaping, model).items()})

    def run_dir(label: str, seed: int) -> Path:
        return root / f"s{budget}" / "".join(c if c.isalnum() else "_" for c in label) / f"seed_{seed}"

    start = time.perf_counter()
    table = _train_table(str(VARIANT), labels, seeds, run_dir, budget, base, eval_episodes)
    summary = {label: {"success": [r["success_rate"] for r in rows],
                       "success_mean": round(sum(r["success_rate"] for r in rows) / len(rows), 3),
                       "steps_to_80": [r["steps_to_80"] for r in rows]} for label, rows in table.items()}
    return {"task": "examples/tasks/reach-beside", "base_model": "reach (shipped reach demos, seed 0)",
            "adapt_demo": "one expert episode of the variant (seed 5)", "steps": budget, "num_envs": base.num_envs,
            "ppo": "reach's shipped hand baseline config.yaml", "eval_episodes": eval_episodes, "table": table,
            "summary": summary, "seconds": round(time.perf_counter() - start, 1)}


def _record(results: dict, key: str, kind: str, cell: dict) -> None:
    """Save a finished training cell under ``key`` and print its summary."""
    results.setdefault("cells", {})[key] = {"kind": kind, **cell}
    _save(results)
    print(key, json.dumps(cell["summary"]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--inputs", default="state", help="quality cells: state, image, both, or a comma list")
    parser.add_argument("--epochs", type=int, default=None, help="quality cells: training epochs (default config's)")
    parser.add_argument("--camera", default="top", help="image inputs: camera (default top)")
    parser.add_argument("--image-size", type=int, default=64, help="image inputs: frame side (default 64)")
    parser.add_argument("--speed", action="store_true", help="speed cells only: render+score, image shaping vs hand")
    parser.add_argument("--num-envs", type=int, default=32, help="speed cells: worlds")
    parser.add_argument("--speed-steps", type=int, default=8192, help="speed cells: PPO env steps per training run")
    parser.add_argument("--backend", default="cpu", help="speed cells: cpu (EGL frames) or warp (MuJoCo Warp's batch "
                        "renderer for a model camera: --camera '' takes the task's)")
    parser.add_argument("--device", default="cpu", help="speed cells: torch device (cuda:0 with --backend warp)")
    parser.add_argument("--targets", action="store_true",
                        help="the issue's PPO targets: hand vs sparse+progress (state) at the shipped baseline's budget")
    parser.add_argument("--shaping", default="10",
                        help="--targets: progress shaping runs, comma list of W (weight W, the PPO's gamma: pure "
                             "potential-based shaping) or W@G (also gamma G; G=1 adds a (1 - gamma_PPO) W Φ(s') bonus)")
    parser.add_argument("--adapt", action="store_true",
                        help="shaped PPO on reach-beside with the reach model before and after one-shot adaptation")
    parser.add_argument("--features", default="", help="state progress models (quality cells, --targets): features, e.g. obs-norms")
    parser.add_argument("--target-demos", type=int, default=TARGET_DEMOS,
                        help=f"--targets: expert (and noisy) demos the model is fitted on (default {TARGET_DEMOS})")
    parser.add_argument("--no-sparse", action="store_true", help="--targets: no sparse-alone runs")
    parser.add_argument("--members", type=int, default=1,
                        help="--targets: the progress model is an ensemble of this many nets (progress fit --members)")
    parser.add_argument("--no-negatives", action="store_true",
                        help="--targets: fit the progress model on the expert demos alone (no noisy ones)")
    parser.add_argument("--target-steps", type=int, default=None, help="--targets: env steps (default the baseline's)")
    parser.add_argument("--demo-start", action="store_true",
                        help="--targets: every run (hand, sparse, shaped) clones the expert demos first and starts 0.25 "
                             "(--demo-reset-fraction) of its training episodes at their states")
    parser.add_argument("--demo-reset-fraction", type=float, default=0.25,
                        help="--demo-start: the share of training episodes that start at a demo state, in [0, 1] "
                             "(0: cloning alone)")
    parser.add_argument("--bc-noise-std", type=float, default=0.1,
                        help="--demo-start: the cloned policy's noise std (TrainConfig.bc_noise_std, default 0.1)")
    parser.add_argument("--target-root", default=str(ROOT / "runs" / "bench" / "progress_targets"),
                        help="--targets: the runs and fitted models (resumable)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if not 0.0 <= args.demo_reset_fraction <= 1.0 or (args.demo_reset_fraction != 0.25 and not args.demo_start):
        parser.error("--demo-reset-fraction takes a share in [0, 1] (0: cloning alone), with --demo-start")
    if not args.bc_noise_std > 0 or (args.bc_noise_std != 0.1 and not args.demo_start):
        parser.error("--bc-noise-std takes a std > 0, with --demo-start")
    results = _load()
    cells = results.setdefault("cells", {})
    if args.adapt:
        cell = adapt_cells(seeds, args.shaping, Path(args.target_root) / "adapt", steps=args.target_steps)
        key = f"adapt/reach-beside/steps{cell['steps']}/seeds{','.join(map(str, seeds))}/{args.shaping}"
        _record(results, key, "adapt", cell)
        return
    if args.targets:
        from robreward.eval.baseline import load_baseline

        for task in args.tasks.split(","):
            cell = target_cells(task, seeds, args.shaping, Path(args.target_root), steps=args.target_steps,
                                sparse=not args.no_sparse, features=args.features, demos=args.target_demos,
                                negatives=not args.no_negatives, members=args.members, demo_start=args.demo_start,
                                demo_reset_fraction=args.demo_reset_fraction, bc_noise_std=args.bc_noise_std)
            base = load_baseline(task)
            cell["summary"] = summarize_targets(cell, (base.sparse or {}).get("success_rate") if base else None,
                                                base.hand.get("success_rate") if base else None)
            key = (f"targets/{task}/steps{cell['steps']}/seeds{','.join(map(str, seeds))}/{args.shaping}"
                   + (f"/{args.features}" if args.features else "")
                   + ("" if args.target_demos == TARGET_DEMOS else f"/demos{args.target_demos}")
                   + ("/no-negatives" if args.no_negatives else "")
                   + ("" if args.members == 1 else f"/members{args.members}")
                   + (f"/{demo_start_tag(args.demo_start, args.demo_reset_fraction, args.bc_noise_std)}"
                      if args.demo_start else ""))
            _record(results, key, "targets", cell)
        return
    if args.speed:
        for task in args.tasks.split(","):
            where = "" if args.backend == "cpu" else f"/{args.backend}-{args.device}"
            key = f"speed/render_score/{task}/n{args.num_envs}/px{args.image_size}/{args.camera or 'default'}{where}"
            if key not in cells:
                cells[key] = render_score_cell(task, args.num_envs, args.image_size, args.camera,
                                               backend=args.backend, device=args.device)
                _save(results)
            print(key, json.dumps(cells[key]))
            run = _image_run(task, args.image_size, args.camera)
            for reward in ("hand", f"hand+progress:{run}"):
                label = "hand" if reward == "hand" else "hand+progress(image)"
                key = f"speed/train/{task}/{label}/n{args.num_envs}/steps{args.speed_steps}{where}"
                if key not in cells:
                    cells[key] = {**train_speed_cell(task, reward, args.speed_steps, args.num_envs,
                                                     backend=args.backend, device=args.device),
                                  "reward": label, "image_size": args.image_size}
                    _save(results)
                print(key, json.dumps(cells[key]))
        return
    for inputs in args.inputs.split(","):
        for task in args.tasks.split(","):
            for seed in seeds:
                # cells from before the mixed-state negatives (mix) and --features keep their keys
                key = f"quality/{task}/seed{seed}/mix{('/' + args.features) if args.features else ''}" \
                    if inputs == "state" else \
                    f"quality/{inputs}/{task}/{args.camera or 'default'}/px{args.image_size}/e{args.epochs}/seed{seed}"
                if key not in cells:
                    cells[key] = quality_cell(task, seed, inputs, args.epochs if inputs != "state" else None,
                                              args.camera, args.image_size, args.features if inputs == "state" else "")
                    _save(results)
                print(key, json.dumps(cells[key]))


if __name__ == "__main__":
    main()
