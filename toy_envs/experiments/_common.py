"""Shared pieces of the miniature experiments: settings, environment factories, CIs, the worker pool, I/O.

Every experiment runs many independent training runs (method × seed). They go through
:func:`run_jobs`, a ``multiprocessing`` pool (``spawn``, 2 workers by default, one torch thread each),
and each job is a plain dict so that it pickles. With a ``cache`` folder each finished job leaves one
result file there (written atomically), so a killed sweep started again recomputes only the jobs
that had not finished. Statistics over seeds use a Student-t interval (:func:`t_interval`, from
``scipy.stats``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from empg.io import atomic_write_bytes, check_writable

__all__ = [
    "GRID",
    "TEXT",
    "GridSettings",
    "TextSettings",
    "t_interval",
    "summarize",
    "auc",
    "final_success",
    "run_jobs",
    "base_parser",
    "parse_seeds",
    "write_json",
    "save_figure",
    "keydoor_factory",
    "textworld_factory",
    "fmt_ci",
    "half_width",
    "SeedsError",
    "meta",
    "mean_curve",
    "clip_band",
]

def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and two-sided 95% Student-t interval ``mean ± t_{0.975,n-1} · s/√n`` of ``values`` (``scipy.stats.t``).

    Returns ``(mean, lower, upper)``. A t-interval needs at least two values (with one there is no
    spread to estimate): one value raises ``ValueError`` rather than returning a zero-width or NaN
    interval; :func:`summarize` reports such an interval as undefined (``None``) instead.
    """
    from scipy import stats

    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("values must be non-empty")
    if not all(math.isfinite(v) for v in xs):
        raise ValueError(f"values must be finite, got {xs}")
    n = len(xs)
    if n < 2:
        raise ValueError(f"a 95% t-interval needs at least 2 values, got {n} ({xs}); with one seed the interval "
                         "is undefined (summarize() reports it as None)")
    mean = sum(xs) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "ci_low", "ci_high", "n", "values"}`` of per-seed ``values`` (95% t-interval).

    With a single value the interval is undefined: ``ci_low`` and ``ci_high`` are ``None`` (printed
    as ``n/a`` by :func:`fmt_ci`), never a zero-width interval or NaN.
    """
    xs = [float(v) for v in values]
    if len(xs) == 1:
        if not math.isfinite(xs[0]):
            raise ValueError(f"values must be finite, got {xs}")
        return {"mean": xs[0], "ci_low": None, "ci_high": None, "n": 1, "values": xs}
    m, lo, hi = t_interval(xs)
    return {"mean": m, "ci_low": lo, "ci_high": hi, "n": len(xs), "values": xs}


def half_width(s: dict[str, Any]) -> float | None:
    """Half-width of a summary's 95% interval, or None where it is undefined (one value)."""
    if s.get("ci_low") is None or s.get("ci_high") is None:
        return None
    return (s["ci_high"] - s["ci_low"]) / 2


def fmt_ci(s: dict[str, Any], digits: int = 2, scale: float = 1.0) -> str:
    """``"0.83 ± 0.05"`` (half-width of the 95% interval, values times ``scale``); ``"0.83 ± n/a"`` with one value."""
    h = half_width(s)
    return f"{s['mean'] * scale:.{digits}f} ± " + ("n/a" if h is None else f"{h * scale:.{digits}f}")


def auc(curve: Sequence[float]) -> float:
    """Normalised area under a success curve: its mean over updates (in [0, 1] for success rates)."""
    if not len(curve):
        raise ValueError("curve must be non-empty")
    return float(sum(curve) / len(curve))


def final_success(curve: Sequence[float], last: int = 5) -> float:
    """Mean success rate of the last ``last`` updates (training rollouts of the stochastic policy)."""
    tail = list(curve)[-last:]
    return float(sum(tail) / len(tail))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class GridSettings:
    """The gridworld training settings shared by every miniature experiment (one choice for all methods).

    ``lr`` was chosen once, on the GRPO baseline, so that learning happens within the budget; every
    method uses the same value. SGD rather than Adam: Adam divides each parameter's step by its own
    running gradient scale, and for a tabular policy a state's parameters are its own, so the
    per-state factor g of Eq. 10 would be largely divided out again (see docs/toys.md).
    """

    env: str = "toy_envs/KeyDoor-v0"
    layout: str = "default"        # 22 optimal steps, key -> door -> goal
    max_steps: int = 220           # 10x optimal: a random policy wins 5.3% (docs/toys.md table)
    updates: int = 30
    tasks_per_update: int = 4
    group_size: int = 8            # paper: group size 8
    loss: str = "clipped"          # PPO/DAPO surrogate: clip-higher only matters with a ratio
    epochs: int = 2
    optimizer: str = "sgd"
    lr: float = 20.0
    k: float = 1.0                 # reference pseudocode defaults
    k_f: float = 1.0
    zeta: float = 0.1

    def train_kwargs(self) -> dict[str, Any]:
        return dict(env=self.env, updates=self.updates, tasks_per_update=self.tasks_per_update,
                    group_size=self.group_size, loss=self.loss, epochs=self.epochs, optimizer=self.optimizer,
                    lr=self.lr, k=self.k, k_f=self.k_f, zeta=self.zeta, progress=False, plot=False)


@dataclass(frozen=True)
class TextSettings:
    """TextWorld settings (log-linear policy over hashed (observation, command) features)."""

    env: str = "toy_envs/TextWorld-v0"
    game_seed: int = 0             # one generated game: world_size 3, nb_objects 5, quest_length 3
    max_episode_steps: int = 20
    updates: int = 15
    tasks_per_update: int = 1
    group_size: int = 8
    loss: str = "clipped"
    epochs: int = 2
    optimizer: str = "sgd"
    lr: float = 0.25
    k: float = 1.0
    k_f: float = 1.0
    zeta: float = 0.1

    def train_kwargs(self) -> dict[str, Any]:
        return dict(env=self.env, updates=self.updates, tasks_per_update=self.tasks_per_update,
                    group_size=self.group_size, loss=self.loss, epochs=self.epochs, optimizer=self.optimizer,
                    lr=self.lr, k=self.k, k_f=self.k_f, zeta=self.zeta, num_tasks=1, policy="loglinear",
                    progress=False, plot=False)


GRID = GridSettings()
TEXT = TextSettings()


def keydoor_factory(layout: str = GRID.layout, max_steps: int = GRID.max_steps) -> Callable[[], Any]:
    """``make_env()`` for the trainer: the KeyDoor class itself (no gymnasium wrappers: ~2x faster)."""
    from toy_envs.gridworld import KeyDoorEnv

    def make_env():
        return KeyDoorEnv(layout=layout, max_steps=max_steps)

    return make_env


def textworld_factory(game_seed: int = TEXT.game_seed, max_episode_steps: int = TEXT.max_episode_steps):
    """``make_env()`` for the trainer: one TextWorld game (generated once, cached on disk)."""
    from toy_envs.textworld_env import TextWorldEnv

    def make_env():
        return TextWorldEnv(seed=game_seed, max_episode_steps=max_episode_steps, observation="state")

    return make_env


# --------------------------------------------------------------------------- running


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("MPLBACKEND", "Agg")


def run_jobs(fn: Callable[[dict], dict], jobs: Sequence[dict], workers: int = 2, desc: str = "runs",
             cache: str | os.PathLike | None = None) -> list[dict]:
    """Run ``fn(job)`` for every job on ``workers`` processes (spawn); results in job order, with a tqdm bar.

    Args:
        fn: a module-level function (it is pickled for the workers) returning a JSON-serialisable dict.
        jobs: plain dicts, one per run.
        workers: processes (1 runs in this process).
        desc: label of the progress bar.
        cache: a folder for one result file per finished job (``job-<key>.json``, written atomically as
            soon as the job ends). A job whose file is there, for the same ``fn``, the same job dict and
            the same code (the ``empg`` and ``toy_envs`` sources and the torch version), is not run
            again, so a killed sweep started again with the same command only computes what was
            missing. A damaged file is reported and recomputed. Results are returned as read back from
            JSON in both cases, so a resumed sweep gives exactly what an uninterrupted one gives.
    """
    from tqdm.auto import tqdm

    jobs = list(jobs)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results: list[dict | None] = [None] * len(jobs)
    paths: list[Path | None] = [None] * len(jobs)
    specs: list[dict | None] = [None] * len(jobs)
    if cache is not None:
        folder = check_writable(cache, "job cache folder")
        code = _code_version()
        for i, job in enumerate(jobs):
            specs[i] = {"fn": f"{fn.__module__}.{fn.__qualname__}", "job": job, "code": code}
            paths[i] = folder / f"job-{_job_key(specs[i])}.json"
            results[i] = _load_job_result(paths[i], specs[i])
    todo = [i for i in range(len(jobs)) if results[i] is None]
    reused = len(jobs) - len(todo)
    bar = tqdm(total=len(jobs), initial=reused, desc=desc, dynamic_ncols=True)

    def done(i: int, res: dict) -> None:
        if paths[i] is not None:
            text = json.dumps({**specs[i], "result": res})  # NaN allowed: some curves hold NaN for "no episode"
            atomic_write_bytes(paths[i], text.encode())
            res = json.loads(text)["result"]
        results[i] = res
        bar.update(1)

    if workers == 1 or len(todo) <= 1:
        _init_worker()
        for i in todo:
            done(i, fn(jobs[i]))
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for i, res in pool.imap_unordered(_indexed, [(fn, i, jobs[i]) for i in todo]):
                done(i, res)
    bar.close()
    if reused:
        print(f"{desc}: {reused} of {len(jobs)} runs reused from {cache}")
    return results  # type: ignore[return-value]


def _job_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def _code_version() -> str:
    """A hash of every source file of ``empg`` and ``toy_envs`` and of the torch version (what a result depends on)."""
    import torch

    import empg
    import toy_envs

    h = hashlib.sha256(torch.__version__.encode())
    for package in (empg, toy_envs):
        root = Path(package.__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".txt") and "__pycache__" not in p.parts):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _load_job_result(path: Path, spec: dict) -> dict | None:
    """The stored result of ``spec`` at ``path``, or None (missing, another job's, or damaged: then a warning)."""
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        warnings.warn(f"job result {str(path)!r} is damaged ({err}); running the job again", RuntimeWarning)
        return None
    if not isinstance(stored, dict) or "result" not in stored:
        warnings.warn(f"job result {str(path)!r} has no 'result' field; running the job again", RuntimeWarning)
        return None
    if json.dumps({k: stored.get(k) for k in spec}, sort_keys=True) != json.dumps(spec, sort_keys=True):
        return None  # a hash collision or a hand-edited file: not this job's result
    return stored["result"]


def _indexed(arg: tuple[Callable[[dict], dict], int, dict]) -> tuple[int, dict]:
    fn, i, job = arg
    return i, fn(job)


class SeedsError(argparse.ArgumentTypeError, ValueError):
    """A bad ``--seeds`` value: a ``ValueError`` for callers, and argparse prints its message as is."""


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"8,3,5"`` -> ``[3, 5, 8]``.

    The list is returned sorted, so that every per-seed list an experiment writes (built in seed
    order) and the ``"seeds"`` field of its results.json line up. Duplicates and negative seeds raise
    :class:`SeedsError` (a ``ValueError``) naming ``--seeds``.
    """
    text = str(text).strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise SeedsError(f"--seeds must be a count (10) or a list (0,1,2), got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise SeedsError(f"--seeds must give at least one seed >= 0, got {text!r}")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise SeedsError(f"--seeds lists seed(s) {dup} more than once, got {text!r}")
    return sorted(seeds)


def base_parser(name: str, doc: str, default_seeds: str, replot: str | None = None) -> argparse.ArgumentParser:
    """The flags every experiment shares: --out, --seeds, --quick, --workers (and --replot, helped by ``replot``)."""
    p = argparse.ArgumentParser(prog=f"python -m toy_envs.experiments.{name}", description=doc,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=f"runs/{name}", help="output directory (results.json and PNGs)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds(default_seeds),
                   help="number of seeds (N -> 0..N-1) or a comma-separated list")
    p.add_argument("--quick", action="store_true",
                   help="tiny budget (a smoke test in seconds; the numbers mean nothing)")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    if replot is not None:
        p.add_argument("--replot", action="store_true", help=f"no training: {replot} from OUT/results.json")
    return p


def load_results(out_dir: str | os.PathLike) -> dict[str, Any]:
    """``OUT/results.json`` of an earlier run (for ``--replot``)."""
    return json.loads((Path(out_dir) / "results.json").read_text())


def report(out_dir: str | os.PathLike, results: dict[str, Any], figure: str, plot: Callable[[Path], None],
           table: str, workers: int | None = None) -> int:
    """Write ``OUT/results.json``, draw ``OUT/<figure>`` with ``plot(path)``, print ``table``; returns 0.

    ``workers`` (a fresh run, not a replot) also prints the run's wall time.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    plot(out / figure)
    print(table)
    if workers is not None:
        print(f"wall time {results['wall_time_s']:.1f} s ({workers} workers) -> {out_dir}")
    return 0


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON atomically (:func:`empg.io.atomic_write_bytes`; NaN is written as ``NaN``)."""
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 90) -> None:
    """Lay out a matplotlib figure, save it as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def meta(args: argparse.Namespace, t0: float, **extra: Any) -> dict[str, Any]:
    """Run metadata for results.json: seeds, quick, workers, wall time."""
    return {"seeds": list(args.seeds), "quick": bool(args.quick), "workers": int(args.workers),
            "wall_time_s": round(time.perf_counter() - t0, 1), **extra}


def mean_curve(curves: Iterable[Sequence[float]], low: float | None = None,
               high: float | None = None) -> dict[str, Any]:
    """Pointwise mean and 95% t-interval of equally long curves (one per seed), and the curves themselves.

    A t-band can leave the range a quantity lives in when seeds are few (success above 1, a KL below
    0); ``low`` / ``high`` clip the band to that range. With one curve the band is undefined:
    ``ci_low`` / ``ci_high`` are None. ``"per_seed"`` keeps every curve, for plots that draw each seed.
    """
    curves = [list(c) for c in curves]
    n = min(len(c) for c in curves)
    mean = [sum(c[j] for c in curves) / len(curves) for j in range(n)]
    if len(curves) < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "per_seed": [c[:n] for c in curves]}
    lo, hi = [], []
    for j in range(n):
        _, a, b = t_interval([c[j] for c in curves])
        lo.append(a if low is None else max(low, a))
        hi.append(b if high is None else min(high, b))
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "per_seed": [c[:n] for c in curves]}


def clip_band(c: dict[str, Any], low: float | None, high: float | None) -> tuple[list[float], list[float]] | None:
    """A stored curve's band clipped to ``[low, high]`` (for replotting old results.json), or None if undefined."""
    if c.get("ci_low") is None:
        return None
    lo = [a if low is None else max(low, a) for a in c["ci_low"]]
    hi = [b if high is None else min(high, b) for b in c["ci_high"]]
    return lo, hi
