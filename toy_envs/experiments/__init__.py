"""Reproducing the paper in miniature: one module per experiment, each runnable as a script.

    python -m toy_envs.experiments.ablation          --out runs/ablation          # EMPG vs GRPO/DAPO + ablation
    python -m toy_envs.experiments.prop1             --out runs/prop1             # Proposition 1 during training
    python -m toy_envs.experiments.clarity           --out runs/clarity           # clarity bonus in the fog
    python -m toy_envs.experiments.stability         --out runs/stability         # KL between updates
    python -m toy_envs.experiments.entropy_dynamics  --out runs/entropy_dynamics  # entropy change per percentile

Each takes ``--seeds`` (a count or a list), ``--quick`` (a smoke test in seconds) and ``--workers``
(default 2), writes ``results.json`` and PNGs into ``--out`` and prints its table. Shared settings
and statistics live in :mod:`toy_envs.experiments._common`. Results and readings: docs/toys.md,
"Reproducing the paper in miniature".
"""

EXPERIMENTS = ("ablation", "prop1", "clarity", "stability", "entropy_dynamics")
