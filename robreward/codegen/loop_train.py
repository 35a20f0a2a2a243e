"""Stage 4 of the generate loop (robreward.codegen.loop): train the candidates that passed their
checks over the search seeds, with --halving in rungs of successive halving (each rung's results
kept in run/rung_R.json, so a resumed run redoes no rung), and record each candidate's result.
A mixin of the loop's ``_Run``: it reads the run's config and state and saves them."""

from __future__ import annotations

import json
from pathlib import Path

from robreward.codegen.training import _finished, checkpoint_step, train_candidates
from robreward.fileio import atomic_write_json


class TrainStage:
    """train, the search seeds and the successive-halving rungs (module docstring). Uses the run's
    config, train_task, log, save() and _cand_dir()."""

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
