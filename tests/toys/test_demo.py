"""Smoke test of `make demo` at a reduced budget: python -m toy_envs.demo --quick in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_demo_quick(tmp_path):
    pytest.importorskip("toy_envs.gridworld")
    out = tmp_path / "demo"
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "toy_envs.demo", "--quick", "--out", str(out), "--seeds", "2",
                        "--workers", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert "final success" in p.stdout and "wall time" in p.stdout
    res = json.loads((out / "results.json").read_text())
    assert isinstance(res["env"], str) and res["env"] == "toy_envs/KeyDoor-v0"
    assert res["seeds"] == [0, 1]
    assert set(res["methods"]) == {"grpo", "empg"}
    for m in ("grpo", "empg"):
        entry = res["methods"][m]
        for key in ("final_success", "auc"):
            assert len(entry[key]) == 2 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in entry[key])
        assert len(entry["updates_to_80"]) == 2
        assert len(entry["curves"]) == 2 and len(entry["curves"][0]) == res["config"]["updates"]
    assert res["methods"]["empg"]["empg"] == "full" and res["methods"]["grpo"]["empg"] == "off"
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_statistics_helpers():
    from toy_envs.demo import mean_ci, updates_to_threshold, welch_diff_ci

    # mean of (0, 1): 0.5; sd = sqrt(0.5); half-width = t_{0.975,1} · sd / sqrt(2) = 12.706 · 0.5 = 6.353
    m, h = mean_ci([0.0, 1.0])
    assert m == 0.5 and abs(h - 6.353) < 1e-9
    # trailing 5-update mean first reaches 0.8 at update 5 for (0.6, 0.8, 0.8, 0.8, 1.0): mean 0.8
    assert updates_to_threshold([0.6, 0.8, 0.8, 0.8, 1.0, 1.0]) == 5
    assert updates_to_threshold([0.0] * 10) is None
    d, h = welch_diff_ci([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert d == 1.0 and h == 0.0
