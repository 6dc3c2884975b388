"""Step structure of a batch, for both layouts of spec §1 (vectorised; no loop over tokens or steps).

A :class:`StepIndex` lists the S steps of a batch sorted by (trajectory, step), tells for each step
which step of the same trajectory comes next, and maps the input onto the steps through *runs*:
maximal stretches of equal step id inside a row (concatenated rows) or single rows (step rows).
A row of 4096 tokens with 16 turns has about 33 runs, so after the one pass that finds the runs
everything works on R ≈ 2·S values: on the host, in numpy, whatever the tokens' device.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ._checks import as_int_tensor, check_same_shape
from ._kernels import repeat, runs, segment_reduce, to_host

__all__ = ["StepIndex", "HostSteps", "index_steps", "index_step_rows", "per_step", "step_sums"]


def _view(name: str, doc: str) -> property:
    return property(lambda self: torch.from_numpy(getattr(self.host, name)), doc=doc)


@dataclass(frozen=True)
class HostSteps:
    """The arrays of a :class:`StepIndex`, as numpy arrays on the host (what the core computes with)."""

    row: np.ndarray
    step: np.ndarray
    next_step: np.ndarray
    token_count: np.ndarray
    run_slot: np.ndarray
    run_start: np.ndarray
    run_length: np.ndarray
    step_run: np.ndarray | None = None  # [S] the run of each step, when every step is one run


def per_step(per_run: np.ndarray, host: HostSteps) -> np.ndarray:
    """Values per run ``[..., R]`` summed per step ``[..., S]`` (float64); runs in no step are dropped.

    When every step is one run (as :func:`empg.step_ids_from_delimiters` writes them) this is one
    gather; otherwise one ``bincount`` per leading row.
    """
    if host.step_run is not None:  # (``take``: C-contiguous, 5x faster than ``[..., step_run]`` here)
        return per_run.take(host.step_run, axis=-1).astype(np.float64, copy=False)
    s = host.row.shape[0]
    rows = [np.bincount(host.run_slot, weights=v, minlength=s + 1)[:s] for v in per_run.reshape(-1, per_run.shape[-1])]
    return np.stack(rows).reshape(per_run.shape[:-1] + (s,))


class StepIndex:
    """The steps of a batch, sorted by (trajectory, step), and the runs of input that make them up.

    The arrays are small (S or R values) and live on the host whatever the input's device: each
    attribute below is a CPU tensor (a zero-copy view of ``host``, the numpy arrays).

    Attributes:
        row: ``[S]`` trajectory of each step (the row for concatenated rows, the id for step rows).
        step: ``[S]`` step index inside its trajectory.
        next_step: ``[S]`` position (in this sorted list) of the next step of the same trajectory,
            or -1 for the last step of a trajectory.
        token_count: ``[S]`` number of tokens (or input rows) of each step.
        run_slot: ``[R]`` step position of each run of the input (flattened, in input order), ``S``
            for a run in no step: a table of S + 1 entries is gathered per run without a mask.
        run_start: ``[R]`` position of each run's first token in the flattened input.
        run_length: ``[R]`` tokens in each run (all 1 for step rows); they sum to the input's size.
        shape: the input's shape, ``(B, L)`` or ``(S_in,)``.
        device: the input's device.
        host: the same arrays as numpy arrays (:class:`HostSteps`).
    """

    def __init__(self, host: HostSteps, shape: tuple[int, ...], device: torch.device):
        self.host, self.shape, self.device = host, tuple(shape), torch.device(device)

    row = _view("row", "``[S]`` trajectory of each step.")
    step = _view("step", "``[S]`` step index inside its trajectory.")
    next_step = _view("next_step", "``[S]`` position of the next step of the same trajectory, -1 for none.")
    token_count = _view("token_count", "``[S]`` tokens (or input rows) of each step.")
    run_slot = _view("run_slot", "``[R]`` step position of each run, S for a run in no step.")
    run_start = _view("run_start", "``[R]`` position of each run's first token.")
    run_length = _view("run_length", "``[R]`` tokens in each run.")

    @property
    def num_steps(self) -> int:
        return int(self.host.row.shape[0])

    @property
    def has_next(self) -> torch.Tensor:
        return torch.from_numpy(self.host.next_step >= 0)

    @cached_property
    def token_step(self) -> torch.Tensor:
        """Input-shaped position of each token's (row's) step, -1 for tokens in no step, on the input's device.

        One pass over the tokens, computed on first use.
        """
        slot = np.where(self.host.run_slot < self.num_steps, self.host.run_slot, -1)
        return repeat(slot, self.host.run_length, int(np.prod(self.shape)), self.device).reshape(self.shape)


#: The combined key of runs in no step: sorts after every step.
_NO_STEP = np.iinfo(np.int64).max


def _index_runs(row: np.ndarray, key: np.ndarray, start: np.ndarray, length: np.ndarray, span: int, shape,
                device) -> StepIndex:
    """The :class:`StepIndex` of runs ``(row, key, start, length)``.

    Host arrays, ``0 <= row`` and ``-1 <= key < span - 1``.

    Runs with ``key < 0`` are in no step. The combined key ``row · span + key`` orders the steps;
    when the step runs are already in strictly increasing order (each step one run, as
    :func:`empg.step_ids_from_delimiters` writes them), they are the steps. Otherwise one sort,
    ``np.unique`` (with runs in no step given the largest key, one such entry always appended),
    numbers the distinct (row, key) pairs in sorted order.
    """
    where = (key >= 0).nonzero()[0]  # the runs in a step
    step_row, step = row.take(where), key.take(where)
    combined = step_row * span + step
    if np.logical_and.reduce(combined[1:] > combined[:-1]):
        # The usual case (each step one run, steps in order): the runs in a step are the steps.
        s, step_run = where.shape[0], where
        slot = np.empty(key.shape[0], dtype=np.int64)
        slot.fill(s)
        slot[where] = np.arange(s)
        count = length.take(where)
    else:
        keys = np.full(key.shape[0] + 1, _NO_STEP)
        keys[where] = combined
        sorted_keys, inverse = np.unique(keys, return_inverse=True)
        s, step_run = sorted_keys.shape[0] - 1, None
        slot = inverse[:-1]  # runs in no step get slot s
        step_row, step = np.divmod(sorted_keys[:s], span)
        count = np.bincount(slot, weights=length, minlength=s + 1)[:s].astype(np.int64)
    next_step = np.arange(1, s + 1)  # the next entry, unless it starts another row
    np.copyto(next_step[:-1], -1, where=step_row[1:] != step_row[:-1])
    next_step[-1:] = -1
    return StepIndex(HostSteps(step_row, step, next_step, count, slot, start, length, step_run), shape, device)


def index_steps(step_ids) -> StepIndex:
    """Index the steps of concatenated rows ``step_ids [B, L]`` (-1 = token in no step).

    One pass over the tokens (their runs), then work on the R runs on the host. Host
    synchronisations on a GPU: two (the run count and the copy of the runs), whatever the number
    of steps.
    """
    ids = as_int_tensor(step_ids, "step_ids")
    if ids.ndim != 2:
        raise ValueError(f"step_ids must be 2-D [B, L], got shape {tuple(ids.shape)}")
    b, length = ids.shape
    start, run_length, key = runs(ids.reshape(-1), max(length, 1))
    if key.size and np.minimum.reduce(key) < -1:
        raise ValueError("step_ids must be >= 0 for step tokens and -1 for tokens in no step, got values < -1")
    span = int(np.maximum.reduce(key)) + 2 if key.size else 1
    if span >= _NO_STEP // (b + 1):
        raise ValueError(f"step_ids must be < {_NO_STEP // (b + 1) - 2} (rows x ids must fit in int64), got {span - 2}")
    return _index_runs(start // max(length, 1), key, start, run_length, span, (b, length), ids.device)


def index_step_rows(trajectory, step) -> StepIndex:
    """Index one-row-per-step input: ``trajectory [S]`` ids, ``step [S]`` index, rows in any order.

    Each (trajectory, step) pair must occur once. Trajectory ids and step indices may be any
    integers: they are ranked first, so the combined key cannot overflow.
    """
    traj = as_int_tensor(trajectory, "trajectory")
    stp = as_int_tensor(step, "step")
    if traj.ndim != 1:
        raise ValueError(f"trajectory must be 1-D [S], got shape {tuple(traj.shape)}")
    check_same_shape(traj, "trajectory", stp, "step")
    n = traj.shape[0]
    ids = to_host(torch.stack([traj, stp.to(traj.device)]))  # one copy to the host
    traj_values, traj_rank = np.unique(ids[0], return_inverse=True)
    step_values, step_rank = np.unique(ids[1], return_inverse=True)
    ranked = _index_runs(traj_rank, step_rank, np.arange(n), np.ones(n, dtype=np.int64), step_values.shape[0] + 1, (n,),
                         traj.device)
    h = ranked.host
    if ranked.num_steps < n:  # some (trajectory, step) pair holds two rows
        i = int(np.argmax(h.token_count))
        pair = (int(traj_values[h.row[i]]), int(step_values[h.step[i]]))
        raise ValueError(f"step: (trajectory, step) = {pair} occurs more than once")
    host = HostSteps(traj_values[h.row], step_values[h.step], h.next_step, h.token_count, h.run_slot, h.run_start,
                     h.run_length, h.step_run)
    return StepIndex(host, (n,), traj.device)


def step_sums(values: torch.Tensor, idx: StepIndex, *, float64: bool = False) -> np.ndarray:
    """``[S]`` float64 sums of ``values`` (input-shaped) over the tokens of each step of ``idx``.

    One pass: a sum per run (in the values' dtype, float32 for half types, or accumulated in float64
    with ``float64=True``), then per step in float64 on the host (S values). Runs in no step go to the
    dropped slot S, so their values, even NaN, never reach a step.
    """
    flat = values.reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    return per_step(segment_reduce(flat, idx.host.run_start, float64=float64), idx.host)
