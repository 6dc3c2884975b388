"""Evaluate a trained agent: success per task type, in the shape of the paper's table (spec §6).

Usage::

    python -m scaled.evaluate --config scaled/configs/<name>.yaml [--checkpoint runs/<name>] [key=value ...]

Prints a markdown table: for ALFWorld the paper's columns Pick, Look, Clean, Heat, Cool, Pick2, All
(success %); for WebShop Score and Succ. (%); for TextWorld Success. Episodes use seeds
``eval.seed, eval.seed + 1, …`` (disjoint from training seeds) and ``eval.temperature`` (verl-agent
validation: 0.4) or greedy decoding. Point ``env.kwargs.data_path`` at the evaluation split (for
ALFWorld the paper reports the out-of-distribution split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from typing import Any

import torch

from empg.io import CheckpointDir, load_checkpoint_file
from scaled.config import Config, load_config
from scaled.rollout import collect_rollouts
from scaled.trainer import CHECKPOINT_DIR

__all__ = ["ALFWORLD_COLUMNS", "evaluate", "format_table", "method_name", "load_trained_state"]

#: ALFWorld task types in the paper's column order, with the paper's column names.
ALFWORLD_COLUMNS = {
    "pick_and_place_simple": "Pick",
    "look_at_obj_in_light": "Look",
    "pick_clean_then_place_in_recep": "Clean",
    "pick_heat_then_place_in_recep": "Heat",
    "pick_cool_then_place_in_recep": "Cool",
    "pick_two_obj_and_place": "Pick2",
}


def method_name(cfg: Config) -> str:
    """``GRPO``, ``DAPO + EMPG``, ``GRPO + EMPG (scaling)``, … as in the paper's rows."""
    name = cfg.algorithm.outcome.estimator.upper()
    variant = cfg.algorithm.empg.variant
    if variant == "full":
        name += " + EMPG"
    elif variant != "off":
        name += f" + EMPG ({variant})"
    return name


def load_trained_state(checkpoint: str) -> dict[str, Any]:
    """The trainer state in ``checkpoint``: a checkpoint file, or a run folder (its newest good checkpoint)."""
    path = pathlib.Path(checkpoint)
    if path.is_dir():
        folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
        latest = CheckpointDir(folder).load_latest()
        if latest is None:
            raise FileNotFoundError(f"--checkpoint {checkpoint!r}: no checkpoint in {str(folder)!r}")
        return latest[1]
    return load_checkpoint_file(path)


def evaluate(cfg: Config, checkpoint: str | None = None, *, progress: bool = False) -> dict[str, Any]:
    """Play ``eval.episodes`` episodes with the (optionally checkpointed) policy.

    Returns:
        ``{"episodes", "success", "score", "episode_length", "per_task_type": {type: success}}``
        (rates in [0, 1]; ``score`` is the mean environment return, WebShop's score).
    """
    from scaled.envs import make_env
    from scaled.trainer import build_policy, resolve_device

    device = resolve_device(cfg.trainer.device)
    no_kl = dataclasses.replace(cfg.algorithm.loss, kl_coef=0.0)  # no reference copy
    cfg = dataclasses.replace(cfg, algorithm=dataclasses.replace(cfg.algorithm, loss=no_kl))
    policy = build_policy(cfg, device)
    if checkpoint is not None:
        state = load_trained_state(checkpoint)
        result = policy.model.load_state_dict(state["model"], strict=False)
        if result.unexpected_keys:
            raise ValueError(f"checkpoint {checkpoint!r} does not match the model: unexpected {result.unexpected_keys[:5]}")
    policy.temperature = float(cfg.eval.temperature) if not cfg.eval.greedy else 1.0
    rollout_cfg = dataclasses.replace(cfg.rollout, greedy=cfg.eval.greedy)
    n, bs = cfg.eval.episodes, cfg.eval.batch_size
    if n < 1 or bs < 1:
        raise ValueError(f"eval.episodes and eval.batch_size must be >= 1, got {n}, {bs}")
    envs = [make_env(cfg.env.name, **cfg.env.kwargs) for _ in range(min(bs, n))]
    generator = torch.Generator(device=device).manual_seed(cfg.eval.seed)
    episodes = []
    for lo in range(0, n, bs):
        seeds = list(range(cfg.eval.seed + lo, cfg.eval.seed + min(n, lo + bs)))
        episodes += collect_rollouts(policy, envs[: len(seeds)], seeds=seeds, groups=list(range(len(seeds))),
                                     agent=cfg.agent, config=rollout_cfg, generator=generator, progress=progress)
    for env in envs:
        env.close()
    per_type: dict[str, list[bool]] = {}
    for e in episodes:
        per_type.setdefault(e.task_type, []).append(e.won)
    return {
        "episodes": len(episodes),
        "success": sum(e.won for e in episodes) / len(episodes),
        "score": sum(e.env_return for e in episodes) / len(episodes),
        "episode_length": sum(e.length for e in episodes) / len(episodes),
        "per_task_type": {k: sum(v) / len(v) for k, v in sorted(per_type.items())},
        "per_task_type_counts": {k: len(v) for k, v in sorted(per_type.items())},
    }


def format_table(results: dict[str, Any], *, env_name: str, model: str, method: str) -> str:
    """A markdown table row set in the paper's shape (success in %; "–" for task types not played)."""
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}"  # noqa: E731
    if env_name == "alfworld":
        cols = list(ALFWORLD_COLUMNS.values()) + ["All"]
        vals = [results["per_task_type"].get(k) for k in ALFWORLD_COLUMNS] + [results["success"]]
    elif env_name == "webshop":
        cols = ["Score", "Succ."]
        vals = [results["score"], results["success"]]
    else:
        cols = ["Success"]
        vals = [results["success"]]
    cells = [pct(v) for v in vals]
    head = "| Model | Method | " + " | ".join(cols) + " |"
    sep = "|" + "---|" * (len(cols) + 2)
    return "\n".join([head, sep, f"| {model} | {method} | " + " | ".join(cells) + " |"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="a run folder of scaled.train (its newest checkpoint) or a checkpoint file (default: initial model)")
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (OmegaConf dot-list)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    results = evaluate(cfg, args.checkpoint, progress=cfg.trainer.progress)
    model = "tiny (random init)" if cfg.model.tiny else cfg.model.path.split("/")[-1]
    print(format_table(results, env_name=cfg.env.name, model=model, method=method_name(cfg)))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
