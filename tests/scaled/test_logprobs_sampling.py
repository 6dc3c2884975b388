"""The HF sampler against a plain per-token loop, the sampling-backend plumbing and the weight export."""

import importlib.util

import pytest
import torch

import empg
from scaled.policy import Policy, left_pad, load_policy


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from scaled.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.getbasetemp() / "tiny"))


@pytest.fixture(scope="module")
def policy(tiny_path):
    return load_policy(tiny_path, reference="none", temperature=0.9)


def _prompts(tok, n=5):
    return [tok.apply_chat_template([{"role": "user", "content": f"go to cabinet {i} " * (i + 1)}],
                                    add_generation_prompt=True, tokenize=True)["input_ids"] for i in range(n)]


@torch.no_grad()
def _plain_loop(pol, prompts, max_new_tokens, generator):
    """Reference: the straightforward loop (mask re-concatenated and finished rows checked every token)."""
    ids, mask = left_pad(prompts, pol.pad_id)
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    out = pol.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    past, last = out.past_key_values, pos[:, -1:]
    finished = torch.zeros(len(prompts), dtype=torch.bool)
    toks, lps, ents = [], [], []
    for _ in range(max_new_tokens):
        z = out.logits[:, -1].float() / pol.temperature
        logp = torch.log_softmax(z, -1)
        tok = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        tok = torch.where(finished, torch.full_like(tok, pol.pad_id), tok)
        toks.append(tok)
        lps.append(logp.gather(-1, tok[:, None]).squeeze(-1))
        ents.append(-(logp.exp() * logp).sum(-1))
        alive = ~finished
        finished = finished | (tok == pol.eos_id)
        if bool(finished.all()):
            break
        mask = torch.cat([mask, alive.long()[:, None]], -1)
        last = last + 1
        out = pol.model(input_ids=tok[:, None], attention_mask=mask, position_ids=last, past_key_values=past, use_cache=True)
        past = out.past_key_values
    toks, lps, ents = torch.stack(toks, 1), torch.stack(lps, 1), torch.stack(ents, 1)
    rows = []
    for i in range(len(prompts)):
        row = toks[i].tolist()
        n = row.index(pol.eos_id) + 1 if pol.eos_id in row else len(row)
        rows.append((row[:n], lps[i, :n], ents[i, :n]))
    return rows


def test_hf_sampler_equals_the_plain_loop(policy):
    prompts = _prompts(policy.tokenizer)
    endings = []
    for seed, max_new in [(7, 3), (7, 40), (3, 40), (5, 60)]:
        ref = _plain_loop(policy, prompts, max_new, torch.Generator().manual_seed(seed))
        gen = policy.generate(prompts, max_new_tokens=max_new, generator=torch.Generator().manual_seed(seed))
        assert gen.response_ids == [r[0] for r in ref]
        for lp, ent, (_, rlp, rent) in zip(gen.logprobs, gen.entropies, ref):
            torch.testing.assert_close(lp, rlp, atol=1e-6, rtol=0)
            torch.testing.assert_close(ent, rent, atol=1e-5, rtol=0)
        assert gen.truncated == [policy.eos_id not in r[0] for r in ref]
        endings += gen.truncated
    assert not all(endings) and any(endings)  # both endings (end-of-turn token, length limit) are exercised


@pytest.mark.parametrize("every", [1, 4, 64])
def test_checking_finished_rows_every_n_tokens_changes_nothing(tiny_path, every):
    pol = load_policy(tiny_path, reference="none", sampler_options={"finish_check_every": every})
    base = load_policy(tiny_path, reference="none")
    prompts = _prompts(pol.tokenizer)
    a = pol.generate(prompts, max_new_tokens=40, generator=torch.Generator().manual_seed(3))
    b = base.generate(prompts, max_new_tokens=40, generator=torch.Generator().manual_seed(3))
    assert a.response_ids == b.response_ids and a.truncated == b.truncated
    for x, y in zip(a.logprobs, b.logprobs):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


def test_hf_backend_sync_is_a_noop_and_options_are_checked(tiny_path, policy):
    assert policy.backend == "hf" and policy.sync_sampler_weights() == {}
    policy.sleep_sampler()
    with pytest.raises(ValueError, match="finish_check_every"):
        load_policy(tiny_path, reference="none", sampler_options={"finish_check_every": 0})
    with pytest.raises(TypeError):
        load_policy(tiny_path, reference="none", sampler_options={"no_such_option": 1})
    with pytest.raises(ValueError, match="backend"):
        load_policy(tiny_path, reference="none", backend="sglang")
    with pytest.raises(ValueError, match="max_new_tokens"):
        policy.generate([[1, 2]], max_new_tokens=0)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here (see tests marked vllm)")
def test_vllm_backend_without_vllm_names_the_environment(tiny_path):
    with pytest.raises(ImportError, match="make test-vllm"):
        load_policy(tiny_path, reference="none", backend="vllm")


def test_export_weights_merges_lora_into_the_base_names(tiny_path, tmp_path):
    from transformers import AutoModelForCausalLM

    from scaled.sampling.weights import export_weights, write_safetensors

    pol = load_policy(tiny_path, reference="lora", lora={"r": 4, "lora_alpha": 8})
    with torch.no_grad():
        for n, p in pol.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    state = export_weights(pol.model)
    plain = AutoModelForCausalLM.from_pretrained(tiny_path)
    assert set(state) == set(plain.state_dict())  # base names only, lm_head.weight included
    assert not any("lora" in k for k in state)
    plain.load_state_dict(state)
    ids = torch.randint(0, plain.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        merged, peft_out = plain(input_ids=ids).logits, pol.model(input_ids=ids).logits
        with pol.model.disable_adapter():
            base_out = pol.model(input_ids=ids).logits
    torch.testing.assert_close(merged, peft_out, atol=1e-5, rtol=0)
    assert (merged - base_out).abs().max() > 1e-2  # the adapters are not zero: the merge did something
    # Round trip through the engine's file format (tied embeddings written twice).
    from safetensors.torch import load_file

    path = write_safetensors(state, tmp_path / "engine")
    loaded = load_file(str(path))
    assert set(loaded) == set(state)
    for k in state:
        torch.testing.assert_close(loaded[k], state[k].cpu(), atol=0, rtol=0)


def test_policy_generation_records_the_sampling_distribution(policy):
    # Each recorded log-prob is log softmax(z / T) of the token, teacher-forced (T = 0.9 here).
    prompts = _prompts(policy.tokenizer, 3)
    gen = policy.generate(prompts, max_new_tokens=12, generator=torch.Generator().manual_seed(1))
    for q, r, lp, ent in zip(prompts, gen.response_ids, gen.logprobs, gen.entropies):
        ids = torch.tensor([q + r])
        with torch.no_grad():
            z = policy.model(input_ids=ids).logits[0, len(q) - 1 : -1].double() / 0.9
        logp = torch.log_softmax(z, -1)
        torch.testing.assert_close(lp.double(), logp.gather(-1, torch.tensor(r)[:, None]).squeeze(-1), atol=1e-4, rtol=0)
        torch.testing.assert_close(ent.double(), empg.token_entropy(z), atol=1e-4, rtol=0)
    assert isinstance(policy, Policy)
