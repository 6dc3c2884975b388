"""One vocabulary of metric names for every trainer (toy and scaled), CleanRL-style ``namespace/name``.

Both trainers log through :class:`empg.io.MetricsLog` and use only the names below, so a curve means
the same thing wherever it comes from. A ``*`` stands for any suffix (``success/<task type>``,
``val/<metric>``). :func:`unknown_metrics` lists the keys of a row that are not in the table (the
trainers' tests assert that it is empty).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable

__all__ = ["METRICS", "describe", "unknown_metrics"]

_STATS = ("step_entropy", "normalized_entropy", "scale", "clarity", "bonus", "advantage_in", "advantage_out")

#: name (or ``*`` pattern) -> what it measures.
METRICS: dict[str, str] = {
    # --- step counters
    "update": "toy trainer: 1-based update index (the row's step)",
    "iteration": "scaled trainer: 1-based iteration index (the row's step)",
    # --- charts: what the agent achieves (training rollouts of the sampling policy)
    "charts/success_rate": "fraction of episodes that reached the goal",
    "charts/episode_return": "mean environment return per episode (toys: 1 on success)",
    "charts/score": "mean outcome reward R per episode (scaled: 10·won − 0.1·#invalid)",
    "charts/env_return": "mean native environment return per episode (WebShop: the score)",
    "charts/episode_length": "mean number of steps (turns) per episode",
    "charts/env_steps": "environment steps so far (all rollout rounds)",
    "charts/episodes": "episodes so far (all rollout rounds)",
    "charts/SPS": "environment steps per second of this update",
    # --- losses (empg.losses)
    "loss/policy": "policy loss (clipped surrogate or REINFORCE), aggregated",
    "loss/kl": "k3 KL to the reference policy, aggregated",
    "loss/kl_coef": "coefficient of the KL term",
    "loss/total": "policy loss + KL term",
    # --- the policy and its update
    "policy/clip_frac": "fraction of tokens whose ratio was clipped",
    "policy/dual_clip_frac": "fraction of tokens capped by dual-clip",
    "policy/approx_kl": "k1 estimate of KL(old ‖ new) on the sampled tokens",
    "policy/ratio_mean": "mean importance ratio π/π_old on the sampled tokens",
    "policy/grad_norm": "gradient norm before clipping (mean over optimizer steps)",
    "policy/optimizer_steps": "optimizer steps taken this update",
    "policy/skipped_update": "1 when no update was made (e.g. DAPO kept no group)",
    "policy/entropy_mean": "mean step entropy of the rollout (nats)",
    "policy/advantage_mean": "mean advantage over the loss tokens",
    "policy/kl_prev": "KL(π_before ‖ π_after) of this update on the visited states",
    "policy/kl_init": "KL(π ‖ π_init) on the visited states",
    # --- EMPG (ModulationTerms.stats): Eq. 7–12 on the batch's steps
    "empg/enabled": "1 when the modulation changed the advantages (variant ≠ off)",
    "empg/num_steps": "steps S in the batch",
    "empg/scale_std": "std of g over the batch's steps (Eq. 10)",
    **{f"empg/{name}_{stat}": f"{stat} over the batch's steps of {name} (Eq. 7–12)"
       for name in _STATS for stat in ("mean", "min", "max")},
    # --- DAPO dynamic sampling (one definition: empg.OutcomeConfig)
    "dapo/kept_groups": "groups with non-identical rewards kept for the update",
    "dapo/kept_trajectory_fraction": "fraction of the first round's trajectories kept",
    "dapo/rounds": "rollout rounds (1 + refills) this update",
    # --- Proposition 1 diagnostics
    "prop1/score_norm_sq_mean": "mean ‖e_a − π‖² of the sampled actions",
    "prop1/expected_score_norm_sq_mean": "mean 1 − exp(−H₂) (Prop. 1's expectation)",
    # --- LLM rollouts
    "rollout/*": "rollout statistics (invalid answers, truncations, response length, log-prob checks)",
    "entropy/*": "token and step entropies of the recomputed (teacher-forced) forward pass",
    "success/*": "success rate per task type",
    "rollout/logprob_recompute_max_abs_diff": "max |sampler log-prob − teacher-forced recompute| over the sampled "
                                              "tokens (a stale sampler shows here; ≤ 1e-3 on CPU float32)",
    "perf/weight_sync_seconds": "seconds to hand the updated weights to the sampler (vLLM backend) after the update",
    "perf/*": "wall-clock timings and throughput",
    "val/*": "the same metrics on the validation split (temperature 0.4)",
}


def describe(name: str) -> str | None:
    """What ``name`` measures, or None when it is not in :data:`METRICS`."""
    if name in METRICS:
        return METRICS[name]
    for pattern, text in METRICS.items():
        if "*" in pattern and fnmatchcase(name, pattern):
            return text
    return None


def unknown_metrics(keys: Iterable[str]) -> list[str]:
    """The keys that are not in :data:`METRICS` (sorted)."""
    return sorted(k for k in keys if describe(k) is None)
