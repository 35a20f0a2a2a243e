"""K reward candidates trained at once (robreward.rl.multi): each candidate sees what a separate
run would, a failing reward is isolated, the run dirs are the runner's, and reach is learned."""

import csv
import json

import numpy as np
import pytest
import torch

import robreward.rl.runner as runner
from robreward.codegen import training
from robreward.envs.batched import BatchedEnv
from robreward.eval.evaluate import evaluate
from robreward.rewards.base import HandReward, SparseReward
from robreward.rl import TrainConfig, load_policy
from robreward.rl.runner import train
from robreward.rl.config import PPOConfig
from robreward.rl.candidates import CandidateRewards
from robreward.rl.multi import train_many
from robreward.rl.ppo import ActorCritic, BatchedActorCritic
from tests.rl.conftest import REACH_STEPS

SMALL = dict(steps=2048, worlds=16)  # 4 updates of 16 worlds x 32 steps
# the comparisons run 5 epochs per update: rounding differences (a batched matmul sums in another
# order) grow with every SGD step, and at the default 10 the KL of update 4 differs by ~0.6%
CMP_PPO = PPOConfig(num_epochs=5)
COMPARED = ("step", "update", "episodes", "return_mean", "hand_return_mean", "success_rate", "fitness_mean",
            "episode_length", "learning_rate", "kl", "policy_loss", "value_loss", "entropy", "noise_std",
            "clip_fraction", "reward_invalid")
REWARD_FILE = '''
import torch

def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    reach = 1.0 - torch.tanh(dist / 0.2)
    effort = -0.01 * (action[:, :3] ** 2).sum(-1)
    return reach + effort, {"reach": reach, "effort": effort}
'''


def progress(run_dir) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "progress.csv")))


def assert_same_progress(batched_dir, separate_dir):
    """Same rows up to float rounding (a batched matmul sums in another order than a single one)."""
    got, want = progress(batched_dir), progress(separate_dir)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        for column in COMPARED:
            if b[column] == "":
                assert a[column] == "", column
            else:
                assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-3, abs=1e-6), (column, a, b)


class RaisesAtCall:
    """A reward that works for `calls - 1` steps, then raises (a program's latent bug)."""

    name = "raises-at-step-5"

    def __init__(self, calls: int = 5):
        self.calls, self.count = calls, 0

    def __call__(self, state, action):
        self.count += 1
        if self.count >= self.calls:
            raise ZeroDivisionError("division by zero in the candidate's reward")
        dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
        return -dist, {"dist": -dist}


@pytest.fixture(scope="module")
def separate_runs(tmp_path_factory):
    """Separate single-candidate trainings (runner.train), hand and sparse, on the small budget."""
    root = tmp_path_factory.mktemp("separate")
    for reward in ("hand", "sparse"):
        train(TrainConfig(task="reach", reward=reward, num_envs=SMALL["worlds"], steps=SMALL["steps"], seed=0,
                          out=str(root / reward), eval_episodes=0, progress=False, ppo=CMP_PPO))
    return root


@pytest.fixture(scope="module")
def reach_pair(tmp_path_factory):
    """K=2 on reach, a hand-reward program file and sparse, 64 worlds each, the learning budget."""
    root = tmp_path_factory.mktemp("multi")
    reward_file = root / "reward.py"
    reward_file.write_text(REWARD_FILE)
    dirs = [root / "file", root / "sparse"]
    summary = train_many("reach", [reward_file, "sparse"], REACH_STEPS, 0, dirs, num_envs_per_candidate=64,
                         eval_episodes=100, evaluate=evaluate)
    return dirs, summary


# -- (1) each candidate sees what a separate training sees ------------------------------------------------------------
def test_each_world_slice_steps_exactly_like_a_separate_env():
    """Same seed, same actions: candidate k's slice of the K*M-world env gives bit-identical
    observations, rewards, terms, ends and auto-resets (episodes are 50 steps) as a separate M-world env."""
    per, seed = 4, 3
    combined = BatchedEnv("reach", 2 * per, seed=seed, groups=2)
    spec = combined.spec
    combined.set_reward(CandidateRewards([HandReward(spec), SparseReward(spec)], ["hand", "sparse"], per))
    separate = [BatchedEnv("reach", per, seed=seed, reward=r) for r in ("hand", "sparse")]
    obs, _ = combined.reset(seed=seed)
    firsts = [env.reset(seed=seed)[0] for env in separate]
    for k in range(2):
        assert torch.equal(obs[k * per:(k + 1) * per], firsts[k])
    generator = torch.Generator().manual_seed(0)
    resets = 0
    for _ in range(70):
        actions = torch.rand(2 * per, spec.act_dim, generator=generator) * 2 - 1
        obs, reward, terminated, truncated, info = combined.step(actions)
        resets += int(truncated.sum())
        for k, env in enumerate(separate):
            rows = slice(k * per, (k + 1) * per)
            s_obs, s_reward, s_term, s_trunc, s_info = env.step(actions[rows])
            assert torch.equal(obs[rows], s_obs) and torch.equal(reward[rows], s_reward)
            assert torch.equal(terminated[rows], s_term) and torch.equal(truncated[rows], s_trunc)
            assert torch.equal(info["final_obs"][rows], s_info["final_obs"])
            assert torch.equal(info["success"][rows], s_info["success"])
            assert torch.equal(info["hand_reward"][rows], s_info["hand_reward"])
            terms = combined.reward_fn.terms[k]
            assert terms.keys() == s_info["reward_terms"].keys()
            assert all(torch.equal(terms[name], s_info["reward_terms"][name]) for name in terms)
    assert resets == 2 * per  # every world went through one auto-reset


def test_batched_network_equals_the_separate_networks():
    cfg = PPOConfig(actor_hidden=(32, 16), critic_hidden=(24,))
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(ActorCritic(7, 3, cfg))
        models[-1].normalizer.update(torch.randn(50, 7) * (seed + 1))
    net = BatchedActorCritic(models, cfg)
    obs = torch.randn(3, 11, 7)
    with torch.no_grad():
        norm = net.normalize(obs)
        for k, model in enumerate(models):
            expected = model.normalize(obs[k])
            assert torch.allclose(norm[k], expected, atol=1e-6)
            assert torch.allclose(net.actor(norm)[k], model.actor(expected), atol=1e-6)
            assert torch.allclose(net.value(norm)[k], model.value(expected), atol=1e-6)
            back = net.unstack(k)
            assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))


def test_batched_training_matches_separate_trainings(separate_runs, tmp_path):
    """K=2 (hand, sparse) in one env: each candidate's whole training log (returns, KL, adaptive
    learning rate, losses) equals its separate single-candidate run's, up to float rounding."""
    dirs = [tmp_path / "hand", tmp_path / "sparse"]
    train_many("reach", ["hand", "sparse"], SMALL["steps"], 0, dirs, num_envs_per_candidate=SMALL["worlds"],
               eval_episodes=0, ppo=CMP_PPO)
    assert_same_progress(dirs[0], separate_runs / "hand")
    assert_same_progress(dirs[1], separate_runs / "sparse")


# -- (2) learning ---------------------------------------------------------------------------------------------------
def test_hand_candidate_learns_reach_beside_sparse(reach_pair):
    dirs, summary = reach_pair
    hand, sparse = summary["candidates"]
    assert hand["failed"] is None and sparse["failed"] is None and hand["steps"] >= REACH_STEPS
    result = json.loads((dirs[0] / "eval.json").read_text())
    assert result["task"] == "reach" and result["episodes"] == 100
    assert result["success_rate"] >= 0.9, result
    assert hand["stats"]["success"] >= 0.9
    assert set(summary["timing"]) >= {"physics", "rewards", "policy", "update", "overhead", "finish"}


# -- (3) a failing candidate is isolated ------------------------------------------------------------------------------
def test_a_raising_candidate_is_isolated_and_the_other_trains_unchanged(separate_runs, tmp_path):
    dirs = [tmp_path / "broken", tmp_path / "hand"]
    summary = train_many("reach", [RaisesAtCall(5), "hand"], SMALL["steps"], 0, dirs,
                         num_envs_per_candidate=SMALL["worlds"], eval_episodes=8, ppo=CMP_PPO, evaluate=evaluate)
    broken, hand = summary["candidates"]
    assert "ZeroDivisionError: division by zero" in broken["failed"] and hand["failed"] is None
    failed = json.loads((dirs[0] / "failed.json").read_text())
    assert "ZeroDivisionError" in failed["error"]
    assert not (dirs[0] / "policy.onnx").exists() and not (dirs[0] / "eval.json").exists()
    assert (dirs[1] / "eval.json").is_file() and not (dirs[1] / "failed.json").exists()
    # the broken candidate's worlds (slice 0) did not disturb the hand candidate in slice 1
    assert_same_progress(dirs[1], separate_runs / "hand")


def test_a_candidate_with_non_finite_rewards_is_isolated_with_the_reason():
    """The non-finite check runs once over all K candidates' rewards; only the candidate with a NaN
    or inf fails (its worlds get 0 and no terms), the others' rewards pass through unchanged."""
    from robreward.envs.spec import TaskState

    def dist(state, action):
        d = torch.linalg.norm(state.ee_to_goal, dim=-1)
        return -d, {"dist": -d}

    calls = []

    def nan_from_call_2(state, action):  # passes the first call's Reward-protocol check
        calls.append(1)
        d = torch.linalg.norm(state.ee_to_goal, dim=-1).clone()
        if len(calls) > 1:
            d[1] = float("nan")
        return d, {"d": d}

    state = TaskState({"ee_to_goal": torch.arange(36, dtype=torch.float32).view(12, 3)})
    rewards = CandidateRewards([dist, nan_from_call_2, dist], ["a", "b", "c"], 4)
    rewards(state, torch.zeros(12, 4))
    assert rewards.failed == [None, None, None]
    total, _ = rewards(state, torch.zeros(12, 4))
    assert rewards.failed[0] is None and rewards.failed[2] is None
    assert "reward 'b' returned non-finite values" in rewards.failed[1]
    want = -torch.linalg.norm(state.ee_to_goal, dim=-1)
    assert torch.equal(total[:4], want[:4]) and torch.equal(total[8:], want[8:])
    assert torch.equal(total[4:8], torch.zeros(4)) and rewards.terms[1] == {} and set(rewards.terms[2]) == {"dist"}
    total, _ = rewards(state, torch.zeros(12, 4))  # a failed candidate is not called again
    assert len(calls) == 2 and torch.equal(total[4:8], torch.zeros(4)) and torch.isfinite(total).all()


class NanFrom:
    """A plain Python Reward: minus the distance to the goal; NaN in worlds `worlds` from call `start`
    to call `stop` (a program that divides by a distance that reaches zero)."""

    def __init__(self, start: int, stop: int = 10**9, worlds=slice(None)):
        self.start, self.stop, self.worlds, self.calls = start, stop, worlds, 0
        self.name = f"nan-from-call-{start}"

    def __call__(self, state, action):
        self.calls += 1
        d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
        if self.start <= self.calls <= self.stop:
            d = d.clone()
            d[self.worlds] = float("nan")
        return d, {"d": d}


def test_a_candidate_whose_reward_turns_nan_fails_alone_and_the_others_train_on(separate_runs, tmp_path):
    """K=3: NaN everywhere from step 40 (32 invalid world-steps by step 41, over the limit of 20
    for a 2048-step budget: it fails in update 2), NaN in one world for 3 steps (counted, under the
    limit: it trains to the end), and hand; the last two log exactly what separate runs log."""
    rare_alone = tmp_path / "rare-alone"
    train(TrainConfig(task="reach", reward="nan-from-call-40", num_envs=SMALL["worlds"], steps=SMALL["steps"], seed=0,
                      out=str(rare_alone), eval_episodes=0, progress=False, ppo=CMP_PPO),
          reward=NanFrom(40, 42, slice(0, 1)))
    dirs = [tmp_path / "nan", tmp_path / "rare", tmp_path / "hand"]
    summary = train_many("reach", [NanFrom(40), NanFrom(40, 42, slice(0, 1)), "hand"], SMALL["steps"], 0, dirs,
                         num_envs_per_candidate=SMALL["worlds"], eval_episodes=0, ppo=CMP_PPO)
    nan, rare, hand = summary["candidates"]
    assert nan["failed"].startswith("InvalidRewardError: reward 'nan-from-call-40' returned non-finite values "
                                    "(NaN or inf) in 32 world-step(s), over its limit of 20 for its budget (2,048")
    failed = json.loads((dirs[0] / "failed.json").read_text())
    assert failed["error"] == nan["failed"] and failed["reward_invalid"] == 32 and failed["step"] == 512
    assert [int(r["reward_invalid"]) for r in progress(dirs[0])] == [0]  # update 1 logged, then isolated
    assert rare["failed"] is None and hand["failed"] is None
    assert [int(r["reward_invalid"]) for r in progress(dirs[1])] == [0, 3, 0, 0]
    assert_same_progress(dirs[1], rare_alone)  # the invalid steps ended the same episodes as in the separate run
    assert "- invalid reward (world-steps set to 0): 3 of 2,048" in (dirs[1] / "MODEL_CARD.md").read_text()
    assert runner.load_checkpoint(dirs[1] / "checkpoints" / "latest.pt")["reward_invalid"] == 3
    assert [int(r["reward_invalid"]) for r in progress(dirs[2])] == [0, 0, 0, 0]
    assert_same_progress(dirs[2], separate_runs / "hand")


def test_the_share_rule_zeroes_invalid_worlds_until_a_candidate_passes_its_limit():
    """max_invalid=2: candidate b's NaN world (1 of 4) is counted on calls 2 and 3, its terms zeroed
    and its total left NaN for the env's guard (reward 0, episode ended, as in a separate run); on
    call 4 its count (3) passes the limit and b fails; a terms-not-summing candidate c likewise."""
    from robreward.envs.spec import TaskState

    def dist(state, action):
        d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
        return d, {"dist": d}

    c_calls = []

    def off_by_one_in_world_2_from_call_2(state, action):
        c_calls.append(1)
        d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
        total = d.clone()
        total[2] += 1.0 if len(c_calls) >= 2 else 0.0
        return total, {"dist": d}

    state = TaskState({"ee_to_goal": torch.arange(48, dtype=torch.float32).view(16, 3)})
    want = -torch.linalg.norm(state.ee_to_goal, dim=-1)
    rewards = CandidateRewards([dist, NanFrom(2, worlds=slice(1, 2)), off_by_one_in_world_2_from_call_2, dist],
                               ["a", "b", "c", "d"], 4, max_invalid=2)
    for call in range(1, 5):
        total, _ = rewards(state, torch.zeros(16, 4))
        assert torch.equal(total[:4], want[:4]) and torch.equal(total[12:], want[12:])
        if call < 4:
            assert rewards.failed == [None] * 4 and rewards.invalid == [0, call - 1, call - 1, 0]
            assert torch.isnan(total[5]) if call >= 2 else total[5] == want[5]
            assert torch.isnan(total[10]) if call >= 2 else total[10] == want[10]
            assert float(rewards.terms[2]["dist"][2]) == (0.0 if call >= 2 else float(want[10]))
            assert torch.equal(total[[4, 6, 7, 8, 9, 11]], want[[4, 6, 7, 8, 9, 11]])
    assert rewards.invalid == [0, 3, 3, 0] and rewards.failed[0] is None and rewards.failed[3] is None
    assert "reward 'b' returned non-finite values (NaN or inf) in 3 world-step(s), over its limit of 2" in rewards.failed[1]
    assert "reward 'c' returned terms that do not sum to the total in 3 world-step(s)" in rewards.failed[2]
    assert torch.equal(total[4:12], torch.zeros(8)) and rewards.terms[1] == {} and rewards.terms[2] == {}


@pytest.mark.parametrize("broken, reason", [
    (lambda d: d.to("meta"), "total is on device meta, the env's tensors are on cpu"),
    (lambda d: d.to_sparse(), "total is a torch.sparse_coo tensor: return dense tensors"),
])
def test_a_reward_that_returns_unusable_tensors_later_fails_alone_with_the_reason(broken, reason):
    from robreward.envs.spec import TaskState

    calls = []

    def dist(state, action):
        d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
        return d, {"dist": d}

    def turns_bad(state, action):  # passes the first call
        calls.append(1)
        d = -torch.linalg.norm(state.ee_to_goal, dim=-1)
        return (broken(d), {"dist": d}) if len(calls) > 1 else (d, {"dist": d})

    state = TaskState({"ee_to_goal": torch.arange(24, dtype=torch.float32).view(8, 3)})
    rewards = CandidateRewards([turns_bad, dist], ["bad", "good"], 4)
    rewards(state, torch.zeros(8, 4))
    total, _ = rewards(state, torch.zeros(8, 4))
    assert rewards.failed[1] is None and rewards.failed[0].startswith(f"ValueError: reward 'bad': {reason}")
    assert torch.equal(total[:4], torch.zeros(4)) and torch.equal(total[4:], -torch.linalg.norm(state.ee_to_goal, dim=-1)[4:])


# -- (4) run dirs are the runner's ------------------------------------------------------------------------------------
def test_run_dirs_are_complete(reach_pair):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dirs, _ = reach_pair
    for run_dir, reward_tags in zip(dirs, (("reward_terms/reach", "reward_terms/effort"), ("reward_terms/fitness",))):
        for name in ("config.yaml", "progress.csv", "policy.onnx", "MODEL_CARD.md", "eval.json",
                     "checkpoints/latest.pt"):
            assert (run_dir / name).is_file(), name
        with open(run_dir / "progress.csv") as f:
            assert tuple(next(csv.reader(f))) == runner.CSV_FIELDS
        rows = progress(run_dir)
        assert [int(r["step"]) for r in rows] == [2048 * (i + 1) for i in range(REACH_STEPS // 2048)]
        config = runner.load_run_config(run_dir)
        assert config.num_envs == 64 and config.steps == REACH_STEPS and config.task == "reach"
        result = json.loads((run_dir / "eval.json").read_text())
        assert {"return_mean", "success_rate", "fitness_mean", "terms", "reward"} <= set(result)
        assert load_policy(run_dir)(np.zeros((5, config_obs_dim()), dtype=np.float32)).shape == (5, 4)
        events = EventAccumulator(str(run_dir / "tb"))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        for tag in ("episode/return", "episode/success", "episode/length", "train/kl", "perf/steps_per_s",
                    *reward_tags):
            assert tag in tags, sorted(tags)
        stats = training.training_stats(run_dir)  # what the reflection reads
        assert stats["terms"] and len(stats["episode_length"]) == len(rows) - 1
    # the checkpoint is runner.py's: a policy can be rebuilt from it
    policy = runner.policy_from_checkpoint(dirs[0] / "checkpoints" / "latest.pt")
    assert policy(torch.zeros(2, config_obs_dim())).shape == (2, 4)


def config_obs_dim() -> int:
    from robreward.envs.registry import get_task

    return get_task("reach").obs_dim


# -- wiring: train_candidates -----------------------------------------------------------------------------------------
def test_train_candidates_trains_two_files_at_once(tmp_path, monkeypatch):
    files = []
    for name in ("a", "b"):
        files.append(tmp_path / f"{name}.py")
        files[-1].write_text(REWARD_FILE)
    sequential, done = [], []
    monkeypatch.setattr(runner, "train", lambda *a, **k: sequential.append(a))
    dirs = [tmp_path / "run_a", tmp_path / "run_b"]
    (dirs[1] / "tb").mkdir(parents=True)
    (dirs[1] / "tb" / "stale").write_text("from a killed run")
    assert training.train_candidates("reach", files, 1024, 0, dirs, num_envs=16, eval_episodes=4,
                                     on_done=lambda i, d: done.append((i, d))) == [str(d) for d in dirs]
    assert sequential == [] and done == [(0, str(dirs[0])), (1, str(dirs[1]))]
    assert all((d / "eval.json").is_file() for d in dirs) and not (dirs[1] / "tb" / "stale").exists()


def test_errors_say_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match="one run directory per reward"):
        train_many("reach", ["hand", "sparse"], 1024, 0, [tmp_path / "a"])
    with pytest.raises(ValueError, match="must be >= 1"):
        train_many("reach", ["hand"], 0, 0, [tmp_path / "a"])


# -- checkpoints and resume -------------------------------------------------------------------------------------------
def test_resumed_batched_run_matches_resumed_separate_runs(separate_runs, tmp_path):
    """Continue (a) the batched run and (b) the separate runs' own checkpoints, batched, from step
    2048 to 3072: both equal runner.resume of each separate run, row for row. So a killed batched
    run, a successive-halving survivor, and a run the other trainer started all continue exactly
    where they stopped (up to float rounding)."""
    import shutil

    batched = [tmp_path / "batched" / r for r in ("hand", "sparse")]
    train_many("reach", ["hand", "sparse"], SMALL["steps"], 0, batched, num_envs_per_candidate=SMALL["worlds"],
               eval_episodes=0, ppo=CMP_PPO, latest_every=2)
    from_separate = [tmp_path / "from_separate" / r for r in ("hand", "sparse")]
    expected = [tmp_path / "expected" / r for r in ("hand", "sparse")]
    for reward, a, b in zip(("hand", "sparse"), from_separate, expected):
        shutil.copytree(separate_runs / reward, a)
        shutil.copytree(separate_runs / reward, b)
        runner.resume(b, steps=3072)
    for dirs in (batched, from_separate):
        train_many("reach", ["hand", "sparse"], 3072, 0, dirs, num_envs_per_candidate=SMALL["worlds"],
                   eval_episodes=0, ppo=CMP_PPO, resume=True)
        for run_dir, want in zip(dirs, expected):
            assert [int(r["step"]) for r in progress(run_dir)] == [512 * (i + 1) for i in range(6)]
            assert_same_progress(run_dir, want)
            assert runner.load_checkpoint(run_dir / "checkpoints" / "latest.pt")["global_step"] == 3072


def test_a_killed_batched_run_resumes_batched_from_its_checkpoint(tmp_path, monkeypatch):
    """Kill a batched run in its 4th update (a reward that raises KeyboardInterrupt): the
    checkpoint of update 2 is there; train_candidates resumes both runs batched from it, keeps the
    2 logged updates, and finishes with eval.json."""
    from robreward.rl import multi

    files = []
    for name in ("a", "b"):
        files.append(tmp_path / f"{name}.py")
        files[-1].write_text(REWARD_FILE)
    dirs = [tmp_path / "run_a", tmp_path / "run_b"]
    real = CandidateRewards.__call__
    calls = {"n": 0}

    def killed_at_update_4(self, state, action):
        calls["n"] += 1
        if calls["n"] == 3 * 32 + 5:
            raise KeyboardInterrupt
        return real(self, state, action)

    monkeypatch.setattr(CandidateRewards, "__call__", killed_at_update_4)
    with pytest.raises(KeyboardInterrupt):
        train_many("reach", [str(f) for f in files], 2048, 0, dirs, num_envs_per_candidate=16, eval_episodes=4,
                   latest_every=2, evaluate=evaluate)
    monkeypatch.setattr(CandidateRewards, "__call__", real)
    before = [progress(d) for d in dirs]
    assert [len(rows) for rows in before] == [3, 3]  # updates 1-3 logged; the checkpoint is update 2's
    assert all(runner.load_checkpoint(d / "checkpoints" / "latest.pt")["global_step"] == 1024 for d in dirs)

    resumed = []
    real_many = multi.train_many
    monkeypatch.setattr(multi, "train_many", lambda *a, **k: resumed.append(k["resume"]) or real_many(*a, **k))
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("the sequential runner was used"))
    training.train_candidates("reach", files, 2048, 0, dirs, num_envs=16, eval_episodes=4)
    assert resumed == [True]
    for d, old in zip(dirs, before):
        rows = progress(d)
        assert [int(r["step"]) for r in rows] == [512, 1024, 1536, 2048]
        assert rows[:2] == old[:2]  # nothing before the checkpoint was redone
        assert (d / "eval.json").is_file()
