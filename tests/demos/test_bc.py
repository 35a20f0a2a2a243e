"""BC warm start: after behaviour cloning on reach expert demos, the PPO actor (deterministic)
succeeds far more often on reach than a randomly initialised one."""

import pytest
import torch

import robreward
from robreward.demos.bc import bc_pretrain
from robreward.demos.record import record

import robreward.rl.ppo as ppo
from robreward.rl.config import PPOConfig


def success_rate(policy, episodes=32, seed=123):
    env = robreward.make("reach", num_envs=episodes, seed=seed)
    obs, _ = env.reset(seed=seed)
    success = torch.zeros(episodes, dtype=torch.bool)
    finished = torch.zeros(episodes, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(env.spec.episode_length):
            obs, _, term, trunc, info = env.step(policy.act_deterministic(obs))
            success |= info["success"] & ~finished
            finished |= term | trunc
            if finished.all():
                break
    return float(success.float().mean())


def test_bc_warm_start_beats_random_init(tmp_path):
    demos = tmp_path / "reach-expert.h5"
    record("reach", "expert", 32, demos, seed=0, num_envs=32, progress=False)
    torch.manual_seed(0)
    cfg = PPOConfig()
    random_init = ppo.ActorCritic(robreward.get_task("reach").obs_dim, robreward.get_task("reach").act_dim, cfg)
    cloned = ppo.ActorCritic(random_init.obs_dim, random_init.act_dim, cfg)
    cloned.load_state_dict(random_init.state_dict())
    stats = bc_pretrain(cloned.actor, cloned.normalizer, demos, epochs=40, lr=1e-3, task="reach")
    assert stats["samples"] == 32 * 50
    assert stats["loss_last"] < 0.5 * stats["loss_first"]
    assert float(cloned.normalizer.count) == stats["samples"]  # normalizer fitted to the demos
    base, warm = success_rate(random_init), success_rate(cloned)
    print(f"reach success: random init {base:.2f}, BC warm start {warm:.2f}")
    assert warm >= 0.8 and warm > base + 0.5, (base, warm)


def test_bc_rejects_wrong_task_and_dims(reach_file):
    from robreward.demos.format import DemoFileError

    actor = ppo.mlp(5, (8,), 4, "elu")
    with pytest.raises(DemoFileError, match="not 'push'"):
        bc_pretrain(actor, None, reach_file, epochs=1, task="push")
    with pytest.raises(ValueError, match="the actor takes 5"):
        bc_pretrain(actor, None, reach_file, epochs=1)


def test_record_from_a_policy_file(tmp_path):
    """BC'd actor -> policy.onnx -> `record --source policy.onnx` (through robreward.rl.load_policy)."""
    from robreward.demos.replay import replay
    from robreward.rl.export import DeterministicPolicy, export_onnx

    demos = tmp_path / "reach-expert.h5"
    record("reach", "expert", 16, demos, seed=0, num_envs=16, progress=False)
    spec = robreward.get_task("reach")
    torch.manual_seed(0)
    policy = ppo.ActorCritic(spec.obs_dim, spec.act_dim, PPOConfig())
    bc_pretrain(policy.actor, policy.normalizer, demos, epochs=30, task="reach")
    path = export_onnx(DeterministicPolicy(policy.normalizer, policy.actor, spec.action_low, spec.action_high),
                       spec.obs_dim, tmp_path / "policy.onnx")
    out = tmp_path / "reach-policy.h5"
    result = record("reach", str(path), 4, out, seed=3, noise=0.2, num_envs=4, progress=False)
    assert result["source"] == str(path) and result["episodes"] == 4
    assert replay(out, progress=False)["max_abs_error"] == 0.0
