"""The EMPG modulation, Eq. 7–12 (spec §3), for both batch layouts.

One implementation (:func:`_step_terms`) works on the S steps of a batch; the token-level entry
point :func:`modulate_advantages` (concatenated rows ``[B, L]``) and the step-level entry point
:func:`modulate_step_advantages` (one row per step ``[S]``) only differ in how they find the steps.

Per batch, over the set S of its steps:

* Eq. 12  ``H̃_s = (H_s − min_S H) / (max_S H − min_S H + ε)``
* Eq. 10  ``g_s = exp(−k H̃_s) / (mean_S exp(−k H̃) + ε)``           (self-calibrating scale, mean ≈ 1)
* Eq. 11  ``f_s = exp(−k_f H̃_s)``                                    (future clarity)
* Eq. 8   ``A′_{i,t} = g_{i,t} · A_{i,t} + ζ · f_{i,t+1}``            (bonus only when step t+1 exists)
* Eq. 7   ``A″_s = A′_s − mean_S A′``                                  (zero-mean, no std division)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ._checks import as_float_tensor, as_int_tensor, check_positive, check_same_shape
from ._kernels import affine_runs, run_sums_and_min, segment_reduce, to_device, to_host
from ._steps import StepIndex, index_step_rows, index_steps, per_step

__all__ = [
    "ModulationTerms",
    "modulate_advantages",
    "modulate_step_advantages",
    "modulation_terms",
    "step_modulation_terms",
]


@dataclass(frozen=True)
class ModulationTerms:
    """Every intermediate of Eq. 7–12, one value per step, steps sorted by (trajectory, step).

    The values are small (S per batch) and are CPU tensors (float64, ids int64) whatever the
    device of the input; :meth:`stats` reads them all with one host read.

    Attributes:
        trajectory, step: ``[S]`` which step each entry is (row of the batch for concatenated rows).
        step_entropy: ``[S]`` H_s, the mean token entropy of the step.
        normalized_entropy: ``[S]`` H̃_s (Eq. 12), in [0, 1).
        scale: ``[S]`` g_s (Eq. 10); its mean over S is 1 (up to ε).
        clarity: ``[S]`` f_s (Eq. 11) of the step itself.
        has_next: ``[S]`` bool, whether the trajectory has a later step.
        bonus: ``[S]`` ζ · f of the next step, 0 for a trajectory's last step (Eq. 8).
        advantage: ``[S]`` incoming advantage A_s (its token mean when it varies inside a step).
        modulated: ``[S]`` A′_s (Eq. 8).
        centred: ``[S]`` A″_s (Eq. 7).
        mean_modulated: scalar mean_S A′, the value Eq. 7 subtracts.
        index: the :class:`~empg.StepIndex` the terms were computed on.
        token_step: (property) concatenated rows ``[B, L]`` (or step rows ``[S]``): position in
            these ``[S]`` lists of each token's (row's) step, -1 for tokens in no step.
    """

    trajectory: torch.Tensor
    step: torch.Tensor
    step_entropy: torch.Tensor
    normalized_entropy: torch.Tensor
    scale: torch.Tensor
    clarity: torch.Tensor
    has_next: torch.Tensor
    bonus: torch.Tensor
    advantage: torch.Tensor
    modulated: torch.Tensor
    centred: torch.Tensor
    mean_modulated: torch.Tensor
    index: StepIndex

    @property
    def num_steps(self) -> int:
        return int(self.step.numel())

    @property
    def token_step(self) -> torch.Tensor:
        return self.index.token_step

    def stats(self, prefix: str = "empg") -> dict[str, float]:
        """Summary statistics for logging, namespaced ``{prefix}/...`` (names in :data:`empg.metrics.METRICS`).

        The mean, min and max over the steps of the step entropy, H̃, g, f, the bonus and the
        advantages in and out, the std of g, and the number of steps.
        """
        if self.num_steps == 0:
            return {f"{prefix}/num_steps": 0.0}
        named = {
            "step_entropy": self.step_entropy,
            "normalized_entropy": self.normalized_entropy,
            "scale": self.scale,
            "clarity": self.clarity,
            "bonus": self.bonus,
            "advantage_in": self.advantage,
            "advantage_out": self.centred,
        }
        table = torch.stack([t.double() for t in named.values()])  # [7, S]
        stats = torch.stack([table.mean(1), table.amin(1), table.amax(1)], 1).reshape(-1)
        values = torch.cat([stats, table[2].std(unbiased=False).reshape(1)]).tolist()  # one host read
        out = {f"{prefix}/num_steps": float(self.num_steps)}
        for i, name in enumerate(named):
            mean, low, high = values[3 * i : 3 * i + 3]
            out[f"{prefix}/{name}_mean"], out[f"{prefix}/{name}_min"], out[f"{prefix}/{name}_max"] = mean, low, high
        out[f"{prefix}/scale_std"] = values[-1]
        return out


def _check_hparams(k: float, k_f: float, zeta: float, eps: float) -> None:
    if type(k) is float and type(k_f) is float and type(zeta) is float and type(eps) is float \
            and 0.0 <= k < _INF and 0.0 <= k_f < _INF and 0.0 <= zeta < _INF and 0.0 < eps < _INF:
        return  # the usual case, in a few comparisons (NaN fails them and gets the message below)
    check_positive(k, "k")
    check_positive(k_f, "k_f")
    check_positive(zeta, "zeta")
    check_positive(eps, "eps", allow_zero=False)


def _step_terms(idx: StepIndex, h: np.ndarray, a: np.ndarray, *, k: float, k_f: float, zeta: float,
                eps: float) -> dict[str, np.ndarray]:
    """Eq. 7–12 on the S steps of ``idx``: ``h`` step entropies, ``a`` step advantages, float64 ``[S]``.

    S values, in numpy float64 on the host (the step structure lives there too). Returns the
    fields of :class:`ModulationTerms` that are not in ``idx``, as numpy arrays.
    """
    s = idx.num_steps
    if s == 0:
        z = np.zeros(0)
        return dict(step_entropy=z, normalized_entropy=z, scale=z, clarity=z, bonus=z, advantage=z, modulated=z,
                    centred=z, mean_modulated=np.float64(0.0))
    h_min = np.minimum.reduce(h)
    h_norm = (h - h_min) / (np.maximum.reduce(h) - h_min + eps)  # Eq. 12
    u = np.exp(-k * h_norm)
    g = u / (np.add.reduce(u) / s + eps)  # Eq. 10
    f = u if k_f == k else np.exp(-k_f * h_norm)  # Eq. 11
    f_ext = np.zeros(s + 1)
    f_ext[:s] = f
    f_next = f_ext[idx.host.next_step]  # next_step = -1 (no next step) reads the 0
    bonus = zeta * f_next  # Eq. 8, second term
    modulated = g * a + bonus  # Eq. 8
    mean = np.add.reduce(modulated) / s
    centred = modulated - mean  # Eq. 7
    return dict(step_entropy=h, normalized_entropy=h_norm, scale=g, clarity=f, bonus=bonus, advantage=a,
                modulated=modulated, centred=centred, mean_modulated=mean)


def _public_terms(idx: StepIndex, terms: dict[str, np.ndarray]) -> ModulationTerms:
    """The :class:`ModulationTerms` (CPU tensors, zero-copy) of :func:`_step_terms`'s arrays."""
    tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in terms.items()}
    return ModulationTerms(trajectory=idx.row, step=idx.step, has_next=idx.has_next, index=idx, **tensors)


def _check_values(sums: np.ndarray, ent_min: float, names: tuple[str, str],
                  negative_on_steps: Callable[[], bool] | None = None) -> None:
    """Spec §3's checks on values: ``sums [2, S]`` of entropy and advantages over each step's tokens
    (float64), ``ent_min`` the minimum entropy over every value.

    A step sum is finite exactly when every token of the step is (or when the sum overflows, which
    the message says): one finiteness check over the step tokens. When some of the values lie
    outside the steps (padding may hold anything) and ``ent_min`` is negative or NaN,
    ``negative_on_steps`` settles whether a step token is negative (one more pass, only then).
    """
    finite = np.isfinite(np.add.reduce(sums, axis=1)).tolist()
    if not finite[0]:
        raise ValueError(f"{names[0]} holds NaN/inf on step tokens (or their sum overflows)")
    if not ent_min >= 0 and (negative_on_steps is None or negative_on_steps()):
        raise ValueError(f"{names[0]} must be >= 0 on step tokens, got a negative value")
    if not finite[1]:
        raise ValueError(f"{names[1]} holds NaN/inf on step tokens (or their sum overflows)")


def _negative_on_steps(ent: torch.Tensor, idx: StepIndex) -> bool:
    """Whether a step token has a negative entropy: the minimum of each run (one pass)."""
    run_min = segment_reduce(ent.reshape(-1), idx.host.run_start, "min")
    return bool(((run_min < 0) & (idx.host.run_slot < idx.num_steps)).any())


_INF = float("inf")
_FLOATS = (torch.float32, torch.float64)


def _token_inputs(advantages: Any, entropy: Any, step_ids: Any):
    if type(advantages) is torch.Tensor and type(entropy) is torch.Tensor and type(step_ids) is torch.Tensor \
            and advantages.dtype in _FLOATS and entropy.dtype in _FLOATS and step_ids.dtype is torch.int64 \
            and advantages.ndim == 2 and advantages.shape == entropy.shape == step_ids.shape \
            and advantages.device == entropy.device == step_ids.device:
        return advantages, entropy, step_ids  # the usual case: nothing to convert
    adv = as_float_tensor(advantages, "advantages")
    ent = as_float_tensor(entropy, "entropy")
    ids = as_int_tensor(step_ids, "step_ids")
    if adv.ndim != 2:
        raise ValueError(f"advantages must be 2-D [B, L], got shape {tuple(adv.shape)}")
    check_same_shape(adv, "advantages", ent, "entropy")
    check_same_shape(adv, "advantages", ids, "step_ids")
    if ent.dtype not in (torch.float32, torch.float64):  # half types: the kernels read float32
        ent = ent.float()
    return adv, ent.to(adv.device), ids.to(adv.device)


def _token_terms(advantages: Any, entropy: Any, step_ids: Any, hparams: dict[str, float]):
    """Validated inputs of the concatenated-rows layout and their Eq. 7–12 terms.

    Passes over the tokens: the runs of ``step_ids``, one sum per run of the entropy and of the
    advantages, the minimum of the entropy.
    """
    _check_hparams(**hparams)
    adv, ent, ids = _token_inputs(advantages, entropy, step_ids)
    idx = index_steps(ids)
    if idx.num_steps == 0:
        return adv, idx, _step_terms(idx, np.zeros(0), np.zeros(0), **hparams)
    # Σ entropy and Σ advantage over each step's tokens. The entropy is accumulated in float64:
    # Eq. 12 divides by the batch's entropy range, which a near-uniform policy makes tiny, and would
    # amplify float32 rounding.
    flat_adv = adv.reshape(-1) if adv.dtype in (torch.float32, torch.float64) else adv.reshape(-1).float()
    run_sums, ent_min = run_sums_and_min(ent.reshape(-1), flat_adv, idx.host.run_start)
    sums = per_step(run_sums, idx.host)  # [2, S]
    _check_values(sums, ent_min, ("entropy", "advantages"), lambda: _negative_on_steps(ent, idx))
    # H_s (the step entropy) and the step's value in the mean of Eq. 7: token means over the step.
    h, a = sums / idx.host.token_count
    return adv, idx, _step_terms(idx, h, a, **hparams)


def modulation_terms(
    advantages: Any,
    entropy: Any,
    step_ids: Any,
    *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1, eps: float = 1e-8,
) -> ModulationTerms:
    """All intermediates of Eq. 7–12 for concatenated rows (see :func:`modulate_advantages`)."""
    _, idx, terms = _token_terms(advantages, entropy, step_ids, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    return _public_terms(idx, terms)


def modulate_advantages(
    advantages: Any,
    entropy: Any,
    step_ids: Any,
    *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1, eps: float = 1e-8,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ModulationTerms]:
    """EMPG modulated advantages at token level, concatenated-rows layout (Eq. 7–12).

    Math: token ``j`` of step ``s`` gets ``g_s · A_j + ζ · f_{next(s)} − mean_S A′`` (Eq. 8, 7), with
    ``g`` (Eq. 10), ``f`` (Eq. 11) computed from the batch-normalised step entropies (Eq. 12).

    Args:
        advantages: ``[B, L]`` incoming (outcome) advantage of each token, e.g. the trajectory's
            GRPO advantage broadcast over its tokens.
        entropy: ``[B, L]`` per-token entropy in nats (:func:`empg.token_entropy`), ≥ 0 on step tokens.
        step_ids: ``[B, L]`` int: 0, 1, 2, … for the tokens of each step of the row, -1 elsewhere
            (:func:`empg.step_ids_from_delimiters`).
        k: scaling sharpness (Eq. 10), paper default 1. k_f: bonus sharpness k′ (Eq. 11), default 1.
        zeta: bonus weight ζ (Eq. 8), default 0.1. eps: ε of Eq. 10 and 12, default 1e-8.
        return_terms: also return the :class:`ModulationTerms` of the same pass (for logging), so a
            caller never runs the modulation twice.

    Returns:
        A new ``[B, L]`` tensor in the dtype of ``advantages`` (and the terms when ``return_terms``).
        Tokens in no step keep their input value (mask them out of the loss). With no steps at all
        the input is returned as a copy. No gradient flows through it (advantages are constants of
        the loss).

    Cost: five passes over the tokens (the runs of ``step_ids``, a sum per run of the entropy, in
    float64, and of the advantages, the entropy's minimum, the multiply-add that writes the output);
    everything else works on the R runs and S steps, on the host. On a GPU a call synchronises with
    the host five times, whatever the number of steps (``docs/benchmarks.md``).
    """
    adv, idx, terms = _token_terms(advantages, entropy, step_ids, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    out = _scatter_tokens(adv, idx, terms)
    return (out, _public_terms(idx, terms)) if return_terms else out


def _scatter_tokens(adv: torch.Tensor, idx: StepIndex, terms: dict[str, np.ndarray]) -> torch.Tensor:
    """Token values ``g_s · A_j + (ζ f_next(s) − mean_S A′)``; tokens in no step keep ``A_j`` (· 1 + 0).

    One pass over the tokens: the (scale, shift) of each step, and (1, 0) for "no step", gathered
    per run (R values) and applied to each run's tokens with one fused multiply-add in the dtype of
    ``adv`` (float32 for half types).
    """
    if idx.num_steps == 0:
        return adv.clone()
    work = adv if adv.dtype in (torch.float32, torch.float64) else adv.float()
    s = idx.num_steps
    # A table of (g_s, ζ f_next(s) − mean_S A′) per step, and (1, 0) in slot S for "no step", read
    # once per run through ``run_slot`` (S for a run in no step).
    table = np.empty((2, s + 1), dtype=np.float64 if work.dtype == torch.float64 else np.float32)
    table[0, :s], table[0, s] = terms["scale"], 1.0
    np.subtract(terms["bonus"], terms["mean_modulated"], out=table[1, :s], casting="same_kind")
    table[1, s] = 0.0
    scale, shift = table.take(idx.host.run_slot, axis=1)
    out = affine_runs(work.reshape(-1), scale, shift, idx.host.run_length)
    return out.reshape(adv.shape).to(adv.dtype)


def _step_inputs(advantages: Any, step_entropy: Any, trajectory: Any, step: Any):
    adv = as_float_tensor(advantages, "advantages")
    ent = as_float_tensor(step_entropy, "step_entropy")
    if adv.ndim != 1:
        raise ValueError(f"advantages must be 1-D [S] (one row per step), got shape {tuple(adv.shape)}")
    check_same_shape(adv, "advantages", ent, "step_entropy")
    traj = as_int_tensor(trajectory, "trajectory")
    stp = as_int_tensor(step, "step")
    check_same_shape(adv, "advantages", traj, "trajectory")
    check_same_shape(adv, "advantages", stp, "step")
    values = to_host(torch.stack([ent.double(), adv.double()]))  # [2, S] on the host, one copy
    if adv.numel():
        _check_values(values, values[0].min(), ("step_entropy", "advantages"))
    return adv, values, index_step_rows(traj, stp)


def _row_terms(advantages: Any, step_entropy: Any, trajectory: Any, step: Any, hparams: dict[str, float]):
    """Validated inputs of the step-row layout and their Eq. 7–12 terms (steps sorted)."""
    _check_hparams(**hparams)
    adv, values, idx = _step_inputs(advantages, step_entropy, trajectory, step)
    # Sorted order of the steps: position p holds input row order[p].
    order = np.empty(idx.num_steps, dtype=np.int64)
    order[idx.host.run_slot] = np.arange(idx.num_steps)
    h, a = values[:, order]
    return adv, idx, _step_terms(idx, h, a, **hparams)


def step_modulation_terms(
    advantages: Any,
    step_entropy: Any,
    trajectory: Any,
    step: Any,
    *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1, eps: float = 1e-8,
) -> ModulationTerms:
    """All intermediates of Eq. 7–12 for one-row-per-step input (see :func:`modulate_step_advantages`)."""
    _, idx, terms = _row_terms(advantages, step_entropy, trajectory, step, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    return _public_terms(idx, terms)


def modulate_step_advantages(
    advantages: Any,
    step_entropy: Any,
    trajectory: Any,
    step: Any,
    *, k: float = 1.0, k_f: float = 1.0, zeta: float = 0.1, eps: float = 1e-8,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ModulationTerms]:
    """EMPG modulated advantages, one row per step (verl-agent layout), Eq. 7–12.

    Math: ``A″_{i,t} = g_{i,t} · A_{i,t} + ζ · f_{i,t+1} − mean_S A′`` (Eq. 8, 7; g Eq. 10, f Eq. 11, H̃ Eq. 12).

    Args:
        advantages: ``[S]`` incoming advantage of each step row.
        step_entropy: ``[S]`` the step's mean token entropy H_{i,t} (≥ 0).
        trajectory: ``[S]`` int trajectory id of each row (any integers).
        step: ``[S]`` int index of the step inside its trajectory. Rows may come in any order; the
            next step of (i, t) is the row of trajectory i with the smallest step index > t.
        k, k_f, zeta, eps, return_terms: as in :func:`modulate_advantages`.

    Returns:
        A new ``[S]`` tensor in the dtype of ``advantages``, in the input row order (and the terms,
        steps sorted by (trajectory, step), when ``return_terms``). On a GPU a call synchronises with
        the host three times (the rows go to the host once, the result comes back once).
    """
    adv, idx, terms = _row_terms(advantages, step_entropy, trajectory, step, dict(k=k, k_f=k_f, zeta=zeta, eps=eps))
    if idx.num_steps == 0:
        out = adv.clone()
    else:  # each input row gets its step's A″
        out = to_device(terms["centred"][idx.host.run_slot], adv.device).to(adv.dtype)
    return (out, _public_terms(idx, terms)) if return_terms else out
