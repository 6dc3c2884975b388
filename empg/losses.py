"""Policy losses (spec §5): clipped surrogate (clip-higher, dual-clip), aggregations, k3 KL, REINFORCE.

Every loss returns ``(loss, metrics)``: a scalar tensor to minimise and a dict of floats with
namespaced keys (``loss/…``, ``policy/…``).
"""

from __future__ import annotations

from typing import Any

import torch

from ._checks import as_float_tensor, check_finite, check_same_shape

__all__ = ["AGGREGATIONS", "aggregate", "clipped_policy_loss", "kl_k3", "kl_penalty", "reinforce_loss"]

#: Loss aggregation modes (verl's names).
AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")


def _mask(mask: Any, like: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    m = torch.as_tensor(mask, device=like.device)
    check_same_shape(like, "values", m, "mask")
    return m.bool()


def _masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` with masked-out entries set to 0 by ``torch.where``, not ``values * mask``:
    NaN · 0 is NaN, and nothing at a masked token may reach the loss or its gradient."""
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def aggregate(values: torch.Tensor, mask: Any = None, mode: str = "token-mean") -> torch.Tensor:
    """Reduce per-token ``values [B, L]`` (or ``[N]``) under ``mask`` to a scalar.

    * ``token-mean``: Σ mask·v / Σ mask (every token weighs the same; DAPO's choice).
    * ``seq-mean-token-mean``: mean over rows of each row's token mean (rows with no token skipped).
    * ``seq-mean-token-sum``: mean over rows of each row's token sum.
    An empty mask gives 0 (not NaN). Values at masked-out tokens are never read (they may be NaN).
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"mode must be one of {AGGREGATIONS}, got {mode!r}")
    m = _mask(mask, values)
    mf = m.to(values.dtype)
    kept = _masked(values, m)
    if mode == "token-mean":
        return kept.sum() / mf.sum().clamp_min(1.0)
    v2, m2 = (kept, mf) if values.ndim >= 2 else (kept.unsqueeze(-1), mf.unsqueeze(-1))
    v2, m2 = v2.reshape(v2.shape[0], -1), m2.reshape(m2.shape[0], -1)
    tok = m2.sum(-1)
    rows = tok > 0
    row_sum = v2.sum(-1)
    per_row = row_sum / tok.clamp_min(1.0) if mode == "seq-mean-token-mean" else row_sum
    return (per_row * rows).sum() / rows.sum().clamp_min(1).to(values.dtype)


def _checked_inputs(logp: Any, mask: Any, **others: Any) -> tuple[torch.Tensor, ...]:
    """``(logp, mask, *others)`` as tensors on ``logp``'s device: float, one shape, finite where ``mask``
    (a bool tensor, all True for None); a ValueError/TypeError names the argument otherwise."""
    lp = as_float_tensor(logp, "logp")
    tensors = {name: as_float_tensor(value, name).to(lp.device) for name, value in others.items()}
    for name, t in tensors.items():
        check_same_shape(lp, "logp", t, name)
    m = _mask(mask, lp)
    check_finite(lp.detach(), "logp", m)
    for name, t in tensors.items():
        check_finite(t, name, m)
    return (lp, m, *tensors.values())


def clipped_policy_loss(
    logp: Any,
    old_logp: Any,
    advantages: Any,
    mask: Any = None,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = None,
    agg: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate with DAPO's clip-higher and optional dual-clip (spec §5).

    Math: ``ρ = exp(logp − old_logp)``; ``ℓ = −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A)``; with dual-clip
    c > 1, for A < 0: ``ℓ = min(ℓ, −cA)``.

    Args:
        logp, old_logp, advantages: ``[B, L]`` (or ``[N]``); mask: same shape, True for tokens in the loss.
        clip_low, clip_high: ε_low, ε_high (DAPO: 0.2 / 0.28). dual_clip: c (> 1), or None.
        agg: one of :data:`AGGREGATIONS`.

    Returns:
        ``(loss, {"loss/policy", "policy/clip_frac", "policy/approx_kl", "policy/ratio_mean", ...})``.
    """
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip_low and clip_high must be >= 0, got {clip_low}, {clip_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (or None), got {dual_clip}")
    lp, m, old, adv = _checked_inputs(logp, mask, old_logp=old_logp, advantages=advantages)
    adv = _masked(adv, m)
    log_ratio = _masked(lp - old, m).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)
    is_clipped = (clipped > unclipped) & m
    dual = torch.zeros_like(m)
    if dual_clip is not None:
        capped = torch.minimum(per_token, -adv * dual_clip)
        dual = (adv < 0) & (per_token > -adv * dual_clip) & m
        per_token = torch.where(adv < 0, capped, per_token)
    loss = aggregate(per_token, m, agg)
    n = m.sum().clamp_min(1)
    with torch.no_grad():
        metrics = {
            "loss/policy": float(loss.detach()),
            "policy/clip_frac": float(is_clipped.sum() / n),
            "policy/dual_clip_frac": float(dual.sum() / n),
            # k1 estimate of KL(old || new) on the sampled tokens
            "policy/approx_kl": float((-log_ratio * m).sum() / n),
            "policy/ratio_mean": float((ratio * m).sum() / n),
        }
    return loss, metrics


def kl_k3(logp: Any, ref_logp: Any) -> torch.Tensor:
    """Low-variance "k3" estimator of KL(π ‖ π_ref) per sampled token (Schulman 2020).

    Math: ``k3 = exp(r) − r − 1`` with ``r = ref_logp − logp``; unbiased, always ≥ 0.
    Shapes: any, equal. Returns the per-token values (clamped to [0, 10] as verl does).
    """
    lp = as_float_tensor(logp, "logp")
    ref = as_float_tensor(ref_logp, "ref_logp").to(lp.device)
    check_same_shape(lp, "logp", ref, "ref_logp")
    r = (ref - lp).clamp(-20.0, 20.0)
    return (torch.exp(r) - r - 1.0).clamp(0.0, 10.0)


def kl_penalty(
    logp: Any, ref_logp: Any, mask: Any = None, *, coef: float = 0.01, agg: str = "token-mean"
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL-to-reference loss term ``coef · agg(k3)`` (paper setup: low-var KL, coef 0.01)."""
    lp, m, ref = _checked_inputs(logp, mask, ref_logp=ref_logp)
    per_token = kl_k3(_masked(lp, m), _masked(ref, m))
    kl = aggregate(per_token, m, agg)
    return coef * kl, {"loss/kl": float(kl.detach()), "loss/kl_coef": float(coef)}


def reinforce_loss(
    logp: Any, advantages: Any, mask: Any = None, *, agg: str = "token-mean"
) -> tuple[torch.Tensor, dict[str, float]]:
    """REINFORCE loss ``−agg(A · log π(a))`` (no ratio; for the tabular toys).

    Shapes: ``logp``, ``advantages``, ``mask`` equal, e.g. ``[S]`` per step or ``[B, L]`` per token.
    """
    lp, m, adv = _checked_inputs(logp, mask, advantages=advantages)
    loss = aggregate(-_masked(adv, m).detach() * _masked(lp, m), m, agg)
    return loss, {"loss/policy": float(loss.detach())}
