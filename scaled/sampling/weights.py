"""The policy's weights in the layout an inference engine loads: transformers names, LoRA merged.

A peft LoRA policy trains ``W + (α/r)·B A`` with W frozen; an engine that samples for it needs the
merged matrix under the base model's parameter name. :func:`export_weights` builds that state dict
without touching the training model (no ``merge_and_unload``): each LoRA layer's ``base_layer.weight``
is renamed to ``weight`` and gets ``get_delta_weight`` of its active adapters added, the adapter
tensors are dropped. Plain transformers models are returned as they are (detached, no copy). Tied
input/output embeddings are kept under both names (``lm_head.weight`` included), so an engine never
has to resolve the tie itself.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import torch

__all__ = ["base_model", "export_weights", "write_safetensors"]


def base_model(model):
    """The transformers model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def export_weights(model) -> dict[str, torch.Tensor]:
    """HF-format ``{name: tensor}`` of ``model`` with LoRA adapters merged (detached).

    Args:
        model: a transformers causal LM, or a peft model wrapping one (vanilla LoRA adapters).

    Returns:
        Tensors on the model's device; unmerged parameters are the live tensors (no copy), merged
        ones are new tensors ``W + ΔW``.

    Raises:
        ValueError: a LoRA variant (DoRA, …), a LoRA bias, or ``modules_to_save`` wrappers, which
            this exporter does not merge.
    """
    base = base_model(model)
    state = {k: v.detach() for k, v in base.state_dict().items()}
    if base is model:
        return state
    from peft.tuners.lora import LoraLayer

    out = {}
    for key, value in state.items():
        if "modules_to_save" in key or "original_module" in key:
            raise ValueError(f"export_weights: peft modules_to_save ({key!r}) is not supported; merge the model first")
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    with torch.no_grad():
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer) or getattr(module, "merged", False):
                continue
            adapters = [a for a in module.active_adapters if a in module.lora_A]
            if not adapters:
                continue
            if any(a in getattr(module, "lora_variant", {}) for a in adapters) or any(
                    getattr(module, "lora_bias", {}).get(a, False) for a in adapters):
                raise ValueError(f"export_weights: {name!r} uses a LoRA variant or LoRA bias, which is not merged here")
            key = f"{name}.weight"
            weight = out[key]
            delta = sum(module.get_delta_weight(a) for a in adapters)
            out[key] = weight + delta.to(weight.dtype)
    return out


def write_safetensors(state: dict[str, torch.Tensor], folder: str | os.PathLike, name: str = "model.safetensors") -> pathlib.Path:
    """Write ``state`` to ``folder/name`` atomically (temp file + ``os.replace``), tensors copied to CPU.

    Tensors sharing storage (tied embeddings) are written as separate copies, as safetensors requires.
    """
    from safetensors.torch import save_file

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    cpu = {}
    for k, v in state.items():
        t = v.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        cpu[k] = t
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    os.close(fd)
    try:
        save_file(cpu, tmp, metadata={"format": "pt"})
        os.replace(tmp, folder / name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return folder / name
