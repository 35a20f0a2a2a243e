"""The seeded rollout a reward program's dry run is checked on (robreward/rewards/program.py). It needs
an env, which sits above robreward.rewards, so it lives here and is registered with
robreward.rewards.spec.set_state_recorder when robreward.envs is imported."""

from __future__ import annotations


def record_rollout_states(spec, num_envs: int, steps: int, seed: int) -> list[dict]:
    """Post-step TaskStates of ``steps`` steps of uniform random actions in ``num_envs`` worlds, seeded,
    as numpy arrays (one dict per step)."""
    import torch

    from robreward.envs.batched import BatchedEnv

    env = BatchedEnv(spec, num_envs, seed=seed)
    env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    states = []
    try:
        for _ in range(steps):
            u = torch.rand(num_envs, env.act_dim, generator=gen)
            _, _, _, _, info = env.step(env.action_low.cpu() + (env.action_high - env.action_low).cpu() * u)
            states.append({k: v.detach().cpu().numpy().copy() for k, v in info["final_state"].items()})
    finally:
        env.close()
    return states


def register() -> None:
    from robreward.rewards.spec import set_state_recorder

    set_state_recorder(record_rollout_states)
