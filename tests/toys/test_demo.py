"""`make demo` at a reduced budget (python -m toy_envs.demo --quick in a subprocess): the results.json schema
(the four methods of the 2x2, the paired EMPG - base differences), values recomputed from the curves and
from an independent in-process rerun of one seed, and the --seeds list used for fresh-seed reruns."""

import json
import math
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
    # a seed list, as for the fresh-block rerun (python -m toy_envs.demo --seeds 200,...,209), given out of
    # order: it is stored sorted, and the per-seed lists follow it (seed 5's rerun below matches entry 1)
    p = subprocess.run([sys.executable, "-m", "toy_envs.demo", "--quick", "--out", str(out), "--seeds", "5,3",
                        "--workers", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert "final success" in p.stdout and "wall time" in p.stdout
    res = json.loads((out / "results.json").read_text())
    assert isinstance(res["env"], str) and res["env"] == "toy_envs/KeyDoor-v0"
    assert res["seeds"] == [3, 5]
    episodes = res["config"]["tasks_per_update"] * res["config"]["group_size"]
    assert set(res["methods"]) == {"grpo", "empg", "dapo", "dapo_empg"}  # the 2x2
    for m in ("grpo", "empg", "dapo", "dapo_empg"):
        entry = res["methods"][m]
        for key in ("final_success", "auc"):
            assert len(entry[key]) == 2 and all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in entry[key])
        assert len(entry["updates_to_80"]) == 2
        assert len(entry["curves"]) == 2 and len(entry["curves"][0]) == res["config"]["updates"]
        # final success and AUC are the documented functions of the curve
        for c, f, a in zip(entry["curves"], entry["final_success"], entry["auc"]):
            assert a == pytest.approx(sum(c) / len(c)) and f == pytest.approx(sum(c[-10:]) / len(c[-10:]))
    # GRPO keeps every episode: each update's success rate is (wins) / (tasks x group size)
    for c in res["methods"]["grpo"]["curves"]:
        assert all(abs(v * episodes - round(v * episodes)) < 1e-9 for v in c)
    # the per-method CI entries are the mean of the per-seed values
    for m in res["methods"]:
        e = res["methods"][m]
        assert e["final_success_mean_ci95"][0] == pytest.approx(sum(e["final_success"]) / 2)
        assert e["auc_mean_ci95"][0] == pytest.approx(sum(e["auc"]) / 2)
    assert (res["methods"]["empg"]["outcome"], res["methods"]["empg"]["empg"]) == ("grpo", "full")
    assert (res["methods"]["grpo"]["outcome"], res["methods"]["grpo"]["empg"]) == ("grpo", "off")
    assert (res["methods"]["dapo"]["outcome"], res["methods"]["dapo"]["empg"]) == ("dapo", "off")
    assert (res["methods"]["dapo_empg"]["outcome"], res["methods"]["dapo_empg"]["empg"]) == ("dapo", "full")
    # the paired EMPG - base differences are per seed
    for name, emp, base in (("empg - grpo", "empg", "grpo"), ("dapo_empg - dapo", "dapo_empg", "dapo")):
        for metric in ("final_success", "auc"):
            d = res["paired"][name][metric]
            want = [a - b for a, b in zip(res["methods"][emp][metric], res["methods"][base][metric])]
            assert d["values"] == pytest.approx(want, abs=1e-12)
            assert d["ci_low"] <= d["mean"] <= d["ci_high"] and d["mean"] == pytest.approx(sum(want) / 2)
    assert "GRPO + EMPG − GRPO" in p.stdout and "DAPO + EMPG − DAPO" in p.stdout
    png = (out / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # The demo's mechanism at this budget. A uniform policy wins ~0.5% of episodes at the 100-step limit, so
    # most of these runs never win. Without a win, GRPO's advantage is exactly 0 (no update: KL 0, the entropy
    # stays log 4 = 1.3863 for the 4 moves) and DAPO drops every all-failure group, with or without EMPG; but
    # GRPO + EMPG's centred bonus still moves the policy (KL > 0 on some update, entropy below log 4).
    no_win = [i for i in range(2) if not any(any(res["methods"][m]["curves"][i]) for m in res["methods"])]
    assert no_win, "expected at least one seed without any win at the quick budget (seeds 3, 5)"
    for i in no_win:
        for m in ("grpo", "dapo", "dapo_empg"):
            assert all(k == 0.0 for k in res["methods"][m]["kl_prev"][i]), m
            assert res["methods"][m]["step_entropy"][i] == pytest.approx([math.log(4)] * n_updates(res), abs=1e-6), m
        assert max(res["methods"]["empg"]["kl_prev"][i]) > 1e-6
        assert min(res["methods"]["empg"]["step_entropy"][i]) < math.log(4) - 1e-4

    # seed 5's GRPO + EMPG run, redone in this process from the recorded config, gives the recorded curve:
    # the seed (not the job order or the worker) determines a run, so the pairing by seed is real
    from toy_envs.demo import _run_one

    again = _run_one({"method": "empg", "seed": 5, "overrides": res["config"]})
    assert again["success"] == res["methods"]["empg"]["curves"][1]
    assert again["length"] == res["methods"]["empg"]["episode_length"][1]
    assert again["step_entropy"] == res["methods"]["empg"]["step_entropy"][1]
    # and the two seeds are different runs (EMPG updates even without a win, so the entropies part ways)
    assert res["methods"]["empg"]["step_entropy"][0] != res["methods"]["empg"]["step_entropy"][1]


def n_updates(res):
    """Number of updates of one run (one entry per update in the per-update curves)."""
    return res["config"]["updates"]


@pytest.mark.parametrize("argv, flag", [(["--seeds", "a,b"], "--seeds"), (["--seeds", "-1"], "--seeds"),
                                        (["--seeds", "3,5,3"], "--seeds"),
                                        (["--workers", "0"], "--workers"), (["--updates", "0"], "--updates")])
def test_demo_bad_arguments_name_the_flag(argv, flag, tmp_path, capsys):
    from toy_envs.demo import main

    with pytest.raises(SystemExit) as e:
        main(["--quick", "--out", str(tmp_path / "never"), *argv])
    assert e.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_demo_statistics_helpers():
    from toy_envs.demo import mean_ci, paired_diff_ci, updates_to_threshold, welch_diff_ci

    # paired: differences (1, 2, 3) -> mean 2, sd 1, half-width t_{0.975,2}/sqrt(3) = 4.302653/1.732051 = 2.484138
    d, lo, hi = paired_diff_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert d == 2.0 and hi - d == pytest.approx(2.484138, abs=1e-6) and d - lo == pytest.approx(hi - d)
    with pytest.raises(ValueError, match="pair"):
        paired_diff_ci([1.0], [1.0, 2.0])

    # mean of (0, 1): 0.5; sd = sqrt(0.5); half-width = t_{0.975,1} · sd / sqrt(2) = 12.7062047 · 0.5 = 6.35310237
    # (t_{0.975,1} = tan(0.475 π), the Cauchy quantile)
    assert mean_ci([0.25]) == (0.25, None)  # one seed: the half-width is undefined (n/a), not NaN
    m, h = mean_ci([0.0, 1.0])
    assert m == 0.5 and abs(h - 0.5 * math.tan(0.475 * math.pi)) < 1e-9 and abs(h - 6.353102) < 1e-6
    # trailing 5-update mean first reaches 0.8 at update 5 for (0.6, 0.8, 0.8, 0.8, 1.0): mean 0.8
    assert updates_to_threshold([0.6, 0.8, 0.8, 0.8, 1.0, 1.0]) == 5
    assert updates_to_threshold([0.0] * 10) is None
    d, h = welch_diff_ci([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert d == 1.0 and h == 0.0
    # Welch by hand: a = (0, 1, 2), b = (0, 0, 0, 2): both sample variances 1, se² = 1/3 + 1/4 = 7/12;
    # df = (7/12)² / ((1/3)²/2 + (1/4)²/3) = 4.4545, used as is (rounding down to 4 would give t = 2.776 and
    # 2.120). Tables interpolated in 1/df between t_{0.975,4} = 2.776 and t_{0.975,5} = 2.571 give 2.671
    # (exact 2.6682) -> half-width 2.671 · sqrt(7/12) = 2.040 (tolerance 5e-3 covers the interpolation).
    d, h = welch_diff_ci([0.0, 1.0, 2.0], [0.0, 0.0, 0.0, 2.0])
    assert d == pytest.approx(0.5) and h == pytest.approx(2.040, abs=5e-3)
