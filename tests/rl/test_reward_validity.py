"""Every step's reward is checked: an invalid world-step (NaN/inf total, or terms not summing to it)
gets 0 and is counted in progress.csv, TensorBoard, the model card and the reflection's numbers;
a run over robreward.rl.validity's limit fails with failed.json and a non-zero exit."""

import csv
import json

import pytest
import torch

import robreward.envs.batched as batched
from robreward.cli.main import main
from robreward.codegen.training import training_stats
from robreward.rl import TrainConfig
from robreward.rl.runner import train
from robreward.rl.checkpoint import load_checkpoint
from robreward.rl.validity import MAX_INVALID_REWARD_SHARE, InvalidRewardError, invalid_reward_limit

WORLDS, BUDGET = 16, 16_384  # 512 world-steps per update; the limit is 1% of the budget: 163


class ReachDistance:
    """A plain Python Reward on reach: minus the distance to the goal, as one term. From call
    `bad_from` on, in worlds `worlds` (and until call `bad_until`), the total is NaN (kind="nan")
    or disagrees with its terms by 1 (kind="sum")."""

    def __init__(self, bad_from: int, kind: str = "nan", worlds=slice(None), bad_until: int = 10**9):
        self.bad_from, self.bad_until, self.kind, self.worlds, self.calls = bad_from, bad_until, kind, worlds, 0
        self.name = f"{kind}-from-call-{bad_from}"

    def __call__(self, state, action):
        self.calls += 1
        distance = torch.linalg.norm(state.ee_to_goal, dim=-1)
        total, terms = -distance, {"distance": -distance.clone()}
        if self.bad_from <= self.calls <= self.bad_until:
            total = total.clone()
            total[self.worlds] = float("nan") if self.kind == "nan" else total[self.worlds] + 1.0
        return total, terms


def rows(run_dir) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "progress.csv")))


def config(out, steps: int = BUDGET) -> TrainConfig:
    return TrainConfig(task="reach", reward="test-reward", num_envs=WORLDS, steps=steps, seed=0, out=str(out),
                       eval_episodes=0, progress=False)


def test_the_limit_is_a_share_of_the_budget():
    assert MAX_INVALID_REWARD_SHARE == 0.01 and invalid_reward_limit(BUDGET) == 163 and invalid_reward_limit(99) == 0


def test_a_reward_that_turns_nan_fails_the_cli_run_with_a_record(tmp_path, monkeypatch, capsys):
    """NaN in every world from step 40: update 2 has 25 x 16 = 400 invalid world-steps, over the
    limit of 163: the run stops there (not at the end of its budget) with exit code 2."""
    monkeypatch.setattr(batched, "resolve_reward", lambda reward, spec: ReachDistance(bad_from=40))
    out = tmp_path / "nan"
    code = main(["train", "--task", "reach", "--envs", str(WORLDS), "--steps", str(BUDGET), "--out", str(out),
                 "--eval-episodes", "0", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "was invalid (NaN or inf, or terms that do not sum to the total) in 400 world-steps" in err
    assert "limit 163" in err
    got = rows(out)
    assert [(int(r["step"]), int(r["reward_invalid"]), float(r["reward_invalid_share"])) for r in got] == [
        (512, 0, 0.0), (1024, 400, 400 / 512)]
    failed = json.loads((out / "failed.json").read_text())
    assert failed["error"].startswith("InvalidRewardError: reward 'hand' was invalid")
    assert (failed["step"], failed["reward_invalid"], failed["reward_invalid_limit"], failed["trainer"]) == (
        1024, 400, 163, "single")
    assert not (out / "policy.onnx").exists()


def test_terms_that_stop_summing_fail_the_run(tmp_path):
    """4 of 16 worlds' totals disagree with their terms from step 40: 100 invalid world-steps in
    update 2, 128 in update 3; the run fails in update 3 (228 > 163)."""
    out = tmp_path / "sum"
    with pytest.raises(InvalidRewardError, match=r"in 228 world-steps of the 1,536 trained so far"):
        train(config(out), reward=ReachDistance(bad_from=40, kind="sum", worlds=slice(0, 4)))
    assert [int(r["reward_invalid"]) for r in rows(out)] == [0, 100, 128]
    assert json.loads((out / "failed.json").read_text())["reward_invalid"] == 228


def test_a_few_invalid_steps_are_counted_and_reported_and_the_run_finishes(tmp_path):
    """NaN in world 0 on steps 40-44 only: 5 world-steps, under the limit of 20 of a 2048-step
    budget; every place that reports the run shows them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "few"
    train(config(out, steps=2048), reward=ReachDistance(bad_from=40, bad_until=44, worlds=slice(0, 1)))
    assert [int(r["reward_invalid"]) for r in rows(out)] == [0, 5, 0, 0]
    assert not (out / "failed.json").exists() and (out / "policy.onnx").is_file()
    assert "- invalid reward (world-steps set to 0): 5 of 2,048 (0.244%)" in (out / "MODEL_CARD.md").read_text()
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["reward_invalid"] == 5
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [e.value for e in events.Scalars("train/reward_invalid")] == [0, 5, 0, 0]
    stats = training_stats(out)  # what the reflection reads: every update's count lands in an iteration
    assert sum(stats["reward_invalid"]) == 5 and len(stats["reward_invalid"]) == len(stats["episode_length"])
