#!/usr/bin/env bash
# WebShop on verl, Qwen2.5-1.5B-Instruct, DAPO + EMPG: a thin wrapper around the launcher (see run_alfworld_empg.sh).
# Data first: python -m scaled.verl.make_data --config "$CONFIG" --out data/verl/<name> \
#   --set env.kwargs.data_path=<folder with the WebShop release files>
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python -m scaled.verl.launch --config "${CONFIG:-scaled/configs/webshop_dapo_empg_qwen1.5b.yaml}" "$@"
