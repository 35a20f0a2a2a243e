"""The configuration of a `robreward generate` run (config.json in its run directory): every
option of the Eureka loop in ``robreward.codegen.loop``, checked when it is made."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.json"
PREFERENCE_MODES = ("fitness", "human", "vlm")
SELECTION_RULES = ("lcb", "mean")  # robreward.codegen.selection
FINAL_MATCH = ("baseline", "search")


@dataclass(frozen=True)
class GenerateConfig:
    """One `robreward generate` run (saved as config.json in the run directory)."""

    task: str
    """Task name (see `robreward tasks`) or task folder; with `text`, the scene the text task is set in."""
    llm: str
    """MODEL (OpenAI-compatible), anthropic:MODEL, or replay:DIR (a recorded transcript)."""
    out: str
    """Run directory."""
    text: str | None = None
    """The task as free text (instead of the task's description); needs `fitness`, or selection by
    preference (`preferences="human"` or `"vlm"`)."""
    fitness: str | None = None
    """--text tasks: a Python expression over `state` fields (torch, math) giving the per-step fitness [N]."""
    base_url: str | None = None
    """OpenAI-compatible server URL (vLLM, Ollama, llama.cpp, LM Studio)."""
    samples: int = 4
    """K: programs sampled per iteration (one request with n=K)."""
    iterations: int = 3
    """Iterations of the loop."""
    steps: int = 200_000
    """PPO env steps (summed over worlds) per candidate."""
    num_envs: int = 32
    """Parallel worlds per candidate training."""
    candidate_seeds: int = 3
    """M: training seeds per candidate (seed, seed+1, ..., seed+M-1), trained at once in one batched env of
    K x M world groups; a candidate's fitness is the mean over its seeds with its standard error. 3: the
    default from benchmarks/generate_quality.py (docs/generate.md); 1 is Eureka's one-seed search."""
    selection: str = "lcb"
    """How the best candidate is chosen from its seeds (robreward.codegen.selection): "lcb", the highest lower
    confidence bound mean - 1 SE (a reward that learns on some seeds only ranks below one that learns on all),
    or "mean", the highest mean over seeds."""
    halving: int = 0
    """Successive halving: rungs of short runs before the full budget. With R rungs, all candidates train
    steps / eta^R steps, the best 1/eta by fitness continue (from their checkpoint) to steps / eta^(R-1), ...,
    and the last survivors to `steps`. 0: every candidate trains the full budget."""
    halving_eta: int = 2
    """Successive halving: 1/eta of a rung's candidates go on to the next, eta times longer rung."""
    eval_episodes: int = 50
    """Evaluation episodes per candidate (its eval.json fitness_mean selects the best)."""
    final_seeds: int = 5
    """Fresh seeds the best reward is retrained with at the end (0 skips the final stage)."""
    final_steps: int | None = None
    """Env steps per final seed (default: the shipped baseline's, with --final-match baseline; else `steps`)."""
    final_match: str = "baseline"
    """"baseline": the final retrain uses the engine settings (PPO config, backend), world count and budget of
    the shipped hand baseline it is compared with (policies/v1/<task>/ when present, else policies/<task>/);
    "search": the search's settings. Either way the report lists every setting that differs from the baseline's."""
    final_eval_episodes: int = 100
    """Evaluation episodes per final seed (the shipped baselines use 100)."""
    seed: int = 0
    """First training seed of the candidates (they train on seed ... seed+candidate_seeds-1); the final seeds are
    the next final_seeds ones (fresh: seed+candidate_seeds ...)."""
    demos: str | None = None
    """HDF5 demo dataset with successful and failed episodes: enables the CARD trajectory-preference filter."""
    card_threshold: float = 0.8
    """Fraction of (successful, failed) demo pairs a candidate must rank correctly."""
    feedback: str | None = None
    """Text from a person who watched the policy of `from_run`; enters every prompt."""
    from_run: str | None = None
    """An earlier generate run whose best program and reflection start this one."""
    preferences: str | None = None
    """ICPL-style preferences in the next prompt: "fitness" (the task metric picks best/worst candidate),
    "human" (a person picks them from a video of each candidate's policy, codegen/choose.py) or "vlm" (a
    vision-language model picks them from frames of those videos, codegen/vlm_choice.py)."""
    vlm: str | None = None
    """--preferences vlm: the model that judges (MODEL, anthropic:MODEL or replay:DIR); default: `llm`."""
    vlm_base_url: str | None = None
    """--preferences vlm with `vlm`: its OpenAI-compatible server (default: `base_url`)."""
    host: str = "127.0.0.1"
    """--preferences human: address of the chooser page."""
    port: int = 8766
    """--preferences human: port of the chooser page (0: any free port)."""
    choice_timeout: float = 0.0
    """--preferences human: seconds to wait for a choice before stopping (resumable); 0 waits forever."""
    max_cost: float | None = None
    """LLM spend cap in USD (approximate prices); reaching it stops cleanly and resumably."""
    max_tokens: int | None = None
    """LLM token cap (prompt + completion)."""
    temperature: float = 1.0
    """Sampling temperature (Eureka: 1.0)."""
    ray: str | None = None
    """Run candidate trainings and final seeds as Ray tasks: a cluster address, or "local" (training.py)."""
    batched: bool = True
    """Train the fresh candidates of an iteration at once in one K x num_envs-world env (robreward.rl.multi);
    False: one PPO run after another (the same numbers up to float rounding, slower)."""
    response_tokens: int = 2048
    """max_tokens of each LLM response."""
    repair_rounds: int = 2
    """Repair requests per failing candidate (check errors and CARD feedback go back to the LLM)."""
    max_redo: int = 2
    """Times an iteration whose candidates all fail is sampled again."""
    dry_run_timeout_s: float = 10.0
    """Wall-clock limit of a candidate's sandboxed dry run."""
    llm_timeout_s: float = 120.0
    """Timeout of one LLM HTTP request."""

    def __post_init__(self):
        positive = {"samples": "--samples", "iterations": "--iterations", "steps": "--steps", "num_envs": "--envs",
                    "eval_episodes": "--eval-episodes", "response_tokens": "response_tokens"}
        for name, flag in positive.items():
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{flag} must be >= 1, got {getattr(self, name)}")
        for name, flag in {"final_seeds": "--final-seeds", "repair_rounds": "--repair-rounds",
                           "max_redo": "max_redo"}.items():
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{flag} must be >= 0, got {getattr(self, name)}")
        if int(self.candidate_seeds) < 1:
            raise ValueError(f"--candidate-seeds must be >= 1 (training seeds per candidate), got {self.candidate_seeds}")
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"unknown --selection {self.selection!r}: choose one of {', '.join(SELECTION_RULES)}")
        if self.final_match not in FINAL_MATCH:
            raise ValueError(f"unknown --final-match {self.final_match!r}: choose one of {', '.join(FINAL_MATCH)}")
        if int(self.halving) < 0:
            raise ValueError(f"--halving must be >= 0 (rungs of short runs), got {self.halving}")
        if int(self.halving_eta) < 2:
            raise ValueError(f"--halving-eta must be >= 2 (keep 1/eta of the candidates per rung), got "
                             f"{self.halving_eta}")
        if self.halving and self.steps // self.halving_eta ** self.halving < self.num_envs:
            raise ValueError(f"--halving {self.halving} with --halving-eta {self.halving_eta} makes the first rung "
                             f"{self.steps // self.halving_eta ** self.halving} steps, less than one step of "
                             f"{self.num_envs} worlds: raise --steps or lower --halving")
        if self.final_steps is not None and self.final_steps < 1:
            raise ValueError(f"--final-steps must be >= 1, got {self.final_steps}")
        if not str(self.llm).strip():
            raise ValueError("--llm is required: MODEL, anthropic:MODEL or replay:DIR")
        if self.text is not None and not self.text.strip():
            raise ValueError("--text is empty: describe the task in a sentence")
        if self.text and not self.fitness and self.preferences not in ("human", "vlm"):
            raise ValueError("a --text task has no fitness of its own to select candidates by: give --fitness EXPR, "
                             "a Python expression over state fields, e.g. --fitness \"(torch.linalg.norm("
                             "state.ee_to_goal, dim=-1) < 0.05)\", or --preferences human to pick the best "
                             "candidate yourself from videos of their policies (or --preferences vlm to let a "
                             "vision-language model pick)")
        if (self.vlm or self.vlm_base_url) and self.preferences != "vlm":
            raise ValueError("--vlm/--vlm-base-url choose the judge of --preferences vlm: add --preferences vlm")
        if self.by_preference and self.halving:
            raise ValueError("--halving ranks candidates by fitness, and this --text task has none (it is selected by "
                             "your preference): give --fitness EXPR, or drop --halving")
        if self.fitness and not self.text:
            raise ValueError("--fitness replaces the fitness of a --text task; a named task selects by its own "
                             "fitness (drop --fitness, or describe the task with --text)")
        if self.demos and self.text:
            raise ValueError("--demos cannot filter a --text task: the demos' success flags are the scene's task")
        if self.feedback and not self.from_run:
            raise ValueError("--feedback needs --from RUN: the generate run whose best policy the feedback is about")
        if self.preferences is not None and self.preferences not in PREFERENCE_MODES:
            raise ValueError(f"unknown --preferences {self.preferences!r}: choose one of {', '.join(PREFERENCE_MODES)}")
        if not 0.0 < self.card_threshold <= 1.0:
            raise ValueError(f"card_threshold must be in (0, 1], got {self.card_threshold}")

    @property
    def by_preference(self) -> bool:
        """A --text task without --fitness: a person's pick among candidate videos selects the best."""
        return bool(self.text) and not self.fitness

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(run_dir, **overrides) -> GenerateConfig:
    """The config.json of a generate run, with `overrides` (e.g. a higher max_cost)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a generate run directory (no {CONFIG_FILE}): pass the "
                                "--out DIR of an earlier `robreward generate`")
    data = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(GenerateConfig)}
    data = {k: v for k, v in data.items() if k in known}
    if "candidate_seeds" not in data:  # a run from before multi-seed candidates: resume it as it was started
        data.update(candidate_seeds=1, selection="mean", final_match="search")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return GenerateConfig(**data)
