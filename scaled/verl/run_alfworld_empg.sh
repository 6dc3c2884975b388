#!/usr/bin/env bash
# ALFWorld, Qwen2.5-1.5B-Instruct, GRPO(+EMPG) by default; OUTCOME=dapo VARIANT=off for the baselines.
# Needs the ALFWorld data (alfworld-download) and: python scaled/verl/make_data.py --env alfworld --out data/verl/alfworld
source "$(dirname "$0")/common.sh"
DATA="${DATA:-$ROOT/data/verl/alfworld}"
python -m verl.trainer.main_ppo --config-path "$ROOT/scaled/verl/config" --config-name empg_trainer \
  $(common_args alfworld "$DATA" 2048) "${OUTCOME_ARGS[@]}" "$@"
