"""GPU check, ready to run on a machine with CUDA and only torch + transformers (+ peft) installed.

Usage (from the repository root; nothing is downloaded, nothing else needs installing)::

    PYTHONPATH=. python -m scaled.gpu_check            # gpu tests + one bf16 iteration at Qwen2.5-1.5B size
    PYTHONPATH=. python -m scaled.gpu_check --skip-tests --model tiny   # a quick look

What it does:

1. ``pytest -m gpu tests/scaled/test_logprobs_gpu.py`` (what ``make test-gpu`` runs for this area):
   the chunked log-prob path on CUDA against the plain one, its peak memory at V = 151,936 for
   ``[2, 1024]`` tokens (``torch.cuda.max_memory_allocated``), and the HF sampler's host syncs.
2. A random-init causal LM with **Qwen2.5-1.5B-Instruct's config** (written out below, no download:
   28 layers, hidden 1536, 12 heads / 2 KV heads, MLP 8960, vocab 151,936, tied embeddings), fp32
   master weights, bf16 autocast, gradient checkpointing, and the offline byte-level BPE tokenizer of
   :mod:`scaled.tiny` (its ids are a subset of the model's vocabulary; the softmax is over all 151,936).
3. **One training iteration** on a dependency-free text task (below): sample ``--tasks × --group``
   answers with the ``hf`` sampler (or ``--backend vllm`` where vLLM is installed), teacher-forced
   old log-probs, entropies and reference log-probs, GRPO + EMPG (``variant="full"``) advantages,
   the clipped policy loss + k3 KL (0.01), backward, AdamW, weight sync. (The loop of
   :class:`scaled.trainer.Trainer`, written out here so that it needs none of the environments'
   packages.)
4. Prints iteration time, rollout tokens/s, update tokens/s and peak GPU memory (one JSON line too).

The text task: ALFWorld-like prompts ("go to the named place", eight admissible actions), and a
synthetic reward, the fraction of even token ids in the answer. A random-init model almost never
writes the named place (its vocabulary is 151,936 ids, the tokenizer uses 512), so a task reward
would be 0 everywhere and the update would be zero; this one differs within every group. The check
measures the machinery's time and memory, not learning. It needs no package.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

#: Qwen2.5-1.5B-Instruct's config.json (architecture fields), for a random-init model of that size.
QWEN25_1_5B = dict(
    vocab_size=151_936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
    num_key_value_heads=2, max_position_embeddings=32_768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True, hidden_act="silu", attention_dropout=0.0,
)
TINY = dict(vocab_size=151_936, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True)

PLACES = ["cabinet", "countertop", "drawer", "fridge", "shelf", "sinkbasin", "microwave", "desk", "sofa", "garbagecan"]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def build_policy(model: str, device: torch.device, backend: str = "hf"):
    """A random-init Qwen2 of the named size (``qwen2.5-1.5b`` or ``tiny``) wrapped in a Policy (bf16 autocast)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from scaled.policy import Policy
    from scaled.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    cfg = Qwen2Config(**(QWEN25_1_5B if model == "qwen2.5-1.5b" else TINY), eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(cfg).to(device)  # float32 master weights
    return Policy(lm, tok, reference="copy", temperature=1.0, bf16=True, gradient_checkpointing=True, backend=backend)


def make_tasks(tokenizer, n: int, seed: int) -> list[list[int]]:
    """``n`` chat prompts of the "go to the named place" task."""
    g = torch.Generator().manual_seed(seed)
    prompts = []
    for _ in range(n):
        order = torch.randperm(len(PLACES), generator=g)[:8].tolist()
        goal = PLACES[order[int(torch.randint(0, 8, (1,), generator=g))]]
        places = ", ".join(f"go to {PLACES[i]} 1" for i in order)
        text = (f"You are in the middle of a room. Your task is to: go to the {goal}. Your admissible actions are: "
                f"[{places}]. Answer with <action> </action>.")
        prompts.append(tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                     tokenize=True)["input_ids"])
    return prompts


def one_iteration(policy, *, tasks: int, group: int, max_new_tokens: int, micro_batch: int, lr: float, seed: int = 0):
    """Rollout → old log-probs/entropies → GRPO+EMPG advantages → clipped loss → AdamW → sync. Returns timings."""
    import empg
    from scaled.policy import prompt_response_rows

    dev = policy.device
    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=lr)
    prompts = [p for p in make_tasks(policy.tokenizer, tasks, seed) for _ in range(group)]
    group_ids = torch.arange(tasks).repeat_interleave(group)
    _sync(dev)
    t0 = time.perf_counter()
    gen = policy.generate(prompts, max_new_tokens=max_new_tokens, generator=torch.Generator(device=dev).manual_seed(seed))
    _sync(dev)
    t_rollout = time.perf_counter() - t0
    rewards = torch.tensor([sum(t % 2 == 0 for t in r) / len(r) for r in gen.response_ids])
    ids, att, start, r_mask = prompt_response_rows(prompts, gen.response_ids, policy.pad_id)
    loss_mask = r_mask.bool()
    n, width = r_mask.shape
    old, ent, ref = torch.zeros(n, width), torch.zeros(n, width), torch.zeros(n, width)
    t1 = time.perf_counter()
    policy.model.eval()
    with torch.no_grad():
        for lo in range(0, n, micro_batch):
            sl = slice(lo, lo + micro_batch)
            lp, en = policy.token_logprobs(ids[sl].to(dev), att[sl].to(dev), start=start, with_entropy=True)
            old[sl], ent[sl] = lp.cpu(), en.cpu()
            ref[sl] = policy.token_logprobs(ids[sl].to(dev), att[sl].to(dev), start=start, reference=True)[0].cpu()
    step_h = (ent.double() * loss_mask).sum(-1) / loss_mask.sum(-1)
    inputs = empg.AdvantageInputs(rewards, group_ids, step_entropy=step_h, trajectory=torch.arange(n),
                                  step=torch.zeros(n, dtype=torch.long))
    adv = empg.compute_advantages("empg", inputs, variant="full", outcome="grpo").float()
    policy.model.train()
    opt.zero_grad(set_to_none=True)
    total = float(loss_mask.sum())
    for lo in range(0, n, micro_batch):
        sl = slice(lo, lo + micro_batch)
        m = loss_mask[sl].to(dev)
        lp, _ = policy.token_logprobs(ids[sl].to(dev), att[sl].to(dev), start=start)
        loss, _ = empg.clipped_policy_loss(lp, old[sl].to(dev), adv[sl, None].expand_as(m).to(dev), m)
        loss = loss + empg.kl_penalty(lp, ref[sl].to(dev), m, coef=0.01)[0]
        (loss * float(m.sum()) / total).backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), 1.0))
    opt.step()
    policy.sync_sampler_weights()
    _sync(dev)
    t_update = time.perf_counter() - t1
    gen_tokens = int(loss_mask.sum())
    return {
        "rollout_seconds": t_rollout, "update_seconds": t_update, "iteration_seconds": t_rollout + t_update,
        "generated_tokens": gen_tokens, "rollout_tokens_per_s": gen_tokens / t_rollout,
        "update_tokens_per_s": float(att.sum()) / t_update, "sequences": n, "reward_mean": float(rewards.mean()),
        "grad_norm": grad_norm, "rollout_logprob_recompute_max_abs_diff": float((old - torch.nn.utils.rnn.pad_sequence(
            gen.logprobs, batch_first=True))[loss_mask].abs().max()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["qwen2.5-1.5b", "tiny"], default="qwen2.5-1.5b")
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of the script, --model tiny)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none (cpu dry run)"
    print(f"device: {gpu}, torch {torch.__version__}", flush=True)
    rc = 0
    if not args.skip_tests and dev.type == "cuda":
        rc = subprocess.call([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-ra", "-m", "gpu", "-p",
                              "no:cacheprovider", str(ROOT / "tests" / "scaled" / "test_logprobs_gpu.py")], cwd=ROOT)
        print(f"gpu tests: exit {rc}", flush=True)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    policy = build_policy(args.model, dev, args.backend)
    n_params = sum(p.numel() for p in policy.model.parameters())
    res = one_iteration(policy, tasks=args.tasks, group=args.group, max_new_tokens=args.max_new_tokens,
                        micro_batch=args.micro_batch, lr=args.lr)
    res.update(model=args.model, backend=args.backend, parameters=n_params,
               peak_gpu_memory_gb=torch.cuda.max_memory_allocated(dev) / 1e9 if dev.type == "cuda" else float("nan"),
               gpu=gpu)
    policy.close()
    print(f"model {args.model} ({n_params / 1e9:.2f} B parameters), bf16 autocast, {res['sequences']} sequences")
    print(f"iteration {res['iteration_seconds']:.1f} s (rollout {res['rollout_seconds']:.1f} s, "
          f"update {res['update_seconds']:.1f} s); rollout {res['rollout_tokens_per_s']:.0f} generated tokens/s, "
          f"update {res['update_tokens_per_s']:.0f} tokens/s; peak GPU memory {res['peak_gpu_memory_gb']:.1f} GB")
    print(json.dumps(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(main())
