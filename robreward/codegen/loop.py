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
from robreward.codegen.llm import BudgetExceeded, Completion, Ledger, LLMError, RunClient
from robreward.codegen.loop_check import CheckStage
from robreward.codegen.loop_select import SelectStage
from robreward.codegen.loop_train import TrainStage, _run_result, halving_budgets
from robreward.codegen.prompt import build_prompt
from robreward.codegen.report import write_report
from robreward.codegen.text_task import check_fitness_expression, write_text_task
from robreward.codegen.training import train_candidates, training_stats
from robreward.fileio import atomic_write_json

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"


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
class _Run(CheckStage, TrainStage, SelectStage):
    """One generate run directory: its state and the stages `generate` calls in order.
    The stages live in loop_check.py (2-3), loop_train.py (4) and loop_select.py (5-6); the prompt,
    the final stage and the bookkeeping they share are here."""

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


__all__ = ["GenerateConfig", "check_fitness_expression", "generate", "halving_budgets", "load_config",
           "train_candidates", "training_stats"]
