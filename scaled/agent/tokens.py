"""ChatML token ids of an agent's turns (Qwen2.5-style ``<|im_start|>role\\n…<|im_end|>``).

* :func:`chat_prompt_ids`: a one-user-message chat ending with the assistant header, the context of
  every step-layout turn and of the first turn of a concatenated conversation.
* :func:`followup_turn_ids`: what a later user turn adds to a concatenated conversation, after the
  previous response's ``<|im_end|>``.
* :func:`assistant_header_ids`: ``<|im_start|>assistant\\n``, the delimiter that opens a step.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["chat_prompt_ids", "followup_turn_ids", "assistant_header_ids"]


def _ids(encoded: Any) -> list[int]:
    """A flat ``list[int]`` from what a tokenizer returns (BatchEncoding, tensor, nested list)."""
    if hasattr(encoded, "keys") and "input_ids" in encoded:
        encoded = encoded["input_ids"]
    if isinstance(encoded, torch.Tensor):
        encoded = encoded.tolist()
    if encoded and isinstance(encoded[0], list):
        encoded = encoded[0]
    return [int(t) for t in encoded]


def chat_prompt_ids(tokenizer, content: str) -> list[int]:
    """Token ids of a one-user-message chat with the assistant header appended."""
    return _ids(tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                              tokenize=True))


def followup_turn_ids(tokenizer, content: str) -> list[int]:
    """``\\n<|im_start|>user\\n{content}<|im_end|>\\n<|im_start|>assistant\\n``: a later turn of a conversation."""
    return _ids(tokenizer.encode(f"\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
                                 add_special_tokens=False))


def assistant_header_ids(tokenizer) -> list[int]:
    """``<|im_start|>assistant\\n``: the delimiter that opens a step in a ChatML conversation."""
    return _ids(tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False))
