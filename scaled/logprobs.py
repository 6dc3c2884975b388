"""Token log-probs and entropies from final hidden states, without ever holding the full logits.

A causal LM's teacher-forced log-prob of the sampled tokens needs, at every position, the logits
``z = h W^T (+ b)`` over the whole vocabulary: ``[B, L, V]``. At Qwen2.5's V = 151,936 one float32
copy for ``[2, 1024]`` tokens is 1.24 GB, and the plain path (``lm_head`` → ``float()`` →
``log_softmax`` → gather, plus autograd's saved tensors) holds several. :func:`chunked_logprobs`
computes the same numbers chunk by chunk of tokens and, in the backward pass, recomputes each
chunk's logits instead of saving them (the idea of the fused linear-cross-entropy kernels in Liger
and verl), so the extra memory is a few ``[C, V]`` float32 buffers, independent of the sequence
length. :func:`plain_logprobs` is the reference it is tested against.

Math (spec §2, with the sampling temperature T): for token n with hidden state h_n and target x_n,
``z_n = (W h_n + b) / T``, ``logp_n = z_n[x_n] − logsumexp(z_n)``,
``H_n = −Σ_v π_v log π_v`` with ``π = softmax(z_n)``.
Gradients: ``∂logp_n/∂z_n = e_{x_n} − π``, ``∂H_n/∂z_n = −π ⊙ (log π + H_n)``.
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_CHUNK_BYTES", "chunked_logprobs", "plain_logprobs", "chunk_tokens_for"]

#: Work-space budget of one ``[C, V]`` float32 buffer (a chunk uses two or three of them).
DEFAULT_CHUNK_BYTES = 64 * 2**20


def chunk_tokens_for(vocab_size: int, chunk_bytes: int) -> int:
    """Tokens per chunk so that one ``[C, V]`` float32 buffer takes at most ``chunk_bytes`` (>= 1)."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be > 0, got {chunk_bytes}")
    return max(1, int(chunk_bytes // (4 * vocab_size)))


def _chunk_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """``(h W^T + b) / T`` for one chunk in float32 (float64 for float64 weights); the matmul runs in ``w``'s dtype."""
    z = h.to(w.dtype) @ w.t()
    acc = _acc_dtype(w.dtype)
    z = z.to(acc) if z.dtype != acc else z
    if b is not None:
        z.add_(b.to(acc))
    if temperature != 1.0:
        z.div_(temperature)
    return z


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


class _ChunkedLogProbs(torch.autograd.Function):
    """Forward: log-probs and entropies chunk by chunk; backward: recompute each chunk's logits."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature, chunk, compute_dtype):
        n = hidden.shape[0]
        w = weight.to(compute_dtype)
        acc = _acc_dtype(compute_dtype)
        logp = torch.empty(n, dtype=acc, device=hidden.device)
        ent = torch.empty(n, dtype=acc, device=hidden.device)
        lse = torch.empty(n, dtype=acc, device=hidden.device)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            z = _chunk_logits(hidden[lo:hi], w, bias, temperature)
            m = z.amax(-1, keepdim=True)
            t = targets[lo:hi].unsqueeze(-1)
            z_t = z.gather(-1, t).squeeze(-1)
            z.sub_(m)  # w = z − max: stable exp and entropy
            p = torch.exp(z)
            total = p.sum(-1)
            log_total = torch.log(total)
            # H = log Σ e^w − Σ e^w · w / Σ e^w; -inf logits give p = 0 (clamped so that 0 · min = 0).
            z.clamp_min_(torch.finfo(z.dtype).min)
            expected = p.mul_(z).sum(-1) / total
            del p, z
            lse[lo:hi] = m.squeeze(-1) + log_total
            logp[lo:hi] = z_t - lse[lo:hi]
            ent[lo:hi] = (log_total - expected).clamp_min_(0.0)
        if not (torch.isfinite(lse).all() and torch.isfinite(logp).all()):
            raise ValueError("chunked_logprobs: non-finite logits (NaN/+inf, all -inf, or a target with -inf logit)")
        ctx.save_for_backward(hidden, weight, bias, targets, lse, ent)
        ctx.temperature, ctx.chunk, ctx.compute_dtype = temperature, chunk, compute_dtype
        return logp, ent

    @staticmethod
    def backward(ctx, grad_logp, grad_ent):
        hidden, weight, bias, targets, lse, ent = ctx.saved_tensors
        t_inv = 1.0 / ctx.temperature
        need_h, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None and ctx.needs_input_grad[2]
        n = hidden.shape[0]
        w = weight.to(ctx.compute_dtype)
        acc = _acc_dtype(ctx.compute_dtype)
        g_h = torch.empty_like(hidden) if need_h else None
        g_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        g_b = torch.zeros(bias.shape, dtype=acc, device=bias.device) if need_b else None
        if grad_logp is None:
            grad_logp = torch.zeros(n, dtype=acc, device=hidden.device)
        if grad_ent is None:
            grad_ent = torch.zeros(n, dtype=acc, device=hidden.device)
        if not (torch.isfinite(grad_logp).all() and torch.isfinite(grad_ent).all()):
            raise ValueError("chunked_logprobs: non-finite incoming gradient")
        for lo in range(0, n, ctx.chunk):
            hi = min(n, lo + ctx.chunk)
            h = hidden[lo:hi]
            z = _chunk_logits(h, w, bias, ctx.temperature)
            z.sub_(lse[lo:hi].unsqueeze(-1))  # log π
            p = torch.exp(z)
            gl = grad_logp[lo:hi].to(acc).unsqueeze(-1)
            ge = grad_ent[lo:hi].to(acc).unsqueeze(-1)
            # ∂/∂z = gl · (e_x − π) − ge · π ⊙ (log π + H) = −π ⊙ (gl + ge · (log π + H)) + gl · e_x
            z.add_(ent[lo:hi].unsqueeze(-1)).mul_(ge).add_(gl)
            g = z.mul_(p).neg_()
            del p
            # -inf logits (π = 0) give 0 · (-inf) = NaN; the true value is 0. The incoming gradients
            # were checked finite above, so a NaN here can only be that product.
            g.nan_to_num_(nan=0.0)
            g.scatter_add_(-1, targets[lo:hi].unsqueeze(-1), gl)
            if t_inv != 1.0:
                g.mul_(t_inv)  # ∂z/∂logits = 1/T
            if need_h:
                g_h[lo:hi] = (g.to(w.dtype) @ w).to(hidden.dtype)
            if need_w:
                g_w.addmm_(g.t(), h.to(acc))
            if need_b:
                g_b.add_(g.sum(0))
            del g, z
        return (g_h, None if g_w is None else g_w.to(weight.dtype), None if g_b is None else g_b.to(bias.dtype),
                None, None, None, None)


def chunked_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    temperature: float = 1.0,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    compute_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs and entropies of ``softmax((hidden W^T + b) / T)`` at ``targets``, chunk by chunk.

    Math: ``logp = z[x] − logsumexp(z)``, ``H = −Σ softmax(z) log softmax(z)``, ``z = (W h + b) / T``
    (spec §2). Equal to :func:`plain_logprobs`; differentiable in ``hidden``, ``weight`` and ``bias``
    (both outputs), recomputing each chunk's logits in the backward pass.

    Args:
        hidden: ``[..., H]`` final hidden states (after the last norm), any float dtype.
        weight: ``[V, H]`` the output projection (``lm_head.weight``).
        targets: ``[...]`` int64 token ids in ``[0, V)``.
        bias: optional ``[V]``.
        temperature: T > 0.
        chunk_bytes: budget of one ``[C, V]`` float32 buffer (:func:`chunk_tokens_for`); a chunk
            uses about three (two in the forward pass).
        compute_dtype: dtype of the matmuls (default ``weight.dtype``; ``torch.bfloat16`` under
            mixed precision). Softmax, log-probs and entropies are float32 (float64 when
            ``compute_dtype`` is float64, for gradient checks).

    Returns:
        ``(logp [...], entropy [...])``, float32 (float64 for a float64 ``compute_dtype``).
    """
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"hidden [..., H] and targets [...] must agree, got {tuple(hidden.shape)} and {tuple(targets.shape)}")
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"weight must be [V, H] with H = {hidden.shape[-1]}, got {tuple(weight.shape)}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must be [V] = [{weight.shape[0]}], got {tuple(bias.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be an integer tensor, got {targets.dtype}")
    lead = targets.shape
    h = hidden.reshape(-1, hidden.shape[-1])
    t = targets.reshape(-1).long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= weight.shape[0]):
        raise ValueError(f"targets must be in [0, V) = [0, {weight.shape[0]})")
    chunk = chunk_tokens_for(weight.shape[0], chunk_bytes)
    with torch.autocast(device_type=h.device.type, enabled=False):
        logp, ent = _ChunkedLogProbs.apply(h, weight, bias, t, float(temperature), chunk, compute_dtype or weight.dtype)
    return logp.reshape(lead), ent.reshape(lead)


def plain_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                   bias: torch.Tensor | None = None, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for :func:`chunked_logprobs`: full logits, ``log_softmax`` and gather (holds ``[..., V]``)."""
    z = torch.nn.functional.linear(hidden, weight, bias)
    z = z.to(_acc_dtype(z.dtype)) / temperature
    logp_all = torch.log_softmax(z, dim=-1)
    logp = logp_all.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent
