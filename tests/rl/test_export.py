"""The exported policy.onnx gives the in-process policy's actions; load_policy takes a file or a run dir."""

import numpy as np
import onnx
import pytest
import torch

import robreward
from robreward.rl import OnnxPolicy, TorchPolicy, load_policy
from robreward.rl.runner import policy_from_checkpoint


def _observations(n=256, seed=0):
    env = robreward.make("reach", n, seed=seed)
    obs, _ = env.reset()
    torch.manual_seed(seed)
    for _ in range(5):  # a few random steps: moving arms, not only reset states
        obs, *_ = env.step(torch.rand(n, env.act_dim) * 2 - 1)
    return torch.cat([obs, obs * 30.0])  # also far outside the data: exercises the action clip


def test_onnx_matches_in_process_policy(reach_run):
    out, _ = reach_run
    torch_policy = TorchPolicy(policy_from_checkpoint(out / "checkpoints" / "latest.pt"))
    onnx_policy = load_policy(out / "policy.onnx")
    obs = _observations()
    expected, actual = torch_policy(obs), onnx_policy(obs)
    assert actual.shape == expected.shape == (len(obs), 4) and actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    assert float(actual.abs().max()) <= 1.0 and float(actual.abs().max()) == 1.0  # clipped to the action space


def test_onnx_file_format(reach_run):
    out, _ = reach_run
    model = onnx.load(str(out / "policy.onnx"))
    onnx.checker.check_model(model)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "obs" and outp.name == "action"
    assert inp.type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    assert inp.type.tensor_type.shape.dim[1].dim_value == 13
    policy = OnnxPolicy(out / "policy.onnx")
    single = policy(np.zeros((1, 13), np.float32))
    assert isinstance(single, np.ndarray) and single.shape == (1, 4)


def test_load_policy_accepts_run_dir_and_falls_back_to_checkpoint(reach_run, tmp_path):
    out, _ = reach_run
    assert isinstance(load_policy(out), OnnxPolicy)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.pt").write_bytes((out / "checkpoints" / "latest.pt").read_bytes())
    fallback = load_policy(tmp_path)
    assert isinstance(fallback, TorchPolicy)
    obs = _observations(16)
    torch.testing.assert_close(fallback(obs), load_policy(out)(obs), atol=1e-5, rtol=0)


def test_load_policy_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no policy at"):
        load_policy(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match="neither policy.onnx nor checkpoints/latest.pt"):
        load_policy(tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match="could not load policy file"):
        load_policy(bad)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="is not an .onnx file"):
        load_policy(tmp_path / "x.txt")


def test_exported_cheetah_policy_drives_gymnasium_halfcheetah_to_the_same_return():
    """The shipped cheetah-run baseline (policy.onnx, run with onnxruntime on raw observations)
    in Gymnasium's own HalfCheetah-v5 and in robreward, from the same seeded initial state."""
    from pathlib import Path

    import gymnasium
    import onnxruntime

    path = Path(__file__).parents[2] / "policies" / "cheetah-run" / "policy.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def act(obs):
        return session.run(None, {name: np.asarray(obs, dtype=np.float32).reshape(1, -1)})[0][0]

    gym_env = gymnasium.make("HalfCheetah-v5")
    obs, _ = gym_env.reset(seed=3)
    gym_return, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = gym_env.step(act(obs))
        gym_return += reward
        done = terminated or truncated
    env = robreward.make("cheetah-run", num_envs=1, seed=3, nthread=1)
    obs, _ = env.reset(seed=3)
    ours, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(torch.as_tensor(act(obs[0].numpy()))[None])
        ours += float(reward[0])
        steps += 1
        if bool(terminated[0] | truncated[0]):
            break
    assert steps == 1000
    assert gym_return > 2000  # a running cheetah, not a policy that stands still
    assert abs(ours - gym_return) <= 1e-6 * abs(gym_return), (ours, gym_return)  # measured: 1.2e-9
