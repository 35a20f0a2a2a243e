"""`robreward tasks` (table) and `robreward tasks show NAME` (what a person or an LLM reads)."""

from __future__ import annotations

def _table() -> str:
    from robreward.envs.registry import get_task, task_names

    rows = [("task", "obs", "act", "episode", "frame skip", "expert", "gymnasium twin")]
    for name in task_names():
        spec = get_task(name)
        rows.append((name, str(spec.obs_dim), str(spec.act_dim), str(spec.episode_length), str(spec.frame_skip),
                     "yes" if spec.expert else "no", spec.gymnasium_twin or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args) -> int:
    if args.action is None:
        print(_table())
        return 0
    if args.action != "show":
        raise ValueError(f"unknown tasks action {args.action!r}: use `robreward tasks` or `robreward tasks show NAME`")
    if not args.name:
        raise ValueError("tasks show needs a task name, e.g. `robreward tasks show push`")
    from robreward.envs.registry import get_task

    print(get_task(args.name).describe())
    return 0


def register(sub) -> None:
    p = sub.add_parser("tasks")
    p.add_argument("action", nargs="?", choices=["show"], help="show one task")
    p.add_argument("name", nargs="?", help="task name or task folder")
    p.set_defaults(func=run)
