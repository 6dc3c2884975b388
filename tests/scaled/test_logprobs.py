"""The chunked log-prob/entropy path (scaled.logprobs) against the plain logits path, and inside Policy."""

import pytest
import torch

from scaled.logprobs import chunk_tokens_for, chunked_logprobs, plain_logprobs


def _inputs(dtype, n=37, h=16, v=50, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g, dtype=dtype).requires_grad_()
    weight = (0.5 * torch.randn(v, h, generator=g, dtype=dtype)).requires_grad_()
    b = torch.randn(v, generator=g, dtype=dtype).requires_grad_() if bias else None
    targets = torch.randint(0, v, (n,), generator=g)
    return hidden, weight, b, targets


def _grads(fn, hidden, weight, bias, targets, g_lp, g_en, **kw):
    for x in (hidden, weight, bias):
        if x is not None:
            x.grad = None
    lp, en = fn(hidden, weight, targets, bias=bias, **kw)
    ((lp * g_lp).sum() + (en * g_en).sum()).backward()
    return lp.detach(), en.detach(), [None if x is None else x.grad.clone() for x in (hidden, weight, bias)]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_rows", [1, 5, 1000])
def test_chunked_equals_plain_values_and_gradients(dtype, tol, temperature, chunk_rows):
    hidden, weight, bias, targets = _inputs(dtype)
    g = torch.Generator().manual_seed(1)
    g_lp, g_en = torch.randn(37, generator=g, dtype=dtype), torch.randn(37, generator=g, dtype=dtype)
    kw = dict(temperature=temperature)
    lp1, en1, gr1 = _grads(chunked_logprobs, hidden, weight, bias, targets, g_lp, g_en,
                           chunk_bytes=4 * 50 * chunk_rows, **kw)
    lp2, en2, gr2 = _grads(plain_logprobs, hidden, weight, bias, targets, g_lp, g_en, **kw)
    assert lp1.dtype == dtype  # float64 in, float64 out (float32 otherwise)
    torch.testing.assert_close(lp1, lp2, atol=tol, rtol=0)
    torch.testing.assert_close(en1, en2, atol=tol, rtol=0)
    for a, b in zip(gr1, gr2):
        torch.testing.assert_close(a, b, atol=10 * tol, rtol=0)
    assert (en1 > 0).all() and (lp1 < 0).all()


def test_gradcheck_float64():
    hidden, weight, bias, targets = _inputs(torch.float64, n=6, h=4, v=7)
    fn = lambda h, w, b: chunked_logprobs(h, w, targets, bias=b, temperature=0.8, chunk_bytes=4 * 7 * 4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (hidden, weight, bias), eps=1e-6, atol=1e-6)


def test_plain_reference_matches_log_softmax_by_hand():
    hidden, weight, bias, targets = _inputs(torch.float64, bias=False)
    z = (hidden @ weight.T).detach() / 0.5
    p = torch.softmax(z, -1)
    lp, en = chunked_logprobs(hidden, weight, targets, temperature=0.5)
    torch.testing.assert_close(lp, torch.log(p[torch.arange(37), targets]), atol=1e-12, rtol=0)
    torch.testing.assert_close(en, -(p * p.log()).sum(-1), atol=1e-12, rtol=0)


def test_large_logits_stay_finite_and_exact():
    hidden, weight, bias, targets = _inputs(torch.float32, bias=False)
    with torch.no_grad():
        weight.mul_(300.0)  # logits ~1e3: a naive exp would overflow
    lp, en = chunked_logprobs(hidden, weight, targets, chunk_bytes=4 * 50 * 3)
    ref_lp, ref_en = plain_logprobs(hidden.double(), weight.double(), targets)
    assert torch.isfinite(lp).all() and torch.isfinite(en).all()
    torch.testing.assert_close(lp.double(), ref_lp, atol=1e-3, rtol=1e-6)
    torch.testing.assert_close(en.double(), ref_en, atol=1e-3, rtol=0)


def test_minus_inf_bias_masks_tokens_without_nan_gradients():
    hidden, weight, _, targets = _inputs(torch.float64, v=10)
    bias = torch.zeros(10, dtype=torch.float64)
    bias[0] = float("-inf")
    targets = targets.clamp_min(1)
    lp, en = chunked_logprobs(hidden, weight, targets, bias=bias, chunk_bytes=4 * 10 * 4)
    (lp.sum() + en.sum()).backward()
    assert torch.isfinite(hidden.grad).all() and torch.isfinite(weight.grad).all()
    h2, w2 = hidden.detach().requires_grad_(), weight.detach()[1:].clone().requires_grad_()
    lp2, en2 = plain_logprobs(h2, w2, targets - 1)  # the same distribution over the 9 allowed tokens
    torch.testing.assert_close(lp, lp2, atol=1e-10, rtol=0)
    torch.testing.assert_close(en, en2, atol=1e-10, rtol=0)


def test_leading_shape_is_kept_and_bad_input_named():
    hidden, weight, bias, targets = _inputs(torch.float32, n=12)
    lp, en = chunked_logprobs(hidden.reshape(3, 4, 16), weight, targets.reshape(3, 4))
    assert lp.shape == (3, 4) and en.shape == (3, 4)
    with pytest.raises(ValueError, match="targets"):
        chunked_logprobs(hidden, weight, targets[:-1])
    with pytest.raises(ValueError, match="weight"):
        chunked_logprobs(hidden, weight[:, :3], targets)
    with pytest.raises(ValueError, match="temperature"):
        chunked_logprobs(hidden, weight, targets, temperature=0.0)
    with pytest.raises(ValueError, match=r"\[0, V\)"):
        chunked_logprobs(hidden, weight, targets + 50)
    with pytest.raises(ValueError, match="non-finite"):
        chunked_logprobs(hidden * float("nan"), weight, targets)
    with pytest.raises(ValueError, match="chunk_bytes"):
        chunk_tokens_for(50, 0)
    assert chunk_tokens_for(151_936, 64 * 2**20) == 110


# ------------------------------------------------------------------ inside Policy
@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from scaled.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.getbasetemp() / "tiny"))


def _batch(policy, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = policy.model.config.vocab_size
    ids = torch.randint(0, v, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :6] = 0  # left padding
    mask[2, -3:] = 0  # right padding
    return ids, mask


@pytest.mark.parametrize("lora", [False, True])
def test_policy_chunked_path_equals_plain_path_with_gradients(tiny_path, lora):
    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="lora" if lora else "copy", lora={"r": 4} if lora else None,
                      temperature=0.7, logprob_chunk_bytes=4 * 600 * 7)
    assert pol.logprob_impl == "chunked"
    with torch.no_grad():  # move the policy away from its reference (adapter off / frozen copy)
        for n, p in pol.model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p), alpha=0.5 if "lora_B" in n else 0.02)
    ids, mask = _batch(pol)
    out = {}
    for impl in ("chunked", "plain"):
        pol.logprob_impl = impl
        pol.model.zero_grad(set_to_none=True)
        lp, en = pol.token_logprobs(ids, mask, start=8, with_entropy=True)
        (lp * mask[:, 8:]).sum().backward()
        grads = {n: p.grad.clone() for n, p in pol.model.named_parameters() if p.requires_grad}
        ref, _ = pol.token_logprobs(ids, mask, start=8, reference=True)
        out[impl] = (lp.detach(), en, grads, ref)
    (lp1, en1, g1, r1), (lp2, en2, g2, r2) = out["chunked"], out["plain"]
    m = mask[:, 8:].bool()
    torch.testing.assert_close(lp1[m], lp2[m], atol=1e-5, rtol=0)
    torch.testing.assert_close(en1[m], en2[m], atol=1e-5, rtol=0)
    torch.testing.assert_close(r1[m], r2[m], atol=1e-5, rtol=0)
    assert en1.requires_grad is False
    assert g1.keys() == g2.keys() and len(g1) > 0
    for n in g1:
        torch.testing.assert_close(g1[n], g2[n], atol=1e-5, rtol=1e-4, msg=n)
    assert (lp1[m] - r1[m]).abs().max() > 1e-3  # the reference really is another model


def test_policy_rejects_a_chunked_path_it_cannot_run(tiny_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scaled.policy import Policy

    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    model.config.final_logit_softcapping = 30.0  # logits are no longer lm_head(hidden)
    tok = AutoTokenizer.from_pretrained(tiny_path)
    assert Policy(model, tok, reference="none").logprob_impl == "plain"
    with pytest.raises(ValueError, match="logprob_impl"):
        Policy(model, tok, reference="none", logprob_impl="chunked")
    with pytest.raises(ValueError, match="logprob_impl"):
        Policy(model, tok, reference="none", logprob_impl="fused")
