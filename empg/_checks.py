"""Input conversion and validation shared by the core functions.

Every public function of :mod:`empg` accepts tensors (numpy arrays are converted) and raises a
``ValueError`` or ``TypeError`` that names the offending argument. Nothing here returns NaN silently.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "as_float_tensor", "as_int_tensor", "check_finite", "check_same_shape", "check_positive"]


def as_tensor(x: Any, name: str, *, device: torch.device | None = None) -> torch.Tensor:
    """Return ``x`` as a tensor; numpy arrays and Python sequences are converted, tensors pass through."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric tensor or array, got an object array")
        return torch.from_numpy(np.ascontiguousarray(x)).to(device) if device else torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (list, tuple, int, float)):
        try:
            return torch.as_tensor(x, device=device)
        except (TypeError, ValueError) as err:  # ragged lists and the like
            raise TypeError(f"{name} must be a tensor, array or numeric sequence: {err}") from None
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def as_float_tensor(x: Any, name: str) -> torch.Tensor:
    """A floating-point tensor (integers are promoted to the default float dtype)."""
    t = as_tensor(x, name)
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def as_int_tensor(x: Any, name: str) -> torch.Tensor:
    """An int64 tensor. Float input is accepted only when every value is a whole number."""
    t = as_tensor(x, name)
    if t.dtype in _INT_DTYPES:
        return t.long()
    if t.is_floating_point():
        if not torch.isfinite(t).all() or not torch.equal(t, torch.round(t)):
            raise ValueError(f"{name} must hold integer ids, got non-integer values (dtype {t.dtype})")
        return t.long()
    raise ValueError(f"{name} must hold integer ids, got dtype {t.dtype}")


def check_finite(t: torch.Tensor, name: str, where: torch.Tensor | None = None) -> None:
    """Raise ``ValueError`` if ``t`` (restricted to ``where``) holds NaN or inf."""
    bad = ~torch.isfinite(t)
    if where is not None:
        bad &= where  # no boolean indexing: a mask-and keeps this one pass over the data
    if bool(bad.any()):
        n_bad = int(bad.sum())
        raise ValueError(f"{name} holds {n_bad} NaN/inf value(s)" + (" on step tokens" if where is not None else ""))


def check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{b_name} must have the shape of {a_name} {tuple(a.shape)}, got {tuple(b.shape)}")


def check_positive(value: float, name: str, *, allow_zero: bool = True) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value}")
