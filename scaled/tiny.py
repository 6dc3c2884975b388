"""A tiny random-init Qwen2-style causal LM and a byte-level BPE ChatML tokenizer, built offline.

Used by the smoke config and the tests: nothing is downloaded. The tokenizer is trained on a small
built-in corpus of agent text (prompts, ``<think>``/``<action>`` answers, TextWorld/ALFWorld/WebShop
commands) so that common words are a few tokens long, and it has the ChatML special tokens
``<|im_start|>``, ``<|im_end|>`` and ``<|endoftext|>`` with a Qwen-like ``chat_template``.

``build_tiny_model(path)`` writes ``config.json``, the weights and the tokenizer files into ``path``
(atomically: built in a temporary folder, then renamed) and returns ``path``; a second call with the
same settings reuses the folder. Load it with ``AutoModelForCausalLM.from_pretrained(path)`` and
``AutoTokenizer.from_pretrained(path)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

__all__ = ["CHATML_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer", "default_cache_dir"]

#: ChatML special tokens (as in Qwen2.5's tokenizer).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: ChatML chat template (Qwen2.5 style, without Qwen's default system prompt).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = """
You are an expert agent operating in a text-based environment. Your task is to: put a clean mug in the coffeemachine.
Prior to this step, you have already taken 3 step(s). Below are the most recent 2 observations and the corresponding actions you took.
You are now at step 4 and your current observation is: You arrive at the countertop 1. On the countertop 1, you see a mug 1, a knife 2, and a apple 3.
Your admissible actions of the current situation are: [go to cabinet 1, take mug 1 from countertop 1, open fridge 1, close drawer 2, look, inventory].
Now it's your turn to take an action. You should first reason step-by-step about the current situation.
This reasoning process MUST be enclosed within <think> </think> tags.
Once you've finished your reasoning, you should choose an admissible action for current step and present it within <action> </action> tags.
<think>I need to find the mug first, then clean it with the sinkbasin, then put it in the coffeemachine.</think><action>take mug 1 from countertop 1</action>
<think>The fridge is closed. I should open it.</think><action>open fridge 1</action>
heat the egg with microwave 1. cool the tomato with fridge 1. clean the plate with sinkbasin 1. examine the book with desklamp 1.
use desklamp 1. toggle desklamp 1. put apple 1 in/on diningtable 1. go to shelf 2. go to sofa 1. go to garbagecan 1.
Welcome to TextWorld! You find yourself in a kitchen. There is a closed door leading east. You see a chest, a key, a coin and a table.
open door. go east. go west. go north. go south. take key. unlock chest with key. insert coin into box. drop key. eat apple.
search[red running shoes size 9 under 50 dollars] click[Buy Now] click[Back to Search] click[< Prev] click[Next >] click[Description]
click[Features] click[Reviews] click[Attributes] i am looking for a gluten free snack, and price lower than 30.00 dollars.
The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 50 100.
"""


def default_cache_dir() -> pathlib.Path:
    """``$EMPG_CACHE/tiny_models`` or ``~/.cache/empg/tiny_models``."""
    root = os.environ.get("EMPG_CACHE")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "empg"
    return base / "tiny_models"


def build_tiny_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE on the built-in corpus; return a ``PreTrainedTokenizerFast`` (ChatML).

    Args:
        vocab_size: BPE vocabulary size including the 256 byte tokens and the special tokens.

    Returns:
        A tokenizer whose ``pad_token`` is ``<|endoftext|>`` and ``eos_token`` is ``<|im_end|>``
        (the end of an assistant turn, where generation stops).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not isinstance(vocab_size, int) or vocab_size < 300:
        raise ValueError(f"vocab_size must be an int >= 300 (256 bytes + specials + merges), got {vocab_size!r}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([line for line in _CORPUS.splitlines() if line.strip()] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"
    return fast


def _model_config(vocab_size: int, hidden_size: int, num_layers: int, num_heads: int, num_kv_heads: int,
                  seed: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": 4096,
        "seed": seed,
    }


def build_tiny_model(
    path: str | os.PathLike | None = None,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    seed: int = 0,
    overwrite: bool = False,
) -> pathlib.Path:
    """Build (or reuse) a tiny random-init Qwen2 causal LM + tokenizer in ``path``.

    Args:
        path: target folder; default ``default_cache_dir() / tiny-<hash of the settings>``.
        vocab_size: BPE vocabulary size (the model's embedding matches the tokenizer's length).
        hidden_size, num_layers: model size (MLP 2·hidden).
        num_heads, num_kv_heads: attention heads and key/value heads (grouped-query attention); the
            head dimension is ``hidden_size / num_heads``. vLLM's CPU attention needs head_dim 32, 64,
            80, …: the smoke config uses hidden 64 with one head (head_dim 64); the default 4 heads
            of hidden 64 give head_dim 16, which only the transformers path runs.
        seed: torch seed for the random initialisation.
        overwrite: rebuild even when ``path`` already holds a model built with these settings.

    Returns:
        The folder, loadable with ``from_pretrained``.
    """
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    for name, v, lo in (("hidden_size", hidden_size, 8), ("num_layers", num_layers, 1), ("num_heads", num_heads, 1),
                        ("num_kv_heads", num_kv_heads, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size must be divisible by num_heads={num_heads}, got {hidden_size}")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} must be divisible by num_kv_heads, got {num_kv_heads}")
    settings = _model_config(vocab_size, hidden_size, num_layers, num_heads, num_kv_heads, seed)
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    target = pathlib.Path(path) if path is not None else default_cache_dir() / f"tiny-{digest}"
    stamp = target / "empg_tiny.json"
    if stamp.exists() and not overwrite:
        try:
            if json.loads(stamp.read_text()) == settings:
                return target
        except (OSError, ValueError):
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        tokenizer = build_tiny_tokenizer(vocab_size)
        cfg = dict(settings)
        cfg.pop("seed")
        cfg["vocab_size"] = len(tokenizer)
        config = Qwen2Config(
            **cfg,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=None,
            tie_word_embeddings=True,
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "empg_tiny.json").write_text(json.dumps(settings, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
