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
    if n == 1:  # one value: no interval (None, printed n/a), never a zero-width one or NaN
        assert s["ci_low"] is None and s["ci_high"] is None
    else:
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
        assert lo - 1e-12 <= a and b <= hi + 1e-12  # the band is clipped to the quantity's range


def test_t_interval_hand_computed():
    # values 1, 2, 3: mean 2, sd 1, half-width t_{0.975,2} / sqrt(3), where for 2 degrees of freedom the
    # quantile has the closed form t_{p,2} = (2p − 1) / sqrt(2p(1 − p)) = 4.302653 (p = 0.975) -> 2.484138.
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0
    t_975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert hi - m == pytest.approx(t_975_2 / math.sqrt(3), abs=1e-9)
    assert m - lo == pytest.approx(hi - m)
    with pytest.raises(ValueError, match="finite"):
        t_interval([1.0, float("nan")])
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("4,7") == [4, 7]


def test_one_value_has_no_interval():
    # A t-interval from one value is undefined: t_interval refuses it, summarize/fmt_ci say n/a, never 0 or NaN.
    from toy_envs.experiments._common import fmt_ci, half_width, mean_curve, summarize

    with pytest.raises(ValueError, match="at least 2 values"):
        t_interval([0.5])
    s = summarize([0.5])
    assert s == {"mean": 0.5, "ci_low": None, "ci_high": None, "n": 1, "values": [0.5]}
    assert half_width(s) is None and fmt_ci(s) == "0.50 ± n/a"
    assert fmt_ci(summarize([0.0, 1.0]), 2) == "0.50 ± 6.35"  # t_{0.975,1}·sd/√2 = tan(0.475π)·0.5
    c = mean_curve([[0.2, 0.4]])
    assert c["mean"] == [0.2, 0.4] and c["ci_low"] is None and c["ci_high"] is None
    with pytest.raises(ValueError, match="finite"):
        summarize([float("nan")])


def test_mean_curve_band_clipped():
    from toy_envs.experiments._common import mean_curve

    # success 0, 0, 1 at one update: mean 1/3, the raw t-band (-1.10, 1.77) leaves [0, 1]
    c = mean_curve([[0.0], [0.0], [1.0]], 0.0, 1.0)
    assert c["mean"] == [pytest.approx(1 / 3)] and c["ci_low"] == [0.0] and c["ci_high"] == [1.0]
    raw = mean_curve([[0.0], [0.0], [1.0]])
    assert raw["ci_low"][0] < 0 < 1 < raw["ci_high"][0] and raw["per_seed"] == [[0.0], [0.0], [1.0]]


def test_parse_seeds_sorted_and_unique():
    import argparse

    from toy_envs.experiments._common import base_parser

    # sorted, so per-seed lists (built in seed order) and results.json["seeds"] line up
    assert parse_seeds("1,0") == [0, 1] and parse_seeds("205, 201,203") == [201, 203, 205]
    for bad in ("1,0,1", "3,3"):
        with pytest.raises(ValueError, match="--seeds .*more than once"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds("-2")
    assert isinstance(pytest.raises(ValueError, parse_seeds, "x").value, argparse.ArgumentTypeError)
    p = base_parser("x", "x", "2")
    assert p.parse_args(["--seeds", "9,4"]).seeds == [4, 9]


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


ROWS = {"grpo", "empg", "dapo", "dapo_empg", "empg_scaling", "empg_bonus", "dapo_empg_scaling", "dapo_empg_bonus"}


def check_clarity(data: dict, n_seeds: int, env: str) -> None:
    assert data["env"] == env
    assert set(data["methods"]) == ROWS  # --quick skips the ζ sweep
    updates = data["settings"]["updates"]
    for m in data["methods"].values():
        share = m["predictable_route_share"]
        assert len(share) == n_seeds and all(v is None or 0.0 <= v <= 1.0 for v in share)
        for key in ("fork_predictable_share", "success"):
            assert len(m[key]) == n_seeds and all(0.0 <= v <= 1.0 for v in m[key])
            check_summary(m[f"{key}_summary"], n_seeds, 0.0, 1.0)
        defined = [v for v in share if v is not None]
        if defined:
            check_summary(m["predictable_route_share_summary"], len(defined), 0.0, 1.0)
        for key in ("curve_route_share", "curve_entropy_predictable", "curve_entropy_open"):
            assert len(m[key]) == n_seeds and all(len(c) == updates for c in m[key])
        for c in m["curve_entropy_predictable"] + m["curve_entropy_open"]:
            assert all(0.0 <= h <= math.log(4) + 1e-6 for h in c)
        assert all(v != v or 0.0 <= v <= 1.0 for c in m["curve_route_share"] for v in c)  # NaN: no win that update
    # Paired differences are per seed: recompute them from the rows' per-seed values.
    vals = {k: m["predictable_route_share"] for k, m in data["methods"].items()}
    for name, s in data["paired"].items():
        a, b = name.split(" - ")
        want = [x - y for x, y in zip(vals[a], vals[b]) if x is not None and y is not None]
        assert s["values"] == pytest.approx(want, abs=1e-12)
        check_summary(s, len(want), -1.0, 1.0)
    assert {"empg - grpo", "dapo_empg - dapo", "empg_bonus - grpo", "empg - empg_scaling"} <= set(data["paired"])


def test_clarity_quick(tmp_path):
    data = run_quick("clarity", tmp_path, "--n-eval", "10", "--seeds", "1,0")  # unsorted: stored sorted
    check_clarity(data, 2, "clarity")
    assert data["env_id"] == "toy_envs/Clarity-v0"
    assert (tmp_path / "clarity.png").stat().st_size > 1000
    # --replot recomputes the paired differences from results.json alone (no training): the same numbers
    from toy_envs.experiments.clarity import main

    (tmp_path / "clarity.png").unlink()
    assert main(["--replot", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["paired"] == data["paired"] and again["paired_fork"] == data["paired_fork"]
    assert (tmp_path / "clarity.png").stat().st_size > 1000
    fork = {k: m["fork_predictable_share"] for k, m in data["methods"].items()}
    assert data["paired_fork"]["empg - grpo"]["values"] == pytest.approx(
        [a - b for a, b in zip(fork["empg"], fork["grpo"])], abs=1e-12)


def test_clarity_fog_quick(tmp_path):
    data = run_quick("clarity", tmp_path, "--env", "fog", "--n-eval", "10")
    check_clarity(data, 2, "fog")
    assert data["env_id"] == "toy_envs/Fog-v0"


def test_clarity_rows_and_seeds():
    from toy_envs.experiments import clarity
    from toy_envs.train import METHODS

    keys = [c[0] for c in clarity.CONFIGS + clarity.SWEEP]
    assert set(keys) >= ROWS and len(keys) == len(set(keys))
    for key, _, method, zeta in clarity.CONFIGS + clarity.SWEEP:
        assert method in METHODS and zeta > 0
    for name, a, b in clarity.PAIRS:  # every pair compares two rows, each EMPG row with its own base
        assert a in keys and b in keys and name == f"{a} - {b}"
        assert METHODS[dict((c[0], c[2]) for c in clarity.CONFIGS + clarity.SWEEP)[b]][0] == \
            METHODS[dict((c[0], c[2]) for c in clarity.CONFIGS + clarity.SWEEP)[a]][0]  # same base (grpo/dapo)
    assert parse_seeds("3") == [0, 1, 2]
    with pytest.raises(SystemExit):
        clarity.main(["--methods", "nope", "--out", "/tmp/never"])


def test_clarity_shares_by_hand():
    from toy_envs.experiments.clarity import shares

    # (first route entered, final route, success): 4 episodes, 3 wins, 2 of them through the predictable route
    log = [("predictable", "predictable", True), ("open", "predictable", True), ("open", "open", True),
           ("predictable", "predictable", False)]
    got = shares(log, "predictable")
    assert got == {"predictable_route_share": 2 / 3, "fork_predictable_share": 2 / 4, "success": 3 / 4, "n_wins": 3}
    assert shares([("open", "open", False)], "predictable")["predictable_route_share"] is None  # no win: undefined


def test_clarity_route_cells():
    from toy_envs import ClarityEnv, FogEnv
    from toy_envs.experiments.clarity import route_cells

    env = ClarityEnv()
    assert route_cells(env) == {"predictable": env.observation_of((1, 1)), "open": env.observation_of((3, 1))}
    fog = FogEnv()
    assert route_cells(fog) == {"predictable": fog.observation_of((3, 1)), "open": fog.observation_of((5, 1))}


def test_stability_quick(tmp_path):
    data = run_quick("stability", tmp_path)
    assert set(data["methods"]) == {"grpo", "empg", "dapo", "dapo_empg"}
    for m in data["methods"].values():
        for key in ("kl_mean", "kl_late_mean", "kl_max"):
            check_summary(m[key], 2, 0.0)  # a KL is >= 0
        check_summary(m["kl_late_std"], 2, 0.0)
        check_summary(m["success_final"], 2, 0.0, 1.0)
        check_curve(m["curve"], data["settings"]["updates"], 0.0)
        assert len(m["curve"]["per_seed"]) == 2  # the figure draws each seed
    assert (tmp_path / "kl_prev.png").stat().st_size > 1000
    # --replot: the figure and table again from results.json alone, no training
    from toy_envs.experiments.stability import main

    (tmp_path / "kl_prev.png").unlink()
    assert main(["--replot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "kl_prev.png").stat().st_size > 1000


def test_stability_one_seed_prints_na(tmp_path, capsys):
    # one seed: every interval is undefined and printed as n/a (no zero-width interval, no NaN)
    from toy_envs.experiments.stability import main

    assert main(["--quick", "--seeds", "1", "--workers", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "± n/a" in printed and "nan" not in printed.lower()
    data = json.loads((tmp_path / "results.json").read_text())
    for m in data["methods"].values():
        check_summary(m["kl_mean"], 1, 0.0)
        assert m["curve"]["ci_low"] is None


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
