"""train_candidates with reward specs beside reward files: a benchmark's baseline (hand) and a shaped reward
(sparse+progress:RUN) train batched with a program, each run's config.yaml keeping its own spec."""

from pathlib import Path

from robreward.codegen.extract import extract_program
from robreward.codegen.training import _spec, train_candidates
from robreward.envs.registry import get_task
from robreward.feedback.progress import ProgressConfig, fit_progress, save_progress_run
from robreward.rundir import read_config

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """```python
import torch


def compute_reward(state, action):
    near = -torch.linalg.norm(state.ee_to_goal, dim=-1)
    return near, {"near": near}
```"""


def test_spec_keeps_reward_specs_and_resolves_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.py").write_text("x = 1\n")
    assert _spec("hand") == "hand" and _spec("sparse") == "sparse"
    assert _spec("r.py") == str(tmp_path / "r.py")
    assert _spec("sparse+progress:missing") == "sparse+progress:missing"  # the trainer's check explains it


def test_batched_candidates_mix_programs_and_specs(tmp_path):
    config = ProgressConfig(task="reach", demos=(str(ROOT / "demos/reach-expert.h5"),), epochs=20, seed=0)
    net, report = fit_progress(config)
    model = tmp_path / "prog"
    save_progress_run(model, net, config, get_task("reach"), report)
    program = tmp_path / "reward.py"
    program.write_text(extract_program(PROGRAM).code)
    runs = [tmp_path / name for name in ("program", "hand", "shaped")]
    train_candidates("reach", [program, "hand", f"sparse+progress:{model},weight=3"], 1024, [0, 0, 1], runs,
                     num_envs=8, eval_episodes=4)
    for run in runs:
        assert (run / "eval.json").is_file() and not (run / "failed.json").exists(), run
    rewards = [read_config(run)["reward"] for run in runs]
    assert rewards[0] == str(program) and rewards[1] == "hand"
    assert rewards[2] == f"sparse+progress:{model},weight=3"
    assert read_config(runs[2])["seed"] == 1
