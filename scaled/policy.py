"""A transformers causal LM as a policy: sampling (through a backend), teacher-forced log-probs and
entropies for the loss, a frozen reference for the KL term.

Where the numbers come from (both are exposed, and tests check they agree):

* :meth:`Policy.generate` samples through the policy's **sampling backend** (:mod:`scaled.sampling`):
  ``hf`` decodes with this model token by token; ``vllm`` runs a colocated vLLM engine. Either way
  each token's log-prob is that of the distribution it was sampled from, ``softmax(z / T)``.
  After every update the trainer calls :meth:`Policy.sync_sampler_weights` (a no-op for ``hf``).
* :meth:`Policy.token_logprobs` recomputes log-probs and entropies **teacher-forced** (one forward
  pass over prompt + response). The trainer uses this recomputation, as verl does, for ``old_logp``
  and for the entropies EMPG modulates with, so the loss, the ratio and the modulation all see the
  same forward pass; the rollout values are kept for logging and checks
  (``rollout/logprob_recompute_max_abs_diff``: a stale sampler shows up there at once).
  It never holds the full ``[B, L, V]`` logits: the model body gives the final hidden states and
  :func:`scaled.logprobs.chunked_logprobs` applies the output layer chunk by chunk of tokens,
  recomputing each chunk's logits in the backward pass (``logprob_impl="plain"`` keeps the plain
  ``lm_head`` + ``log_softmax`` path, also used automatically for heads that are not a plain
  linear layer or models that rescale/soft-cap their logits).

Reference policy for the k3 KL term: ``reference="copy"`` keeps a frozen copy of the initial model;
``reference="lora"`` wraps the model in a peft LoRA adapter and uses the model with the adapter
disabled as the reference (no second copy in memory); ``reference="none"`` when the KL coefficient
is 0. On CUDA, forwards run under bf16 autocast (``bf16=True``); log-probs and entropies are always
computed in float32.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

import empg
from scaled.logprobs import DEFAULT_CHUNK_BYTES as LOGPROB_CHUNK_BYTES
from scaled.logprobs import chunked_logprobs
from scaled.sampling import BACKENDS, make_sampler
from scaled.sampling.weights import base_model

__all__ = ["Generation", "Policy", "load_policy", "left_pad", "prompt_response_rows"]

#: Config attributes of models whose logits are not ``lm_head(hidden)`` (soft-capping, scaling):
#: such models use the plain log-prob path.
_LOGIT_MODIFIERS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


@dataclass
class Generation:
    """What :meth:`Policy.generate` returns, one entry per prompt.

    Attributes:
        response_ids: generated token ids (the end-of-turn token included when it was produced).
        logprobs: ``[T_i]`` float32 log π(token | context) under ``logits / temperature``.
        entropies: ``[T_i]`` float32 entropy (nats) of each token's sampling distribution, or None
            when the backend does not report them (``vllm`` with ``entropies="none"``).
        truncated: True when generation stopped at ``max_new_tokens`` before the end-of-turn token.
    """

    response_ids: list[list[int]] = field(default_factory=list)
    logprobs: list[torch.Tensor] = field(default_factory=list)
    entropies: list[torch.Tensor] | None = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists to ``[B, L]``; returns ``(input_ids, attention_mask)``."""
    if len(sequences) == 0:
        raise ValueError("sequences must not be empty")
    width = max(len(s) for s in sequences)
    if width == 0:
        raise ValueError("sequences must not all be empty")
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s):
            ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


def prompt_response_rows(
    prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int, device=None
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Teacher-forcing rows ``[left-padded prompt | response | right padding]``, ``[B, P + R]``.

    Returns ``(input_ids, attention_mask, start, response_mask)``: the targets start at column ``start = P``
    (the first response token); ``response_mask [B, R]`` marks the response tokens (R: the longest
    response, at least 1). For :meth:`Policy.token_logprobs` on sampled responses.
    """
    p_ids, p_mask = left_pad(prompts, pad_id)
    width = max(1, max(len(r) for r in responses))
    r_ids = torch.full((len(responses), width), pad_id, dtype=torch.long)
    r_mask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, r in enumerate(responses):
        r_ids[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        r_mask[i, : len(r)] = 1
    ids, mask = torch.cat([p_ids, r_ids], 1), torch.cat([p_mask, r_mask], 1)
    return ids.to(device), mask.to(device), p_ids.shape[1], r_mask.to(device)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


def _chunkable_head(model) -> bool:
    """True when ``model``'s logits are exactly ``lm_head(body(x))`` with a plain linear head."""
    base = base_model(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    body = getattr(base, getattr(base, "base_model_prefix", ""), None)
    cfg = getattr(base, "config", None)
    if type(head) is not torch.nn.Linear or body is None or body is base:
        return False
    return not any(getattr(cfg, name, None) not in (None, 1.0, 0.0) for name in _LOGIT_MODIFIERS)


class Policy:
    """A causal LM policy with a sampling backend, teacher-forced log-probs/entropies and a reference model.

    Args:
        model: a ``transformers`` causal LM (or a peft model when ``reference="lora"``).
        tokenizer: its tokenizer; ``eos_token_id`` ends a turn, ``pad_token_id`` pads.
        reference: ``copy``, ``lora`` or ``none`` (see the module docstring).
        temperature: sampling temperature; log-probs and entropies are those of ``softmax(z / T)``.
        bf16: bf16 autocast for forwards on CUDA (ignored on CPU).
        gradient_checkpointing: recompute activations in the backward pass (saves memory).
        entropy_chunk_bytes: work-space budget of :func:`empg.token_entropy` (``hf`` sampler).
        logprob_chunk_bytes: budget of one ``[C, V]`` float32 buffer of :func:`scaled.logprobs.chunked_logprobs`.
        logprob_impl: ``auto`` (chunked when the head allows it), ``chunked`` or ``plain``.
        backend: sampling backend, ``hf`` or ``vllm`` (:mod:`scaled.sampling`).
        sampler_options: keyword arguments of the backend's sampler (e.g. ``{"sync": "disk"}`` for vLLM).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        reference: str = "copy",
        temperature: float = 1.0,
        bf16: bool = True,
        gradient_checkpointing: bool = False,
        entropy_chunk_bytes: int = empg.entropy.DEFAULT_CHUNK_BYTES,
        logprob_chunk_bytes: int = LOGPROB_CHUNK_BYTES,
        logprob_impl: str = "auto",
        backend: str = "hf",
        sampler_options: dict[str, Any] | None = None,
    ) -> None:
        if reference not in ("copy", "lora", "none"):
            raise ValueError(f"reference must be 'copy', 'lora' or 'none', got {reference!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if logprob_impl not in ("auto", "chunked", "plain"):
            raise ValueError(f"logprob_impl must be 'auto', 'chunked' or 'plain', got {logprob_impl!r}")
        if not isinstance(logprob_chunk_bytes, int) or logprob_chunk_bytes <= 0:
            raise ValueError(f"logprob_chunk_bytes must be an int > 0, got {logprob_chunk_bytes!r}")
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("tokenizer must define eos_token_id (end of turn) and pad_token_id")
        self.model = model
        self.tokenizer = tokenizer
        self.reference_mode = reference
        self.temperature = float(temperature)
        self.bf16 = bool(bf16)
        self.entropy_chunk_bytes = int(entropy_chunk_bytes)
        self.logprob_chunk_bytes = int(logprob_chunk_bytes)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        if reference == "lora" and not hasattr(model, "disable_adapter"):
            raise ValueError("reference='lora' needs a peft model (load_policy(..., lora={...}) wraps one)")
        chunkable = _chunkable_head(model)
        if logprob_impl == "chunked" and not chunkable:
            raise ValueError("logprob_impl='chunked' needs logits = lm_head(hidden) with a plain nn.Linear head "
                             "(no soft-capping or logit scaling); use 'auto' or 'plain'")
        self.logprob_impl = "chunked" if (logprob_impl != "plain" and chunkable) else "plain"
        self.ref_model = None
        if reference == "copy":
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        if gradient_checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(model, "config"):
                model.config.use_cache = False
        self.backend = backend
        self.sampler = make_sampler(backend, self, sampler_options)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def autocast(self):
        """bf16 autocast on CUDA when enabled, else a no-op context."""
        if self.bf16 and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _logp_and_entropy(self, logits: torch.Tensor, targets: torch.Tensor, with_entropy: bool):
        """Plain path: row-chunked float32 ``log softmax(z/T)[target]`` and entropy; logits ``[B, K, V]``."""
        logps, ents = [], []
        for b in range(logits.shape[0]):
            z = logits[b].float() / self.temperature
            lse = torch.logsumexp(z, dim=-1)
            logps.append(z.gather(-1, targets[b].unsqueeze(-1)).squeeze(-1) - lse)
            if with_entropy:
                with torch.no_grad():
                    ents.append(empg.token_entropy(z.detach(), chunk_bytes=self.entropy_chunk_bytes))
        return torch.stack(logps), (torch.stack(ents) if with_entropy else None)

    # ------------------------------------------------------------------ sampling
    def generate(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
                 generator: torch.Generator | None = None, greedy: bool = False) -> Generation:
        """Sample one response per prompt with the policy's backend (``hf``: batched, left padding, KV cache).

        The arguments and the result are those of :meth:`scaled.sampling.Sampler.generate`: each token's
        log-prob under ``softmax(z / T)`` and the entropy of that distribution.
        """
        return self.sampler.generate(prompts, max_new_tokens=max_new_tokens, generator=generator, greedy=greedy)

    def sync_sampler_weights(self) -> dict[str, float]:
        """Make the sampler use the current weights (call after each iteration's optimizer steps).

        A no-op for ``hf``; for ``vllm`` the (LoRA-merged) weights are loaded into the engine and its
        prefix cache is reset. Returns timing statistics (``{"seconds": ...}``; empty for ``hf``).
        """
        return self.sampler.sync_weights()

    def sleep_sampler(self) -> None:
        """Release the sampler's accelerator memory before the update (vLLM sleep mode; else a no-op)."""
        self.sampler.sleep()

    def close(self) -> None:
        """Shut the sampler down (the vLLM engine and its temporary files)."""
        self.sampler.close()

    # ------------------------------------------------------------------ teacher forcing
    def token_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        start: int = 1,
        with_entropy: bool = False,
        reference: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced log-probs (and entropies) of the tokens at positions ``start … L-1``.

        Math: ``logp[b, j] = log softmax(z_{start+j-1} / T)[x_{start+j}]``, with z the logits after
        the prefix ``x_{<start+j}``; ``entropy[b, j] = H(softmax(z_{start+j-1} / T))`` (spec §2).
        The chunked path (default) never materialises ``[B, L - start, V]`` logits.

        Args:
            input_ids, attention_mask: ``[B, L]`` (padding anywhere the mask is 0).
            start: first target position (>= 1); only the hidden states that predict positions
                ``>= start`` go through the output layer.
            with_entropy: also return entropies (detached: no gradient flows through them).
            reference: use the reference policy (no gradient).

        Returns:
            ``(logp [B, L - start], entropy [B, L - start] or None)``, float32.
        """
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise ValueError(f"input_ids and attention_mask must be [B, L] of equal shape, got "
                             f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
        length = input_ids.shape[1]
        if not 1 <= start < length:
            raise ValueError(f"start must be in [1, L-1] = [1, {length - 1}], got {start}")
        if reference and self.reference_mode == "none":
            raise ValueError("this policy has no reference model (reference='none')")
        pos = _positions(attention_mask)
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, use_cache=False)
        model = self.model
        if reference and self.reference_mode == "copy":
            model = self.ref_model
        grad = contextlib.nullcontext() if not reference else torch.no_grad()
        adapter_off = self.model.disable_adapter() if (reference and self.reference_mode == "lora") else contextlib.nullcontext()
        targets = input_ids[:, start:]
        with grad, adapter_off:
            if self.logprob_impl == "plain":
                with self.autocast():
                    logits = model(**kwargs, logits_to_keep=length - start + 1).logits
                return self._logp_and_entropy(logits[:, :-1], targets, with_entropy)
            base = base_model(model)
            body = getattr(base, base.base_model_prefix)
            head = base.get_output_embeddings()
            with self.autocast():
                hidden = body(**kwargs).last_hidden_state[:, start - 1 : -1]
            compute_dtype = torch.bfloat16 if (self.bf16 and hidden.device.type == "cuda") else head.weight.dtype
            logp, ent = chunked_logprobs(hidden, head.weight, targets, bias=head.bias, temperature=self.temperature,
                                         chunk_bytes=self.logprob_chunk_bytes, compute_dtype=compute_dtype)
        return logp, (ent.detach() if with_entropy else None)


def load_policy(
    path: str,
    *,
    reference: str = "copy",
    lora: dict[str, Any] | None = None,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
    **policy_kwargs: Any,
) -> Policy:
    """Load model + tokenizer from ``path`` (a local folder or a hub name) and wrap them in a :class:`Policy`.

    Args:
        path: ``from_pretrained`` name or folder.
        reference: ``copy`` / ``lora`` / ``none``; ``lora`` requires ``lora``.
        lora: peft ``LoraConfig`` keyword arguments (e.g. ``{"r": 16, "lora_alpha": 32}``), or None.
        dtype: parameter dtype (``float32`` keeps fp32 master weights; bf16 autocast still applies on CUDA).
        device: where to put the model.
        policy_kwargs: further :class:`Policy` arguments (temperature, bf16, gradient_checkpointing,
            backend (``hf``/``vllm``), sampler_options, logprob_impl, …).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {dtype!r}")
    if reference == "lora" and not lora:
        raise ValueError("reference='lora' needs lora settings (e.g. lora={'r': 16})")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtypes[dtype]).to(device)
    if lora:
        from peft import LoraConfig, get_peft_model

        from scaled.config import lora_settings

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora_settings(lora)))
    return Policy(model, tokenizer, reference=reference, **policy_kwargs)
