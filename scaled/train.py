"""Train an LLM agent with GRPO/DAPO ± EMPG.

Usage::

    python -m scaled.train --config scaled/configs/smoke_cpu.yaml [section.key=value ...]

e.g. ``algorithm.empg.variant=full trainer.iterations=10 trainer.out_dir=runs/x``. Configs are
composed from fragments (``scaled/configs``, see :mod:`scaled.config`); ``--print-config`` shows the
result. Runs resume from the newest checkpoint in ``trainer.out_dir/checkpoints`` when there is one
(``trainer.resume=false`` starts over).
"""

from __future__ import annotations

import argparse
import json
import sys

from scaled.config import config_to_yaml, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config (scaled/configs/*.yaml)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (OmegaConf dot-list, values parsed as YAML)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(config_to_yaml(cfg), end="")
        return 0
    from scaled.trainer import Trainer

    trainer = Trainer(cfg)
    history = trainer.train()
    last = history[-1] if history else {}
    keys = ("iteration", "charts/success_rate", "charts/score", "charts/episode_length", "loss/policy", "loss/kl",
            "policy/grad_norm", "perf/iteration_seconds")
    print(json.dumps({k: last[k] for k in keys if k in last}))
    print(f"checkpoints: {trainer.checkpoints.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
