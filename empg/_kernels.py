"""The per-token passes of the core: four run-length kernels on flat 1-D tensors.

Everything else in :mod:`empg` that touches ``[B, L]`` data goes through these, so the cost of the
step index, the step means and the modulation is a handful of passes over the tokens; all the rest
works on runs (R values) or steps (S values).

Each kernel has two implementations with the same results:

* on CPU tensors, numpy (zero-copy views): its SIMD comparisons, ``flatnonzero``, ``ufunc.reduceat``
  and ``repeat`` are 2–6× faster than the single-threaded torch 2.x CPU kernels for the same jobs
  (``benchmarks/bench_modulation.py`` measures the result);
* on every other device (CUDA, …), torch. None of them reads a value back to the host except
  ``nonzero``, whose output size is data-dependent (one synchronisation per call).

Set :data:`NUMPY_ON_CPU` to False to run the torch versions on CPU (the tests compare the two).
The kernels never track gradients: they index and sum, and the modulation's outputs are constants
of the loss.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["NUMPY_ON_CPU", "equal_positions", "runs", "segment_reduce", "repeat_values", "fill_where_not_"]

#: Use the numpy implementations for CPU tensors (True), or the torch ones everywhere (False).
NUMPY_ON_CPU = True


def _numpy(x: torch.Tensor) -> np.ndarray | None:
    """A zero-copy numpy view of a CPU tensor when the numpy path is on, else None."""
    if NUMPY_ON_CPU and x.device.type == "cpu":
        return x.detach().numpy()
    return None


def equal_positions(x: torch.Tensor, values: list[int]) -> torch.Tensor:
    """Sorted positions ``p`` where ``x[p]`` (``x`` 1-D) equals one of ``values``, int64 (one pass)."""
    a = _numpy(x)
    if a is not None:
        hit = a == values[0]
        for v in values[1:]:
            hit |= a == v
        return torch.from_numpy(np.flatnonzero(hit))
    hit = x == values[0]
    for v in values[1:]:
        hit |= x == v
    return torch.nonzero(hit).squeeze(1)


def runs(x: torch.Tensor, period: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The runs of equal values of ``x`` (1-D); a new run also starts at every multiple of ``period``.

    With ``x`` a flattened ``[B, L]`` tensor and ``period = L``, no run crosses from one row into
    the next. Returns ``(start, length, value)``, ``[R]`` each, in order (empty for an empty ``x``).
    """
    n = x.shape[0]
    a = _numpy(x)
    if a is not None:
        if n == 0:
            start = np.zeros(0, dtype=np.int64)
        else:
            change = a[1:] != a[:-1]
            change[period - 1 :: period] = True  # position p + 1 starts a row
            start = np.concatenate(([0], np.flatnonzero(change) + 1))
        length = np.diff(start, append=n)
        return torch.from_numpy(start), torch.from_numpy(length), torch.from_numpy(a[start])
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return empty, empty, x[:0]
    change = torch.ones(n, dtype=torch.bool, device=x.device)
    change[1:] = x[1:] != x[:-1]
    change[::period] = True
    start = torch.nonzero(change).squeeze(1)
    length = torch.diff(start, append=start.new_full((1,), n))
    return start, length, x[start]


def segment_reduce(values: torch.Tensor, lengths: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Sum, min or max of ``values`` (1-D) over consecutive segments of the given ``lengths`` (summing to its size).

    Returns ``[len(lengths)]``: float input keeps its dtype; integer or bool input gives int64 (numpy)
    or float32 (torch, exact for sums below 2**24). An empty segment gives 0. The segments partition
    ``values``, so a NaN in one segment never reaches another.
    """
    a = _numpy(values)
    if a is not None:
        ufunc = {"sum": np.add, "min": np.minimum, "max": np.maximum}[reduce]
        dtype = a.dtype if a.dtype.kind == "f" else np.int64
        lens = lengths.numpy()
        nonempty = lens > 0
        out = np.zeros(lens.shape, dtype=dtype)
        if a.size:
            # reduceat needs strictly increasing offsets: reduce the non-empty segments only (they
            # tile the input), then leave the empty ones at 0.
            offsets = np.cumsum(lens) - lens
            out[nonempty] = ufunc.reduceat(a, offsets[nonempty], dtype=dtype)
        return torch.from_numpy(out)
    v = values.detach()
    if not v.is_floating_point():
        v = v.float()
    out = torch.segment_reduce(v, reduce, lengths=lengths, unsafe=True)
    return torch.where(lengths > 0, out, torch.zeros((), dtype=out.dtype, device=out.device))


def repeat_values(values: torch.Tensor, lengths: torch.Tensor, total: int) -> torch.Tensor:
    """``values[..., i]`` repeated ``lengths[i]`` times along the last axis: ``[..., total]`` (``total = lengths.sum()``)."""
    a = _numpy(values)
    if a is not None:
        return torch.from_numpy(np.repeat(a, lengths.numpy(), axis=-1))
    return torch.repeat_interleave(values.detach(), lengths, dim=-1, output_size=total)


def fill_where_not_(x: torch.Tensor, keep: torch.Tensor, value: int) -> torch.Tensor:
    """In place: ``x[p] = value`` wherever ``keep[p]`` is False (``x``, ``keep`` of one shape). Returns ``x``."""
    a, k = _numpy(x), _numpy(keep)
    if a is not None and k is not None:
        np.copyto(a, value, where=~k)
        return x
    return x.masked_fill_(~keep, value)
