"""report.md of a `robreward generate` run: candidates, the best reward and its reflection,
and what the final comparison with the shipped baselines could and could not show."""

from __future__ import annotations

from pathlib import Path

from robreward.codegen.secrets import redact
from robreward.fileio import atomic_write_text


def write_report(run) -> Path:
    """Write OUT/report.md for a generate run (robreward.codegen.loop._Run); returns its path."""
    config, state, best = run.config, run.state, run.state["best"]
    task = f"{run.spec.name} (v{run.spec.version})"
    lines = [f"# robreward generate: {config.text and 'text task over ' or ''}{task}", ""]
    if config.text:
        lines += [f"Task (--text): {config.text.strip()}",
                  f"Fitness (--fitness): `{config.fitness}`" if config.fitness else
                  f"Selection: **by {_judge(run)}'s preference**. This task has no fitness (no --fitness): in "
                  f"every iteration {_judge(run)} picked the best and the worst of videos of the candidates' "
                  "policies (and of the best so far); no number here says how well a policy does the text task.",
                  ""]
    if run.llm.replay_dir is not None:
        lines.append(f"LLM: **replayed** from `{run.llm.replay_dir}`: a recorded transcript, not a live model"
                     + (f"; {run.llm.fallbacks} of {state['llm_calls']} answers were matched by position, "
                        "not by exact request (this machine's training numbers in a reflection differed "
                        "from the recorded run's)" if run.llm.fallbacks else "; every request matched exactly")
                     + ".")
    else:
        lines.append(f"LLM: `{config.llm}`" + (f" at {config.base_url}" if config.base_url else "") + ".")
    ledger = run.ledger
    lines += [f"LLM usage: {state['llm_calls']} calls, {ledger.requests} HTTP requests, {ledger.cached_calls} "
              f"answered from cache/replay, {ledger.prompt_tokens:,} + {ledger.completion_tokens:,} tokens, "
              f"${ledger.cost_usd:.4f} (approximate; ledger.json).",
              f"Search: K={config.samples} samples x {config.iterations} iteration(s), {config.steps:,} env steps "
              f"per candidate and seed ({config.num_envs} worlds, {_seeds_text(run)}), up to {config.repair_rounds} repair "
              f"round(s) per candidate; " + (f"successive halving: {config.halving} rung(s), the best 1/"
                                            f"{config.halving_eta} of each go on (a stopped candidate's fitness "
                                            "is from its shorter run); " if config.halving else "")
              + "trajectory-preference filter: "
              f"{config.demos or 'off'}" + (f"; started from {config.from_run}" if config.from_run else "")
              + (f"; feedback: \"{config.feedback}\"" if config.feedback else "") + ".",
              f"Search cost: {_search_steps(run):,} env steps of candidate training.",
              f"Status: {state['status']}" + (f" ({state['stop_reason']})" if state.get("stop_reason") else ""),
              "", "## Candidates", "",
              "| candidate | attempt | status | repairs | fitness (mean +- SE) | per seed | lower bound | P(best) "
              "| success | why |", "|---|---|---|---|---|---|---|---|---|---|"]
    for rec in state["iterations"]:
        for c in rec["candidates"]:
            why = c["reason"] or (f"stopped at {c['stopped_at']:,} steps by successive halving"
                                  if c.get("stopped_at") else "")
            se = f" +- {c['fitness_se']:.3f}" if c.get("fitness_se") is not None and c["fitness"] is not None else ""
            per_seed = ", ".join(f"{p['seed']}: " + ("failed" if not p["ok"] else _fmt(p["fitness"]))
                                 for p in c.get("seeds") or [])
            lines.append(f"| {c['id']} | {c['attempt']} | {c['status']} | {c['repairs']} | {_fmt(c['fitness'])}{se} "
                         f"| {per_seed or '-'} | {_fmt(c.get('lcb'))} | {_pct(c.get('p_best'))} "
                         f"| {_fmt(c.get('success'))} | {why.replace('|', '/')[:160]} |")
    chosen = state.get("selection")
    if chosen:
        rule = ("the highest lower confidence bound, mean - 1 SE over seeds (each candidate's SD shrunk towards the "
                "SD pooled over all candidates' seeds)" if chosen["rule"] == "lcb" else "the highest mean over seeds")
        lines += ["", f"Selection rule: {rule}; {chosen['candidate_seeds']} seed(s) per candidate "
                  f"({', '.join(map(str, chosen['seeds']))}). How sure: {chosen['summary']}."
                  + (" P(best): each candidate's chance of the highest true mean if its error is normal with its "
                     "SE." if chosen["pick"]["se"] is not None else "")]
    if best is None:
        lines += ["", "No candidate was trained: see the reasons above and iter_*/cand_*/check.json."]
    else:
        code = (run.out / "best" / "reward.py").read_text().strip()
        how = (f"picked by {_judge(run)}" if best.get("fitness") is None
               else f"fitness {best['fitness']:.4g} in the search")
        lines += ["", f"## Best reward: {best['id']} ({how})", "",
                  "```python", code, "```", "", "Reflection on its training:", "", "```", best["reflection"], "```"]
    lines += ["", "## Final comparison", ""] + _final_section(run) + [""]
    path = run.out / "report.md"
    atomic_write_text(path, redact("\n".join(lines)))  # the file people share: scrubbed once more
    return path

def _final_section(run) -> list[str]:
    config, final = run.config, run.state.get("final")
    lines = []
    if final is None or not final["results"]:
        reason = "--final-seeds 0" if config.final_seeds == 0 else "no trained candidate"
        return [f"Skipped ({reason}). The search fitness above comes from one run per candidate, and picking "
                "the maximum biases it upward: it is not a comparison with the baselines."]
    compare_md = run.out / "compare.md"
    if config.by_preference:
        lines += [f"The best reward retrained with seeds {', '.join(map(str, final['seeds']))} for "
                  f"{config.final_steps or config.steps:,} steps each.", "",
                  "| seed | return (its own reward) | success (the scene's test) |", "|---|---|---|"]
        lines += [f"| {seed} | {_fmt(r.get('return'))} | {_fmt(r.get('success'))} |" if r["ok"] else
                  f"| {seed} | failed | {(r.get('error') or '')[:80]} |"
                  for seed, r in sorted(final["results"].items())]
        lines.append("")
    elif compare_md.is_file():
        table = compare_md.read_text().replace("# Comparison", "").replace("![learning curves](curves.png)", "")
        lines += [f"The best reward retrained with seeds {', '.join(map(str, final['seeds']))} for "
                  f"{config.final_steps or config.steps:,} steps each (fresh seeds: the search run's own result is "
                  "selection-biased).", "", table.strip(), "", "![learning curves](curves.png)", ""]
    lines += _settings_lines(final.get("settings"))
    lines.append("What could and could not be compared:")
    from robreward.eval.baseline import load_baseline

    base = None if config.text else load_baseline(run.spec.name)
    if config.by_preference:
        lines += ["- Selected by preference: there is no fitness, so no HNS, no test against a hand reward and "
                  "no ranking of the final seeds; watch their policies to judge them "
                  f"(`robreward eval {run.out}/final/seed_N --video seed.mp4`). The return is under the reward "
                  f"itself, which only says that PPO optimised it; 'success' is the scene's ({run.spec.name}) own "
                  "test, not the text task's."]
    elif config.text:
        lines += [f"- A --text task has no hand or sparse baseline: no HNS and no test against a hand reward; its "
                  f"fitness is the --fitness expression, and 'success' is the scene's ({run.spec.name}) own success "
                  "test, not the text task's."]
    elif base is None:
        lines.append(f"- No shipped baseline (policies/{run.spec.name}/eval.json): raw fitness only, no HNS.")
    else:
        steps = base.hand.get("steps")
        ours = (final.get("settings") or {}).get("steps") or config.final_steps or config.steps
        lines.append(f"- H and S from the {base.describe()}: the hand reward trained {_fmt_int(steps)} steps per seed over "
                     f"{len(base.hand.get('seeds') or [])} seed(s); the final runs here {ours:,} steps per seed"
                     + (" (a smaller budget: the comparison favours the baselines)." if steps and ours < steps
                        else "."))
        if len(final["results"]) < 2:
            lines.append("- One final seed: the significance test against the hand reward needs at least 2.")
    if run.spec.gymnasium_twin:
        lines.append(f"- {run.spec.name} is a twin of Gymnasium's {run.spec.gymnasium_twin}: an LLM may have "
                     "memorized its reward, so report it apart from the manipulation tasks.")
    failed = [s for s, r in final["results"].items() if not r["ok"]]
    if failed:
        lines.append(f"- Final seed(s) {', '.join(failed)} failed to train (final/seed_N/failed.json).")
    return lines



def _seeds_text(run) -> str:
    seeds = [run.config.seed + j for j in range(run.config.candidate_seeds)]
    if len(seeds) == 1:
        return f"seed {seeds[0]}: one seed per candidate, so the search fitness of the best is biased upward"
    return f"{len(seeds)} seeds per candidate, {', '.join(map(str, seeds))}, trained at once"


def _search_steps(run) -> int:
    """Env steps the search trained: every trained (or failed-in-training) candidate's budget (a stopped one's
    rung) on each of its seeds."""
    total = 0
    for rec in run.state["iterations"]:
        for c in rec["candidates"]:
            if c["status"] in ("trained", "train_failed"):
                total += (c.get("stopped_at") or run.config.steps) * max(1, len(c.get("seeds") or [None]))
    return total


def _settings_lines(settings: dict | None) -> list[str]:
    """The final runs' settings beside the baseline's: every one that differs (like for like when none)."""
    if not settings:
        return []
    head = (f"Final training: {settings['num_envs']} worlds, {settings['steps']:,} steps per seed, backend "
            f"{settings['backend']}.")
    if not settings.get("baseline_config"):
        return [head] + [f"- {n}" for n in settings.get("notes", [])] + [""]
    if not settings["differs"]:
        lines = [head + f" Every training setting matches the shipped hand baseline's ({settings['baseline_config']}): "
                 "like for like."]
    else:
        lines = [head + f" Settings that differ from the shipped hand baseline's ({settings['baseline_config']}); "
                 "the numbers above compare with a baseline trained so:", "", "| setting | final | baseline |",
                 "|---|---|---|"]
        lines += [f"| {d['setting']} | {d['final']} | {d['baseline']} |" for d in settings["differs"]] + [""]
    return lines + [f"- {n}" for n in settings.get("notes", [])] + [""]


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def _judge(run) -> str:
    return f"a vision-language model ({run.judge()[0]})" if run.config.preferences == "vlm" else "a person"


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _fmt_int(x) -> str:
    return "?" if x is None else f"{int(x):,}"
