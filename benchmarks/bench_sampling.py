"""Benchmark: sampling throughput (generated tokens/s) of the HF sampler and of vLLM on the same prompts.

Both backends sample through :meth:`scaled.policy.Policy.generate` from the same tiny random-init
Qwen2 (built offline by :func:`scaled.tiny.build_tiny_model`; hidden 256, 4 heads, so head_dim 64 as
vLLM's CPU attention needs), the same ``--prompts`` chat prompts (ALFWorld-style text, a few hundred
tokens each), temperature 1, ``--max-new-tokens`` per answer. The time of one call (after a warm-up
call) and the number of tokens it generated give tokens/s; both runs are printed side by side.

The HF part runs in this interpreter. The vLLM part needs vLLM, which lives in its own environment
(``make test-vllm`` builds ``.venv-vllm``): this script re-runs itself there with ``--backend vllm``
when that environment exists, and says so when it does not (the HF number is still printed, the
exit status stays 0). On a CPU these are correctness-grade engines: the numbers compare the two on
this machine, they say nothing about a GPU.

Run: ``python benchmarks/bench_sampling.py [--prompts 32] [--max-new-tokens 64] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


def make_prompts(tokenizer, n: int) -> list[list[int]]:
    """``n`` distinct chat prompts (ALFWorld-like observation + admissible actions)."""
    rooms = ["cabinet", "countertop", "drawer", "fridge", "shelf", "sinkbasin", "microwave", "desk"]
    out = []
    for i in range(n):
        seen = ", ".join(f"a {rooms[(i + k) % len(rooms)]} {k + 1}" for k in range(6 + i % 5))
        actions = ", ".join(f"go to {rooms[(i * 3 + k) % len(rooms)]} {k + 1}" for k in range(8))
        text = (f"You are an expert agent. Your task is to: put a clean mug in the coffeemachine. You are now at step "
                f"{i % 7 + 1} and you see {seen}. Your admissible actions are: [{actions}, look, inventory]. "
                "Reason step-by-step within <think> </think>, then answer within <action> </action>.")
        out.append(tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                 tokenize=True)["input_ids"])
    return out


def measure(backend: str, args) -> dict:
    """tokens/s of one ``generate`` call of ``backend`` (after one warm-up call)."""
    import torch

    from scaled.policy import load_policy
    from scaled.tiny import build_tiny_model

    path = build_tiny_model(Path(args.cache) / "tiny-bench", hidden_size=args.hidden, num_layers=args.layers)
    policy = load_policy(str(path), reference="none", backend=backend, temperature=1.0,
                         sampler_options={"entropies": "none"} if backend == "vllm" else None)
    try:
        prompts = make_prompts(policy.tokenizer, args.prompts)
        policy.generate(prompts[:2], max_new_tokens=4, generator=torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        gen = policy.generate(prompts, max_new_tokens=args.max_new_tokens, generator=torch.Generator().manual_seed(1))
        seconds = time.perf_counter() - t0
    finally:
        policy.close()
    tokens = sum(len(r) for r in gen.response_ids)
    return {"backend": backend, "prompts": len(prompts), "prompt_tokens": sum(len(p) for p in prompts),
            "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["both", "hf", "vllm"], default="both")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--cache", default=os.environ.get("EMPG_CACHE", str(Path(tempfile.gettempdir()) / "empg-bench")))
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.backend != "both":  # one backend, one JSON line (how the vLLM half is run in its environment)
        print(json.dumps(measure(args.backend, args)))
        return 0
    rows = [measure("hf", args)]
    if VLLM_PYTHON.exists():
        cmd = [str(VLLM_PYTHON), str(Path(__file__).resolve()), "--backend", "vllm"] + [
            f"--{k.replace('_', '-')}={getattr(args, k)}" for k in ("prompts", "max_new_tokens", "hidden", "layers", "cache")]
        env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    else:
        print(f"vLLM: skipped, {VLLM_PYTHON} does not exist (make .venv-vllm/.stamp builds it)")
    print(f"{'backend':8s} {'prompts':>8s} {'prompt tok':>11s} {'generated':>10s} {'seconds':>8s} {'tokens/s':>9s}")
    for r in rows:
        print(f"{r['backend']:8s} {r['prompts']:8d} {r['prompt_tokens']:11d} {r['tokens']:10d} {r['seconds']:8.2f} "
              f"{r['tokens_per_s']:9.1f}")
    results = {f"sampling_{r['backend']}_tokens_per_s": r["tokens_per_s"] for r in rows}
    if len(rows) == 2:
        results["sampling_vllm_over_hf"] = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
        print(f"vLLM / HF tokens/s: {results['sampling_vllm_over_hf']:.2f}x")
    results["runs"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
