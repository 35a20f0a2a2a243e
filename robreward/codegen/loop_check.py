"""Stages 2-3 of the generate loop (robreward.codegen.loop): sample K reward programs in one LLM
request, then extract, preflight and (with --demos) CARD-test each, with bounded repair rounds;
an iteration whose candidates all fail is sampled again. Every round is saved (samples_aN.json,
check.json), so a resumed run redoes nothing. A mixin of the loop's ``_Run``: it reads the run's
config, spec, state and LLM client."""

from __future__ import annotations

import json
import logging

from robreward.codegen.extract import crash_reason, extract_program, preflight
from robreward.codegen.prompt import repair_prompt
from robreward.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger("robreward.codegen.loop")  # the loop's logger: its warnings keep their name

PASSED = ("passed", "trained", "train_failed")  # candidate statuses that got through the checks


class CheckStage:
    """sample_and_check and its rounds (module docstring). Uses the run's config, spec, demo_data, llm,
    out, log, save(), iteration(), _cand_dir() and _complete()."""

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
