"""Run every ``benchmarks/bench_*.py`` in a subprocess and print a summary (``make bench``).

Each script prints its own report, writes its numbers to a JSON file (``--json PATH``) and exits
non-zero when a measured ratio is outside its bound. This runner streams each report, then prints
one summary table of the headline ratios, and exits 1 when any script failed.

Run: ``python benchmarks/run_all.py [NAME ...]`` (names filter the scripts, e.g. ``modulation``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Headline numbers shown in the summary: JSON key -> (label, format).
HEADLINES = {
    "speedup_step_loop": ("speed-up vs the step-slicing loop (>= 30x)", "{:.1f}x"),
    "speedup": ("speed-up vs the token-level references (>= 10x)", "{:.0f}x"),
    "modulation_over_floor": ("modulate_advantages / one pass over inputs (<= 10x)", "{:.1f}x"),
    "pipeline_over_floor": ("step ids + modulation / one pass over inputs", "{:.1f}x"),
    "steady_speedup_step_loop": ("  steady state, not gated: speed-up vs the loop", "{:.1f}x"),
    "steady_modulation_over_floor": ("  steady state, not gated: modulation / one pass", "{:.1f}x"),
    "token_entropy_mem_live": ("token_entropy peak live memory / logits (< 0.5x)", "{:.3f}x"),
    "token_entropy_mem_rss": ("token_entropy peak RSS growth / logits", "{:.3f}x"),
    "logprob_chunked_mem_over_logits": ("chunked log-probs extra memory / logits (<= 0.25x)", "{:.3f}x"),
    "logprob_plain_mem_over_logits": ("plain log-probs extra memory / logits", "{:.3f}x"),
    "logprob_chunked_time_over_plain": ("chunked / plain log-prob fwd+bwd time", "{:.2f}x"),
    "sampling_hf_tokens_per_s": ("HF sampler tokens/s (tiny model, CPU)", "{:.0f}"),
    "sampling_vllm_tokens_per_s": ("vLLM tokens/s (same prompts, .venv-vllm)", "{:.0f}"),
    "sampling_vllm_over_hf": ("vLLM / HF sampler tokens/s", "{:.2f}x"),
    "webshop_search_speedup": ("WebShop search: rank_bm25 / bm25s median, same size", "{:.0f}x"),
}


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(name in s.stem for name in argv)]
    if not scripts:
        print(f"no benchmark matches {argv}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            print(f"=== {script.name} ===", flush=True)
            out_json = Path(tmp) / f"{script.stem}.json"
            t0 = time.perf_counter()
            rc = subprocess.call([sys.executable, str(script), "--json", str(out_json)], env=env)
            wall = time.perf_counter() - t0
            results = json.loads(out_json.read_text()) if out_json.exists() else {}
            rows.append((script.stem, rc, wall, results))
            if rc != 0:
                failed.append(script.name)
            print(flush=True)
    print("=== summary ===")
    for name, rc, wall, results in rows:
        print(f"{name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {wall:.1f} s")
        for key, (label, fmt) in HEADLINES.items():
            if key in results:
                print(f"  {label:52s} {fmt.format(results[key])}")
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
