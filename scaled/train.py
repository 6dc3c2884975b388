"""Train an LLM agent with GRPO/DAPO ± EMPG.

Usage::

    python -m scaled.train --config scaled/configs/smoke_cpu.yaml [section.key=value ...]

e.g. ``algorithm.empg=full trainer.iterations=10 trainer.out_dir=runs/x``. Runs resume from
``trainer.out_dir/checkpoint.pt`` when it exists (``trainer.resume=false`` to start over).
"""

from __future__ import annotations

import argparse
import json
import sys

from scaled.config import config_to_dict, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config (scaled/configs/*.yaml)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (values parsed as YAML)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    from scaled.trainer import Trainer

    trainer = Trainer(cfg)
    history = trainer.train()
    last = history[-1] if history else {}
    keys = ("iteration", "charts/success_rate", "charts/score", "charts/episode_length", "loss/policy", "loss/kl",
            "policy/grad_norm", "perf/iteration_seconds")
    print(json.dumps({k: last[k] for k in keys if k in last}))
    print(f"checkpoint: {trainer.out_dir / 'checkpoint.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
