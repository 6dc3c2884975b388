#!/usr/bin/env bash
# WebShop (15 steps), same recipe as ALFWorld. Prepare: python scaled/verl/make_data.py --env webshop --out data/verl/webshop
source "$(dirname "$0")/common.sh"
DATA="${DATA:-$ROOT/data/verl/webshop}"
python -m verl.trainer.main_ppo --config-path "$ROOT/scaled/verl/config" --config-name empg_trainer \
  $(common_args webshop "$DATA" 4096) "${OUTCOME_ARGS[@]}" "$@"
