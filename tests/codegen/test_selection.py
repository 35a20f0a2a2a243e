"""Choosing the best candidate from several seeds (codegen/selection.py), and generate with
--candidate-seeds: per-seed numbers in the state and the report, the rule, fresh final seeds."""

import json

import pytest

from robreward.codegen import selection
from robreward.codegen.config import GenerateConfig, load_config
from robreward.codegen.loop import generate
from tests.codegen.test_loop import EXP, NEGDIST, TANH, Script, config


def test_the_lower_bound_prefers_a_reward_that_learns_on_every_seed():
    """push's winner: 0.96 on one seed, 0.54 and 0.92 on two more; a steadier reward of a lower peak wins."""
    lucky = [0.68, 0.34, 0.67]      # mean 0.563, seeds disagree
    steady = [0.55, 0.53, 0.56]     # mean 0.547, seeds agree
    rows = selection.score([lucky, steady], "lcb")
    assert selection.pick(rows) == 1
    assert selection.pick(selection.score([lucky, steady], "mean")) == 0
    assert rows[0]["se"] > rows[1]["se"] > 0
    assert rows[1]["lcb"] == pytest.approx(rows[1]["mean"] - rows[1]["se"])
    assert 0.0 < rows[1]["p_best"] < 1.0 and rows[0]["p_best"] + rows[1]["p_best"] == pytest.approx(1.0)


def test_two_agreeing_seeds_do_not_get_a_zero_standard_error():
    """Each SD is shrunk towards the pooled SD: two seeds that happen to agree still carry seed noise."""
    rows = selection.score([[0.5, 0.5], [0.3, 0.7], [0.2, 0.6]], "lcb")
    assert rows[0]["sd"] == 0.0 and rows[0]["se"] > 0.05
    assert selection.pooled_sd([[0.5, 0.5], [0.3, 0.7], [0.2, 0.6]]) == pytest.approx(0.2309, abs=1e-3)


def test_one_seed_per_candidate_ranks_by_the_mean_and_says_it_cannot_tell_how_sure():
    rows = selection.score([[0.2], [0.9], [0.9]], "lcb")
    assert [r["se"] for r in rows] == [None] * 3 and selection.pick(rows) == 1  # the first of equals
    text = selection.summary(["a", "b", "c"], rows, 1, "lcb")
    assert "no standard error" in text and "--candidate-seeds 2" in text
    assert [r["p_best"] for r in rows] == [None] * 3


def test_the_summary_says_how_sure_the_pick_is():
    rows = selection.score([[0.9, 0.92, 0.88], [0.1, 0.12, 0.08]], "lcb")
    text = selection.summary(["good", "bad"], rows, 0, "lcb")
    assert text.startswith("good has the highest lower confidence bound") and "100%" in text and "SE" in text
    with pytest.raises(ValueError, match="choose one of lcb, mean"):
        selection.score([[0.1]], "max")


def test_config_checks_and_an_old_run_resumes_as_one_seed_search(tmp_path):
    with pytest.raises(ValueError, match="--candidate-seeds must be >= 1"):
        GenerateConfig(task="reach", llm="m", out="x", candidate_seeds=0)
    with pytest.raises(ValueError, match="unknown --selection 'best'"):
        GenerateConfig(task="reach", llm="m", out="x", selection="best")
    with pytest.raises(ValueError, match="unknown --final-match"):
        GenerateConfig(task="reach", llm="m", out="x", final_match="both")
    old = GenerateConfig(task="reach", llm="m", out=str(tmp_path)).to_dict()
    for key in ("candidate_seeds", "selection", "final_match"):
        old.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(old))
    resumed = load_config(tmp_path)
    assert (resumed.candidate_seeds, resumed.selection, resumed.final_match) == (1, "mean", "search")


def test_generate_trains_each_candidate_on_its_seeds_at_once_and_reports_them(openai_server, tmp_path, monkeypatch):
    """K=2 x M=2 in one batched process; per-seed fitness in state.json and report.md; the final seed is fresh
    (seed + M), trained with the shipped reach baseline's settings unless told otherwise."""
    import robreward.codegen.loop as loop
    import robreward.codegen.loop_train as loop_train

    calls = []
    real = loop.train_candidates

    def spy(task, files, steps, seed, out_dirs, **kwargs):
        calls.append({"seeds": list(seed), "dirs": [str(d) for d in out_dirs], "envs": kwargs["num_envs"],
                      "ppo": kwargs.get("ppo")})
        return real(task, files, steps, seed, out_dirs, **kwargs)

    monkeypatch.setattr(loop, "train_candidates", spy)
    monkeypatch.setattr(loop_train, "train_candidates", spy)  # the search's training stage
    openai_server.text_fn = Script([[EXP, TANH]])
    out = tmp_path / "gen"
    cfg = config(openai_server, out, candidate_seeds=2, selection="lcb", steps=2048, num_envs=8, eval_episodes=4,
                 final_seeds=1, final_steps=1024, final_match="baseline")
    result = generate(cfg)
    assert calls[0]["seeds"] == [0, 1, 0, 1]  # K x M runs in one call
    assert calls[0]["dirs"][1].endswith("cand_00/seed_1") and calls[0]["dirs"][0].endswith("cand_00/run")
    state = result["state"]
    cands = state["iterations"][0]["candidates"]
    for c in cands:
        assert [p["seed"] for p in c["seeds"]] == [0, 1] and all(p["ok"] for p in c["seeds"])
        assert c["fitness"] == pytest.approx(sum(p["fitness"] for p in c["seeds"]) / 2)
        assert c["fitness_se"] > 0 and c["lcb"] == pytest.approx(c["fitness"] - c["fitness_se"])
    pick = max(cands, key=lambda c: c["lcb"])
    assert state["best"]["id"] == pick["id"] and state["selection"]["rule"] == "lcb"
    # the final seed is the first one the search never trained, with the baseline's worlds and PPO settings
    assert state["final"]["seeds"] == [2] and calls[-1]["seeds"] == [2]
    settings = state["final"]["settings"]
    assert settings["baseline_config"].endswith("config.yaml") and settings["steps"] == 1024
    baseline_envs = json.loads(json.dumps(settings))["num_envs"]
    assert calls[-1]["envs"] == baseline_envs
    assert {"setting": "steps", "final": 1024, "baseline": settings["differs"][0]["baseline"]} in settings["differs"]
    report = (out / "report.md").read_text()
    assert "| per seed |" in report and "0: " in report and "1: " in report
    assert "Selection rule: the highest lower confidence bound" in report and "How sure:" in report
    assert "Settings that differ from the shipped hand baseline's" in report and "| steps | 1024 |" in report
    assert "Search cost: 8,192 env steps" in report


@pytest.mark.slow  # two rungs of 3 x 2 trainings (about 20 s on 2 quiet cores): make test-all
def test_halving_ranks_by_the_rule_over_seeds_and_continues_the_survivor_on_every_seed(openai_server, tmp_path):
    """K=3 x M=2, one rung of halving (eta 2): every (candidate, seed) trains 1024 steps, the best 2 by the lower
    bound over their 2 seeds go on to 2048 on both seeds (from their checkpoints), the third stops at 1024."""
    openai_server.text_fn = Script([[EXP, NEGDIST, TANH]])
    out = tmp_path / "gen"
    result = generate(config(openai_server, out, samples=3, candidate_seeds=2, halving=1, steps=2048, num_envs=8,
                             eval_episodes=4))
    cands = result["state"]["iterations"][0]["candidates"]
    rungs = {c["id"]: [json.loads((out / c["id"] / d / "rung_0.json").read_text()) for d in ("run", "seed_1")]
             for c in cands}
    rows = selection.score([[r["fitness"] for r in rungs[c["id"]]] for c in cands], "lcb")
    order = sorted(range(3), key=lambda i: -rows[i]["score"])
    kept, dropped = [cands[i] for i in order[:2]], cands[order[2]]
    for cand in kept:
        for d in ("run", "seed_1"):
            steps = [int(r.split(",")[0]) for r in (out / cand["id"] / d / "progress.csv").read_text().splitlines()[1:]]
            assert steps[-1] == 2048 and steps == sorted(set(steps))  # continued, not restarted
        assert cand["status"] == "trained" and "stopped_at" not in cand and len(cand["seeds"]) == 2
    assert dropped["stopped_at"] == 1024 and dropped["rungs"][0]["fitness"] == pytest.approx(rows[order[2]]["mean"])
