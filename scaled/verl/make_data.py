"""Write verl RL datasets (parquet) whose rows are environment episodes for ``empg_text_env``.

Each row: a placeholder ``prompt`` (the agent loop builds the real prompts from the environment),
``agent_name: empg_text_env`` and ``extra_info = {env, seed, env_kwargs, agent}`` (``agent``: the
:class:`scaled.agent.AgentConfig` fields that differ from its defaults, as JSON).

    python scaled/verl/make_data.py --env alfworld --out data/verl/alfworld --train 4096 --val 128 \
        --env-kwargs '{"data_path": "~/.cache/alfworld/json_2.1.1/train"}'
"""

from __future__ import annotations

import argparse
import json
import pathlib

MAX_STEPS = {"alfworld": 50, "webshop": 15}


def rows(env: str, n: int, seed0: int, env_kwargs: dict) -> list[dict]:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [
        {
            "data_source": f"empg/{env}",
            "prompt": [{"role": "user", "content": f"[{env} episode {seed0 + i}]"}],
            "agent_name": "empg_text_env",
            "reward_model": {"style": "rule", "ground_truth": ""},
            "extra_info": {"env": env, "seed": seed0 + i, "env_kwargs": json.dumps(env_kwargs),
                           "agent": json.dumps({"max_steps": MAX_STEPS[env]})},
        }
        for i in range(n)
    ]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=sorted(MAX_STEPS), required=True)
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--train", type=int, default=4096)
    p.add_argument("--val", type=int, default=128)
    p.add_argument("--env-kwargs", default="{}", help="JSON passed to scaled.envs.make_env")
    a = p.parse_args(argv)
    import pandas as pd

    kw = json.loads(a.env_kwargs)
    a.out.mkdir(parents=True, exist_ok=True)
    for split, n, seed0 in (("train", a.train, 0), ("val", a.val, 10_000_000)):
        tmp = a.out / f".{split}.parquet.tmp"
        pd.DataFrame(rows(a.env, n, seed0, kw)).to_parquet(tmp)
        tmp.replace(a.out / f"{split}.parquet")
    print(f"wrote {a.out}/train.parquet ({a.train}) and val.parquet ({a.val})")


if __name__ == "__main__":
    main()
