"""The one reward-spec parser (robreward/rewards/spec.py) and the registry of reward sources."""

import subprocess
import sys

import pytest

from robreward.rewards.spec import (RewardSource, RewardSpec, normalize_reward_spec, parse_reward_spec,
                                    register_reward_source, reward_kinds)


def test_forms():
    assert parse_reward_spec("hand") == RewardSpec("hand")
    assert parse_reward_spec("sparse") == RewardSpec("sparse")
    assert parse_reward_spec("dir/r.py") == RewardSpec("file", "dir/r.py")
    assert parse_reward_spec("pref:runs/p") == RewardSpec("pref", "runs/p")
    both = parse_reward_spec("hand+pref:runs/p")
    assert both.kind == "sum" and both.parts == (RewardSpec("hand"), RewardSpec("pref", "runs/p"))
    assert str(both) == "hand+pref:runs/p"


@pytest.mark.parametrize("text, match", [
    ("hnd", r"unknown reward 'hnd' \(did you mean 'hand'\?\): use one of hand, sparse, FILE.py"),
    ("nosuch:x", r"unknown reward kind 'nosuch' in 'nosuch:x': use one of .*pref:RUN"),
    ("pref:", r"names no pref argument: write pref:RUN"),
    ("", r"empty reward spec"),
    ("hand+bogus", r"'bogus' in reward 'hand\+bogus' is not a reward: use one of hand, sparse"),
    ("sparse+pref:runs/a+b/run", r"'b/run' in reward 'sparse\+pref:runs/a\+b/run' is not a reward: \+ joins rewards, "
                                 r"so the argument 'pref:runs/a' ends where a '\+' was; rename"),
])
def test_errors_list_the_valid_forms(text, match):
    with pytest.raises(ValueError, match=match):
        parse_reward_spec(text)


def test_normalize_makes_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.py").write_text("x = 1\n")
    (tmp_path / "run").mkdir()
    assert normalize_reward_spec("r.py") == str(tmp_path / "r.py")
    assert normalize_reward_spec("hand+pref:run") == f"hand+pref:{tmp_path / 'run'}"
    with pytest.raises(FileNotFoundError, match="reward file 'missing.py' not found"):
        normalize_reward_spec("missing.py")
    with pytest.raises(FileNotFoundError, match="pref:gone: 'gone' does not exist"):
        normalize_reward_spec("pref:gone")


def test_a_registered_source_is_parsed_and_resolved():
    from robreward.envs.registry import get_task
    from robreward.rewards.base import HandReward, SumReward, resolve_reward

    calls = []
    register_reward_source(RewardSource("test-const", "test-const:VALUE", "a constant",
                                        load=lambda arg, spec: calls.append(arg) or HandReward(spec)))
    assert "test-const" in reward_kinds()
    reward = resolve_reward("sparse+test-const:3", get_task("reach"))
    assert isinstance(reward, SumReward) and calls == ["3"]


def test_rewards_never_import_feedback_and_pref_is_found_through_its_entry_point():
    code = ("import sys\nfrom robreward.rewards.spec import reward_source\n"
            "assert not any(m.startswith('robreward.feedback') for m in sys.modules)\n"
            "source = reward_source('pref')\nprint(source.form)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pref:RUN"
