"""Rewards that read frames or keep history, on sampled transitions (rewards.state_tables): the tables score
what training scored (a CLIP reward's and an image progress shaping's step rewards), the post-step MuJoCo
states recorded inside the step (episode ends included), shaping removed by EPIC, and the n/a cases."""

import json
import os
import warnings

import numpy as np
import pytest
import torch

import robreward
from robreward.envs.registry import get_task
from robreward.rewards.distance import collect_transitions, epic_distance, reward_distances
from robreward.rewards.state_tables import (
    CoverageFrames,
    EpisodeLevelReward,
    StateTables,
    bind_to_coverage,
    needs_tables,
    tables_of,
)

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory):
    from robreward.feedback.vision.random_models import save_random_model

    model = save_random_model(tmp_path_factory.mktemp("vlm") / "clip", kind="clip", size="tiny")
    return f"clip:{model},goal=a robot arm touching the green target,baseline=a robot arm,alpha=0.5"


@pytest.fixture(scope="module")
def image_progress(tmp_path_factory):
    from robreward.feedback.progress import ProgressConfig, save_progress_run
    from robreward.feedback.progress.model import make_net

    spec = get_task("reach")
    config = ProgressConfig(task="reach", demos=("unused.h5",), inputs="image", image_size=24, embed_dim=8, hidden=16)
    torch.manual_seed(0)
    net = make_net(config, spec)
    return str(save_progress_run(tmp_path_factory.mktemp("prog") / "img", net, config, spec, {}))


def _steps_with_states(env, steps, seed=0):
    """Step rewards [T, N] and the post-step full states [T * N, nstate] (no world ends in these steps)."""
    gen = torch.Generator().manual_seed(seed)
    env.reset()
    rewards, sims, states = [], [], []
    for _ in range(steps):
        action = env.action_low + (env.action_high - env.action_low) * torch.rand(env.num_envs, env.act_dim,
                                                                                 generator=gen)
        _, reward, term, trunc, info = env.step(action)
        assert not (term | trunc).any()
        rewards.append(reward.clone())
        sims.append(env.get_state().clone())
        states.append(info["final_state"])
    merged = {k: torch.cat([s[k] for s in states]) for k in states[0].keys()}
    return torch.stack(rewards), torch.cat(sims), merged


@pytest.mark.parametrize("which", ["clip", "progress-image"])
def test_tables_score_what_training_scored(which, clip_spec, image_progress):
    from robreward.envs.spec import TaskState

    spec = get_task("reach")
    reward_spec = clip_spec if which == "clip" else f"hand+progress:{image_progress}"
    env = robreward.make(spec, num_envs=3, seed=1, reward=reward_spec)
    try:
        rewards, sims, states = _steps_with_states(env, 4)
        reward = env.reward_fn
    finally:
        env.close()
    state = TaskState(states)
    frames = CoverageFrames(spec, sims)
    if which == "clip":
        table = tables_of(reward, state, frames).value
        assert torch.allclose(table.float(), rewards.flatten(), atol=1e-4)
    else:  # hand + gamma Phi(s') - Phi(s): the transitions of consecutive steps of each world
        hand, shaping = reward.parts
        tables = tables_of(shaping, state, frames)
        n = 3
        prev, nxt = torch.arange(0, 3 * n), torch.arange(n, 4 * n)
        got = tables.next_potential[nxt] - tables.potential[prev] + hand(state.index(nxt), state["action"][nxt])[0]
        assert torch.allclose(got.float(), rewards[1:].flatten(), atol=1e-4)
    assert frames.rendered == len(sims)


def test_recorded_states_are_the_post_step_states_episode_ends_included():
    spec = get_task("reach")
    env = robreward.make(spec, num_envs=2, seed=0)
    try:
        coverage = collect_transitions(env, spec.episode_length + 6, seed=0, record_sim_states=True)
        assert env.reward_fn is env.hand_reward  # the recorder is gone again
        assert coverage.sim_states.shape == (2 * (spec.episode_length + 6), env.nstate)
        qpos = coverage.states["qpos"]
        for k in range(0, len(qpos), 2):  # write each recorded state back: its qpos is the one recorded
            env.set_state(coverage.sim_states[k:k + 2])
            assert torch.allclose(env.state["qpos"], qpos[k:k + 2].to(env.state["qpos"].dtype), atol=1e-6), k
    finally:
        env.close()
    # the last step of the first episodes (time limit) is a state the env reset right after
    assert coverage.num_transitions == 2 * (spec.episode_length + 6) - 2 * 2


class _Shaping:
    """gamma Phi(s') - Phi(s) with Phi linear in the end effector position (a table reward, no frames)."""

    name, uses_image = "shaping", False

    def __init__(self, gamma=0.99):
        self.gamma = gamma

    def state_tables(self, states, frames):
        phi = 3.0 * states["ee_pos"][:, 0].double() - states["ee_pos"][:, 2].double()
        return StateTables(potential=phi, next_potential=self.gamma * phi)


def test_shaping_from_tables_leaves_epic_and_starc_at_zero():
    from robreward.rewards.base import HandReward, SumReward

    spec = get_task("reach")
    env = robreward.make(spec, num_envs=8, seed=0)
    try:
        coverage = collect_transitions(env, 40, seed=0)  # no frames needed: no MuJoCo states recorded
    finally:
        env.close()
    shaped = SumReward([HandReward(spec), _Shaping()], "hand+shaping")
    assert needs_tables(shaped) and not needs_tables(HandReward(spec))
    out = reward_distances(spec, shaped, "hand", coverage, bootstrap=0)
    assert out["epic"] == pytest.approx(0.0, abs=1e-6) and out["starc"] == pytest.approx(0.0, abs=1e-6)
    # the shaping alone: EPIC's canonical reward is 0 (undefined), STARC's is 0 -> 1/2 from any other reward
    alone = reward_distances(spec, _Shaping(), "hand", coverage, bootstrap=0)
    assert alone["epic"] is None and "constant" in alone["notes"]["epic"]
    assert alone["starc"] == pytest.approx(0.5, abs=1e-6)
    # and the public single-metric functions bind it too
    assert epic_distance(shaped, HandReward(spec), coverage, rng=np.random.default_rng(0)) == pytest.approx(0, abs=1e-6)


class _Episodic:
    name = "episodic"

    def episode_similarity(self, embeddings):  # RoboCLIP's marker
        return embeddings.mean()


class _Scorer:
    name, size, camera, weight = "scorer", (16, 16), None, 2.0

    def score_frames(self, frames):
        return frames.float().mean((1, 2, 3))


def test_episode_level_and_missing_frames_say_why():
    spec = get_task("reach")
    env = robreward.make(spec, num_envs=2, seed=0)
    try:
        coverage = collect_transitions(env, 4, seed=0)
    finally:
        env.close()
    with pytest.raises(EpisodeLevelReward, match="episode-level reward .* not a function of one transition"):
        bind_to_coverage(_Episodic(), coverage, spec)
    with pytest.raises(ValueError, match="holds no MuJoCo states to render: collect it with .*record_sim_states=True"):
        bind_to_coverage(_Scorer(), coverage, spec)
    fake = CoverageFrames(spec, torch.zeros(3, 5),
                          renderer=lambda spec, states, size, camera: torch.full((len(states), size[1], size[0], 3), 7,
                                                                                 dtype=torch.uint8))
    assert torch.equal(tables_of(_Scorer(), None, fake).value, torch.full((3,), 14.0, dtype=torch.float64))


def test_distance_cli_measures_a_clip_reward_and_refuses_roboclip(clip_spec, capsys):
    from robreward.cli.main import main

    assert main(["distance", "--task", "reach", "hand", clip_spec, "--envs", "2", "--steps", "12", "--bootstrap",
                 "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(out[m] is not None and 0.0 <= out[m] <= 1.0 for m in ("epic", "dard", "starc")), out["notes"]
    model = clip_spec.split(",")[0].removeprefix("clip:")
    demo = os.path.join(os.path.dirname(__file__), "..", "..", "demos", "reach-expert.h5")
    assert main(["distance", "--task", "reach", "hand", f"roboclip:{model},demo={demo}", "--envs", "2", "--steps",
                 "4"]) == 2
    assert "no distance between 'hand' and 'roboclip:" in capsys.readouterr().err
