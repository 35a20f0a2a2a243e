"""Distances between reward functions on sampled transitions: EPIC, DARD and STARC.

    coverage = collect_transitions(env, num_steps=256, seed=0)         # or Coverage.from_rollout(rollout)
    reward_distances(spec, "hand", "pref:runs/p", coverage)             # {"epic": .., "dard": .., "starc": ..}

Each distance canonicalises both rewards (removing what does not change which policies are
better: potential shaping gamma Phi(s') - Phi(s), and a constant), then compares them in a way
that ignores a positive scale. All three are 0 for rewards that differ only by those, 1 for a
reward and its negation, and lie in [0, 1].

*EPIC* (Gleave et al. 2021, "Quantifying Differences in Reward Functions"):

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

with S, S' ~ D_S and A ~ D_A independent; the Pearson distance sqrt((1 - rho) / 2) of C(R_a) and
C(R_b) over transitions (s, a, s') ~ D.

*DARD* (Wulfe et al. 2022, "Dynamics-Aware Comparison of Learned Reward Functions"): as EPIC
but the expectations follow the dynamics, so the rewards are never queried on impossible
transitions:

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S'') - R(s, A, S') - gamma R(S', A, S'')]

with A ~ D_A, S' ~ T(s, A), S'' ~ T(s', A); then the Pearson distance.

*STARC* (Skalse et al. 2024, "STARC: A General Framework For Quantifying Differences Between
Reward Functions", ICLR): canonicalise with c, normalise s(R) = c(R) / n(c(R)) (s(R) = 0 when
n(c(R)) = 0), then d = m(s(R_a), s(R_b)) / 2 for a metric m; with n and m the L2 norm over the
transition distribution D, d = sqrt((1 - cos) / 2) of the canonical rewards, in [0, 1]. The
canonicalisation is the paper's Value-Adjusted Levelling (VAL):

    c(R)(s, a, s') = E_{S' ~ T(s, a)}[R(s, a, S') + gamma V^pi_R(S')] - V^pi_R(s)

(the advantage of a under pi), for a fixed policy pi. Why VAL: the paper's minimal
canonicalisation (an L2 projection onto the complement of every shaping) needs the whole
transition matrix and is only computable in small tabular MDPs; VAL needs only the value of one
policy, which a sample of that policy's transitions estimates without a model, and the paper
recommends it for settings where c_min is out of reach. The choices made here:

- pi is the policy that generated the transitions (uniform random actions in
  ``collect_transitions`` unless a policy is given): its value is what the sample can estimate.
- V^pi_R is estimated by LSTD(0) (least-squares temporal difference, Bradtke & Barto 1996) on
  the coverage's transitions with fixed features of the state (``value_features``): a
  constant and the whitened state fields (every TaskState field but ``action``, flattened),
  unpenalised, plus 64 random Fourier features of them with a small ridge (1e-2). LSTD is linear in
  the reward, so c(alpha R) = alpha c(R) and c(-R) = -c(R) exactly, and a shaping whose Phi is
  linear in the state fields (or a constant) is removed exactly, up to float64 round-off (the
  ridge does not touch those columns); a Phi outside their span is removed as far as the
  features fit it (measured: STARC 0.03 between hand and hand + a norm-of-distance shaping on
  reach). A single Monte Carlo return per state would make R + gamma G' - G = 0 identically,
  so the value has to be fitted. A canonical reward below 1e-6 of the raw reward's RMS counts
  as 0 (the reward was only shaping and a constant): s(R) = 0 and its distance to any
  non-trivial reward is 1/2, as the paper defines.
- The simulators are deterministic, so E_{S' ~ T(s, a)} is the sampled s'.

What is approximated for EPIC and DARD, and how:

- D_S and D_A are the empirical marginals of the coverage's post-step states and actions; D is
  its transitions. A transition is (s, a, s') = (post-step state of step t - 1, action of step
  t, post-step state of step t) of one world; the first step of each episode has no recorded
  pre-state and is left out. Terminal transitions are treated like any other (gamma
  everywhere), as in EPIC.
- EPIC's expectations are Monte Carlo means over ``num_samples`` draws of (S, A, S'), the same
  draws for both rewards. A Reward-protocol reward r(state, action) reads only the post-step
  state, R(s, a, s') = r(s', a): every EPIC expectation is then the constant E[r], so C(R) is r
  minus a constant and EPIC is the Pearson distance of r over D, exactly.
- DARD's T(s, A) is taken from the sample: the ``neighbours`` transitions whose start state is
  nearest to s (Euclidean distance of the standardised state fields) give the pairs (A, S');
  their actions stand for A ~ D_A (exact for a random-action coverage, the behaviour policy's
  actions near s otherwise). The same pairs serve every term, so potential shaping cancels
  exactly. For a Reward-protocol reward C(R)(s, a, s') = r(s', a) - mean_i r(S'_i, A_i).

Confidence intervals (``reward_distances``) are percentile bootstraps over the episodes of the
transitions. STARC refits its value function on every resample, so its interval includes the
value fit's error, which dominates: with gamma = 0.99 and a few dozen random-action episodes
LSTD's value is noisy, and STARC's interval is wide (reach, hand vs an unrelated reward, 16 x
256 random steps: 0.57, interval [0.24, 0.80]; EPIC 0.70 [0.70, 0.71]). EPIC and DARD keep their
canonical rewards fixed (EPIC's is exact for Reward-protocol rewards; DARD's neighbours are
not resampled), so theirs covers which transitions were sampled.

Rewards that read more than the TaskState (robreward.rewards.state_tables): a CLIP reward and an
image progress model score frames of the coverage's states, rendered from the MuJoCo states that
``collect_transitions(..., record_sim_states=True)`` keeps (the renderer robreward.feedback.vision
registers); progress shaping gives Φ per state; both become tables over the coverage's states. An
episode-level reward (RoboCLIP) has no distance on transitions (EpisodeLevelReward).

This module is in the rewards layer: it imports no env, trainer or learner. ``Coverage``
reads any object shaped like a rollout, ``collect_transitions`` any object shaped like a
BatchedEnv.

The package's parts (every name below is re-exported here: import from ``robreward.rewards.distance``):
``coverage`` (Coverage, collect_transitions, TransitionReward, evaluating a reward on the coverage, the
shared defaults), ``epic`` (EPIC and the Pearson distance), ``dard``, ``starc`` (VAL with LSTD values)
and ``report`` (reward_distances and its bootstrap intervals).
"""

from __future__ import annotations

# ``X as X``: importable from here, as from the old module, but not in its __all__
from robreward.rewards.distance.coverage import (
    DEFAULT_GAMMA,
    DEFAULT_MAX_TRANSITIONS as DEFAULT_MAX_TRANSITIONS,
    DEFAULT_NEIGHBOURS as DEFAULT_NEIGHBOURS,
    DEFAULT_SAMPLES as DEFAULT_SAMPLES,
    Coverage,
    RewardLike as RewardLike,
    TransitionReward,
    collect_transitions,
    state_matrix,
)
from robreward.rewards.distance.dard import dard_canonical_rewards, dard_distance, nearest_transitions
from robreward.rewards.distance.epic import canonical_rewards, epic_distance, pearson_distance
from robreward.rewards.distance.report import DEFAULT_BOOTSTRAP as DEFAULT_BOOTSTRAP, METRICS, reward_distances
from robreward.rewards.distance.starc import (
    DEFAULT_RIDGE as DEFAULT_RIDGE,
    DEFAULT_VALUE_FEATURES as DEFAULT_VALUE_FEATURES,
    TRIVIAL as TRIVIAL,
    FeatureFn as FeatureFn,
    ValueFeatures as ValueFeatures,
    lstd_values,
    starc_distance,
    starc_from_canonical,
    val_canonical_rewards,
    value_features,
)

__all__ = ["Coverage", "DEFAULT_GAMMA", "METRICS", "TransitionReward", "canonical_rewards", "collect_transitions",
           "dard_canonical_rewards", "dard_distance", "epic_distance", "lstd_values", "nearest_transitions",
           "pearson_distance", "reward_distances", "starc_distance", "starc_from_canonical", "state_matrix",
           "val_canonical_rewards", "value_features"]
