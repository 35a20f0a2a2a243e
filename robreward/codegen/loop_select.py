"""Stages 5-6 of the generate loop (robreward.codegen.loop): reflect on each trained candidate's
per-term training statistics, keep the best (by task fitness and the selection rule over seeds,
or by a judge's preference for a task without a fitness) with its reflection for the next
prompt, and ask the judge (a person or a VLM) for the ICPL preference sentence. A mixin of the
loop's ``_Run``: it reads the run's config and state and saves them."""

from __future__ import annotations

from pathlib import Path

from robreward.codegen.reflect import reflection_text
from robreward.codegen.training import training_stats
from robreward.fileio import atomic_copy, atomic_write_text


def _described(cand: dict) -> str:
    fitness = "" if cand.get("fitness") is None else f"; fitness {cand['fitness']:.3g}"
    return f"candidate {cand['id']} (terms {', '.join(cand.get('terms', []))}{fitness})"


class SelectStage:
    """reflect_and_select and the judging it asks for (module docstring). Uses the run's config,
    state, out, train_task, log, save(), iteration(), _cand_dir(), judge(), chooser() and
    search_seeds() (TrainStage)."""

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
