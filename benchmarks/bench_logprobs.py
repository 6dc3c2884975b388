"""Benchmark: teacher-forced log-probs + entropies from hidden states, chunked vs the plain logits path.

What it measures (issue 10, item 4), forward + backward of ``sum(logp)`` for ``[B, L] = [2, 1024]``
tokens at Qwen2.5's vocabulary V = 151,936 (one float32 logits tensor: 1.245 GB), hidden size
``--hidden`` (default 256: the logits' size does not depend on it, the run time does; Qwen2.5-1.5B
has 1536), float32, in a fresh subprocess per path:

* **plain**: ``logits = hidden @ W^T`` → ``log_softmax(logits / T)`` → gather, the entropy by
  :func:`empg.token_entropy` without gradient (what :class:`scaled.policy.Policy` did before).
* **chunked**: :func:`scaled.logprobs.chunked_logprobs` (log-probs and entropies chunk by chunk,
  each chunk's logits recomputed in the backward pass).

Memory: the call runs under torch's CPU memory profiler; its allocation and free events, replayed
in time order, give the largest total of tensor bytes alive at once. The **extra** memory is that
peak minus the gradients the call must produce anyway (``W.grad``, ``hidden.grad``), divided by the
size of one float32 ``[B, L, V]`` logits tensor. Target (issue 10): chunked <= 0.25x; the script
exits 1 above ``--max-ratio``. Time: wall clock of one un-profiled forward + backward (after the
profiled one, so both paths run warm). It also checks that both paths agree: log-probs and
entropies to 1e-4, ``hidden.grad`` to 1e-4, sampled rows of ``W.grad`` to 1e-4.

Run: ``python benchmarks/bench_logprobs.py [--hidden 1536] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time, torch
from torch.profiler import ProfilerActivity, profile
sys.path.insert(0, sys.argv[1])
import empg
from scaled.logprobs import chunked_logprobs
mode, b, l, v, h, t, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
chunk_bytes = int(sys.argv[9])
g = torch.Generator().manual_seed(0)
hidden = torch.randn(b * l, h, generator=g).requires_grad_()
weight = (torch.randn(v, h, generator=g) / h ** 0.5).requires_grad_()
targets = torch.randint(0, v, (b * l,), generator=g)

def plain():
    z = torch.nn.functional.linear(hidden, weight).float() / t
    logp = torch.log_softmax(z, -1).gather(-1, targets[:, None]).squeeze(-1)
    with torch.no_grad():
        ent = empg.token_entropy(z.detach())
    return logp, ent

def chunked():
    return chunked_logprobs(hidden, weight, targets, temperature=t, chunk_bytes=chunk_bytes)

fn = plain if mode == "plain" else chunked
def step():
    hidden.grad = weight.grad = None
    logp, ent = fn()
    logp.sum().backward()
    return logp.detach(), ent.detach()

peak_rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rss0 = peak_rss()
with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    logp, ent = step()
rss_growth = peak_rss() - rss0
events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
live = top = 0
for _, nbytes in events:
    live += nbytes
    top = max(top, live)
grads = weight.grad.numel() * 4 + hidden.grad.numel() * 4
t0 = time.perf_counter()
logp, ent = step()
seconds = time.perf_counter() - t0
torch.save({"logp": logp, "ent": ent, "hidden_grad": hidden.grad, "w_rows": weight.grad[::997].clone()}, out)
print(json.dumps({"peak_live": top, "extra": top - grads, "rss_growth": rss_growth, "seconds": seconds}))
"""


def run_path(mode: str, args, folder: Path) -> dict:
    out = folder / f"{mode}.pt"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), mode, str(args.batch), str(args.length),
                           str(args.vocab), str(args.hidden), str(args.temperature), str(out), str(args.chunk_bytes)],
                          check=True, capture_output=True, text=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["file"] = out
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=151_936)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--chunk-bytes", type=int, default=64 * 2**20, help="chunked_logprobs budget of one [C, V] float32 buffer")
    p.add_argument("--max-ratio", type=float, default=0.25, help="exit 1 when the chunked extra memory / logits is above this")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    import torch

    logits_bytes = args.batch * args.length * args.vocab * 4
    print(f"[{args.batch}, {args.length}] tokens, V = {args.vocab:,}, H = {args.hidden}: one float32 logits tensor "
          f"= {logits_bytes / 1e9:.3f} GB")
    with tempfile.TemporaryDirectory() as tmp:
        res = {mode: run_path(mode, args, Path(tmp)) for mode in ("plain", "chunked")}
        a, b = (torch.load(res[m]["file"]) for m in ("plain", "chunked"))
        agree = {k: float((a[k] - b[k]).abs().max()) for k in ("logp", "ent", "hidden_grad", "w_rows")}
    print(f"{'path':8s} {'extra memory':>14s} {'/ logits':>9s} {'peak RSS growth':>16s} {'fwd+bwd':>9s}")
    for mode in ("plain", "chunked"):
        r = res[mode]
        print(f"{mode:8s} {r['extra'] / 1e6:11.1f} MB {r['extra'] / logits_bytes:8.3f}x {r['rss_growth'] / 1e6:13.1f} MB "
              f"{r['seconds']:8.2f}s")
    ratio = res["chunked"]["extra"] / logits_bytes
    mem_vs_plain = res["chunked"]["extra"] / res["plain"]["extra"]
    time_vs_plain = res["chunked"]["seconds"] / res["plain"]["seconds"]
    print(f"chunked / plain: memory {mem_vs_plain:.3f}x, time {time_vs_plain:.2f}x")
    print("max |plain - chunked|: " + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()))
    results = {
        "logprob_chunked_mem_over_logits": ratio,
        "logprob_plain_mem_over_logits": res["plain"]["extra"] / logits_bytes,
        "logprob_chunked_mem_over_plain": mem_vs_plain,
        "logprob_chunked_time_over_plain": time_vs_plain,
        "logprob_plain_seconds": res["plain"]["seconds"],
        "logprob_chunked_seconds": res["chunked"]["seconds"],
        "max_abs_diff": agree,
        "settings": {k: getattr(args, k) for k in ("batch", "length", "vocab", "hidden", "temperature", "chunk_bytes")},
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = ratio <= args.max_ratio and all(v <= 1e-4 for v in agree.values())
    if not ok:
        print(f"FAILED: chunked extra memory {ratio:.3f}x (bound {args.max_ratio}) or disagreement above 1e-4")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
