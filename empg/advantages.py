"""Outcome advantages that the modulation sits on (spec §4): GRPO, Dr.GRPO, DAPO's filter, REINFORCE."""

from __future__ import annotations

from typing import Any

import torch

from ._checks import as_float_tensor, as_int_tensor, check_finite, check_positive, check_same_shape

__all__ = ["grpo_advantages", "dynamic_sampling_mask", "reinforce_advantages", "broadcast_to_steps"]


def _group_inputs(rewards: Any, group: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r = as_float_tensor(rewards, "rewards")
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D [N] (one outcome per trajectory), got shape {tuple(r.shape)}")
    g = as_int_tensor(group, "group").to(r.device)
    check_same_shape(r, "rewards", g, "group")
    check_finite(r, "rewards")
    _, inv, counts = torch.unique(g, return_inverse=True, return_counts=True)
    return r, g, inv, counts


def _group_mean_std(r: torch.Tensor, inv: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rd = r.double()
    n_groups = counts.numel()
    mean = torch.zeros(n_groups, dtype=torch.float64, device=r.device).index_add_(0, inv, rd) / counts
    sq = torch.zeros(n_groups, dtype=torch.float64, device=r.device).index_add_(0, inv, (rd - mean[inv]) ** 2)
    # Unbiased (n-1) std, as torch.std and verl's GRPO use; a group of one has std 0 by convention.
    std = torch.where(counts > 1, torch.sqrt(sq / (counts - 1).clamp_min(1)), torch.zeros_like(sq))
    return mean, std


def grpo_advantages(rewards: Any, group: Any, *, std_normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """GRPO outcome advantage (spec §4): ``A_i = (R_i − mean_g R) / (std_g R + eps)``.

    With ``std_normalize=False`` this is Dr.GRPO's ``A_i = R_i − mean_g R``. The std is the unbiased
    (n−1) one; a group of one trajectory gets advantage 0.

    Args:
        rewards: ``[N]`` outcome reward of each trajectory.
        group: ``[N]`` int id of the prompt/task each trajectory was sampled for (G rollouts each).

    Returns:
        ``[N]`` advantages in the dtype of ``rewards``.
    """
    check_positive(eps, "eps")
    r, _, inv, counts = _group_inputs(rewards, group)
    if r.numel() == 0:
        return r.clone()
    mean, std = _group_mean_std(r, inv, counts)
    adv = r.double() - mean[inv]
    if std_normalize:
        adv = adv / (std[inv] + eps)
    return adv.to(r.dtype)


def dynamic_sampling_mask(rewards: Any, group: Any) -> torch.Tensor:
    """DAPO dynamic sampling: keep only groups whose rewards are not all equal (spec §4).

    A group where every rollout got the same reward has zero GRPO advantage and so no gradient.

    Returns:
        ``[N]`` bool, True for trajectories of groups to keep.
    """
    r, _, inv, counts = _group_inputs(rewards, group)
    if r.numel() == 0:
        return torch.zeros(0, dtype=torch.bool, device=r.device)
    n_groups = counts.numel()
    rd = r.double()
    gmax = torch.full((n_groups,), -torch.inf, dtype=torch.float64, device=r.device).scatter_reduce(0, inv, rd, "amax")
    gmin = torch.full((n_groups,), torch.inf, dtype=torch.float64, device=r.device).scatter_reduce(0, inv, rd, "amin")
    return (gmax > gmin)[inv]


def reinforce_advantages(rewards: Any, group: Any | None = None) -> torch.Tensor:
    """REINFORCE with a mean baseline: ``A_i = R_i − mean R`` (over the group when ``group`` is given).

    Returns:
        ``[N]`` advantages in the dtype of ``rewards``.
    """
    r = as_float_tensor(rewards, "rewards")
    if group is None:
        if r.ndim != 1:
            raise ValueError(f"rewards must be 1-D [N], got shape {tuple(r.shape)}")
        check_finite(r, "rewards")
        return (r.double() - r.double().mean()).to(r.dtype) if r.numel() else r.clone()
    return grpo_advantages(r, group, std_normalize=False)


def broadcast_to_steps(trajectory_values: Any, trajectory: Any) -> torch.Tensor:
    """Give each step row its trajectory's value: ``out[s] = trajectory_values[trajectory[s]]``.

    Args:
        trajectory_values: ``[N]``. trajectory: ``[S]`` int in ``[0, N)``.
    """
    v = as_float_tensor(trajectory_values, "trajectory_values")
    t = as_int_tensor(trajectory, "trajectory").to(v.device)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= v.shape[0]):
        raise ValueError(f"trajectory must index into trajectory_values (0..{v.shape[0] - 1})")
    return v[t]
