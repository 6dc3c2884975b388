"""Entropies of softmax policies and Proposition 1 (spec §2).

All functions take logits ``z`` (any leading shape, the action/vocabulary axis at ``dim``) and
return one value per distribution, in the dtype and on the device of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._checks import as_float_tensor, as_int_tensor, check_same_shape
from ._kernels import to_device
from ._steps import index_steps, step_sums

__all__ = [
    "token_entropy",
    "renyi2_entropy",
    "expected_score_norm_sq",
    "step_entropies",
    "DEFAULT_CHUNK_BYTES",
]

#: Work-space budget for one chunk of ``token_entropy``: 16 MiB of float32 probabilities (kept
#: below glibc's 32 MiB mmap threshold, so freed chunks go back to the system).
DEFAULT_CHUNK_BYTES = 16 * 2**20


def _rows(logits: Any, dim: int, name: str = "logits") -> tuple[torch.Tensor, torch.Size]:
    z = as_float_tensor(logits, name)
    if z.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the action axis), got a scalar")
    if not -z.ndim <= dim < z.ndim:
        raise ValueError(f"dim={dim} is out of range for {name} with {z.ndim} dimension(s)")
    if z.shape[dim] == 0:
        raise ValueError(f"{name} has an empty action axis (dim={dim})")
    z = z.movedim(dim, -1)
    return z.reshape(-1, z.shape[-1]), z.shape[:-1]


def _check_result(values: torch.Tensor) -> None:
    # NaN/+inf logits, or a distribution whose logits are all -inf, give a non-finite result.
    if not torch.isfinite(values).all():
        raise ValueError("logits must be finite or -inf, with at least one finite value per distribution")


def token_entropy(logits: Any, dim: int = -1, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> torch.Tensor:
    """Shannon entropy of ``softmax(logits)`` in nats (spec §2).

    Math: ``h = logsumexp(z) − Σ_v softmax(z)_v · z_v``  (= −Σ π log π, stable for large logits).

    Args:
        logits: ``[..., V]`` (the vocabulary on ``dim``), any float dtype; ``-inf`` masks an action.
        dim: the action/vocabulary axis.
        chunk_bytes: the rows are processed in chunks whose float32 probabilities take at most this
            many bytes, so a ``[B, L, V]`` input never has a full float32 copy of its probabilities.

    Returns:
        ``[...]``: the entropy of each distribution, in the input's dtype, ≥ 0. Differentiable (the
        gradient stays finite with ``-inf`` logits).

    Raises:
        ValueError: NaN or ``+inf`` logits, or a distribution whose logits are all ``-inf``.
    """
    z, lead = _rows(logits, dim)
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be > 0, got {chunk_bytes}")
    n, v = z.shape
    rows_per_chunk = max(1, int(chunk_bytes // (4 * v)))
    if z.requires_grad and torch.is_grad_enabled():
        pieces = [_entropy_chunk_autograd(z[lo : lo + rows_per_chunk]) for lo in range(0, n, rows_per_chunk)]
        out = torch.cat(pieces) if pieces else z.new_empty(0)
    else:
        # No graph needed (the usual case: entropies for EMPG are computed under no_grad): work in
        # place, so a chunk costs two float32 buffers and nothing of the full input is copied.
        out = torch.empty(n, dtype=z.dtype, device=z.device)
        with torch.no_grad():
            for lo in range(0, n, rows_per_chunk):
                out[lo : lo + rows_per_chunk] = _entropy_chunk_inplace(z[lo : lo + rows_per_chunk]).to(z.dtype)
    return out.reshape(lead)


def _bad_logits() -> ValueError:
    return ValueError("logits must be finite or -inf, with at least one finite value per distribution")


def _entropy_chunk_inplace(zc: torch.Tensor) -> torch.Tensor:
    """H of each row of ``zc`` with two chunk-sized buffers: w = z − max, p = exp(w)."""
    w = zc.float() if zc.dtype in (torch.float16, torch.bfloat16) else zc.clone()
    # H is shift-invariant; subtracting the row max avoids the cancellation of lse − Σ p z when
    # both are ~1e4 (float32 would lose every digit of H).
    w.sub_(w.amax(dim=-1, keepdim=True))
    p = torch.exp(w)
    total = p.sum(-1)  # ≥ 1 (the max term is exp(0)) unless the row had NaN/+inf or was all -inf
    if not torch.isfinite(total).all():
        raise _bad_logits()
    # -inf logits have p = 0; clamping them to the dtype's min gives 0 · min = 0 instead of NaN.
    w.clamp_min_(torch.finfo(w.dtype).min)
    expected_w = p.mul_(w).sum(-1) / total
    return (torch.log(total) - expected_w).clamp_min_(0.0)


def _entropy_chunk_autograd(zc: torch.Tensor) -> torch.Tensor:
    """The same value as :func:`_entropy_chunk_inplace`, out of place so that autograd can flow."""
    work = zc.float() if zc.dtype in (torch.float16, torch.bfloat16) else zc
    work = work - work.detach().amax(dim=-1, keepdim=True)
    lse = torch.logsumexp(work, dim=-1, keepdim=True)
    if not torch.isfinite(lse).all():
        raise _bad_logits()
    p = torch.exp(work - lse)
    # Replacing the -inf logit (not the product) keeps the gradient finite: d(p·z)/dp would
    # otherwise be -inf · 0 = NaN.
    safe = torch.where(p > 0, work, torch.zeros((), dtype=work.dtype, device=work.device))
    return (lse.squeeze(-1) - (p * safe).sum(-1)).clamp_min(0.0).to(zc.dtype)


def renyi2_entropy(logits: Any, dim: int = -1) -> torch.Tensor:
    """Rényi-2 (collision) entropy of ``softmax(logits)`` in nats (spec §2).

    Math: ``H₂(π) = −log Σ_a π(a)² = −logsumexp(2 · log_softmax(z))``.

    Args:
        logits: ``[..., A]``. dim: the action axis.

    Returns:
        ``[...]``, in the input's dtype, ≥ 0.
    """
    z, lead = _rows(logits, dim)
    logp = torch.log_softmax(z, dim=-1)
    h2 = -torch.logsumexp(2.0 * logp, dim=-1)
    _check_result(h2)
    return h2.clamp_min(0.0).reshape(lead)


def expected_score_norm_sq(logits: Any, dim: int = -1) -> torch.Tensor:
    """Proposition 1: the expected squared norm of the score of a softmax policy.

    Math: ``E_{a∼π} ‖∇_z log π(a)‖² = 1 − Σ_a π(a)² = 1 − exp(−H₂(π))``
    (since ``∇_z log π(a) = e_a − π``, ``‖e_a − π‖² = 1 − 2π_a + Σπ²``, averaged over ``a ∼ π``).

    Args:
        logits: ``[..., A]``. dim: the action axis.

    Returns:
        ``[...]`` in ``[0, 1)``, in the input's dtype. Low entropy ⇒ small expected gradient.
    """
    z, lead = _rows(logits, dim)
    p = torch.softmax(z, dim=-1)
    out = 1.0 - (p * p).sum(-1)
    _check_result(out)
    return out.reshape(lead)


def step_entropies(entropy: Any, step_ids: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step entropy ``H_{i,t}``: the mean token entropy over the tokens of each step (spec §2).

    Tokens with ``step_ids == -1`` (prompt, observations, padding) count for no step.

    Args:
        entropy: ``[B, L]`` per-token entropy.
        step_ids: ``[B, L]`` int, 0, 1, 2, … per row for the tokens of each step, -1 elsewhere.

    Returns:
        ``(step_entropy [S], row [S], step [S])``, sorted by (row, step).
    """
    ent = as_float_tensor(entropy, "entropy")
    ids = as_int_tensor(step_ids, "step_ids").to(ent.device)
    check_same_shape(ent, "entropy", ids, "step_ids")
    idx = index_steps(ids)
    h = step_sums(ent, idx, float64=True) / idx.host.token_count
    if not np.isfinite(h.sum()):
        raise ValueError("entropy holds NaN/inf on step tokens (or their sum overflows)")
    return to_device(h, ent.device).to(ent.dtype), idx.row, idx.step
