"""CUDA checks of the hot path (``make test-gpu``, or ``python -m scaled.gpu_check`` on a GPU machine).

Needs only torch + transformers. Skipped without CUDA (and deselected from ``make test``).
"""

import warnings

import pytest
import torch

from scaled.logprobs import chunked_logprobs, plain_logprobs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

V, B, L = 151_936, 2, 1024


def _inputs(n, h, v, dtype=torch.float32, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    hidden = torch.randn(n, h, device="cuda", generator=g, dtype=dtype).requires_grad_()
    weight = (torch.randn(v, h, device="cuda", generator=g, dtype=dtype) / h**0.5).requires_grad_()
    targets = torch.randint(0, v, (n,), device="cuda", generator=g)
    return hidden, weight, targets


def test_chunked_equals_plain_on_cuda_float32():
    hidden, weight, targets = _inputs(300, 64, 5000)
    lp, en = chunked_logprobs(hidden, weight, targets, temperature=0.7, chunk_bytes=4 * 5000 * 37)
    (lp.sum() + en.sum()).backward()
    g1 = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    lp2, en2 = plain_logprobs(hidden, weight, targets, temperature=0.7)
    (lp2.sum() + en2.sum()).backward()
    torch.testing.assert_close(lp, lp2, atol=1e-4, rtol=0)
    torch.testing.assert_close(en, en2, atol=1e-4, rtol=0)
    torch.testing.assert_close(g1[0], hidden.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(g1[1], weight.grad, atol=1e-4, rtol=1e-4)


def test_bf16_compute_is_close_to_the_autocast_plain_path():
    hidden, weight, targets = _inputs(256, 256, 8000)
    lp, en = chunked_logprobs(hidden, weight, targets, compute_dtype=torch.bfloat16)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        z = torch.nn.functional.linear(hidden, weight)
    logp = torch.log_softmax(z.float(), -1)
    ref = logp.gather(-1, targets[:, None]).squeeze(-1)
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp, ref, atol=1e-2, rtol=0)
    torch.testing.assert_close(en, -(logp.exp() * logp).sum(-1), atol=1e-2, rtol=0)


def _peak_extra(fn, hidden, weight) -> int:
    """Peak CUDA bytes during fwd+bwd beyond the inputs and the gradients the call must produce."""
    hidden.grad = weight.grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    lp, _ = fn()
    lp.sum().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    return peak - hidden.grad.numel() * hidden.grad.element_size() - weight.grad.numel() * weight.grad.element_size()


def test_chunked_path_peak_memory_at_qwen_vocabulary():
    # Issue 10 target: <= 0.25x one float32 [2, 1024, 151936] logits tensor, independent of the length.
    hidden, weight, targets = _inputs(B * L, 1536, V)
    logits_bytes = B * L * V * 4
    chunked = _peak_extra(lambda: chunked_logprobs(hidden, weight, targets), hidden, weight)
    plain = _peak_extra(lambda: plain_logprobs(hidden, weight, targets), hidden, weight)
    assert chunked <= 0.25 * logits_bytes, chunked / logits_bytes
    assert plain >= 1.0 * logits_bytes, plain / logits_bytes  # the measurement sees the plain path's logits
    h2, w2, t2 = hidden.detach()[:256].clone().requires_grad_(), weight, targets[:256]
    short = _peak_extra(lambda: chunked_logprobs(h2, w2, t2), h2, w2)
    assert chunked <= short + 64 * 2**20  # independent of the number of tokens (up to the small [N] vectors)


def _tiny_cuda_model():
    """(tokenizer, random-init 2-layer Qwen2 on CUDA) with the tiny tokenizer's vocabulary."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from scaled.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    return tok, AutoModelForCausalLM.from_config(cfg).cuda()


def test_hf_sampler_does_not_sync_per_token():
    from scaled.policy import Policy

    tok, model = _tiny_cuda_model()
    pol = Policy(model, tok, reference="none", sampler_options={"finish_check_every": 16})
    prompts = [[1, 2, 3, 4], [5, 6, 7]]
    pol.generate(prompts, max_new_tokens=4)  # warm-up
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            gen = pol.generate(prompts, max_new_tokens=64, generator=torch.Generator(device="cuda").manual_seed(0))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    n_tokens = max(len(r) for r in gen.response_ids)
    # Reads every 16 tokens plus a handful at the start (prompt upload) and the end (results to host).
    assert len(syncs) <= n_tokens // 16 + 8, [str(w.message)[:80] for w in syncs[:5]]


def test_policy_token_logprobs_bf16_chunked_matches_plain():
    from scaled.policy import Policy

    tok, model = _tiny_cuda_model()
    pol = Policy(model, tok, reference="none", bf16=True)
    ids = torch.randint(0, len(tok), (3, 40), device="cuda")
    mask = torch.ones_like(ids)
    out = {}
    for impl in ("chunked", "plain"):
        pol.logprob_impl = impl
        model.zero_grad(set_to_none=True)
        lp, en = pol.token_logprobs(ids, mask, start=10, with_entropy=True)
        lp.sum().backward()
        out[impl] = lp.detach(), en, model.lm_head.weight.grad.clone()
    torch.testing.assert_close(out["chunked"][0], out["plain"][0], atol=2e-2, rtol=0)
    torch.testing.assert_close(out["chunked"][1], out["plain"][1], atol=2e-2, rtol=0)
    cos = torch.nn.functional.cosine_similarity(out["chunked"][2].flatten(), out["plain"][2].flatten(), dim=0)
    assert cos > 0.99
