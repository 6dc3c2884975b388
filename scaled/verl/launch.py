"""Launch EMPG on verl 0.9.1 from the recipe the single-machine trainer reads (one source of truth).

    python -m scaled.verl.launch --config scaled/configs/alfworld_dapo_empg_qwen1.5b.yaml \\
        --data data/verl/alfworld_dapo_empg_qwen1.5b [--gpus 8] [--nnodes 1] [--set optim.lr=2e-6] [--allow-config-change] \\
        [verl Hydra overrides, e.g. trainer.save_freq=10 algorithm.empg.outcome=dapo]

The recipe is a composed ``scaled/configs`` file (``scaled.config.load_config``: ``base.yaml`` +
``env/`` + ``algorithm/`` + ``model/``; ``--set key=value`` overrides it like ``scaled.train`` does).
:func:`verl_overrides` maps it onto verl's Hydra keys (table in docs/verl.md); the episode settings
(``agent:``, the env's splits and ``data_path``) go into the dataset rows that
``python -m scaled.verl.make_data`` writes from the same config. Positional arguments are verl Hydra
overrides, applied last (an override of a key the launcher sets replaces it). The launcher prints the
command and runs ``python -m verl.trainer.main_ppo`` with it (``--print`` only prints).

Everything a run writes goes under ``runs/verl/<project>/<experiment>/`` (project ``empg_<env>``,
experiment ``<method>_<model>``, e.g. ``drgrpo_empg_qwen2.5-1.5b-instruct``): ``checkpoints/`` (verl's, resumed
automatically), ``metrics.jsonl`` (verl's file logger), ``tb/`` (TensorBoard) and ``launch_config.json`` (the
resolved recipe, data folder and verl overrides of the launch). A relaunch into a folder whose
``launch_config.json`` differs stops with the differing keys (``scaled.config.config_diff``, as ``scaled.train``
does on resume) unless ``--allow-config-change``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import subprocess
import sys
from typing import Any, Sequence

__all__ = ["verl_overrides", "merge_overrides", "run_dir", "build_command", "launch_record", "check_run_config",
           "main", "ROOT", "AGENT_LOOPS", "LAUNCH_CONFIG"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAINER_CONFIG = ROOT / "scaled" / "verl" / "config"
AGENT_LOOPS = TRAINER_CONFIG / "agent_loops.yaml"
EXTERNAL_MODULES = "scaled.verl.plugin,scaled.verl.agent_loop"
#: verl's GRPO adds this to the group std (``core_algos.compute_grpo_outcome_advantage``).
VERL_GRPO_EPS = 1e-6
#: verl always applies dual-clip (``clip_ratio_c``, must be > 1); the recipe's ``dual_clip: null`` (off)
#: becomes a constant no ratio reaches.
NO_DUAL_CLIP = 1.0e9


#: Strings YAML 1.1 (OmegaConf) would read as booleans or null: quoted in overrides (``variant='off'``).
_YAML_WORDS = {"off", "on", "yes", "no", "y", "n", "true", "false", "null", "~"}


def _fmt(value: Any) -> str:
    if isinstance(value, str) and value.lower() in _YAML_WORDS:
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def verl_overrides(cfg, *, data_dir: str | os.PathLike, gpus: int = 8, nnodes: int = 1) -> dict[str, str]:
    """verl Hydra overrides (key -> value) for a recipe :class:`scaled.config.Config`.

    Args:
        cfg: the recipe (``scaled.config.load_config``).
        data_dir: the folder ``scaled.verl.make_data`` wrote (``train.parquet``, ``val.parquet``).
        gpus, nnodes: the cluster (``trainer.n_gpus_per_node``, ``trainer.nnodes``).

    Raises:
        ValueError: a recipe value verl cannot express (named), e.g. ``algorithm.outcome.estimator=reinforce``
            or an ``optim.mini_batch_size`` that is not a multiple of ``env.group_size``.
    """
    a, o, t, ev, r, m = cfg.algorithm, cfg.optim, cfg.trainer, cfg.eval, cfg.rollout, cfg.model
    est = a.outcome.estimator
    if est not in ("grpo", "dapo", "drgrpo"):
        raise ValueError(f"algorithm.outcome.estimator={est!r}: the verl launch runs grpo, dapo or drgrpo")
    if a.loss.kind != "clipped":
        raise ValueError(f"algorithm.loss.kind={a.loss.kind!r}: verl's actor loss is the clipped PPO surrogate")
    if abs(float(a.outcome.eps) - VERL_GRPO_EPS) > 1e-12:
        raise ValueError(f"algorithm.outcome.eps={a.outcome.eps}: verl's GRPO uses {VERL_GRPO_EPS}")
    if o.mini_batch_size is None or o.mini_batch_size % cfg.env.group_size:
        raise ValueError(f"optim.mini_batch_size={o.mini_batch_size}: verl counts mini-batches in prompts x "
                         f"rollout.n rows, so it must be a multiple of env.group_size={cfg.env.group_size}")
    if r.max_prompt_tokens is None:
        raise ValueError("rollout.max_prompt_tokens is null: verl needs a prompt length (data.max_prompt_length)")
    if m.reference not in ("copy", "lora", "none"):  # pragma: no cover - ModelConfig checks it
        raise ValueError(f"model.reference={m.reference!r}")
    kl = float(a.loss.kl_coef) > 0 and m.reference != "none"
    tokens = o.micro_batch_size * (r.max_prompt_tokens + r.max_new_tokens)
    data = pathlib.Path(data_dir).expanduser().resolve()
    ov: dict[str, Any] = {
        # the algorithm
        "algorithm.adv_estimator": "empg",
        "algorithm.empg.outcome": "dapo" if est == "dapo" else "grpo",
        "algorithm.empg.variant": a.empg.variant, "algorithm.empg.k": a.empg.k, "algorithm.empg.k_f": a.empg.k_f,
        "algorithm.empg.zeta": a.empg.zeta, "algorithm.empg.eps": a.empg.eps,
        "algorithm.norm_adv_by_std_in_grpo": bool(a.outcome.std_normalize) and est != "drgrpo",
        "algorithm.use_kl_in_reward": False,
        "actor_rollout_ref.actor.clip_ratio_low": a.loss.clip_low,
        "actor_rollout_ref.actor.clip_ratio_c": a.loss.dual_clip if a.loss.dual_clip is not None else NO_DUAL_CLIP,
        "actor_rollout_ref.actor.loss_agg_mode": a.loss.agg,
        "actor_rollout_ref.actor.use_kl_loss": kl,
        "actor_rollout_ref.actor.kl_loss_coef": float(a.loss.kl_coef),
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
        "actor_rollout_ref.actor.entropy_coeff": 0,
        # optimisation
        "actor_rollout_ref.actor.optim.lr": o.lr,
        "actor_rollout_ref.actor.optim.weight_decay": o.weight_decay,
        "actor_rollout_ref.actor.optim.betas": list(o.betas),
        "actor_rollout_ref.actor.grad_clip": o.max_grad_norm,
        "actor_rollout_ref.actor.ppo_epochs": o.epochs,
        # verl counts a mini-batch in prompts x rollout.n rows (step rows here: many per trajectory)
        "actor_rollout_ref.actor.ppo_mini_batch_size": o.mini_batch_size // cfg.env.group_size,
        # micro-batches by tokens (micro_batch_size full-length rows): verl checks train_batch_size >=
        # ppo_mini_batch_size in prompts only with fixed-size micro-batches, which step rows outgrow
        "actor_rollout_ref.actor.use_dynamic_bsz": True,
        "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz": True,
        "actor_rollout_ref.ref.log_prob_use_dynamic_bsz": True,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": tokens,
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu": tokens,
        "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu": tokens,
        # the model
        "actor_rollout_ref.model.path": m.path,
        "actor_rollout_ref.model.enable_gradient_checkpointing": bool(m.gradient_checkpointing),
        "actor_rollout_ref.model.use_remove_padding": True,
        # rollouts: tasks per step, group size, lengths, temperatures
        "data.train_batch_size": cfg.env.n_tasks,
        "actor_rollout_ref.rollout.n": cfg.env.group_size,
        "data.max_prompt_length": r.max_prompt_tokens,
        "data.max_response_length": r.max_new_tokens,
        "actor_rollout_ref.rollout.prompt_length": r.max_prompt_tokens,
        "actor_rollout_ref.rollout.response_length": r.max_new_tokens,
        "actor_rollout_ref.rollout.temperature": m.temperature,
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.mode": "async",
        "actor_rollout_ref.rollout.agent.agent_loop_config_path": str(AGENT_LOOPS),
        "actor_rollout_ref.rollout.agent.default_agent_loop": "empg_text_env",
        "data.train_files": str(data / "train.parquet"),
        "data.val_files": str(data / "val.parquet"),
        "data.return_raw_chat": True,
        # validation (the same settings as the single-machine trainer's)
        "actor_rollout_ref.rollout.val_kwargs.temperature": 0.0 if ev.greedy else ev.temperature,
        "actor_rollout_ref.rollout.val_kwargs.do_sample": not ev.greedy,
        "actor_rollout_ref.rollout.val_kwargs.n": 1,
        "trainer.val_before_train": bool(t.val_before_train),
        "trainer.test_freq": t.val_every if t.val_every > 0 else -1,
        # the run
        "trainer.total_training_steps": t.iterations,
        "trainer.total_epochs": 1000,  # the step count ends the run
        "trainer.save_freq": t.save_every,
        "trainer.max_actor_ckpt_to_keep": t.keep_checkpoints,
        "trainer.resume_mode": "auto" if t.resume else "disable",
        "data.seed": t.seed, "actor_rollout_ref.actor.data_loader_seed": t.seed,
        "actor_rollout_ref.rollout.seed": t.seed,
        "trainer.project_name": f"empg_{cfg.env.name}",
        "trainer.logger": ["console", "file"] + (["tensorboard"] if t.tensorboard else []),
        "trainer.n_gpus_per_node": gpus, "trainer.nnodes": nnodes,
        "trainer.v1.trainer_mode": "empg_sync",
    }
    if m.lora:
        from scaled.config import lora_settings

        lora = lora_settings(m.lora)  # the same defaults as the single-machine policy
        ov["actor_rollout_ref.model.lora_rank"] = int(lora["r"])
        ov["actor_rollout_ref.model.lora_alpha"] = int(lora["lora_alpha"])
        ov["actor_rollout_ref.model.target_modules"] = lora["target_modules"]
    if a.loss.clip_high is not None:  # else the trainer config derives it from algorithm.empg.outcome
        ov["actor_rollout_ref.actor.clip_ratio_high"] = a.loss.clip_high
    return {k: _fmt(v) for k, v in ov.items()}


def _key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~")


def merge_overrides(base: dict[str, str], extra: Sequence[str]) -> list[str]:
    """``base`` as ``key=value`` items, then ``extra`` (verl Hydra overrides); ``extra`` replaces a key of ``base``."""
    for item in extra:
        if "=" not in item and not item.startswith("~"):
            raise ValueError(f"verl override {item!r} must look like key=value")
    replaced = {_key(item) for item in extra}
    return [f"{k}={v}" for k, v in base.items() if k not in replaced] + list(extra)


def _final(overrides: Sequence[str], key: str) -> str | None:
    """The value the last override of ``key`` sets (quotes removed), or None."""
    for item in reversed(overrides):
        if _key(item) == key and "=" in item:
            value = item.split("=", 1)[1]
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


def run_dir(overrides: Sequence[str], root: str | os.PathLike = "runs/verl") -> pathlib.Path:
    """``<root>/<project>/<experiment>`` of a launch, from its final overrides (``plugin.run_name`` naming)."""
    from scaled.verl.plugin import run_name

    project = _final(overrides, "trainer.project_name") or "empg"
    experiment = _final(overrides, "trainer.experiment_name") or run_name(
        _final(overrides, "algorithm.empg.outcome") or "grpo", _final(overrides, "algorithm.empg.variant") or "full",
        _final(overrides, "actor_rollout_ref.model.path") or "model",
        _final(overrides, "actor_rollout_ref.model.lora_rank") or 0,
        _final(overrides, "algorithm.norm_adv_by_std_in_grpo") or "true")
    return pathlib.Path(root) / project / experiment


#: The file in the run folder holding the launch's resolved recipe (``config_to_dict``), its data folder and the
#: verl overrides given on the command line: a relaunch into the folder is checked against it.
LAUNCH_CONFIG = "launch_config.json"

#: verl overrides that may change when a run is relaunched (the cluster, how often it saves and logs).
VERL_RESUME_EXEMPT = (
    "trainer.n_gpus_per_node", "trainer.nnodes", "trainer.save_freq", "trainer.max_actor_ckpt_to_keep",
    "trainer.total_training_steps", "trainer.total_epochs", "trainer.logger", "trainer.resume_mode",
    "trainer.default_local_dir", "ray_kwargs", "+ray_kwargs",
)


def launch_record(cfg, *, data_dir, extra: Sequence[str] = ()) -> dict:
    """What :data:`LAUNCH_CONFIG` stores: the resolved recipe, the data folder, the command-line verl overrides."""
    from scaled.config import config_to_dict

    verl = {_key(item): item.split("=", 1)[1] if "=" in item else "<deleted>" for item in extra}
    return {"recipe": config_to_dict(cfg), "data": str(pathlib.Path(data_dir).expanduser().resolve()), "verl": verl}


def check_run_config(out: str | os.PathLike, record: dict, *, allow_change: bool = False,
                     fresh: bool = False) -> list[tuple[str, Any, Any]]:
    """Refuse to relaunch into a run folder made with another config; then store ``record`` there.

    ``fresh=True`` (``trainer.resume_mode=disable``: verl starts over) skips the comparison and only stores.

    ``out`` is the run folder (:func:`run_dir`). When it holds a :data:`LAUNCH_CONFIG` from an earlier launch,
    the two are compared with :func:`scaled.config.config_diff` (the single-machine trainer's resume check:
    ``recipe.<key>`` minus :data:`scaled.config.RESUME_EXEMPT`, ``data``, ``verl.<override>`` minus
    :data:`VERL_RESUME_EXEMPT`). Returns the differences (empty: same config, or a new folder).

    Raises:
        ValueError: the configs differ and not ``allow_change`` (``--allow-config-change``), naming every
            differing key with its old and new value; or the stored file cannot be read (named).
    """
    import json
    import warnings

    from empg.io import atomic_write_json
    from scaled.config import RESUME_EXEMPT, config_diff

    out = pathlib.Path(out)
    path = out / LAUNCH_CONFIG
    diff: list[tuple[str, Any, Any]] = []
    if path.is_file() and not fresh:
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{str(path)!r} cannot be read ({err}): move it away or choose another run "
                             f"(trainer.experiment_name=...)") from None
        exempt = [f"recipe.{k}" for k in RESUME_EXEMPT] + [f"verl.{k}" for k in VERL_RESUME_EXEMPT]
        # no verl overrides at all is a missing branch, not a leaf ``{}`` (config_diff compares leaves)
        def tree(rec: dict) -> dict:
            return {k: v for k, v in rec.items() if v != {}}

        diff = config_diff(tree(saved), tree(record), exempt=exempt)
        if diff:
            listing = ", ".join(f"{key} ({old!r} -> {new!r})" for key, old, new in diff)
            if not allow_change:
                raise ValueError(
                    f"run folder {str(out)!r} holds a run launched with a different config ({str(path)!r}): "
                    f"{listing}. verl would resume its checkpoints (trainer.resume_mode=auto). Relaunch with the "
                    f"same config, name another run (trainer.experiment_name=<name>), or continue with the new "
                    f"values with --allow-config-change.")
            warnings.warn(f"relaunching {str(out)!r} with a changed config (allowed): {listing}", RuntimeWarning)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return diff


def build_command(cfg, *, data_dir, gpus: int = 8, nnodes: int = 1, extra: Sequence[str] = (),
                  runs_root: str | os.PathLike = "runs/verl") -> tuple[list[str], dict[str, str]]:
    """``(argv, environment additions)`` of the verl run for a recipe (see :func:`verl_overrides`)."""
    overrides = merge_overrides(verl_overrides(cfg, data_dir=data_dir, gpus=gpus, nnodes=nnodes), extra)
    out = run_dir(overrides, runs_root).resolve()
    if _final(overrides, "trainer.default_local_dir") is None:  # checkpoints next to the metrics
        overrides.insert(0, f"trainer.default_local_dir={out / 'checkpoints'}")
    env = {
        "VERL_USE_EXTERNAL_MODULES": EXTERNAL_MODULES,
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
        "VERL_FILE_LOGGER_PATH": str(out / "metrics.jsonl"),
        "TENSORBOARD_DIR": str(out / "tb"),
    }
    # Ray processes on other nodes get the plug-in (and this repository) through the runtime env too
    for name in ("VERL_USE_EXTERNAL_MODULES", "PYTHONPATH"):
        overrides.append(f"+ray_kwargs.ray_init.runtime_env.env_vars.{name}='{env[name]}'")
    argv = [sys.executable, "-m", "verl.trainer.main_ppo", "--config-path", str(TRAINER_CONFIG),
            "--config-name", "empg_trainer", *overrides]
    return argv, env


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaled.verl.launch", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="a recipe in scaled/configs (composed with its defaults)")
    p.add_argument("--data", help="the folder scaled.verl.make_data wrote (default data/verl/<config name>)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe override, as for scaled.train (repeatable)")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per node (trainer.n_gpus_per_node)")
    p.add_argument("--nnodes", type=int, default=1, help="nodes (trainer.nnodes)")
    p.add_argument("--print", dest="dry", action="store_true", help="print the command, do not run it")
    p.add_argument("--allow-config-change", action="store_true",
                   help="relaunch into a run folder although its stored config differs (as scaled.train)")
    p.add_argument("overrides", nargs="*", help="verl Hydra overrides, applied last")
    args = p.parse_args(argv)
    from scaled.config import load_config

    try:
        # data_path is make_data's business: the launch itself reads only the training settings
        cfg = load_config(args.config, args.sets, allow_missing=True)
        data = pathlib.Path(args.data or ROOT / "data" / "verl" / cfg.name)
        cmd, env = build_command(cfg, data_dir=data, gpus=args.gpus, nnodes=args.nnodes, extra=args.overrides)
    except (ValueError, FileNotFoundError) as err:
        print(f"scaled.verl.launch: error: {err}", file=sys.stderr)
        return 2
    missing = [f for f in ("train.parquet", "val.parquet") if not (data / f).is_file()]
    print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " \\\n  " + " \\\n  ".join(map(shlex.quote, cmd)))
    if args.dry:
        return 0
    if missing:
        print(f"scaled.verl.launch: error: {data} has no {missing}; write them first with "
              f"python -m scaled.verl.make_data --config {args.config} --out {data} ...", file=sys.stderr)
        return 2
    try:  # verl resumes the folder's checkpoints (resume_mode=auto): only with the config that made them
        check_run_config(pathlib.Path(env["VERL_FILE_LOGGER_PATH"]).parent,
                         launch_record(cfg, data_dir=data, extra=args.overrides),
                         allow_change=args.allow_config_change, fresh=_final(cmd, "trainer.resume_mode") == "disable")
    except (ValueError, OSError) as err:
        print(f"scaled.verl.launch: error: {err}", file=sys.stderr)
        return 2
    return subprocess.call(cmd, env={**os.environ, **env}, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
