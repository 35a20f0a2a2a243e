"""Vision rewards (issue 22): frames/s of batched render + CLIP scoring against the physics step rate, and the VLM
teacher's label throughput against a local fake vision endpoint.

    .venv/bin/python benchmarks/vision.py                          # reach, 64 and 256 worlds, tiny and ViT-B/32
    .venv/bin/python benchmarks/vision.py --task humanoid-kneel --envs 64 --sizes tiny --resume
    .venv/bin/python benchmarks/vision.py --backend warp --device cuda:0     # on a GPU (MuJoCo Warp renderer)

Writes benchmarks/results/vision.json (or --out) with the machine, after every cell (--resume skips the cells
already there). No pretrained weights can be downloaded here: the models are random CLIPModels of the tiny
and the ViT-B/32 shapes (random_models.save_random_model), so the numbers are the cost of scoring, not its
quality. A cell: robreward.cli.vision.bench_render_score (physics alone; render only; render + score; step +
render + score), each timed over --steps steps after one warm-up.

Training: env-steps/s of PPO on reach with 64 worlds, hand vs hand+clip (tiny model) scoring every step and
every 4th step (--train-steps, default 8192).

Labels: --labels N pairs of 224 px frames through the VLM teacher (two requests a pair) against a local fake
OpenAI-compatible server that answers at once: the teacher's own overhead (PNG encoding, hashing, the HTTP
client, the cache), not a model's latency. The cost per 1k labels uses gpt-4o's list price on the fake
server's usage counts (1,000 prompt + 10 completion tokens a request), which is not how a real endpoint
counts image tokens; with VLM_BENCH_MODEL (and VLM_BENCH_BASE_URL or OPENAI_API_KEY) set, the same is
measured on that endpoint, at its real cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from robreward.fileio import atomic_write_json

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parent
STEPS = {"tiny": 10, "vit-b32": 3}


def _fake_server() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = json.dumps(body["messages"][-1]["content"])
            answer = "1" if "Reply a single line" in text else "Image 2 is closer to the goal."
            data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": answer}}],
                               "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def label_throughput(pairs: int, model: str, base_url: str | None, size: int = 224) -> dict:
    """labels/s and USD per 1k labels of the VLM teacher on ``pairs`` random image pairs (none cached)."""
    from robreward.cli.vision import build_vlm_teacher

    spec = f"vlm:{model}" + (f",base_url={base_url}" if base_url else "")
    teacher = build_vlm_teacher(spec)
    rng = np.random.default_rng(0)
    firsts = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(pairs)]
    seconds = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(pairs)]
    with tempfile.TemporaryDirectory() as tmp:
        teacher.start(tmp)
        start = time.perf_counter()
        labels = teacher.label_images(firsts, seconds, "the robot arm touches the red ball")
        seconds_taken = time.perf_counter() - start
    cost = teacher.round_stats["vlm_cost_usd"] or 0.0
    return {"model": model, "endpoint": "local fake server" if base_url and "127.0.0.1" in base_url else
            (base_url or "api"), "pairs": pairs, "image_size": size, "seconds": seconds_taken,
            "labels_per_s": pairs / seconds_taken, "answered": sum(y is not None for y in labels),
            "usd_per_1k_labels": 1000 * cost / pairs}


def training_speed(task: str, envs: int, steps: int, rewards: list[str], root: Path) -> list[dict]:
    """env-steps/s of PPO training (robreward.rl.train, no evaluation) on each reward spec, one after another."""
    from robreward.rl import TrainConfig, train

    rows = []
    for i, reward in enumerate(rewards):
        config = TrainConfig(task=task, reward=reward, num_envs=envs, steps=steps, seed=0, out=str(root / f"run{i}"),
                             eval_episodes=0, progress=False)
        summary = train(config)
        rows.append({"reward": reward.replace(str(root), "MODEL_DIR"), "envs": envs, "steps": summary["steps"],
                     "seconds": summary["seconds"], "env_steps_per_s": summary["steps"] / summary["seconds"],
                     "load_avg": os.getloadavg()})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="reach")
    parser.add_argument("--envs", default="64,256", help="world counts, comma-separated")
    parser.add_argument("--sizes", default="tiny,vit-b32", help="random model shapes: tiny, vit-b32")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--labels", type=int, default=50, help="VLM teacher pairs to label (0: skip)")
    parser.add_argument("--train-steps", type=int, default=8192,
                        help="PPO env steps per training-speed run: hand vs hand+clip (tiny, every 1 and 4); 0: skip")
    parser.add_argument("--out", default=str(ROOT / "results" / "vision.json"))
    parser.add_argument("--resume", action="store_true", help="keep the cells already in --out")
    args = parser.parse_args(argv)

    from robreward.cli.vision import bench_render_score
    from robreward.envs import bench
    from robreward.feedback.vision.random_models import save_random_model

    out = Path(args.out)
    result = json.loads(out.read_text()) if args.resume and out.is_file() else {}
    result.update({"what": __doc__.split("\n\n")[0], "machine": {**bench.machine_info(),
                                                                 "load_avg_at_start": os.getloadavg()},
                   "note": "random-weight models (no pretrained weights can be downloaded here): speed only"})
    cells = result.setdefault("cells", [])
    done = {(c["task"], c["envs"], c["size"], c["backend"]) for c in cells}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            model_dir = save_random_model(Path(tmp) / size, kind="clip", size=size)
            for envs in [int(n) for n in args.envs.split(",")]:
                if (args.task, envs, size, args.backend) in done:
                    continue
                print(f"{args.task} x{envs} {size} ...", file=sys.stderr, flush=True)
                cell = bench_render_score(args.task, envs, str(model_dir), steps=STEPS.get(size, 5),
                                          backend=args.backend, device=args.device)
                cell.update(size=size, model=f"random CLIPModel ({size})",
                            load_avg=os.getloadavg())
                cells.append(cell)
                print(json.dumps({k: cell[k] for k in ("envs", "size", "physics_env_steps_per_s",
                                                      "render_frames_per_s", "render_score_frames_per_s",
                                                      "step_render_score_env_steps_per_s")}), file=sys.stderr)
                atomic_write_json(out, result, indent=2)
    if args.train_steps > 0 and not (args.resume and result.get("training")):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = save_random_model(Path(tmp) / "tiny", kind="clip", size="tiny")
            clip = f"clip:{model_dir},goal=a robot gripper touching the green ball,baseline=a robot arm,alpha=0.5"
            result["training"] = training_speed(args.task, 64, args.train_steps,
                                                ["hand", f"hand+{clip}", f"hand+{clip},every=4"], Path(tmp))
        atomic_write_json(out, result, indent=2)
    if args.labels > 0:
        server, url = _fake_server()
        try:
            result["labels"] = [label_throughput(args.labels, "gpt-4o", url)]
        finally:
            server.shutdown()
        real = os.environ.get("VLM_BENCH_MODEL")
        if real:
            result["labels"].append(label_throughput(args.labels, real, os.environ.get("VLM_BENCH_BASE_URL")))
        else:
            result["labels_real_endpoint"] = "not measured: no VLM_BENCH_MODEL configured (no endpoint reachable here)"
        atomic_write_json(out, result, indent=2)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
