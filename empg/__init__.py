"""empg: Entropy-Modulated Policy Gradients (Wang et al., arXiv:2509.09265), a reference library.

The core is pure torch: entropies and Proposition 1, step structure, the modulation (Eq. 7–12),
outcome advantages (GRPO/DAPO), losses, and a registry of advantage estimators.
"""

from ._delimiters import step_ids_from_delimiters
from ._steps import StepIndex, index_step_rows, index_steps
from .advantages import broadcast_to_steps, dynamic_sampling_mask, grpo_advantages, reinforce_advantages
from .config import VARIANTS, EMPGConfig, LossConfig, OutcomeConfig
from .entropy import expected_score_norm_sq, renyi2_entropy, step_entropies, token_entropy
from .losses import AGGREGATIONS, aggregate, clipped_policy_loss, kl_k3, kl_penalty, reinforce_loss
from .modulation import (
    ModulationTerms,
    modulate_advantages,
    modulate_step_advantages,
    modulation_terms,
    step_modulation_terms,
)
from .registry import AdvantageInputs, available_advantages, compute_advantages, get_advantage, register_advantage

__version__ = "0.1.0"

__all__ = [
    "AGGREGATIONS",
    "AdvantageInputs",
    "EMPGConfig",
    "LossConfig",
    "ModulationTerms",
    "OutcomeConfig",
    "StepIndex",
    "VARIANTS",
    "aggregate",
    "available_advantages",
    "broadcast_to_steps",
    "clipped_policy_loss",
    "compute_advantages",
    "dynamic_sampling_mask",
    "expected_score_norm_sq",
    "get_advantage",
    "grpo_advantages",
    "index_step_rows",
    "index_steps",
    "kl_k3",
    "kl_penalty",
    "modulate_advantages",
    "modulate_step_advantages",
    "modulation_terms",
    "register_advantage",
    "reinforce_advantages",
    "reinforce_loss",
    "renyi2_entropy",
    "step_entropies",
    "step_ids_from_delimiters",
    "step_modulation_terms",
    "token_entropy",
]
