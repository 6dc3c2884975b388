"""Miniature 1: EMPG against GRPO and DAPO, and the ablation (base / + scaling / + bonus / full).

The shape of the paper's Deep Search ablation table (DAPO base; spec §6), plus GRPO ± EMPG, on
the long-horizon gridworld (``toy_envs/KeyDoor-v0``, tabular softmax policy) and on one TextWorld
game (``toy_envs/TextWorld-v0``, log-linear policy). For every (env, method, seed) one training run;
the table gives final success (mean of the last 5 updates' training rollouts) and the AUC (mean
success over all updates), each as a mean over seeds with a 95% Student-t interval.

    python -m toy_envs.experiments.ablation --out runs/ablation            # full: 10 grid seeds, 5 text seeds
    python -m toy_envs.experiments.ablation --out /tmp/abl --quick         # smoke test

Writes ``OUT/results.json``::

    {"experiment": "ablation", "settings": {"gridworld": {...}, "textworld": {...}},
     "envs": {"gridworld": {"seeds": [...], "methods": {name: {"final_success": summary, "auc": summary,
              "curve": {"mean", "ci_low", "ci_high"}, "wall_time_s": [...]}}}, "textworld": {...}},
     "wall_time_s": float, ...}

where a summary is ``{"mean", "ci_low", "ci_high", "n", "values"}`` (``ci_low``/``ci_high`` None with one
seed) and a curve also keeps ``"per_seed"``; and ``OUT/learning_curves.png`` (each seed's success curve
thin, the mean thick; for an older results.json without per-seed curves, the t-band clipped to [0, 1]).

    python -m toy_envs.experiments.ablation --out runs/ablation --replot   # figure and table from results.json
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

from ._common import (GRID, TEXT, auc, base_parser, clip_band, final_success, fmt_ci, keydoor_factory, load_results,
                      mean_curve, meta, parse_seeds, report, run_jobs, save_figure, summarize, textworld_factory)

#: (row label, trainer method name). GRPO ± EMPG, then the DAPO-based ablation of the paper's table.
METHOD_ROWS: list[tuple[str, str]] = [
    ("GRPO", "grpo"),
    ("GRPO + EMPG", "empg"),
    ("DAPO (base)", "dapo"),
    ("DAPO + scaling only", "dapo_empg_scaling"),
    ("DAPO + bonus only", "dapo_empg_bonus"),
    ("DAPO + EMPG (full)", "dapo_empg"),
]


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One training run; returns its success / KL / entropy curves and wall time."""
    from toy_envs.train import ToyTrainConfig, train

    kw = dict(job["train_kwargs"])
    cfg = ToyTrainConfig.for_method(job["method"], seed=job["seed"], **kw)
    make_env = keydoor_factory(**job["env_kwargs"]) if job["env"] == "gridworld" else textworld_factory(**job["env_kwargs"])
    t0 = time.perf_counter()
    res = train(cfg, make_env)
    return {
        "env": job["env"], "method": job["method"], "seed": job["seed"],
        "success": res.curve("charts/success_rate"),
        "kl_prev": res.curve("policy/kl_prev"),
        "entropy": res.curve("policy/entropy_mean"),
        "env_steps": res.history[-1]["charts/env_steps"],
        "wall_time_s": time.perf_counter() - t0,
    }


def _text_seeds(text: str) -> list[int]:
    """``--text-seeds``: like ``--seeds``, and ``"0"`` gives no seeds (skip TextWorld)."""
    return [] if str(text).strip() == "0" else parse_seeds(text)


def settings(quick: bool) -> dict[str, dict[str, Any]]:
    """Train kwargs and env kwargs per env (``quick`` shrinks the budget to a smoke test)."""
    grid, text = GRID, TEXT
    if quick:
        grid = dataclasses.replace(grid, layout="small", max_steps=40, updates=3, tasks_per_update=2, group_size=4)
        text = dataclasses.replace(text, updates=2, tasks_per_update=1, group_size=2, max_episode_steps=5)
    return {
        "gridworld": {"train_kwargs": grid.train_kwargs(),
                      "env_kwargs": {"layout": grid.layout, "max_steps": grid.max_steps}},
        "textworld": {"train_kwargs": text.train_kwargs(),
                      "env_kwargs": {"game_seed": text.game_seed, "max_episode_steps": text.max_episode_steps}},
    }


def main(argv: list[str] | None = None) -> int:
    p = base_parser("ablation", __doc__.split("\n")[0], "10",
                    replot="recompute the paired differences, table and figure")
    p.add_argument("--text-seeds", type=_text_seeds, default=_text_seeds("5"),
                   help="TextWorld seeds: a count (N -> 0..N-1; 0 skips TextWorld) or a comma-separated list")
    args = p.parse_args(argv)
    from pathlib import Path

    if args.replot:
        out = load_results(args.out)
        add_paired(out["envs"])
        return report(args.out, out, "learning_curves.png", lambda path: plot(out["envs"], path), table(out["envs"]))
    t0 = time.perf_counter()
    sets = settings(args.quick)
    text_seeds = args.text_seeds[:1] if args.quick else args.text_seeds
    seeds_of = {"gridworld": list(args.seeds), "textworld": text_seeds}
    jobs = [{"env": env, "method": m, "seed": s, **sets[env]}
            for env in ("textworld", "gridworld") for _, m in METHOD_ROWS for s in seeds_of[env]]
    # Quick mode: the text env is the slow part (game generation); keep one method there.
    if args.quick:
        jobs = [j for j in jobs if j["env"] == "gridworld" or j["method"] in ("grpo", "empg")]
    results = run_jobs(run_one, jobs, workers=args.workers, desc="ablation", cache=Path(args.out) / "jobs")

    envs: dict[str, Any] = {}
    for env in ("gridworld", "textworld"):
        rows = [r for r in results if r["env"] == env]
        if not rows:
            continue
        methods = {}
        for label, m in METHOD_ROWS:
            rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["seed"])
            if not rs:
                continue
            methods[m] = {
                "label": label,
                "final_success": summarize([final_success(r["success"]) for r in rs]),
                "auc": summarize([auc(r["success"]) for r in rs]),
                "curve": mean_curve([r["success"] for r in rs], 0.0, 1.0),
                "env_steps": summarize([r["env_steps"] for r in rs]),
                "wall_time_s": [round(r["wall_time_s"], 2) for r in rs],
            }
        envs[env] = {"seeds": seeds_of[env], "methods": methods, "settings": sets[env]}
    add_paired(envs)
    out = {"experiment": "ablation", "envs": envs, **meta(args, t0)}
    return report(args.out, out, "learning_curves.png", lambda path: plot(envs, path), table(envs), args.workers)


#: Each EMPG row is compared with its base on the same seeds (paired: same seeds, same task draws).
BASE_OF = {"empg": "grpo", "dapo_empg_scaling": "dapo", "dapo_empg_bonus": "dapo", "dapo_empg": "dapo"}


def add_paired(envs: dict[str, Any]) -> None:
    """Add ``delta_auc`` / ``delta_final`` (method − its base, per seed; 95% t-interval) to each EMPG row."""
    for e in envs.values():
        ms = e["methods"]
        for m, base in BASE_OF.items():
            if m not in ms or base not in ms:
                continue
            for key in ("auc", "final_success"):
                a, b = ms[m][key]["values"], ms[base][key]["values"]
                if len(a) == len(b):
                    ms[m][f"delta_{key}"] = summarize([x - y for x, y in zip(a, b)])


def table(envs: dict[str, Any]) -> str:
    """Markdown table: one block per env, one row per method."""
    lines = []
    for env, e in envs.items():
        lines.append(f"\n{env} ({len(e['seeds'])} seeds): final success and AUC, mean ± 95% CI half-width\n")
        lines.append("| method | final success | AUC | Δ AUC vs base (paired) | env steps |")
        lines.append("|---|---|---|---|---|")
        for m, s in e["methods"].items():
            d = "—"
            if "delta_auc" in s:
                da = s["delta_auc"]
                d = f"{da['mean']:+.3f} " + ("[n/a: 1 seed]" if da["ci_low"] is None else
                                             f"[{da['ci_low']:+.3f}, {da['ci_high']:+.3f}]")
            lines.append(f"| {s['label']} | {fmt_ci(s['final_success'])} | {fmt_ci(s['auc'])} | {d} | "
                         f"{s['env_steps']['mean']:.0f} |")
    return "\n".join(lines)


def plot(envs: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 3.8), squeeze=False)
    for ax, (env, e) in zip(axes[0], envs.items()):
        what = "thin: each seed"
        for i, (m, s) in enumerate(e["methods"].items()):
            c = s["curve"]
            x = list(range(1, len(c["mean"]) + 1))
            style = "-" if m.startswith("dapo") else "--"
            ax.plot(x, c["mean"], style, color=f"C{i}", label=s["label"], lw=1.8)
            if "per_seed" in c:  # every seed's curve: a t-band over few seeds leaves [0, 1]
                for curve in c["per_seed"]:
                    ax.plot(x, curve, color=f"C{i}", lw=0.5, alpha=0.3)
            elif (band := clip_band(c, 0.0, 1.0)) is not None:  # older results.json: the band clipped to [0, 1]
                ax.fill_between(x, *band, color=f"C{i}", alpha=0.12)
                what = "band: 95% t-interval clipped to [0, 1]"
        ax.set_title(f"{env}: success rate, mean of {len(e['seeds'])} seeds ({what})", fontsize=9)
        ax.set_xlabel("update")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
