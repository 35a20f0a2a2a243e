"""prefs eval's distances of an image preference model (evaluation.on_frames): the frames of the coverage's states
scored as the model scores the env's rendered worlds in training, and EPIC, DARD and STARC to hand all measured."""

import os

import pytest
import torch

import robreward
from robreward.envs.registry import get_task
from robreward.feedback.preferences import EnsembleConfig, Featurizer
from robreward.feedback.preferences.evaluation import on_frames
from robreward.feedback.preferences.image_model import ImageInputs, ImagePreferenceReward
from robreward.rewards.distance import collect_transitions, reward_distances
from robreward.rewards.state_tables import bind_to_coverage

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.mark.parametrize("inputs", ["image", "both"])
def test_image_model_on_frames_scores_what_the_env_scored(inputs):
    spec = get_task("reach")
    model = ImagePreferenceReward(Featurizer(spec), ImageInputs(inputs, image_size=24, embed_dim=8, channels=4),
                                  config=EnsembleConfig(num_members=2, hidden=(16,), seed=3))
    model.output_mean, model.output_std = torch.tensor(0.25), torch.tensor(2.0)  # the normalisation is applied too
    env = robreward.make(spec, num_envs=3, seed=1, reward=model)
    try:
        gen = torch.Generator().manual_seed(0)
        rewards = []

        def policy(obs):
            return env.action_low + (env.action_high - env.action_low) * torch.rand(3, env.act_dim, generator=gen)

        # record the env's own rewards of the model (the recorder wraps the env's reward: the model)
        real_step = env.step

        def step(action):
            out = real_step(action)
            rewards.append(out[1].clone())
            return out

        env.step = step
        coverage = collect_transitions(env, 5, policy=policy, record_sim_states=True)
    finally:
        env.close()
    bound = bind_to_coverage(on_frames(model), coverage, spec)
    all_states = torch.arange(coverage.actions.shape[0])
    got = bound.on_indices(all_states, all_states, coverage.actions)
    assert torch.allclose(got.float(), torch.stack(rewards).flatten(), atol=1e-4)
    assert bound.frames_rendered == 15
    out = reward_distances(spec, bound, "hand", coverage, bootstrap=5)
    for metric in ("epic", "dard", "starc"):
        assert out[metric] is not None and 0.0 <= out[metric] <= 1.0, (metric, out["notes"])
