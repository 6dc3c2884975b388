"""Miniature 4: stability — the KL between consecutive policies during training, baseline vs EMPG.

The paper reports that DAPO's KL loss oscillates late in training while EMPG's stays stable. The
toy trainer logs ``policy/kl_prev``: the mean over the batch's visited steps of KL(π_before ‖ π_after)
across one update. We train GRPO, GRPO + EMPG, DAPO and DAPO + EMPG on the long-horizon gridworld
and plot every seed's curve with the mean over seeds (older results.json without per-seed curves:
the 95% t-band, clipped at 0, since a KL cannot be negative); the table gives, per seed then averaged,
the mean KL over the whole run, over its last third, and the standard deviation of the KL over
the last third (the "oscillation").

    python -m toy_envs.experiments.stability --out runs/stability
    python -m toy_envs.experiments.stability --out /tmp/st --quick
    python -m toy_envs.experiments.stability --out runs/stability --replot   # table and figure from results.json

Writes ``OUT/results.json`` ``{"experiment": "stability", "methods": {name: {"label", "kl_mean": summary,
"kl_late_mean": summary, "kl_late_std": summary, "success_final": summary, "curve": {"mean", "ci_low",
"ci_high"}}}, ...}`` and ``OUT/kl_prev.png``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (GRID, base_parser, clip_band, final_success, fmt_ci, keydoor_factory, load_results, mean_curve,
                      meta, report, run_jobs, save_figure, summarize)

METHOD_ROWS = [("GRPO", "grpo"), ("GRPO + EMPG", "empg"), ("DAPO", "dapo"), ("DAPO + EMPG", "dapo_empg")]
UPDATES = 40  # longer than the ablation, to see the late phase


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from toy_envs.train import ToyTrainConfig, train

    cfg = ToyTrainConfig.for_method(job["method"], seed=job["seed"], **job["train_kwargs"])
    t0 = time.perf_counter()
    res = train(cfg, keydoor_factory(**job["env_kwargs"]))
    return {"method": job["method"], "seed": job["seed"], "kl_prev": res.curve("policy/kl_prev"),
            "success": res.curve("charts/success_rate"), "grad_norm": res.curve("policy/grad_norm"),
            "wall_time_s": time.perf_counter() - t0}


def late(curve: list[float]) -> list[float]:
    """The last third of a curve (at least one point)."""
    return curve[len(curve) - max(1, len(curve) // 3):]


def std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1))


def main(argv: list[str] | None = None) -> int:
    p = base_parser("stability", __doc__.split("\n")[0], "10", replot="the table and figure")
    args = p.parse_args(argv)
    if args.replot:
        out = load_results(args.out)
        return report(args.out, out, "kl_prev.png", lambda path: plot(out, path), table(out))
    t0 = time.perf_counter()
    grid = dataclasses.replace(GRID, updates=UPDATES)
    if args.quick:
        grid = dataclasses.replace(grid, layout="small", max_steps=40, updates=3, tasks_per_update=2, group_size=4)
    env_kwargs = {"layout": grid.layout, "max_steps": grid.max_steps}
    jobs = [{"method": m, "seed": s, "train_kwargs": grid.train_kwargs(), "env_kwargs": env_kwargs}
            for _, m in METHOD_ROWS for s in args.seeds]
    results = run_jobs(run_one, jobs, workers=args.workers, desc="stability", cache=Path(args.out) / "jobs")
    methods = {}
    for label, m in METHOD_ROWS:
        rs = sorted((r for r in results if r["method"] == m), key=lambda r: r["seed"])
        methods[m] = {
            "label": label,
            "kl_mean": summarize([sum(r["kl_prev"]) / len(r["kl_prev"]) for r in rs]),
            "kl_late_mean": summarize([sum(late(r["kl_prev"])) / len(late(r["kl_prev"])) for r in rs]),
            "kl_late_std": summarize([std(late(r["kl_prev"])) for r in rs]),
            "kl_max": summarize([max(r["kl_prev"]) for r in rs]),
            "success_final": summarize([final_success(r["success"]) for r in rs]),
            "curve": mean_curve([r["kl_prev"] for r in rs], 0.0),  # a KL is >= 0: the band is clipped there
            "success_curve": mean_curve([r["success"] for r in rs], 0.0, 1.0),
            "wall_time_s": [round(r["wall_time_s"], 2) for r in rs],
        }
    out = {"experiment": "stability", "methods": methods, "settings": {**grid.train_kwargs(), **env_kwargs},
           **meta(args, t0)}
    return report(args.out, out, "kl_prev.png", lambda path: plot(out, path), table(out), args.workers)


def table(out: dict[str, Any]) -> str:
    lines = [f"\nKL(π_before ‖ π_after) per update, {len(out['seeds'])} seeds (mean ± 95% CI half-width; ×1e-3)\n",
             "| method | mean KL | late mean KL | late std of KL | max KL | final success |", "|---|---|---|---|---|---|"]

    def k(s: dict) -> str:
        return fmt_ci(s, 2, scale=1e3)

    for s in out["methods"].values():
        lines.append(f"| {s['label']} | {k(s['kl_mean'])} | {k(s['kl_late_mean'])} | {k(s['kl_late_std'])} | "
                     f"{k(s['kl_max'])} | {fmt_ci(s['success_final'])} |")
    return "\n".join(lines)


def plot(out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    pairs = [("grpo", "empg"), ("dapo", "dapo_empg")]
    for ax, pair in zip(axes, pairs):
        what = "thin: each seed"
        for i, m in enumerate(pair):
            s = out["methods"][m]
            c = s["curve"]
            x = list(range(1, len(c["mean"]) + 1))
            ax.plot(x, c["mean"], color=f"C{i}", lw=1.8, label=f"{s['label']} (mean)")
            if "per_seed" in c:
                for curve in c["per_seed"]:
                    ax.plot(x, curve, color=f"C{i}", lw=0.5, alpha=0.3)
            elif (band := clip_band(c, 0.0, None)) is not None:  # older results.json: band clipped at KL = 0
                ax.fill_between(x, *band, color=f"C{i}", alpha=0.15)
                what = "95% t-band clipped at 0"
        ax.set_ylim(bottom=0)
        ax.set_title(f"KL between consecutive policies, {len(out['seeds'])} seeds ({what})", fontsize=8)
        ax.set_xlabel("update")
        ax.set_ylabel("policy/kl_prev (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
