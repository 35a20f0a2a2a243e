"""The BatchedEnv contract (docs/architecture.md) on every task of the suite."""

import dataclasses

import numpy as np
import pytest
import torch

import robreward
from robreward.envs.registry import UnknownTaskError, get_task

TASKS = robreward.task_names()


@pytest.mark.parametrize("task", TASKS)
def test_reset_step_shapes_and_terms(task):
    env = robreward.make(task, num_envs=4, seed=0)
    obs, info = env.reset()
    assert obs.shape == (4, env.obs_dim) and obs.dtype == torch.float32
    assert torch.isfinite(obs).all()
    for field in env.spec.state_fields:
        assert env.state[field.name].shape == (4, *field.shape), field.name
        assert env.state[field.name].dtype == torch.float32
    action = torch.zeros(4, env.act_dim)
    obs, reward, terminated, truncated, info = env.step(action)
    assert reward.shape == (4,) and terminated.dtype == torch.bool and truncated.dtype == torch.bool
    assert info["final_obs"].shape == obs.shape
    total = torch.stack(list(info["reward_terms"].values())).sum(0)
    torch.testing.assert_close(total, reward)
    assert set(info["reward_terms"]) == {t.name for t in env.spec.reward_terms}
    assert info["success"].shape == (4,) and info["fitness"].shape == (4,)


def test_truncation_and_same_step_autoreset():
    spec = dataclasses.replace(get_task("cheetah-run"), episode_length=5)
    env = robreward.make(spec, num_envs=3, seed=1)
    env.reset()
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(torch.full((3, 6), 0.5))
    assert truncated.all() and not terminated.any()
    # obs is the first observation of the new episode; final_obs the last of the old one
    assert not torch.equal(obs, info["final_obs"])
    torch.testing.assert_close(obs, env.obs)
    assert (env.episode_step == 0).all()
    # the reset worlds start near qpos0: x position back near 0
    assert env.state.x_position.abs().max() < 0.2


def test_seeded_resets_are_reproducible():
    a = robreward.make("cheetah-run", num_envs=8, seed=3).reset()[0]
    b = robreward.make("cheetah-run", num_envs=8, seed=3).reset()[0]
    c = robreward.make("cheetah-run", num_envs=8, seed=4).reset()[0]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a[0], a[1])  # worlds differ from each other


@pytest.mark.parametrize("task", TASKS)
def test_get_set_state_is_bit_exact(task):
    """Restoring a full integration state mid-episode replays bit-exactly."""
    env = robreward.make(task, num_envs=2, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    low, high = env.action_low, env.action_high
    actions = [low + (high - low) * torch.rand(2, env.act_dim, generator=gen) for _ in range(30)]
    for a in actions[:10]:
        env.step(a)
    saved = env.get_state().clone()
    assert saved.shape == (2, env.nstate) and saved.dtype == torch.float64

    def run():
        # compare up to the first episode end: the reset after it draws fresh random numbers
        out = []
        for a in actions[10:]:
            _, _, terminated, truncated, info = env.step(a)
            out.append(info["final_obs"].clone())
            if (terminated | truncated).any():
                break
        return out

    first = run()
    env.set_state(saved)
    second = run()
    assert len(first) == len(second) and len(first) >= 1
    for x, y in zip(first, second):
        assert torch.equal(x, y)


def test_set_state_subset_of_worlds():
    env = robreward.make("cheetah-run", num_envs=3, seed=0)
    env.reset()
    states = env.get_state()
    env.step(torch.ones(3, 6))
    env.set_state(states[[2]], world_ids=[0])
    after = env.get_state()
    assert torch.equal(after[0], states[2])
    assert not torch.equal(after[1], states[1])


def test_nan_physics_resets_the_world_and_is_flagged():
    env = robreward.make("cheetah-run", num_envs=3, seed=0)
    env.reset()
    states = env.get_state().numpy().copy()
    qvel_at = 1 + env.model.nq  # mjSTATE_INTEGRATION: time, qpos, qvel, ...
    states[1, qvel_at + 3] = 5e9  # a joint spinning absurdly fast: the physics blows up
    env.set_state(states)
    obs, reward, terminated, truncated, info = env.step(torch.zeros(3, 6))
    assert info["nan_reset"].tolist() == [False, True, False]
    assert terminated[1] and torch.isfinite(obs).all() and torch.isfinite(reward).all()
    assert torch.isfinite(info["final_obs"]).all()


def test_a_non_finite_reward_in_one_world_resets_that_world_only():
    """The simulator is fine, the training reward is NaN in world 2: the guard catches it."""

    class NanInWorld2:
        name = "nan-in-2"

        def __call__(self, state, action):
            total = state.x_velocity.clone()
            total[2] = float("nan")
            return total, {"x": total}

    env = robreward.make("cheetah-run", num_envs=4, seed=0, reward=NanInWorld2())
    env.reset()
    obs, reward, terminated, truncated, info = env.step(torch.zeros(4, 6))
    assert info["nan_reset"].tolist() == [False, False, True, False]
    assert terminated.tolist() == [False, False, True, False]
    assert torch.isfinite(reward).all() and float(reward[2]) == 0.0
    assert info["reward_invalid"].tolist() == [False, False, True, False] and env.reward_invalid_count == 1


class EditedReward:
    """cheetah-run's x velocity as one term; `edit(step, total, terms)` breaks it on chosen steps."""

    name = "edited"

    def __init__(self, edit):
        self.edit, self.calls = edit, 0

    def __call__(self, state, action):
        self.calls += 1
        total = state.x_velocity.clone()
        terms = {"speed": state.x_velocity.clone(), "zero": torch.zeros_like(total)}
        return self.edit(self.calls, total, terms)


def test_terms_that_stop_summing_to_the_total_are_invalid_counted_and_zeroed():
    def edit(call, total, terms):
        if call >= 2:  # from the second step on, world 1's total disagrees with its terms
            total[1] += 0.5
            terms["zero"][3] = float("inf")  # and world 3 has an inf term (its total is finite)
        return total, terms

    env = robreward.make("cheetah-run", num_envs=4, seed=0, reward=EditedReward(edit))
    env.reset()
    *_, info = env.step(torch.full((4, 6), 0.3))
    assert not info["reward_invalid"].any() and env.reward_invalid_count == 0
    for step in (1, 2):
        obs, reward, terminated, truncated, info = env.step(torch.full((4, 6), 0.3))
        assert info["reward_invalid"].tolist() == [False, True, False, True]
        assert info["nan_reset"].tolist() == [False, True, False, True]
        assert terminated.tolist() == [False, True, False, True]
        assert reward[1] == 0.0 and reward[3] == 0.0 and reward[0] != 0.0
        assert all(float(v[1]) == 0.0 and float(v[3]) == 0.0 for v in info["reward_terms"].values())
        assert env.reward_invalid_count == 2 * step


def test_a_total_within_the_tolerance_is_valid_and_an_inf_total_is_not():
    def edit(call, total, terms):
        total = total + 0.9e-4 * (1.0 + total.abs())  # inside 1e-4 * (1 + |total|)
        total[2] = float("-inf")
        return total, terms

    env = robreward.make("cheetah-run", num_envs=3, seed=0, reward=EditedReward(edit))
    env.reset()
    *_, info = env.step(torch.zeros(3, 6))
    assert info["reward_invalid"].tolist() == [False, False, True]


@pytest.mark.parametrize("broken, message", [
    (lambda total, terms: (total.to("meta"), {k: v.to("meta") for k, v in terms.items()}),
     r"reward 'edited': total is on device meta, the env's tensors are on cpu"),
    (lambda total, terms: (total.to_sparse(), terms), r"reward 'edited': total is a torch.sparse_coo tensor: return dense"),
    (lambda total, terms: (total[:, None], {k: v[:, None] for k, v in terms.items()}),
     r"reward 'edited': total must have shape \[N\]=\[2\], got \[2, 1\]"),
    (lambda total, terms: (total.long(), {k: v.long() for k, v in terms.items()}),
     r"reward 'edited': total must be a float tensor, got torch.int64"),
    (lambda total, terms: (total, [total]), r"reward 'edited': terms must be a dict of name -> tensor \[N\], got list"),
])
def test_a_reward_that_changes_its_output_after_the_first_step_is_a_clear_error(broken, message):
    env = robreward.make("cheetah-run", num_envs=2, seed=0,
                         reward=EditedReward(lambda call, total, terms: broken(total, terms) if call == 3 else (total, terms)))
    env.reset()
    env.step(torch.zeros(2, 6))
    env.step(torch.zeros(2, 6))
    with pytest.raises(ValueError, match=message):
        env.step(torch.zeros(2, 6))


def test_huge_finite_actions_are_clipped_not_refused():
    """Their sum overflows float32; they are still finite actions."""
    env = robreward.make("cheetah-run", num_envs=2)
    env.reset()
    _, _, _, _, info = env.step(torch.full((2, 6), 3e38))
    assert torch.equal(info["final_state"].action, torch.ones(2, 6))


# -- bad input: each a clear error naming the problem and the fix -------------------------

def test_unknown_task_suggests_closest_name():
    with pytest.raises(UnknownTaskError, match=r"unknown task 'cheetah-rn'.*Did you mean 'cheetah-run'.*Available tasks"):
        robreward.make("cheetah-rn")


def test_missing_task_folder(tmp_path):
    with pytest.raises(UnknownTaskError, match="has no task.py"):
        robreward.make(str(tmp_path))
    with pytest.raises(UnknownTaskError, match="does not exist"):
        robreward.make(str(tmp_path / "nope"))


def test_non_finite_state_is_refused():
    env = robreward.make("cheetah-run", num_envs=2)
    env.reset()
    states = env.get_state().numpy().copy()
    states[0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        env.set_state(states)


def test_bad_num_envs_backend_device():
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
        robreward.make("cheetah-run", num_envs=0)
    with pytest.raises(ValueError, match="unknown backend 'gpu'.*cpu, warp"):
        robreward.make("cheetah-run", backend="gpu")
    with pytest.raises(ValueError, match="unknown device"):
        robreward.make("cheetah-run", device="tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            robreward.make("cheetah-run", device="cuda:0")


def test_bad_actions():
    env = robreward.make("cheetah-run", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 6))
    env.reset()
    with pytest.raises(ValueError, match=r"shape \[2, 5\].*\[2, 6\]"):
        env.step(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="float tensor"):
        env.step(torch.zeros(2, 6, dtype=torch.long))
    bad = torch.zeros(2, 6)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf.*worlds \[1\]"):
        env.step(bad)


def test_actions_are_clipped_to_the_action_space():
    env = robreward.make("cheetah-run", num_envs=1)
    env.reset()
    env.step(torch.full((1, 6), 5.0))
    assert env.state.action.max() == 1.0


def test_broken_scene_file(tmp_path):
    folder = tmp_path / "brokentask"
    folder.mkdir()
    (folder / "scene.xml").write_text("<mujoco><worldbody><geom type='sphere'/></worldbody")
    (folder / "task.py").write_text(
        "import dataclasses, mujoco, pathlib\n"
        "from robreward.envs.registry import get_task\n"
        "HERE = pathlib.Path(__file__).parent\n"
        "TASK = dataclasses.replace(get_task('cheetah-run'), name='broken',\n"
        "    build_model=lambda: mujoco.MjModel.from_xml_path(str(HERE / 'scene.xml')))\n"
    )
    with pytest.raises(ValueError, match="task 'broken': its scene failed to load"):
        robreward.make(str(folder))


def test_user_task_folder_works_like_a_name(tmp_path):
    folder = tmp_path / "mytask"
    folder.mkdir()
    (folder / "task.py").write_text(
        "import dataclasses\nfrom robreward.envs.registry import get_task\n"
        "TASK = dataclasses.replace(get_task('cheetah-run'), name='my-cheetah', episode_length=7)\n"
    )
    env = robreward.make(str(folder), num_envs=2)
    assert env.spec.name == "my-cheetah"
    env.reset()
    for _ in range(7):
        *_, truncated, _ = env.step(torch.zeros(2, 6))
    assert truncated.all()
