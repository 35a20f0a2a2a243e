"""GAE and the time-out bootstrap against hand-computed numbers."""

import pytest
import torch

from robreward.rl.ppo import EmpiricalNormalization, gaussian_kl, gaussian_log_prob
from robreward.rl.storage import RolloutStorage, bootstrap_truncated, compute_gae

GAMMA, LAM = 0.9, 0.8


def test_gae_no_episode_end_matches_hand_computation():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.zeros(3, 1)
    last = torch.tensor([2.0])
    adv, ret = compute_gae(rewards, values, dones, last, GAMMA, LAM)
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # 3.3
    d1 = 2.0 + 0.9 * 1.5 - 1.0  # 2.35
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a2 = d2
    a1 = d1 + 0.72 * a2
    a0 = d0 + 0.72 * a1
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2])
    assert ret[:, 0].tolist() == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5])


def test_gae_termination_cuts_the_trace_without_bootstrap():
    # step 1 terminates: no value of the next (reset) state leaks into steps 0-1
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last = torch.tensor([2.0])
    adv, _ = compute_gae(rewards, values, dones, last, GAMMA, LAM)
    a2 = 3.0 + 0.9 * 2.0 - 1.5
    a1 = 2.0 - 1.0  # terminal: delta = r - V
    a0 = (1.0 + 0.9 * 1.0 - 0.5) + 0.72 * a1
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2])


def test_truncation_bootstraps_from_the_final_observation_value():
    # step 1 hits the time limit; V(final_obs) = 4.0 is folded into its reward, then the trace is cut
    rewards = torch.tensor([1.0, 2.0])  # one step, two worlds: world 0 truncated, world 1 not
    truncated = torch.tensor([True, False])
    final_values = torch.tensor([4.0, 100.0])
    boot = bootstrap_truncated(rewards, truncated, final_values, GAMMA)
    assert boot.tolist() == pytest.approx([1.0 + 0.9 * 4.0, 2.0])

    step_rewards = torch.tensor([[1.0], [2.0], [3.0]])
    step_rewards[1] = bootstrap_truncated(step_rewards[1], torch.tensor([True]), torch.tensor([4.0]), GAMMA)
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])  # truncated is an episode end too
    adv, _ = compute_gae(step_rewards, values, dones, torch.tensor([2.0]), GAMMA, LAM)
    a1 = 2.0 + 0.9 * 4.0 - 1.0  # = 4.6: the world would have gone on from V(final_obs)
    a0 = (1.0 + 0.9 * 1.0 - 0.5) + 0.72 * a1
    assert adv[1, 0].item() == pytest.approx(a1)
    assert adv[0, 0].item() == pytest.approx(a0)


def test_gae_is_independent_per_world():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    values = torch.zeros(2, 2)
    dones = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    adv, _ = compute_gae(rewards, values, dones, torch.zeros(2), 0.5, 1.0)
    assert adv[:, 0].tolist() == pytest.approx([1.0, 0.0])
    assert adv[:, 1].tolist() == pytest.approx([0.0, 1.0])


def test_storage_minibatches_cover_every_transition_once_per_epoch():
    storage = RolloutStorage(4, 3, obs_dim=2, act_dim=1, device=torch.device("cpu"))
    for t in range(4):
        obs = torch.arange(3, dtype=torch.float32)[:, None].repeat(1, 2) + 10 * t
        storage.add(obs, torch.zeros(3, 1), torch.zeros(3), torch.zeros(3), torch.ones(3), torch.zeros(3),
                    torch.zeros(3, 1), torch.ones(3, 1))
    storage.compute_returns(torch.zeros(3), 0.99, 0.95)
    batches = list(storage.minibatches(num_minibatches=2, num_epochs=2))
    assert len(batches) == 4 and batches[0].obs.shape == (1, 6, 2)  # [K=1 candidate, B, obs_dim]
    seen = torch.cat([b.obs[0, :, 0] for b in batches[:2]]).sort().values
    assert seen.tolist() == sorted(float(i + 10 * t) for t in range(4) for i in range(3))


def test_empirical_normalization_matches_batch_statistics():
    torch.manual_seed(0)
    data = torch.randn(1000, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -3.0, 0.0])
    norm = EmpiricalNormalization(3, eps=0.0, clip=1e9)
    for chunk in data.split(64):
        norm.update(chunk)
    assert norm.mean.tolist() == pytest.approx(data.mean(0).tolist(), rel=1e-4, abs=1e-5)
    assert norm.var.tolist() == pytest.approx(data.var(0, unbiased=False).tolist(), rel=1e-4)
    assert int(norm.count) == 1000


def test_gaussian_log_prob_and_kl_match_torch_distributions():
    mean, log_std = torch.randn(5, 3), torch.randn(3) * 0.3
    action = torch.randn(5, 3)
    ref = torch.distributions.Normal(mean, log_std.exp())
    assert torch.allclose(gaussian_log_prob(action, mean, log_std), ref.log_prob(action).sum(-1), atol=1e-5)
    other = torch.distributions.Normal(mean + 0.1, log_std.exp() * 1.2)
    kl = gaussian_kl(mean, log_std.exp().expand_as(mean), mean + 0.1, (log_std.exp() * 1.2).expand_as(mean))
    assert torch.allclose(kl, torch.distributions.kl_divergence(ref, other).sum(-1), atol=1e-5)


def _reference_reward_scaling(rewards, dones, gamma, eps=1e-8, clip=10.0):
    """Stable-Baselines3 VecNormalize's reward scaling written out in numpy (RunningMeanStd of the
    discounted return, updated before scaling, the return reset after a done)."""
    import numpy as np

    ret = np.zeros(rewards.shape[1])
    mean, var, count = 0.0, 1.0, 1e-4
    out = []
    for r, d in zip(rewards, dones):
        ret = ret * gamma + r
        b_mean, b_var, b_count = ret.mean(), ret.var(), ret.size
        delta, total = b_mean - mean, count + b_count
        mean = mean + delta * b_count / total
        var = (var * count + b_var * b_count + delta ** 2 * count * b_count / total) / total
        count = total
        out.append(np.clip(r / np.sqrt(var + eps), -clip, clip))
        ret = ret * (1 - d)
    return np.stack(out)


def test_reward_normalizer_matches_sb3_vecnormalize_scaling():
    import numpy as np

    from robreward.rl.ppo import RewardNormalizer

    gen = np.random.default_rng(0)
    rewards = gen.normal(5.0, 3.0, size=(50, 8))
    dones = gen.random((50, 8)) < 0.1
    scaler = RewardNormalizer(8, gamma=0.99)
    got = np.stack([scaler(torch.tensor(r, dtype=torch.float32), torch.tensor(d)).numpy()
                    for r, d in zip(rewards, dones)])
    want = _reference_reward_scaling(rewards, dones, 0.99)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert abs(got[-10:].std() - rewards[-10:].std()) > 1.0  # it did scale: returns of ~5/step -> std far from 3


def test_reward_normalizer_groups_equal_separate_normalizers_and_state_round_trips():
    from robreward.rl.ppo import RewardNormalizer

    gen = torch.Generator().manual_seed(1)
    both = RewardNormalizer(6, gamma=0.9, groups=2)
    first, second = RewardNormalizer(3, gamma=0.9), RewardNormalizer(3, gamma=0.9)
    for _ in range(20):
        rewards = torch.randn(6, generator=gen) * torch.tensor([1.0, 1, 1, 100, 100, 100])
        dones = torch.rand(6, generator=gen) < 0.2
        got = both(rewards, dones)
        assert torch.allclose(got[:3], first(rewards[:3], dones[:3]), rtol=1e-5)
        assert torch.allclose(got[3:], second(rewards[3:], dones[3:]), rtol=1e-5)
    restored = RewardNormalizer(3, gamma=0.9)
    restored.load_state_dict(both.state_dict(1))
    step = torch.tensor([50.0, -20.0, 3.0]), torch.tensor([False, True, False])
    assert torch.allclose(restored(*step), second(*step))
