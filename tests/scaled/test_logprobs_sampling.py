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
    with pytest.raises(ValueError, match=r"model\.sampler_options: unknown option\(s\) \['no_such_option'\]"):
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


def test_tiny_model_heads_are_settable_and_the_defaults_keep_their_folder(tmp_path):
    import json

    from scaled.tiny import build_tiny_model

    # The default settings (4 heads, 2 KV heads) hash to the same cache folder as before the options existed.
    assert build_tiny_model.__kwdefaults__["num_heads"] == 4 and build_tiny_model.__kwdefaults__["num_kv_heads"] == 2
    path = build_tiny_model(tmp_path / "one_head", hidden_size=64, num_heads=1, num_kv_heads=1)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["num_attention_heads"] == 1 and cfg["num_key_value_heads"] == 1
    assert cfg["hidden_size"] // cfg["num_attention_heads"] == 64  # head_dim 64: vLLM's CPU attention runs it
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        build_tiny_model(tmp_path / "bad", hidden_size=64, num_heads=3)
    with pytest.raises(ValueError, match="num_kv_heads"):
        build_tiny_model(tmp_path / "bad", hidden_size=64, num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_heads must be an int >= 1"):
        build_tiny_model(tmp_path / "bad", num_heads=0)


def test_sampler_settings_are_config_fields(tmp_path):
    import pathlib

    from scaled.config import load_config
    from scaled.trainer import build_policy

    smoke = pathlib.Path(__file__).resolve().parents[2] / "scaled" / "configs" / "smoke_cpu.yaml"
    cfg = load_config(smoke, [f"model.path={tmp_path / 'tiny'}", "model.sampler_options={finish_check_every: 3}",
                              "model.logprob_chunk_bytes=4096", "algorithm.loss.kl_coef=0"])
    pol = build_policy(cfg, torch.device("cpu"))
    assert pol.sampler.finish_check_every == 3 and pol.logprob_chunk_bytes == 4096
    assert pol.model.config.hidden_size // pol.model.config.num_attention_heads == 64  # the smoke model: head_dim 64
    # the bad model.* values: tests/scaled/test_scaled_config.py::test_config_rejects_unknown_keys_and_bad_overrides


def test_trainer_sleeps_the_sampler_before_the_update_and_trains_without_sampler_entropies(tmp_path):
    """What the vLLM backend does to the trainer, on the HF sampler: no entropies from the sampler (the
    teacher-forced pass supplies them), sleep before the update, a timed sync after it, close at the end."""
    import pathlib

    from empg.metrics import unknown_metrics
    from scaled.config import load_config
    from scaled.trainer import Trainer

    smoke = pathlib.Path(__file__).resolve().parents[2] / "scaled" / "configs" / "smoke_cpu.yaml"
    cfg = load_config(smoke, [f"model.path={tmp_path / 'tiny'}", f"trainer.out_dir={tmp_path / 'run'}", "env.n_tasks=1",
                              "agent.max_steps=2", "rollout.max_new_tokens=8", "trainer.iterations=1",
                              "trainer.val_every=0", "trainer.val_before_train=false"])
    trainer = Trainer(cfg)
    pol, events = trainer.policy, []
    generate, update = pol.generate, trainer._update

    def no_entropies(*args, **kwargs):
        events.append("generate")
        gen = generate(*args, **kwargs)
        gen.entropies = None
        return gen

    def logged_update(*args, **kwargs):
        events.append("update")
        return update(*args, **kwargs)

    pol.generate = no_entropies
    pol.sleep_sampler = lambda: events.append("sleep")
    pol.sync_sampler_weights = lambda: events.append("sync") or {"seconds": 0.25}
    pol.close = lambda: events.append("close")
    trainer._update = logged_update
    try:
        row = trainer.train()[-1]
    finally:
        trainer.close()
    assert events[-4:] == ["sleep", "update", "sync", "close"] and set(events[:-4]) == {"generate"}
    assert row["perf/weight_sync_seconds"] == 0.25
    assert "entropy/rollout_recompute_max_abs_diff" not in row  # nothing to compare, and no NaN logged
    assert row["rollout/logprob_recompute_max_abs_diff"] < 1e-4
    assert all(isinstance(v, str) or v == v for v in row.values())  # no NaN anywhere
    assert row["entropy/token_mean"] > 0 and unknown_metrics(row) == []
