"""The benchmark scripts run, and their synthetic batch is what they claim (fast settings).

The full-size run (``make bench``) is not repeated here; these tests only check that the scripts
work end to end and that the batch has the promised structure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
         "--ref-repeats", "1", "--min-speedup", "0", "--skip-memory", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "speed-up vectorised vs loop reference" in proc.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 4 and results["speedup"] > 0 and results["floor_s"] > 0


def test_bench_modulation_fails_when_a_bound_is_missed(tmp_path):
    # An impossible speed-up bound must give a non-zero exit status (the gate can fail).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_modulation.py"), "--rows", "2", "--repeats", "1",
         "--ref-repeats", "1", "--min-speedup", "1e9", "--skip-memory"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout
