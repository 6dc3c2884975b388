"""Plain-loop references, written straight from the equations (spec §2–4).

Slow on purpose: Python loops over rows, tokens and steps, float64 arithmetic, no vectorisation.
The tests check that every vectorised function of :mod:`empg` agrees with its reference here, and
``benchmarks/`` measures the vectorised path against them. :func:`step_slicing_modulation_ref` is the
exception: the segmentation and modulation written the way the authors' pseudocode reads (list scans
and step slices, no token loop), the strongest simple loop, kept as the benchmark's speed reference.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = [
    "token_entropy_ref",
    "renyi2_entropy_ref",
    "expected_score_norm_sq_ref",
    "step_ids_from_delimiters_ref",
    "modulate_advantages_ref",
    "modulate_step_advantages_ref",
    "step_slicing_modulation_ref",
    "grpo_advantages_ref",
    "dynamic_sampling_mask_ref",
]


def _probs(z: Sequence[float]) -> list[float]:
    m = max(z)
    e = [math.exp(x - m) if x != -math.inf else 0.0 for x in z]
    s = sum(e)
    return [x / s for x in e]


def token_entropy_ref(logits: torch.Tensor) -> torch.Tensor:
    """h = −Σ π log π over the last axis."""
    flat = logits.double().reshape(-1, logits.shape[-1]).tolist()
    out = [-sum(p * math.log(p) for p in _probs(row) if p > 0) for row in flat]
    return torch.tensor(out, dtype=torch.float64).reshape(logits.shape[:-1])


def renyi2_entropy_ref(logits: torch.Tensor) -> torch.Tensor:
    """H₂ = −log Σ π² over the last axis."""
    flat = logits.double().reshape(-1, logits.shape[-1]).tolist()
    out = [-math.log(sum(p * p for p in _probs(row))) for row in flat]
    return torch.tensor(out, dtype=torch.float64).reshape(logits.shape[:-1])


def expected_score_norm_sq_ref(logits: torch.Tensor) -> torch.Tensor:
    """E_{a∼π} ‖e_a − π‖², summed explicitly over actions a and components j."""
    flat = logits.double().reshape(-1, logits.shape[-1]).tolist()
    out = []
    for row in flat:
        p = _probs(row)
        total = 0.0
        for a, pa in enumerate(p):
            total += pa * sum(((1.0 if j == a else 0.0) - pj) ** 2 for j, pj in enumerate(p))
        out.append(total)
    return torch.tensor(out, dtype=torch.float64).reshape(logits.shape[:-1])


def step_ids_from_delimiters_ref(
    token_ids: torch.Tensor,
    *,
    start: Sequence[int],
    end: Sequence[int],
    mask: torch.Tensor | None = None,
    first_step_open: bool = False,
    truncated: str = "keep",
) -> torch.Tensor:
    """A token-by-token scan of each row with an explicit state machine (see the vectorised docstring)."""
    start, end = list(start), list(end)
    rows = token_ids.tolist()
    valid = mask.bool().tolist() if mask is not None else [[True] * len(r) for r in rows]
    out = []
    for toks, ok in zip(rows, valid):
        n = len(toks)
        ids = [-1] * n
        is_header = [False] * n
        start_ends = set()
        end_ends = set()
        for p in range(n):  # per-row delimiter search, position by position
            if p + 1 >= len(start) and all(ok[p - len(start) + 1 + j] and toks[p - len(start) + 1 + j] == start[j] for j in range(len(start))):
                start_ends.add(p)
            if p + 1 >= len(end) and all(ok[p - len(end) + 1 + j] and toks[p - len(end) + 1 + j] == end[j] for j in range(len(end))):
                end_ends.add(p)
        for p in start_ends:
            for j in range(len(start)):
                is_header[p - j] = True
        open_step = first_step_open
        current = 0 if first_step_open else -1
        step_tokens: dict[int, list[int]] = {}
        closed_steps = set()
        next_id = 1 if first_step_open else 0
        for t in range(n):
            # state before token t: start matches / end matches ending at t-1 update it
            if t - 1 in start_ends:
                open_step = True
                current = next_id
                next_id += 1
            elif t - 1 in end_ends and open_step:
                closed_steps.add(current)
                open_step = False
            if open_step and ok[t] and not is_header[t]:
                step_tokens.setdefault(current, []).append(t)
        if open_step and current in step_tokens:
            pass  # truncated step: never closed
        # An end ending at the last token closes its step too.
        if open_step and (n - 1) in end_ends:
            closed_steps.add(current)
        dense = 0
        for sid in sorted(step_tokens):
            if truncated == "drop" and sid not in closed_steps:
                continue
            for t in step_tokens[sid]:
                ids[t] = dense
            dense += 1
        out.append(ids)
    return torch.tensor(out, dtype=torch.long).reshape(token_ids.shape)


def _step_terms_ref(steps: list[dict], k: float, k_f: float, zeta: float, eps: float):
    """Eq. 8–12 on a list of steps {traj, step, H, A}: returns (g, bonus) per step, same order."""
    hs = [s["H"] for s in steps]
    h_min, h_max = min(hs), max(hs)
    h_norm = [(h - h_min) / (h_max - h_min + eps) for h in hs]  # Eq. 12
    u = [math.exp(-k * x) for x in h_norm]
    u_mean = sum(u) / len(u)
    g = [x / (u_mean + eps) for x in u]  # Eq. 10
    f = [math.exp(-k_f * x) for x in h_norm]  # Eq. 11
    bonus = []
    for s in steps:
        nxt = None  # the same trajectory's step with the smallest index > s["step"]
        for j, o in enumerate(steps):
            if o["traj"] == s["traj"] and o["step"] > s["step"] and (nxt is None or o["step"] < steps[nxt]["step"]):
                nxt = j
        bonus.append(zeta * f[nxt] if nxt is not None else 0.0)  # Eq. 8, second term
    return g, bonus


def modulate_step_advantages_ref(advantages, step_entropy, trajectory, step, *, k=1.0, k_f=1.0, zeta=0.1, eps=1e-8):
    """Eq. 7–12 for one row per step, by loops."""
    steps = [
        {"traj": int(t), "step": int(s), "H": float(h), "A": float(a)}
        for a, h, t, s in zip(advantages.tolist(), step_entropy.tolist(), trajectory.tolist(), step.tolist())
    ]
    if not steps:
        return advantages.double().clone()
    g, bonus = _step_terms_ref(steps, k, k_f, zeta, eps)
    a_prime = [g[i] * s["A"] + bonus[i] for i, s in enumerate(steps)]  # Eq. 8
    mean = sum(a_prime) / len(a_prime)
    return torch.tensor([x - mean for x in a_prime], dtype=torch.float64)  # Eq. 7


def modulate_advantages_ref(advantages, entropy, step_ids, *, k=1.0, k_f=1.0, zeta=0.1, eps=1e-8):
    """Eq. 7–12 at token level for concatenated rows, by loops over rows and tokens."""
    adv, ent, ids = advantages.double().tolist(), entropy.double().tolist(), step_ids.tolist()
    tokens_of: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for b, row in enumerate(ids):
        for t, sid in enumerate(row):
            if sid >= 0:
                tokens_of.setdefault((b, sid), []).append((b, t))
    keys = sorted(tokens_of)
    out = [list(r) for r in adv]
    if not keys:
        return torch.tensor(out, dtype=torch.float64)
    steps = []
    for b, sid in keys:
        toks = tokens_of[(b, sid)]
        steps.append({
            "traj": b,
            "step": sid,
            "H": sum(ent[i][j] for i, j in toks) / len(toks),  # step entropy: mean over the step's tokens
            "A": sum(adv[i][j] for i, j in toks) / len(toks),  # the step's value in the mean: token mean
        })
    g, bonus = _step_terms_ref(steps, k, k_f, zeta, eps)
    mean = sum(g[i] * s["A"] + bonus[i] for i, s in enumerate(steps)) / len(steps)  # mean_S A′
    for i, key in enumerate(keys):
        for b, t in tokens_of[key]:
            out[b][t] = g[i] * adv[b][t] + bonus[i] - mean
    return torch.tensor(out, dtype=torch.float64)


def _find(seq: list[int], pattern: list[int], lo: int, hi: int) -> int:
    """First position p in [lo, hi) with ``seq[p : p + len(pattern)] == pattern``, or -1 (a list scan)."""
    while True:
        try:
            p = seq.index(pattern[0], lo, hi)
        except ValueError:
            return -1
        if seq[p : p + len(pattern)] == pattern and p + len(pattern) <= hi:
            return p
        lo = p + 1


def step_slicing_modulation_ref(token_ids, advantages, entropy, *, start, end, mask=None, k=1.0, k_f=1.0, zeta=0.1,
                                eps=1e-8):
    """Segmentation + Eq. 7–12 as the authors' pseudocode reads: list scans per row, slices per step.

    Per row, the assistant headers (``start``) and the end-of-turn (``end``) after each are found by
    scanning the row's token-id list; a step is the slice after the header up to and including the
    end. Per step, H is the mean of its entropy slice. Eq. 12, 10 and 11 run on the list of step
    entropies; a second loop scales and shifts each step's advantage slice in place (Eq. 8); one
    mean over the steps' first tokens gives mean_S A′, subtracted from every step token (Eq. 7).

    It assumes what the pseudocode assumes: rows padded on the right (``mask`` True then False), no
    header inside an open step, and an advantage constant over each step (an outcome advantage), so
    that a step's first token carries its value. On such rows it equals
    ``modulate_advantages(advantages, entropy, step_ids_from_delimiters(token_ids, ...))`` (tested).
    Returns a new ``[B, L]`` tensor in the dtype of ``advantages``.
    """
    start, end = list(start), list(end)
    out = advantages.clone()
    in_step = torch.zeros(out.shape, dtype=torch.bool)
    lengths = mask.sum(1).tolist() if mask is not None else [token_ids.shape[1]] * token_ids.shape[0]
    steps = []  # (row, first token, one past the last token)
    for b, toks in enumerate(token_ids.tolist()):
        p = 0
        while (h := _find(toks, start, p, lengths[b])) >= 0:
            lo = h + len(start)
            e = _find(toks, end, lo, lengths[b])
            hi = lengths[b] if e < 0 else e + len(end)  # a step cut off by the length limit runs to the row's end
            if hi > lo:
                steps.append((b, lo, hi))
            p = hi
    if not steps:
        return out
    hs = [entropy[b, lo:hi].mean().item() for b, lo, hi in steps]  # step entropy H
    h_min, h_max = min(hs), max(hs)
    h_norm = [(h - h_min) / (h_max - h_min + eps) for h in hs]  # Eq. 12
    u = [math.exp(-k * x) for x in h_norm]
    u_mean = sum(u) / len(u)
    f = [math.exp(-k_f * x) for x in h_norm]  # Eq. 11
    for i, (b, lo, hi) in enumerate(steps):
        g = u[i] / (u_mean + eps)  # Eq. 10
        bonus = zeta * f[i + 1] if i + 1 < len(steps) and steps[i + 1][0] == b else 0.0  # Eq. 8, 2nd term
        out[b, lo:hi].mul_(g).add_(bonus)  # Eq. 8
        in_step[b, lo:hi] = True
    rows, firsts = zip(*((b, lo) for b, lo, _ in steps))
    mean = out[list(rows), list(firsts)].double().mean()  # mean_S A′ over the steps' first tokens
    return torch.where(in_step, out - mean, out)  # Eq. 7


def grpo_advantages_ref(rewards, group, *, std_normalize=True, eps=1e-6):
    r, g = rewards.double().tolist(), group.tolist()
    out = []
    for i in range(len(r)):
        members = [r[j] for j in range(len(r)) if g[j] == g[i]]
        mean = sum(members) / len(members)
        var = sum((x - mean) ** 2 for x in members) / (len(members) - 1) if len(members) > 1 else 0.0
        a = r[i] - mean
        out.append(a / (math.sqrt(var) + eps) if std_normalize else a)
    return torch.tensor(out, dtype=torch.float64)


def dynamic_sampling_mask_ref(rewards, group):
    r, g = rewards.tolist(), group.tolist()
    return torch.tensor([len({r[j] for j in range(len(r)) if g[j] == g[i]}) > 1 for i in range(len(r))], dtype=torch.bool)
