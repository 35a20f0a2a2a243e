"""The CLI is derived from the config dataclasses: every field is a flag (--ppo.FIELD for PPO), help
from the field docstrings, --config FILE.yaml, and a bad value reported by its flag's name."""

import dataclasses

import pytest
import yaml

from robreward.cli.main import CliError, build_parser, main
from robreward.cli.train import config_from_args
from robreward.configs import field_docs
from robreward.rl.config import PPOConfig, TrainConfig

OTHER = {int: lambda v: v + 1, float: lambda v: v * 0.5, bool: lambda v: not v,
         str: None, tuple: lambda v: (7, 5)}


def _args(*argv):
    return build_parser(["train"]).parse_args(["train", *argv])


def _flag(name):
    return "--ppo." + name.replace("_", "-")


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(PPOConfig)])
def test_every_ppo_field_is_reachable_from_the_command_line(field):
    default = getattr(PPOConfig(), field)
    if isinstance(default, str):
        value = {"schedule": "fixed", "activation": "tanh"}[field]
        argv = [_flag(field), value]
    elif isinstance(default, bool):
        value = not default
        argv = [_flag(field) if value else "--no-ppo." + field.replace("_", "-")]
    elif isinstance(default, tuple):
        value = (7, 5)
        argv = [_flag(field), "7,5"]
    else:
        value = OTHER[type(default)](default)
        argv = [_flag(field), str(value)]
    config = config_from_args(_args("--task", "reach", *argv))
    assert getattr(config.ppo, field) == value
    others = {f.name for f in dataclasses.fields(PPOConfig)} - {field}
    assert all(getattr(config.ppo, name) == getattr(PPOConfig(), name) for name in others)


def test_the_documented_flags_keep_working():
    config = config_from_args(_args("--task", "reach", "--reward", "sparse", "--envs", "8", "--steps", "4096",
                                    "--seed", "3", "--threads", "2", "--rollout-steps", "16", "--eval-episodes",
                                    "0", "--no-progress", "--algo", "ppo", "--backend", "cpu", "--device", "cpu"))
    assert (config.task, config.reward, config.num_envs, config.steps, config.seed, config.torch_threads,
            config.ppo.num_steps, config.eval_episodes, config.progress) == \
        ("reach", "sparse", 8, 4096, 3, 2, 16, 0, False)
    assert config.out == "runs/reach-sparse-s3"
    assert config_from_args(_args("--task", "reach", "--algo", "sb3")).num_envs == 1  # rl-zoo3's default


def test_defaults_come_from_the_dataclass():
    config = config_from_args(_args("--task", "reach", "--out", "x"))
    assert config == dataclasses.replace(TrainConfig(task="reach"), out="x")


def test_config_file_then_flags_over_it(tmp_path):
    path = tmp_path / "c.yaml"
    saved = dataclasses.replace(TrainConfig(task="reach", seed=5, num_envs=4), ppo=PPOConfig(learning_rate=3e-4))
    path.write_text(yaml.safe_dump({"schema_version": 1, **saved.to_dict()}))
    config = config_from_args(_args("--config", str(path), "--seed", "6", "--ppo.gamma", "0.9"))
    assert config.seed == 6 and config.num_envs == 4 and config.ppo.learning_rate == 3e-4 and config.ppo.gamma == 0.9
    path.write_text("task: reach\nlearnign_rate: 0.1\n")
    with pytest.raises(CliError, match=r"unknown fields \['learnign_rate'\]"):
        config_from_args(_args("--config", str(path)))


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "robreward train: error: --seed must be >= 0, got -1"),
    (["--steps", "-5"], "robreward train: error: --steps must be >= 1, got -5"),
    (["--envs", "0"], "robreward train: error: --envs must be >= 1, got 0"),
    (["--ppo.learning-rate", "0"], "robreward train: error: --ppo.learning-rate must be > 0, got 0.0"),
    (["--rollout-steps", "0"], "robreward train: error: --rollout-steps must be >= 1, got 0"),
    (["--ppo.activation", "gelu"], "robreward train: error: unknown --ppo.activation 'gelu': choose one of elu"),
])
def test_a_bad_value_is_reported_by_its_flag(argv, message, capsys, tmp_path):
    assert main(["train", "--task", "reach", "--out", str(tmp_path / "r"), *argv]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "r").exists()


def test_a_misspelled_flag_gets_the_verbs_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--tsk", "push"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: robreward train ")
    assert "robreward train: error: unrecognized arguments: --tsk push (did you mean --task?)" in err


def test_help_comes_from_the_field_docstrings(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--task", "--reward", "--envs", "--steps", "--seed", "--out", "--resume", "--config",
                 "--ppo.learning-rate", "--rollout-steps", "--no-progress", "--init-from-demos"):
        assert flag in out
    assert " ".join(field_docs(PPOConfig)["gae_lambda"].split()) in out


def test_resume_refuses_flags_that_would_change_the_run(tmp_path):
    with pytest.raises(CliError, match="drop --seed"):
        from robreward.cli.train import run
        run(_args("--resume", str(tmp_path), "--seed", "1"))
