"""Miniature 2: Proposition 1 measured during training.

For a softmax policy, ``E_{a∼π} ‖∇_z log π(a)‖² = 1 − exp(−H₂(π))`` (spec §2). While GRPO and
GRPO + EMPG train on the long-horizon gridworld, the trainer records, for a seeded subsample of the
visited steps every few updates, the step entropy H, the Rényi-2 entropy H₂ and the squared score
norm ``‖e_a − π‖²`` of the action actually sampled (``TrainResult.prop1``). We plot the sampled norms
against H with the curve ``1 − exp(−H₂)``, and compare per-H-bin means: the sampled norm's mean
should match the mean of ``1 − exp(−H₂)`` in every bin (up to Monte-Carlo error), and both rise with
H: confident steps get small gradients, uncertain steps large ones.

The shared gridworld setting (SGD, lr 20) keeps the policy close to uniform in most states (a
mildly biased walk already wins within 220 steps), which would put nearly every record at H ≈ log 4.
To cover the whole entropy range, this experiment trains with Adam (lr 0.1, 40 updates), which makes
the policy sharp within a few updates; Proposition 1 holds for any softmax policy, so the optimiser
does not matter for what is measured.

    python -m toy_envs.experiments.prop1 --out runs/prop1
    python -m toy_envs.experiments.prop1 --out /tmp/p1 --quick

Writes ``OUT/results.json``: ``{"experiment": "prop1", "n_records": int, "bins": [{"h_low", "h_high",
"count", "score_norm_sq": summary, "one_minus_exp_neg_h2_mean": float}], "overall": {"score_norm_sq_mean",
"one_minus_exp_neg_h2_mean", "max_abs_bin_gap", "bins_within_ci"}, "spearman_h_vs_norm": float, ...}`` and
``OUT/prop1.png``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

from ._common import GRID, base_parser, fmt_ci, keydoor_factory, meta, report, run_jobs, save_figure, summarize

METHODS = ("grpo", "empg")


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from toy_envs.train import ToyTrainConfig, train

    cfg = ToyTrainConfig.for_method(job["method"], seed=job["seed"], prop1_every=job["prop1_every"],
                                    prop1_max_rows=job["prop1_max_rows"], **job["train_kwargs"])
    t0 = time.perf_counter()
    res = train(cfg, keydoor_factory(**job["env_kwargs"]))
    rows = [{**r, "method": job["method"], "seed": job["seed"]} for r in res.prop1]
    return {"rows": rows, "wall_time_s": time.perf_counter() - t0}


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``, ties get average ranks); 0 when either side is constant."""
    from scipy import stats

    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


def analyse(rows: list[dict[str, Any]], n_bins: int = 10, num_actions: int = 4) -> dict[str, Any]:
    """Per-H-bin mean of the sampled ``‖e_a − π‖²`` (with a t-interval over records) vs mean ``1 − exp(−H₂)``."""
    h_max = math.log(num_actions)
    bins = []
    for b in range(n_bins):
        lo, hi = h_max * b / n_bins, h_max * (b + 1) / n_bins
        sel = [r for r in rows if lo <= r["step_entropy"] < hi or (b == n_bins - 1 and r["step_entropy"] >= hi)]
        if len(sel) < 2:
            bins.append({"h_low": lo, "h_high": hi, "count": len(sel)})
            continue
        bins.append({
            "h_low": lo, "h_high": hi, "count": len(sel),
            "score_norm_sq": {k: v for k, v in summarize([r["score_norm_sq"] for r in sel]).items() if k != "values"},
            "one_minus_exp_neg_h2_mean": sum(r["one_minus_exp_neg_h2"] for r in sel) / len(sel),
        })
    full = [b for b in bins if "score_norm_sq" in b]
    gaps = [abs(b["score_norm_sq"]["mean"] - b["one_minus_exp_neg_h2_mean"]) for b in full]
    within = sum(b["score_norm_sq"]["ci_low"] <= b["one_minus_exp_neg_h2_mean"] <= b["score_norm_sq"]["ci_high"]
                 for b in full)
    n = len(rows)
    return {
        "bins": bins,
        "overall": {
            "score_norm_sq_mean": sum(r["score_norm_sq"] for r in rows) / n,
            "one_minus_exp_neg_h2_mean": sum(r["one_minus_exp_neg_h2"] for r in rows) / n,
            "max_abs_bin_gap": max(gaps) if gaps else float("nan"),
            "bins_with_data": len(full),
            "bins_within_ci": int(within),
        },
        "spearman_h_vs_norm": spearman([r["step_entropy"] for r in rows], [r["score_norm_sq"] for r in rows]),
    }


def main(argv: list[str] | None = None) -> int:
    p = base_parser("prop1", __doc__.split("\n")[0], "3")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    grid = dataclasses.replace(GRID, optimizer="adam", lr=0.1, updates=40)
    every, max_rows = 4, 400
    if args.quick:
        grid = dataclasses.replace(grid, layout="small", max_steps=40, updates=4, tasks_per_update=2, group_size=4)
        every, max_rows = 1, 100
    jobs = [{"method": m, "seed": s, "train_kwargs": grid.train_kwargs(), "prop1_every": every,
             "prop1_max_rows": max_rows, "env_kwargs": {"layout": grid.layout, "max_steps": grid.max_steps}}
            for m in METHODS for s in args.seeds]
    results = run_jobs(run_one, jobs, workers=args.workers, desc="prop1", cache=Path(args.out) / "jobs")
    rows = [r for res in results for r in res["rows"]]
    if not rows:
        raise RuntimeError("no Prop. 1 records were collected (updates < prop1_every?)")
    out = {"experiment": "prop1", "n_records": len(rows), **analyse(rows),
           "per_method": {m: analyse([r for r in rows if r["method"] == m])["overall"] for m in METHODS},
           "settings": {**grid.train_kwargs(), "layout": grid.layout, "max_steps": grid.max_steps,
                        "prop1_every": every, "prop1_max_rows": max_rows, "methods": list(METHODS)},
           **meta(args, t0)}
    return report(args.out, out, "prop1.png", lambda path: plot(rows, out, path), table(out), args.workers)


def table(out: dict[str, Any]) -> str:
    lines = [f"\nProposition 1 on {out['n_records']} sampled steps (H bins in nats; ± = 95% CI half-width)\n",
             "| H bin | steps | mean ‖e_a − π‖² (sampled a) | mean 1 − exp(−H₂) |", "|---|---|---|---|"]
    for b in out["bins"]:
        if "score_norm_sq" not in b:
            continue
        s = b["score_norm_sq"]
        lines.append(f"| {b['h_low']:.2f}–{b['h_high']:.2f} | {b['count']} | {fmt_ci(s, 3)} | "
                     f"{b['one_minus_exp_neg_h2_mean']:.3f} |")
    o = out["overall"]
    lines.append(f"\nall steps: sampled {o['score_norm_sq_mean']:.4f} vs 1 − exp(−H₂) {o['one_minus_exp_neg_h2_mean']:.4f}; "
                 f"largest bin gap {o['max_abs_bin_gap']:.3f}; {o['bins_within_ci']}/{o['bins_with_data']} bins "
                 f"contain the prediction in their CI; Spearman(H, norm) = {out['spearman_h_vs_norm']:.2f}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    h = [r["step_entropy"] for r in rows]
    ax.scatter(h, [r["score_norm_sq"] for r in rows], s=3, alpha=0.15, color="tab:gray", rasterized=True,
               label="‖e_a − π‖² of the sampled action")
    ax.scatter(h, [r["one_minus_exp_neg_h2"] for r in rows], s=3, alpha=0.3, color="tab:orange", rasterized=True,
               label="1 − exp(−H₂) of the same step")
    full = [b for b in out["bins"] if "score_norm_sq" in b]
    xc = [(b["h_low"] + b["h_high"]) / 2 for b in full]
    ax.errorbar(xc, [b["score_norm_sq"]["mean"] for b in full],
                yerr=[[b["score_norm_sq"]["mean"] - b["score_norm_sq"]["ci_low"] for b in full],
                      [b["score_norm_sq"]["ci_high"] - b["score_norm_sq"]["mean"] for b in full]],
                fmt="o", color="tab:blue", ms=5, capsize=3, label="bin mean of ‖e_a − π‖² (95% CI)")
    ax.plot(xc, [b["one_minus_exp_neg_h2_mean"] for b in full], "s--", color="tab:red", ms=4,
            label="bin mean of 1 − exp(−H₂)")
    hs = [i / 100 * math.log(4) for i in range(101)]
    ax.plot(hs, [1 - math.exp(-x) for x in hs], ":", color="k", lw=1, label="1 − exp(−H) (upper bound, H₂ ≤ H)")
    ax.set_xlabel("step entropy H (nats)")
    ax.set_ylabel("squared score norm w.r.t. logits")
    ax.set_title(f"Proposition 1 during training ({out['n_records']} steps)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
