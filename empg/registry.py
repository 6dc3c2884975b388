"""A registry of advantage estimators selected by name, in the spirit of verl's ``register_adv_est``.

An estimator takes an :class:`AdvantageInputs` (outcome rewards, groups, and the step structure
with entropies in either layout of spec §1) and keyword config, and returns advantages in the
layout it was given: ``[S]`` for step rows, ``[N, L]`` for concatenated rows, ``[N]`` otherwise.

Built in: ``grpo``, ``drgrpo``, ``reinforce`` (outcome only) and ``empg`` (outcome + Eq. 7–12; the
``variant`` keyword picks off / scaling / bonus / full), ``empg_scaling``, ``empg_bonus``.

Single pass: the ``empg`` estimators take ``metrics=some_dict`` and fill it with the ``empg/*``
statistics (:meth:`empg.ModulationTerms.stats`) of the same modulation that produced the
advantages, so a trainer never runs the modulation twice. With ``variant="off"`` and a metrics
dict, the full-EMPG terms are computed once, for logging only, and the outcome advantage is
returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .advantages import broadcast_to_steps, grpo_advantages, reinforce_advantages
from .config import EMPGConfig
from .modulation import modulate_advantages, modulate_step_advantages, modulation_terms, step_modulation_terms

__all__ = ["AdvantageInputs", "register_advantage", "get_advantage", "available_advantages", "compute_advantages"]

_REGISTRY: dict[str, Callable[..., torch.Tensor]] = {}


@dataclass
class AdvantageInputs:
    """What an advantage estimator may look at.

    Attributes:
        rewards: ``[N]`` outcome reward of each trajectory.
        group: ``[N]`` int task/prompt id of each trajectory (GRPO groups).
        step_entropy, trajectory, step: step-row layout, ``[S]`` each; ``trajectory`` indexes ``rewards``.
        token_entropy, step_ids: concatenated-rows layout, ``[N, L]`` each.
    """

    rewards: Any
    group: Any
    step_entropy: Any = None
    trajectory: Any = None
    step: Any = None
    token_entropy: Any = None
    step_ids: Any = None

    @property
    def layout(self) -> str:
        if self.step_entropy is not None or self.trajectory is not None:
            if self.trajectory is None or self.step is None:
                raise ValueError("step-row layout needs trajectory and step (and step_entropy for EMPG)")
            return "steps"
        if self.token_entropy is not None or self.step_ids is not None:
            if self.step_ids is None:
                raise ValueError("concatenated-rows layout needs step_ids (and token_entropy for EMPG)")
            return "tokens"
        return "trajectories"


def register_advantage(name: str) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Decorator: register ``fn(inputs: AdvantageInputs, **config) -> Tensor`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")

    def deco(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"an advantage estimator named {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_advantage(name: str) -> Callable[..., torch.Tensor]:
    """The estimator registered under ``name``; ``ValueError`` lists the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown advantage estimator {name!r}; registered: {sorted(_REGISTRY)}") from None


def available_advantages() -> list[str]:
    return sorted(_REGISTRY)


def compute_advantages(name: str, inputs: AdvantageInputs, **config: Any) -> torch.Tensor:
    """Advantages from the estimator registered under ``name``: ``get_advantage(name)(inputs, **config)``.

    Args:
        name: a registered estimator (:func:`available_advantages`).
        inputs: the rewards, groups and step structure (:class:`AdvantageInputs`).
        **config: the estimator's keywords. The ``empg`` estimators take ``variant``, ``outcome``
            (``grpo``, ``dapo``, ``drgrpo`` or ``reinforce``), ``k``, ``k_f``, ``zeta``, ``eps``, the
            outcome's own keywords (``std_normalize``), and ``metrics``: a dict that receives the
            ``empg/*`` statistics of the same modulation pass (see the module docstring).

    Returns:
        Advantages in the layout of ``inputs``: ``[S]`` step rows, ``[N, L]`` concatenated rows, else ``[N]``.
    """
    return get_advantage(name)(inputs, **config)


def _spread(traj_adv: torch.Tensor, inputs: AdvantageInputs) -> torch.Tensor:
    """Put per-trajectory advantages into the layout of ``inputs``."""
    layout = inputs.layout
    if layout == "steps":
        return broadcast_to_steps(traj_adv, inputs.trajectory)
    if layout == "tokens":
        ids = torch.as_tensor(inputs.step_ids)
        if ids.ndim != 2 or ids.shape[0] != traj_adv.shape[0]:
            raise ValueError(f"step_ids must be [N, L] with N = len(rewards) = {traj_adv.shape[0]}, got {tuple(ids.shape)}")
        return traj_adv.unsqueeze(1).expand(ids.shape).clone()
    return traj_adv


@register_advantage("grpo")
def _grpo(inputs: AdvantageInputs, *, std_normalize: bool = True, eps: float = 1e-6, **_: Any) -> torch.Tensor:
    return _spread(grpo_advantages(inputs.rewards, inputs.group, std_normalize=std_normalize, eps=eps), inputs)


@register_advantage("drgrpo")
def _drgrpo(inputs: AdvantageInputs, **_: Any) -> torch.Tensor:
    return _spread(grpo_advantages(inputs.rewards, inputs.group, std_normalize=False), inputs)


@register_advantage("reinforce")
def _reinforce(inputs: AdvantageInputs, **_: Any) -> torch.Tensor:
    return _spread(reinforce_advantages(inputs.rewards), inputs)


def _empg(inputs: AdvantageInputs, variant: str, *, outcome: str = "grpo", k: float = 1.0, k_f: float = 1.0,
          zeta: float = 0.1, eps: float = 1e-8, metrics: dict | None = None, **outcome_kwargs: Any) -> torch.Tensor:
    """Outcome advantage, then Eq. 7–12 in one pass; ``metrics`` (a dict) receives its ``empg/*`` statistics."""
    base = get_advantage("grpo" if outcome == "dapo" else outcome)(inputs, **outcome_kwargs)
    cfg = EMPGConfig(variant=variant, k=k, k_f=k_f, zeta=zeta, eps=eps)
    if not cfg.enabled and metrics is None:
        return base
    # With variant "off" and a metrics dict, the full-EMPG terms are computed once, for logging only.
    kwargs = (cfg if cfg.enabled else EMPGConfig(k=k, k_f=k_f, zeta=zeta, eps=eps)).modulation_kwargs()
    layout = inputs.layout
    if layout == "steps":
        if inputs.step_entropy is None:
            raise ValueError("empg needs step_entropy in the step-row layout")
        args = (base, inputs.step_entropy, inputs.trajectory, inputs.step)
        modulate, terms_only = modulate_step_advantages, step_modulation_terms
    elif layout == "tokens":
        if inputs.token_entropy is None:
            raise ValueError("empg needs token_entropy in the concatenated-rows layout")
        args = (base, inputs.token_entropy, inputs.step_ids)
        modulate, terms_only = modulate_advantages, modulation_terms
    else:
        raise ValueError("empg needs the step structure: pass step_entropy/trajectory/step or token_entropy/step_ids")
    if cfg.enabled:
        out, terms = modulate(*args, return_terms=True, **kwargs)
    else:
        out, terms = base, terms_only(*args, **kwargs)
    if metrics is not None:
        metrics.update(terms.stats("empg"))
        metrics["empg/enabled"] = float(cfg.enabled)
    return out


@register_advantage("empg")
def _empg_full(inputs: AdvantageInputs, *, variant: str = "full", **kw: Any) -> torch.Tensor:
    return _empg(inputs, variant, **kw)


@register_advantage("empg_scaling")
def _empg_scaling(inputs: AdvantageInputs, **kw: Any) -> torch.Tensor:
    kw.pop("variant", None)
    return _empg(inputs, "scaling", **kw)


@register_advantage("empg_bonus")
def _empg_bonus(inputs: AdvantageInputs, **kw: Any) -> torch.Tensor:
    kw.pop("variant", None)
    return _empg(inputs, "bonus", **kw)
