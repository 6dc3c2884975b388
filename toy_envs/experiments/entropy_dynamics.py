"""Miniature 5: entropy dynamics — the average entropy change after training, per step-entropy percentile.

The paper's step-level figure bins the steps of the initial policy by their entropy percentile and
shows that after RL even low-entropy steps change their entropy noticeably. A uniform tabular policy
has one entropy everywhere, so the "initial" policy here is a shared warm start playing the role of
the pretrained model: for each seed, GRPO with Adam (lr 0.1, which sharpens the policy quickly)
trains ``warmup`` updates and gives P₀, which has states of very different entropy. Then GRPO and
GRPO + EMPG each continue from that same P₀ for ``updates`` more with the shared gridworld setting
(SGD, lr 20). The visited states are the steps of
``eval_episodes`` rollouts of P₀; each step is binned by the percentile (decile) of its entropy under
P₀ within that seed, and per bin we average ΔH = H(π_final) − H(P₀) and |ΔH|. Bins are then averaged
over seeds (95% t-interval).

    python -m toy_envs.experiments.entropy_dynamics --out runs/entropy_dynamics
    python -m toy_envs.experiments.entropy_dynamics --out /tmp/ed --quick

Writes ``OUT/results.json`` ``{"experiment": "entropy_dynamics", "n_bins": int, "methods": {name: {"label",
"delta": [summary per bin], "abs_delta": [summary per bin], "h0_bin_mean": [float per bin]}}, ...}`` and
``OUT/entropy_change.png``.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (GRID, base_parser, fmt_ci, half_width, keydoor_factory, meta, report, run_jobs, save_figure,
                      summarize)

METHOD_ROWS = [("GRPO", "grpo"), ("GRPO + EMPG", "empg")]
N_BINS = 10


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Warm start (GRPO), then each method from the same P₀; per-decile ΔH for each method."""
    import torch

    from toy_envs.train import ToyTrainConfig, collect_rollouts, train

    make_env = keydoor_factory(**job["env_kwargs"])
    t0 = time.perf_counter()
    warm_kw = {**job["train_kwargs"], "updates": job["warmup"], "optimizer": "adam", "lr": 0.1}
    warm = train(ToyTrainConfig.for_method("grpo", seed=job["seed"], **warm_kw), make_env)
    p0 = warm.policy
    gen = torch.Generator().manual_seed(20_000 + job["seed"])
    batch = collect_rollouts(p0, make_env, list(range(job["eval_episodes"] // 8)), 8, generator=gen)
    states = p0.collate(batch.records)
    with torch.no_grad():
        h0 = p0.entropy(states).double()
    # Decile of each visited step's P₀ entropy (rank-based, ties split by order: equal-count bins).
    order = torch.argsort(h0, stable=True)
    bin_of = torch.empty_like(order)
    bin_of[order] = (torch.arange(h0.numel()) * job["n_bins"]) // h0.numel()
    out: dict[str, Any] = {"seed": job["seed"], "n_steps": int(h0.numel()),
                           "p0_success": float(batch.success.double().mean()),
                           "h0_bin_mean": [float(h0[bin_of == b].mean()) for b in range(job["n_bins"])]}
    for _, m in METHOD_ROWS:
        cfg = ToyTrainConfig.for_method(m, seed=1000 + job["seed"], **job["train_kwargs"])
        res = train(cfg, make_env, policy=copy.deepcopy(p0))
        with torch.no_grad():
            h1 = res.policy.entropy(states).double()
        d = h1 - h0
        out[m] = {
            "delta": [float(d[bin_of == b].mean()) for b in range(job["n_bins"])],
            "abs_delta": [float(d[bin_of == b].abs().mean()) for b in range(job["n_bins"])],
            "success_final": sum(res.curve()[-5:]) / len(res.curve()[-5:]),
        }
    out["wall_time_s"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    p = base_parser("entropy_dynamics", __doc__.split("\n")[0], "10")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    grid = dataclasses.replace(GRID, updates=20)
    warmup, eval_episodes = 4, 64
    if args.quick:
        grid = dataclasses.replace(grid, layout="small", max_steps=40, updates=2, tasks_per_update=2, group_size=4)
        warmup, eval_episodes = 2, 16
    env_kwargs = {"layout": grid.layout, "max_steps": grid.max_steps}
    jobs = [{"seed": s, "train_kwargs": grid.train_kwargs(), "env_kwargs": env_kwargs, "warmup": warmup,
             "eval_episodes": eval_episodes, "n_bins": N_BINS} for s in args.seeds]
    results = run_jobs(run_one, jobs, workers=args.workers, desc="entropy_dynamics", cache=Path(args.out) / "jobs")
    methods = {}
    for label, m in METHOD_ROWS:
        methods[m] = {
            "label": label,
            "delta": [summarize([r[m]["delta"][b] for r in results]) for b in range(N_BINS)],
            "abs_delta": [summarize([r[m]["abs_delta"][b] for r in results]) for b in range(N_BINS)],
            "success_final": summarize([r[m]["success_final"] for r in results]),
        }
    out = {"experiment": "entropy_dynamics", "n_bins": N_BINS, "methods": methods,
           "h0_bin_mean": [sum(r["h0_bin_mean"][b] for r in results) / len(results) for b in range(N_BINS)],
           "steps_per_seed": [r["n_steps"] for r in results],
           "p0_success": summarize([r["p0_success"] for r in results]),
           "settings": {**grid.train_kwargs(), **env_kwargs, "warmup_updates": warmup, "warmup_optimizer": "adam, lr 0.1",
                        "eval_episodes": eval_episodes},
           **meta(args, t0)}
    success = (f"P₀ success {fmt_ci(out['p0_success'])}; after training: "
               + ", ".join(f"{s['label']} {fmt_ci(s['success_final'])}" for s in methods.values()))
    return report(args.out, out, "entropy_change.png", lambda path: plot(out, path), f"{table(out)}\n{success}",
                  args.workers)


def table(out: dict[str, Any]) -> str:
    names = list(out["methods"])
    head = " | ".join(f"{out['methods'][m]['label']} ΔH | {out['methods'][m]['label']} abs ΔH" for m in names)
    lines = [f"\nEntropy change per P₀ entropy decile, {len(out['seeds'])} seeds (nats, mean ± 95% CI half-width)\n",
             f"| decile | mean H(P₀) | {head} |", "|---" * (2 + 2 * len(names)) + "|"]
    for b in range(out["n_bins"]):
        cells = []
        for m in names:
            for key in ("delta", "abs_delta"):
                s = out["methods"][m][key][b]
                h = half_width(s)
                cells.append(f"{s['mean']:+.3f} ± " + ("n/a" if h is None else f"{h:.3f}"))
        lines.append(f"| {b * 10}–{b * 10 + 10}% | {out['h0_bin_mean'][b]:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    names = list(out["methods"])
    width = 0.8 / len(names)
    x = list(range(out["n_bins"]))
    for ax, key, title in zip(axes, ("delta", "abs_delta"), ("mean ΔH", "mean |ΔH|")):
        for i, m in enumerate(names):
            s = out["methods"][m][key]
            means = [b["mean"] for b in s]
            err = [half_width(b) or 0.0 for b in s]  # one seed: no interval to draw
            ax.bar([xi + (i - (len(names) - 1) / 2) * width for xi in x], means, width, yerr=err, capsize=2,
                   label=out["methods"][m]["label"], alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{10 * b}-{10 * b + 10}" for b in x], fontsize=7, rotation=30)
        ax.set_xlabel("initial step-entropy percentile (P₀)")
        ax.set_ylabel(f"{title} (nats)")
        ax.set_title(f"{title} after training, per initial-entropy decile ({len(out['seeds'])} seeds)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
