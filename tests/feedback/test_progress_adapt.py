"""One-shot adaptation to a task variant: a progress model fitted on reach, adapted with ONE demonstration
of a user task folder whose goal region differs (15 cm beside the marker), orders the variant's other
demonstrations by progress far better than before."""

import json
import warnings
from pathlib import Path

import pytest

from robreward.cli.main import main
from robreward.envs.registry import get_task
from robreward.feedback.progress import (
    ProgressConfig,
    episode_metrics,
    fit_progress,
    load_episodes,
    load_progress_run,
    save_progress_run,
)

VARIANT = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "reach-beside"


@pytest.mark.slow  # fits a reach model and records 10 variant demos (about 30 s)
def test_one_demo_of_a_variant_raises_value_order_correlation_on_its_other_demos(tmp_path, capsys):
    from robreward.demos.record import record

    folder = VARIANT
    variant = get_task(str(folder))
    assert variant.name == "reach-beside" and variant.obs_dim == get_task("reach").obs_dim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record(str(folder), "expert", 10, tmp_path / "beside.h5", seed=5, append=False, progress=False)
        # the observation as it is: the variant's goal is a direction from the marker, which the default obs-norms
        # features (distances only) cannot express (docs/progress.md)
        config = ProgressConfig(task="reach", demos=("demos/reach-expert.h5",), negatives=("demos/reach-noisy.h5",),
                                epochs=150, seed=0, features="observation")
        net, report = fit_progress(config, get_task("reach"))
    run = save_progress_run(tmp_path / "prog-reach", net, config, get_task("reach"), report)
    episodes = load_episodes([tmp_path / "beside.h5"], variant)
    assert all(e.success for e in episodes)
    others = episodes[1:]  # never used for adaptation
    before = episode_metrics(net, others)["value_order_correlation"]
    assert main(["progress", "adapt", str(run), "--demos", str(tmp_path / "beside.h5"), "--task", str(folder),
                 "--episode", "0", "--out", str(tmp_path / "adapted")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 1
    adapted, meta, spec = load_progress_run(tmp_path / "adapted", variant)
    assert meta["task"] == "reach-beside" and meta["adapted_from_task"] == "reach"
    after = episode_metrics(adapted, others)["value_order_correlation"]
    # the reach model reads progress as closeness to the marker: about 0.75 here; one demo fixes it (~0.98)
    assert before < 0.85 and after > 0.9 and after - before > 0.1, (before, after)
    with pytest.raises(ValueError, match="never selects a task folder"):
        load_progress_run(tmp_path / "adapted")  # the adapted run loads with --task FOLDER only
    with pytest.raises(ValueError, match="same observation"):
        load_progress_run(run, get_task("push"), variant=True)
