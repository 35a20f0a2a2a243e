"""The exported policy.onnx gives the in-process policy's actions; load_policy takes a file or a run dir."""

from pathlib import Path

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


# --- what a policy file may be: export's ops, shapes that fit the task --------------------------

POLICIES = Path(__file__).parents[2] / "policies"


def _ops(model) -> set:
    return {node.op_type for node in model.graph.node}


def test_allowed_ops_are_exactly_what_export_writes(tmp_path):
    """ALLOWED_OPS = the ops of the shipped policies and of fresh exports of every kind robreward
    trains (PPO with each activation, with and without the normalizer; SB3 + VecNormalize)."""
    import dataclasses

    from robreward.rl.config import PPOConfig
    from robreward.rl.export import ALLOWED_OPS, DeterministicPolicy, export_onnx
    from robreward.rl.ppo import ActorCritic
    from robreward.rl.sb3 import VecNormalizeObs

    shipped = set().union(*(_ops(onnx.load(str(p))) for p in POLICIES.glob("*/policy.onnx")))
    low, high = -np.ones(4), np.ones(4)
    modules = []
    for activation in ("elu", "tanh", "relu"):
        ac = ActorCritic(13, 4, dataclasses.replace(PPOConfig(), activation=activation))
        modules += [DeterministicPolicy(ac.normalizer, ac.actor, low, high),
                    DeterministicPolicy(torch.nn.Identity(), ac.actor, low, high)]
    sb3_actor = torch.nn.Sequential(torch.nn.Linear(13, 64), torch.nn.Tanh(), torch.nn.Linear(64, 4))
    modules.append(DeterministicPolicy(VecNormalizeObs(np.zeros(13), np.ones(13), 1e-8, 10.0), sb3_actor, low, high))
    fresh = set().union(*(_ops(onnx.load(str(export_onnx(m, 13, tmp_path / f"{i}.onnx")))) for i, m in enumerate(modules)))
    assert shipped | fresh == ALLOWED_OPS


@pytest.mark.parametrize("task", sorted(p.name for p in POLICIES.glob("*") if (p / "policy.onnx").is_file()))
def test_shipped_policies_pass_the_checks_for_their_task(task):
    spec = robreward.get_task(task)
    policy = load_policy(POLICIES / task, task=task)
    assert (policy.obs_dim, policy.act_dim, policy.task) == (spec.obs_dim, spec.act_dim, task)
    assert policy(np.zeros((3, spec.obs_dim), np.float32)).shape == (3, spec.act_dim)


def _write(model, path):
    path.write_bytes(model.SerializeToString())  # as is: onnx.save would rewrite external data
    return path


def _model(nodes, obs_shape=("batch", 13), out_shape=("batch", 4), initializers=(), extra_inputs=(),
           obs_type=onnx.TensorProto.FLOAT, opsets=(("", 17),)):
    from onnx import helper

    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info("obs", obs_type, list(obs_shape)), *extra_inputs],
        [helper.make_tensor_value_info("action", onnx.TensorProto.FLOAT, list(out_shape))], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8)


def _weights(name="w", rows=4, cols=13):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.full((rows, cols), 0.1, np.float32), name)


def _gemm(a="obs", out="action"):
    from onnx import helper

    return helper.make_node("Gemm", [a, "w"], [out], transB=1)


def _hostile_models():
    from onnx import helper, numpy_helper

    const = lambda name, array: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))  # noqa: E731
    return {
        # ConstantOfShape asking for 10^10 floats (40 GB), folded into the action by a Max
        "constant-of-shape-40GB": (_model([
            const("shape", np.array([10**10], np.int64)), helper.make_node("ConstantOfShape", ["shape"], ["big"]),
            _gemm(out="a0"), helper.make_node("Max", ["a0", "big"], ["action"])], initializers=[_weights()]),
            "uses ops ConstantOfShape, outside what robreward exports"),
        "1-D input": (_model([_gemm()], obs_shape=(13,), initializers=[_weights()]),
                      "its input (observations) is [13] (float32); a policy takes float32 [batch, obs_dim]"),
        "int64 input": (_model([_gemm()], obs_type=onnx.TensorProto.INT64, initializers=[_weights()]),
                        "its input (observations) is [batch, 13] (ONNX type 7)"),
        "fixed batch": (_model([_gemm()], obs_shape=(1, 13), out_shape=(1, 4), initializers=[_weights()]),
                        "its input (observations) is [1, 13]"),
        "two inputs": (_model([_gemm()], initializers=[_weights()], extra_inputs=[
            helper.make_tensor_value_info("h", onnx.TensorProto.FLOAT, ["batch", 8])]), "has 2 inputs"),
        "other domain": (_model([helper.make_node("Gemm", ["obs", "w"], ["action"], transB=1, domain="com.microsoft")],
                                initializers=[_weights()], opsets=(("", 17), ("com.microsoft", 1))),
                         "uses operator domains ['com.microsoft']"),
        # allowed ops only, but a broadcast of two small constants to 8192 x 8192
        "broadcast bomb": (_model([
            const("c1", np.zeros((8192, 1), np.float32)), const("c2", np.zeros((1, 8192), np.float32)),
            helper.make_node("Max", ["c1", "c2"], ["square"]), _gemm()], initializers=[_weights()]),
            "the Max output 'square' would hold 67,108,864 numbers"),
        "batch x batch": (_model([helper.make_node("Gemm", ["obs", "obs"], ["bb"], transB=1), _gemm()],
                                 initializers=[_weights()]),
                          "the Gemm output 'bb' has shape [batch, batch]"),
        "wrong output width": (_model([_gemm()], out_shape=("batch", 5), initializers=[_weights()]),
                               "not a consistent ONNX graph"),
    }


HOSTILE = _hostile_models()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_crafted_onnx_is_refused_with_a_clear_error(name, tmp_path, capsys):
    from robreward.cli.main import main

    model, message = HOSTILE[name]
    path = _write(model, tmp_path / "policy.onnx")
    with pytest.raises(ValueError) as caught:
        load_policy(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert main(["eval", str(path), "--task", "reach", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_policy_built_by_hand_from_allowed_ops_runs(tmp_path):
    from onnx import helper

    model = _model([_gemm(out="pre"), helper.make_node("Tanh", ["pre"], ["action"])], initializers=[_weights()])
    policy = load_policy(_write(model, tmp_path / "policy.onnx"), task="reach")
    obs = np.ones((2, 13), np.float32)
    np.testing.assert_allclose(policy(obs), np.tanh(np.full((2, 4), 1.3)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"takes observations \[B, 13\], got \[2, 7\]"):
        policy(np.ones((2, 7), np.float32))


def test_weights_outside_the_file_are_never_read(tmp_path):
    """An initializer whose data 'lives' in another file (ONNX external data) is refused before
    onnx or onnxruntime open that file (inotify: no open, no read)."""
    import ctypes
    import os

    secret = tmp_path / "secret" / "weights.bin"
    secret.parent.mkdir()
    secret.write_bytes(np.full(52, 7.0, np.float32).tobytes())
    weights = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[4, 13])
    weights.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../secret/weights.bin"), ("offset", "0"), ("length", str(52 * 4))):
        weights.external_data.add(key=key, value=value)
    folder = tmp_path / "run"
    folder.mkdir()
    path = _write(_model([_gemm()], initializers=[weights]), folder / "policy.onnx")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(str(secret)), 0x1 | 0x20) >= 0  # IN_ACCESS | IN_OPEN
    try:
        with pytest.raises(ValueError, match="keeps weights outside the file \\(w\\): refusing to read other files"):
            load_policy(path)
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)  # no event: the secret was never opened
    finally:
        os.close(fd)


def test_a_policy_of_another_task_says_what_does_not_match():
    with pytest.raises(ValueError, match=r"policy '.*reach/policy.onnx' does not fit task 'push': the policy maps "
                                         r"observations \[B, 13\] -> actions \[B, 4\], task 'push' needs "
                                         r"observations \[B, 19\] -> actions \[B, 4\]; it was trained on task 'reach'"):
        load_policy(POLICIES / "reach", task="push")
    with pytest.raises(ValueError, match=r"maps observations \[B, 17\] -> actions \[B, 6\], task 'hopper-hop' needs "
                                         r"observations \[B, 11\] -> actions \[B, 3\]; it was trained on task 'cheetah-run'"):
        load_policy(POLICIES / "cheetah-run" / "policy.onnx", task="hopper-hop")
