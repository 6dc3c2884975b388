"""Smoke tests of the miniature experiments (toy_envs/experiments): each ``--quick`` run in a subprocess.

Each test runs ``python -m toy_envs.experiments.<name> --quick`` as a user would (tiny budget, one
worker, 2 seeds) and checks that ``results.json`` has the documented structure and that its values
are in range: rates and shares in [0, 1], every 95% interval ordered ``ci_low ≤ mean ≤ ci_high``,
one value per seed, PNGs written. The numbers themselves mean nothing at this budget. The statistics
helper is checked against hand-computed values.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toy_envs.experiments._common import parse_seeds, t_interval

ROOT = Path(__file__).resolve().parents[2]


def run_quick(name: str, out: Path, *extra: str) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", f"toy_envs.experiments.{name}", "--quick", "--out", str(out), "--seeds", "2",
         "--workers", "1", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wall time" in proc.stdout  # the table and the timing line are printed
    data = json.loads((out / "results.json").read_text())
    assert data["experiment"] == name
    assert data["quick"] is True and data["seeds"] == [0, 1]
    assert data["wall_time_s"] > 0
    return data


def check_summary(s: dict, n: int, lo: float = -math.inf, hi: float = math.inf) -> None:
    assert set(s) >= {"mean", "ci_low", "ci_high", "n"}
    assert s["n"] == n
    assert s["ci_low"] <= s["mean"] + 1e-12 and s["mean"] <= s["ci_high"] + 1e-12
    assert lo - 1e-12 <= s["mean"] <= hi + 1e-12
    if "values" in s:
        assert len(s["values"]) == n
        assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in s["values"])


def check_curve(c: dict, length: int, lo: float = -math.inf, hi: float = math.inf) -> None:
    assert len(c["mean"]) == len(c["ci_low"]) == len(c["ci_high"]) == length
    for m, a, b in zip(c["mean"], c["ci_low"], c["ci_high"]):
        assert a <= m + 1e-12 <= b + 2e-12
        assert lo - 1e-12 <= m <= hi + 1e-12


def test_t_interval_hand_computed():
    # values 1, 2, 3: mean 2, sd 1, half-width t_{0.975,2} / sqrt(3), where for 2 degrees of freedom the
    # quantile has the closed form t_{p,2} = (2p − 1) / sqrt(2p(1 − p)) = 4.302653 (p = 0.975) -> 2.484138.
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0
    t_975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert hi - m == pytest.approx(t_975_2 / math.sqrt(3), abs=1e-9)
    assert m - lo == pytest.approx(hi - m)
    assert t_interval([0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="finite"):
        t_interval([1.0, float("nan")])
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("4,7") == [4, 7]


def test_ablation_quick(tmp_path):
    data = run_quick("ablation", tmp_path, "--text-seeds", "0")
    grid = data["envs"]["gridworld"]
    assert grid["seeds"] == [0, 1]
    assert set(grid["methods"]) == {"grpo", "empg", "dapo", "dapo_empg_scaling", "dapo_empg_bonus", "dapo_empg"}
    updates = grid["settings"]["train_kwargs"]["updates"]
    for m in grid["methods"].values():
        check_summary(m["final_success"], 2, 0.0, 1.0)
        check_summary(m["auc"], 2, 0.0, 1.0)
        check_curve(m["curve"], updates, 0.0, 1.0)
    assert "textworld" not in data["envs"]  # --text-seeds 0 skips it
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000


def test_prop1_quick(tmp_path):
    data = run_quick("prop1", tmp_path)
    assert data["n_records"] > 0
    assert sum(b["count"] for b in data["bins"]) == data["n_records"]
    for b in data["bins"]:
        assert 0.0 <= b["h_low"] < b["h_high"] <= math.log(4) + 1e-9
        if "score_norm_sq" in b:
            # ‖e_a − π‖² = 1 − 2π_a + Σπ² lies in [0, 2); 1 − exp(−H₂) in [0, 1 − 1/4] for 4 actions.
            check_summary(b["score_norm_sq"], b["count"], 0.0, 2.0)
            assert 0.0 <= b["one_minus_exp_neg_h2_mean"] <= 0.75 + 1e-9
    o = data["overall"]
    assert 0.0 <= o["one_minus_exp_neg_h2_mean"] <= 0.75 + 1e-9
    assert -1.0 <= data["spearman_h_vs_norm"] <= 1.0
    assert (tmp_path / "prop1.png").stat().st_size > 1000


def test_clarity_quick(tmp_path):
    data = run_quick("clarity", tmp_path, "--n-eval", "10")
    assert set(data["methods"]) >= {"grpo", "empg_scaling", "empg"}
    for m in data["methods"].values():
        check_summary(m["clear_first"], 2, 0.0, 1.0)
        check_summary(m["success"], 2, 0.0, 1.0)
        if m["clear_among_wins"] is not None:
            check_summary(m["clear_among_wins"], m["clear_among_wins"]["n"], 0.0, 1.0)
        check_curve(m["curve_clear_first"], data["settings"]["updates"], 0.0, 1.0)
    assert (tmp_path / "clarity.png").stat().st_size > 1000


def test_clarity_dapo_quick(tmp_path):
    data = run_quick("clarity", tmp_path, "--base", "dapo")
    assert data["base"] == "dapo"
    assert set(data["methods"]) == {"dapo", "dapo_empg_scaling", "dapo_empg_bonus", "dapo_empg"}
    assert {m["method"] for m in data["methods"].values()} == set(data["methods"])  # the trainer's DAPO methods
    for m in data["methods"].values():
        check_summary(m["clear_first"], 2, 0.0, 1.0)
        check_summary(m["success"], 2, 0.0, 1.0)
        check_curve(m["curve_clear_first"], data["settings"]["updates"], 0.0, 1.0)
    # Paired differences are per seed: recompute them from the rows' per-seed values.
    vals = {k: m["clear_first"]["values"] for k, m in data["methods"].items()}
    for name, a, b in [("full - scaling only", "dapo_empg", "dapo_empg_scaling"), ("full - base", "dapo_empg", "dapo"),
                       ("bonus only - base", "dapo_empg_bonus", "dapo")]:
        s = data["paired_clear_first"][name]
        check_summary(s, 2, -1.0, 1.0)
        assert s["values"] == pytest.approx([x - y for x, y in zip(vals[a], vals[b])], abs=1e-12)
    assert (tmp_path / "clarity.png").stat().st_size > 1000


def test_clarity_configs_for_bases():
    from toy_envs.train import METHODS
    from toy_envs.experiments.clarity import configs_for

    grpo, dapo = configs_for("grpo"), configs_for("dapo")
    assert [r[3] for r in grpo] == [r[3] for r in dapo]  # same ζ per row: only the base changes
    # Each DAPO row pairs with the GRPO row of the same EMPG variant (METHODS: name -> (outcome, variant)).
    for g, d in zip(grpo, dapo):
        assert METHODS[g[2]] == ("grpo", METHODS[d[2]][1]) and METHODS[d[2]][0] == "dapo"
    with pytest.raises(ValueError, match="base"):
        configs_for("ppo")


def test_stability_quick(tmp_path):
    data = run_quick("stability", tmp_path)
    assert set(data["methods"]) == {"grpo", "empg", "dapo", "dapo_empg"}
    for m in data["methods"].values():
        for key in ("kl_mean", "kl_late_mean", "kl_max"):
            check_summary(m[key], 2, 0.0)  # a KL is >= 0
        check_summary(m["kl_late_std"], 2, 0.0)
        check_summary(m["success_final"], 2, 0.0, 1.0)
        check_curve(m["curve"], data["settings"]["updates"], 0.0)
    assert (tmp_path / "kl_prev.png").stat().st_size > 1000


def test_entropy_dynamics_quick(tmp_path):
    data = run_quick("entropy_dynamics", tmp_path)
    n_bins = data["n_bins"]
    h0 = data["h0_bin_mean"]
    assert len(h0) == n_bins
    assert all(0.0 <= h <= math.log(4) + 1e-9 for h in h0)
    check_summary(data["p0_success"], 2, 0.0, 1.0)
    assert all(a <= b + 1e-12 for a, b in zip(h0, h0[1:]))  # bins are entropy percentiles: increasing
    for m in data["methods"].values():
        assert len(m["delta"]) == len(m["abs_delta"]) == n_bins
        for d, a in zip(m["delta"], m["abs_delta"]):
            check_summary(d, 2, -math.log(4), math.log(4))
            check_summary(a, 2, 0.0, math.log(4))
            assert abs(d["mean"]) <= a["mean"] + 1e-12  # |mean ΔH| <= mean |ΔH|
    assert (tmp_path / "entropy_change.png").stat().st_size > 1000
