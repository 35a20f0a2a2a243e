"""benchmarks/prefs.py: cell directories per pairing, summaries and the imitation ratio (no training)."""

import json
import re

import numpy as np
import pytest

from benchmarks.prefs_hand import LEGACY_MACHINE as LEGACY
from tests.conftest import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/prefs.py", "prefs_bench")


def row(task, teacher, queries, seed, variant, fraction, ret, steps=1_000_000):
    return {"task": task, "teacher": teacher, "queries": queries, "seed": seed, "variant": variant,
            "pairing": variant or "mixed", "features": [], "metric": "return_mean", "fraction_of_hand": fraction,
            "return_mean": ret, "steps": steps}


def test_cells_of_another_variant_get_their_own_directory(bench, tmp_path):
    assert bench.variant_name() == "" and bench.variant_name("any") == "any"
    assert bench.variant_name("mixed", ("|ee_to_cube|", "qpos"), False) == "norm_ee_to_cube+qpos+noact"
    assert bench.variant_name(final_policy="restart", feedback_fraction=0.5) == "restart+ff0.5"
    assert bench.variant_name(stop_accuracy=None) == "nostop" and bench.variant_name(stop_accuracy=0.99) == "stop0.99"
    assert bench.variant_name(stop_accuracy=bench.STOP_ACCURACY) == "" and bench.variant_name(example="surf") == "surf"
    assert bench.variant_name(warm_start="both") == "bc"
    assert bench.variant_name(example="surf", warm_start="both") == "surf+bc"
    assert bench.variant_name(warm_start="fresh") == "bcfresh" and bench.variant_name(example="rime") == "rime"
    assert bench.variant_name(final_policy="best", feedback_fraction=0.5, restart_keep=0.5) == "best+ff0.5+keep0.5"
    assert bench.variant_name(final_policy="best", feedback_fraction=0.25, choose_at="equal") == "best+ff0.25+eq"
    assert bench.variant_name(final_policy="best", choose_at="end") == "best"
    from robreward.feedback.preferences.model import EnsembleConfig

    # --example NAME is the example config users pass to prefs train (--surf: --example surf)
    surf = EnsembleConfig(**bench.example_settings("surf"))
    assert (surf.crop, surf.pseudo_threshold, surf.pseudo_ratio) == (0.8, 0.99, 4)
    rime = EnsembleConfig(**bench.example_settings("rime"))
    assert (rime.denoise, rime.rime_beta, rime.rime_flip) == ("rime", (3.0, 1.0), 0.001)
    assert EnsembleConfig(**bench.example_settings("label-smoothing")).label_smoothing == 0.1
    prior = EnsembleConfig(**bench.example_settings("prior"))
    assert (prior.prior_weight, prior.prior_steps) == (1.0, 200) and bench.variant_name(example="prior") == "prior"
    assert EnsembleConfig(**bench.example_settings("min-steps")).min_steps == 25
    assert EnsembleConfig(**bench.example_settings("restandardize")).restandardize == 10
    assert EnsembleConfig(**bench.example_settings("end-worst")).end_value == "worst"
    assert EnsembleConfig(**bench.example_settings("end-learned")).end_value == "learned"
    from robreward.feedback.preferences.loop import PrefsConfig

    # the naming reference is the settings the grid began with, so older rows keep their meaning; a cell of
    # today's defaults names what differs from them
    assert (bench.PAIRING, bench.FINAL_POLICY, bench.FEEDBACK_FRACTION) == ("mixed", "continue", 0.75)
    assert bench.STOP_ACCURACY == 0.97
    from robreward.envs.registry import get_task
    from robreward.feedback.preferences.model import expand_features

    defaults = PrefsConfig()
    names = {task: bench.variant_name(defaults.pairing, expand_features(get_task(task), defaults.features),
                                      defaults.feature_action, defaults.final_policy, defaults.feedback_fraction,
                                      choose_at=defaults.choose_at)
             for task in ("cheetah-run", "push")}
    assert names["cheetah-run"] == "best+ff0.25+eq" == bench.default_variant("cheetah-run")
    assert names["push"] == ("norm_ee_pos+norm_ee_vel+gripper_opening+norm_cube_pos+norm_goal_pos+norm_ee_to_cube+"
                             "norm_cube_to_goal+best+ff0.25+eq") == bench.default_variant("push")
    assert bench.cell_dir(tmp_path, "push", "mistake:0.1", 200, 1) == tmp_path / "push/mistake-0.1/q200/s1"
    assert bench.cell_dir(tmp_path, "push", "oracle", 200, 1, "any") == tmp_path / "push/oracle/q200/s1-any"
    # another PPO budget than the task's default is another cell: its own directory
    assert bench.cell_dir(tmp_path, "push", "oracle", 200, 1, "any", 3_000_000) == tmp_path / "push/oracle/q200/s1-any"
    assert bench.cell_dir(tmp_path, "lift", "oracle", 200, 1, "", 3_000_000) == tmp_path / "lift/oracle/q200/s1-steps3000000"


def test_summary_groups_by_pairing_and_checks_the_push_target(bench):
    rows = [row("push", "oracle", 200, 0, "", 0.8, 1), row("push", "oracle", 200, 1, "", 1.0, 1),
            row("push", "oracle", 200, 0, "any", 0.0, 1)]
    summary = {s["variant"]: s for s in bench.summarize(rows)}
    assert summary[""]["fraction_mean"] == pytest.approx(0.9) and summary[""]["seeds"] == [0, 1]
    assert summary[""]["meets_target"] is True and summary["any"]["meets_target"] is False
    # the same cells at another PPO budget are summarized apart, not averaged in
    longer = bench.summarize(rows + [row("push", "oracle", 200, 0, "", 0.0, 1, steps=9_000_000)])
    assert [(s["variant"], s["steps"], s["fraction_mean"]) for s in longer] == [
        ("", 1_000_000, pytest.approx(0.9)), ("", 9_000_000, 0.0), ("any", 1_000_000, 0.0)]


def test_imitation_ratio_over_the_seeds_both_ran(bench):
    ours = [row("cheetah-run", "oracle", 200, s, "", 0, r) for s, r in ((0, 3000.0), (1, 1000.0), (2, 9e9))]
    ours.append(row("cheetah-run", "oracle", 200, 0, "any", 0, -5.0))  # another variant: not compared
    theirs = [{"queries": 200, "seed": 0, "return_mean": 1000.0}, {"queries": 200, "seed": 1, "return_mean": 1000.0},
              {"queries": 50, "seed": 0, "return_mean": 10.0}]  # no robreward cell at 50: no comparison
    (only,) = bench.compare_imitation(ours, theirs)
    assert only["seeds"] == [0, 1] and only["ratio"] == pytest.approx(2.0) and only["meets_target"] is True
    crashed = bench.compare_imitation(ours, [*theirs, {"queries": 200, "seed": 2, "failed": True, "return_mean": None}])
    assert crashed[0]["seeds"] == [0, 1] and crashed[0]["imitation_failed_seeds"] == [2]  # reported, not averaged
    only_crash = bench.compare_imitation([], [{"queries": 50, "seed": 0, "failed": True, "return_mean": None}])
    assert only_crash == [{"queries": 50, "seeds": [], "imitation_failed_seeds": [0], "ratio": None, "target": 1.5,
                           "meets_target": None}]
    worse = bench.compare_imitation(ours, [{"queries": 200, "seed": 1, "return_mean": -50.0}])
    assert worse[0]["ratio"] is None and worse[0]["meets_target"] is True  # no ratio, but 1000 >= 1.5 x -50


@pytest.mark.slow  # a preference run and a retraining end to end: make test-all
def test_retrain_trains_a_fresh_policy_on_the_cells_learned_reward_once(bench, tmp_path, monkeypatch):
    from robreward.feedback.preferences.loop import PrefsConfig, train_preferences
    from robreward.feedback.preferences.model import EnsembleConfig
    from robreward.rl import runner
    from robreward.rl.config import PPOConfig

    cell = tmp_path / "cell"
    train_preferences(PrefsConfig(task="reach", queries=20, per_round=10, segment=10, steps=2048, num_envs=8, seed=3,
                                  eval_episodes=4, progress=False, heldout_pairs=50, out=str(cell),
                                  ensemble=EnsembleConfig(hidden=(32,), epochs=5),
                                  ppo=PPOConfig(num_steps=16, actor_hidden=(32,), critic_hidden=(32,))))
    row = {"run_dir": str(cell), "task": "reach", "metric": "success_rate", "hand_baseline": 0.5, "steps": 2048}
    retrained = bench.retrain_cell(row)
    out = cell / "retrain"
    saved = json.loads((out / "eval.json").read_text())
    assert retrained["policy"] == saved["success_rate"] and retrained["fraction_of_hand"] == saved["success_rate"] / 0.5
    assert saved["episodes"] == 4 and saved["reward"] == f"pref:{cell}"  # trained and judged as the loop's policy
    progress = (out / "progress.csv").read_text().splitlines()
    assert int(progress[-1].split(",")[0]) >= 2048 and int(progress[1].split(",")[0]) == 8 * 16  # from scratch
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("a finished retraining is read back"))
    assert bench.retrain_cell(row) == retrained
    summary = bench.summarize([{**row, "teacher": "oracle", "queries": 20, "seed": 3, "variant": "", "pairing": "mixed",
                                "features": [], "fraction_of_hand": 0.2, "retrained": retrained}])
    assert summary[0]["retrained_seeds"] == [3] and summary[0]["retrained_fraction_mean"] == retrained["fraction_of_hand"]


def test_two_benchmark_runs_beside_each_other_keep_each_others_cells(bench, tmp_path):
    """Each process saves the file after every cell; a cell another process saved since this one read the file
    stays in it (they used to overwrite each other's)."""
    out = tmp_path / "prefs.json"
    a = row("cheetah-run", "oracle", 200, 5, "best+ff0.5", 0.7, 4500.0)
    b = row("cheetah-run", "oracle", 200, 8, "best+ff0.5", 0.75, 4900.0)
    c = row("cheetah-run", "oracle", 200, 6, "best+ff0.5", 1.0, 6480.0)
    first, second = {}, {}  # what each process holds: both read the file before either saved
    first[bench.row_key(a)] = a
    bench.save_results(out, first, {})
    second[bench.row_key(b)] = b
    bench.save_results(out, second, {})
    first[bench.row_key(c)] = c
    bench.save_results(out, first, {})
    saved = json.loads(out.read_text())
    assert sorted(r["seed"] for r in saved["cells"]) == [5, 6, 8]
    assert saved["summary"][0]["seeds"] == [5, 6, 8]


def test_a_cell_trained_again_beside_a_run_that_read_it_earlier_is_not_put_back(bench, tmp_path):
    """Process one reads the file holding cell x, process two trains x again (another machine) and saves it, then
    process one saves the cell it trained itself: the file keeps two's x (one used to write back its stale copy)."""
    out = tmp_path / "prefs.json"
    x_old = row("cheetah-run", "stochastic:1", 200, 5, "best+ff0.25+eq", 1.01, 6578.0)
    bench.save_results(out, {bench.row_key(x_old): x_old}, {})
    one, _, _ = bench.load_results(out)
    two, _, _ = bench.load_results(out)
    x_new = {**x_old, "fraction_of_hand": 1.00, "machine": "AMD EPYC"}
    two[bench.row_key(x_new)] = x_new
    bench.save_results(out, two, {}, {}, ({bench.row_key(x_new)}, set(), set()))
    y = row("cheetah-run", "oracle", 200, 9, "best+ff0.25+eq", 1.0, 6535.0)
    one[bench.row_key(y)] = y
    bench.save_results(out, one, {}, {}, ({bench.row_key(y)}, set(), set()))
    saved = {(r["seed"], r["fraction_of_hand"]) for r in json.loads(out.read_text())["cells"]}
    assert saved == {(5, 1.00), (9, 1.0)}
    assert one[bench.row_key(x_old)]["machine"] == "AMD EPYC"  # the process's dict took the file's version in


def test_same_machine_hand_runs_give_each_row_a_fraction_of_their_mean_and_survive_saving(bench, tmp_path):
    cells = [{**row("cheetah-run", "oracle", 200, s, "best+ff0.5", 0.0, r), "policy": r, "hand_baseline": 6493.0}
             for s, r in ((0, 5000.0), (1, 5400.0))]
    old = {**row("cheetah-run", "oracle", 200, 0, "", 0.0, 1.0), "policy": 1.0, "hand_baseline": 3157.0}
    hand = [{"task": "cheetah-run", "seed": s, "steps": 1_000_000, "policy": r, "hand_baseline": 6493.0}
            for s, r in ((0, 6000.0), (1, 6400.0), (2, 5600.0))]
    longer = {**hand[0], "steps": 2_000_000, "policy": 1e9}  # another budget: not compared
    older, summary = bench.summarize(cells + [old], hand + [longer])
    assert "hand_here" not in older  # judged against another baseline version (an older engine): not compared
    assert summary["hand_here"] == {"seeds": [0, 1, 2], "mean": 6000.0, "std": pytest.approx(326.6, abs=0.1)}
    assert summary["fraction_of_hand_here"] == pytest.approx(5200.0 / 6000.0)
    assert "hand_here" not in bench.summarize(cells)[0]  # no hand runs here: no such field
    assert summary["variant"] == "best+ff0.5"
    out = tmp_path / "prefs.json"
    bench.save_results(out, {bench.row_key(c): c for c in cells}, {},
                       {bench.hand_key(h): h for h in hand})
    bench.save_results(out, {}, {})  # another process without hand runs keeps them
    rows, _, hand_back = bench.load_results(out)
    assert sorted(hand_back) == [("cheetah-run", s, 1_000_000, LEGACY) for s in (0, 1, 2)] and len(rows) == 2
    assert json.loads(out.read_text())["summary"][0]["fraction_of_hand_here"] == pytest.approx(5200.0 / 6000.0)


def test_hand_runs_are_compared_only_with_cells_of_their_machine(bench, tmp_path):
    """Training is bit-reproducible on one CPU, not across two: a row is judged against the hand runs of the machine
    its cells ran on, rows and hand runs saved before they named a machine being the Intel VM's."""
    amd = "AMD EPYC"
    cells = [{**row("cheetah-run", "oracle", 200, s, "best+ff0.25+eq", 0.0, r), "policy": r, "hand_baseline": 6493.0,
              "machine": amd} for s, r in ((0, 6000.0), (1, 6600.0))]
    hand = [{"task": "cheetah-run", "seed": s, "steps": 1_000_000, "policy": r, "hand_baseline": 6493.0}
            for s, r in ((0, 5000.0), (1, 5200.0))]  # no machine: the Intel VM's
    assert "hand_here" not in bench.summarize(cells, hand)[0]  # another machine's hand runs: not compared
    hand_amd = [dict(h, policy=h["policy"] + 1500.0, machine=amd) for h in hand]
    summary = bench.summarize(cells, hand + hand_amd)[0]
    assert summary["machines"] == [amd] and summary["hand_here"]["mean"] == 6600.0
    assert summary["fraction_of_hand_here"] == pytest.approx(6300.0 / 6600.0)
    mixed = bench.summarize([cells[0], {**cells[1], "machine": LEGACY}], hand + hand_amd)[0]
    assert mixed["machines"] == sorted([amd, LEGACY]) and "hand_here" not in mixed  # one row, two machines
    out = tmp_path / "prefs.json"
    bench.save_results(out, {}, {}, {bench.hand_key(h): h for h in hand + hand_amd})  # same seeds, both kept
    saved = json.loads(out.read_text())
    assert len(saved["hand_cells"]) == 4
    spread = {r["machine"]: r["mean"] for r in saved["hand_spread"]}
    assert spread == {LEGACY: pytest.approx(5100.0 / 6493.0), amd: pytest.approx(6600.0 / 6493.0)}


def test_hand_spread_says_how_often_the_hand_reward_itself_meets_the_goals_per_budget(bench, tmp_path):
    import itertools

    def hand(seed, value, steps=623_168):
        return {"task": "cheetah-run", "seed": seed, "steps": steps, "policy": value, "hand_baseline": 1000.0}

    mixed = [hand(s, v) for s, v in enumerate((1000.0, 850.0, 700.0, 950.0))]
    good = [hand(s, 950.0, steps=1_000_000) for s in range(3)]
    spread = {r["steps"]: r for r in bench.hand_spread(mixed + good)}
    short = spread[623_168]
    assert short["seeds"] == [0, 1, 2, 3] and short["fractions"] == [1.0, 0.85, 0.7, 0.95]
    assert short["share_at_seed_goal"] == 0.75 and short["three_seeds_all_at_seed_goal"] == pytest.approx(0.421875)
    exact = np.mean([np.mean(draw) >= 0.9 for draw in itertools.product(short["fractions"], repeat=5)])
    assert short["five_seed_mean_at_mean_goal"] == pytest.approx(exact, abs=0.02)  # 10,000 draws of the 1,024
    assert 0.3 < exact < 0.7  # a case the resampling can get wrong
    assert spread[1_000_000]["five_seed_mean_at_mean_goal"] == 1.0 and spread[1_000_000]["share_at_seed_goal"] == 1.0
    out = tmp_path / "prefs.json"
    bench.save_results(out, {}, {}, {bench.hand_key(h): h for h in mixed})
    assert json.loads(out.read_text())["hand_spread"] == bench.hand_spread(mixed)


def test_hand_steps_needs_hand_seeds_and_a_positive_budget(bench, capsys):
    for args in (["--hand-steps", "1000"], ["--hand-seeds", "0", "--hand-steps", "0"]):
        with pytest.raises(SystemExit):
            bench.main(["--tasks", "reach", "--seeds", "", *args])
        err = capsys.readouterr().err
        assert f"--hand-steps {args[-1]}: a positive number of PPO steps, with --hand-seeds" in err


@pytest.mark.slow  # a PPO run end to end: make test-all
def test_hand_cell_trains_the_shipped_config_at_the_seed_asked_and_is_read_back(bench, tmp_path, monkeypatch):
    from robreward.codegen import finals
    from robreward.rl import runner

    tiny = {"task": "reach", "reward": "hand", "num_envs": 8, "steps": 2048, "seed": 2, "out": "runs/elsewhere",
            "eval_episodes": 4, "progress": True, "_schema_version": 1,
            "ppo": {"num_steps": 16, "actor_hidden": [32], "critic_hidden": [32]}}
    monkeypatch.setattr(finals, "baseline_config", lambda task: (dict(tiny), f"policies/v1/{task}/config.yaml"))
    cell = bench.run_hand_cell("reach", 5, tmp_path, "success_rate")
    out = tmp_path / "reach" / "hand" / "s5"
    saved = json.loads((out / "eval.json").read_text())
    assert cell["run_dir"] == str(out) and cell["policy"] == saved["success_rate"] and cell["steps"] == 2048
    from robreward.eval.baseline import load_baseline

    assert cell["hand_baseline"] == load_baseline("reach").hand["success_rate"]
    assert saved["episodes"] == 4 and saved["reward"] == "hand"
    assert "\nseed: 5\n" in (out / "config.yaml").read_text()  # the seed asked, not the shipped config's
    shorter = bench.run_hand_cell("reach", 5, tmp_path, "success_rate", steps=1024)  # e.g. a preference run's fresh policy's budget
    assert shorter["run_dir"] == str(tmp_path / "reach" / "hand" / "s5-1024") and shorter["steps"] == 1024
    assert "\nsteps: 1024\n" in (tmp_path / "reach" / "hand" / "s5-1024" / "config.yaml").read_text()
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("a finished hand run is read back"))
    assert bench.run_hand_cell("reach", 5, tmp_path, "success_rate") == cell
    assert bench.run_hand_cell("reach", 5, tmp_path, "success_rate", steps=2048) == cell  # the config's own steps: the same run


@pytest.mark.parametrize("args, message", [
    (["--restart-keep", "1"], r"--restart-keep: restart_keep must be a share in \[0, 1\), got 1.0"),
    (["--restart-keep", "0.5", "--final-policy", "continue"], "with continue there is no fresh policy"),
    (["--choose-at", "equal", "--final-policy", "restart"], "--choose-at: choose_at says when final_policy best"),
])
def test_bad_restart_keep_is_refused_before_any_cell(bench, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--tasks", "reach", "--teachers", "oracle", "--budgets", "10", "--seeds", "0", "--list",
                    "--work", str(tmp_path), "--out", str(tmp_path / "prefs.json"), *args])
    assert exit_info.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not list(tmp_path.iterdir())


def test_plot_draws_the_label_efficiency_of_the_cells_in_the_file(bench, tmp_path, capsys):
    out = tmp_path / "prefs.json"
    variant, steps = bench.default_variant("reach"), bench.STEPS["reach"]
    cells = [{"task": "reach", "teacher": teacher, "queries": queries, "seed": seed, "variant": variant,
              "steps": steps, "metric": "success_rate", "policy": value, "hand_baseline": 1.0,
              "fraction_of_hand": value, "pairing": "mixed", "features": []}
             for teacher, queries, seed, value in (("oracle", 50, 0, 0.2), ("oracle", 50, 1, 0.4),
                                                   ("oracle", 200, 0, 0.9), ("mistake:0.1", 200, 0, 0.7))]
    from robreward.envs.registry import get_task
    from robreward.feedback.preferences.model import expand_features

    d = bench.PrefsConfig(task="reach")
    any_variant = bench.variant_name("any", expand_features(get_task("reach"), d.features), True, d.final_policy,
                                     d.feedback_fraction, choose_at=d.choose_at)
    other = dict(cells[0], variant=any_variant, policy=0.0)  # another variant: not in the defaults' plot
    bench.save_results(out, {bench.row_key(c): c for c in cells + [other]}, {})
    argv = ["--tasks", "reach", "--plot", "--out", str(out), "--work", str(tmp_path / "work")]
    assert bench.main(argv) == 0
    png = tmp_path / "prefs_label_efficiency_reach.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}: success_rate against queries, mistake:0.1, oracle" in capsys.readouterr().out
    curves = bench.plot_cells(cells + [other], "reach", variant, steps, tmp_path / "again.png")
    assert curves["teachers"]["oracle"][0] == {"queries": 50, "mean": pytest.approx(0.3), "std": pytest.approx(0.1),
                                               "runs": 2}
    assert curves["hand"] == 1.0 and curves["sparse"] is not None  # policies/v1/reach's baselines
    assert not (tmp_path / "work").exists()  # --plot runs nothing
    # another variant's plot is named by it; a variant without cells says so
    assert bench.main(argv + ["--pairing", "any"]) == 0
    assert (tmp_path / f"prefs_label_efficiency_reach_{any_variant}.png").is_file()
    assert bench.main(argv + ["--pairing", "episode"]) == 0
    assert "no finished reach cells of this variant" in capsys.readouterr().out


def test_every_task_with_a_step_budget_runs_at_its_hand_baselines_budget_and_is_judged_by_its_metric(bench):
    """A cell is compared with the hand baseline of policies/<task>/ (load_baseline): the same PPO budget, and
    success where the task is reach-and-hold (the arm tasks, humanoid-kneel-v2), return where it is run or hop."""
    from robreward.eval.baseline import load_baseline

    for task, steps in bench.STEPS.items():
        baseline = load_baseline(task)
        assert baseline is not None and baseline.hand["steps"] == steps, task
    assert bench.metric_for("humanoid-kneel-v2") == bench.metric_for("lift") == "success_rate"
    assert bench.metric_for("hopper-hop-v1") == bench.metric_for("ant-run") == "return_mean"
