#!/usr/bin/env bash
# ALFWorld on verl, Qwen2.5-1.5B-Instruct, DAPO + EMPG: a thin wrapper around the launcher, which reads the
# recipe (scaled/configs, the same files as the single-machine trainer). Other rows of the paper's table:
#   CONFIG=scaled/configs/alfworld_grpo_qwen1.5b.yaml bash scaled/verl/run_alfworld_empg.sh
# Data first (docs/verl.md): python -m scaled.verl.make_data --config "$CONFIG" --out data/verl/<name> \
#   --set env.kwargs.data_path=$ALFWORLD_DATA/json_2.1.1
# Extra arguments go to the launcher: --gpus 8 --nnodes 1 --data DIR --set key=value, verl Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python -m scaled.verl.launch --config "${CONFIG:-scaled/configs/alfworld_dapo_empg_qwen1.5b.yaml}" "$@"
