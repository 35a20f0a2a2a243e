"""Progress models from demos: the model learns a monotone progress on recorded demos (held out, fixed seed);
potential-based shaping leaves the optimal policy of a tiny MDP unchanged where a bonus does not; on a real
env the shaped reward's terms sum to the total and Φ restarts at every episode start; runs load safely."""

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import robreward
from robreward.envs.spec import TaskState
from robreward.feedback.progress import (
    Episode,
    ProgressConfig,
    ProgressShaping,
    auroc,
    fit_progress,
    load_episodes,
    load_progress_run,
    save_progress_run,
    spearman,
    split_episodes,
)
from robreward.envs.registry import get_task

DEMOS = "demos/{}-{}.h5"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shipped demos were recorded with another MuJoCo patch version
        yield


@pytest.fixture(scope="module")
def push_run(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ProgressConfig(task="push", demos=(DEMOS.format("push", "expert"),),
                                negatives=(DEMOS.format("push", "noisy"),), epochs=150, seed=0)
        spec = get_task("push")
        net, report = fit_progress(config, spec)
        out = save_progress_run(tmp_path_factory.mktemp("prog") / "prog-push", net, config, spec, report)
    return out, report


def test_the_model_learns_a_monotone_progress_on_held_out_push_demos(push_run):
    _, report = push_run
    held = report["held_out"]
    assert held["successes"] >= 5
    # Spearman of Φ against time up to the first success, on episodes never trained on: a constant or
    # random model scores about 0
    assert held["value_order_correlation"] >= 0.85, held
    # successes end higher than the held-out failure
    assert held["final_progress_auroc"] is not None and held["final_progress_auroc"] >= 0.75
    ends = [row["phi_final"] for row in held["episodes"] if row["success"]]
    starts = [row["phi_start"] for row in held["episodes"] if row["success"]]
    assert np.mean(ends) - np.mean(starts) > 0.5


def _mixed_first_and_success(episodes, count: int = 50) -> torch.Tensor:
    """Held-out successful episodes' first and first-successful observations mixed feature by feature."""
    gen = np.random.default_rng(0)
    rows = [np.where(gen.random(e.obs.shape[1]) < 0.5, e.obs[e.first_success], e.obs[0])
            for e in episodes if e.success for _ in range(count)]
    return torch.as_tensor(np.array(rows, dtype=np.float32))


def test_mixed_state_negatives_keep_progress_low_where_only_part_of_the_state_progressed(push_run):
    """A policy finds the part of the state cheapest to move (e.g. the arm raised, the object where it was):
    with the mixed-state negatives (the default) such states score low on held-out episodes; without, about
    half of a success's progress."""
    out, _ = push_run
    net, _, spec = load_progress_run(out)
    config = ProgressConfig(task="push", demos=(DEMOS.format("push", "expert"),),
                            negatives=(DEMOS.format("push", "noisy"),), epochs=150, seed=0, mix_weight=0.0)
    plain, _ = fit_progress(config, spec)
    _, held = split_episodes(load_episodes(config.demos + config.negatives, spec), config.holdout, config.seed)
    mixed = _mixed_first_and_success(held)
    with torch.no_grad():
        with_mix, without = float(net.phi(mixed).mean()), float(plain.phi(mixed).mean())
    assert with_mix < 0.3 and without - with_mix > 0.12, (with_mix, without)  # measured 0.24 vs 0.46


def test_the_metrics_match_hand_computed_values():
    assert spearman(np.arange(5), np.array([0.0, 0.1, 0.3, 0.2, 0.9])) == pytest.approx(0.9)
    assert spearman(np.arange(4), np.ones(4)) == 0.0
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.85])) == pytest.approx(0.75)
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5
    assert auroc(np.array([0.5]), np.array([])) is None


def _episode(success, n=5):
    return Episode(np.zeros((n, 3), np.float32), success, 2 if success else -1, "f.h5", 0)


def test_targets_rise_to_one_at_the_first_success_and_stay_low_on_failures():
    np.testing.assert_allclose(_episode(True).targets(0.5), [0, 0.5, 1, 1, 1])
    np.testing.assert_allclose(_episode(False).targets(0.5), [0, 0.125, 0.25, 0.375, 0.5])


def test_split_refuses_datasets_without_successes_or_too_few_to_hold_out():
    with pytest.raises(ValueError, match="no successful episode"):
        split_episodes([_episode(False)] * 4, 0.25, 0)
    with pytest.raises(ValueError, match="at least 2 are needed so one can be held out"):
        split_episodes([_episode(True), _episode(False)], 0.25, 0)
    train, held = split_episodes([_episode(True)] * 8 + [_episode(False)] * 2, 0.25, 0)
    assert sum(e.success for e in held) == 2 and sum(not e.success for e in held) == 1
    assert len(train) == 7


def test_demos_of_another_task_are_refused():
    with pytest.raises(ValueError, match="holds demos of task 'lift', not 'push'"):
        load_episodes([DEMOS.format("lift", "expert")], get_task("push"))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_episodes(["nowhere.h5"], get_task("push"))


def test_bad_configs_say_what_is_allowed():
    with pytest.raises(ValueError, match="--inputs must be one of"):
        ProgressConfig(task="reach", demos=(), inputs="pixels")
    with pytest.raises(ValueError, match="--image-size must be in 16..256"):
        ProgressConfig(task="reach", demos=(), inputs="image", image_size=8)


# -- the run directory -------------------------------------------------------------------------------------
def test_a_run_loads_weights_only_and_never_a_task_folder_named_by_the_file(push_run, tmp_path):
    run, _ = push_run
    weights = torch.load(run / "model.pt", weights_only=True)
    assert set(weights) == {"state_dict", "obs_dim", "hidden", "inputs", "members"} and weights["inputs"] == "state"
    assert weights["members"] == 1
    net, meta, spec = load_progress_run(run)
    assert spec.name == "push" and meta["inputs"] == "state"
    assert meta["input_spec"]["dim"] == len(spec.obs_layout) and meta["config"]["features"] == "obs-norms"  # default
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.pt").write_bytes((run / "model.pt").read_bytes())
    (bad / "progress.json").write_text(json.dumps({**meta, "task": str(tmp_path)}))
    with pytest.raises(ValueError, match="never selects a task folder"):
        load_progress_run(bad)
    with pytest.raises(ValueError, match="fitted on task 'push', not 'lift'"):
        load_progress_run(run, get_task("lift"))


# -- shaping on a tiny MDP ---------------------------------------------------------------------------------
class _TableNet(nn.Module):
    """Φ(one-hot state) = table[state]."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32), requires_grad=False)

    def phi(self, obs):
        return obs @ self.table


def _chain_mdp():
    """States 0..5; actions left, right, stay; entering 5 ends the episode with reward 1."""
    n, goal = 6, 5
    nxt = torch.tensor([[max(s - 1, 0), min(s + 1, goal), s] for s in range(n)])
    reward = (nxt == goal).float()
    done = nxt == goal
    return n, nxt, reward, done


def _optimal_policy(reward, nxt, done, gamma, iters=500):
    value = torch.zeros(reward.shape[0])
    for _ in range(iters):
        q = reward + gamma * (~done).float() * value[nxt]
        value = q.max(1).values
    return q.argmax(1)[:-1]  # the terminal state's action does not matter


def _shaped(table, nxt, done, gamma):
    """The shaping term of every (s, a) as ProgressShaping computes it, one world per transition."""
    n, k = nxt.shape
    eye = torch.eye(n)
    spec = SimpleNamespace(observe=lambda s: s.obs, terminated=lambda s: s.done)
    shaping = ProgressShaping(_TableNet(table), spec, gamma=gamma, weight=1.0)
    start = TaskState({"obs": eye.repeat_interleave(k, 0), "done": torch.zeros(n * k, dtype=torch.bool)})
    shaping.on_reset(torch.arange(n * k), start)
    after = TaskState({"obs": eye[nxt.reshape(-1)], "done": done.reshape(-1)})
    total, terms = shaping(after, torch.zeros(n * k, 1))
    torch.testing.assert_close(terms["progress_shaping"], total)
    return total.view(n, k)


def test_potential_shaping_keeps_the_optimal_policy_and_a_progress_bonus_does_not():
    n, nxt, reward, done = _chain_mdp()
    gamma = 0.9
    table = [0.0, 0.1, 0.2, 1.0, 0.3, 0.9]  # a misleading Φ: highest at state 3, short of the goal
    base = _optimal_policy(reward, nxt, done, gamma)
    assert base.tolist() == [1] * (n - 1)  # always right
    shaped = reward + _shaped(table, nxt, done, gamma)
    assert _optimal_policy(shaped, nxt, done, gamma).tolist() == base.tolist()
    # Φ(goal) = 0.9 was ignored: entering the terminal state counts Φ = 0
    assert shaped[4, 1] == pytest.approx(1.0 + gamma * 0.0 - 0.3)
    bonus = reward + torch.tensor(table)[nxt]  # progress paid as a reward: loitering at state 3 pays more
    assert _optimal_policy(bonus, nxt, done, gamma).tolist() != base.tolist()
    assert _optimal_policy(bonus, nxt, done, gamma)[3] == 2  # stays at the high-progress state


def test_shaping_before_any_reset_says_how_to_use_it():
    spec = SimpleNamespace(observe=lambda s: s.obs, terminated=lambda s: s.done)
    shaping = ProgressShaping(_TableNet([0.0, 1.0]), spec, gamma=0.9)
    state = TaskState({"obs": torch.eye(2), "done": torch.zeros(2, dtype=torch.bool)})
    with pytest.raises(RuntimeError, match="BatchedEnv"):
        shaping(state, torch.zeros(2, 1))


# -- the reward in a real env ------------------------------------------------------------------------------
def test_the_shaped_reward_sums_its_terms_and_restarts_phi_at_episode_starts(push_run):
    run, _ = push_run
    env = robreward.make("push", 4, seed=0, reward=f"sparse+progress:{run}")
    shaping = env.reward_fn.parts[1]
    assert isinstance(shaping, ProgressShaping) and shaping.gamma == pytest.approx(0.99)
    env.reset(seed=1)
    gen = torch.Generator().manual_seed(0)
    prev_phi = shaping.potential(env.state)
    ended = 0
    for _ in range(env.spec.episode_length + 3):
        action = torch.rand(4, env.act_dim, generator=gen) * 2 - 1
        _, reward, terminated, truncated, info = env.step(action)
        terms = info["reward_terms"]
        assert set(terms) == {"fitness", "progress_shaping"}
        torch.testing.assert_close(terms["fitness"] + terms["progress_shaping"], reward)
        phi_final = shaping.potential(info["final_state"])
        kept = torch.where(terminated, torch.zeros_like(phi_final), phi_final)  # a time-out keeps γΦ(s')
        torch.testing.assert_close(terms["progress_shaping"], 0.99 * kept - prev_phi)
        # after the step every world's previous Φ is that of its current state: the first state of a
        # new episode where the world was reset
        prev_phi = shaping.potential(env.state)
        torch.testing.assert_close(shaping.prev_phi, prev_phi)
        ended += int((terminated | truncated).sum())
    assert ended == 4  # every world timed out once, and restarted
    env.set_state(env.get_state()[:1], [2])  # a written world starts an episode too
    torch.testing.assert_close(shaping.prev_phi, shaping.potential(env.state))


def test_progress_specs_parse_and_bad_runs_are_refused(tmp_path):
    from robreward.rewards.spec import normalize_reward_spec

    with pytest.raises(FileNotFoundError, match="not a progress run"):
        normalize_reward_spec(f"hand+progress:{tmp_path}")
    with pytest.raises(ValueError, match="unknown option"):
        robreward.make("push", 1, reward=f"progress:{tmp_path},lambda=2")


def test_the_k_candidate_reward_forwards_episode_starts_to_a_progress_shaping(push_run):
    """rl.candidates.CandidateRewards passes on_reset to each candidate's reward on its own world slice, so
    `progress:` shapes the K-candidate trainer's runs as it does a single run's."""
    from robreward.rewards.base import resolve_reward
    from robreward.rl.candidates import CandidateRewards

    run, _ = push_run
    spec = get_task("push")
    shaped = resolve_reward(f"sparse+progress:{run}", spec)
    shaping = shaped.parts[1]
    candidates = CandidateRewards([resolve_reward("sparse", spec), shaped], ["sparse", "shaped"], worlds_per_candidate=2)
    env = robreward.make("push", 4, seed=0, reward=candidates)
    env.reset(seed=3)
    mine = slice(2, 4)  # candidate 1's worlds
    torch.testing.assert_close(shaping.prev_phi, shaping.potential(env.state.index(mine)))
    gen = torch.Generator().manual_seed(0)
    ended = 0
    for _ in range(env.spec.episode_length + 2):
        prev = shaping.prev_phi.clone()
        _, _, terminated, truncated, info = env.step(torch.rand(4, env.act_dim, generator=gen) * 2 - 1)
        phi_final = shaping.potential(info["final_state"].index(mine))
        kept = torch.where(terminated[mine], torch.zeros_like(phi_final), phi_final)
        torch.testing.assert_close(candidates.terms[1]["progress_shaping"], 0.99 * kept - prev)
        # after an auto-reset the candidate's Φ(s) is that of its worlds' first states
        torch.testing.assert_close(shaping.prev_phi, shaping.potential(env.state.index(mine)))
        ended += int((terminated | truncated)[mine].sum())
    assert ended == 2 and candidates.failed == [None, None]


def test_obs_norm_features_read_each_observation_part_as_its_norm_and_round_trip(tmp_path):
    spec = get_task("push")
    config = ProgressConfig(task="push", demos=(DEMOS.format("push", "expert"),), epochs=5, seed=0,
                            features="obs-norms")
    net, report = fit_progress(config, spec)
    obs = torch.randn(4, spec.obs_dim)
    by_hand = torch.cat([obs[:, 0:3].norm(dim=-1, keepdim=True), obs[:, 3:6].norm(dim=-1, keepdim=True), obs[:, 6:7]]
                        + [obs[:, a:a + 3].norm(dim=-1, keepdim=True) for a in (7, 10, 13, 16)], -1)
    assert torch.allclose(net.state_features(obs), by_hand)
    out = save_progress_run(tmp_path / "run", net, config, spec, report)
    meta = json.loads((out / "progress.json").read_text())
    assert meta["input_spec"]["dim"] == 7 and meta["input_spec"]["parts"][-1] == "cube_to_goal"
    loaded, _, _ = load_progress_run(out)
    assert torch.allclose(loaded.phi(obs), net.phi(obs))
    with pytest.raises(ValueError, match="--features must be one of"):
        ProgressConfig(task="push", demos=(), features="norms")


def test_obs_norms_z_features_keep_the_height_of_3d_positions_and_velocities_and_round_trip(tmp_path):
    spec = get_task("lift")  # ee_pos, ee_vel, gripper_opening, cube_pos, ee_to_cube (m, m/s), grasped
    config = ProgressConfig(task="lift", demos=(DEMOS.format("lift", "expert"),), epochs=5, seed=0,
                            features="obs-norms-z")
    net, report = fit_progress(config, spec)
    obs = torch.randn(4, spec.obs_dim)

    def flat_and_up(a):
        return [obs[:, a:a + 2].norm(dim=-1, keepdim=True), obs[:, a + 2:a + 3]]

    by_hand = torch.cat(flat_and_up(0) + flat_and_up(3) + [obs[:, 6:7]] + flat_and_up(7) + flat_and_up(10)
                        + [obs[:, 13:14]], -1)
    assert torch.allclose(net.state_features(obs), by_hand)
    # a cube lifted 8 cm straight up changes the features, where obs-norms barely sees it
    lifted = obs.clone()
    lifted[:, 9] += 0.08
    assert torch.allclose(net.state_features(lifted)[:, 6] - net.state_features(obs)[:, 6], torch.full((4,), 0.08))
    out = save_progress_run(tmp_path / "run", net, config, spec, report)
    meta = json.loads((out / "progress.json").read_text())
    assert meta["input_spec"]["dim"] == 10 and meta["input_spec"]["parts"][3] == "cube_pos(horizontal norm, z)"
    loaded, _, _ = load_progress_run(out)
    assert torch.allclose(loaded.phi(obs), net.phi(obs))
    # a task without 3-D positions in m or m/s reads as obs-norms does
    cheetah = get_task("cheetah-run")
    from robreward.feedback.progress.features import observation_parts

    assert observation_parts(cheetah, "obs-norms-z") == tuple((a, b, False) for a, b, _ in
                                                               observation_parts(cheetah, "obs-norms"))


def test_runs_fitted_before_features_and_mixing_existed_still_load(tmp_path):
    """A run of then: the observation as it is, no features/mix_weight in its config."""
    spec = get_task("push")
    config = ProgressConfig(task="push", demos=(DEMOS.format("push", "expert"),), epochs=5, seed=0,
                            features="observation")
    net, report = fit_progress(config, spec)
    out = save_progress_run(tmp_path / "now", net, config, spec, report)
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((out / "progress.json").read_text())
    for key in ("features", "mix_weight"):
        meta["config"].pop(key)
    (old / "progress.json").write_text(json.dumps(meta))
    (old / "model.pt").write_bytes((out / "model.pt").read_bytes())
    loaded, _, _ = load_progress_run(old)
    obs = torch.randn(3, spec.obs_dim)
    assert torch.allclose(loaded.phi(obs), net.phi(obs))


def test_an_ensemble_scores_its_members_mean_and_round_trips(tmp_path):
    """--members K: member k is the single net of seed + k (its own split), Φ and Δ are the members' means, the
    held-out metrics are out of bag; saved in one model.pt (weights only), refused where model.pt and
    progress.json disagree, adapted member by member."""
    from robreward.feedback.progress import adapt_progress
    from robreward.feedback.progress.ensemble import ProgressEnsemble
    from robreward.feedback.progress.metrics import progress_curves

    spec = get_task("lift")
    base = dict(task="lift", demos=(DEMOS.format("lift", "expert"),), epochs=60, seed=3, features="obs-norms-z")
    singles = [fit_progress(ProgressConfig(**{**base, "seed": seed}), spec) for seed in (3, 4)]
    config = ProgressConfig(**base, members=3)
    net, report = fit_progress(config, spec)
    assert isinstance(net, ProgressEnsemble) and len(net.members) == 3
    obs = torch.randn(6, spec.obs_dim) * 0.2
    for k, (single, single_report) in enumerate(singles):
        assert torch.equal(net.members[k].phi(obs), single.phi(obs))
        assert report["members"][k]["split"] == single_report["split"] and report["members"][k]["seed"] == 3 + k
    assert report["members"][0]["split"] != report["members"][1]["split"]  # each member holds out its own
    by_hand = (net.members[0].phi(obs) + net.members[1].phi(obs) + net.members[2].phi(obs)) / 3
    torch.testing.assert_close(net.phi(obs), by_hand)
    torch.testing.assert_close(net.delta(obs, obs.flip(0)), torch.stack([m.delta(obs, obs.flip(0))
                                                                         for m in net.members]).mean(0))
    # out of bag: each scored episode by the members that held it out, and only by them
    episodes = load_episodes([DEMOS.format("lift", "expert")], spec)
    held = [{(src, i) for src, i in m["split"]["held_out"]} for m in report["members"]]
    rows = {(r["source"], r["episode"]): r for r in report["held_out"]["episodes"]}
    assert set(rows) == set().union(*held) and len(rows) < len(episodes)
    e = next(e for e in episodes if (e.source, e.index) in held[1])
    by = [k for k in range(3) if (e.source, e.index) in held[k]]
    curve = np.mean([progress_curves(net.members[k], [e])[0] for k in by], axis=0)
    assert rows[(e.source, e.index)]["phi_final"] == pytest.approx(float(curve[-1]), abs=1e-6)
    assert rows[(e.source, e.index)]["spearman"] == pytest.approx(spearman(np.arange(e.first_success + 1),
                                                                           curve[:e.first_success + 1]))
    # it learned what a single net learns: Φ rises along the demos it never trained on
    assert report["held_out"]["value_order_correlation"] >= 0.85, report["held_out"]
    out = save_progress_run(tmp_path / "ens", net, config, spec, report)
    weights = torch.load(out / "model.pt", weights_only=True)
    assert weights["members"] == 3 and any(k.startswith("members.2.") for k in weights["state_dict"])
    loaded, meta, _ = load_progress_run(out)
    assert meta["config"]["members"] == 3 and isinstance(loaded, ProgressEnsemble)
    torch.testing.assert_close(loaded.phi(obs), net.phi(obs))
    env = robreward.make("lift", 4, seed=0, reward=f"sparse+progress:{out},weight=10")  # the reward: 10 x the mean
    env.reset(seed=1)
    _, _, _, _, info = env.step(torch.zeros(4, env.act_dim))
    phi_next = net.phi(spec.observe(env.state).float())
    assert torch.all(info["reward_terms"]["progress_shaping"] != 0)
    torch.testing.assert_close(env.reward_fn.parts[1].prev_phi, 10 * phi_next)
    # adaptation fine-tunes every member
    before = [m.phi_head.weight.clone() for m in loaded.members]
    adapt_progress(loaded, episodes[:1], config, epochs=3)
    assert all(not torch.equal(b, m.phi_head.weight) for b, m in zip(before, loaded.members))
    # model.pt of 3 nets with a progress.json of 2: refused
    meta["config"]["members"] = 2
    (out / "progress.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="holds 3 nets.*refit it"):
        load_progress_run(out)
    with pytest.raises(ValueError, match="--members must be in 1..32"):
        ProgressConfig(**base, members=0)


def test_eval_names_the_features_where_states_leave_the_range_the_model_was_fitted_on(tmp_path):
    """A net keeps the range of its training frames' state features; states past it (Φ there is extrapolation, the
    trap PPO climbed on lift) are counted per feature; the range round-trips, adaptation widens it, and a run fitted
    before it was kept loads with the range unknown (None)."""
    import dataclasses

    from robreward.feedback.progress import adapt_progress
    from robreward.feedback.progress.features import feature_names, read_parts
    from robreward.feedback.progress.metrics import outside_range

    spec = get_task("lift")
    config = ProgressConfig(task="lift", demos=(DEMOS.format("lift", "expert"),), epochs=5, seed=0,
                            features="obs-norms-z")
    net, report = fit_progress(config, spec)
    names = feature_names(spec, "obs-norms-z")
    assert names == ["ee_pos.xy", "ee_pos.z", "ee_vel.xy", "ee_vel.z", "gripper_opening", "cube_pos.xy", "cube_pos.z",
                     "ee_to_cube.xy", "ee_to_cube.z", "grasped"]
    episodes = load_episodes([DEMOS.format("lift", "expert")], spec)
    train = [e for e in episodes if [e.source, e.index] in report["split"]["train"]]
    feats = read_parts(torch.from_numpy(np.concatenate([e.obs for e in train])), net.parts)
    assert torch.equal(net.feature_lo, feats.min(0).values) and torch.equal(net.feature_hi, feats.max(0).values)
    assert outside_range(net, train, names) == {"share_of_steps": 0.0, "features": {}, "margin": 0.02}
    # the same episodes with the gripper and the cube carried 0.4 m out along x: two features leave the range
    dragged = [dataclasses.replace(e, obs=e.obs + np.array([0.4, 0, 0, 0, 0, 0, 0, 0.4, 0, 0, 0, 0, 0, 0],
                                                           dtype=np.float32)) for e in train]
    far = outside_range(net, dragged, names)
    assert far["share_of_steps"] == 1.0 and set(far["features"]) == {"ee_pos.xy", "cube_pos.xy"}
    # saved and loaded with the run; an old model.pt without the range loads, its range unknown
    out = save_progress_run(tmp_path / "run", net, config, spec, report)
    loaded, _, _ = load_progress_run(out)
    assert outside_range(loaded, dragged, names) == far
    weights = torch.load(out / "model.pt", weights_only=True)
    for key in ("feature_lo", "feature_hi"):
        weights["state_dict"].pop(key)
    torch.save(weights, out / "model.pt")
    old, _, _ = load_progress_run(out)
    assert outside_range(old, dragged, names) is None
    torch.testing.assert_close(old.phi(torch.from_numpy(train[0].obs)), net.phi(torch.from_numpy(train[0].obs)))
    # adaptation on a demo out there makes its states the model's range too
    adapt_progress(loaded, dragged[:1], config, epochs=2)
    assert outside_range(loaded, dragged[:1], names)["share_of_steps"] == 0.0
    assert feature_names(get_task("reach"), "observation")[:2] == ["ee_pos[0]", "ee_pos[1]"]
