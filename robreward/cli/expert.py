"""`robreward expert --task push --episodes 20 --video push.mp4`: run a task's scripted expert."""

from __future__ import annotations

import json


def run_expert(task, episodes: int, seed: int = 0, video: str | None = None, num_envs: int | None = None) -> dict:
    """Run the scripted expert for exactly `episodes` episodes (one per world); return success stats."""
    import torch
    from tqdm import tqdm

    import robreward
    from robreward.envs.registry import get_task

    spec = get_task(task)
    if spec.expert is None:
        raise ValueError(f"task {spec.name!r} has no scripted expert; tasks with one: "
                         + ", ".join(n for n in robreward.task_names() if get_task(n).expert))
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    n = num_envs or episodes
    env = robreward.make(spec, num_envs=n, seed=seed)
    env.reset()
    success = torch.zeros(n, dtype=torch.bool)
    returns = torch.zeros(n)
    finished = torch.zeros(n, dtype=torch.bool)  # each world counts only its first episode
    frames = []
    for _ in tqdm(range(spec.episode_length), desc=f"expert {spec.name}", leave=False):
        if video:
            frames.append(env.render([0], 320, 240, renderer="egl")[0])
        _, _, terminated, truncated, info = env.step(spec.expert(env.state))
        running = ~finished
        success |= info["success"].cpu() & running
        returns += info["hand_reward"].cpu() * running
        finished |= (terminated | truncated).cpu()
        if finished.all():
            break
    if video:
        from robreward.envs.render import write_video

        write_video(video, frames, fps=1.0 / env.dt)
    return {"task": spec.name, "episodes": n, "seed": seed, "success_rate": float(success.float().mean()),
            "return_mean": float(returns.mean()), "video": video}


def run(args) -> int:
    result = run_expert(args.task, args.episodes, args.seed, args.video)
    print(json.dumps(result, indent=2))
    return 0


def register(sub) -> None:
    p = sub.add_parser("expert")
    p.add_argument("--task", required=True)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--video", default=None, help="mp4 path for world 0")
    p.set_defaults(func=run)


