"""The Eureka loop: reward programs from task text, evolved by sample -> check -> (filter) ->
train -> reflect -> keep the best, then the best retrained over fresh seeds and compared with
the shipped baselines of ``policies/<task>/``.

    generate(GenerateConfig(task="reach", llm="gpt-4o", samples=4, iterations=3, steps=200_000,
                            out="runs/gen-reach"))
    generate(load_config("runs/gen-reach"), resume=True)       # after a crash or a spend cap

The run directory keeps everything:

    config.json              the resolved GenerateConfig (API keys live only in the environment)
    state.json               progress, rewritten atomically after every candidate (what resume reads)
    ledger.json              LLM tokens and approximate cost
    transcript/              every LLM call, request and response (``--llm replay:OUT/transcript``);
                             vlm_transcript/: the --vlm model's, when it is not the --llm one
    llm_cache/               responses by request key: a resumed run pays for nothing twice
    task/                    --text only: the scene with the user's fitness, as a task folder
    iter_XX/prompt.json      the iteration's sampling request; samples_aN.json: the K responses of
                             attempt N (an iteration whose candidates all fail is redone)
    iter_XX/cand_YY/         reward.py, check.json (every check and repair round, the CARD test),
                             run/ (a robreward run dir of the first seed; run/rung_R.json: each
                             successive-halving rung's result), seed_N/ (--candidate-seeds M: the
                             other seeds' run dirs), reflection.txt (on run/)
    iter_XX/choice.json      --preferences human/vlm: the pick (videos/: what was shown)
    best/                    reward.py, reflection.txt, policy.onnx (after the final stage: the
                             median final seed's)
    final/seed_N/            the best reward retrained with fresh seeds (a seed group for compare), with
                             the shipped baseline's settings (--final-match; codegen/finals.py)
    report.md, compare.md, compare.json, curves.png
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from robreward.codegen.config import CONFIG_FILE, GenerateConfig, load_config  # noqa: F401  (load_config: re-export)
from robreward.codegen.extract import crash_reason, extract_program, preflight
from robreward.codegen.llm import BudgetExceeded, Completion, Ledger, LLMError, RunClient
from robreward.codegen.prompt import build_prompt, repair_prompt
from robreward.codegen.reflect import reflection_text
from robreward.codegen.report import write_report
from robreward.codegen.text_task import check_fitness_expression, write_text_task
from robreward.codegen.training import _finished, checkpoint_step, train_candidates, training_stats
from robreward.fileio import atomic_copy, atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
PASSED = ("passed", "trained", "train_failed")  # candidate statuses that got through the checks
def _described(cand: dict) -> str:
    fitness = "" if cand.get("fitness") is None else f"; fitness {cand['fitness']:.3g}"
    return f"candidate {cand['id']} (terms {', '.join(cand.get('terms', []))}{fitness})"


# -- the loop ---------------------------------------------------------------------------------------
def generate(config: GenerateConfig, *, resume: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Run the loop (module docstring). Resumable: ``resume=True`` continues the run in
    ``config.out`` and redoes nothing that finished. A spend cap raises ``BudgetExceeded``
    after saving the state, with the command that resumes with a higher cap."""
    run = _Run(config, resume=resume, log=log or (lambda message: logger.info("%s", message)))
    try:
        if config.preferences == "human" and (config.iterations > 1 or config.by_preference):  # bind now: a busy
            # port fails before training
            run.log(f"the candidate chooser is at {run.chooser().url}: after each iteration's training, pick the "
                    "best and the worst candidate there")
        elif config.preferences == "human":
            run.log("--preferences human with one iteration asks nothing: a choice informs the next iteration's prompt")
        for it in range(config.iterations):
            if run.iteration(it)["done"]:
                continue
            # 1. prompt: the task text and state abstraction; after the first iteration also the best
            #    program so far with its reflection, the person's feedback and ICPL preferences
            messages = run.prompt(it)
            # 2-3. sample K programs in one request; extract + preflight each with bounded repair rounds,
            #      then the CARD trajectory-preference test (--demos); an iteration whose candidates all
            #      fail is sampled again (bounded) rather than wasted
            survivors = run.sample_and_check(it, messages)
            # 4. train the survivors, one PPO run each (train_candidates: the seam for a batched trainer)
            run.train(it, survivors)
            # 5-6. reflect on each trained candidate's per-term training statistics; keep the best by
            #      task fitness (eval.json fitness_mean) with its reflection for the next prompt
            run.reflect_and_select(it)
        # 7. final: the best reward retrained over fresh seeds, compared with the policies/ baselines
        run.final()
    except BudgetExceeded as err:
        run.stop(f"LLM spend cap: {err}")
        raise BudgetExceeded(f"{err}. The run is saved: continue it with `robreward generate --resume "
                             f"{config.out} --max-cost USD` (or --max-tokens N) with a higher cap") from err
    except LLMError as err:  # retries exhausted, a replay asked for what was never recorded, ...
        run.stop(f"LLM error: {err}")
        raise
    except KeyboardInterrupt:
        run.stop("interrupted")
        raise
    except TimeoutError as err:  # --choice-timeout: nobody picked; the question stays for --resume
        run.stop(f"waiting for a choice: {err}")
        raise
    except Exception as err:  # a full disk, a training that raised, ...: the state says so, and resume works
        try:
            run.stop(f"error: {type(err).__name__}: {str(err)[:300]}")
        except Exception as also:  # noqa: BLE001  (e.g. the disk is still full: the first error is the one to tell)
            logger.warning("could not save the stopped state: %s", also)
        err.add_note(f"the run is saved: after fixing the cause, continue it with `robreward generate --resume "
                     f"{config.out}`")
        raise
    finally:
        run.close()
    return run.finish()


# -- the run: state, LLM, stages ---------------------------------------------------------------------
class _Run:
    """One generate run directory: its state and the stages `generate` calls in order."""

    def __init__(self, config: GenerateConfig, resume: bool, log: Callable[[str], None]):
        from robreward.envs.registry import get_task

        self.config, self.log, self.out = config, log, Path(config.out)
        if resume and not (self.out / STATE_FILE).is_file():
            raise FileNotFoundError(f"--resume {config.out!r}: no {STATE_FILE} there; pass the --out DIR of an "
                                    "earlier `robreward generate`")
        if not resume and (self.out / STATE_FILE).is_file():
            raise ValueError(f"{config.out!r} already holds a generate run: continue it with `robreward generate "
                             f"--resume {config.out}` or choose another --out")
        self.spec = get_task(config.task)  # the scene, for a --text task
        self.fitness_source = check_fitness_expression(config.fitness, self.spec) if config.fitness else None
        self.demo_data = self._demo_states() if config.demos else None
        self.from_best = _best_of_run(config.from_run, self.spec.name) if config.from_run else None
        self.state = json.loads((self.out / STATE_FILE).read_text()) if resume else _new_state()
        self.ledger = Ledger.load(self.out / "ledger.json", config.max_cost, config.max_tokens)
        self.llm = RunClient(config.llm, config.base_url, config.llm_timeout_s, self.ledger, self.out,
                           self.state["llm_calls"])  # LLMConfigError if unset
        self.vlm = (RunClient(config.vlm, config.vlm_base_url or config.base_url, config.llm_timeout_s, self.ledger,
                            self.out, self.state.get("vlm_calls", 0), transcript="vlm_transcript", cache="vlm_cache")
                    if config.vlm else None)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / CONFIG_FILE, config.to_dict())
        self.train_task = self._train_task()
        self._chooser = None
        self.state["status"], self.state["stop_reason"] = "running", None
        self.save()

    # -- bookkeeping
    def save(self) -> None:
        self.state["replay_fallbacks"] = self.llm.fallbacks + (self.vlm.fallbacks if self.vlm else 0)
        atomic_write_json(self.out / STATE_FILE, self.state)

    def judge(self) -> tuple[str, str]:
        """Who picks preferences (for logs and the state) and how the prompt says it."""
        if self.config.preferences == "vlm":
            model = (self.vlm or self.llm).model
            return model, f"by a vision-language model ({model}) shown frames of each candidate's policy"
        return "the person", "by a person who watched a video of each candidate's policy"

    def _vlm_complete(self, messages: list[dict]) -> str:
        """One judging request (temperature 0) through the --vlm client, else the run's LLM."""
        if self.vlm is None:
            return self._complete(messages, 1, seed=7000, temperature=0.0).texts[0]
        completion = self.vlm.complete(messages, 1, 0.0, self.config.response_tokens, seed=7000)
        self.state["vlm_calls"] = self.state.get("vlm_calls", 0) + 1
        self.save()
        return completion.texts[0]

    def chooser(self):
        """--preferences human: the chooser page, served from this process while the run lasts;
        --preferences vlm: the vision-language model's chooser."""
        if self._chooser is None and self.config.preferences == "vlm":
            from robreward.codegen.vlm_choice import VLMChooser

            self._chooser = VLMChooser(self._vlm_complete, self.config.text or self.spec.description,
                                       (self.vlm or self.llm).model, announce=self.log)
        if self._chooser is None:
            from robreward.codegen.choose import HumanChooser

            timeout = self.config.choice_timeout if self.config.choice_timeout > 0 else None
            self._chooser = HumanChooser(self.out, host=self.config.host, port=self.config.port, timeout=timeout,
                                         announce=self.log)
        return self._chooser

    def close(self) -> None:
        if self._chooser is not None:
            self._chooser.close()
            self._chooser = None

    def stop(self, reason: str) -> None:
        self.state["status"], self.state["stop_reason"] = "stopped", reason
        self.save()
        self.write_report()  # what was done so far
        self.log(f"stopped ({reason}); state saved in {self.out / STATE_FILE}")

    def iteration(self, it: int) -> dict:
        iterations = self.state["iterations"]
        while len(iterations) <= it:
            iterations.append({"index": len(iterations), "attempt": 0, "done": False, "candidates": [],
                               "best": None, "preferences": []})
        return iterations[it]

    def _cand_dir(self, cand: dict) -> Path:
        return self.out / cand["id"]

    def _complete(self, messages: list[dict], n: int, seed: int, temperature: float | None = None) -> Completion:
        temperature = self.config.temperature if temperature is None else temperature
        completion = self.llm.complete(messages, n, temperature, self.config.response_tokens, seed=seed)
        self.state["llm_calls"] += 1
        self.save()
        return completion

    def _demo_states(self):
        from robreward.codegen.card_filter import demo_states

        data = demo_states(self.config.demos, self.spec)
        successes = sum(data.success.values())
        if successes == 0 or successes == len(data.success):
            raise ValueError(f"--demos {self.config.demos}: {successes} of {len(data.success)} episodes succeed; the "
                             "trajectory-preference filter needs successful and failed episodes (e.g. "
                             "demos/push-noisy.h5, or record with --noise)")
        return data

    def _train_task(self) -> str:
        scene = self.config.task if not Path(self.config.task).is_dir() else str(Path(self.config.task).resolve())
        if not self.config.text:
            return scene
        # a real task folder: training, eval.json and compare all use the user's fitness
        return write_text_task(self.out / "task", scene, self.config.text, self.fitness_source)

    # -- 1. prompt
    def prompt(self, it: int) -> list[dict]:
        path = self.out / f"iter_{it:02d}" / "prompt.json"
        if path.is_file():  # resume: the exact request of the first run (the cache and replays key on it)
            return json.loads(path.read_text())
        best = self.state["best"] or self.from_best
        code = (self.out / best["id"] / "reward.py").read_text() if best and "id" in best else (best or {}).get("code")
        previous = self.state["iterations"][it - 1]["preferences"] if it > 0 else []
        messages = build_prompt(self.spec, task_text=self.config.text, feedback=self.config.feedback,
                                reflection=(best or {}).get("reflection"), best_code=code, preferences=previous)
        atomic_write_json(path, messages)
        return messages

    # -- 2-3. sample, check, repair, filter
    def sample_and_check(self, it: int, messages: list[dict]) -> list[dict]:
        rec, config = self.iteration(it), self.config
        for attempt in range(rec["attempt"], config.max_redo + 1):
            rec["attempt"] = attempt
            texts = self._samples(it, attempt, messages)
            for k, text in enumerate(texts):
                index = attempt * config.samples + k
                if index == len(rec["candidates"]):
                    rec["candidates"].append({"id": f"iter_{it:02d}/cand_{index:02d}", "index": index,
                                              "attempt": attempt, "status": "pending", "reason": None, "repairs": 0,
                                              "fitness": None, "success": None})
                cand = rec["candidates"][index]
                if cand["status"] == "pending":
                    self._check(it, cand, messages, text)
                    self.save()
                    self.log(f"{cand['id']}: {cand['status']}" + (f" ({cand['reason']})" if cand["reason"] else "")
                             + (f" after {cand['repairs']} repair(s)" if cand["repairs"] else ""))
            survivors = [c for c in rec["candidates"] if c["status"] in PASSED]
            if survivors:
                return survivors
            if attempt < config.max_redo:
                self.log(f"iteration {it}: every candidate failed its checks; sampling it again "
                         f"({attempt + 1}/{config.max_redo})")
                rec["attempt"] = attempt + 1
                self.save()
        self.log(f"iteration {it}: no candidate passed the checks in {config.max_redo + 1} attempt(s)")
        return []

    def _samples(self, it: int, attempt: int, messages: list[dict]) -> list[str]:
        path = self.out / f"iter_{it:02d}" / f"samples_a{attempt}.json"
        if path.is_file():
            return json.loads(path.read_text())["texts"]
        self.log(f"iteration {it}: asking {self.llm.model} for {self.config.samples} programs"
                 + (f" (attempt {attempt + 1})" if attempt else ""))
        completion = self._complete(messages, self.config.samples, seed=1000 * it + attempt)
        atomic_write_json(path, {"texts": completion.texts, "finish_reasons": completion.finish_reasons,
                           "model": completion.model, "prompt_tokens": completion.prompt_tokens,
                           "completion_tokens": completion.completion_tokens, "cached": completion.cached})
        return completion.texts

    def _check(self, it: int, cand: dict, messages: list[dict], text: str) -> None:
        """Extract + preflight (+ CARD) one sample; failures go back to the LLM for repair rounds.
        check.json is saved after every round, so a resumed run continues at the round it was in."""
        folder = self._cand_dir(cand)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "check.json"
        record = json.loads(path.read_text()) if path.is_file() else {"attempts": []}
        conversation = list(messages)
        for round_ in range(self.config.repair_rounds + 1):
            if round_ == len(record["attempts"]):
                if round_ > 0:  # a repair: the seed keeps identical conversations of two candidates apart
                    text = self._complete(conversation, 1, seed=1000 * it + 500 + cand["index"]).texts[0]
                record["attempts"].append(self._check_once(text, cand["id"]))
                atomic_write_json(path, record)
            attempt = record["attempts"][round_]
            if attempt["ok"]:
                break
            if round_ < self.config.repair_rounds:
                conversation = repair_prompt(conversation, attempt["code"] or attempt["response"], attempt["feedback"])
        last = record["attempts"][-1]
        cand["repairs"] = len(record["attempts"]) - 1
        cand["status"] = "passed" if last["ok"] else ("filtered" if last["stage"] == "card" else "rejected")
        cand["reason"] = None if last["ok"] else f"{last['stage']}: " + "; ".join(last["reasons"])[:300]
        if last["code"]:
            atomic_write_text(folder / "reward.py", last["code"])
        record.update(done=True, status=cand["status"], ok=last["ok"], stage=last["stage"], reasons=last["reasons"])
        atomic_write_json(path, record)

    def _check_once(self, text: str, name: str) -> dict:
        """One response through extraction, the checks and the CARD test. One candidate never takes
        down the others or the run: whatever any of them raises is this candidate's rejection."""
        attempt = {"response": text, "code": None, "ok": False, "stage": "extract", "reasons": [], "term_stats": {},
                   "feedback": ""}
        try:
            self._check_stages(text, name, attempt)
        except Exception as err:  # noqa: BLE001  (RecursionError, MemoryError, a checker bug, ...)
            reason = crash_reason(err, {"extract": "extracting the program", "card": "the trajectory-preference test"}
                                  .get(attempt["stage"], "the reward-program checks"))
            logger.warning("%s: %s", name, reason)
            attempt.update(ok=False, stage="check", reasons=[reason], feedback=reason)
        return attempt

    def _check_stages(self, text: str, name: str, attempt: dict) -> None:
        """Fill ``attempt`` stage by stage (its "stage" says how far it got, should one raise)."""
        extracted = extract_program(text)
        attempt.update(stage="static", code=extracted.code)
        result = preflight(extracted, self.spec, timeout_s=self.config.dry_run_timeout_s, name=name)
        attempt.update(code=result.code, ok=result.ok, stage=result.stage, reasons=list(result.reasons),
                       term_stats=result.to_dict()["term_stats"], feedback=result.feedback())
        if result.ok and self.demo_data is not None:
            from robreward.codegen.card_filter import trajectory_preference_test

            attempt["stage"] = "card"
            card = trajectory_preference_test(result.code, self.demo_data, self.spec, threshold=self.config.card_threshold,
                                              timeout_s=3 * self.config.dry_run_timeout_s)
            attempt["card"] = card.to_dict()
            if not card.passed:
                attempt.update(ok=False, stage="card", feedback=card.feedback,
                               reasons=[card.error or f"ranked {card.fraction:.0%} of (successful, failed) demo pairs "
                                                      f"correctly, {card.threshold:.0%} required"])
            else:
                attempt["stage"] = result.stage

    # -- 4. train
    def train(self, it: int, survivors: list[dict]) -> None:
        """Train the candidates that passed; with --halving, in rungs of successive halving: every
        rung's results are kept in run/rung_R.json, so a resumed run redoes no rung."""
        config = self.config
        # a resumed run starts again from every candidate that entered the rungs: each rung's cut is
        # recomputed from its rung_R.json files, so it comes out as it did before
        alive = [c for c in survivors if c["status"] == "passed" or c.get("rungs")]
        budgets = halving_budgets(config.steps, config.halving, config.halving_eta)
        seeds = self.search_seeds()
        for rung, budget in enumerate(budgets):
            if not alive:
                return
            last = rung == len(budgets) - 1
            todo = [c for c in alive if last or not (self._cand_dir(c) / "run" / f"rung_{rung}.json").is_file()]
            if todo:
                self.log(f"iteration {it}: training {len(todo)} candidate(s)"
                         + (f" x {len(seeds)} seeds ({', '.join(map(str, seeds))})" if len(seeds) > 1 else "")
                         + f", {budget:,} steps each"
                         + (f" (successive halving, rung {rung + 1} of {len(budgets)})" if len(budgets) > 1 else ""))
            runs = [(c, self._seed_dirs(c)) for c in todo]
            slots = [(c, dirs) for c, dirs in runs for _ in dirs]  # run index -> its candidate
            done_ids: set = set()

            def done(index: int, run_dir: str, slots=slots, done_ids=done_ids) -> None:
                cand, dirs = slots[index]
                if cand["id"] not in done_ids and all(_finished(d) for d in dirs):
                    done_ids.add(cand["id"])
                    self._trained(cand, dirs)

            train_candidates(self.train_task, [self._cand_dir(c) / "reward.py" for c, dirs in runs for _ in dirs],
                             budget, [s for _ in runs for s in seeds], [d for _, dirs in runs for d in dirs],
                             num_envs=config.num_envs, eval_episodes=config.eval_episodes, ray=config.ray,
                             batched=config.batched, on_done=done if last else None)
            if not last:
                alive = self._halve(it, rung, budget, alive)

    def search_seeds(self) -> list[int]:
        """The candidates' training seeds: seed, seed+1, ..., seed+candidate_seeds-1."""
        return [self.config.seed + j for j in range(self.config.candidate_seeds)]

    def _seed_dirs(self, cand: dict) -> list[Path]:
        """A candidate's run dir per search seed: run/ for the first (what reflection and the videos read),
        seed_N/ for the others."""
        folder = self._cand_dir(cand)
        return [folder / "run"] + [folder / f"seed_{s}" for s in self.search_seeds()[1:]]

    def _trained(self, cand: dict, run_dirs, stopped_at: int | None = None) -> None:
        """Record a candidate's result over its seeds: per-seed fitness and success, their means (its fitness);
        a seed that failed to train fails the candidate (a reward that breaks on some seeds is not kept)."""
        run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
        seeds = self.search_seeds()[:len(run_dirs)]
        results = [_run_result(d, fitness=not self.config.by_preference) for d in run_dirs]
        per_seed = [{"seed": seed, "ok": r["ok"], "fitness": r["fitness"], "success": r["success"]}
                    for seed, r in zip(seeds, results)]
        failed = [(seed, r) for seed, r in zip(seeds, results) if not r["ok"]]
        mean = lambda key: (sum(r[key] for r in results) / len(results)  # noqa: E731
                            if all(r[key] is not None for r in results) else None)
        if failed:
            seed, r = failed[0]
            reason = r["error"] if len(results) == 1 else f"seed {seed}: {r['error']}"
            cand.update(status="train_failed", fitness=None, success=None, reason=reason)
        else:
            cand.update(status="trained", fitness=mean("fitness"), success=mean("success"), reason=None)
        cand["seeds"] = per_seed
        if stopped_at is not None:
            cand["stopped_at"] = stopped_at
        self.save()
        fitness = "" if cand["fitness"] is None else f"fitness {cand['fitness']:.4g}, "
        over = (f" (seeds: {', '.join(_fmt_seed(p) for p in per_seed)})" if len(per_seed) > 1 else "")
        self.log(f"{cand['id']}: " + (f"{fitness}success {cand['success']:.2f}{over}"
                                      if not failed else f"training failed: {cand['reason']}")
                 + (f" (stopped at {stopped_at:,} steps by successive halving)" if stopped_at is not None else ""))

    def _halve(self, it: int, rung: int, budget: int, alive: list[dict]) -> list[dict]:
        """After a rung: record each candidate's result on each seed (rung_R.json in each seed's run dir),
        keep the best 1/eta by the selection rule over seeds (ties: the earlier candidate), finish the
        others at this budget, and clear the survivors' eval.json so that the next rung continues them
        from their checkpoint."""
        from robreward.codegen import selection

        results = {}
        for cand in alive:
            results[cand["id"]] = []
            for run_dir in self._seed_dirs(cand):
                path = run_dir / f"rung_{rung}.json"
                if not path.is_file():
                    atomic_write_json(path, {"rung": rung, "steps": budget, **_run_result(run_dir),
                                             "steps_trained": checkpoint_step(run_dir / "checkpoints" / "latest.pt")})
                results[cand["id"]].append(json.loads(path.read_text()))
            seeds = results[cand["id"]]
            ok = all(r["ok"] for r in seeds)
            cand.setdefault("rungs", [])[rung:] = [{"steps": budget, "fitness": sum(r["fitness"] for r in seeds)
                                                    / len(seeds) if ok else None}]
        ranked = [c for c in alive if all(r["ok"] for r in results[c["id"]])]
        rows = selection.score([[r["fitness"] for r in results[c["id"]]] for c in ranked], self.config.selection)
        order = sorted(range(len(ranked)), key=lambda i: -rows[i]["score"])  # sorted is stable: the earlier first
        keep = [ranked[i] for i in order][:-(-len(alive) // self.config.halving_eta)]
        for cand in alive:
            if cand in keep:  # this rung's evaluation (not a later rung's, on resume) gives way to the next rung
                for run_dir, r in zip(self._seed_dirs(cand), results[cand["id"]]):
                    if checkpoint_step(run_dir / "checkpoints" / "latest.pt") == r["steps_trained"]:
                        (run_dir / "eval.json").unlink(missing_ok=True)
            elif cand["status"] == "passed":
                self._trained(cand, self._seed_dirs(cand), stopped_at=budget)
        self.save()
        if keep:
            fitness = ", ".join(f"{c['rungs'][rung]['fitness']:.4g}" for c in keep)
            self.log(f"iteration {it}: successive halving keeps {', '.join(c['id'] for c in keep)} (fitness {fitness}"
                     + (f", mean over {len(self.search_seeds())} seeds, ranked by {self.config.selection}"
                        if len(self.search_seeds()) > 1 else "") + ")")
        return keep

    # -- 5-6. reflect, select
    def reflect_and_select(self, it: int) -> None:
        rec = self.iteration(it)
        trained = [c for c in rec["candidates"] if c["status"] == "trained"]
        for cand in trained:
            path = self._cand_dir(cand) / "reflection.txt"
            if not path.is_file():
                stats = training_stats(self._cand_dir(cand) / "run", success=not self.config.text)
                if self.config.by_preference:
                    stats.pop("fitness", None)  # the constant 0 of a task without a fitness
                text = reflection_text(stats) if stats else "No training episode finished: raise --steps."
                atomic_write_text(path, text)
                cand["terms"] = sorted(stats.get("terms", {}))
        if trained and self.config.by_preference:
            self._select_by_preference(it, rec, trained)
        elif trained:
            top = self._select(it, trained)
            rec["best"] = top["id"]
            incumbent, winner = self.state["best"], self.state["selection"]["pick"]
            if incumbent is None or winner["id"] != incumbent["id"]:
                cand = self._candidate(winner["id"])
                self.state["best"] = {"id": cand["id"], "iteration": self._iteration_of(cand["id"]),
                                      "fitness": cand["fitness"],
                                      "reflection": (self._cand_dir(cand) / "reflection.txt").read_text()}
                self._copy_best(self._cand_dir(cand) / "run" / "policy.onnx")
                self.log(f"iteration {it}: new best {cand['id']} (fitness {cand['fitness']:.4g}"
                         + (f" +- {winner['se']:.3g} over {winner['n']} seeds, by {self.config.selection}"
                            if winner["se"] is not None else "") + ")")
            self.log(f"iteration {it}: {self.state['selection']['summary']}")
            if self.config.preferences == "fitness" and len(trained) > 1:
                worst = min(trained, key=lambda c: c["fitness"])
                rec["preferences"] = [f"{_described(top)} was preferred over {_described(worst)}; the task metric "
                                      "picked them, as ICPL's proxy for a person"]
            elif (self.config.preferences in ("human", "vlm") and len(trained) > 1 and not rec.get("preferences")
                  and it < self.config.iterations - 1):  # the last iteration has no next prompt to inform
                self._ask(it, rec, {c["id"].split("/")[-1]: c for c in trained})
        rec["done"] = True
        self.save()

    def _candidate(self, cand_id: str) -> dict:
        return next(c for rec in self.state["iterations"] for c in rec["candidates"] if c["id"] == cand_id)

    def _iteration_of(self, cand_id: str) -> int:
        return next(rec["index"] for rec in self.state["iterations"] if any(c["id"] == cand_id
                                                                            for c in rec["candidates"]))

    def _select(self, it: int, trained: list[dict]) -> dict:
        """Score every trained candidate so far (all iterations: one pooled SD) by the selection rule
        (codegen/selection.py); state["selection"] keeps the scores, the pick and how sure it is. Returns
        this iteration's best by the rule."""
        from robreward.codegen import selection

        pool = [c for rec in self.state["iterations"][:it + 1] for c in rec["candidates"] if c["status"] == "trained"]
        groups = [[p["fitness"] for p in c.get("seeds") or [{"fitness": c["fitness"]}]] for c in pool]
        rows = selection.score(groups, self.config.selection)
        for cand, row in zip(pool, rows):
            cand.update(fitness_se=row["se"], lcb=row["lcb"], p_best=row["p_best"])
        chosen = selection.pick(rows)
        ids = [c["id"] for c in pool]
        self.state["selection"] = {"rule": self.config.selection, "candidate_seeds": self.config.candidate_seeds,
                                   "seeds": self.search_seeds(), "z": selection.Z, "prior_df": selection.PRIOR_DF,
                                   "pooled_sd": selection.pooled_sd(groups),
                                   "pick": {"id": ids[chosen], **{k: rows[chosen][k] for k in
                                                                  ("mean", "se", "lcb", "n", "p_best")}},
                                   "gap_z": selection.gap_z(rows, chosen),
                                   "summary": selection.summary(ids, rows, chosen, self.config.selection)}
        mine = [i for i, c in enumerate(pool) if c in trained]
        return pool[max(mine, key=lambda i: (rows[i]["score"], -i))]

    def _select_by_preference(self, it: int, rec: dict, trained: list[dict]) -> None:
        """A --text task without a fitness: the judge (a person, or a VLM) picks the best and the
        worst of this iteration's candidates and the best so far (shown as "best-so-far"); the pick
        is the best."""
        incumbent = self.state["best"]
        options = {c["id"].split("/")[-1]: c for c in trained}  # cand_YY: a plain video file name
        if incumbent is not None:
            options["best-so-far"] = {"id": incumbent["id"], "terms": incumbent.get("terms", []), "fitness": None}
        picked = self._ask(it, rec, options) if len(options) > 1 else None
        if picked is None:  # one candidate, or a judge that gave no usable answer: keep the best so far
            best = options["best-so-far"] if incumbent is not None else trained[0]
            self.log(f"iteration {it}: no choice among the candidates: {best['id']} stays the best")
        else:
            best = picked
        rec["best"] = best["id"]
        if incumbent is None or best["id"] != incumbent["id"]:
            who = "vlm" if self.config.preferences == "vlm" else "person"
            self.state["best"] = {"id": best["id"], "iteration": it, "fitness": None, "chosen_by": who,
                                  "judge": self.judge()[0], "terms": best.get("terms", []),
                                  "reflection": (self._cand_dir(best) / "reflection.txt").read_text()}
            self._copy_best(self._cand_dir(best) / "run" / "policy.onnx")
            self.log(f"iteration {it}: new best {best['id']} ({self.judge()[0]}'s pick)")

    def _ask(self, it: int, rec: dict, options: dict[str, dict]) -> dict | None:
        """The judge's best and worst among options {video name: candidate}: the ICPL sentence goes
        into rec["preferences"]; returns the best (None if a VLM gave no usable answer: logged)."""
        from robreward.codegen.vlm_choice import VLMChoiceError

        try:
            answer = self.chooser().choose(
                self.out / f"iter_{it:02d}", it, self.train_task,
                [{"id": name, "fitness": c.get("fitness"), "policy": self.out / c["id"] / "run" / "policy.onnx"}
                 for name, c in options.items()], seed=self.config.seed)
        except VLMChoiceError as err:
            self.log(f"iteration {it}: no preference this iteration: {err}")
            rec["preference_error"] = str(err)
            return None
        best, worst = options[answer["best"]], options[answer["worst"]]
        who, how = self.judge()
        rec["preferences"] = [f"{_described(best)} was preferred over {_described(worst)} {how}"]
        self.log(f"iteration {it}: {who} prefers {best['id']} and likes {worst['id']} least")
        return best

    def _copy_best(self, policy: Path | None) -> None:
        best = self.out / "best"
        best.mkdir(exist_ok=True)
        atomic_write_text(best / "reward.py", (self.out / self.state["best"]["id"] / "reward.py").read_text())
        atomic_write_text(best / "reflection.txt", self.state["best"]["reflection"])
        if policy is not None and policy.is_file():
            atomic_copy(policy, best / "policy.onnx")

    # -- 7. final
    def final(self) -> None:
        config, best = self.config, self.state["best"]
        if config.final_seeds == 0 or best is None:
            return
        from robreward.codegen.finals import final_settings
        from robreward.rl.config import PPOConfig

        first = config.seed + config.candidate_seeds  # fresh: no search run saw these seeds
        final = self.state.setdefault("final", {"seeds": [first + s for s in range(config.final_seeds)],
                                                "results": {}})
        if "settings" not in final:  # fixed when the stage starts: a resumed run keeps them
            final["settings"] = final_settings(config, self.spec.name).to_dict()
            self.save()
        settings = final["settings"]
        steps = settings["steps"]
        seeds = [seed for seed in final["seeds"] if str(seed) not in final["results"]]
        if seeds:
            self.log(f"final: best reward {best['id']}, seeds {', '.join(map(str, seeds))}, {steps:,} steps each, "
                     f"{settings['num_envs']} worlds"
                     + (f" (the shipped baseline's settings, {settings['baseline_config']})"
                        if config.final_match == "baseline" and settings["baseline_config"] else "")
                     + (f"; differs from the baseline in {', '.join(d['setting'] for d in settings['differs'])}"
                        if settings["differs"] else ""))

            def done(index: int, run_dir: str) -> None:
                final["results"][str(seeds[index])] = _run_result(run_dir, fitness=not config.by_preference)
                self.save()

            train_candidates(self.train_task, [self.out / "best" / "reward.py"] * len(seeds), steps, seeds,
                             [self.out / "final" / f"seed_{seed}" for seed in seeds], num_envs=settings["num_envs"],
                             eval_episodes=config.final_eval_episodes, on_done=done, ray=config.ray,
                             batched=config.batched, ppo=PPOConfig(**settings["ppo"]), backend=settings["backend"])
        # without a fitness (selection by preference) the seeds are ordered by number
        ok = sorted((r["fitness"] or 0.0, int(s)) for s, r in final["results"].items() if r["ok"])
        if ok:  # the shipped policy is the median seed's, as policies/ does
            self._copy_best(self.out / "final" / f"seed_{ok[(len(ok) - 1) // 2][1]}" / "policy.onnx")
        if not (self.out / "compare.json").is_file() and ok and not config.by_preference:
            from robreward.eval.compare import compare

            compare([self.out / "final"], out=self.out, overwrite=True)  # its own, maybe half-written

    def finish(self) -> dict:
        self.state["status"] = "done"
        self.save()
        report = self.write_report()
        best = self.state["best"]
        self.log(f"report: {report}")
        return {"run_dir": str(self.out), "best": best and {k: v for k, v in best.items() if k != "reflection"},
                "report": str(report), "state": self.state, "ledger": self.ledger.to_dict()}

    # -- report.md (robreward/codegen/report.py)
    def write_report(self) -> Path:
        return write_report(self)


# -- helpers ------------------------------------------------------------------------------------------
def _new_state() -> dict:
    return {"format": 1, "status": "running", "stop_reason": None, "llm_calls": 0, "replay_fallbacks": 0,
            "iterations": [], "best": None}


def _fmt_seed(result: dict) -> str:
    return f"{result['seed']}: " + ("failed" if not result["ok"] else "-" if result["fitness"] is None
                                    else f"{result['fitness']:.3g}")


def halving_budgets(steps: int, rungs: int, eta: int) -> list[int]:
    """The env-step budget of each successive-halving rung: steps / eta^rungs, ..., steps / eta, steps."""
    return [max(1, int(steps) // int(eta) ** (rungs - r)) for r in range(int(rungs) + 1)]


def _run_result(run_dir, fitness: bool = True) -> dict:
    """A run's outcome from eval.json / failed.json; fitness=False: a task without a fitness
    (ok when the evaluation ran; fitness None)."""
    run_dir = Path(run_dir)
    if (run_dir / "failed.json").is_file():
        error = json.loads((run_dir / "failed.json").read_text())["error"]
        return {"ok": False, "fitness": None, "success": None, "error": error[:300]}
    ev = json.loads((run_dir / "eval.json").read_text())
    if not fitness:
        return {"ok": True, "fitness": None, "success": ev.get("success_rate"), "error": None,
                "return": ev.get("return_mean")}
    fitness = ev.get("fitness_mean")
    ok = fitness is not None and fitness == fitness
    return {"ok": ok, "fitness": fitness if ok else None, "success": ev.get("success_rate"),
            "error": None if ok else "the evaluation gave no fitness"}


def _best_of_run(run_dir, task_name: str) -> dict:
    """The best program and reflection of an earlier generate run (--from RUN)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--from {str(run_dir)!r}: not a generate run directory (no {STATE_FILE})")
    best = json.loads(path.read_text()).get("best")
    if not best:
        raise ValueError(f"--from {str(run_dir)!r}: that run has no trained candidate to start from")
    their_task = json.loads((Path(run_dir) / CONFIG_FILE).read_text()).get("task")
    from robreward.envs.registry import get_task

    if get_task(their_task).name != task_name:
        raise ValueError(f"--from {str(run_dir)!r} was a run on task {their_task!r}, not {task_name!r}")
    return {"code": (Path(run_dir) / "best" / "reward.py").read_text(), "reflection": best["reflection"],
            "from": str(run_dir)}


__all__ = ["GenerateConfig", "check_fitness_expression", "generate", "load_config", "train_candidates",
           "training_stats"]
