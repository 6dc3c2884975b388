"""Sampling backends of :class:`scaled.policy.Policy`: who generates the rollouts' answers.

* ``hf`` (:class:`scaled.sampling.hf.HFSampler`): the policy's own transformers model, token by token.
* ``vllm`` (:class:`scaled.sampling.vllm.VLLMSampler`): a vLLM engine colocated in the process, kept
  in sync with the policy's weights after every update.

A sampler has ``generate(prompts, *, max_new_tokens, generator, greedy) -> Generation``,
``sync_weights() -> dict`` (after the optimizer steps), ``sleep()`` (before the update; frees engine
memory where supported) and ``close()``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from scaled.policy import Policy

__all__ = ["BACKENDS", "make_sampler"]

BACKENDS = ("hf", "vllm")


def make_sampler(backend: str, policy: "Policy", options: dict[str, Any] | None = None):
    """Build the sampler named ``backend`` for ``policy`` with keyword ``options``."""
    options = dict(options or {})
    if backend == "hf":
        from scaled.sampling.hf import HFSampler as cls
    elif backend == "vllm":
        from scaled.sampling.vllm import VLLMSampler as cls
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    known = [n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"model.sampler_options: unknown option(s) {unknown} for the {backend!r} sampler; "
                         f"known: {sorted(known)}")
    return cls(policy, **options)
