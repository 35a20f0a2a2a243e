"""Evaluation: evaluate policies (eval.json), human-normalized score, significance over seeds,
compare runs (markdown table + learning-curve PNG), shipped baselines."""

from robreward.eval.baseline import Baseline, baseline_versions, load_baseline, policies_root, shipped_baselines
from robreward.eval.evaluate import (EVAL_FIELDS, evaluate, evaluate_seeds, read_eval_json, state_policy,
                                     write_eval_json)
from robreward.eval.hns import HNS, clip_hns, hns, hns_interval, mean_hns
from robreward.eval.stats import better_than_hand, bootstrap_diff_ci, welch_one_sided

# bound after the submodule import so `robreward.eval.compare` is the function (matplotlib loads lazily)
from robreward.eval.compare import compare, load_run  # noqa: E402


__all__ = ["Baseline", "EVAL_FIELDS", "HNS", "baseline_versions", "hns_interval", "shipped_baselines", "better_than_hand", "bootstrap_diff_ci", "clip_hns", "compare", "load_run",
           "evaluate", "evaluate_seeds", "hns", "load_baseline", "mean_hns", "policies_root", "read_eval_json",
           "state_policy", "welch_one_sided", "write_eval_json"]
