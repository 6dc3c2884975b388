"""Config dataclasses, one per concern. Defaults are the paper's; each field says where it comes from.

The toy and the scaled trainers embed these (the scaled one as OmegaConf structured configs), so
the fields use plain types and ``Optional[...]``, and ``__post_init__`` validates every value:
a bad one is a ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["EMPGConfig", "OutcomeConfig", "LossConfig", "VARIANTS", "ESTIMATORS", "DAPO_CLIP_HIGH"]

#: The four EMPG variants of the paper's ablation (Deep Search table, spec §6).
VARIANTS = ("off", "scaling", "bonus", "full")


@dataclass
class EMPGConfig:
    """Entropy modulation, Eq. 7–12."""

    variant: str = "full"
    """off (baseline), scaling (Eq. 10 only: ζ = 0), bonus (Eq. 11 only: k = 0), or full."""
    k: float = 1.0
    """Scaling sharpness k of Eq. 10 (reference pseudocode default 1.0)."""
    k_f: float = 1.0
    """Bonus sharpness k′ of Eq. 11 (reference pseudocode default 1.0)."""
    zeta: float = 0.1
    """Bonus weight ζ of Eq. 8 (reference pseudocode default 0.1; one public re-implementation used 0.05)."""
    eps: float = 1e-8
    """ε of Eq. 10 and 12 (reference pseudocode)."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("k", "k_f", "zeta"):
            _check_number(self, name, low=0.0)
        _check_number(self, "eps", low=0.0, strict=True)

    @property
    def enabled(self) -> bool:
        return self.variant != "off"

    def modulation_kwargs(self) -> dict[str, float]:
        """``k, k_f, zeta, eps`` for :func:`empg.modulate_advantages`, with the variant applied.

        ``scaling`` sets ζ = 0 (no bonus); ``bonus`` sets k = 0, which makes g = 1/(1+ε) ≈ 1.
        """
        k = 0.0 if self.variant == "bonus" else self.k
        zeta = 0.0 if self.variant == "scaling" else self.zeta
        return {"k": k, "k_f": self.k_f, "zeta": zeta, "eps": self.eps}


@dataclass
class OutcomeConfig:
    """The outcome advantage under the modulation (spec §4), and the one definition of DAPO.

    DAPO here (both trainers and the verl launch) is: the GRPO advantage, **dynamic sampling** (drop
    the groups whose rewards are all equal, then refill with extra rollout rounds of fresh tasks,
    at most ``max_refill_rounds`` of them), **clip-higher** (``LossConfig.clip_high`` resolves to
    0.28) and the token-mean loss (spec §4, DAPO as in the paper's verl-agent baseline).
    """

    estimator: str = "grpo"
    """grpo, dapo (GRPO advantage + dynamic sampling with refill + clip-higher), drgrpo (no std), or reinforce."""
    std_normalize: bool = True
    """Divide by the group's std (GRPO). False gives Dr.GRPO."""
    eps: float = 1e-6
    """Added to the group std (verl's GRPO uses 1e-6)."""
    max_refill_rounds: int = 3
    """DAPO: extra rollout rounds (fresh tasks) to refill the groups dynamic sampling dropped."""

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if not isinstance(self.std_normalize, bool):
            raise ValueError(f"std_normalize must be a bool, got {self.std_normalize!r}")
        if isinstance(self.max_refill_rounds, bool) or not isinstance(self.max_refill_rounds, int) or self.max_refill_rounds < 0:
            raise ValueError(f"max_refill_rounds must be an int >= 0, got {self.max_refill_rounds!r}")
        _check_number(self, "eps", low=0.0)

    @property
    def dynamic_sampling(self) -> bool:
        """DAPO drops (and refills) groups whose rewards are all equal."""
        return self.estimator == "dapo"


#: Outcome estimators of :class:`OutcomeConfig`.
ESTIMATORS = ("grpo", "dapo", "drgrpo", "reinforce")

#: DAPO's ε_high (clip-higher), the default upper clip range under DAPO (spec §4).
DAPO_CLIP_HIGH = 0.28


@dataclass
class LossConfig:
    """The policy loss (spec §5)."""

    kind: str = "clipped"
    """clipped (PPO surrogate) or reinforce."""
    clip_low: float = 0.2
    """ε_low (PPO/DAPO 0.2)."""
    clip_high: Optional[float] = None
    """ε_high; None resolves to 0.28 under DAPO (clip-higher) and to clip_low otherwise (symmetric PPO/GRPO)."""
    dual_clip: Optional[float] = None
    """Dual-clip constant c > 1, or None (off)."""
    agg: str = "token-mean"
    """token-mean (DAPO), seq-mean-token-mean, or seq-mean-token-sum."""
    kl_coef: float = 0.01
    """k3 KL-to-reference coefficient (paper setup: 0.01, low-var KL). 0 disables."""

    def __post_init__(self) -> None:
        if self.kind not in ("clipped", "reinforce"):
            raise ValueError(f"kind must be 'clipped' or 'reinforce', got {self.kind!r}")
        if self.agg not in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
            raise ValueError(f"agg must be token-mean, seq-mean-token-mean or seq-mean-token-sum, got {self.agg!r}")
        _check_number(self, "kl_coef", low=0.0)
        _check_number(self, "clip_low", low=0.0)
        _check_number(self, "clip_high", low=0.0, optional=True)
        _check_number(self, "dual_clip", low=1.0, strict=True, optional=True)

    def resolved_clip_high(self, outcome: Union[OutcomeConfig, str]) -> float:
        """ε_high for the given outcome: ``clip_high`` if set, else 0.28 for DAPO, else ``clip_low``."""
        estimator = outcome.estimator if isinstance(outcome, OutcomeConfig) else str(outcome)
        if self.clip_high is not None:
            return float(self.clip_high)
        return DAPO_CLIP_HIGH if estimator == "dapo" else float(self.clip_low)


def _check_number(cfg: object, name: str, *, low: float, strict: bool = False, optional: bool = False) -> None:
    """``ValueError`` naming the field unless it is a finite number >= low (> low if strict), or None if optional."""
    value = getattr(cfg, name)
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        bound = f"{'>' if strict else '>='} {low:g}"
        bound += " or None" if optional else ""
        raise ValueError(f"{type(cfg).__name__}.{name} must be a finite number {bound}, got {value!r}")
