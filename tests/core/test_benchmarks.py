"""The benchmark scripts run, and their synthetic batch is what they claim (fast settings).

The full-size run (``make bench``) is not repeated here; these tests only check that the scripts
work end to end and that the batch has the promised structure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_modulation  # noqa: E402

import empg  # noqa: E402


def test_synthetic_batch_has_the_promised_turns():
    token_ids, mask, adv, ent, turns = bench_modulation.make_batch(rows=6, length=4096, seed=3)
    assert token_ids.shape == (6, 4096) and mask.shape == adv.shape == ent.shape == (6, 4096)
    assert all(12 <= t <= 16 for t in turns)
    ids = empg.step_ids_from_delimiters(token_ids, start=bench_modulation.START, end=bench_modulation.END, mask=mask)
    # One step per assistant turn, numbered 0..T-1 in each row.
    assert (ids.max(dim=1).values + 1).tolist() == turns
    # Every step is 30-120 action tokens plus the one-token end delimiter.
    for row in range(6):
        sizes = torch.bincount(ids[row][ids[row] >= 0])
        assert int(sizes.min()) >= 31 and int(sizes.max()) <= 121
    assert not bool(mask[:, -1].any()), "rows are shorter than 4096, so they end in padding"
    assert float(ent.min()) >= 0


def test_bench_modulation_runs_and_writes_json(tmp_path):
    out = tmp_path / "b.json"
    # Tiny settings; no speed bound (at 4 rows the fixed per-call overhead dominates).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_modulation.py"), "--rows", "4", "--repeats", "1",
         "--ref-repeats", "1", "--min-speedup", "0", "--min-loop-speedup", "0", "--max-pass-ratio", "inf",
         "--skip-memory", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "speed-up vectorised vs loop reference" in proc.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 4 and results["speedup"] > 0 and results["floor_s"] > 0
    # The step-slicing loop and the memory-pass ratio are measured and reported too (issue 17).
    assert "speed-up vectorised vs step-slicing loop" in proc.stdout
    assert results["speedup_step_loop"] > 0 and results["step_loop_s"] > 0
    assert results["modulation_over_floor"] == pytest.approx(results["modulate_s"] / results["floor_s"], rel=0.5)


def test_bench_modulation_fails_when_a_bound_is_missed(tmp_path):
    # An impossible speed-up bound must give a non-zero exit status (the gate can fail).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_modulation.py"), "--rows", "2", "--repeats", "1",
         "--ref-repeats", "1", "--min-speedup", "1e9", "--skip-memory"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout


def test_bench_modulation_fails_when_the_new_bounds_are_missed(tmp_path):
    # Each bound of issue 17 can fail on its own: an impossible loop speed-up, an impossible pass ratio.
    base = [sys.executable, str(ROOT / "benchmarks" / "bench_modulation.py"), "--rows", "2", "--repeats", "1",
            "--ref-repeats", "1", "--min-speedup", "0", "--skip-memory"]
    for extra, what in ((["--min-loop-speedup", "1e9", "--max-pass-ratio", "inf"], "step-slicing loop"),
                        (["--min-loop-speedup", "0", "--max-pass-ratio", "0"], "memory pass")):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"FAILED: " in proc.stdout and what in proc.stdout
