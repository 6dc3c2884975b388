"""Miniature 3: does the future-clarity bonus (Eq. 11) steer toward the predictable route?

**Hypothesis (written and committed before the first run on ``toy_envs/Clarity-v0``).**
``Clarity-v0`` has two equally long routes from the fork ``S`` to a goal. On the *predictable* route
(a corridor) every state has exactly one right move, so a learning policy becomes confident there; on
the *open* route (a triangle whose far edge is a row of goals) every state has two equally right moves
(right and down), so nothing pushes the entropy there toward 0. The observation is the Markov state
(no aliasing, unlike ``Fog-v0``). The bonus ``ζ·f_{t+1}`` (Eq. 8, 11) pays a step for the clarity of
the *next* step, so the fork move into the corridor should collect more bonus than the move into the
open triangle once the corridor's first cell has the lower entropy. We predict:

* **H1 (primary).** The share of successful evaluation episodes that reach a goal through the
  predictable route (``predictable_route_share``) is higher with EMPG than without it, on both bases:
  the per-seed paired differences ``empg − grpo`` and ``dapo_empg − dapo`` are > 0.
* **H2.** The bonus is what does it: ``bonus only − base`` > 0 and ``full − scaling only`` > 0 on
  both bases.
* **H3.** The scaling alone (Eq. 10) has no reason to prefer a route; no direction is predicted for
  ``scaling only − base``.
* **H4.** A larger ζ gives a larger share (GRPO base, ζ = 0.1, 0.3, 1.0), possibly at a cost in success.
* **Mechanism.** During training the policy entropy at the first corridor cell falls below the
  entropy at the first open cell, under every method.

Decision rule: a paired difference supports its prediction when its 95% t-interval over seeds lies
above 0, contradicts it when the interval lies below 0, and shows nothing otherwise. The experiment is
then rerun on a fresh block of seeds; where the two blocks disagree in direction, the result is
called inconclusive. GRPO itself is expected to lean toward the open route (a random walk wins there
several times as often as through the corridor, see docs/toys.md), so every comparison is paired
against the method's base on the same seed, not against 0.5.

``--env fog`` runs the same rows on ``toy_envs/Fog-v0`` (default layout, 240-step limit), where the
"predictable" route is the clear one and earlier runs found the opposite (the aliased fog id becomes
confident first, and the bonus pulls toward it): there, this experiment replicates that finding.

Measured on the final policy of each run (``--n-eval`` sampled episodes, 200 by default):

- ``predictable_route_share``: per seed, the share of successful evaluation episodes whose goal was
  reached through the predictable route (``None`` for a seed without a success);
- ``fork_predictable_share``: per seed, the share of evaluation episodes whose first route entered is
  the predictable one (the choice at the fork);
- ``success``: per seed, the evaluation success rate;

and during training, per update: the share of the first round's successful episodes that took the
predictable route (``curve_route_share``, NaN in an update without a success), and the policy entropy
at the first cell of each route (``curve_entropy_predictable``, ``curve_entropy_open``).

    python -m toy_envs.experiments.clarity --out runs/clarity                       # Clarity-v0, 20 seeds
    python -m toy_envs.experiments.clarity --out runs/clarity_fresh --seeds 20,21,...   # another block
    python -m toy_envs.experiments.clarity --env fog --out runs/clarity_fog         # Fog-v0
    python -m toy_envs.experiments.clarity --out /tmp/cl --quick                    # smoke test

Writes ``OUT/results.json``::

    {"experiment": "clarity", "env": "clarity"|"fog", "env_id", "settings", "seeds",
     "methods": {name: {"label", "method", "zeta", "predictable_route_share": [per seed],
                        "predictable_route_share_summary": summary, "fork_predictable_share": [...],
                        "success": [...], "curve_route_share": [[per update] per seed],
                        "curve_entropy_predictable": [...], "curve_entropy_open": [...]}},
     "paired": {"A - B": summary of the per-seed differences of predictable_route_share},
     "paired_fork": {"A - B": the same for fork_predictable_share}, ...}

(a summary is ``{"mean", "ci_low", "ci_high", "n", "values"}``, a 95% t-interval over seeds) and
``OUT/clarity.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ._common import base_parser, fmt_ci, load_results, meta, report, run_jobs, save_figure, summarize


@dataclasses.dataclass(frozen=True)
class ClaritySettings:
    """Training settings of this experiment (one choice for every method; see docs/toys.md for how chosen)."""

    updates: int = 30
    tasks_per_update: int = 4
    group_size: int = 8            # paper: group size 8
    loss: str = "clipped"
    epochs: int = 2
    optimizer: str = "sgd"
    lr: float = 20.0
    k: float = 1.0                 # reference pseudocode defaults
    k_f: float = 1.0

    def train_kwargs(self) -> dict[str, Any]:
        return dict(updates=self.updates, tasks_per_update=self.tasks_per_update, group_size=self.group_size,
                    loss=self.loss, epochs=self.epochs, optimizer=self.optimizer, lr=self.lr, k=self.k, k_f=self.k_f,
                    progress=False, plot=False)


#: Per env: gymnasium id, env kwargs, training settings, and the tile letter of the predictable route.
ENVS: dict[str, dict[str, Any]] = {
    "clarity": {"env_id": "toy_envs/Clarity-v0", "env_kwargs": {"layout": "default"}, "settings": ClaritySettings()},
    # Fog: 10x the 24 optimal steps (a random policy wins 5.75%, docs/toys.md); the shared gridworld setting.
    "fog": {"env_id": "toy_envs/Fog-v0", "env_kwargs": {"layout": "default", "max_steps": 240},
            "settings": ClaritySettings()},
}
QUICK_ENV_KWARGS = {"clarity": {"layout": "small"}, "fog": {"layout": "small", "max_steps": 40}}

#: (key, label, trainer method, zeta). The sweep rows reuse GRPO + full EMPG with a larger ζ.
CONFIGS: list[tuple[str, str, str, float]] = [
    ("grpo", "GRPO", "grpo", 0.1),
    ("empg", "GRPO + EMPG", "empg", 0.1),
    ("dapo", "DAPO", "dapo", 0.1),
    ("dapo_empg", "DAPO + EMPG", "dapo_empg", 0.1),
    ("empg_scaling", "GRPO + scaling only", "empg_scaling", 0.1),
    ("empg_bonus", "GRPO + bonus only", "empg_bonus", 0.1),
    ("dapo_empg_scaling", "DAPO + scaling only", "dapo_empg_scaling", 0.1),
    ("dapo_empg_bonus", "DAPO + bonus only", "dapo_empg_bonus", 0.1),
]
SWEEP: list[tuple[str, str, str, float]] = [
    ("empg_zeta0.3", "GRPO + EMPG, ζ = 0.3", "empg", 0.3),
    ("empg_zeta1.0", "GRPO + EMPG, ζ = 1.0", "empg", 1.0),
]

#: Paired per-seed differences of predictable_route_share: (name, row, minus row).
PAIRS: list[tuple[str, str, str]] = [
    ("empg - grpo", "empg", "grpo"),
    ("dapo_empg - dapo", "dapo_empg", "dapo"),
    ("empg_bonus - grpo", "empg_bonus", "grpo"),
    ("dapo_empg_bonus - dapo", "dapo_empg_bonus", "dapo"),
    ("empg - empg_scaling", "empg", "empg_scaling"),
    ("dapo_empg - dapo_empg_scaling", "dapo_empg", "dapo_empg_scaling"),
    ("empg_scaling - grpo", "empg_scaling", "grpo"),
    ("dapo_empg_scaling - dapo", "dapo_empg_scaling", "dapo"),
    ("empg_zeta0.3 - grpo", "empg_zeta0.3", "grpo"),
    ("empg_zeta1.0 - grpo", "empg_zeta1.0", "grpo"),
]

#: The route label that counts as "predictable" per env (info["route"] of the env).
PREDICTABLE = {"clarity": "predictable", "fog": "clear"}


def _make_env(env: str, env_kwargs: dict[str, Any]):
    from toy_envs.gridworld import ClarityEnv, FogEnv

    return (ClarityEnv if env == "clarity" else FogEnv)(**env_kwargs)


def route_cells(base: Any) -> dict[str, int]:
    """Observation ids of the first cell of each route after the fork (the cells the start's moves enter)."""
    start = base.layout.start
    out = {}
    for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
        pos = (start[0] + dr, start[1] + dc)
        tile = base.layout.tile(pos)
        if tile in ("c",):
            out["predictable"] = base.observation_of(pos)
        elif tile in ("o", "~"):
            out["open"] = base.observation_of(pos)
    if set(out) != {"predictable", "open"}:
        raise ValueError("layout: the start must neighbour one cell of each route")
    return out


class RouteLog:
    """Wraps a route-tagged gridworld and logs, per finished episode, (first route entered, final route, success)."""

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


def shares(log: list, predictable: str) -> dict[str, Any]:
    """From (first route, final route, success) records: route shares among wins and at the fork, and success."""
    n = len(log)
    wins = [e for e in log if e[2]]
    return {
        "predictable_route_share": sum(e[1] == predictable for e in wins) / len(wins) if wins else None,
        "fork_predictable_share": sum(e[0] == predictable for e in log) / n if n else None,
        "success": len(wins) / n if n else None,
        "n_wins": len(wins),
    }


def evaluate(policy: Any, make_env, n_episodes: int, seed: int, predictable: str) -> dict[str, Any]:
    """Sample ``n_episodes`` with the final policy (its own generator); the route shares and success."""
    import torch

    gen = torch.Generator().manual_seed(10_000 + seed)
    log: list = []
    env = RouteLog(make_env(), log)
    with torch.no_grad():
        for ep in range(n_episodes):
            obs, _ = env.reset(seed=ep)
            done = False
            while not done:
                a = int(policy.sample(torch.as_tensor([int(obs)]), generator=gen)[0])
                obs, _, term, trunc, _ = env.step(a)
                done = term or trunc
    return shares(log, predictable)


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One training run and the evaluation of its final policy (in a worker process)."""
    import torch

    from toy_envs.train import ToyTrainConfig, make_policy, train

    env_name, env_kwargs, predictable = job["env"], job["env_kwargs"], PREDICTABLE[job["env"]]
    cfg = ToyTrainConfig.for_method(job["method"], seed=job["seed"], zeta=job["zeta"], env=ENVS[env_name]["env_id"],
                                    env_kwargs=_json(env_kwargs), **job["train_kwargs"])
    probe = _make_env(env_name, env_kwargs)
    cells = route_cells(probe)
    policy = make_policy(cfg, probe)
    log: list = []
    marks: list[int] = [0]
    ent_p, ent_o = [], []

    def entropy(state: int) -> float:
        return float(torch.distributions.Categorical(logits=policy.table[state].detach()).entropy())

    def callback(update: int, row: dict) -> bool:
        marks.append(len(log))
        ent_p.append(entropy(cells["predictable"]))
        ent_o.append(entropy(cells["open"]))
        return False

    t0 = time.perf_counter()
    train(cfg, lambda: RouteLog(_make_env(env_name, env_kwargs), log), policy, callback=callback)
    # Per update: among the first round's episodes (the first tasks·G logged), the predictable share of wins.
    n_first = cfg.tasks_per_update * cfg.group_size
    curve = [shares(log[a:a + n_first], predictable)["predictable_route_share"] for a in marks[:-1]]
    ev = evaluate(policy, lambda: _make_env(env_name, env_kwargs), job["n_eval"], job["seed"], predictable)
    return {"key": job["key"], "seed": job["seed"], **ev,
            "curve_route_share": [math.nan if c is None else c for c in curve],
            "curve_entropy_predictable": ent_p, "curve_entropy_open": ent_o,
            "wall_time_s": time.perf_counter() - t0}


def _rounded(curve: list[float], digits: int = 4) -> list[float]:
    """A per-update curve rounded for results.json (the summaries keep full precision)."""
    return [round(float(v), digits) if v == v else v for v in curve]


def _json(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True)


def paired(values: dict[str, list], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """Per-seed differences of a per-seed measure (e.g. ``predictable_route_share``) for :data:`PAIRS`.

    Only seeds where both rows have a value count; ``n_seeds_total`` says how many seeds there were.
    """
    out = {}
    for name, a, b in PAIRS:
        if a not in values or b not in values:
            continue
        d = [x - y for x, y in zip(values[a], values[b]) if x is not None and y is not None]
        if d:
            out[name] = {**summarize(d), "n_seeds_total": len(seeds)}
    return out


def add_paired(report: dict[str, Any]) -> None:
    """``report["paired"]`` (predictable share among wins) and ``report["paired_fork"]`` (share at the fork)."""
    methods, seeds = report["methods"], list(report["seeds"])
    report["paired"] = paired({k: v["predictable_route_share"] for k, v in methods.items()}, seeds)
    report["paired_fork"] = paired({k: v["fork_predictable_share"] for k, v in methods.items()}, seeds)


def main(argv: list[str] | None = None) -> int:
    p = base_parser("clarity", __doc__.split("\n")[0], "20", replot="recompute the paired differences, table and figure")
    p.add_argument("--env", choices=tuple(ENVS), default="clarity", help="Clarity-v0 (default) or Fog-v0")
    p.add_argument("--no-sweep", action="store_true", help="skip the ζ sweep rows")
    p.add_argument("--n-eval", type=int, default=200, help="evaluation episodes per run")
    p.add_argument("--methods", default=None,
                   help="comma list of row keys to run (default: all); e.g. grpo,empg for a quick look")
    args = p.parse_args(argv)
    if args.replot:
        results = load_results(args.out)
        add_paired(results)
        return report(args.out, results, "clarity.png", lambda path: plot(results, path), table(results))
    if args.n_eval < 1:
        p.error("--n-eval must be >= 1")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    t0 = time.perf_counter()
    spec = ENVS[args.env]
    settings: ClaritySettings = spec["settings"]
    env_kwargs, n_eval = dict(spec["env_kwargs"]), args.n_eval
    if args.quick:
        settings = dataclasses.replace(settings, updates=3, tasks_per_update=2, group_size=4)
        env_kwargs, n_eval = dict(QUICK_ENV_KWARGS[args.env]), min(n_eval, 20)
    configs = CONFIGS + ([] if (args.no_sweep or args.quick) else SWEEP)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = sorted(set(wanted) - {c[0] for c in CONFIGS + SWEEP})
        if unknown:
            p.error(f"--methods: unknown row(s) {unknown}; choose from {[c[0] for c in CONFIGS + SWEEP]}")
        configs = [c for c in CONFIGS + SWEEP if c[0] in wanted]
    jobs = [{"key": key, "method": m, "zeta": z, "seed": s, "env": args.env, "env_kwargs": env_kwargs,
             "train_kwargs": settings.train_kwargs(), "n_eval": n_eval}
            for key, _, m, z in configs for s in args.seeds]
    out_dir = Path(args.out)
    results = run_jobs(run_one, jobs, workers=args.workers, desc="clarity", cache=out_dir / "jobs")
    methods: dict[str, Any] = {}
    for key, label, m, z in configs:
        rs = sorted((r for r in results if r["key"] == key), key=lambda r: r["seed"])
        share = [r["predictable_route_share"] for r in rs]
        defined = [v for v in share if v is not None]
        methods[key] = {
            "label": label, "method": m, "zeta": z,
            "predictable_route_share": share,
            "predictable_route_share_summary": summarize(defined) if defined else None,
            "fork_predictable_share": [r["fork_predictable_share"] for r in rs],
            "fork_predictable_share_summary": summarize([r["fork_predictable_share"] for r in rs]),
            "success": [r["success"] for r in rs],
            "success_summary": summarize([r["success"] for r in rs]),
            "curve_route_share": [_rounded(r["curve_route_share"]) for r in rs],
            "curve_entropy_predictable": [_rounded(r["curve_entropy_predictable"]) for r in rs],
            "curve_entropy_open": [_rounded(r["curve_entropy_open"]) for r in rs],
            "wall_time_s": [round(r["wall_time_s"], 2) for r in rs],
        }
    summary = {"experiment": "clarity", "env": args.env, "env_id": spec["env_id"], "methods": methods,
              "settings": {**settings.train_kwargs(), "env_kwargs": env_kwargs, "n_eval": n_eval},
              **meta(args, t0)}
    add_paired(summary)
    return report(args.out, summary, "clarity.png", lambda path: plot(summary, path), table(summary), args.workers)


def _fmt(s: dict[str, Any] | None) -> str:
    if s is None:
        return "n/a"
    return fmt_ci(s, 2)


def table(report: dict[str, Any]) -> str:
    """The Markdown table of docs/toys.md and the paired differences."""
    n = len(report["seeds"])
    seeds = report["seeds"]
    seed_txt = f"seeds {seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else f"seeds {seeds}"
    lines = [f"\n{report['env_id']} {report['settings']['env_kwargs']}, {n} seeds ({seed_txt}), final policy, "
             f"{report['settings']['n_eval']} evaluation episodes per seed (mean ± 95% CI half-width)\n",
             "| method | predictable route among wins | predictable route at the fork | success | seeds with a win |",
             "|---|---|---|---|---|"]
    for s in report["methods"].values():
        n_def = sum(v is not None for v in s["predictable_route_share"])
        lines.append(f"| {s['label']} | {_fmt(s['predictable_route_share_summary'])} | "
                     f"{_fmt(s['fork_predictable_share_summary'])} | {_fmt(s['success_summary'])} | {n_def}/{n} |")
    for key, what in (("paired", "the predictable share among wins"), ("paired_fork", "the predictable share at the fork")):
        if report.get(key):
            lines += ["", f"| paired per-seed difference of {what} | mean [95% CI] | seeds |", "|---|---|---|"]
            for name, s in report[key].items():
                ci = "n/a" if s["ci_low"] is None else f"{s['ci_low']:+.3f}, {s['ci_high']:+.3f}"
                lines.append(f"| {name} | {s['mean']:+.3f} [{ci}] | {s['n']} |")
    return "\n".join(lines)


def plot(report: dict[str, Any], path) -> None:
    """Three panels: the route share among wins over training (per-seed mean), the entropy at each route's
    first cell over training, and the final share per seed (one dot per seed) for every method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.2))
    shown = [k for k in ("grpo", "empg", "dapo", "dapo_empg") if k in report["methods"]] or list(report["methods"])
    colours = {k: f"C{i}" for i, k in enumerate(report["methods"])}
    for key in shown:
        s = report["methods"][key]
        c = np.array(s["curve_route_share"], dtype=float)
        x = np.arange(1, c.shape[1] + 1)
        with np.errstate(all="ignore"):
            mean = np.nanmean(c, axis=0)  # over the seeds with a win in that update; stays in [0, 1]
        ax1.plot(x, mean, color=colours[key], label=s["label"])
        ep = np.array(s["curve_entropy_predictable"], dtype=float).mean(0)
        eo = np.array(s["curve_entropy_open"], dtype=float).mean(0)
        ax2.plot(x, ep, color=colours[key], label=f"{s['label']}: first predictable cell")
        ax2.plot(x, eo, color=colours[key], ls="--", label=f"{s['label']}: first open cell")
    ax1.set(xlabel="update", ylabel="predictable share of the update's wins", ylim=(-0.02, 1.02),
            title="route share among training wins (mean over seeds)")
    ax2.set(xlabel="update", ylabel="policy entropy (nats)", ylim=(0, math.log(4) + 0.05),
            title="entropy at each route's first cell (mean over seeds)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    keys = list(report["methods"])
    rng = np.random.default_rng(0)
    for i, key in enumerate(keys):
        vals = [v for v in report["methods"][key]["predictable_route_share"] if v is not None]
        ax3.scatter(i + rng.uniform(-0.15, 0.15, len(vals)), vals, s=10, color=colours[key], alpha=0.7,
                    label="one seed" if i == 0 else None)
        if vals:
            ax3.hlines(float(np.mean(vals)), i - 0.3, i + 0.3, color="k", lw=2, label="mean" if i == 0 else None)
    ax3.set_xticks(range(len(keys)))
    ax3.set_xticklabels([report["methods"][k]["label"] for k in keys], rotation=30, ha="right", fontsize=7)
    ax3.set(ylim=(-0.02, 1.02), ylabel="predictable share of evaluation wins", title="final policy, per seed")
    ax3.grid(alpha=0.3, axis="y")
    ax3.legend(fontsize=7)
    fig.suptitle(f"{report['env_id']} {report['settings']['env_kwargs']}, {len(report['seeds'])} seeds", fontsize=10)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
