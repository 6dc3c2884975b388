"""The log-prob and sampling benchmarks run end to end (small settings; ``make bench`` runs the full size)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_logprobs_measures_the_chunked_saving(tmp_path):
    out = tmp_path / "b.json"
    # 512 tokens, chunks of 32: the chunked path's work-space is a small fraction of the logits.
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_logprobs.py"), "--batch", "2", "--length", "256",
                           "--vocab", "8000", "--hidden", "32", "--chunk-bytes", str(4 * 8000 * 32), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["logprob_chunked_mem_over_logits"] < 0.25
    assert res["logprob_plain_mem_over_logits"] > 1.0  # the plain path really holds the logits
    assert all(v <= 1e-4 for v in res["max_abs_diff"].values())
    assert "chunked / plain: memory" in proc.stdout


def test_bench_sampling_hf_half_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_sampling.py"), "--backend", "hf", "--prompts", "3",
                           "--max-new-tokens", "5", "--hidden", "64", "--cache", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["backend"] == "hf" and res["prompts"] == 3 and 3 <= res["tokens"] <= 15 and res["tokens_per_s"] > 0
