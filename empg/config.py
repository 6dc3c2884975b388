"""Config dataclasses, one per concern. Defaults are the paper's; each field says where it comes from."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EMPGConfig", "OutcomeConfig", "LossConfig", "VARIANTS"]

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
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps!r}")

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
    """The outcome advantage under the modulation (spec §4)."""

    estimator: str = "grpo"
    """grpo, dapo (GRPO advantage + dynamic sampling + clip-higher), drgrpo (no std), or reinforce."""
    std_normalize: bool = True
    """Divide by the group's std (GRPO). False gives Dr.GRPO."""
    eps: float = 1e-6
    """Added to the group std (verl's GRPO uses 1e-6)."""
    group_size: int = 8
    """Rollouts per task, G (paper setup: group size 8, verl-agent)."""

    def __post_init__(self) -> None:
        if self.estimator not in ("grpo", "dapo", "drgrpo", "reinforce"):
            raise ValueError(f"estimator must be grpo, dapo, drgrpo or reinforce, got {self.estimator!r}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")

    @property
    def dynamic_sampling(self) -> bool:
        """DAPO drops groups whose rewards are all equal."""
        return self.estimator == "dapo"


@dataclass
class LossConfig:
    """The policy loss (spec §5)."""

    kind: str = "clipped"
    """clipped (PPO surrogate) or reinforce."""
    clip_low: float = 0.2
    """ε_low (PPO/DAPO 0.2)."""
    clip_high: float = 0.28
    """ε_high (DAPO clip-higher 0.28; set 0.2 for symmetric PPO/GRPO clipping)."""
    dual_clip: float | None = None
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
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
