#!/usr/bin/env bash
# Shared verl overrides reproducing the paper's verl-agent setup (spec §6), 1 node x 8 GPUs.
# Sourced by run_alfworld_empg.sh / run_webshop_empg.sh. Override anything with env vars or extra args.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:-scaled.verl.plugin,scaled.verl.agent_loop}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

MODEL="${MODEL:-Qwen/Qwen2.5-1.5B-Instruct}"     # or Qwen/Qwen2.5-7B-Instruct
OUTCOME="${OUTCOME:-grpo}"                        # grpo | dapo
VARIANT="${VARIANT:-full}"                        # off (baseline) | scaling | bonus | full
NNODES="${NNODES:-1}"; GPUS="${GPUS:-8}"

if [[ "$OUTCOME" == dapo ]]; then   # DAPO: clip-higher, dynamic sampling, token-mean loss
  OUTCOME_ARGS=(actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.28
                algorithm.filter_groups.enable=true algorithm.filter_groups.metric=reward
                actor_rollout_ref.actor.loss_agg_mode=token-mean)
else
  OUTCOME_ARGS=(actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.2)
fi

common_args() {  # $1 = env name, $2 = data dir, $3 = max prompt length
  echo \
    algorithm.adv_estimator=empg algorithm.empg.variant="$VARIANT" algorithm.empg.outcome="$OUTCOME" \
    data.train_files="$2/train.parquet" data.val_files="$2/val.parquet" \
    data.train_batch_size=16 data.max_prompt_length="$3" data.max_response_length=512 \
    data.return_raw_chat=true \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=16 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.actor.use_kl_loss=true actor_rollout_ref.actor.kl_loss_coef=0.01 \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.mode=async \
    actor_rollout_ref.rollout.n=8 actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.prompt_length="$3" actor_rollout_ref.rollout.response_length=512 \
    actor_rollout_ref.rollout.agent.agent_loop_config_path="$ROOT/scaled/verl/config/agent_loops.yaml" \
    trainer.total_training_steps=150 trainer.total_epochs=1000 \
    trainer.n_gpus_per_node="$GPUS" trainer.nnodes="$NNODES" \
    trainer.test_freq=10 trainer.save_freq=50 trainer.val_before_train=false \
    trainer.logger='["console","tensorboard"]' trainer.project_name=empg \
    trainer.experiment_name="$1-$OUTCOME-empg_$VARIANT"
}
