"""`robreward check-reward --task T FILE.py`: the reward-program checks of `train --reward FILE.py`
and of the LLM loop (static allow-list, then a sandboxed dry run on recorded states).
Prints every reason for a rejection (exit 1), or the dry run's term statistics (exit 0)."""

from __future__ import annotations

import json


def run(args) -> int:
    from robreward.rewards.program import check_reward_program

    result = check_reward_program(args.file, args.task, timeout_s=args.timeout, memory_mb=args.memory_mb)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format())
    return 0 if result.ok else 1


def register(sub) -> None:
    p = sub.add_parser("check-reward", description=__doc__)
    p.add_argument("--task", required=True, help="task name or task folder the reward is for")
    p.add_argument("file", help="a .py file defining compute_reward(state, action) -> (total, terms)")
    p.add_argument("--timeout", type=float, default=10.0, help="dry-run wall-clock limit in seconds (default 10)")
    p.add_argument("--memory-mb", type=int, default=2048, help="dry-run memory limit in MB (default 2048)")
    p.add_argument("--json", action="store_true", help="print the check result as JSON")
    p.set_defaults(func=run)
