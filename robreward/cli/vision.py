"""`robreward vision score | bench`: inspect a CLIP/SigLIP goal-baseline reward, measure render + score speed.

    robreward vision score --model models/clip-vit-b32 --goal "a robot gripper touching the green ball" \\
                           --baseline "a robot arm" frames/*.png
    robreward vision bench --task reach --envs 64 --model models/clip-vit-b32 --steps 20

`train --reward clip:MODEL` takes --goal/--baseline/--alpha/--score-every, `train --reward roboclip:MODEL`
takes --demo-video (they are written into the reward spec the run's config keeps; see docs/vision.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from robreward.cli.main import CliError

TRAIN_FLAGS = ("goal", "baseline", "alpha", "score_every", "demo_video")


# -- train's flags -----------------------------------------------------------------------------------
def add_train_flags(parser) -> None:
    """--goal/--baseline/--alpha/--score-every (clip:) and --demo-video (roboclip:) on `robreward train`."""
    g = parser.add_argument_group("vision rewards (clip:MODEL, roboclip:MODEL; docs/vision.md)")
    g.add_argument("--goal", action="append", metavar="TEXT",
                   help="clip: goal prompt (repeat for several; their embeddings are averaged)")
    g.add_argument("--baseline", action="append", metavar="TEXT", help="clip: baseline prompt (repeat for several)")
    g.add_argument("--alpha", type=float, metavar="A", help="clip: goal-baseline projection strength in [0, 1] "
                                                            "(default 0.5)")
    g.add_argument("--score-every", type=int, metavar="K", help="clip: score every K-th step, holding the reward "
                                                                "in between (default 1)")
    g.add_argument("--demo-video", metavar="FILE", help="roboclip: the demonstration (a video, or a demo .h5)")


def fold_train_flags(reward: str | None, args) -> str | None:
    """The --reward spec with the vision flags written into its clip:/roboclip: part (CliError if they have
    nowhere to go)."""
    given = {name: getattr(args, name, None) for name in TRAIN_FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return reward
    parts = (reward or "").split("+")
    kinds = [p.strip().partition(":")[0] for p in parts]
    clip_flags = {k: v for k, v in given.items() if k != "demo_video"}
    if clip_flags and kinds.count("clip") != 1:
        flags = ", ".join("--" + k.replace("_", "-") for k in clip_flags)
        raise CliError(f"{flags} configure a clip:MODEL reward: give --reward clip:MODEL (or hand+clip:MODEL)")
    if "demo_video" in given and kinds.count("roboclip") != 1:
        raise CliError("--demo-video configures a roboclip:MODEL reward: give --reward roboclip:MODEL")
    for flag in ("goal", "baseline"):
        for text in given.get(flag, []):
            if not text.strip() or any(c in text for c in ",+|"):
                raise CliError(f"--{flag} {text!r}: give non-empty text without ',', '+' or '|' (repeat --{flag} "
                               "for several prompts)")
    out = []
    for part, kind in zip(parts, kinds):
        extra = []
        if kind == "clip":
            extra += [f"goal={'|'.join(given['goal'])}"] if "goal" in given else []
            extra += [f"baseline={'|'.join(given['baseline'])}"] if "baseline" in given else []
            extra += [f"alpha={given['alpha']:g}"] if "alpha" in given else []
            extra += [f"every={given['score_every']}"] if "score_every" in given else []
        if kind == "roboclip" and "demo_video" in given:
            extra.append(f"demo={given['demo_video']}")
        out.append(",".join([part.strip(), *extra]))
    return "+".join(out)


# -- score ---------------------------------------------------------------------------------------------
def _read_images(paths) -> "object":
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise CliError(f"image {path!r} not found")
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as err:
            raise CliError(f"image {path!r} could not be read ({err}): pass PNG or JPEG files") from None
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # the model's transform resizes each; stack per shape
        return [torch.from_numpy(f[None]) for f in frames]
    return [torch.from_numpy(np.stack(frames))]


def score(args) -> int:
    import torch

    from robreward.feedback.vision.clip import goal_baseline_projection, load_vision_language_model, projection_reward
    from robreward.feedback.vision.clip import vision_device

    goals, baselines = args.goal or [], args.baseline or []
    if not goals or any(not g.strip() for g in goals):
        raise CliError("--goal TEXT is required and may not be empty (what a frame that reached the goal shows)")
    if args.alpha > 0 and (not baselines or any(not b.strip() for b in baselines)):
        raise CliError("--baseline TEXT is required with --alpha > 0 (what every frame shows, e.g. \"a robot arm\"); "
                       "or --alpha 0")
    if not args.images:
        raise CliError("no images given: pass PNG/JPEG frames, e.g. frames/*.png")
    model = load_vision_language_model(args.model, vision_device())
    g, projection = goal_baseline_projection(model.encode_texts(goals),
                                             model.encode_texts(baselines or goals), args.alpha)
    rewards = torch.cat([projection_reward(model.encode_images(batch), g, projection).cpu()
                         for batch in _read_images(args.images)])
    rows = [{"image": str(p), "clip_reward": round(float(r), 6)} for p, r in zip(args.images, rewards)]
    if args.json:
        print(json.dumps({"model": args.model, "goal": goals, "baseline": baselines, "alpha": args.alpha,
                          "scores": rows}, indent=2))
    else:
        for row in rows:
            print(f"{row['clip_reward']:.4f}  {row['image']}")
    return 0


# -- bench ---------------------------------------------------------------------------------------------
def bench_render_score(task: str, envs: int, model_name: str, steps: int = 20, size: int | None = None,
                       backend: str = "cpu", device: str = "cpu", seed: int = 0) -> dict:
    """Physics steps/s alone, render-only frames/s and render + score frames/s of ``envs`` worlds, on random
    actions (the first step of each is a warm-up, not timed)."""
    import torch

    import robreward
    from robreward.feedback.vision.clip import load_vision_language_model, vision_device
    from robreward.feedback.vision.frames import render_batch

    model = load_vision_language_model(model_name, vision_device())
    height, width = model.image_size if size is None else (size, size)
    threads = torch.get_num_threads()
    if model.device.type == "cpu":  # as inside env.step on the CPU backend (batched._SingleTorchThread), where the
        torch.set_num_threads(1)  # reward runs: intra-op threads beside the simulator's were 10-100x slower
    env = robreward.make(task, envs, backend=backend, device=device, seed=seed)
    env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)

    def action():
        return (torch.rand(envs, env.act_dim, generator=gen) * 2 - 1).to(env.device)

    def timed(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    try:
        physics = timed(lambda: env.step(action()))
        render = timed(lambda: render_batch(env, size=(width, height)))
        score_only = timed(lambda: model.encode_images(render_batch(env, size=(width, height))))
        both = timed(lambda: (env.step(action()), model.encode_images(render_batch(env, size=(width, height)))))
    finally:
        env.close()
        torch.set_num_threads(threads)
    n = steps * envs
    return {"task": task, "envs": envs, "model": model_name, "model_kind": model.kind,
            "image_size": [height, width], "steps": steps, "backend": backend, "model_device": str(model.device),
            "physics_env_steps_per_s": n / physics, "render_frames_per_s": n / render,
            "torch_threads": 1 if model.device.type == "cpu" else threads, "render_score_frames_per_s": n / score_only, "step_render_score_env_steps_per_s": n / both,
            "slowdown_vs_physics": both / physics}


def bench(args) -> int:
    if args.envs < 1 or args.steps < 1:
        raise CliError(f"--envs and --steps must be >= 1, got {args.envs} and {args.steps}")
    from robreward.envs.registry import get_task

    get_task(args.task)
    result = bench_render_score(args.task, args.envs, args.model, args.steps, args.size, args.backend, args.device)
    print(json.dumps(result, indent=2))
    return 0


# -- render, random-model -------------------------------------------------------------------------------
def render(args) -> int:
    """PNG frames of ``--envs`` freshly reset worlds of a task (what a clip: reward scores)."""
    import imageio.v2 as imageio

    import robreward
    from robreward.feedback.vision.frames import render_batch

    if args.envs < 1 or args.size < 8:
        raise CliError(f"--envs must be >= 1 and --size >= 8 pixels, got {args.envs} and {args.size}")
    out = Path(args.out)
    if out.exists() and any(out.glob("world-*.png")):
        raise CliError(f"--out {args.out!r} already holds frames (world-*.png): choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    env = robreward.make(args.task, args.envs, seed=args.seed)
    try:
        env.reset(seed=args.seed)
        frames = render_batch(env, size=(args.size, args.size), camera=args.camera).cpu().numpy()
    finally:
        env.close()
    from robreward.fileio import atomic_path

    for i, frame in enumerate(frames):
        with atomic_path(out / f"world-{i:03d}.png") as tmp:
            imageio.imwrite(tmp, frame, format="png")
        print(out / f"world-{i:03d}.png")
    return 0


def random_model(args) -> int:
    """A random-weight CLIP/SigLIP model folder, loadable like a downloaded one (to try the commands: its rewards
    mean nothing)."""
    from robreward.feedback.vision.random_models import save_random_model

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise CliError(f"--out {args.out!r} is not empty: choose a new folder")
    save_random_model(out, kind=args.kind, size=args.size, seed=args.seed)
    print(f"random {args.kind} model ({args.size}) -> {out}  (random weights: for trying the commands and "
          "measuring speed; its rewards mean nothing)")
    if args.kind == "open_clip":
        print(f"use it as clip:open_clip:{out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("vision", description=__doc__.split("\n\n")[0])
    verbs = p.add_subparsers(dest="vision_verb", metavar="{score,bench,render,random-model}",
                             parser_class=type(p))
    s = verbs.add_parser("score", help="CLIP goal-baseline reward of image files")
    s.add_argument("images", nargs="*", help="PNG/JPEG frames")
    s.add_argument("--model", required=True, help="CLIP/SigLIP model folder or hub id")
    s.add_argument("--goal", action="append", help="goal prompt (repeat for several)")
    s.add_argument("--baseline", action="append", help="baseline prompt (repeat for several)")
    s.add_argument("--alpha", type=float, default=0.5, help="projection strength in [0, 1] (default 0.5)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=score)
    b = verbs.add_parser("bench", help="frames/s of batched render + scoring vs physics steps/s")
    b.add_argument("--task", required=True)
    b.add_argument("--envs", type=int, default=64)
    b.add_argument("--model", required=True, help="CLIP/SigLIP model folder or hub id")
    b.add_argument("--steps", type=int, default=20, help="timed steps per measurement (default 20)")
    b.add_argument("--size", type=int, default=None, help="render size in pixels (default: the model's input)")
    b.add_argument("--backend", default="cpu", choices=["cpu", "warp"])
    b.add_argument("--device", default="cpu", help="simulation device (cuda:0 with --backend warp)")
    b.set_defaults(func=bench)
    r = verbs.add_parser("render", help="PNG frames of freshly reset worlds of a task (what clip: scores)")
    r.add_argument("--task", required=True)
    r.add_argument("--envs", type=int, default=4)
    r.add_argument("--size", type=int, default=224, help="pixels (default 224)")
    r.add_argument("--camera", default=None, help="a camera of the scene (default: the task's)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="folder for world-NNN.png")
    r.set_defaults(func=render)
    m = verbs.add_parser("random-model", help="save a random-weight CLIP/SigLIP/open_clip/X-CLIP model (to try the "
                                              "commands)")
    m.add_argument("--out", required=True, help="model folder")
    m.add_argument("--kind", default="clip", choices=["clip", "siglip", "open_clip", "xclip"],
                   help="open_clip: open_clip's folder layout (pass it as open_clip:FOLDER); xclip: an X-CLIP "
                        "video-text model (roboclip: only)")
    m.add_argument("--size", default="tiny", choices=["tiny", "vit-b32"])
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=random_model)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


# -- the VLM preference teacher (RL-VLM-F): built here, where codegen's LLM client may be imported ------------
LEDGER_FILE = "vlm_ledger.json"
TEXT_ONLY_WORDS = ("image", "multimodal", "multi-modal", "vision", "image_url")


def build_vlm_teacher(spec: str):
    """The VLMTeacher of ``vlm:MODEL[,base_url=URL,max_cost=USD,...]`` or ``anthropic:MODEL[,...]``, its requests
    through robreward.codegen.llm (retries, spend cap, key redaction, as `generate`)."""
    from robreward.codegen.llm import Ledger, LLMRequestError, make_client
    from robreward.feedback.vision.vlm_teacher import VLMTeacher, parse_teacher_spec

    provider, model, options = parse_teacher_spec(spec)
    max_cost = options.get("max_cost")
    client = make_client(model if provider == "openai" else f"anthropic:{model}", options.get("base_url"),
                         timeout=options.get("timeout", 120.0), ledger=Ledger(max_cost=max_cost))
    where = options.get("base_url") or provider

    def complete(messages: list[dict]) -> str:
        try:
            return client.complete(messages, n=1, temperature=0.0, max_tokens=512).texts[0]
        except LLMRequestError as err:
            text = str(err).lower()
            if err.status in (400, 404, 415, 422) and any(word in text for word in TEXT_ONLY_WORDS):
                raise ValueError(f"the model {model!r} at {where} does not take images ({err}): the VLM teacher sends "
                                 "two frames per query; serve a vision-language model (e.g. gpt-4o, "
                                 "Qwen2.5-VL in vLLM, llava in Ollama) or use a simulated teacher") from None
            raise

    def on_start(run_dir) -> None:  # the spend is counted across a resumed run's processes
        client.ledger = Ledger.load(Path(run_dir) / LEDGER_FILE, max_cost=max_cost)

    teacher = VLMTeacher(complete, model, goal=options.get("goal"), frames=options.get("frames", 1),
                         size=options.get("size", 224), spent=lambda: client.ledger.cost_usd, spec=spec)
    teacher.on_start = on_start
    return teacher


def register_vlm_teachers() -> None:
    """Make `--teacher vlm:MODEL` and `--teacher anthropic:MODEL` resolve (preferences.teachers.make_teacher)."""
    from robreward.feedback.preferences.teachers import VLM_KINDS, register_teacher_kind

    for kind in VLM_KINDS:
        register_teacher_kind(kind, build_vlm_teacher)


def fold_teacher_flags(teacher: str | None, base_url: str | None, max_cost: float | None) -> str | None:
    """--base-url / --max-cost written into a vlm:/anthropic: teacher spec (CliError for another teacher)."""
    if base_url is None and max_cost is None:
        return teacher
    from robreward.feedback.preferences.teachers import VLM_KINDS

    if not teacher or teacher.strip().partition(":")[0].strip().lower() not in VLM_KINDS:
        raise CliError("--base-url and --max-cost configure a vision-language teacher: give --teacher vlm:MODEL "
                       "(or anthropic:MODEL)")
    if max_cost is not None and not max_cost > 0:
        raise CliError(f"--max-cost must be > 0 (USD), got {max_cost}")
    extra = ([f"base_url={base_url}"] if base_url else []) + ([f"max_cost={max_cost:g}"] if max_cost else [])
    return ",".join([teacher.strip(), *extra])
