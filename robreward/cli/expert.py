"""`robreward expert --task push --episodes 20 --video push.mp4 [--video-episodes 4 --size 480x360]`: run a
task's scripted expert, one episode per world; the video tiles the first N worlds' episodes into one grid
(robreward.eval.video)."""

from __future__ import annotations

import contextlib
import json


def run_expert(task, episodes: int, seed: int = 0, video: str | None = None, num_envs: int | None = None,
               video_episodes: int = 1, size=None) -> dict:
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
    stack = contextlib.ExitStack()
    grid = None
    if video:
        from robreward.eval.video import DEFAULT_SIZE, EpisodeGrid

        grid = stack.enter_context(EpisodeGrid(env, video, episodes=video_episodes, size=size or DEFAULT_SIZE,
                                               reward_label="hand", title=f"{spec.name} expert"))
    with stack:
        for _ in tqdm(range(spec.episode_length), desc=f"expert {spec.name}", leave=False):
            if grid is not None and not grid.finished:
                grid.capture()
            _, _, terminated, truncated, info = env.step(spec.expert(env.state))
            done = terminated | truncated
            if grid is not None and not grid.finished:
                grid.record(info["hand_reward"], info["success"], done, info["fitness"])
            running = ~finished
            success |= info["success"].cpu() & running
            returns += info["hand_reward"].cpu() * running
            finished |= done.cpu()
            if finished.all():
                break
    env.close()
    return {"task": spec.name, "episodes": n, "seed": seed, "success_rate": float(success.float().mean()),
            "return_mean": float(returns.mean()), "video": video}


def run(args) -> int:
    from robreward.cli.eval import check_video_args

    size = check_video_args(args, args.episodes)
    result = run_expert(args.task, args.episodes, args.seed, args.video, video_episodes=args.video_episodes, size=size)
    print(json.dumps(result, indent=2))
    return 0


def register(sub) -> None:
    from robreward.cli.eval import add_video_args

    p = sub.add_parser("expert", help="run a task's scripted expert; report success; optionally write a video",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help="a task with a scripted expert (reach, push, lift, drawer-open)")
    p.add_argument("--episodes", type=int, default=20, help="episodes, one per world, run at once (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial states (default 0)")
    add_video_args(p, "world k's episode")
    p.set_defaults(func=run)
