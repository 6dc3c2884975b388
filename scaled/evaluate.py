"""Evaluate a trained agent on every task of a held-out split: success per task type in the paper's table
shape (spec §6), with 95% intervals.

Usage::

    python -m scaled.evaluate --config scaled/configs/<name>.yaml [--checkpoint runs/<run>] [--split test]
        [--samples k] [key=value ...]

Every task of the split (``env.test_split`` by default: ALFWorld ``valid_unseen``, 134 games; WebShop
``test``, goals [0:500]) is played exactly once per sample (``reset(options={"task_index": i})``, no
replacement), at ``eval.temperature`` (verl-agent validation: 0.4) or greedily; ``--samples k`` plays
each task k times with the sampling seeds ``eval.seed + s``. The output names the split, the number
of distinct tasks and the samples, then a markdown table: for ALFWorld the paper's columns Pick,
Look, Clean, Heat, Cool, Pick2, All (success %); for WebShop Score and Succ. (%); for TextWorld Success.
Each cell has its 95% interval: Wilson's score interval for a success rate (over the distinct tasks,
each contributing its mean success over the samples), a t interval for the WebShop score.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import warnings
from typing import Any, Sequence

import torch

from empg.io import CheckpointDir, load_checkpoint_file
from scaled.config import EVAL_SPLITS, Config, env_kwargs, load_config, make_split_env

__all__ = ["ALFWORLD_COLUMNS", "evaluate", "format_table", "method_name", "load_trained_state", "wilson_interval",
           "mean_interval", "summarize"]

#: ALFWorld task types in the paper's column order, with the paper's column names.
ALFWORLD_COLUMNS = {
    "pick_and_place_simple": "Pick",
    "look_at_obj_in_light": "Look",
    "pick_clean_then_place_in_recep": "Clean",
    "pick_heat_then_place_in_recep": "Heat",
    "pick_cool_then_place_in_recep": "Cool",
    "pick_two_obj_and_place": "Pick2",
}

CHECKPOINT_DIR = "checkpoints"  # scaled.trainer.CHECKPOINT_DIR (not imported: evaluation needs no trainer)


def method_name(cfg: Config) -> str:
    """``GRPO``, ``DAPO + EMPG``, ``GRPO + EMPG (scaling)``, … as in the paper's rows."""
    name = cfg.algorithm.outcome.estimator.upper()
    variant = cfg.algorithm.empg.variant
    if variant == "full":
        name += " + EMPG"
    elif variant != "off":
        name += f" + EMPG ({variant})"
    return name


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``.

    ``(p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`` with ``z = Φ⁻¹((1 + confidence) / 2)``; equal to
    ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")`` for integer ``k``. A fractional
    ``successes`` (mean success over samples of each task) gives the interval with the tasks as the units.

    Raises:
        ValueError: ``n < 1``, ``successes`` outside [0, n], or ``confidence`` outside (0, 1).
    """
    from scipy.stats import norm

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not (isinstance(successes, (int, float)) and math.isfinite(successes) and 0 <= successes <= n):
        raise ValueError(f"successes must be a number in [0, n={n}], got {successes!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    z = float(norm.ppf((1 + confidence) / 2))
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    low = 0.0 if successes == 0 else max(0.0, (centre - half) / denom)  # exact at the ends (no rounding residue)
    high = 1.0 if successes == n else min(1.0, (centre + half) / denom)
    return low, high


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of a mean (the WebShop score); a single value gives ``(value, value)``."""
    from scipy.stats import t

    n = len(values)
    if n == 0:
        raise ValueError("values: expected at least one value")
    mean = sum(values) / n
    if n == 1:
        return mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def load_trained_state(checkpoint: str) -> dict[str, Any]:
    """The trainer state in ``checkpoint``: a checkpoint file, or a run folder (its newest good checkpoint)."""
    path = pathlib.Path(checkpoint)
    if path.is_dir():
        folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
        latest = CheckpointDir(folder).load_latest()
        if latest is None:
            raise FileNotFoundError(f"--checkpoint {checkpoint!r}: no checkpoint in {str(folder)!r}")
        return latest[1]
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {checkpoint!r}: no such file or run folder")
    return load_checkpoint_file(path)


def summarize(episodes: Sequence[Any], confidence: float = 0.95) -> dict[str, Any]:
    """Success (overall and per task type) with Wilson intervals over the distinct tasks, and the mean score.

    Episodes of the same task (``task_index``; samples) are averaged first, so each distinct task counts once.
    """
    by_task: dict[Any, list[Any]] = {}
    for i, e in enumerate(episodes):
        by_task.setdefault(e.task_index if e.task_index is not None else ("episode", i), []).append(e)

    def block(tasks: list[list[Any]]) -> dict[str, Any]:
        success = [sum(e.won for e in eps) / len(eps) for eps in tasks]
        score = [sum(e.env_return for e in eps) / len(eps) for eps in tasks]
        n = len(tasks)
        return {"tasks": n, "success": sum(success) / n, "success_ci": list(wilson_interval(sum(success), n, confidence)),
                "score": sum(score) / n, "score_ci": list(mean_interval(score, confidence))}

    groups = list(by_task.values())
    types: dict[str, list[list[Any]]] = {}
    for eps in groups:
        types.setdefault(eps[0].task_type, []).append(eps)
    out = block(groups)
    out["episodes"] = len(episodes)
    out["episode_length"] = sum(e.length for e in episodes) / len(episodes)
    out["per_task_type"] = {k: block(v) for k, v in sorted(types.items())}
    return out


def evaluate(cfg: Config, checkpoint: str | None = None, *, split: str | None = None, samples: int | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Play every task of ``split`` (default ``eval.split``) ``samples`` times (default ``eval.samples``).

    Returns:
        :func:`summarize`'s dict (rates in [0, 1], ``score`` the mean environment return, WebShop's score)
        plus ``split`` (``"test"``…), ``env_split`` (the env's name for it, e.g. ``"valid_unseen"``),
        ``num_tasks`` (distinct tasks played), ``split_tasks`` (tasks in the split), ``samples``,
        ``temperature`` and ``greedy``.

    Raises:
        ValueError: an unknown ``split`` or ``samples`` < 1.
        FileNotFoundError: ``checkpoint`` does not exist or holds no checkpoint.
    """
    from scaled.rollout import play_tasks
    from scaled.trainer import build_policy, load_weights, resolve_device

    split = cfg.eval.split if split is None else split
    if split not in EVAL_SPLITS:
        raise ValueError(f"--split must be one of {list(EVAL_SPLITS)}, got {split!r}")
    samples = cfg.eval.samples if samples is None else samples
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"--samples (eval.samples) must be an int >= 1, got {samples!r}")
    device = resolve_device(cfg.trainer.device)
    kwargs = env_kwargs(cfg, split)
    if checkpoint is not None:
        state = load_trained_state(checkpoint)  # before the environments and the model: a bad path fails fast
    no_kl = dataclasses.replace(cfg.algorithm.loss, kl_coef=0.0)  # no reference copy
    cfg = dataclasses.replace(cfg, algorithm=dataclasses.replace(cfg.algorithm, loss=no_kl))
    envs = [make_split_env(cfg, split)]
    policy = None
    episodes = []
    try:  # the policy's sampler (a vLLM engine) and the environments are closed however this ends
        n_split = envs[0].num_tasks
        if cfg.eval.expected_tasks is not None and n_split != cfg.eval.expected_tasks and cfg.eval.max_tasks is None:
            warnings.warn(f"the {split} split ({kwargs.get('split', 'all data')}) of {cfg.env.name} has {n_split} "
                          f"tasks, the paper's has {cfg.eval.expected_tasks} (eval.expected_tasks): a partial "
                          f"download?", RuntimeWarning)
        tasks = list(range(n_split if cfg.eval.max_tasks is None else min(n_split, cfg.eval.max_tasks)))
        policy = build_policy(cfg, device)
        if checkpoint is not None:
            load_weights(policy.model, state["model"], f"--checkpoint {checkpoint}")
            policy.sync_sampler_weights()  # the engine was started with the initial weights
        policy.temperature = float(cfg.eval.temperature) if not cfg.eval.greedy else 1.0
        rollout_cfg = dataclasses.replace(cfg.rollout, greedy=cfg.eval.greedy)
        envs += [make_split_env(cfg, split) for _ in range(min(cfg.eval.batch_size, len(tasks)) - 1)]
        for s in range(samples):
            generator = torch.Generator(device=device).manual_seed(cfg.eval.seed + s)
            episodes += play_tasks(policy, envs, tasks, agent=cfg.agent, config=rollout_cfg, generator=generator,
                                   progress=progress)
    finally:
        try:
            for env in envs:
                env.close()
        finally:
            if policy is not None:
                policy.close()
    out = summarize(episodes)
    out.update(split=split, env_split=kwargs.get("split"), num_tasks=len(tasks), split_tasks=n_split, samples=samples,
               temperature=None if cfg.eval.greedy else float(cfg.eval.temperature), greedy=bool(cfg.eval.greedy))
    return out


def format_table(results: dict[str, Any], *, env_name: str, model: str, method: str) -> str:
    """A markdown table in the paper's shape: success in % with its 95% interval ("–" for task types not played),
    under a line naming the split, the number of distinct tasks and the samples."""
    def cell(block: dict | None, key: str = "success") -> str:
        if block is None:
            return "–"
        low, high = block[f"{key}_ci"]
        return f"{100 * block[key]:.1f} [{100 * low:.1f}, {100 * high:.1f}]"

    per_type = results["per_task_type"]
    if env_name == "alfworld":
        cols = list(ALFWORLD_COLUMNS.values()) + ["All"]
        cells = [cell(per_type.get(k)) for k in ALFWORLD_COLUMNS] + [cell(results)]
    elif env_name == "webshop":
        cols = ["Score", "Succ."]
        cells = [cell(results, "score"), cell(results)]
    else:
        cols = ["Success"]
        cells = [cell(results)]
    env_split = results.get("env_split") or "all data"
    how = "greedy" if results.get("greedy") else f"temperature {results.get('temperature')}"
    caption = (f"{env_name} {results['split']} split ({env_split}): {results['num_tasks']} distinct tasks"
               f"{'' if results['num_tasks'] == results.get('split_tasks', results['num_tasks']) else ' of ' + str(results['split_tasks'])}"
               f" x {results['samples']} sample(s), {how}; success % [95% interval]")
    head = "| Model | Method | " + " | ".join(cols) + " |"
    sep = "|" + "---|" * (len(cols) + 2)
    return "\n".join([caption, "", head, sep, f"| {model} | {method} | " + " | ".join(cells) + " |"])


def main(argv: list[str] | None = None) -> int:
    prog = "python -m scaled.evaluate"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="a run folder of scaled.train (its newest checkpoint) or a checkpoint file (default: initial model)")
    parser.add_argument("--split", choices=list(EVAL_SPLITS), default=None, help="the split to play (default eval.split)")
    parser.add_argument("--samples", type=int, default=None, help="episodes per task (default eval.samples)")
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (OmegaConf dot-list)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        results = evaluate(cfg, args.checkpoint, split=args.split, samples=args.samples, progress=cfg.trainer.progress)
    except (ValueError, OSError, ImportError) as err:  # user errors (settings, files, optional packages): one line
        parser.exit(2, f"{prog}: error: {err}\n")
    model = "tiny (random init)" if cfg.model.tiny else cfg.model.path.split("/")[-1]
    print(format_table(results, env_name=cfg.env.name, model=model, method=method_name(cfg)))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
