"""`robreward generate`: reward programs from task text with an LLM (Eureka-style search), the
best one retrained over seeds and compared with the shipped baselines.

    robreward generate --task reach --llm gpt-4o --samples 4 --iterations 3 --steps 200000 --out runs/gen-reach
    robreward generate --task push --text "push the block to the goal without tipping it" \\
        --fitness "(torch.linalg.norm(state.cube_to_goal, dim=-1) < 0.05)" --llm qwen2.5-coder \\
        --base-url http://localhost:8000/v1 --out runs/gen-push-text
    robreward generate --resume runs/gen-reach [--max-cost 5]       # after a crash or a spend cap
    robreward generate --task reach --llm replay:examples/transcripts/reach --samples 3 --iterations 2 \\
        --steps 30000 --final-seeds 1 --out runs/demo/gen-reach     # offline, a recorded transcript
"""

from __future__ import annotations

import sys

from robreward.cli.main import CliError

# flags that define a run: given with --resume they would silently disagree with config.json
RUN_FLAGS = ("task", "text", "fitness", "llm", "base_url", "samples", "iterations", "steps", "final_seeds",
             "final_steps", "envs", "eval_episodes", "halving", "halving_eta", "candidate_seeds", "selection",
             "final_match", "seed", "demos", "feedback", "from_run", "preferences", "vlm", "vlm_base_url",
             "repair_rounds", "temperature", "out")


def run(args) -> int:
    from robreward.codegen.llm import BudgetExceeded, LLMConfigError, LLMError
    from robreward.codegen.loop import GenerateConfig, generate, load_config
    from robreward.feedback.preferences.app import ServeError

    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in RUN_FLAGS if getattr(args, name) is not None]
        if given:
            raise CliError(f"--resume continues the run as configured in {args.resume}/config.json; drop "
                           f"{', '.join(given)} (only --max-cost, --max-tokens, --ray and the chooser's --host, "
                           "--port and --choice-timeout may change)")
        config = load_config(args.resume, max_cost=args.max_cost, max_tokens=args.max_tokens, ray=args.ray,
                             host=args.host, port=args.port, choice_timeout=args.choice_timeout)
    else:
        missing = [flag for flag, value in (("--task", args.task), ("--llm", args.llm), ("--out", args.out))
                   if not value]
        if missing:
            raise CliError(f"{', '.join(missing)} required (or --resume RUN_DIR); e.g. robreward generate --task reach "
                           "--llm gpt-4o --out runs/gen-reach")
        options = {"text": args.text, "fitness": args.fitness, "base_url": args.base_url, "samples": args.samples,
                   "iterations": args.iterations, "steps": args.steps, "final_seeds": args.final_seeds,
                   "final_steps": args.final_steps, "num_envs": args.envs, "eval_episodes": args.eval_episodes,
                   "halving": args.halving, "halving_eta": args.halving_eta,
                   "candidate_seeds": args.candidate_seeds, "selection": args.selection,
                   "final_match": args.final_match, "seed": args.seed, "demos": args.demos, "feedback": args.feedback, "from_run": args.from_run,
                   "preferences": args.preferences, "vlm": args.vlm, "vlm_base_url": args.vlm_base_url,
                   "max_cost": args.max_cost, "max_tokens": args.max_tokens,
                   "repair_rounds": args.repair_rounds, "temperature": args.temperature, "ray": args.ray,
                   "host": args.host, "port": args.port, "choice_timeout": args.choice_timeout}
        config = GenerateConfig(task=args.task, llm=args.llm, out=args.out,
                                **{k: v for k, v in options.items() if v is not None})
    try:
        result = generate(config, resume=bool(args.resume), log=lambda message: print(message, flush=True))
    except LLMConfigError as err:
        raise CliError(str(err)) from None
    except BudgetExceeded as err:
        print(f"robreward generate: stopped: {err}", file=sys.stderr)
        return 3
    except LLMError as err:
        raise CliError(f"{err} (the run is saved: continue it with `robreward generate --resume {config.out}`)") from None
    except TimeoutError as err:  # --preferences human with --choice-timeout
        raise CliError(f"{err}; the run is saved: `robreward generate --resume {config.out}`") from None
    except ServeError as err:  # the chooser page's address is taken or bad
        raise CliError(str(err)) from None
    best = result["best"]
    if best is None:
        print(f"no candidate passed the checks and trained; see {result['report']}")
        return 1
    print(f"best reward: {config.out}/best/reward.py ({best['id']}, fitness {best['fitness']:.4g}); "
          f"report: {result['report']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", help="task name (see `robreward tasks`) or task folder; with --text: the scene")
    p.add_argument("--text", help="the task as free text over the scene of --task (needs --fitness, or --preferences "
                                        "human/vlm: you or a VLM pick the best candidate from videos)")
    p.add_argument("--fitness", metavar="EXPR",
                   help="--text tasks: per-step fitness, a Python expression over state fields (torch, math)")
    p.add_argument("--llm", metavar="MODEL",
                   help="MODEL (OpenAI-compatible, OPENAI_API_KEY), anthropic:MODEL (ANTHROPIC_API_KEY), "
                        "or replay:DIR (a recorded transcript, offline)")
    p.add_argument("--base-url", metavar="URL", help="OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio)")
    p.add_argument("--samples", type=int, metavar="K", help="K: programs per iteration (default 4)")
    p.add_argument("--iterations", type=int, metavar="I", help="iterations (default 3)")
    p.add_argument("--steps", type=int, metavar="N", help="env steps per candidate training (default 200000)")
    p.add_argument("--final-seeds", type=int, metavar="S", help="fresh seeds the best reward is retrained with (default 5; 0: skip)")
    p.add_argument("--final-steps", type=int, metavar="N",
                   help="env steps per final seed (default: the shipped baseline's budget with --final-match "
                        "baseline, else --steps)")
    p.add_argument("--final-match", choices=("baseline", "search"),
                   help="final retrain settings: the shipped hand baseline's worlds, budget and PPO settings "
                        "(baseline, the default: a like-for-like comparison) or the search's; the report lists "
                        "every setting that differs from the baseline's")
    p.add_argument("--candidate-seeds", type=int, metavar="M",
                   help="training seeds per candidate, trained at once (default 3; 1: one-seed search); the "
                        "fitness is the mean over seeds with its standard error")
    p.add_argument("--selection", choices=("lcb", "mean"),
                   help="how the best candidate is chosen from its seeds: lcb, the highest mean - 1 SE (default), "
                        "or mean")
    p.add_argument("--envs", type=int, metavar="N", help="parallel worlds per training (default 32)")
    p.add_argument("--eval-episodes", type=int, metavar="N", help="evaluation episodes per candidate (default 50)")
    p.add_argument("--halving", type=int, metavar="R",
                   help="successive halving: R rungs of short runs (steps/eta^R, ...) before the full budget; the best "
                        "1/eta of each rung go on from their checkpoint (default 0: all train --steps)")
    p.add_argument("--halving-eta", type=int, metavar="ETA", help="successive halving: keep 1/ETA per rung (default 2)")
    p.add_argument("--seed", type=int, metavar="SEED", help="candidate training seed (default 0); final seeds follow it")
    p.add_argument("--demos", metavar="FILE.h5",
                   help="demo dataset with successful and failed episodes: CARD trajectory-preference filter")
    p.add_argument("--feedback", metavar="TEXT", help="a person's feedback on the best policy of --from RUN")
    p.add_argument("--from", dest="from_run", metavar="RUN", help="start from the best program of an earlier run")
    p.add_argument("--preferences", choices=("fitness", "human", "vlm"),
                   help="ICPL-style best/worst preferences in the next prompt, picked by the task metric (fitness), "
                        "by you from a video of each candidate's policy (human: a page on --host/--port), or by a "
                        "vision-language model from frames of those videos (vlm: --vlm, default the --llm model)")
    p.add_argument("--vlm", metavar="MODEL", help="--preferences vlm: the judging model (MODEL, anthropic:MODEL, "
                                                  "replay:DIR); default: the --llm model, which must see images")
    p.add_argument("--vlm-base-url", metavar="URL", help="--preferences vlm: the --vlm model's OpenAI-compatible "
                                                         "server (default: --base-url)")
    p.add_argument("--host", metavar="HOST", help="--preferences human: address of the chooser page (127.0.0.1)")
    p.add_argument("--port", type=int, metavar="PORT", help="--preferences human: port of the chooser page (8766)")
    p.add_argument("--choice-timeout", type=float, metavar="S",
                   help="--preferences human: stop (resumably) after S seconds without a choice (default: wait)")
    p.add_argument("--repair-rounds", type=int, metavar="R", help="repair requests per failing candidate (default 2)")
    p.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (default 1.0)")
    p.add_argument("--max-cost", type=float, metavar="USD", help="LLM spend cap; stops cleanly, resumable")
    p.add_argument("--max-tokens", type=int, metavar="N", help="LLM token cap; stops cleanly, resumable")
    p.add_argument("--ray", metavar="ADDRESS", help="train candidates and final seeds as Ray tasks: a cluster address "
                   "(e.g. ray://head:10001, auto) or local (run dirs must be on a shared file system)")
    p.add_argument("--out", metavar="DIR", help="run directory")
    p.add_argument("--resume", metavar="DIR", help="continue a stopped or crashed generate run; nothing done is redone")
    p.set_defaults(func=run)
