"""Progress models from demos (issue 21): held-out quality per task and seed, and optionally one short PPO
comparison on push, sparse vs sparse+progress. Cells are resumable: each finished cell is saved in
benchmarks/results/progress.json at once (with the machine) and skipped on the next run.

    python benchmarks/progress.py                      # quality cells: push, lift, drawer-open x seeds 0,1,2
    python benchmarks/progress.py --ppo --steps 200000 --seeds 0   # + PPO sparse vs sparse+progress on push
    python benchmarks/progress.py --inputs image --tasks push --seeds 0 --epochs 300   # image-input quality cells
    python benchmarks/progress.py --speed --tasks push     # frames/s of render+score; env-steps/s image shaping vs hand

Quality: fit on all expert + noisy episodes of a task with 25% of the successes and
failures held out (ProgressConfig defaults, state inputs), value-order correlation (Spearman of Φ vs time up to
the first success, mean and worst held-out episode) and the AUROC of final progress (held-out successes vs
failures). Image cells (--inputs image|both) fit on frames rendered from the demos (--camera, --image-size;
the default small CNN) and record the same metrics. Speed cells (--speed): frames/s of render_batch + one
forward pass of an image progress model over N worlds, and env-steps/s of PPO training (a short budget) with
hand vs hand+progress:RUN of an image model. The issue's full target (3M steps x 3 seeds per task, image inputs) is not what this script runs by
default; --ppo records its own budget in each cell.
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
    results.update({"machine": machine_info(), "date": time.strftime("%Y-%m-%d")})
    atomic_write_json(RESULTS, results, indent=1)


def quality_cell(task: str, seed: int, inputs: str = "state", epochs: int | None = None, camera: str = "",
                 image_size: int = 64) -> dict:
    from robreward.feedback.progress import ProgressConfig, fit_progress

    start = time.perf_counter()
    extra = {} if epochs is None else {"epochs": epochs}
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
            "value_order_correlation": held["value_order_correlation"],
            "value_order_correlation_min": held["value_order_correlation_min"],
            "final_progress_auroc": held["final_progress_auroc"], "held_out_successes": held["successes"],
            "held_out_failures": held["failures"], "train_value_order_correlation": report["train"]["value_order_correlation"],
            "fit_seconds": round(time.perf_counter() - start, 1)}


def ppo_cell(reward: str, seed: int, steps: int, run: str | None) -> dict:
    from robreward.eval import evaluate
    from robreward.rl.config import TrainConfig
    from robreward.rl.runner import train

    with tempfile.TemporaryDirectory() as tmp:
        spec = reward.replace("RUN", run or "")
        config = TrainConfig(task="push", reward=spec, steps=steps, seed=seed, out=str(Path(tmp) / "run"), progress=False)
        start = time.perf_counter()
        train(config, evaluate=evaluate)
        result = json.loads((Path(tmp) / "run" / "eval.json").read_text())
    return {"kind": "ppo", "task": "push", "reward": reward, "seed": seed, "steps": steps,
            "success_rate": result["success_rate"], "return_mean": result["return_mean"],
            "seconds": round(time.perf_counter() - start, 1)}


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


def render_score_cell(task: str, num_envs: int, image_size: int, camera: str, repeats: int = 20) -> dict:
    """frames/s of one render_batch call over all worlds + one forward pass of the image progress model."""
    import torch

    import robreward
    from robreward.feedback.progress import load_progress_run
    from robreward.feedback.vision.frames import render_batch

    run = _image_run(task, image_size, camera)
    net, _, spec = load_progress_run(run)
    env = robreward.make(task, num_envs, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    times = {"render": 0.0, "score": 0.0}
    with torch.no_grad():
        for k in range(repeats + 2):
            env.step(torch.rand(num_envs, env.act_dim, generator=gen) * 2 - 1)
            t0 = time.perf_counter()
            frames = render_batch(env, size=image_size, camera=camera or None)
            t1 = time.perf_counter()
            net.phi(None, frames)
            t2 = time.perf_counter()
            if k >= 2:  # the first calls build the GL context and warm the caches
                times["render"] += t1 - t0
                times["score"] += t2 - t1
    n = repeats * num_envs
    from robreward.feedback.vision.frames import NAMED_VIEWS

    view = NAMED_VIEWS[camera](env.model) if camera in NAMED_VIEWS else (camera or None)
    per_world_egl = time.perf_counter()
    for _ in range(3):  # the same frames, one world (one readPixels) at a time
        env.render(list(range(num_envs)), image_size, image_size, view)
    per_world_egl = (time.perf_counter() - per_world_egl) / 3
    env.close()
    return {"kind": "render_score", "task": task, "num_envs": num_envs, "image_size": image_size,
            "camera": camera or "default", "frames": n, "torch_threads": torch.get_num_threads(),
            "frames_per_s": round(n / (times["render"] + times["score"]), 1),
            "render_frames_per_s": round(n / times["render"], 1), "score_frames_per_s": round(n / times["score"], 1),
            "one_world_at_a_time_egl_frames_per_s": round(num_envs / per_world_egl, 1)}


def train_speed_cell(task: str, reward: str, steps: int, num_envs: int, seed: int = 0) -> dict:
    """env-steps/s of PPO training for ``steps`` env steps (no evaluation)."""
    from robreward.rl.config import TrainConfig
    from robreward.rl.runner import train

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(task=task, reward=reward, steps=steps, seed=seed, num_envs=num_envs,
                             out=str(Path(tmp) / "run"), progress=False)
        start = time.perf_counter()
        summary = train(config)
        wall = time.perf_counter() - start
    return {"kind": "train_speed", "task": task, "reward": reward, "steps": int(summary["steps"]),
            "num_envs": num_envs, "seconds": round(wall, 1), "train_seconds": round(float(summary["seconds"]), 1),
            "env_steps_per_s": round(int(summary["steps"]) / float(summary["seconds"]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--ppo", action="store_true", help="also PPO on push: sparse vs sparse+progress")
    parser.add_argument("--steps", type=int, default=200_000, help="PPO env steps per run")
    parser.add_argument("--inputs", default="state", help="quality cells: state, image, both, or a comma list")
    parser.add_argument("--epochs", type=int, default=None, help="quality cells: training epochs (default config's)")
    parser.add_argument("--camera", default="top", help="image inputs: camera (default top)")
    parser.add_argument("--image-size", type=int, default=64, help="image inputs: frame side (default 64)")
    parser.add_argument("--speed", action="store_true", help="speed cells only: render+score, image shaping vs hand")
    parser.add_argument("--num-envs", type=int, default=32, help="speed cells: worlds")
    parser.add_argument("--speed-steps", type=int, default=8192, help="speed cells: PPO env steps per training run")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = _load()
    cells = results.setdefault("cells", {})
    if args.speed:
        for task in args.tasks.split(","):
            key = f"speed/render_score/{task}/n{args.num_envs}/px{args.image_size}/{args.camera or 'default'}"
            if key not in cells:
                cells[key] = render_score_cell(task, args.num_envs, args.image_size, args.camera)
                _save(results)
            print(key, json.dumps(cells[key]))
            run = _image_run(task, args.image_size, args.camera)
            for reward in ("hand", f"hand+progress:{run}"):
                label = "hand" if reward == "hand" else "hand+progress(image)"
                key = f"speed/train/{task}/{label}/n{args.num_envs}/steps{args.speed_steps}"
                if key not in cells:
                    cells[key] = {**train_speed_cell(task, reward, args.speed_steps, args.num_envs),
                                  "reward": label, "image_size": args.image_size}
                    _save(results)
                print(key, json.dumps(cells[key]))
        return
    for inputs in args.inputs.split(","):
        for task in args.tasks.split(","):
            for seed in seeds:
                key = f"quality/{task}/seed{seed}" if inputs == "state" else \
                    f"quality/{inputs}/{task}/{args.camera or 'default'}/px{args.image_size}/e{args.epochs}/seed{seed}"
                if key not in cells:
                    cells[key] = quality_cell(task, seed, inputs, args.epochs if inputs != "state" else None,
                                              args.camera, args.image_size)
                    _save(results)
                print(key, json.dumps(cells[key]))
    if args.ppo:
        from robreward.envs.registry import get_task
        from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run

        run = ROOT / "runs" / "bench-progress-push"
        if not (run / "progress.json").is_file():
            config = ProgressConfig(task="push", demos=(str(ROOT / "demos/push-expert.h5"),),
                                    negatives=(str(ROOT / "demos/push-noisy.h5"),), seed=0)
            net, report = fit_progress(config)
            save_progress_run(run, net, config, get_task("push"), report)
        for reward in ("sparse", "sparse+progress:RUN"):
            for seed in seeds:
                key = f"ppo/push/{reward.replace(':RUN', '')}/steps{args.steps}/seed{seed}"
                if key not in cells:
                    cells[key] = ppo_cell(reward, seed, args.steps, str(run))
                    _save(results)
                print(key, json.dumps(cells[key]))


if __name__ == "__main__":
    main()
