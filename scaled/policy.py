"""A transformers causal LM as a policy: batched sampling with log-probs and entropies, teacher-forced
log-probs for the loss, a frozen reference for the KL term.

Where the numbers come from (both are exposed, and a test checks they agree):

* :meth:`Policy.generate` samples token by token (KV cache, left padding) and records, for every
  generated token, its log-prob and the entropy of the **same logits it was sampled from**
  (``logits / temperature``, float32; entropy by :func:`empg.token_entropy`, chunked).
* :meth:`Policy.token_logprobs` recomputes log-probs and entropies **teacher-forced** (one forward
  pass over prompt + response). The trainer uses this recomputation, as verl does, for ``old_logp``
  and for the entropies EMPG modulates with, so the loss, the ratio and the modulation all see the
  same forward pass; the rollout values are kept for logging and checks.

Reference policy for the k3 KL term: ``reference="copy"`` keeps a frozen copy of the initial model;
``reference="lora"`` wraps the model in a peft LoRA adapter and uses the model with the adapter
disabled as the reference (no second copy in memory); ``reference="none"`` when the KL coefficient
is 0. On CUDA, forwards run under bf16 autocast (``bf16=True``); log-probs and entropies are always
computed in float32. ``backend="vllm"`` is reserved for a vLLM generation backend, which is not
implemented here (vLLM is not installable on CPU machines): it raises a clear error.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

import empg

__all__ = ["Generation", "Policy", "load_policy", "left_pad"]


@dataclass
class Generation:
    """What :meth:`Policy.generate` returns, one entry per prompt.

    Attributes:
        response_ids: generated token ids (the end-of-turn token included when it was produced).
        logprobs: ``[T_i]`` float32 log π(token | context) under ``logits / temperature``.
        entropies: ``[T_i]`` float32 entropy (nats) of the distribution each token was sampled from.
        truncated: True when generation stopped at ``max_new_tokens`` before the end-of-turn token.
    """

    response_ids: list[list[int]] = field(default_factory=list)
    logprobs: list[torch.Tensor] = field(default_factory=list)
    entropies: list[torch.Tensor] = field(default_factory=list)
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


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


class Policy:
    """A causal LM policy with sampling, teacher-forced log-probs/entropies and a reference model.

    Args:
        model: a ``transformers`` causal LM (or a peft model when ``reference="lora"``).
        tokenizer: its tokenizer; ``eos_token_id`` ends a turn, ``pad_token_id`` pads.
        reference: ``copy``, ``lora`` or ``none`` (see the module docstring).
        temperature: sampling temperature; log-probs and entropies are those of ``softmax(z / T)``.
        bf16: bf16 autocast for forwards on CUDA (ignored on CPU).
        gradient_checkpointing: recompute activations in the backward pass (saves memory).
        entropy_chunk_bytes: work-space budget of :func:`empg.token_entropy`.
        backend: ``hf`` (this class's sampler) or ``vllm`` (not implemented: raises).
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
        backend: str = "hf",
    ) -> None:
        if reference not in ("copy", "lora", "none"):
            raise ValueError(f"reference must be 'copy', 'lora' or 'none', got {reference!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if backend == "vllm":
            try:
                import vllm  # noqa: F401
            except ImportError as err:
                raise ImportError(
                    "backend='vllm' needs the vllm package (GPU only: pip install vllm); use backend='hf'"
                ) from err
            raise NotImplementedError("the vLLM generation backend (with weight sync) is not implemented; use backend='hf'")
        if backend != "hf":
            raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("tokenizer must define eos_token_id (end of turn) and pad_token_id")
        self.model = model
        self.tokenizer = tokenizer
        self.reference_mode = reference
        self.temperature = float(temperature)
        self.bf16 = bool(bf16)
        self.entropy_chunk_bytes = int(entropy_chunk_bytes)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        if reference == "lora" and not hasattr(model, "disable_adapter"):
            raise ValueError("reference='lora' needs a peft model (load_policy(..., lora={...}) wraps one)")
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
        """Row-chunked float32 ``log softmax(z/T)[target]`` and entropy; logits ``[B, K, V]``."""
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
    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> Generation:
        """Sample one response per prompt (batched, left padding, KV cache).

        Args:
            prompts: B lists of prompt token ids (chat template already applied, ending with the
                assistant header).
            max_new_tokens: response length limit (paper: 512).
            generator: torch RNG for sampling (on the model's device); None uses the global RNG.
            greedy: take the arg-max token instead of sampling (evaluation).

        Returns:
            :class:`Generation` with each token's log-prob and the entropy of the logits it was
            sampled from.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        was_training = self.model.training
        self.model.eval()
        device = self.device
        ids, mask = left_pad(prompts, self.pad_id, device)
        b = ids.shape[0]
        finished = torch.zeros(b, dtype=torch.bool, device=device)
        toks, logps, ents = [], [], []
        pos = _positions(mask)
        try:
            with self.autocast():
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
            last_pos = pos[:, -1:]
            for _ in range(max_new_tokens):
                z = out.logits[:, -1].float() / self.temperature
                logp_all = torch.log_softmax(z, dim=-1)
                if greedy:
                    tok = z.argmax(-1)
                else:
                    tok = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
                tok = torch.where(finished, torch.full_like(tok, self.pad_id), tok)
                toks.append(tok)
                logps.append(logp_all.gather(-1, tok.unsqueeze(-1)).squeeze(-1))
                ents.append(empg.token_entropy(z, chunk_bytes=self.entropy_chunk_bytes))
                alive = ~finished
                finished = finished | (tok == self.eos_id)
                if bool(finished.all()):
                    break
                mask = torch.cat([mask, alive.long().unsqueeze(-1)], dim=-1)
                last_pos = last_pos + 1
                with self.autocast():
                    out = self.model(
                        input_ids=tok.unsqueeze(-1), attention_mask=mask, position_ids=last_pos,
                        past_key_values=past, use_cache=True,
                    )
                past = out.past_key_values
        finally:
            self.model.train(was_training)
        tok_mat = torch.stack(toks, 1).cpu()
        lp_mat = torch.stack(logps, 1).cpu()
        ent_mat = torch.stack(ents, 1).cpu()
        result = Generation()
        for i in range(b):
            row = tok_mat[i].tolist()
            n = row.index(self.eos_id) + 1 if self.eos_id in row else len(row)
            result.response_ids.append(row[:n])
            result.logprobs.append(lp_mat[i, :n].clone())
            result.entropies.append(ent_mat[i, :n].clone())
            result.truncated.append(self.eos_id not in row)
        return result

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
        the prefix ``x_{<start+j}``; ``entropy[b, j] = H(softmax(z_{start+j-1} / T))``.

        Args:
            input_ids, attention_mask: ``[B, L]`` (padding anywhere the mask is 0).
            start: first target position (>= 1); only the logits that predict positions ``>= start``
                are computed (``logits_to_keep``), which saves memory for step rows.
            with_entropy: also return entropies (computed without gradient).
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
        pos = _positions(attention_mask)
        keep = length - start + 1
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, use_cache=False,
                      logits_to_keep=keep)
        if reference:
            if self.reference_mode == "none":
                raise ValueError("this policy has no reference model (reference='none')")
            with torch.no_grad(), self.autocast():
                if self.reference_mode == "lora":
                    with self.model.disable_adapter():
                        logits = self.model(**kwargs).logits
                else:
                    logits = self.ref_model(**kwargs).logits
        else:
            with self.autocast():
                logits = self.model(**kwargs).logits
        logits = logits[:, :-1]
        return self._logp_and_entropy(logits, input_ids[:, start:], with_entropy)


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

        cfg = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear", **lora}
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **cfg))
    return Policy(model, tokenizer, reference=reference, **policy_kwargs)
