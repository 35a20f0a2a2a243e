"""The preference loop's configuration (`PrefsConfig`, what `robreward prefs train` resolves its flags
to) and the checks of its task and teacher; the loop itself is loop.py."""

from __future__ import annotations

import dataclasses

import numpy as np

from robreward.feedback.preferences.human import is_human
from robreward.feedback.preferences.image_model import REWARD_INPUTS
from robreward.feedback.preferences.model import EnsembleConfig
from robreward.configs import ConfigError, check_choice, check_min, check_number, strict_from_dict
from robreward.feedback.preferences.segments import PAIRINGS, QUERY_METHODS, SCHEDULES, query_schedule
from robreward.feedback.preferences.teachers import make_teacher
from robreward.rl.config import PPOConfig

FINAL_POLICIES = ("continue", "restart", "best")
CHOOSE_AT = ("auto", "end", "equal")
INIT_POLICIES = ("both", "fresh")  # init_from_demos: which policies clone the demos


@dataclasses.dataclass(frozen=True)
class PrefsConfig:
    """One preference-learning run (what `robreward prefs train` resolves its flags to)."""

    task: str = "reach"
    """Task name in sims/ or a task folder; it must define a fitness."""
    teacher: str = "oracle"
    """Simulated teacher spec (teachers.make_teacher): oracle, mistake:0.1, stochastic:1,myopic:0.9, ...; or
    human: a person labels rendered clips in the labeling web app (human.py)."""
    queries: int = 200
    """Query budget: pairs shown to the teacher over the whole run."""
    per_round: int = 50
    """Queries per feedback round (the schedule's largest round)."""
    schedule: str = "constant"
    """Query schedule over the budget: constant or linear (segments.query_schedule)."""
    select: str = "disagreement"
    """Query selection after round 0 (round 0 is uniform: no model yet): uniform, disagreement, entropy."""
    pairing: str = "mixed"
    """Which segments a query compares: any two; two of the same episode (same reset: object, goal,
    start), so the label reflects what the policy did rather than where the episode began; or mixed
    (half of each)."""
    segment: int = 25
    """Segment length H in env steps."""
    steps: int = 1_000_000
    """PPO env steps summed over all worlds (pre-training included; feedback rollouts not counted)."""
    num_envs: int = 32
    """Parallel worlds of the PPO and of the feedback rollouts."""
    pretrain_steps: int = 0
    """PPO steps of unsupervised state-entropy pre-training before the first queries (PEBBLE); 0: none."""
    feedback_fraction: float = 0.25
    """Feedback rounds are spread evenly over this fraction of the steps after pre-training (0.25: the rounds early,
    so the final reward is known while three quarters of the budget is left; runs before 2026-12 used 0.75, runs
    before 2026-12-07 0.5; measured in benchmarks/RESULTS.md)."""
    final_policy: str = "best"
    """After the last feedback round: restart trains a fresh policy from scratch on the final learned reward for
    the steps left (steps minus the feedback phase's), keeping the feedback phase's policy in ppo-feedback/; best
    (the default) does the same, then keeps whichever of the two earns the higher return under the final learned
    reward (64 episodes each; the fresh one moves to ppo-restart/ when the other wins); continue (PEBBLE; the
    default before 2026-12) keeps training the one policy on it up to ``steps``. The PPO step budget is the same
    in all three."""
    choose_at: str = "auto"
    """final_policy best: when it chooses. equal (what auto, the default, means with best since 2026-12-07): once
    the fresh policy has trained as many PPO steps as the feedback phase's policy (or all the steps left, if fewer),
    and the one kept trains on the final learned reward for the rest of the budget (the feedback phase's policy then
    ends at ``steps`` minus the fresh one's steps); end: after the fresh policy has trained all the steps left (runs
    before 2026-12-07). With restart or continue there is no choice and auto means end. Measured in
    benchmarks/RESULTS.md."""
    restart_keep: float = 0.0
    """final_policy restart or best: the fresh policy starts from this share of the feedback phase's weights (actor,
    critic, action noise) and the rest of a new initialisation, with the feedback phase's observation statistics
    (shrink and perturb, Ash & Adams 2020); 0 (the default): from scratch. Measured in benchmarks/RESULTS.md."""
    collect_steps: int = 0
    """Env steps per world of each round's feedback rollout; 0: max(2 * segment, min(2 * episode length, 200))."""
    heldout_pairs: int = 500
    """Uniform pairs of held-out segments labeled per round for the held-out accuracy (not in the budget)."""
    features: tuple[str, ...] = ("auto",)
    """TaskState fields the reward model reads (flattened, in order; ``|x|`` the norm of x, ``x.xy``/``x.z`` the
    horizontal norm/height of a 3-D position or velocity); empty: the task's observation; the presets ``obs-norms``
    (the observation's fields, vectors as their norms), ``obs-norms-z`` (the same, each 3-D position, offset and
    velocity as its horizontal norm and its height), ``kinematics`` (the observation's joint positions and
    velocities: no contact forces; ``observation[a:b]`` reads a slice), ``offsets`` (the norms
    of its ``A_to_B`` fields and every single-value field), ``observation`` (beside other names, the observation in
    its place) and ``auto`` (the default: obs-norms where the observation is made of TaskState fields, else the
    observation; before 2026-12 the default was the observation)."""
    feature_action: bool = True
    """Append the action to the reward model's features (PEBBLE: state-action rewards)."""
    reward_inputs: str = "state"
    """What the reward model reads: state (the features above), image (rendered frames of each step: RL-VLM-F's
    reward model, image_model.py) or both (frames and the features). The policy reads states either way."""
    image_size: int = 48
    """Image inputs: the frames' side in pixels (rendered square, 16-256)."""
    image_camera: str = ""
    """Image inputs: a camera of the task's scene or a named view (top); "" = the task's camera."""
    image_encoder: str = ""
    """Image inputs: "" = a small CNN trained with the reward heads; else a transformers vision model (a folder
    or a cached hub id), frozen, a head per member on its features."""
    demos: tuple[str, ...] = ()
    """Demonstrations as free preferences (Ibarz et al. 2018; demo_prefs.py): HDF5 demo datasets of the task whose
    successful episodes' segments are preferred to the policy's; none by default."""
    demo_pairs: int = 50
    """With ``demos``: free (demo, policy segment) pairs added per feedback round, labeled without the teacher and
    outside the query budget (a person never sees them)."""
    init_from_demos: str = ""
    """An HDF5 demo dataset of the task that each PPO policy of the run (the feedback phase's and the fresh one)
    behaviour-clones before PPO starts (Ibarz et al. 2018's warm start; robreward.demos.bc); "" (the default):
    none. The rounds then sample the cloned policy's segments. Measured (benchmarks/RESULTS.md): on push and
    drawer-open the demos alone solve the task (PPO on the sparse reward from the same start matches the hand
    baseline), and on lift it did not help."""
    bc_noise_std: float = 0.1
    """With ``init_from_demos``: the cloned policy's noise std before PPO (as robreward train --bc-noise-std;
    TrainConfig.bc_noise_std). On lift 0.3 let progress shaping lift on every seed (benchmarks/RESULTS.md "Cloning
    alone")."""
    reset_from_demos: str = ""
    """An HDF5 demo dataset of the task: every PPO phase of the run starts ``demo_reset_fraction`` of its training
    episodes at a state of its successful episodes (as robreward train --reset-from-demos; robreward.demos.resets);
    "" (the default): none. Measured on lift with init_from_demos (benchmarks/RESULTS.md, after the held-out table)."""
    demo_reset_fraction: float = 0.25
    """With ``reset_from_demos``: the share of each PPO phase's training resets at a demo state, in (0, 1]."""
    init_policies: str = "both"
    """With ``init_from_demos``: which policies clone the demos: both (the feedback phase's and the fresh one), or
    fresh (the final policy only; the feedback rounds then sample an unaided policy's segments)."""
    entropy_k: int = 5
    """k of the k-NN state-entropy reward (PEBBLE: 5)."""
    seed: int = 0
    """Seeds PPO, the envs, the rollouts, query selection and the teacher. The reward ensemble's
    initialization and bootstraps have their own seed, ``ensemble.seed`` (`robreward prefs train` sets it to
    --seed; benchmarks/prefs.py keeps it at 0 in every cell)."""
    out: str = "runs/prefs"
    """Run directory (see the module docstring)."""
    eval_episodes: int = 100
    """Episodes of the final deterministic evaluation under the hand reward (0: skip)."""
    device: str = "cpu"
    """Torch device of the envs and networks."""
    torch_threads: int = 1
    """torch intra-op threads."""
    progress: bool = True
    """Show the PPO progress bar."""
    ensemble: EnsembleConfig = dataclasses.field(default_factory=EnsembleConfig)
    """Reward ensemble and its training."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    host: str = "127.0.0.1"
    """teacher human: address the labeling app listens on."""
    port: int = 8765
    """teacher human: port of the labeling app (0: any free port)."""
    serve_app: bool = True
    """teacher human: serve the labeling app from this process (False: run `robreward label RUN` yourself)."""
    label_timeout: float = 0.0
    """teacher human: seconds to wait for a round's labels before stopping (resumable); 0 waits forever."""

    def __post_init__(self):
        if isinstance(self.ensemble, dict):
            data = dict(self.ensemble)
            if "hidden" in data:
                data["hidden"] = tuple(data["hidden"])
            object.__setattr__(self, "ensemble", strict_from_dict(EnsembleConfig, data, "ensemble config"))
        if isinstance(self.ppo, dict):
            try:
                object.__setattr__(self, "ppo", strict_from_dict(PPOConfig, self.ppo, "ppo config"))
            except ConfigError as err:
                raise err.within("ppo") from None
        object.__setattr__(self, "features", tuple(str(f) for f in self.features))
        object.__setattr__(self, "demos", tuple(str(f) for f in self.demos))
        object.__setattr__(self, "init_from_demos", str(self.init_from_demos or ""))
        object.__setattr__(self, "reset_from_demos", str(self.reset_from_demos or ""))
        for name in ("queries", "per_round", "segment", "steps", "num_envs", "demo_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(name, f"must be an integer >= 1, got {value!r}")
        if self.num_envs < 2:
            raise ConfigError("num_envs", f"must be >= 2 (a quarter of the worlds is held out), got {self.num_envs}")
        check_choice("select", self.select, QUERY_METHODS, what="query selection")
        check_choice("schedule", self.schedule, SCHEDULES, what="query schedule")
        check_choice("pairing", self.pairing, PAIRINGS)
        check_choice("final_policy", self.final_policy, FINAL_POLICIES)
        check_choice("init_policies", self.init_policies, INIT_POLICIES)
        check_choice("choose_at", self.choose_at, CHOOSE_AT)
        if self.choose_at == "auto":
            object.__setattr__(self, "choose_at", "equal" if self.final_policy == "best" else "end")
        if self.choose_at != "end" and self.final_policy != "best":
            raise ConfigError("choose_at", f"says when final_policy best chooses; with {self.final_policy} there is "
                              "no choice: leave it at end")
        check_number("restart_keep", self.restart_keep, lambda v: 0.0 <= v < 1.0, "a share in [0, 1)")
        if self.restart_keep and self.final_policy == "continue":
            raise ConfigError("restart_keep", "starts the fresh policy of final_policy restart or best from the "
                              "feedback phase's; with continue there is no fresh policy: set it to 0")
        if self.init_policies == "fresh" and self.final_policy == "continue":
            raise ConfigError("init_policies", "'fresh' needs a policy trained from scratch at the end: "
                              "final_policy restart or best, not continue")
        check_choice("reward_inputs", self.reward_inputs, REWARD_INPUTS, what="reward inputs")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, (int, np.integer)) or \
                not 16 <= self.image_size <= 256:
            raise ConfigError("image_size", f"must be an integer in 16..256 pixels, got {self.image_size!r}")
        check_min("seed", self.seed, 0)
        check_number("demo_reset_fraction", self.demo_reset_fraction, lambda v: 0.0 < v <= 1.0, "a share in (0, 1]")
        check_number("bc_noise_std", self.bc_noise_std, lambda v: v > 0.0, "a std > 0")
        if self.reward_inputs != "state" and (self.ensemble.crop < 1 or self.ensemble.pseudo_threshold is not None):
            raise ConfigError("ensemble", "SURF's crop and pseudo-labels train state reward models only "
                              "(--reward-inputs state); leave ensemble.crop at 1 and pseudo_threshold unset")
        if self.reward_inputs != "state" and self.ensemble.prior_weight > 0:
            raise ConfigError("ensemble", "Hindsight PRIOR trains state reward models only (--reward-inputs state); "
                              "leave ensemble.prior_weight at 0")
        if self.demos and self.reward_inputs != "state":
            raise ConfigError("demos", "demos as preferences need a state reward model (--reward-inputs state): "
                              "the demos' frames are not rendered for image reward models")
        if not (0 <= self.pretrain_steps < self.steps):
            raise ConfigError("pretrain_steps", f"must be in [0, steps={self.steps}), got {self.pretrain_steps}: "
                              "leave steps for training on the learned reward")
        if not (0 < self.feedback_fraction <= 1):
            raise ConfigError("feedback_fraction", f"must be in (0, 1], got {self.feedback_fraction}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError("port", f"must be an integer in 0..65535, got {self.port!r}")
        for name, low in (("collect_steps", 0), ("eval_episodes", 0), ("heldout_pairs", 1), ("entropy_k", 1),
                          ("label_timeout", 0)):
            check_min(name, getattr(self, name), low)
        try:  # the query budget must split into rounds
            query_schedule(self.queries, self.per_round, self.schedule)
        except ValueError as err:
            raise ConfigError("queries", f"{{name}}: {err}") from None
        try:
            check_teacher(self.teacher)
        except ValueError as err:
            raise ConfigError("teacher", f"{{name}}: {err}") from None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["features"] = list(self.features)
        data["demos"] = list(self.demos)
        data["ensemble"]["hidden"] = list(self.ensemble.hidden)
        data["ppo"]["actor_hidden"] = list(self.ppo.actor_hidden)
        data["ppo"]["critic_hidden"] = list(self.ppo.critic_hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "PrefsConfig":
        """The config of a ``to_dict()`` (a run's config.json): unknown fields refused, no defaults added here
        (the dataclass states them); a config of an older robreward is migrated first (robreward/rundir/)."""
        return strict_from_dict(cls, data, "prefs config")


def check_task(task):
    """The TaskSpec of ``task``; ValueError when it has no fitness (nothing to measure success by)."""
    from robreward.envs.registry import get_task

    spec = get_task(task)
    if spec is None:
        raise ValueError(f"unknown task {task!r}: see `robreward tasks` for the list, or pass a task folder")
    if not callable(getattr(spec, "fitness", None)):
        raise ValueError(f"task {spec.name!r} defines no fitness: preference runs compare the policy with the hand "
                         "baseline by fitness/success; give the TaskSpec a fitness(state) -> [N]")
    return spec


# settings a resumed run may change (they do not change what is learned)
RESUMABLE_CHANGES = ("progress", "host", "port", "serve_app", "label_timeout")


def check_teacher(spec: str):
    """A simulated teacher from its spec, or None for ``human`` (labels from the web app, human.py)."""
    if is_human(spec):
        return None
    return make_teacher(spec)


__all__ = ["CHOOSE_AT", "FINAL_POLICIES", "RESUMABLE_CHANGES", "PrefsConfig", "check_task", "check_teacher"]
