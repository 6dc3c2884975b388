"""Sampling backends of :class:`scaled.policy.Policy`: who generates the rollouts' answers.

* ``hf`` (:class:`scaled.sampling.hf.HFSampler`): the policy's own transformers model, token by token.
* ``vllm`` (:class:`scaled.sampling.vllm.VLLMSampler`): a vLLM engine colocated in the process, kept
  in sync with the policy's weights after every update.

Both subclass :class:`Sampler`: ``generate(prompts, *, max_new_tokens, generator, greedy) -> Generation``,
``sync_weights() -> dict`` (after the optimizer steps), ``sleep()`` (before the update; frees engine
memory where supported) and ``close()``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from scaled.policy import Generation, Policy

__all__ = ["BACKENDS", "Sampler", "make_sampler"]

BACKENDS = ("hf", "vllm")


class Sampler:
    """What a sampling backend provides; subclasses implement :meth:`_generate` and the weight hooks."""

    name: str

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        generator: "torch.Generator | None" = None,
        greedy: bool = False,
    ) -> "Generation":
        """Sample one response per prompt.

        Args:
            prompts: B lists of prompt token ids (chat template already applied, ending with the
                assistant header).
            max_new_tokens: response length limit (paper: 512).
            generator: torch RNG for sampling (on the model's device); None uses the global RNG.
            greedy: take the arg-max token instead of sampling (evaluation).

        Returns:
            :class:`scaled.policy.Generation` with each token's log-prob under ``softmax(z / T)`` and
            the entropy of that distribution.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        return self._generate(prompts, max_new_tokens, generator, greedy)

    def _generate(self, prompts, max_new_tokens, generator, greedy) -> "Generation":
        """:meth:`generate` with its arguments checked."""
        raise NotImplementedError

    def sync_weights(self) -> dict[str, float]:
        """Make the sampler use the policy's current weights; returns timing statistics."""
        raise NotImplementedError

    def sleep(self) -> None:
        """Release what can be released before the update (no-op by default)."""

    def close(self) -> None:
        """Release the backend's resources (no-op by default)."""


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
