"""`robreward distance --task T A B`: EPIC, DARD and STARC between two rewards of a task, on
transitions of random-action (or --policy) rollouts, each with a bootstrap interval over episodes.

    robreward distance --task push hand sparse
    robreward distance --task push hand pref:runs/pref-push --policy runs/pref-push --json
    robreward distance --task reach hand my_reward.py --envs 32 --steps 512

A and B are reward specs, as --reward takes them (hand, sparse, FILE.py, pref:RUN, progress:RUN,
A+B). 0 means the rewards order policies the same way (they differ by a positive scale, a
constant and potential shaping), 1 means opposite; unrelated rewards sit near 0.7 (EPIC, DARD).
What each metric samples and approximates: docs/distances.md, robreward/rewards/distance/__init__.py."""

from __future__ import annotations

from robreward.cli.main import CliError

LABELS = {"epic": "EPIC", "dard": "DARD", "starc": "STARC"}


def _reward(text: str, spec, flag: str):
    from robreward.rewards.base import resolve_reward

    try:
        return resolve_reward(text, spec)
    except (ValueError, FileNotFoundError) as err:
        raise CliError(f"{flag} {text!r}: {err}") from None


def run(args) -> int:
    from robreward.envs.registry import get_task
    from robreward.rewards.distance import METRICS, collect_transitions, reward_distances

    for flag, value, least in (("--envs", args.envs, 1), ("--steps", args.steps, 2), ("--bootstrap", args.bootstrap, 0),
                               ("--max-transitions", args.max_transitions, 2), ("--neighbours", args.neighbours, 1)):
        if value < least:
            raise CliError(f"{flag} must be >= {least}, got {value}")
    if not 0.0 <= args.gamma <= 1.0:
        raise CliError(f"--gamma must be in [0, 1], got {args.gamma}")
    try:
        spec = get_task(args.task)
    except ValueError as err:
        raise CliError(str(err)) from None
    rewards = [_reward(text, spec, name) for name, text in (("A", args.reward_a), ("B", args.reward_b))]
    policy = None
    if args.policy:
        from robreward.rl.export import load_policy

        try:
            policy = load_policy(args.policy, task=spec)
        except (ValueError, FileNotFoundError) as err:
            raise CliError(f"--policy {args.policy!r}: {err}") from None
    import robreward

    env = robreward.make(spec, args.envs, seed=args.seed, reward="hand", device=args.device)
    try:
        # the MuJoCo states too: an image reward (clip:, an image progress or preference model) scores their frames
        coverage = collect_transitions(env, args.steps, policy=policy, seed=args.seed, record_sim_states=True)
    finally:
        env.close()
    try:
        result = reward_distances(spec, rewards[0], rewards[1], coverage, gamma=args.gamma, seed=args.seed,
                                  max_transitions=args.max_transitions, neighbours=args.neighbours,
                                  bootstrap=args.bootstrap)
    except (ValueError, RuntimeError) as err:  # an episode-level reward (roboclip:), no renderer, ...
        raise CliError(f"no distance between {args.reward_a!r} and {args.reward_b!r}: {err}") from None
    result = {"task": spec.name, "task_version": int(spec.version), "a": args.reward_a, "b": args.reward_b,
              "policy": args.policy or "random", "envs": args.envs, "steps": args.steps, "seed": args.seed, **result}
    if args.json:
        from robreward.cli.common import print_json

        print_json(result)
        return 0
    print(f"{spec.name} v{spec.version}: {args.reward_a} vs {args.reward_b} on {result['transitions']} transitions "
          f"({result['episodes']} episodes) of {args.policy or 'random actions'}, gamma {args.gamma}")
    ci_head = f"{round(100 * result['confidence'])}% interval" if args.bootstrap else ""
    print(f"  {'metric':<7} {'distance':>9}   {ci_head}")
    for metric in METRICS:
        value, ci = result[metric], result[f"{metric}_ci"]
        shown = "-" if value is None else f"{value:.3f}"
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {LABELS[metric]:<7} {shown:>9}   {interval}")
    for metric, note in result["notes"].items():
        print(f"note: {LABELS[metric]}: {note}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("distance", help="EPIC, DARD and STARC distances between two rewards of a task")
    p.add_argument("reward_a", metavar="A", help="a reward spec: hand, sparse, FILE.py, pref:RUN, progress:RUN, A+B")
    p.add_argument("reward_b", metavar="B", help="the other reward spec")
    p.add_argument("--task", required=True, help="task name (see `robreward tasks`) or task folder")
    p.add_argument("--policy", default=None, metavar="RUN_OR_POLICY",
                   help="sample transitions from this policy (a run directory or policy.onnx; its deterministic "
                        "actions) instead of uniform random actions")
    p.add_argument("--envs", type=int, default=16, help="parallel worlds of the rollout (default 16)")
    p.add_argument("--steps", type=int, default=256, help="steps of every world (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seeds the rollout, its actions and the sampling (default 0)")
    p.add_argument("--gamma", type=float, default=0.99, help="discount of the canonicalisation (default 0.99)")
    p.add_argument("--bootstrap", type=int, default=100,
                   help="bootstrap resamples of the episodes for the 95%% intervals (default 100; 0: none)")
    p.add_argument("--max-transitions", type=int, default=4096,
                   help="transitions the distances are measured on (drawn at random beyond; default 4096)")
    p.add_argument("--neighbours", type=int, default=8, help="DARD: sampled transitions standing for T(s, A) "
                                                            "(default 8)")
    p.add_argument("--device", default="cpu", help="torch device of the rollout: cpu or cuda[:N] (default cpu)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
