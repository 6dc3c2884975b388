"""Miniature 3: the future-clarity bonus (Eq. 11) in the fog gridworld.

``toy_envs/Fog-v0`` has two routes to the goal of the same length and reward; on one of them every
cell emits the same (aliased) observation, so a tabular policy cannot become confident there. The
bonus ``ζ·f_{t+1}`` rewards a step whose *next* step is confident, i.e. the first move at the fork into
the clear route. We train GRPO, GRPO + scaling only (no bonus), GRPO + EMPG (full) and, as a ζ sweep,
full EMPG with larger ζ, and measure on the final policy (``n_eval`` sampled episodes per run):

- ``clear_first``: share of episodes whose first move off the start enters the clear route (the fork choice);
- ``clear_among_wins``: share of successful episodes that reached the goal through the clear route;
- ``success``: success rate;

and, during training, the share of episodes choosing the clear route per update (a curve).

``--base dapo`` runs the same rows on a DAPO base (``dapo``, ``dapo_empg_scaling``, ``dapo_empg_bonus``,
``dapo_empg``): dynamic sampling drops the all-equal-reward groups *before* the modulation, so an
all-failure batch no longer leaves the centred bonus as the only learning signal. Every other setting
is the same as the default GRPO run. ``paired_clear_first`` holds per-seed paired differences of
``clear_first`` (same seeds, so the same task draws): full − scaling only (the bonus's effect on top of
scaling), full − base and bonus only − base.

    python -m toy_envs.experiments.clarity --out runs/clarity
    python -m toy_envs.experiments.clarity --base dapo --out runs/clarity_dapo
    python -m toy_envs.experiments.clarity --out /tmp/cl --quick

Writes ``OUT/results.json`` ``{"experiment": "clarity", "base": "grpo"|"dapo", "methods": {name: {"label", "zeta",
"clear_first": summary, "clear_among_wins": summary, "success": summary, "curve_clear_first": {"mean", "ci_low",
"ci_high"}}}, "paired_clear_first": {"A - B": summary}, ...}`` and ``OUT/clarity.png``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ._common import GRID, base_parser, fmt_ci, mean_curve, meta, run_jobs, save_figure, summarize, write_json

#: (key, label, trainer method, zeta). The sweep rows reuse full EMPG with another ζ.
CONFIGS: list[tuple[str, str, str, float]] = [
    ("grpo", "GRPO", "grpo", 0.1),
    ("empg_scaling", "GRPO + scaling only (no bonus)", "empg_scaling", 0.1),
    ("empg_bonus", "GRPO + bonus only", "empg_bonus", 0.1),
    ("empg", "GRPO + EMPG full (ζ = 0.1)", "empg", 0.1),
]
SWEEP: list[tuple[str, str, str, float]] = [
    ("empg_zeta0.3", "GRPO + EMPG full (ζ = 0.3)", "empg", 0.3),
    ("empg_zeta1.0", "GRPO + EMPG full (ζ = 1.0)", "empg", 1.0),
]

#: Paired per-seed differences of clear_first reported in results.json: (name, row key, minus row key, by base).
PAIRS: list[tuple[str, str, str]] = [
    ("full - scaling only", "empg", "empg_scaling"),
    ("full - base", "empg", "base"),
    ("bonus only - base", "empg_bonus", "base"),
]

FOG_MAX_STEPS = 240  # 10x the 24 optimal steps: a random policy wins 5.75% (docs/toys.md)


def configs_for(base: str, sweep: bool = True) -> list[tuple[str, str, str, float]]:
    """The rows (key, label, trainer method, ζ) on the ``grpo`` (default, documented) or ``dapo`` base."""
    if base not in ("grpo", "dapo"):
        raise ValueError(f"base must be 'grpo' or 'dapo', got {base!r}")
    rows = CONFIGS + (SWEEP if sweep else [])
    if base == "grpo":
        return list(rows)
    out = []
    for key, label, method, zeta in rows:
        method = "dapo" if method == "grpo" else f"dapo_{method}"
        key = "dapo" if key == "grpo" else f"dapo_{key}"
        out.append((key, label.replace("GRPO", "DAPO"), method, zeta))
    return out


def _row_key(base: str, key: str) -> str:
    """Key of a PAIRS row on ``base`` ("base" -> the plain base row)."""
    if key == "base":
        return base
    return key if base == "grpo" else f"dapo_{key}"


class RouteLog:
    """Wraps a Fog env and logs, per finished episode, the first route entered and the final outcome."""

    def __init__(self, env: Any, log: list):
        self.env, self.log = env, log
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self._first: str | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._first = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        if self._first is None and info.get("route") is not None:
            self._first = info["route"]
        if term or trunc:
            self.log.append((self._first, info.get("route"), bool(info.get("success", False))))
        return obs, r, term, trunc, info

    def close(self):
        self.env.close()


def evaluate(policy: Any, make_env, n_episodes: int, seed: int) -> dict[str, float]:
    """Sample ``n_episodes`` with the final policy; shares of clear-route choices and wins."""
    import torch

    gen = torch.Generator().manual_seed(10_000 + seed)
    log: list = []
    env = RouteLog(make_env(), log)
    with torch.no_grad():
        for ep in range(n_episodes):
            obs, _ = env.reset(seed=ep)
            done = False
            while not done:
                z = policy.logits(torch.as_tensor([int(obs)]))[0]
                a = int(torch.multinomial(torch.softmax(z.double(), -1), 1, generator=gen))
                obs, _, term, trunc, _ = env.step(a)
                done = term or trunc
    return shares(log)


def shares(log: list) -> dict[str, float]:
    n = len(log)
    wins = [e for e in log if e[2]]
    return {
        "clear_first": sum(e[0] == "clear" for e in log) / n if n else float("nan"),
        "clear_among_wins": sum(e[1] == "clear" for e in wins) / len(wins) if wins else float("nan"),
        "success": len(wins) / n if n else float("nan"),
        "n_wins": len(wins),
    }


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    from toy_envs.train import ToyTrainConfig, train
    from toy_envs.gridworld import FogEnv

    kw = {**job["train_kwargs"], "zeta": job["zeta"], "env": "toy_envs/Fog-v0"}
    cfg = ToyTrainConfig.for_method(job["method"], seed=job["seed"], **kw)
    log: list = []
    marks: list[int] = [0]

    def make_env():
        return FogEnv(layout=job["layout"], max_steps=job["max_steps"])

    def callback(update: int, row: dict) -> bool:
        marks.append(len(log))
        return False

    t0 = time.perf_counter()
    res = train(cfg, lambda: RouteLog(make_env(), log), callback=callback)
    # Per update: share of the first round's episodes (the first tasks·G logged) that chose the clear route.
    n_first = cfg.tasks_per_update * cfg.group_size
    curve = [shares(log[a:a + n_first])["clear_first"] for a in marks[:-1]]
    ev = evaluate(res.policy, make_env, job["n_eval"], job["seed"])
    return {"key": job["key"], "seed": job["seed"], **ev, "curve_clear_first": curve,
            "train_success": res.curve("charts/success_rate"), "wall_time_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = base_parser("clarity", __doc__.split("\n")[0], "10")
    p.add_argument("--no-sweep", action="store_true", help="skip the ζ sweep rows")
    p.add_argument("--n-eval", type=int, default=200, help="evaluation episodes per run")
    p.add_argument("--base", choices=("grpo", "dapo"), default="grpo",
                   help="outcome advantage the rows build on (dapo: dynamic sampling + clip-higher)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    grid = dataclasses.replace(GRID, env="toy_envs/Fog-v0")
    layout, max_steps, n_eval = "default", FOG_MAX_STEPS, args.n_eval
    if args.quick:
        grid = dataclasses.replace(grid, updates=3, tasks_per_update=2, group_size=4)
        layout, max_steps, n_eval = "small", 40, 20
    configs = configs_for(args.base, sweep=not (args.no_sweep or args.quick))
    jobs = [{"key": key, "method": m, "zeta": z, "seed": s, "train_kwargs": grid.train_kwargs(), "layout": layout,
             "max_steps": max_steps, "n_eval": n_eval} for key, _, m, z in configs for s in args.seeds]
    results = run_jobs(run_one, jobs, workers=args.workers, desc="clarity", cache=Path(args.out) / "jobs")
    methods = {}
    for key, label, m, z in configs:
        rs = sorted((r for r in results if r["key"] == key), key=lambda r: r["seed"])
        among = [r["clear_among_wins"] for r in rs if r["n_wins"] > 0]
        methods[key] = {
            "label": label, "method": m, "zeta": z,
            "clear_first": summarize([r["clear_first"] for r in rs]),
            "clear_among_wins": summarize(among) if among else None,
            "success": summarize([r["success"] for r in rs]),
            "curve_clear_first": mean_curve([[0.0 if c != c else c for c in r["curve_clear_first"]] for r in rs]),
            "wall_time_s": [round(r["wall_time_s"], 2) for r in rs],
        }
    by_seed = {key: {r["seed"]: r["clear_first"] for r in results if r["key"] == key} for key, *_ in configs}
    paired = {}
    for name, a, b in PAIRS:
        ka, kb = _row_key(args.base, a), _row_key(args.base, b)
        if ka in by_seed and kb in by_seed:
            paired[name] = summarize([by_seed[ka][s] - by_seed[kb][s] for s in args.seeds])
    out = {"experiment": "clarity", "base": args.base, "methods": methods, "paired_clear_first": paired,
           "settings": {**grid.train_kwargs(), "layout": layout, "max_steps": max_steps, "n_eval": n_eval},
           **meta(args, t0)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "results.json", out)
    plot(out, Path(args.out) / "clarity.png")
    print(table(out))
    print(f"wall time {out['wall_time_s']:.1f} s ({args.workers} workers) -> {args.out}")
    return 0


def table(out: dict[str, Any]) -> str:
    n = len(out["seeds"])
    base, st = out.get("base", "grpo").upper(), out["settings"]
    lines = [f"\nFog-v0 ({base} base, {st['layout']}), {n} seeds, final policy, {st['n_eval']} "
             "episodes each (mean ± 95% CI half-width)\n",
             "| method | clear route at the fork | clear among wins | success |", "|---|---|---|---|"]
    for s in out["methods"].values():
        cw = fmt_ci(s["clear_among_wins"]) if s["clear_among_wins"] else "n/a"
        lines.append(f"| {s['label']} | {fmt_ci(s['clear_first'])} | {cw} | {fmt_ci(s['success'])} |")
    if out.get("paired_clear_first"):
        lines.append("\npaired per-seed difference of 'clear route at the fork' (mean [95% CI]):")
        for name, s in out["paired_clear_first"].items():
            lines.append(f"  {name}: {s['mean']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]")
    return "\n".join(lines)


def plot(out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key, s in out["methods"].items():
        c = s["curve_clear_first"]
        x = list(range(1, len(c["mean"]) + 1))
        ax1.plot(x, c["mean"], label=s["label"])
        ax1.fill_between(x, c["ci_low"], c["ci_high"], alpha=0.12)
    ax1.axhline(0.5, color="k", lw=0.8, ls=":")
    ax1.set_title("share of episodes entering the clear route (training)", fontsize=10)
    ax1.set_xlabel("update")
    ax1.set_ylim(0, 1)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    labels = [s["label"].replace("GRPO + ", "+").replace("DAPO + ", "+").replace(" (no bonus)", "")
              for s in out["methods"].values()]
    means = [s["clear_first"]["mean"] for s in out["methods"].values()]
    err = [(s["clear_first"]["ci_high"] - s["clear_first"]["ci_low"]) / 2 for s in out["methods"].values()]
    ax2.bar(range(len(means)), means, yerr=err, capsize=4, color="tab:blue", alpha=0.7)
    ax2.set_xticks(range(len(means)))
    ax2.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    ax2.axhline(0.5, color="k", lw=0.8, ls=":")
    ax2.set_ylim(0, 1)
    ax2.set_title("final policy: clear route at the fork (95% CI)", fontsize=10)
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
