"""`generate --ray`: candidate trainings and final seeds as Ray tasks on a local Ray instance give
the same runs as the in-process trainer, and a failing candidate is a record, not a dead run."""

import csv

import pytest

from robreward.codegen import training

ray = pytest.importorskip("ray")  # in the test extra; a user without it gets a clear error (below)

pytestmark = pytest.mark.ray  # a local Ray instance: make test-all

GOOD = '''
import torch

def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    reach = 1.0 - torch.tanh(dist / 0.2)
    return reach, {"reach": reach}
'''
WRONG_SHAPE = '''
import torch

def compute_reward(state, action):
    total = torch.zeros(3)
    return total, {"zero": total}
'''
COLUMNS = ("step", "return_mean", "success_rate", "kl", "policy_loss", "value_loss", "learning_rate")  # empty before an episode ends


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def rows(run_dir):
    with open(run_dir / "progress.csv") as f:
        return [{k: float(r[k]) for k in COLUMNS if r[k] != ""} for r in csv.DictReader(f)]


def test_runs_on_ray_equal_the_in_process_runs_and_failures_are_records(local_ray, tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(GOOD)
    bad.write_text(WRONG_SHAPE)
    dirs = [tmp_path / "ray" / name for name in ("good_s0", "good_s1", "bad")]
    done = []
    out = training.train_candidates("reach", [good, good, bad], 1024, [0, 1, 0], dirs, num_envs=16, eval_episodes=4,
                                    ray="local", on_done=lambda i, d: done.append(i))
    assert out == [str(d) for d in dirs] and sorted(done) == [0, 1, 2]
    assert (dirs[0] / "eval.json").is_file() and (dirs[1] / "eval.json").is_file()
    failed = (dirs[2] / "failed.json").read_text()
    assert "shape" in failed and not (dirs[2] / "eval.json").exists()
    # the same two runs in this process: the same numbers (same code, seeds and thread settings)
    local = [tmp_path / "local" / name for name in ("good_s0", "good_s1")]
    training.train_candidates("reach", [good, good], 1024, [0, 1], local, num_envs=16, eval_episodes=4,
                              batched=False)
    for a, b in zip(dirs[:2], local):
        assert len(rows(a)) == len(rows(b)) == 2
        for row_a, row_b in zip(rows(a), rows(b)):
            assert row_a == pytest.approx(row_b, rel=1e-6)
    assert rows(dirs[0]) != rows(dirs[1])  # the seeds differ
    # finished runs are not trained again
    again = []
    training.train_candidates("reach", [good, good, bad], 1024, [0, 1, 0], dirs, num_envs=16, eval_episodes=4,
                              ray="local", on_done=lambda i, d: again.append(i))
    assert sorted(again) == [0, 1, 2] and rows(dirs[0]) == rows(local[0])


def test_ray_errors_say_what_to_pass(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RuntimeError, match=r"--ray needs the ray package: pip install 'robreward\[ray\]'"):
        training.connect_ray("local")
    with pytest.raises(ValueError, match="one reward file, seed and run dir per run"):
        training.train_candidates("reach", [tmp_path / "a.py"], 1024, [0, 1], [tmp_path / "a"], ray="local")
