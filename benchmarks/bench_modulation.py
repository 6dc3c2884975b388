"""Benchmark: the vectorised step structure + EMPG modulation against two loop references.

What it measures (issues 2 and 17), all on ONE CPU thread (``torch.set_num_threads(1)``):

1. **Speed-ups over the loops.** A synthetic batch of 64 rows x 4096 tokens laid out like
   concatenated ChatML multi-turn rollouts: a prompt, then 12-16 turns per row, each an assistant
   turn (the multi-token header ``<|im_start|>assistant\\n`` as ``start``, 30-120 action tokens,
   the end-of-turn token ``<|im_end|>`` as ``end``) followed by an observation turn of 40-160 tokens
   (a user header, the tokens, and ``<|im_end|>`` too, so the end token also occurs outside steps),
   then right padding (``mask`` False). The vectorised path is ``empg.step_ids_from_delimiters`` +
   ``empg.modulate_advantages``; it is compared with

   * the **step-slicing loop** ``empg.reference.step_slicing_modulation_ref``: the same job written
     the way the authors' pseudocode reads (per row, list scans of the token ids for the headers
     and ends; per step, the mean of an entropy slice; a second loop scaling and shifting each
     step's slice in place; one mean over the steps' first tokens). The strongest simple loop:
     required >= 30x (``--min-loop-speedup``);
   * the **token-level references** ``empg.reference.step_ids_from_delimiters_ref`` (a token-by-token
     state machine per row) + ``empg.reference.modulate_advantages_ref`` (loops over rows, tokens
     and steps): required >= 10x (``--min-speedup``). With ``--ref-rows R`` they run on the first R
     rows and their time is scaled linearly to the full batch (x B / R), which the output then says.

   The script first checks that all three give the same step ids and advantages (float32 vs
   float64, tolerance 1e-5).

2. **Modulation time over a memory pass.** ``modulate_advantages`` alone (and with the delimiter
   search) divided by the time of one pass that reads its three ``[B, L]`` inputs
   (``adv.sum() + ent.sum() + ids.sum()``): how many "reads of the inputs" it costs. Required
   <= 10x (``--max-pass-ratio``).

   **Timing.** Each figure is CPU time of this thread (``time.thread_time``), which on one thread
   is the wall-clock time of an idle machine, but is not inflated while other processes hold the
   CPU (the development machine is shared). The measurements are interleaved in ``--repeats``
   rounds (floor, modulation, pipeline, step-slicing loop, in each round; the floor averaged over 20
   calls), and each gated ratio is the median over the rounds of the ratio within a round, so a busy
   period slows both sides of a ratio alike. The best-of-rounds ratios (each side's fastest round)
   are printed too: on a loaded machine they are the closer estimate of what an idle one shows.
   Each round also times ``--steady-calls`` consecutive calls of ``modulate_advantages`` and of the
   vectorised path (averaged, as the floor is); their ratios are printed as the "steady state" and
   are not gated: the gated figures time one call, whose caches the loop before it has evicted.

3. **Peak memory of ``empg.token_entropy``** on ``[8, 1024, 32000]`` float32 logits (1 GiB),
   divided by the logits' own size. A fresh Python subprocess builds the logits and measures two
   things, both as extra bytes over the logits' size:

   * *live tensors* (the number the bound applies to): the call runs under torch's CPU memory
     profiler (``torch.profiler.profile(profile_memory=True)``); its allocation and free events,
     replayed in time order, give the largest total of tensor bytes alive at once during the call,
     i.e. the chunked work-space. This is deterministic and is what the algorithm itself holds.
   * *peak RSS growth* (what the operating system sees): the growth of the process's high-water
     mark ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` across the first call (before it, the
     high-water mark equals the RSS after building the logits). It also counts memory that the C
     allocator keeps after torch frees it, so it varies from run to run; it is printed, not gated.

   As a check that the method sees a full copy, the same measurement runs on the unchunked formula
   ``-(softmax(z) * log_softmax(z)).sum(-1)`` on smaller ``[2, 1024, 32000]`` logits (the ratio does
   not depend on the size); it should be >= 2. The script exits with status 1 when the chunked
   live-tensor ratio is >= ``--max-mem-ratio`` (0.5): a full float32 copy of the probabilities alone
   would be 1.0.

The script exits with status 1 when any ratio is outside its bound.
Run: ``python benchmarks/bench_modulation.py`` (``--help`` for options; ``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import empg
from empg.reference import modulate_advantages_ref, step_ids_from_delimiters_ref, step_slicing_modulation_ref

# Qwen2.5 / ChatML special tokens, as a real tokenizer emits them.
IM_START, IM_END, NEWLINE = 151644, 151645, 198
ASSISTANT, USER = 77091, 872
PAD = 151643
START = [IM_START, ASSISTANT, NEWLINE]  # "<|im_start|>assistant\n": the step header (3 tokens)
END = [IM_END]  # "<|im_end|>": end of turn
VOCAB = 32000  # ordinary tokens are drawn from [0, VOCAB)


def make_batch(rows: int = 64, length: int = 4096, seed: int = 0):
    """A synthetic batch of concatenated multi-turn rows (see the module docstring).

    Returns:
        ``token_ids [B, L]`` int64, ``mask [B, L]`` bool (False on padding), ``advantages [B, L]``
        float32 (one GRPO-like value per row on every token), ``entropy [B, L]`` float32 (>= 0),
        and the number of turns per row.
    """
    g = torch.Generator().manual_seed(seed)

    def randint(lo: int, hi: int) -> int:  # inclusive bounds
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    def words(n: int) -> list[int]:
        return torch.randint(0, VOCAB, (n,), generator=g).tolist()

    token_rows, turns = [], []
    for _ in range(rows):
        n_turns = randint(12, 16)
        # System + user prompt; the first observation is part of it.
        toks = [IM_START, 8948, NEWLINE] + words(30) + [IM_END, NEWLINE]
        toks += [IM_START, USER, NEWLINE] + words(randint(40, 160)) + [IM_END, NEWLINE]
        for t in range(n_turns):
            toks += START + words(randint(30, 120)) + END + [NEWLINE]
            if t < n_turns - 1:
                toks += [IM_START, USER, NEWLINE] + words(randint(40, 160)) + [IM_END, NEWLINE]
        if len(toks) > length:
            raise ValueError(f"a row of {len(toks)} tokens does not fit in length={length}")
        token_rows.append(toks + [PAD] * (length - len(toks)))
        turns.append(n_turns)
    token_ids = torch.tensor(token_rows, dtype=torch.long)
    mask = token_ids != PAD
    advantages = torch.randn(rows, 1, generator=g).expand(rows, length).contiguous()
    entropy = torch.rand(rows, length, generator=g) * 3.0
    return token_ids, mask, advantages, entropy, turns


#: The clock of every timing: CPU time of the calling thread (see the module docstring).
clock = time.thread_time


def timed(fn, calls: int = 1) -> float:
    """CPU seconds of one call of ``fn``, averaged over ``calls`` consecutive calls."""
    t0 = clock()
    for _ in range(calls):
        fn()
    return (clock() - t0) / calls


def median(xs: list[float]) -> float:
    return statistics.median(xs)


_MEM_CHILD = r"""
import json, resource, sys, torch
from torch.profiler import ProfilerActivity, profile
torch.set_num_threads(1)
shape, mode = tuple(int(x) for x in sys.argv[1].split(",")), sys.argv[2]
import empg
z = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
size = z.numel() * z.element_size()
if mode == "chunked":
    call = lambda: empg.token_entropy(z)
else:  # the unchunked textbook formula, to check that the method sees a full copy
    call = lambda: -(torch.softmax(z, -1) * torch.log_softmax(z, -1)).sum(-1)
peak_rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB -> bytes
before = peak_rss()
call()
rss_growth = peak_rss() - before
with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    call()
events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
live = top = 0
for _, nbytes in events:  # allocations are positive, frees negative
    live += nbytes
    top = max(top, live)
print(json.dumps({"live": top / size, "rss": rss_growth / size}))
"""


def peak_memory_ratio(shape: tuple[int, ...], mode: str) -> dict[str, float]:
    """Peak extra memory of one entropy call in a fresh process, over the logits' size.

    Returns ``{"live": peak live tensor bytes, "rss": peak RSS growth}``, both divided by the size.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEM_CHILD, ",".join(map(str, shape)), mode],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=64, help="batch rows B")
    p.add_argument("--length", type=int, default=4096, help="tokens per row L")
    p.add_argument("--repeats", type=int, default=25, help="interleaved timing rounds (medians are reported)")
    p.add_argument("--ref-rows", type=int, default=0,
                   help="time the token-level references on this many rows and scale linearly to B (0: all rows)")
    p.add_argument("--ref-repeats", type=int, default=2, help="timed runs of the token-level references (median)")
    p.add_argument("--steady-calls", type=int, default=5,
                   help="consecutive calls averaged for the steady-state figures (printed, not gated)")
    p.add_argument("--min-loop-speedup", type=float, default=30.0, help="exit 1 below this speed-up over the step-slicing loop")
    p.add_argument("--min-speedup", type=float, default=10.0, help="exit 1 below this speed-up over the token-level references")
    p.add_argument("--max-pass-ratio", type=float, default=10.0,
                   help="exit 1 above this ratio of modulate_advantages to one pass over its inputs")
    p.add_argument("--max-mem-ratio", type=float, default=0.5, help="exit 1 at or above this memory ratio")
    p.add_argument("--skip-memory", action="store_true", help="skip the token_entropy memory measurement")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    token_ids, mask, adv, ent, turns = make_batch(args.rows, args.length)
    b, length = token_ids.shape
    ref_rows = min(args.ref_rows, b) if args.ref_rows > 0 else b
    print(f"batch: {b} rows x {length} tokens, {min(turns)}-{max(turns)} turns/row, "
          f"{int(mask.sum())} non-pad tokens; start={START} end={END}; torch {torch.__version__}, 1 thread")

    def vectorised():
        ids = empg.step_ids_from_delimiters(token_ids, start=START, end=END, mask=mask)
        return ids, empg.modulate_advantages(adv, ent, ids)

    def step_loop():
        return step_slicing_modulation_ref(token_ids, adv, ent, start=START, end=END, mask=mask)

    # Same results first: the step-slicing loop on the whole batch, the token-level references on
    # the first ref_rows rows (a batch of its own: the modulation is per batch).
    ids, out = vectorised()
    n_steps = int((ids.max(dim=1).values + 1).sum())
    if n_steps != sum(turns):
        raise AssertionError(f"found {n_steps} steps, built {sum(turns)}")
    if not torch.allclose(step_loop().double(), out.double(), atol=1e-5, rtol=1e-5):
        raise AssertionError("vectorised and step-slicing loop advantages differ")
    sub = slice(0, ref_rows)
    t_ref_ids, t_ref_mod = [], []
    for _ in range(max(1, args.ref_repeats)):
        t0 = clock()
        ids_ref = step_ids_from_delimiters_ref(token_ids[sub], start=START, end=END, mask=mask[sub])
        t1 = clock()
        out_ref = modulate_advantages_ref(adv[sub], ent[sub], ids_ref)
        t_ref_ids.append(t1 - t0)
        t_ref_mod.append(clock() - t1)
    ids_sub = empg.step_ids_from_delimiters(token_ids[sub], start=START, end=END, mask=mask[sub])
    out_sub = empg.modulate_advantages(adv[sub], ent[sub], ids_sub)
    if not torch.equal(ids_sub, ids_ref):
        raise AssertionError("vectorised and reference step ids differ")
    if not torch.allclose(out_sub.double(), out_ref, atol=1e-5, rtol=1e-5):
        raise AssertionError("vectorised and reference advantages differ")

    # Interleaved rounds: every ratio is taken within a round, then the median over rounds.
    def floor():
        return adv.sum() + ent.sum() + ids.sum()

    for fn in (floor, vectorised, step_loop):
        fn()  # warm-up
    rounds = {"floor": [], "modulate": [], "pipeline": [], "loop": [], "modulate_steady": [], "pipeline_steady": []}
    for _ in range(max(1, args.repeats)):
        rounds["floor"].append(timed(floor, 20))
        rounds["modulate"].append(timed(lambda: empg.modulate_advantages(adv, ent, ids)))
        rounds["pipeline"].append(timed(vectorised))
        rounds["loop"].append(timed(step_loop))
        # Informational, not gated: the mean of consecutive calls (as the floor is timed).
        rounds["modulate_steady"].append(timed(lambda: empg.modulate_advantages(adv, ent, ids), args.steady_calls))
        rounds["pipeline_steady"].append(timed(vectorised, args.steady_calls))
    t = {name: median(v) for name, v in rounds.items()}
    loop_speedup = median([lp / v for lp, v in zip(rounds["loop"], rounds["pipeline"])])
    pass_ratio = median([m / f for m, f in zip(rounds["modulate"], rounds["floor"])])
    pipeline_pass_ratio = median([v / f for v, f in zip(rounds["pipeline"], rounds["floor"])])
    steady_loop_speedup = median([lp / v for lp, v in zip(rounds["loop"], rounds["pipeline_steady"])])
    steady_pass_ratio = median([m / f for m, f in zip(rounds["modulate_steady"], rounds["floor"])])
    # Best-of-rounds ratios (each side's fastest round): what an idle machine would show; printed, not gated.
    best = {name: min(v) for name, v in rounds.items()}
    t_ref_sub = median([i + m for i, m in zip(t_ref_ids, t_ref_mod)])
    t_ref = t_ref_sub * b / ref_rows
    speedup = t_ref / t["pipeline"]
    scaled = (f"measured on {ref_rows} of {b} rows ({t_ref_sub:.2f} s), SCALED LINEARLY x{b / ref_rows:g}"
              if ref_rows < b else f"measured on all {b} rows")
    ids_share = median(t_ref_ids) / (median(t_ref_ids) + median(t_ref_mod))

    print(f"timing: CPU time of this thread, medians of {args.repeats} interleaved rounds")
    print(f"vectorised   step_ids_from_delimiters + modulate_advantages : {t['pipeline'] * 1e3:9.3f} ms "
          f"(modulate_advantages alone {t['modulate'] * 1e3:.3f} ms)")
    print(f"step-slicing loop (reference.step_slicing_modulation_ref)   : {t['loop'] * 1e3:9.3f} ms")
    print(f"token-level  loop step ids + loop modulation                : {t_ref * 1e3:9.3f} ms "
          f"(median of {args.ref_repeats}, {scaled}; step ids {ids_share:.0%} of it)")
    print(f"==> speed-up vectorised vs step-slicing loop: {loop_speedup:.1f}x (required >= {args.min_loop_speedup:g}x; "
          f"best of rounds {best['loop'] / best['pipeline']:.1f}x)")
    print(f"==> speed-up vectorised vs loop reference: {speedup:.0f}x (required >= {args.min_speedup:g}x)")
    print(f"one pass over the modulation's inputs (adv.sum() + ent.sum() + ids.sum()): {t['floor'] * 1e3:.3f} ms")
    print(f"==> modulation / memory floor: {pass_ratio:.1f}x (required <= {args.max_pass_ratio:g}x; "
          f"best of rounds {best['modulate'] / best['floor']:.1f}x; with the delimiter search: {pipeline_pass_ratio:.1f}x)")

    print(f"not gated, steady state (mean of {args.steady_calls} consecutive calls, as the floor is timed): "
          f"vectorised path {t['pipeline_steady'] * 1e3:.3f} ms = {steady_loop_speedup:.1f}x faster than the step-slicing "
          f"loop; modulate_advantages {t['modulate_steady'] * 1e3:.3f} ms = {steady_pass_ratio:.1f}x the memory floor")

    results = {
        "rows": b, "length": length, "ref_rows": ref_rows, "rounds": args.repeats,
        "vectorised_s": t["pipeline"], "modulate_s": t["modulate"], "floor_s": t["floor"],
        "step_loop_s": t["loop"], "reference_s": t_ref, "reference_subset_s": t_ref_sub,
        "speedup_step_loop": loop_speedup, "speedup": speedup,
        "modulation_over_floor": pass_ratio, "pipeline_over_floor": pipeline_pass_ratio,
        "best_speedup_step_loop": best["loop"] / best["pipeline"], "best_modulation_over_floor": best["modulate"] / best["floor"],
        "steady_speedup_step_loop": steady_loop_speedup, "steady_modulation_over_floor": steady_pass_ratio,
    }
    ok = True
    for failed, what in ((loop_speedup < args.min_loop_speedup, "speed-up over the step-slicing loop"),
                         (speedup < args.min_speedup, "speed-up over the token-level references"),
                         (pass_ratio > args.max_pass_ratio, "modulation / memory pass")):
        if failed:
            print(f"FAILED: {what} is outside its bound")
            ok = False
    if not args.skip_memory:
        shape = (8, 1024, 32000)
        mem = peak_memory_ratio(shape, "chunked")
        naive = peak_memory_ratio((2, 1024, 32000), "naive")
        print(f"==> token_entropy peak memory on {list(shape)} float32 logits "
              f"({8 * 1024 * 32000 * 4 / 2**30:.2f} GiB), over the logits' size: "
              f"{mem['live']:.3f}x in live tensors (required < {args.max_mem_ratio:g}x), "
              f"{mem['rss']:.3f}x in peak RSS growth (allocator-dependent, not gated)")
        print(f"    method check, unchunked -(softmax * log_softmax).sum(-1) on [2, 1024, 32000]: "
              f"{naive['live']:.2f}x live, {naive['rss']:.2f}x RSS")
        results.update(token_entropy_mem_live=mem["live"], token_entropy_mem_rss=mem["rss"],
                       naive_entropy_mem_live=naive["live"], naive_entropy_mem_rss=naive["rss"])
        if mem["live"] >= args.max_mem_ratio:
            print("FAILED: token_entropy peak memory is outside its bound")
            ok = False
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not ok:
        print("FAILED: a ratio is outside its bound", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
