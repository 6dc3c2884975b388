"""Step structure of a batch, for both layouts of spec §1 (vectorised; no loop over tokens).

A :class:`StepIndex` lists the S steps of a batch sorted by (trajectory, step) and tells, for
each step, which step of the same trajectory comes next. Both public layouts reduce to it, so the
modulation has exactly one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import as_int_tensor, check_same_shape

__all__ = ["StepIndex", "index_steps", "index_step_rows", "step_ids_from_delimiters"]


@dataclass(frozen=True)
class StepIndex:
    """The steps of a batch, sorted by (trajectory, step).

    Attributes:
        row: ``[S]`` trajectory of each step (the row for concatenated rows, the id for step rows).
        step: ``[S]`` step index inside its trajectory.
        next_step: ``[S]`` position (in this sorted list) of the next step of the same trajectory,
            or -1 for the last step of a trajectory.
        token_step: concatenated rows: ``[B, L]`` position of each token's step, -1 for tokens in no
            step. Step rows: ``[S_in]`` position of each input row.
        in_step: bool mask of ``token_step >= 0``.
        token_count: ``[S]`` number of tokens (or input rows) of each step.
    """

    row: torch.Tensor
    step: torch.Tensor
    next_step: torch.Tensor
    token_step: torch.Tensor
    in_step: torch.Tensor
    token_count: torch.Tensor

    @property
    def num_steps(self) -> int:
        return int(self.row.numel())

    @property
    def has_next(self) -> torch.Tensor:
        return self.next_step >= 0

    @property
    def slot(self) -> torch.Tensor:
        """``token_step`` with tokens in no step sent to an extra slot ``S`` (for gathers/bincounts)."""
        return torch.where(self.in_step, self.token_step, torch.full_like(self.token_step, self.num_steps))


def _next_of_sorted(row: torch.Tensor) -> torch.Tensor:
    """For steps sorted by (row, step): the next position when it has the same row, else -1."""
    s = row.numel()
    nxt = torch.full((s,), -1, dtype=torch.long, device=row.device)
    if s > 1:
        same = row[1:] == row[:-1]
        pos = torch.arange(1, s, device=row.device)
        nxt[:-1] = torch.where(same, pos, torch.full_like(pos, -1))
    return nxt


def index_steps(step_ids: torch.Tensor) -> StepIndex:
    """Index the steps of concatenated rows ``step_ids [B, L]`` (-1 = token in no step)."""
    ids = as_int_tensor(step_ids, "step_ids")
    if ids.ndim != 2:
        raise ValueError(f"step_ids must be 2-D [B, L], got shape {tuple(ids.shape)}")
    if ids.numel() and int(ids.min()) < -1:
        raise ValueError("step_ids must be >= 0 for step tokens and -1 for tokens in no step, got values < -1")
    in_step = ids >= 0
    b, _ = ids.shape
    width = int(ids.max()) + 1 if bool(in_step.any()) else 1
    rows = torch.arange(b, device=ids.device).unsqueeze(1)
    key = rows * width + ids.clamp_min(0)
    n_keys = b * width
    if n_keys <= 4 * ids.numel() + 1024:
        # Dense (row, step) keys: one bincount and a cumsum, no sort and no boolean indexing.
        # Tokens in no step go to an extra bin n_keys that is dropped.
        key = torch.where(in_step, key, torch.full_like(key, n_keys))
        counts_all = torch.bincount(key.reshape(-1), minlength=n_keys + 1)[:n_keys]
        present = counts_all > 0
        position = torch.cumsum(present.long(), 0) - 1
        uniq = torch.nonzero(present).squeeze(1)
        counts = counts_all[uniq]
        token_step = torch.where(in_step, position[key.clamp_max(n_keys - 1)], torch.full_like(key, -1))
    else:  # sparse, very large step ids: sort the keys instead
        uniq, inverse, counts = torch.unique(key[in_step], sorted=True, return_inverse=True, return_counts=True)
        token_step = torch.full_like(ids, -1)
        token_step[in_step] = inverse
    row = torch.div(uniq, width, rounding_mode="floor")
    return StepIndex(
        row=row,
        step=uniq - row * width,
        next_step=_next_of_sorted(row),
        token_step=token_step,
        in_step=in_step,
        token_count=counts,
    )


def index_step_rows(trajectory: torch.Tensor, step: torch.Tensor) -> StepIndex:
    """Index one-row-per-step input: ``trajectory [S]`` ids, ``step [S]`` index, rows in any order.

    Each (trajectory, step) pair must occur once.
    """
    traj = as_int_tensor(trajectory, "trajectory")
    stp = as_int_tensor(step, "step")
    if traj.ndim != 1:
        raise ValueError(f"trajectory must be 1-D [S], got shape {tuple(traj.shape)}")
    check_same_shape(traj, "trajectory", stp, "step")
    s = traj.numel()
    if s == 0:
        empty = traj.new_empty(0)
        return StepIndex(empty, empty, empty, empty, empty.bool(), empty)
    # Sort by (trajectory, step) with two stable sorts (no overflow-prone combined key).
    order = torch.argsort(stp, stable=True)
    order = order[torch.argsort(traj[order], stable=True)]
    t_sorted, s_sorted = traj[order], stp[order]
    if s > 1:
        dup = (t_sorted[1:] == t_sorted[:-1]) & (s_sorted[1:] == s_sorted[:-1])
        if dup.any():
            i = int(torch.nonzero(dup)[0, 0])
            raise ValueError(
                f"step: (trajectory, step) = ({int(t_sorted[i])}, {int(s_sorted[i])}) occurs more than once"
            )
    token_step = torch.empty_like(order)
    token_step[order] = torch.arange(s, device=order.device)
    return StepIndex(
        row=t_sorted,
        step=s_sorted,
        next_step=_next_of_sorted(t_sorted),
        token_step=token_step,
        in_step=torch.ones(s, dtype=torch.bool, device=order.device),
        token_count=torch.ones(s, dtype=torch.long, device=order.device),
    )


def _as_sequence(seq, name: str, device) -> torch.Tensor:
    t = as_int_tensor(seq, name) if not isinstance(seq, int) else torch.tensor([seq])
    t = t.reshape(-1).to(device)
    if t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty sequence of token ids")
    return t


def _match_ends(tokens: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` bool: True at position p when ``tokens[:, p-m+1 : p+1] == seq`` (m = len(seq))."""
    b, length = tokens.shape
    m = seq.numel()
    hit = torch.zeros(b, length, dtype=torch.bool, device=tokens.device)
    if m > length:
        return hit
    ok = torch.ones(b, length - m + 1, dtype=torch.bool, device=tokens.device)
    for j in range(m):  # loop over the (short) delimiter, never over tokens
        ok &= tokens[:, j : length - m + 1 + j] == seq[j]
    hit[:, m - 1 :] = ok
    return hit


def _last_before(hit: torch.Tensor, initial: int) -> torch.Tensor:
    """``[B, L]``: the largest position p < t with ``hit[:, p]``, or ``initial`` when none."""
    b, length = hit.shape
    pos = torch.arange(length, device=hit.device).expand(b, length)
    marked = torch.where(hit, pos, torch.full_like(pos, initial))
    shifted = torch.cat([torch.full((b, 1), initial, dtype=pos.dtype, device=hit.device), marked[:, :-1]], 1)
    return torch.cummax(shifted, dim=1).values


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
    """
    tokens = as_int_tensor(token_ids, "token_ids")
    if tokens.ndim != 2:
        raise ValueError(f"token_ids must be 2-D [B, L], got shape {tuple(tokens.shape)}")
    if truncated not in ("keep", "drop"):
        raise ValueError(f"truncated must be 'keep' or 'drop', got {truncated!r}")
    start_seq = _as_sequence(start, "start", tokens.device)
    end_seq = _as_sequence(end, "end", tokens.device)
    short, long_ = sorted((start_seq.tolist(), end_seq.tolist()), key=len)
    if long_[len(long_) - len(short) :] == short:
        # Every match of the longer one would also match the shorter one: one position would both
        # open and close a step. (ChatML's "assistant\n" and "<|im_end|>\n" share only their last
        # token, which is fine: the tokens before it differ.)
        raise ValueError(f"start and end must not be suffixes of one another, got {start_seq.tolist()} and {end_seq.tolist()}")
    valid = torch.ones_like(tokens, dtype=torch.bool)
    if mask is not None:
        m = torch.as_tensor(mask, device=tokens.device)
        check_same_shape(tokens, "token_ids", m, "mask")
        valid = m.bool()
    b, length = tokens.shape
    if length == 0:
        return tokens.clone()
    start_hit = _match_ends(tokens, start_seq)
    end_hit = _match_ends(tokens, end_seq)
    # A delimiter touching padding does not count.
    win_s = _window_valid(valid, start_seq.numel())
    win_e = _window_valid(valid, end_seq.numel())
    start_hit &= win_s
    end_hit &= win_e
    none = -2
    last_start = _last_before(start_hit, -1 if first_step_open else none)
    last_end = _last_before(end_hit, none)
    in_step = (last_start > last_end) & (last_start > none) & valid
    # Tokens of a start sequence that opens a step inside an open step are header, not content.
    in_step &= ~_covered(start_hit, start_seq.numel())
    if truncated == "drop":
        # A step is closed when an end match completes at or after its tokens and before the next
        # header completes (positions of last tokens; L when there is none, so next_end == L, "no
        # end at all", is never closed). An end and a start never complete at the same position.
        next_end = _first_at_or_after(end_hit)
        next_start = _first_at_or_after(start_hit)
        in_step &= next_end < next_start
    # Dense numbering: a token begins a step when its opening header differs from that of the
    # previous step token of the row (not merely the previous token: a masked token inside a step
    # must not split it).
    prev_pos = _last_before(in_step, -1)
    prev_open = torch.gather(last_start, 1, prev_pos.clamp_min(0))
    begins = in_step & ((prev_pos < 0) | (prev_open != last_start))
    ids = torch.cumsum(begins.long(), dim=1) - 1
    return torch.where(in_step, ids, torch.full_like(ids, -1))


def _window_valid(valid: torch.Tensor, m: int) -> torch.Tensor:
    """``[B, L]``: True at p when positions p-m+1..p are all valid."""
    b, length = valid.shape
    out = torch.zeros_like(valid)
    if m > length:
        return out
    ok = torch.ones(b, length - m + 1, dtype=torch.bool, device=valid.device)
    for j in range(m):
        ok &= valid[:, j : length - m + 1 + j]
    out[:, m - 1 :] = ok
    return out


def _covered(hit: torch.Tensor, m: int) -> torch.Tensor:
    """``[B, L]``: True on every token of a matched sequence of length m ending at a hit."""
    out = hit.clone()
    for j in range(1, m):
        out[:, :-j] |= hit[:, j:]
    return out


def _first_at_or_after(hit: torch.Tensor) -> torch.Tensor:
    """``[B, L]``: the smallest position p >= t with ``hit[:, p]``, or L when none."""
    b, length = hit.shape
    pos = torch.arange(length, device=hit.device).expand(b, length)
    marked = torch.where(hit, pos, torch.full_like(pos, length))
    return torch.flip(torch.cummin(torch.flip(marked, [1]), dim=1).values, [1])



def scatter_step_mean(values: torch.Tensor, idx: StepIndex) -> torch.Tensor:
    """``[S]`` float64 mean of ``values [B, L]`` over the tokens of each step of ``idx``.

    Tokens in no step are sent to an extra bin that is dropped (no boolean indexing), so their
    values, even NaN, never reach a step.
    """
    slot = idx.slot
    vals = torch.where(idx.in_step, values.double(), torch.zeros((), dtype=torch.float64, device=values.device))
    sums = torch.bincount(slot.reshape(-1), weights=vals.reshape(-1), minlength=idx.num_steps + 1)[: idx.num_steps]
    return sums / idx.token_count.double()
