"""evaluate(): exact, seeded episode counts, per-episode numbers checked against a plain env loop."""

import dataclasses
import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import robreward
from robreward.eval import EVAL_FIELDS, evaluate, evaluate_seeds, read_eval_json, state_policy, write_eval_json
from robreward.eval.evaluate import _episode_quota

LENGTH = 20


@pytest.fixture(scope="module")
def short():
    """cheetah-run with 20-step episodes."""
    return dataclasses.replace(robreward.get_task("cheetah-run"), episode_length=LENGTH)


def fixed_policy(obs):
    """A deterministic, state-dependent policy (not just zeros, so episodes differ)."""
    return torch.tanh(3.0 * obs[:, 2:8])


def test_quota_is_exact():
    assert _episode_quota(100, 64).sum() == 100
    assert list(_episode_quota(5, 2)) == [3, 2]
    assert list(_episode_quota(2, 4)) == [1, 1, 0, 0]


def test_exact_count_and_deterministic(short):
    a = evaluate(short, fixed_policy, episodes=5, num_envs=2, seed=7)
    b = evaluate(short, fixed_policy, episodes=5, num_envs=2, seed=7)
    c = evaluate(short, fixed_policy, episodes=5, num_envs=2, seed=8)
    assert a == b
    assert a["return_mean"] != c["return_mean"]
    assert a["episodes"] == 5 and a["episode_length_mean"] == LENGTH
    for field in EVAL_FIELDS:
        assert field in a, field
    assert a["task"] == "cheetah-run" and a["task_version"] == short.version
    assert a["reward"] == "hand" and a["seeds"] == [7]
    assert set(a["terms"]) == {t.name for t in short.reward_terms}
    # the hand terms sum to the hand return; train reward = hand here
    assert sum(a["terms"].values()) == pytest.approx(a["return_mean"], rel=1e-6, abs=1e-9)
    assert a["train_reward_return_mean"] == pytest.approx(a["return_mean"])


def test_numbers_match_a_plain_env_loop(short):
    """Two worlds, one episode each: evaluate() equals summing info by hand."""
    res = evaluate(short, fixed_policy, episodes=2, seed=3, reward_name="sparse")
    env = robreward.make(short, num_envs=2, seed=3)
    obs, _ = env.reset(seed=3)
    ret, fit, forward = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), torch.zeros(2)
    for _ in range(LENGTH):
        obs, _, _, truncated, info = env.step(fixed_policy(obs))
        ret += info["hand_reward"].double()
        fit += info["fitness"].double()
        forward += info["hand_terms"]["forward"]
    assert truncated.all()
    assert res["return_mean"] == pytest.approx(float(ret.mean()), rel=1e-6)
    assert res["return_std"] == pytest.approx(float(ret.std(unbiased=False)), rel=1e-5)
    assert res["fitness_mean"] == pytest.approx(float((fit / LENGTH).mean()), rel=1e-6)
    assert res["terms"]["forward"] == pytest.approx(float(forward.mean()), rel=1e-5)
    # sparse training reward = fitness per step, summed
    assert res["train_reward_return_mean"] == pytest.approx(float(fit.mean()), rel=1e-6)
    # locomotion: success = episode fitness >= threshold (3 m/s, far from 20 random steps)
    assert res["success_rate"] == 0.0


def test_locomotion_success_uses_episode_fitness(short):
    easy = dataclasses.replace(short, success_threshold=-1e9)
    hard = dataclasses.replace(short, success_threshold=1e9)
    assert evaluate(easy, fixed_policy, episodes=3, seed=0)["success_rate"] == 1.0
    assert evaluate(hard, fixed_policy, episodes=3, seed=0)["success_rate"] == 0.0


def test_terminations_still_count_exactly(short):
    """Early terminations at different times: each world counts only its first episodes."""
    early = dataclasses.replace(short, terminated=lambda s: s.x_velocity.abs() > 0.3)
    res = evaluate(early, lambda o: torch.tanh(5 * o[:, 1:7]), episodes=7, num_envs=3, seed=1)
    assert res["episodes"] == 7
    assert res["episode_length_mean"] >= 1 and res["episode_length_mean"] < LENGTH
    again = evaluate(early, lambda o: torch.tanh(5 * o[:, 1:7]), episodes=7, num_envs=3, seed=1)
    assert again == res


def test_state_policy_and_unbuildable_train_reward(short):
    """A callable with uses_state=True gets the TaskState (how scripted experts are evaluated)."""
    seen = []

    def expert(state):
        seen.append(state)
        return torch.zeros(state.num_envs, short.act_dim)

    res = evaluate(short, state_policy(expert), episodes=2, seed=0, reward_name="pref:somewhere")
    assert seen and hasattr(seen[0], "x_velocity")
    assert res["reward"] == "pref:somewhere" and res["train_reward_return_mean"] is None
    assert res["terms"]["ctrl"] == 0.0
    # a policy that cannot sample is recorded as deterministic even when stochastic was asked for
    assert evaluate(short, fixed_policy, episodes=1, deterministic=False)["deterministic"] is True


def test_task_expert_if_any():
    """Evaluate a shipped task's scripted expert (manipulation tasks), if the suite has one yet."""
    name = next((n for n in robreward.task_names() if robreward.get_task(n).expert is not None), None)
    if name is None:
        pytest.skip("no task with a scripted expert yet")
    spec = robreward.get_task(name)
    res = evaluate(spec, state_policy(spec.expert), episodes=2, seed=0)
    assert res["episodes"] == 2 and 0.0 <= res["success_rate"] <= 1.0


def test_bad_episode_count(short):
    with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
        evaluate(short, fixed_policy, episodes=0)


def test_evaluate_seeds_and_json_roundtrip(short, tmp_path):
    pols = {0: fixed_policy, 1: lambda o: torch.zeros(o.shape[0], short.act_dim)}
    res = evaluate_seeds(short, pols, episodes=2, seed=0, video=tmp_path / "v.mp4")
    assert list(res)[: len(EVAL_FIELDS)] == list(EVAL_FIELDS)
    assert res["seeds"] == [0, 1] and len(res["per_seed"]) == 2
    means = [r["return_mean"] for r in res["per_seed"]]
    assert res["return_mean"] == pytest.approx(np.mean(means))
    assert res["return_std"] == pytest.approx(np.std(means, ddof=1))
    single = evaluate(short, fixed_policy, episodes=2, seed=0)
    assert res["per_seed"][0]["fitness_mean"] == single["fitness_mean"]
    frames = imageio.mimread(tmp_path / "v.mp4")
    fps = 1.0 / robreward.make(short, num_envs=1).dt
    # a frame per step, the final numbers, held half a second; 480x360 tiles (robreward.eval.video)
    assert len(frames) == LENGTH + 1 + int(fps // 2) and frames[0].shape == (360, 480, 3)

    path = write_eval_json(tmp_path / "run", res)
    assert path == tmp_path / "run" / "eval.json"
    assert read_eval_json(tmp_path / "run") == json.loads(path.read_text())
    assert not [p for p in (tmp_path / "run").iterdir() if p.name != "eval.json"]  # no tmp leftovers
    with pytest.raises(ValueError, match="lacks the eval.json fields"):
        write_eval_json(tmp_path / "bad", {"task": "x"})
    with pytest.raises(FileNotFoundError, match="no eval.json"):
        read_eval_json(tmp_path / "missing")


def test_evaluate_refuses_a_policy_of_other_sizes_before_running():
    """Every caller of evaluate (train's final eval, the preference loop, choose) gets the check."""
    from pathlib import Path

    from robreward.eval.evaluate import evaluate
    from robreward.rl.export import load_policy

    policy = load_policy(Path(__file__).parents[2] / "policies" / "reach")
    with pytest.raises(ValueError, match=r"does not fit task 'push': the policy maps observations \[B, 13\]"):
        evaluate("push", policy, episodes=1)

    def wrong_width(obs):
        return torch.zeros(obs.shape[0], 3)

    with pytest.raises(ValueError, match=r"the policy returned actions of shape \[2, 3\]; task 'reach' needs \[2, 4\]"):
        evaluate("reach", wrong_width, episodes=2)
