"""Like-for-like finals (codegen/finals.py): the final seeds train with the shipped baseline's settings, or
every setting that differs is listed."""

from robreward.codegen.config import GenerateConfig
from robreward.codegen.finals import final_settings
from robreward.eval.baseline import load_baseline
from robreward.rl.config import TrainConfig
from robreward.rundir import read_config


def shipped(task: str) -> TrainConfig:
    base = load_baseline(task)
    return TrainConfig.from_dict(read_config(base.path.parent / "config.yaml"))


def test_baseline_match_takes_the_shipped_push_baselines_worlds_budget_and_ppo():
    theirs = shipped("push")
    cfg = GenerateConfig(task="push", llm="m", out="x", steps=1_000_000, num_envs=32)
    final = final_settings(cfg, "push")
    assert (final.num_envs, final.steps, final.backend) == (theirs.num_envs, theirs.steps, theirs.backend)
    assert final.ppo == theirs.ppo and final.differs == []
    assert final.baseline.endswith("push/config.yaml")


def test_search_match_lists_every_setting_that_differs_from_the_baseline():
    theirs = shipped("push")
    cfg = GenerateConfig(task="push", llm="m", out="x", steps=1_000_000, num_envs=32, final_match="search")
    final = final_settings(cfg, "push")
    differs = {d["setting"]: (d["final"], d["baseline"]) for d in final.differs}
    assert differs["num_envs"] == (32, theirs.num_envs) and differs["steps"] == (1_000_000, theirs.steps)
    # today's PPO defaults against the baseline's (v0: 5 epochs, KL 0.01, no reward normalization)
    for name in ("num_epochs", "desired_kl", "normalize_rewards"):
        if getattr(final.ppo, name) != getattr(theirs.ppo, name):
            assert differs[f"ppo.{name}"] == (getattr(final.ppo, name), getattr(theirs.ppo, name))
    assert all(k == "num_envs" or k == "steps" or k.startswith("ppo.") for k in differs)


def test_a_final_steps_override_is_listed_and_a_text_task_has_no_baseline():
    cfg = GenerateConfig(task="push", llm="m", out="x", final_steps=4096)
    final = final_settings(cfg, "push")
    assert final.steps == 4096 and [d["setting"] for d in final.differs] == ["steps"]
    text = GenerateConfig(task="push", llm="m", out="x", text="push it left", fitness="state.qpos[:, 0]")
    alone = final_settings(text, "push")
    assert alone.baseline is None and alone.differs == [] and "no shipped baseline" in alone.notes[0]
