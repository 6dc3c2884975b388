"""``make demo``: a 2×2 on ``toy_envs/KeyDoor-v0``, {GRPO, DAPO} × {without, with EMPG}, many seeds.

    python -m toy_envs.demo --out runs/demo            # the full demo (the Makefile's `make demo`)
    python -m toy_envs.demo --out /tmp/d --quick       # a reduced budget (smoke test)
    python -m toy_envs.demo --out runs/demo_fresh --seeds 200,201,202,203,204,205,206,207,208,209
                                                       # a fresh block of seeds (never used in development)

The four methods (:data:`METHODS`: ``grpo``, ``empg`` = GRPO + EMPG, ``dapo``, ``dapo_empg``) share
every hyper-parameter in :data:`DEMO_DEFAULTS` (tabular softmax policy, the same optimiser, learning
rate, loss, group size and tasks per update). They differ only in the outcome advantage (GRPO, or
DAPO's dynamic sampling with refill, :class:`empg.OutcomeConfig`) and in ``empg="full"`` (Eq. 7–12
with the paper's k = k′ = 1, ζ = 0.1). With the demo's REINFORCE loss there is no probability ratio,
so DAPO's clip-higher plays no part: DAPO here *is* dynamic sampling with refill. Every method runs
the same seeds (0..N−1 by default, or the ``--seeds`` list), so a seed's runs start from the same
generator state (paired comparisons).

Reported per method, over seeds:

* **final success**: the mean training success rate over the last ``FINAL_WINDOW`` updates of each
  seed, then mean ± 95% t-interval over seeds;
* **AUC**: the area under the learning curve, i.e. the mean success rate over all updates (in [0, 1]);
* **updates to 80%**: the first update at which the success rate averaged over the last
  ``SMOOTH`` updates reaches 0.8; the median over seeds (seeds that never get there count as
  infinitely slow) and how many seeds never reached it;
* **EMPG − base**, for each base: the mean of the per-seed differences (same seed) of final success
  and of AUC, with a paired 95% t-interval.

Outputs ``OUT/results.json``, ``OUT/learning_curves.png`` (one panel per base: every seed's curve as
a thin line, the mean over seeds as a thick one) and the table on stdout.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from toy_envs.experiments._common import (auc, final_success, mean_curve, parse_seeds, run_jobs, save_figure,
                                          t_interval, write_json)

ENV_ID = "toy_envs/KeyDoor-v0"

#: Environment kwargs: the default layout (22 steps optimal). The episode limit is raised from the
#: env's default 3 × optimal = 66 steps, where a uniform policy succeeds in ~0.05% of episodes and
#: neither method sees a single success in this budget, to 100 steps (~0.5% for a uniform policy).
ENV_KWARGS: dict[str, Any] = {"max_steps": 100}

#: Hyper-parameters shared by all four methods, chosen once for GRPO and GRPO + EMPG on seeds 100..103
#: (never the demo seeds) and kept unchanged when DAPO joined the demo: plain SGD on the REINFORCE loss
#: summed over each episode's steps and averaged over episodes, so that an update's size is
#: proportional to the advantages, which is what EMPG rescales. (Adam at lr 0.1 was tried first: its
#: per-parameter normalisation blows the small bonus-only EMPG gradient of an all-failure batch up to
#: full-size steps.)
DEMO_DEFAULTS: dict[str, Any] = dict(
    updates=60,
    tasks_per_update=4,
    group_size=8,
    lr=2.0,
    optimizer="sgd",
    loss="reinforce",
    agg="seq-mean-token-sum",
)
QUICK: dict[str, Any] = dict(updates=6, tasks_per_update=2, group_size=4)
METHODS = {"grpo": dict(outcome="grpo", empg="off"), "empg": dict(outcome="grpo", empg="full"),
           "dapo": dict(outcome="dapo", empg="off"), "dapo_empg": dict(outcome="dapo", empg="full")}
#: (EMPG method, its base) for the paired differences.
PAIRS = (("empg", "grpo"), ("dapo_empg", "dapo"))
LABELS = {"grpo": "GRPO", "empg": "GRPO + EMPG", "dapo": "DAPO", "dapo_empg": "DAPO + EMPG"}
FINAL_WINDOW = 10
SMOOTH = 5
THRESHOLD = 0.8


def mean_ci(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, half-width of the 95% t-interval)``; the half-width is None (undefined, printed ``n/a``)
    with one value, never NaN."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("values must be non-empty")
    if len(vals) < 2:
        return statistics.fmean(vals), None
    _, lo, hi = t_interval(vals)
    return statistics.fmean(vals), (hi - lo) / 2


def welch_diff_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean difference ``mean(a) − mean(b)`` and the half-width of its 95% Welch t-interval (``scipy.stats.ttest_ind``)."""
    from scipy import stats

    d = statistics.fmean(a) - statistics.fmean(b)
    if statistics.variance(a) == 0 and statistics.variance(b) == 0:
        return d, 0.0  # no spread at all: scipy's interval would be NaN
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return d, float(ci.high - ci.low) / 2


def paired_diff_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the per-seed differences ``a_i − b_i`` and its 95% t-interval ``(mean, low, high)`` (paired seeds)."""
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up seed by seed, got {len(a)} and {len(b)} values")
    return t_interval([float(x) - float(y) for x, y in zip(a, b)])


def updates_to_threshold(curve: Sequence[float], threshold: float = THRESHOLD, smooth: int = SMOOTH) -> int | None:
    """First update (1-based) whose trailing ``smooth``-update mean success is ≥ ``threshold``; None if never."""
    for i in range(len(curve)):
        window = curve[max(0, i - smooth + 1) : i + 1]
        if len(window) == min(smooth, len(curve)) and statistics.fmean(window) >= threshold:
            return i + 1
    return None


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One training run (in a worker process): returns the success curve and the wall time."""
    import gymnasium as gym

    import toy_envs  # noqa: F401  (registers the ids)
    from toy_envs.train import ToyTrainConfig, train

    method, seed, overrides = job["method"], job["seed"], job["overrides"]
    cfg = ToyTrainConfig(env=ENV_ID, seed=seed, progress=False, plot=False, **METHODS[method], **overrides)
    t0 = time.perf_counter()
    # .unwrapped skips gymnasium's checker wrappers (pure overhead here); the env truncates itself.
    result = train(cfg, lambda: gym.make(ENV_ID, **ENV_KWARGS).unwrapped)
    return {
        "method": method, "seed": seed, "wall_time": time.perf_counter() - t0,
        "success": result.curve("charts/success_rate"),
        "length": result.curve("charts/episode_length"),
        "step_entropy": result.curve("policy/entropy_mean"),
        "kl_prev": [row.get("policy/kl_prev", 0.0) for row in result.history],
        "env_steps": result.history[-1]["charts/env_steps"],
    }


def summarise(curves: dict[str, list[list[float]]]) -> dict[str, dict[str, Any]]:
    """Per-method metrics per seed (final success, AUC, updates to 80%) from the success curves."""
    out: dict[str, dict[str, Any]] = {}
    for method, per_seed in curves.items():
        out[method] = {"final_success": [final_success(c, FINAL_WINDOW) for c in per_seed],
                       "auc": [auc(c) for c in per_seed],
                       "updates_to_80": [updates_to_threshold(c) for c in per_seed]}
    return out


def format_table(summary: dict[str, dict[str, Any]], n_updates: int) -> str:
    """The printed table: per method final success and AUC (mean ± 95% t-interval half-width), updates to
    80%; then, for each base, the paired per-seed EMPG − base differences."""
    lines = [
        f"{'method':<12} {'final success (mean ± 95% CI)':>30} {'AUC (mean ± 95% CI)':>22} {'updates to 80% (median)':>25} {'never':>6}",
    ]
    for method, s in summary.items():
        fm, fh = mean_ci(s["final_success"])
        am, ah = mean_ci(s["auc"])
        reach = [r if r is not None else math.inf for r in s["updates_to_80"]]
        med = statistics.median(reach)
        never = sum(r is None for r in s["updates_to_80"])
        med_txt = "never" if math.isinf(med) else f"{med:g}"
        fh, ah = ("n/a" if h is None else f"{h:.3f}" for h in (fh, ah))
        lines.append(f"{LABELS.get(method, method):<12} {fm:>22.3f} ± {fh:<5} {am:>14.3f} ± {ah:<5} {med_txt:>25} "
                     f"{never:>3}/{len(reach)}")
    for emp, base in PAIRS:
        if emp in summary and base in summary and len(summary[emp]["final_success"]) > 1:
            d, lo, hi = paired_diff_ci(summary[emp]["final_success"], summary[base]["final_success"])
            da, loa, hia = paired_diff_ci(summary[emp]["auc"], summary[base]["auc"])
            lines.append(f"{LABELS[emp]} − {LABELS[base]}: final success {d:+.3f} [{lo:+.3f}, {hi:+.3f}], "
                         f"AUC {da:+.3f} [{loa:+.3f}, {hia:+.3f}] (paired by seed, 95% t-intervals)")
    lines.append(f"({n_updates} updates per run; final success = mean of the last {FINAL_WINDOW} updates)")
    return "\n".join(lines)


def plot_curves(curves: dict[str, list[list[float]]], path: Path, title: str) -> None:
    """One figure, one panel per base: each seed's success curve as a thin line, the mean over seeds thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(base, [m for m in (base, emp) if m in curves]) for emp, base in PAIRS]
    panels = [(base, ms) for base, ms in panels if ms]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), sharey=True, squeeze=False)
    colours = {"grpo": "tab:blue", "empg": "tab:orange", "dapo": "tab:green", "dapo_empg": "tab:red"}
    for ax, (base, ms) in zip(axes[0], panels):
        for method in ms:
            per_seed = curves[method]
            x = list(range(1, len(per_seed[0]) + 1))
            for c in per_seed:
                ax.plot(x, c, color=colours.get(method), lw=0.6, alpha=0.35)
            mean = [statistics.fmean(v) for v in zip(*per_seed)]
            ax.plot(x, mean, color=colours.get(method), lw=2.2,
                    label=f"{LABELS.get(method, method)}: mean of {len(per_seed)} seeds (thin: each seed)")
        ax.set_xlabel("update")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{LABELS.get(base, base)} base", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("success rate (training rollouts)")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=100)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m toy_envs.demo", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--seeds", type=parse_seeds, default=None, help="number of seeds (0..N-1) or a comma list; default 10 (quick: 2)")
    parser.add_argument("--updates", type=int, default=None, help=f"updates per run (default {DEMO_DEFAULTS['updates']})")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (the budget is 2 cores)")
    parser.add_argument("--quick", action="store_true", help=f"reduced budget for smoke tests: {QUICK}")
    args = parser.parse_args(argv)
    overrides = dict(DEMO_DEFAULTS)
    if args.quick:
        overrides.update(QUICK)
    if args.updates is not None:
        if args.updates < 1:
            parser.error("--updates must be >= 1")
        overrides["updates"] = args.updates
    seeds = args.seeds if args.seeds is not None else (list(range(2)) if args.quick else list(range(10)))
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    jobs = [{"method": m, "seed": s, "overrides": overrides} for m in METHODS for s in seeds]
    t0 = time.perf_counter()
    results = run_jobs(_run_one, jobs, workers=args.workers, desc="demo runs",  # in job order: method, then seed
                       cache=out / "jobs")  # one file per finished run: a killed demo resumes
    wall = time.perf_counter() - t0

    curves = {m: [r["success"] for r in results if r["method"] == m] for m in METHODS}
    summary = summarise(curves)
    paired = {}
    for emp, base in PAIRS:
        if len(seeds) > 1:
            entry = {}
            for metric in ("final_success", "auc"):
                d, lo, hi = paired_diff_ci(summary[emp][metric], summary[base][metric])
                entry[metric] = {"mean": d, "ci_low": lo, "ci_high": hi,
                                 "values": [a - b for a, b in zip(summary[emp][metric], summary[base][metric])]}
            paired[f"{emp} - {base}"] = entry
    report = {
        "env": ENV_ID,
        "env_kwargs": ENV_KWARGS,
        "seeds": seeds,
        "config": overrides,
        "final_window": FINAL_WINDOW,
        "threshold": THRESHOLD,
        "wall_time_s": wall,
        "workers": args.workers,
        "methods": {
            m: {
                **summary[m],
                "curves": curves[m],
                "episode_length": [r["length"] for r in results if r["method"] == m],
                "step_entropy": [r["step_entropy"] for r in results if r["method"] == m],
                "kl_prev": [r["kl_prev"] for r in results if r["method"] == m],
                "run_wall_time_s": [r["wall_time"] for r in results if r["method"] == m],
                "env_steps": [r["env_steps"] for r in results if r["method"] == m],
                "final_success_mean_ci95": list(mean_ci(summary[m]["final_success"])),
                "auc_mean_ci95": list(mean_ci(summary[m]["auc"])),
                **METHODS[m],
            }
            for m in METHODS
        },
        "paired": paired,
    }
    write_json(out / "results.json", report)
    title = f"{ENV_ID} {ENV_KWARGS}, {len(seeds)} seeds per method, {overrides['updates']} updates"
    plot_curves(curves, out / "learning_curves.png", title)
    print(f"{ENV_ID} (default layout, {ENV_KWARGS}), {len(seeds)} seeds per method, {overrides['updates']} updates "
          f"of {overrides['tasks_per_update']}×{overrides['group_size']} episodes")
    print(format_table(summary, overrides["updates"]))
    print(f"wall time: {wall:.1f} s with {args.workers} worker(s); wrote {out / 'results.json'} and {out / 'learning_curves.png'}")
    return report


if __name__ == "__main__":
    main()
