"""The passes over the tokens: a few kernels between ``[N]`` token tensors and small host arrays.

The core keeps token-sized data (``[B, L]``, flattened to ``[N]``) on its device and touches it only
through these kernels. Everything they return or take besides that is small: positions of
delimiter tokens (K), runs of equal step id (R ≈ 2·S per batch) and per-run values, held as numpy
arrays on the host, where the step bookkeeping and Eq. 7–12 run in float64 (see ``_steps.py``).
A 64 × 4096 batch with 900 steps has 262,144 tokens and about 1,900 runs.

Each kernel has two implementations with the same results: numpy (zero-copy views) for CPU
tensors, whose SIMD comparisons, ``flatnonzero``, ``ufunc.reduceat`` and ``repeat`` are 2–6× faster
than the single-threaded torch 2.x CPU kernels for the same jobs, and torch for every other device
(CUDA, …). Set :data:`NUMPY_ON_CPU` to False to run the torch versions on CPU: the tests run the
core both ways, and count the host synchronisations of the torch path (see
``docs/benchmarks.md``). All the torch path's traffic between the device and the host goes through
:func:`to_host` (a device-to-host copy, or a data-dependent size from ``nonzero``) and
:func:`to_device` (an upload), so that count is a count of calls. No gradient flows through them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "NUMPY_ON_CPU", "to_host", "to_device", "gather", "equal_positions", "runs", "segment_reduce", "minimum",
    "run_sums_and_min", "repeat", "affine_runs", "fill_where_not_",
]

#: Use the numpy implementations for CPU tensors (True), or the torch ones everywhere (False).
NUMPY_ON_CPU = True


def _numpy(x: torch.Tensor) -> np.ndarray | None:
    """A zero-copy numpy view of a CPU tensor when the numpy path is on, else None."""
    if NUMPY_ON_CPU and x.device.type == "cpu":
        return x.detach().numpy()
    return None


def to_host(x: torch.Tensor) -> np.ndarray:
    """A (small) tensor as a numpy array on the host: a view on CPU, one copy (a synchronisation) from a GPU."""
    return x.detach().cpu().numpy()


def to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A (small) host array as a tensor on ``device``: a view on CPU, one upload to a GPU."""
    return torch.from_numpy(a).to(device)


def gather(x: torch.Tensor, index: np.ndarray) -> np.ndarray:
    """``x[index]`` (``x`` 1-D on any device, ``index`` a small host array), on the host."""
    a = _numpy(x)
    if a is not None:
        return a[index]
    return to_host(x[to_device(index, x.device)])


def equal_positions(x: torch.Tensor, values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``p`` where ``x[p]`` (``x`` 1-D) equals one of ``values``, and ``x[p]`` (host arrays).

    One pass.
    """
    a = _numpy(x)
    if a is not None:
        hit = a == values[0]
        for v in values[1:]:
            hit |= a == v
        where = hit.nonzero()[0]
        return where, a.take(where)
    hit = x == values[0]
    for v in values[1:]:
        hit |= x == v
    where = torch.nonzero(hit).squeeze(1)
    both = to_host(torch.stack([where, x[where].long()]))
    return both[0], both[1]


def runs(x: torch.Tensor, period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of equal values of ``x`` (1-D); a new run also starts at every multiple of ``period``.

    With ``x`` a flattened ``[B, L]`` tensor and ``period = L``, no run crosses from one row into
    the next. Returns ``(start, length, value)``, ``[R]`` host arrays, in order. One pass.
    """
    n = x.shape[0]
    a = _numpy(x)
    if a is not None:
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), a[:0]
        change = np.empty(n, dtype=bool)  # change[p]: a run starts at p
        change[0] = True
        np.not_equal(a[1:], a[:-1], out=change[1:])
        change[::period] = True  # every row starts a run
        start = change.nonzero()[0]
        return start, _lengths(start, n), a.take(start)
    change = torch.ones(n, dtype=torch.bool, device=x.device)
    change[1:] = x[1:] != x[:-1]
    change[::period] = True
    start = torch.nonzero(change).squeeze(1)
    start_value = to_host(torch.stack([start, x[start].long()]))
    return start_value[0], _lengths(start_value[0], n), start_value[1]


def _lengths(start: np.ndarray, n: int) -> np.ndarray:
    """The lengths of the segments ``[start[i], start[i + 1])``, the last one ending at ``n``."""
    length = np.empty(start.shape[0], dtype=start.dtype)
    np.subtract(start[1:], start[:-1], out=length[:-1])
    length[-1:] = n - start[-1:]
    return length


def segment_reduce(x: torch.Tensor, starts: np.ndarray, reduce: str = "sum", *, float64: bool = False) -> np.ndarray:
    """Reduce ``x`` (1-D) over the segments ``[starts[i], starts[i + 1])`` (the last one runs to the end). One pass.

    ``starts`` is a host array, strictly increasing from 0, so the segments are non-empty and tile
    ``x``; a NaN in one segment never reaches another. ``reduce``: ``"sum"`` or ``"min"`` (float
    ``x``, result in its dtype; sums accumulated in float64 with ``float64=True``, see
    :func:`_sum_float64`), ``"any"`` or ``"all"`` (bool ``x``, bool result).
    Returns ``[len(starts)]`` on the host.
    """
    a = _numpy(x)
    if a is not None:
        if reduce in ("any", "all"):  # on the bytes: the integer max/min reductions are the fastest
            if starts.size == 0:
                return np.zeros(0, dtype=bool)
            return (np.maximum if reduce == "any" else np.minimum).reduceat(a.view(np.uint8), starts).view(bool)
        if float64 and reduce == "sum":
            return _sum_float64(a, starts)
        ufunc = {"sum": np.add, "min": np.minimum}[reduce]
        return ufunc.reduceat(a, starts) if starts.size else np.zeros(0, dtype=a.dtype)
    v = x.detach().double() if float64 else x.detach() if x.is_floating_point() else x.detach().float()
    offsets = to_device(np.append(starts, x.shape[0]), x.device)
    how = {"sum": "sum", "min": "min", "any": "max", "all": "min"}[reduce]
    out = to_host(torch.segment_reduce(v, how, offsets=offsets, unsafe=True))
    return out.astype(bool) if reduce in ("any", "all") else out


#: Tokens per block of :func:`_sum_float64` (a 1 MiB float64 temporary).
BLOCK = 1 << 17


def _sum_float64(a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(a, starts)`` accumulated in float64, ``a`` 1-D.

    ``reduceat(..., dtype=float64)`` would first make a float64 copy of all of ``a`` (twice its
    size, in fresh memory that the C allocator may map from the OS on every call: hundreds of page
    faults). This casts one block of about :data:`BLOCK` tokens at a time, cut at segment starts.
    """
    n, r = a.shape[0], starts.shape[0]
    if a.dtype == np.float64 or n <= BLOCK:
        return np.add.reduceat(a, starts, dtype=np.float64) if r else np.zeros(0)
    # Block i holds the segments cut[i]..cut[i+1]-1: those that start in [i·BLOCK, (i+1)·BLOCK),
    # the first block beginning at segment 0; a block with no segment start is skipped.
    cut = [0] + starts.searchsorted(range(BLOCK, n, BLOCK)).tolist() + [r]
    edge = np.append(starts, n).take(cut).tolist()  # where block i's tokens begin (and, at i + 1, end)
    out = np.empty(r)
    for i in range(len(cut) - 1):  # a few blocks, never a loop over tokens or segments
        if cut[i] < cut[i + 1]:
            np.add.reduceat(a[edge[i] : edge[i + 1]], starts[cut[i] : cut[i + 1]] - edge[i], dtype=np.float64,
                            out=out[cut[i] : cut[i + 1]])
    return out


def minimum(x: torch.Tensor) -> float:
    """The smallest value of ``x`` (NaN if it holds one), as a Python float. One pass."""
    a = _numpy(x)
    return float(a.min()) if a is not None else float(to_host(x.min()))


def run_sums_and_min(entropy: torch.Tensor, advantages: torch.Tensor, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-segment sums of ``entropy`` and ``advantages`` (1-D, float32/64) and the smallest entropy.

    The segments are ``[starts[i], starts[i + 1])`` as in :func:`segment_reduce` (``starts`` non-empty).
    Returns ``([2, R] float64 sums, min(entropy))``: the entropy is accumulated in float64
    (:func:`_sum_float64`), the advantages in their dtype (float64 on a GPU). One pass over each
    input (the minimum re-reads the entropy); on a GPU one upload (the offsets) and one download (sums
    and minimum together).
    """
    e, a = _numpy(entropy), _numpy(advantages)
    if e is not None and a is not None:
        sums = np.empty((2, starts.shape[0]))
        sums[0], sums[1] = _sum_float64(e, starts), np.add.reduceat(a, starts)
        return sums, float(np.minimum.reduce(e))
    offsets = to_device(np.append(starts, entropy.shape[0]), entropy.device)
    e64, a64 = entropy.detach().double(), advantages.detach().double()
    sums = [torch.segment_reduce(v, "sum", offsets=offsets, unsafe=True) for v in (e64, a64)]  # 1-D, as on every device
    out = to_host(torch.cat(sums + [e64.min().reshape(1)]))
    return out[:-1].reshape(2, -1), float(out[-1])


def repeat(values: np.ndarray, lengths: np.ndarray, total: int, device: torch.device) -> torch.Tensor:
    """``values[i]`` repeated ``lengths[i]`` times, as a ``[total]`` tensor on ``device`` (host arrays in). One pass."""
    if NUMPY_ON_CPU and device.type == "cpu":
        return torch.from_numpy(values.repeat(lengths))
    both = to_device(np.stack([values, lengths]), device)
    return torch.repeat_interleave(both[0], both[1], output_size=total)


def affine_runs(x: torch.Tensor, scale: np.ndarray, shift: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    """``x * scale + shift`` with one (scale, shift) per run: ``[R]`` host arrays in the dtype of ``x``
    (1-D), ``lengths`` the runs' token counts. A new tensor; one pass (two repeats, one fused
    multiply-add in place); on a GPU one upload."""
    if _numpy(x) is not None:
        out = torch.from_numpy(shift.repeat(lengths))
        return out.addcmul_(torch.from_numpy(scale.repeat(lengths)), x.detach())
    # One upload: scale, shift and the lengths (exact in float64) as one [3, R] array.
    per_run = to_device(np.stack([scale, shift, lengths]).astype(np.float64), x.device)
    per_token = torch.repeat_interleave(per_run[:2].to(x.dtype), per_run[2].long(), dim=1, output_size=x.shape[0])
    return per_token[1].addcmul_(per_token[0], x.detach())


def fill_where_not_(x: torch.Tensor, keep: torch.Tensor, value: int) -> torch.Tensor:
    """In place: ``x[p] = value`` wherever ``keep[p]`` is False (``x``, ``keep`` of one shape). One pass."""
    a, k = _numpy(x), _numpy(keep)
    if a is not None and k is not None:
        np.copyto(a, value, where=~k)
        return x
    return x.masked_fill_(~keep, value)
