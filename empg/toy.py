"""Command line for the toy trainer: ``python -m empg.toy --env toy_envs/KeyDoor-v0 --method empg``.

Every field of :class:`~empg.trainer.ToyTrainConfig` is a flag (``--tasks-per-update 8``), and the
field's docstring is its ``--help`` text. ``--method`` is a shortcut for the (outcome, EMPG variant)
pair (see :data:`empg.trainer.METHODS`); ``--env-kwargs '{"layout": "small"}'`` is passed to
``gymnasium.make``.

The environment is made with gymnasium, imported lazily here (the ``empg`` package itself never
imports gymnasium or ``toy_envs``): for an id ``"pkg/Name-v0"`` the module ``pkg`` is imported first so
that it can register its environments. Examples::

    python -m empg.toy --env toy_envs/KeyDoor-v0 --method empg --updates 100 --out runs/kd_empg
    python -m empg.toy --out runs/kd_empg --updates 200 --resume      # continue the same run
    python -m empg.toy --env toy_envs/KeyDoor-v0 --env-kwargs '{"layout": "small"}' --method grpo
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any, Sequence

from .trainer import atomic_write_bytes, METHODS, ToyTrainConfig, train

__all__ = ["main", "build_parser", "config_from_args", "make_gym_env_factory", "field_docs"]


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (``x: int = 0`` followed by ``\"\"\"doc\"\"\"``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _optional(kind: type):
    def parse(text: str):
        return None if text.strip().lower() in ("none", "null", "") else kind(text)

    parse.__name__ = f"optional_{kind.__name__}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser with one flag per :class:`ToyTrainConfig` field (help = the field docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m empg.toy",
        description="Train a softmax policy on a toy environment with GRPO/DAPO, with or without EMPG "
                    "(Wang et al., arXiv:2509.09265).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--method", choices=sorted(METHODS), default=None,
                        help="shortcut for --outcome/--empg: " + ", ".join(f"{k}=({v[0]}, {v[1]})" for k, v in METHODS.items()))
    parser.add_argument("--env-kwargs", type=json.loads, default={},
                        help="JSON dict of keyword arguments for gymnasium.make, e.g. '{\"layout\": \"small\"}'")
    docs = field_docs(ToyTrainConfig)
    hints = typing.get_type_hints(ToyTrainConfig)
    for f in dataclasses.fields(ToyTrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        help_text = docs.get(f.name, "")
        if hint is bool:
            parser.add_argument(flag, type=_bool, nargs="?", const=True, default=f.default, metavar="BOOL", help=help_text)
            continue
        args = typing.get_args(hint)
        if args and type(None) in args:  # Optional[X]
            inner = next(a for a in args if a is not type(None))
            parser.add_argument(flag, type=_optional(inner), default=f.default, help=help_text)
        else:
            parser.add_argument(flag, type=hint, default=f.default, help=help_text)
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> tuple[ToyTrainConfig, dict[str, Any]]:
    """Parse ``argv`` into a :class:`ToyTrainConfig` and the env kwargs. Bad values raise ``ValueError``.

    With ``--resume`` and no explicit flags for the run's other settings, the config saved in
    ``OUT/config.json`` is used (so ``--out DIR --resume --updates N`` is enough to continue a run).
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(ToyTrainConfig)}
    env_kwargs = dict(ns.env_kwargs)
    if ns.resume and ns.out and (Path(ns.out) / "config.json").exists():
        saved = json.loads((Path(ns.out) / "config.json").read_text())
        given = {a.split("=")[0][2:].replace("-", "_") for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
        for key, v in saved.items():
            if key in values and key not in given:
                values[key] = v
        if "env_kwargs" not in given and (Path(ns.out) / "env_kwargs.json").exists():
            env_kwargs = json.loads((Path(ns.out) / "env_kwargs.json").read_text())
        ns.method = None if "method" not in given else ns.method
    if ns.method is not None:
        values["outcome"], values["empg"] = METHODS[ns.method]
    return ToyTrainConfig(**values), env_kwargs


def make_gym_env_factory(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """``make_env()`` for :func:`empg.trainer.train` from a gymnasium id (imports ``pkg`` of ``pkg/Name-v0``)."""
    import gymnasium as gym

    if "/" in env_id:
        module = env_id.split("/")[0]
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"env: cannot import {module!r} to register {env_id!r}: {err}") from None
    kwargs = dict(env_kwargs or {})
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"env: {env_id!r} is not a registered gymnasium id ({err})") from None

    def make_env():
        return gym.make(env_id, **kwargs)

    return make_env


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m empg.toy`` and the ``empg-toy`` console script."""
    try:
        cfg, env_kwargs = config_from_args(argv)
        make_env = make_gym_env_factory(cfg.env, env_kwargs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if cfg.out:
        atomic_write_bytes(Path(cfg.out) / "env_kwargs.json", json.dumps(env_kwargs).encode())
    try:
        result = train(cfg, make_env)
    except ValueError as err:  # e.g. --resume with a changed config
        print(f"error: {err}", file=sys.stderr)
        return 2
    last = result.history[-1] if result.history else {}
    tail = result.history[-10:]
    print(json.dumps({
        "env": cfg.env, "method": cfg.method, "seed": cfg.seed, "updates": len(result.history),
        "final_success_rate": (sum(r["charts/success_rate"] for r in tail) / len(tail)) if tail else None,
        "last": {k: last[k] for k in ("charts/success_rate", "charts/episode_length", "policy/kl_prev") if k in last},
        "wall_time_s": round(result.wall_time, 2), "out": cfg.out,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
