"""scaled.gpu_check without a GPU: its model config and its training iteration (CPU, tiny model)."""

import math

import pytest
import torch

from scaled import gpu_check


def test_qwen25_config_has_the_published_size():
    from transformers import AutoModelForCausalLM, Qwen2Config

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**gpu_check.QWEN25_1_5B))
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 1.54e9) < 0.01e9, n  # Qwen2.5-1.5B: 1.54 B parameters (tied embeddings)
    assert model.config.hidden_size // model.config.num_attention_heads == 128


def test_one_iteration_updates_the_policy_on_cpu(tmp_path):
    from scaled.policy import load_policy
    from scaled.tiny import build_tiny_model

    policy = load_policy(str(build_tiny_model(tmp_path / "tiny")), reference="copy")
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    res = gpu_check.one_iteration(policy, tasks=2, group=3, max_new_tokens=6, micro_batch=4, lr=1e-3)
    assert res["sequences"] == 6 and 6 <= res["generated_tokens"] <= 36
    assert res["grad_norm"] > 0 and all(math.isfinite(v) for v in res.values() if isinstance(v, float))
    assert res["rollout_logprob_recompute_max_abs_diff"] <= 1e-4  # float32 on CPU: sampler == teacher forcing
    moved = [n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(moved) == len(before)


def test_cli_refuses_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--skip-tests"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
