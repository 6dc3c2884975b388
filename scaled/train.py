"""Train an LLM agent with GRPO/DAPO ± EMPG.

Usage::

    python -m scaled.train --config scaled/configs/smoke_cpu.yaml [section.key=value ...]

e.g. ``algorithm.empg.variant=full trainer.iterations=10 trainer.out_dir=runs/x``. Configs are
composed from fragments (``scaled/configs``, see :mod:`scaled.config`); ``--print-config`` shows the
result. The output folder defaults to ``runs/<env>_<method>_<model>``. Runs resume from the newest
checkpoint in ``trainer.out_dir/checkpoints`` when there is one (``trainer.resume=false`` starts over);
resuming with a different config stops with the differing keys unless ``--allow-config-change``.
"""

from __future__ import annotations

import argparse
import json
import sys

from scaled.config import config_to_yaml, load_config, missing_keys

PROG = "python -m scaled.train"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config (scaled/configs/*.yaml)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="resume an output folder even though the config differs from its checkpoint's")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (OmegaConf dot-list, values parsed as YAML)")
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + (["trainer.allow_config_change=true"] if args.allow_config_change else [])
    try:
        if args.print_config:
            from scaled.config import compose_config

            unset = missing_keys(compose_config(args.config, overrides))
            print(config_to_yaml(load_config(args.config, overrides, allow_missing=True)), end="")
            for key in unset:
                print(f"# required, not set: {key}")
            return 0
        cfg = load_config(args.config, overrides)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{PROG}: error: {err}\n")
    from scaled.trainer import Trainer

    try:
        trainer = Trainer(cfg)
    except (ValueError, OSError, ImportError) as err:  # settings, run folder, data, model files or optional
        # packages that cannot be used: one line naming them, no traceback
        parser.exit(2, f"{PROG}: error: {err}\n")
    try:
        history = trainer.train()
    finally:
        trainer.close()
    last = history[-1] if history else {}
    keys = ("iteration", "charts/success_rate", "charts/score", "charts/episode_length", "loss/policy", "loss/kl",
            "policy/grad_norm", "val/success_rate", "perf/iteration_seconds")
    print(json.dumps({k: last[k] for k in keys if k in last}))
    print(f"checkpoints: {trainer.checkpoints.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
