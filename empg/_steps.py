"""Step structure of a batch, for both layouts of spec §1 (vectorised; no loop over tokens or steps).

A :class:`StepIndex` lists the S steps of a batch sorted by (trajectory, step), tells for each step
which step of the same trajectory comes next, and maps the input onto the steps through *runs*:
maximal stretches of equal step id inside a row (concatenated rows) or single rows (step rows).
A row of 4096 tokens with 16 turns has about 33 runs, so everything after the one pass that finds
the runs works on R ≈ 2·S values, not on B·L tokens. Both public layouts reduce to it, so the
modulation has exactly one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from ._checks import as_int_tensor, check_same_shape
from ._kernels import repeat_values, runs, segment_reduce

__all__ = ["StepIndex", "index_steps", "index_step_rows"]


@dataclass(frozen=True)
class StepIndex:
    """The steps of a batch, sorted by (trajectory, step), and the runs of input that make them up.

    Attributes:
        row: ``[S]`` trajectory of each step (the row for concatenated rows, the id for step rows).
        step: ``[S]`` step index inside its trajectory.
        next_step: ``[S]`` position (in this sorted list) of the next step of the same trajectory,
            or -1 for the last step of a trajectory.
        token_count: ``[S]`` number of tokens (or input rows) of each step.
        run_slot: ``[R]`` step position of each run of the input (flattened, in input order), ``S``
            for a run in no step: gathers from a table of S + 1 entries need no mask.
        run_length: ``[R]`` tokens in each run (all 1 for step rows); they sum to the input's size.
        shape: the input's shape, ``(B, L)`` or ``(S_in,)``.
    """

    row: torch.Tensor
    step: torch.Tensor
    next_step: torch.Tensor
    token_count: torch.Tensor
    run_slot: torch.Tensor
    run_length: torch.Tensor
    shape: tuple[int, ...] = field(default=())

    @property
    def num_steps(self) -> int:
        return int(self.row.shape[0])

    @property
    def has_next(self) -> torch.Tensor:
        return self.next_step >= 0

    @cached_property
    def token_step(self) -> torch.Tensor:
        """Input-shaped position of each token's (row's) step, -1 for tokens in no step (one pass, computed on first use)."""
        slot = torch.where(self.run_slot < self.num_steps, self.run_slot, torch.full_like(self.run_slot, -1))
        total = 1
        for n in self.shape:
            total *= n
        if self.run_slot.shape[0] == total:  # every run is one token (step rows)
            return slot.reshape(self.shape)
        return repeat_values(slot, self.run_length, total).reshape(self.shape)


def _next_of_sorted(row: torch.Tensor) -> torch.Tensor:
    """For steps sorted by (row, step): the next position when it has the same row, else -1."""
    nxt = torch.arange(1, row.shape[0] + 1, device=row.device)
    nxt[-1:] = -1
    nxt[:-1].masked_fill_(row[1:] != row[:-1], -1)
    return nxt


def _index_runs(row: torch.Tensor, key: torch.Tensor, length: torch.Tensor, span, shape) -> StepIndex:
    """The :class:`StepIndex` of runs ``(row, key, length)`` (``[R]`` each, ``0 <= row``, ``-1 <= key < span - 1``).

    Runs with ``key < 0`` are in no step. One sort, ``torch.unique`` of the combined key
    ``row · span + key + 1`` (runs in no step get the largest key, and one such entry is always
    appended), numbers the distinct (row, key) pairs in sorted order; its output size, S + 1, is the
    one data-dependent shape (a host synchronisation on a GPU).
    """
    combined = torch.where(key >= 0, row * span + key + 1, _NO_STEP)
    sorted_keys, inverse = torch.unique(torch.cat([combined, combined.new_full((1,), _NO_STEP)]), return_inverse=True)
    s = sorted_keys.shape[0] - 1
    slot = inverse[:-1]  # runs in no step get slot s
    step_row = torch.div(sorted_keys[:s], span, rounding_mode="floor")
    step = sorted_keys[:s] - step_row * span - 1
    count = length.new_zeros(s + 1).index_add_(0, slot, length)[:s]
    return StepIndex(step_row, step, _next_of_sorted(step_row), count, slot, length, tuple(shape))


#: The combined key of runs in no step: sorts after every step.
_NO_STEP = torch.iinfo(torch.int64).max


def _runs_index(ids: torch.Tensor) -> tuple[StepIndex, torch.Tensor]:
    """Index of ``ids [B, L]`` and the 0-d tensor ``[min id, max id]`` for the caller to check."""
    b, length = ids.shape
    start, run_length, key = (t.to(ids.device) for t in runs(ids.reshape(-1), length))
    bounds = torch.stack(torch.aminmax(key))
    row = torch.div(start, length, rounding_mode="floor")
    return _index_runs(row, key, run_length, bounds[1] + 2, (b, length)), bounds


def _check_id_bounds(smallest: int, largest: int, rows: int) -> None:
    if smallest < -1:
        raise ValueError("step_ids must be >= 0 for step tokens and -1 for tokens in no step, got values < -1")
    if largest >= _NO_STEP // (rows + 1) - 2:
        raise ValueError(f"step_ids must be < {_NO_STEP // (rows + 1) - 2} (rows x ids must fit in int64), got {largest}")


def index_steps(step_ids) -> StepIndex:
    """Index the steps of concatenated rows ``step_ids [B, L]`` (-1 = token in no step).

    One pass over the tokens (their runs), then work on the R runs. Host synchronisations on a GPU:
    three, whatever the number of steps (the run count, the step count, one read of the id bounds).
    """
    ids = as_int_tensor(step_ids, "step_ids")
    if ids.ndim != 2:
        raise ValueError(f"step_ids must be 2-D [B, L], got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        empty = ids.new_zeros(0)
        return StepIndex(empty, empty, empty, empty, empty, empty, tuple(ids.shape))
    idx, bounds = _runs_index(ids)
    _check_id_bounds(*bounds.tolist(), ids.shape[0])
    return idx


def index_step_rows(trajectory, step) -> StepIndex:
    """Index one-row-per-step input: ``trajectory [S]`` ids, ``step [S]`` index, rows in any order.

    Each (trajectory, step) pair must occur once. Trajectory ids and step indices may be any
    integers: they are ranked first (``torch.unique``), so the combined key cannot overflow.
    """
    traj = as_int_tensor(trajectory, "trajectory")
    stp = as_int_tensor(step, "step")
    if traj.ndim != 1:
        raise ValueError(f"trajectory must be 1-D [S], got shape {tuple(traj.shape)}")
    check_same_shape(traj, "trajectory", stp, "step")
    stp = stp.to(traj.device)
    n = traj.shape[0]
    if n == 0:
        empty = traj.new_zeros(0)
        return StepIndex(empty, empty, empty, empty, empty, empty, (0,))
    traj_values, traj_rank = torch.unique(traj, return_inverse=True)
    step_values, step_rank = torch.unique(stp, return_inverse=True)
    ranked = _index_runs(traj_rank, step_rank, torch.ones_like(traj), step_values.shape[0] + 1, (n,))
    if ranked.num_steps < n:  # some (trajectory, step) pair holds two rows
        i = int(torch.argmax(ranked.token_count))
        raise ValueError(
            f"step: (trajectory, step) = ({int(traj_values[ranked.row[i]])}, {int(step_values[ranked.step[i]])}) "
            "occurs more than once"
        )
    return StepIndex(traj_values[ranked.row], step_values[ranked.step], ranked.next_step, ranked.token_count,
                     ranked.run_slot, ranked.run_length, (n,))


def step_sums(values: list[torch.Tensor], idx: StepIndex) -> torch.Tensor:
    """``[C, S]`` float64 sums of each input-shaped tensor of ``values`` over the tokens of each step.

    One pass per tensor: a sum per run in the tensor's dtype (float32 for half types), then per step
    in float64 (S values). Runs in no step go to the dropped slot S, so their values, even NaN, never
    reach a step.
    """
    per_run = []
    for v in values:
        flat = v.reshape(-1)
        if flat.dtype not in (torch.float32, torch.float64):
            flat = flat.float()
        per_run.append(segment_reduce(flat, idx.run_length).to(device=v.device, dtype=torch.float64))
    table = per_run[0].new_zeros(len(values), idx.num_steps + 1)
    return table.index_add_(1, idx.run_slot, torch.stack(per_run))[:, : idx.num_steps]
