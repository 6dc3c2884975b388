"""Write verl datasets (parquet) of environment episodes for ``empg_text_env``, from a recipe config.

    python -m scaled.verl.make_data --config scaled/configs/alfworld_dapo_empg_qwen1.5b.yaml \\
        --out data/verl/alfworld_dapo_empg_qwen1.5b --set env.kwargs.data_path=$ALFWORLD_DATA/json_2.1.1

Reads the same composed config as ``scaled.train`` and ``scaled.verl.launch`` and writes, atomically:

* ``train.parquet``: one row per training episode on ``env.train_split`` (ALFWorld ``train``; WebShop
  goals [1500:]); row i resets the env with seed i, as the single-machine trainer draws tasks;
* ``val.parquet``: the validation tasks of the single-machine trainer, ``eval.val_tasks`` distinct
  tasks of ``env.val_split`` (ALFWorld ``valid_seen``; WebShop goals [500:1500]) drawn with
  ``eval.seed``, one row each (``task_index``, no replacement);
* ``test.parquet``: every task of ``env.test_split`` once (ALFWorld ``valid_unseen``, 134 games; WebShop
  test goals [0:500] of the goal list shuffled with seed 233): the split the paper reports.
  ``--val-split test`` writes these as ``val.parquet`` instead (verl-agent validates on them).

Each row: a placeholder ``prompt`` (the agent loop builds the real prompts from the environment),
``agent_name: empg_text_env`` and ``extra_info = {env, seed, task_index, env_kwargs, agent}``, with the
env's keyword arguments (``data_path``, ``split``, ``max_steps``, …) and the recipe's
:class:`scaled.agent.AgentConfig` (turn limit, history length, reward, penalties) as JSON.

Bad input stops here, before any file is written, with a non-zero exit and a message naming it: no
``data_path``, a path that does not exist, a split without games or goals.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from typing import Sequence

from scaled.config import val_task_indices

__all__ = ["build_rows", "val_task_indices", "write_parquet", "main"]

#: What ``--val-split`` picks for val.parquet.
VAL_SPLITS = ("val", "test")


def _row(cfg, split_kwargs: dict, *, seed: int | None, task_index: int | None, tag: str) -> dict:
    agent = dataclasses.asdict(cfg.agent)
    extra = {"env": cfg.env.name, "seed": seed, "task_index": task_index, "split": tag,
             "env_kwargs": json.dumps(split_kwargs, sort_keys=True), "agent": json.dumps(agent, sort_keys=True)}
    return {
        "data_source": f"empg/{cfg.env.name}",
        "prompt": [{"role": "user", "content": f"[{cfg.env.name} {tag} episode {seed if task_index is None else task_index}]"}],
        "agent_name": "empg_text_env",
        "reward_model": {"style": "rule", "ground_truth": ""},
        "extra_info": extra,
    }


def _open_split(cfg, split: str) -> tuple[dict, int]:
    """``(make_env kwargs, number of tasks)`` of a split; opening the env checks the data (named errors)."""
    from scaled.config import env_kwargs, make_split_env

    kwargs = env_kwargs(cfg, split)
    env = make_split_env(cfg, split)  # a bad keyword or data path is named as its config key
    try:
        n = int(env.num_tasks)
    finally:
        env.close()
    if n < 1:
        raise ValueError(f"{cfg.env.name} split {kwargs.get('split')!r} under {kwargs.get('data_path')!r} has no tasks")
    return {k: (str(v) if isinstance(v, pathlib.PurePath) else v) for k, v in kwargs.items()}, n


def build_rows(cfg, *, n_train: int, val_split: str = "val") -> dict[str, list[dict]]:
    """The rows of ``train``, ``val`` and ``test`` for a recipe :class:`scaled.config.Config`.

    Raises:
        ValueError: no held-out splits in the config (``env.val_split`` / ``env.test_split``), a bad
            ``n_train`` or ``val_split``, or the env's own data errors (missing path, no games, bad files).
    """
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise ValueError(f"--train must be an int >= 1, got {n_train!r}")
    if val_split not in VAL_SPLITS:
        raise ValueError(f"--val-split must be one of {list(VAL_SPLITS)}, got {val_split!r}")
    if cfg.env.val_split is None or cfg.env.test_split is None or cfg.env.train_split is None:
        raise ValueError(f"{cfg.name}: env.train_split / env.val_split / env.test_split must be set (got "
                         f"{cfg.env.train_split!r}, {cfg.env.val_split!r}, {cfg.env.test_split!r}); without "
                         f"held-out splits the validation rows would replay the training tasks")
    if cfg.env.kwargs.get("data_path") is None:
        raise ValueError(f"{cfg.name}: env.kwargs.data_path is not set; pass --set env.kwargs.data_path=<the "
                         f"{cfg.env.name} data> (the held-out splits exist only in the real data)")
    train_kw, _ = _open_split(cfg, "train")
    val_kw, n_val = _open_split(cfg, "val")
    test_kw, n_test = _open_split(cfg, "test")
    rows = {
        "train": [_row(cfg, train_kw, seed=i, task_index=None, tag="train") for i in range(n_train)],
        "val": [_row(cfg, val_kw, seed=cfg.eval.seed, task_index=i, tag="val")
                for i in val_task_indices(n_val, cfg.eval.val_tasks, cfg.eval.seed)],
        "test": [_row(cfg, test_kw, seed=cfg.eval.seed, task_index=i, tag="test") for i in range(n_test)],
    }
    if val_split == "test":
        rows["val"] = rows["test"]
    return rows


def write_parquet(rows: list[dict], path: pathlib.Path) -> None:
    """Atomic write (temporary file, then rename) of ``rows`` as parquet (``pyarrow``)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("writing parquet needs pyarrow (part of verl's environment: pip install 'pyarrow>=19')") from err
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaled.verl.make_data", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="a recipe in scaled/configs")
    p.add_argument("--out", type=pathlib.Path, required=True, help="folder for train/val/test.parquet")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe override, e.g. env.kwargs.data_path=... (repeatable)")
    p.add_argument("--train", type=int, default=None,
                   help="training rows (default: enough for every iteration with 3 refill rounds)")
    p.add_argument("--val-split", choices=VAL_SPLITS, default="val",
                   help="val.parquet from env.val_split (default, as the single-machine trainer) or env.test_split")
    args = p.parse_args(argv)
    from scaled.config import load_config

    try:
        cfg = load_config(args.config, args.sets)
        n_train = args.train if args.train is not None else (
            cfg.trainer.iterations * cfg.env.n_tasks * (1 + cfg.algorithm.outcome.max_refill_rounds))
        rows = build_rows(cfg, n_train=n_train, val_split=args.val_split)
        args.out.mkdir(parents=True, exist_ok=True)
        for split, split_rows in rows.items():
            write_parquet(split_rows, args.out / f"{split}.parquet")
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"scaled.verl.make_data: error: {err}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{split}.parquet ({len(r)} rows)" for split, r in rows.items())
    print(f"wrote {counts} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
