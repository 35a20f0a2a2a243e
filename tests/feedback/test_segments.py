"""Segments never cross an episode boundary, short episodes never crash, query selection and schedules."""

import numpy as np
import pytest
import torch

import robreward
from robreward.rewards import HandReward
from robreward.feedback.preferences import (
    Featurizer,
    PreferenceReward,
    EnsembleConfig,
    Rollout,
    SegmentBatch,
    cat_pairs,
    choose_queries,
    collect_rollout,
    cut_segments,
    query_schedule,
    query_scores,
    sample_pairs,
    segment_candidates,
    segment_episodes,
)


def synthetic_rollout(terminated, truncated):
    """A rollout whose state says where each step came from: (step, world, episode id)."""
    terminated = torch.as_tensor(terminated, dtype=torch.bool)
    truncated = torch.as_tensor(truncated, dtype=torch.bool)
    t, n = terminated.shape
    done = terminated | truncated
    episode = torch.zeros(t, n)
    episode[1:] = torch.cumsum(done[:-1].float(), 0)
    steps = torch.arange(t).float()[:, None].expand(t, n)
    worlds = torch.arange(n).float()[None, :].expand(t, n)
    states = {"step": steps, "world": worlds, "episode": episode + 100 * worlds, "action": torch.zeros(t, n, 1)}
    rewards = 1.0 + steps * 0.01
    return Rollout(states, torch.zeros(t, n, 1), rewards, terminated, truncated)


def provenance(state, action):
    return torch.stack([state["step"], state["world"], state["episode"]], -1)


def test_segments_never_mix_episodes():
    t, n, horizon = 40, 3, 5
    rng = np.random.default_rng(0)
    terminated = rng.random((t, n)) < 0.08
    truncated = np.zeros((t, n), bool)
    truncated[[9, 25], 1] = True  # time limits in world 1
    roll = synthetic_rollout(terminated, truncated)
    segs = cut_segments(roll, horizon, provenance)
    assert segs.size > 0 and segs.features.shape == (segs.size, horizon, 3)
    assert (~segs.mask).any() and segs.mask.all(1).any()  # both padded and full segments occur
    for b in range(segs.size):
        real = segs.mask[b]
        step, world, episode = segs.features[b, real].T
        assert (world == segs.world[b]).all() and (episode == episode[0]).all()  # one world, one episode
        assert (step == segs.start[b] + torch.arange(int(real.sum()))).all()  # consecutive steps
        assert real[: int(real.sum())].all()  # padding only at the end
        assert torch.equal(segs.rewards[b, real], 1.0 + step * 0.01) and (segs.rewards[b, ~real] == 0).all()
        if not real.all():  # padded: a terminated episode shorter than the segment
            last = int(segs.start[b]) + int(real.sum()) - 1
            assert terminated[last, int(segs.world[b])]
            assert (segs.features[b, ~real] == segs.features[b, real][-1]).all()  # repeats the last step


def test_run_rules_full_padded_and_dropped():
    t, horizon = 12, 4
    term = np.zeros((t, 4), bool)
    trunc = np.zeros((t, 4), bool)
    term[1, 0] = True  # world 0: a 2-step terminated episode (padded), then 10 steps -> 7 full starts
    trunc[1, 1] = True  # world 1: a 2-step truncated piece (dropped), then 10 steps -> 7 starts
    term[10, 2] = True  # world 2: 11 steps -> 8 starts, then 1 step cut by the rollout end (dropped)
    # world 3: no boundary: 12 steps -> 9 starts
    world, start, length = segment_candidates(synthetic_rollout(term, trunc), horizon)
    got = sorted(zip(world.tolist(), start.tolist(), length.tolist()))
    expected = ([(0, 0, 2)] + [(0, s, 4) for s in range(2, 9)] + [(1, s, 4) for s in range(2, 9)]
                + [(2, s, 4) for s in range(0, 8)] + [(3, s, 4) for s in range(0, 9)])
    assert got == sorted(expected)


def test_short_episodes_do_not_crash():
    # every episode terminates after 3 steps, segments of 10: one padded segment per episode
    term = np.zeros((12, 2), bool)
    term[2::3] = True
    segs = cut_segments(synthetic_rollout(term, np.zeros_like(term)), 10, provenance)
    assert segs.size == 8 and (segs.mask.sum(1) == 3).all()
    assert torch.allclose(segs.returns, segs.rewards[:, :3].sum(1))
    # episodes that only hit the time limit, all shorter than the segment: a clear error
    with pytest.raises(ValueError, match="no segment of 10 steps fits.*longest stretch inside one episode has 3"):
        cut_segments(synthetic_rollout(np.zeros_like(term), term), 10, provenance)
    with pytest.raises(ValueError, match="segment length must be an integer >= 1"):
        cut_segments(synthetic_rollout(term, np.zeros_like(term)), 0, provenance)
    with pytest.raises(ValueError, match="pass rng"):
        cut_segments(synthetic_rollout(term, np.zeros_like(term)), 2, provenance, num=3)


def test_rollout_shapes_checked():
    roll = synthetic_rollout(np.zeros((5, 2), bool), np.zeros((5, 2), bool))
    with pytest.raises(ValueError, match=r"actions must start with \[T, N\] = \[5, 2\]"):
        Rollout(roll.states, torch.zeros(4, 2, 1), roll.rewards, roll.terminated, roll.truncated)


def test_env_rollout_with_early_termination():
    """hopper falls under random actions well before 50 steps: padded segments, never a crash."""
    env = robreward.make("hopper-hop", num_envs=4, seed=0)
    roll, obs = collect_rollout(env, None, 80, seed=0, record_sim_states=True)
    assert roll.terminated.any() and obs.shape == (4, env.obs_dim)
    assert roll.sim_states.shape == (80, 4, env.nstate)
    featurizer = Featurizer(env.spec)
    segs = cut_segments(roll, 50, featurizer, num=64, rng=np.random.default_rng(0))
    assert segs.features.shape == (64, 50, env.obs_dim + env.act_dim)
    assert (~segs.mask).any()  # some segments are padded
    # features are the observation and action of the recorded step
    b = 0
    step, world = int(segs.start[b]), int(segs.world[b])
    expected = featurizer(roll.state_at(torch.tensor([step]), torch.tensor([world])), roll.actions[step, world][None])
    assert torch.allclose(segs.features[b, 0], expected[0])
    # a segment never contains a step after an episode end
    dones = roll.dones
    for b in range(segs.size):
        n_real = int(segs.mask[b].sum())
        s, w = int(segs.start[b]), int(segs.world[b])
        assert not dones[s:s + n_real - 1, w].any()


def test_collect_rollout_with_policy_continues_from_obs():
    env = robreward.make("reach", num_envs=3, seed=1)
    obs, _ = env.reset()
    roll, obs2 = collect_rollout(env, lambda o: torch.zeros(o.shape[0], 4), 60, obs=obs)
    assert roll.truncated[49].all() and not roll.dones[:49].any()  # reach: 50-step episodes
    hand = HandReward(env.spec)
    for t in (0, 49, 50, 59):  # the ground truth is the hand reward of the recorded step
        assert torch.allclose(roll.rewards[t], hand(roll.state_at(torch.full((3,), t), torch.arange(3)),
                                                    roll.actions[t])[0])
    assert torch.equal(roll.actions, torch.zeros(60, 3, 4))
    assert segment_candidates(roll, 20)[0].size == 3 * (31 + 0)  # the 10-step tail is cut by the rollout end


def small_model(dim, seed=0):
    return PreferenceReward(dim, config=EnsembleConfig(hidden=(16,), epochs=5, seed=seed))


def test_pairs_and_query_selection():
    g = torch.Generator().manual_seed(0)
    segs = SegmentBatch.from_features(torch.randn(30, 4, 3, generator=g), torch.randn(30, 4, generator=g))
    rng = np.random.default_rng(0)
    pairs = sample_pairs(segs, 200, rng)
    assert pairs.size == 200
    assert not (pairs.first.features == pairs.second.features).all(-1).all(-1).any()  # never a segment with itself
    uniform = choose_queries(segs, 10, "uniform", rng)
    assert uniform.size == 10
    model = small_model(3)
    chosen = choose_queries(segs, 10, "disagreement", np.random.default_rng(1), model=model, pool_factor=5)
    pool = sample_pairs(segs, 50, np.random.default_rng(1))  # the same pool, drawn again
    scores = model.disagreement(pool)
    assert torch.allclose(model.disagreement(chosen), scores.sort(descending=True).values[:10])
    assert choose_queries(segs, 10, "entropy", rng, model=model).size == 10
    with pytest.raises(ValueError, match="pass model=.*select 'uniform'"):
        choose_queries(segs, 10, "disagreement", rng)
    with pytest.raises(ValueError, match="unknown query selection 'random': choose one of uniform, disagreement"):
        query_scores(pool, "random")
    both = cat_pairs([uniform, chosen])
    assert both.size == 20 and torch.equal(both.first.features[10:], chosen.first.features)


def test_episode_pairing_keeps_both_segments_in_one_episode():
    t, n, horizon = 60, 4, 5
    rng = np.random.default_rng(3)
    term = rng.random((t, n)) < 0.05
    trunc = np.zeros((t, n), bool)
    trunc[29, :] = True  # every world starts a second episode at step 30
    roll = synthetic_rollout(term, trunc)
    segs = cut_segments(roll, horizon, provenance)
    episodes = segment_episodes(roll, segs)
    assert torch.equal(torch.as_tensor(episodes, dtype=torch.float32) // (t + 1), segs.world.float())  # world-major ids
    # the episode id is the world's own count of finished episodes: compare with the provenance feature
    assert len(set(zip(episodes.tolist(), segs.features[:, 0, 2].tolist()))) == len(set(episodes.tolist()))
    pairs = sample_pairs(segs, 400, np.random.default_rng(0), groups=episodes)
    first, second = pairs.first.features[:, 0, 2], pairs.second.features[:, 0, 2]  # provenance episode ids
    ids = segs.features[:, 0, 2]
    lonely = torch.tensor([int((ids == e).sum()) == 1 for e in first.tolist()])
    assert torch.equal(first[~lonely], second[~lonely])  # the same episode when it has another segment...
    assert (first[lonely] != second[lonely]).all()
    assert not (pairs.first.start == pairs.second.start).all()  # ...never the same segment
    assert ((pairs.first.start == pairs.second.start) & (pairs.first.world == pairs.second.world)).sum() == 0
    mixed = sample_pairs(segs, 400, np.random.default_rng(0), groups=episodes, within=0.5)
    same = (mixed.first.features[:, 0, 2] == mixed.second.features[:, 0, 2]).float().mean()
    assert 0.4 < float(same) < 0.7  # half within an episode, the rest across (a few across by chance)
    # a segment alone in its episode is paired with another episode's segment
    single = SegmentBatch.from_features(torch.arange(3.0).reshape(3, 1, 1))
    lone = sample_pairs(single, 50, np.random.default_rng(0), groups=np.array([0, 1, 1]))
    assert (lone.first.features != lone.second.features).all()
    with pytest.raises(ValueError, match="one id per segment"):
        sample_pairs(single, 5, np.random.default_rng(0), groups=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"within must be a share in \[0, 1\]"):
        sample_pairs(single, 5, np.random.default_rng(0), groups=np.array([0, 1, 1]), within=2.0)
    disagreement = choose_queries(segs, 20, "disagreement", np.random.default_rng(1), model=small_model(3),
                                  groups=episodes)
    first, second = disagreement.first.features[:, 0, 2], disagreement.second.features[:, 0, 2]
    lonely = torch.tensor([int((ids == e).sum()) == 1 for e in first.tolist()])
    assert torch.equal(first[~lonely], second[~lonely]) and (~lonely).sum() >= 15


def test_query_schedule():
    assert query_schedule(200, 64) == [64, 64, 64, 8]
    assert query_schedule(128, 64) == [64, 64]
    linear = query_schedule(500, 50, "linear")
    assert sum(linear) == 500 and linear == sorted(linear, reverse=True) and min(linear) >= 1
    assert abs(linear[0] - 50) <= 3 and len(linear) == 19
    assert sum(query_schedule(7, 1, "linear")) == 7
    with pytest.raises(ValueError, match="budget 50 is smaller than one round of 64 queries"):
        query_schedule(50, 64)
    with pytest.raises(ValueError, match="unknown query schedule 'exp': choose one of constant, linear"):
        query_schedule(500, 50, "exp")
    with pytest.raises(ValueError, match="query budget must be an integer >= 1"):
        query_schedule(0, 50)
