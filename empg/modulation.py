"""The EMPG modulation, Eq. 7–12 (spec §3), for both batch layouts.

One implementation (:func:`_step_terms`) works on the S steps of a batch; the token-level entry
point :func:`modulate_advantages` (concatenated rows ``[B, L]``) and the step-level entry point
:func:`modulate_step_advantages` (one row per step ``[S]``) only differ in how they find the steps.

Per batch, over the set S of its steps:

* Eq. 12  ``H̃_s = (H_s − min_S H) / (max_S H − min_S H + ε)``
* Eq. 10  ``g_s = exp(−k H̃_s) / (mean_S exp(−k H̃) + ε)``           (self-calibrating scale, mean ≈ 1)
* Eq. 11  ``f_s = exp(−k_f H̃_s)``                                    (future clarity)
* Eq. 8   ``A′_{i,t} = g_{i,t} · A_{i,t} + ζ · f_{i,t+1}``            (bonus only when step t+1 exists)
* Eq. 7   ``A″_s = A′_s − mean_S A′``                                  (zero-mean, no std division)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._checks import as_float_tensor, as_int_tensor, check_finite, check_positive, check_same_shape
from ._steps import StepIndex, index_step_rows, index_steps, scatter_step_mean

__all__ = [
    "ModulationTerms",
    "modulate_advantages",
    "modulate_step_advantages",
    "modulation_terms",
    "step_modulation_terms",
]


@dataclass(frozen=True)
class ModulationTerms:
    """Every intermediate of Eq. 7–12, one value per step, steps sorted by (trajectory, step).

    Attributes:
        trajectory, step: ``[S]`` which step each entry is (row of the batch for concatenated rows).
        step_entropy: ``[S]`` H_s, the mean token entropy of the step.
        normalized_entropy: ``[S]`` H̃_s (Eq. 12), in [0, 1).
        scale: ``[S]`` g_s (Eq. 10); its mean over S is 1 (up to ε).
        clarity: ``[S]`` f_s (Eq. 11) of the step itself.
        has_next: ``[S]`` bool, whether the trajectory has a later step.
        bonus: ``[S]`` ζ · f of the next step, 0 for a trajectory's last step (Eq. 8).
        advantage: ``[S]`` incoming advantage A_s (its token mean when it varies inside a step).
        modulated: ``[S]`` A′_s (Eq. 8).
        centred: ``[S]`` A″_s (Eq. 7).
        mean_modulated: scalar mean_S A′, the value Eq. 7 subtracts.
        token_step: concatenated rows ``[B, L]`` (or step rows ``[S]``): position in these ``[S]``
            lists of each token's (row's) step, -1 for tokens in no step.
    """

    trajectory: torch.Tensor
    step: torch.Tensor
    step_entropy: torch.Tensor
    normalized_entropy: torch.Tensor
    scale: torch.Tensor
    clarity: torch.Tensor
    has_next: torch.Tensor
    bonus: torch.Tensor
    advantage: torch.Tensor
    modulated: torch.Tensor
    centred: torch.Tensor
    mean_modulated: torch.Tensor
    token_step: torch.Tensor

    @property
    def num_steps(self) -> int:
        return int(self.step.numel())

    def stats(self, prefix: str = "empg") -> dict[str, float]:
        """Summary statistics for logging, namespaced ``{prefix}/...``."""
        if self.num_steps == 0:
            return {f"{prefix}/num_steps": 0.0}
        out = {f"{prefix}/num_steps": float(self.num_steps)}
        for name, t in (
            ("step_entropy", self.step_entropy),
            ("normalized_entropy", self.normalized_entropy),
            ("scale", self.scale),
            ("clarity", self.clarity),
            ("bonus", self.bonus),
            ("advantage_in", self.advantage),
            ("advantage_out", self.centred),
        ):
            t = t.double()
            out[f"{prefix}/{name}_mean"] = float(t.mean())
            out[f"{prefix}/{name}_min"] = float(t.min())
            out[f"{prefix}/{name}_max"] = float(t.max())
        out[f"{prefix}/scale_std"] = float(self.scale.double().std(unbiased=False))
        return out


def _check_hparams(k: float, k_f: float, zeta: float, eps: float) -> None:
    check_positive(k, "k")
    check_positive(k_f, "k_f")
    check_positive(zeta, "zeta")
    check_positive(eps, "eps", allow_zero=False)


def _step_terms(
    idx: StepIndex,
    step_entropy: torch.Tensor,
    step_advantage: torch.Tensor,
    *,
    k: float,
    k_f: float,
    zeta: float,
    eps: float,
) -> ModulationTerms:
    """Eq. 7–12 on the S steps of ``idx``. Computed in float64; callers cast back."""
    h = step_entropy.double()
    a = step_advantage.double()
    if idx.num_steps == 0:
        z = h.new_zeros(0)
        return ModulationTerms(idx.row, idx.step, h, z, z, z, idx.has_next, z, a, z, z, h.new_zeros(()), idx.token_step)
    h_norm = (h - h.min()) / (h.max() - h.min() + eps)  # Eq. 12
    u = torch.exp(-k * h_norm)
    g = u / (u.mean() + eps)  # Eq. 10
    f = torch.exp(-k_f * h_norm)  # Eq. 11
    has_next = idx.has_next
    bonus = torch.where(has_next, zeta * f[idx.next_step.clamp_min(0)], torch.zeros_like(f))  # Eq. 8, 2nd term
    modulated = g * a + bonus  # Eq. 8
    mean = modulated.mean()
    centred = modulated - mean  # Eq. 7
    return ModulationTerms(
        trajectory=idx.row,
        step=idx.step,
        step_entropy=h,
        normalized_entropy=h_norm,
        scale=g,
        clarity=f,
        has_next=has_next,
        bonus=bonus,
        advantage=a,
        modulated=modulated,
        centred=centred,
        mean_modulated=mean,
        token_step=idx.token_step,
    )


def _token_inputs(advantages: Any, entropy: Any, step_ids: Any):
    adv = as_float_tensor(advantages, "advantages")
    ent = as_float_tensor(entropy, "entropy")
    ids = as_int_tensor(step_ids, "step_ids")
    if adv.ndim != 2:
        raise ValueError(f"advantages must be 2-D [B, L], got shape {tuple(adv.shape)}")
    check_same_shape(adv, "advantages", ent, "entropy")
    check_same_shape(adv, "advantages", ids, "step_ids")
    ids = ids.to(adv.device)
    ent = ent.to(adv.device)
    idx = index_steps(ids)
    check_finite(ent, "entropy", idx.in_step)
    check_finite(adv, "advantages", idx.in_step)
    if bool(((ent < 0) & idx.in_step).any()):
        raise ValueError("entropy must be >= 0 on step tokens, got a negative value")
    return adv, ent, idx


def _token_terms(advantages: Any, entropy: Any, step_ids: Any, hparams: dict[str, float]):
    """Validated inputs of the concatenated-rows layout and their Eq. 7–12 terms."""
    _check_hparams(**hparams)
    adv, ent, idx = _token_inputs(advantages, entropy, step_ids)
    terms = _step_terms(idx, scatter_step_mean(ent, idx), scatter_step_mean(adv, idx), **hparams)
    return adv, idx, terms


def modulation_terms(
    advantages: Any,
    entropy: Any,
    step_ids: Any,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
) -> ModulationTerms:
    """All intermediates of Eq. 7–12 for concatenated rows (see :func:`modulate_advantages`)."""
    return _token_terms(advantages, entropy, step_ids, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))[2]


def modulate_advantages(
    advantages: Any,
    entropy: Any,
    step_ids: Any,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ModulationTerms]:
    """EMPG modulated advantages at token level, concatenated-rows layout (Eq. 7–12).

    Math: token ``j`` of step ``s`` gets ``g_s · A_j + ζ · f_{next(s)} − mean_S A′`` (Eq. 8, 7), with
    ``g`` (Eq. 10), ``f`` (Eq. 11) computed from the batch-normalised step entropies (Eq. 12).

    Args:
        advantages: ``[B, L]`` incoming (outcome) advantage of each token, e.g. the trajectory's
            GRPO advantage broadcast over its tokens.
        entropy: ``[B, L]`` per-token entropy in nats (:func:`empg.token_entropy`), ≥ 0 on step tokens.
        step_ids: ``[B, L]`` int: 0, 1, 2, … for the tokens of each step of the row, -1 elsewhere
            (:func:`empg.step_ids_from_delimiters`).
        k: scaling sharpness (Eq. 10), paper default 1. k_f: bonus sharpness k′ (Eq. 11), default 1.
        zeta: bonus weight ζ (Eq. 8), default 0.1. eps: ε of Eq. 10 and 12, default 1e-8.
        return_terms: also return the :class:`ModulationTerms` of the same pass (for logging), so a
            caller never runs the modulation twice.

    Returns:
        A new ``[B, L]`` tensor in the dtype of ``advantages`` (and the terms when ``return_terms``).
        Tokens in no step keep their input value (mask them out of the loss). With no steps at all
        the input is returned as a copy.
    """
    adv, idx, terms = _token_terms(advantages, entropy, step_ids, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    out = _scatter_tokens(adv, idx, terms)
    return (out, terms) if return_terms else out


def _scatter_tokens(adv: torch.Tensor, idx: StepIndex, terms: ModulationTerms) -> torch.Tensor:
    """Token values ``g_s · A_j + ζ f_next(s) − mean_S A′`` of the steps' tokens; other tokens keep ``adv``."""
    if idx.num_steps == 0:
        return adv.clone()
    # Gather g and bonus per token (tokens in no step read a padding slot and are then restored).
    slot = idx.slot
    scale = torch.cat([terms.scale, terms.scale.new_zeros(1)])[slot]
    shift = torch.cat([terms.bonus, terms.bonus.new_zeros(1)])[slot] - terms.mean_modulated
    vals = scale * adv.double() + shift
    return torch.where(idx.in_step, vals.to(adv.dtype), adv)


def _step_inputs(advantages: Any, step_entropy: Any, trajectory: Any, step: Any):
    adv = as_float_tensor(advantages, "advantages")
    ent = as_float_tensor(step_entropy, "step_entropy")
    if adv.ndim != 1:
        raise ValueError(f"advantages must be 1-D [S] (one row per step), got shape {tuple(adv.shape)}")
    check_same_shape(adv, "advantages", ent, "step_entropy")
    traj = as_int_tensor(trajectory, "trajectory").to(adv.device)
    stp = as_int_tensor(step, "step").to(adv.device)
    check_same_shape(adv, "advantages", traj, "trajectory")
    check_same_shape(adv, "advantages", stp, "step")
    ent = ent.to(adv.device)
    check_finite(ent, "step_entropy")
    check_finite(adv, "advantages")
    if ent.numel() and float(ent.min()) < 0:
        raise ValueError("step_entropy must be >= 0, got a negative value")
    idx = index_step_rows(traj, stp)
    # Sorted order of the steps: position p holds input row order[p].
    order = torch.empty_like(idx.token_step)
    order[idx.token_step] = torch.arange(idx.num_steps, device=adv.device)
    return adv, ent, idx, order


def _row_terms(advantages: Any, step_entropy: Any, trajectory: Any, step: Any, hparams: dict[str, float]):
    """Validated inputs of the step-row layout and their Eq. 7–12 terms (steps sorted)."""
    _check_hparams(**hparams)
    adv, ent, idx, order = _step_inputs(advantages, step_entropy, trajectory, step)
    return adv, idx, _step_terms(idx, ent[order], adv[order], **hparams)


def step_modulation_terms(
    advantages: Any,
    step_entropy: Any,
    trajectory: Any,
    step: Any,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
) -> ModulationTerms:
    """All intermediates of Eq. 7–12 for one-row-per-step input (see :func:`modulate_step_advantages`)."""
    return _row_terms(advantages, step_entropy, trajectory, step, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))[2]


def modulate_step_advantages(
    advantages: Any,
    step_entropy: Any,
    trajectory: Any,
    step: Any,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ModulationTerms]:
    """EMPG modulated advantages, one row per step (verl-agent layout), Eq. 7–12.

    Math: ``A″_{i,t} = g_{i,t} · A_{i,t} + ζ · f_{i,t+1} − mean_S A′`` (Eq. 8, 7; g Eq. 10, f Eq. 11, H̃ Eq. 12).

    Args:
        advantages: ``[S]`` incoming advantage of each step row.
        step_entropy: ``[S]`` the step's mean token entropy H_{i,t} (≥ 0).
        trajectory: ``[S]`` int trajectory id of each row (any integers).
        step: ``[S]`` int index of the step inside its trajectory. Rows may come in any order; the
            next step of (i, t) is the row of trajectory i with the smallest step index > t.
        k, k_f, zeta, eps, return_terms: as in :func:`modulate_advantages`.

    Returns:
        A new ``[S]`` tensor in the dtype of ``advantages``, in the input row order (and the terms,
        steps sorted by (trajectory, step), when ``return_terms``).
    """
    adv, idx, terms = _row_terms(advantages, step_entropy, trajectory, step, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    out = adv.clone() if idx.num_steps == 0 else terms.centred[idx.token_step].to(adv.dtype)
    return (out, terms) if return_terms else out
