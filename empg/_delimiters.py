"""Step ids of concatenated multi-turn rows, found from delimiter token sequences (spec §1).

The search works on events, not tokens: one pass finds the candidate positions of each delimiter's
first token, the rest of each match is checked at those few positions, and every step is then an
interval ``[lo, hi]`` computed from the sorted start and end matches of its row. A final pass
writes the ids. Nothing loops over tokens, rows or steps.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import as_int_tensor, check_same_shape
from ._kernels import equal_positions, fill_where_not_, gather, repeat, segment_reduce

__all__ = ["step_ids_from_delimiters"]


def _as_sequence(seq, name: str) -> list[int]:
    if isinstance(seq, (list, tuple)) and all(type(x) is int for x in seq):
        out = list(seq)
    else:
        t = as_int_tensor(seq, name) if not isinstance(seq, int) else torch.tensor([seq])
        out = t.reshape(-1).tolist()
    if not out:
        raise ValueError(f"{name} must be a non-empty sequence of token ids")
    return out


def _matches(flat: torch.Tensor, valid: torch.Tensor | None, seqs: list[list[int]], length: int,
             first: np.ndarray, first_token: np.ndarray) -> list[np.ndarray]:
    """For each sequence of ``seqs``: the sorted flat positions of the LAST token of every match that
    lies inside one row and touches no masked token. ``first`` holds the sorted positions of the
    sequences' first tokens and ``first_token`` the tokens there; the later tokens of the candidates
    (``c + j``, j >= 1) and the mask under all their tokens are read with one gather each, for all the
    sequences together."""
    cands = []  # (``compress``, not boolean indexing: 3x faster on these small arrays)
    for seq in seqs:
        c = first.compress(first_token == seq[0])
        cands.append(c if len(seq) == 1 else c.compress(c % length <= length - len(seq)))  # fits in its row
    later = [c + j for seq, c in zip(seqs, cands) for j in range(1, len(seq))]  # the tokens after the first
    tokens = gather(flat, np.concatenate(later)) if later else None
    # The mask under the first tokens of all candidates, then under the later tokens (same order).
    touched = gather(valid, np.concatenate(cands + later)) if valid is not None else None
    out, first_off, later_off, n_first = [], 0, 0, sum(c.shape[0] for c in cands)
    for seq, c in zip(seqs, cands):  # loops over the (short) delimiters, never over tokens
        k = c.shape[0]
        ok = touched[first_off : first_off + k].copy() if touched is not None else np.ones(k, dtype=bool)
        first_off += k
        for j in range(1, len(seq)):
            ok &= tokens[later_off : later_off + k] == seq[j]
            if touched is not None:
                ok &= touched[n_first + later_off : n_first + later_off + k]
            later_off += k
        out.append(c.compress(ok) + (len(seq) - 1))
    return out


def _reduce_parts(valid: torch.Tensor, cuts: np.ndarray, parts: np.ndarray, reduce: str) -> np.ndarray:
    """``valid`` reduced ("any" or "all") over the consecutive segments ``[cuts[i], cuts[i] + parts[i])``
    (some may be empty: they give False)."""
    nonempty = parts > 0
    if np.logical_and.reduce(nonempty):
        return segment_reduce(valid, cuts[:-1], reduce)
    out = np.zeros(parts.shape[0], dtype=bool)
    out[nonempty] = segment_reduce(valid, cuts[:-1].compress(nonempty), reduce)
    return out


def step_ids_from_delimiters(
    token_ids,
    *,
    start,
    end,
    mask=None,
    first_step_open: bool = False,
    truncated: str = "keep",
) -> torch.Tensor:
    """Step ids for concatenated multi-turn rows (spec §1), found from delimiter token sequences.

    A step is the tokens after a ``start`` sequence (the assistant header), up to and including the
    next ``end`` sequence (end-of-turn). Delimiters are matched on token ids, never by parsing text.
    A ``start`` met inside an open step begins a new step. Steps are numbered 0, 1, 2, … per row;
    every other token gets -1.

    Args:
        token_ids: ``[B, L]`` int token ids.
        start: the header sequence, a list of ints or a 1-D tensor (an int is a 1-token sequence).
        end: the end-of-turn sequence, same forms.
        mask: optional ``[B, L]`` bool, False for padding; masked tokens get -1 and never match
            (a delimiter that touches a masked token does not count). A masked token inside a step
            does not split it: the step's other tokens keep one id.
        first_step_open: True when each row begins inside a step whose header sits in the prompt
            (the first turn of the response has no header).
        truncated: what to do with a step cut off before its ``end`` sequence (the generation hit
            its length limit): ``"keep"`` (default) keeps its tokens as a step, since the policy did
            sample them; ``"drop"`` gives them -1.

    Returns:
        ``[B, L]`` int64 step ids.

    Raises:
        ValueError: ``token_ids`` not 2-D or not integer, an empty ``start``/``end``, ``start`` and
            ``end`` where one is a suffix of the other (one position would open and close a step), a
            ``mask`` of another shape, or an unknown ``truncated``.

    Cost: two passes over the tokens (one scan for the delimiters' first tokens, one write of the
    ids; with ``mask``, one more over the mask, and a fourth only when a kept step holds masked
    tokens) plus host work on the K matches. On a GPU a call synchronises with the host nine times,
    whatever the number of steps (``docs/benchmarks.md``).
    """
    tokens = as_int_tensor(token_ids, "token_ids")
    if tokens.ndim != 2:
        raise ValueError(f"token_ids must be 2-D [B, L], got shape {tuple(tokens.shape)}")
    if truncated not in ("keep", "drop"):
        raise ValueError(f"truncated must be 'keep' or 'drop', got {truncated!r}")
    start_seq, end_seq = _as_sequence(start, "start"), _as_sequence(end, "end")
    short, long_ = sorted((start_seq, end_seq), key=len)
    if long_[len(long_) - len(short) :] == short:
        # Every match of the longer one would also match the shorter one: one position would both
        # open and close a step. (ChatML's "assistant\n" and "<|im_end|>\n" share only their last
        # token, which is fine: the tokens before it differ.)
        raise ValueError(f"start and end must not be suffixes of one another, got {start_seq} and {end_seq}")
    valid = None
    if mask is not None:
        m = torch.as_tensor(mask, device=tokens.device)
        check_same_shape(tokens, "token_ids", m, "mask")
        valid = m.bool().reshape(-1)
    b, length = tokens.shape
    n = b * length
    if n == 0:
        return tokens.clone()
    flat = tokens.reshape(-1)

    # Events: the flat position of the last token of each start (header) and end match, sorted.
    # One pass over the tokens finds every occurrence of either delimiter's first token; the rest
    # is host work on those K positions.
    first, first_token = equal_positions(flat, [start_seq[0], end_seq[0]])
    opens, ends = _matches(flat, valid, [start_seq, end_seq], length, first, first_token)
    open_row = opens // length
    head = opens - (len(start_seq) - 1)  # the header's first token
    if first_step_open:  # a virtual header just before each row (position -1 of the row, no tokens)
        rows = np.arange(b)
        opens, open_row = np.concatenate([rows * length - 1, opens]), np.concatenate([rows, open_row])
        head = np.concatenate([rows * length, head])
        order = np.argsort(open_row, kind="stable")  # the virtual one first in its row
        opens, open_row, head = opens[order], open_row[order], head[order]
    if opens.shape[0] == 0:
        return torch.full_like(tokens, -1)

    # Step i, opened by the header ending at opens[i], holds the tokens lo..hi: after its header, up
    # to and including the first end match, never into the next header of its row, nor past the row
    # (a header in a later row starts after row_last: the minimum ignores it).
    lo = opens + 1
    row_last = open_row * length + (length - 1)
    before_next = np.empty_like(head)  # the token before the next header
    before_next[:-1], before_next[-1] = head[1:] - 1, n
    limit = np.minimum(before_next, row_last)
    # The first end match after the header: searched among all ends, so it may lie in a later row,
    # or be the sentinel n + length; then it is > row_last >= limit and the minimum ignores it.
    first_end = np.concatenate((ends, [n + length]))[ends.searchsorted(opens, side="right")]
    hi_excl = np.maximum(np.minimum(first_end, limit) + 1, lo)  # [lo, hi_excl), empty if hi < lo
    # The intervals are sorted and disjoint: they and the gaps between them partition the n tokens.
    cuts = np.empty(2 * lo.shape[0] + 2, dtype=np.int64)
    cuts[0], cuts[1:-1:2], cuts[2:-1:2], cuts[-1] = 0, lo, hi_excl, n
    parts = cuts[1:] - cuts[:-1]  # gap, step, gap, step, …, gap
    keep = hi_excl > lo
    holes = False  # whether a kept step holds masked tokens
    if valid is not None:  # a step whose tokens are all masked is no step
        all_valid = _reduce_parts(valid, cuts, parts, "all")[1::2]
        if not np.logical_and.reduce(all_valid.compress(keep)):
            keep &= _reduce_parts(valid, cuts, parts, "any")[1::2]
            holes = not np.logical_and.reduce(all_valid.compress(keep))
    if truncated == "drop":  # closed: an end match before the next header of the row (and in the row)
        has_next_open = np.append(open_row[1:] == open_row[:-1], False)
        keep &= (first_end <= row_last) & (~has_next_open | (first_end < np.append(opens[1:], n)))

    # Number the kept steps 0, 1, 2, … per row, then write them (and -1 elsewhere) in one pass.
    kept = np.add.accumulate(keep, dtype=np.int64)  # kept steps up to and including i
    row_first = open_row.searchsorted(open_row)  # index of the first opener of i's row
    labels = np.empty(2 * keep.shape[0] + 1, dtype=np.int64)
    labels.fill(-1)
    labels[1::2] = np.where(keep, kept - (kept - keep)[row_first] - 1, -1)
    ids = repeat(labels, parts, n, tokens.device)
    if holes:
        fill_where_not_(ids, valid, -1)  # only when a kept step holds masked tokens
    return ids.reshape(b, length)
