"""The recipe settings both trainers must agree on, as (verl key, value the recipe gives it) pairs.

Test helper (not collected): tests/scaled/test_scaled_verl_launch.py checks the verl launch's overrides
against it in the main environment, tests/verl/test_launch_config.py checks verl's own composed and
resolved config against it. Settings of the episode (turn limit, history, reward, penalties) live in
the dataset rows and are checked there (make_data).
"""

from __future__ import annotations

#: Every paper config (16) and the smoke config.
PAPER_CONFIGS = [f"{env}_{method}_qwen{size}.yaml" for env in ("alfworld", "webshop")
                 for method in ("grpo", "grpo_empg", "dapo", "dapo_empg") for size in ("1.5b", "7b")]


def expected_verl_values(cfg) -> dict[str, object]:
    """verl key -> the value the single-machine trainer uses for the same setting (``cfg`` is its Config)."""
    a, o, t, ev = cfg.algorithm, cfg.optim, cfg.trainer, cfg.eval
    return {
        # group size, tasks per step
        "actor_rollout_ref.rollout.n": cfg.env.group_size,
        "data.train_batch_size": cfg.env.n_tasks,
        # the algorithm: EMPG, GRPO/DAPO (dynamic sampling with refill, clip-higher), loss, KL
        "algorithm.adv_estimator": "empg",
        "algorithm.empg.variant": a.empg.variant,
        "algorithm.empg.k": a.empg.k, "algorithm.empg.k_f": a.empg.k_f, "algorithm.empg.zeta": a.empg.zeta,
        "algorithm.empg.eps": a.empg.eps,
        "algorithm.empg.outcome": "dapo" if a.outcome.estimator == "dapo" else "grpo",
        "algorithm.norm_adv_by_std_in_grpo": a.outcome.std_normalize and a.outcome.estimator != "drgrpo",
        "algorithm.filter_groups.enable": a.outcome.dynamic_sampling,
        "actor_rollout_ref.actor.clip_ratio_low": a.loss.clip_low,
        "actor_rollout_ref.actor.clip_ratio_high": a.loss.resolved_clip_high(a.outcome),
        "actor_rollout_ref.actor.loss_agg_mode": a.loss.agg,
        "actor_rollout_ref.actor.use_kl_loss": a.loss.kl_coef > 0 and cfg.model.reference != "none",
        "actor_rollout_ref.actor.kl_loss_coef": a.loss.kl_coef,
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
        "algorithm.use_kl_in_reward": False,
        # optimisation: lr, mini-batch (rows = prompts x n), clipping, epochs
        "actor_rollout_ref.actor.optim.lr": o.lr,
        "actor_rollout_ref.actor.optim.weight_decay": o.weight_decay,
        "actor_rollout_ref.actor.optim.betas": list(o.betas),
        "actor_rollout_ref.actor.grad_clip": o.max_grad_norm,
        "actor_rollout_ref.actor.ppo_epochs": o.epochs,
        "mini_batch_rows": o.mini_batch_size,
        # lengths, sampling
        "data.max_response_length": cfg.rollout.max_new_tokens,
        "actor_rollout_ref.rollout.response_length": cfg.rollout.max_new_tokens,
        "data.max_prompt_length": cfg.rollout.max_prompt_tokens,
        "actor_rollout_ref.rollout.prompt_length": cfg.rollout.max_prompt_tokens,
        "actor_rollout_ref.rollout.temperature": cfg.model.temperature,
        "actor_rollout_ref.model.path": cfg.model.path,
        # validation
        "actor_rollout_ref.rollout.val_kwargs.temperature": 0.0 if ev.greedy else ev.temperature,
        "actor_rollout_ref.rollout.val_kwargs.do_sample": not ev.greedy,
        "trainer.val_before_train": t.val_before_train,
        "trainer.test_freq": t.val_every if t.val_every > 0 else -1,
        # the run
        "trainer.total_training_steps": t.iterations,
        "trainer.save_freq": t.save_every,
        "trainer.max_actor_ckpt_to_keep": t.keep_checkpoints,
        "data.seed": t.seed,
        "actor_rollout_ref.actor.data_loader_seed": t.seed,
        "actor_rollout_ref.rollout.seed": t.seed,
    }


#: Where each of scaled.config.RECIPE_KEYS goes on the verl side: a key of expected_verl_values, the
#: dataset rows (make_data), or a difference docs/verl.md states.
RECIPE_TO_VERL = {
    "env.n_tasks": "data.train_batch_size",
    "env.group_size": "actor_rollout_ref.rollout.n",
    "env.train_split": "rows: train.parquet env_kwargs.split",
    "env.val_split": "rows: val.parquet env_kwargs.split",
    "env.test_split": "rows: test.parquet env_kwargs.split",
    "agent.max_steps": "rows: extra_info.agent (and env_kwargs.max_steps)",
    "agent.history_length": "rows: extra_info.agent",
    "agent.layout": "rows: extra_info.agent (step: one output per turn)",
    "agent.win_reward": "rows: extra_info.agent",
    "agent.invalid_penalty": "rows: extra_info.agent",
    "agent.require_think": "rows: extra_info.agent",
    "agent.check_admissible": "rows: extra_info.agent",
    "rollout.max_new_tokens": "data.max_response_length",
    "rollout.max_prompt_tokens": "data.max_prompt_length",
    "model.temperature": "actor_rollout_ref.rollout.temperature",
    "algorithm.outcome.estimator": "algorithm.empg.outcome",
    "algorithm.outcome.std_normalize": "algorithm.norm_adv_by_std_in_grpo",
    "algorithm.outcome.max_refill_rounds": "difference: verl V1 refills until the batch is full (no round limit)",
    "algorithm.empg.variant": "algorithm.empg.variant",
    "algorithm.loss.clip_low": "actor_rollout_ref.actor.clip_ratio_low",
    "algorithm.loss.clip_high": "actor_rollout_ref.actor.clip_ratio_high",
    "algorithm.loss.agg": "actor_rollout_ref.actor.loss_agg_mode",
    "algorithm.loss.kl_coef": "actor_rollout_ref.actor.kl_loss_coef",
    "optim.lr": "actor_rollout_ref.actor.optim.lr",
    "optim.weight_decay": "actor_rollout_ref.actor.optim.weight_decay",
    "optim.max_grad_norm": "actor_rollout_ref.actor.grad_clip",
    "optim.mini_batch_size": "mini_batch_rows",
    "optim.epochs": "actor_rollout_ref.actor.ppo_epochs",
    "trainer.iterations": "trainer.total_training_steps",
    "trainer.val_every": "trainer.test_freq",
    "trainer.val_before_train": "trainer.val_before_train",
    "eval.temperature": "actor_rollout_ref.rollout.val_kwargs.temperature",
    "eval.val_tasks": "rows: len(val.parquet)",
}


def verl_values(get, keys) -> dict[str, object]:
    """The same keys read from a verl config through ``get(key)`` (``mini_batch_rows`` = prompts x rollout.n)."""
    out = {k: get(k) for k in keys if k != "mini_batch_rows"}
    out["mini_batch_rows"] = int(get("actor_rollout_ref.actor.ppo_mini_batch_size")) * int(get("actor_rollout_ref.rollout.n"))
    return out


def assert_same(want: dict, got: dict, where: str) -> None:
    """Equal values (floats to 1e-12), with every differing key named."""
    bad = []
    for key, value in want.items():
        other = got[key]
        if isinstance(value, float) or isinstance(other, float):
            same = abs(float(value) - float(other)) <= 1e-12 * max(1.0, abs(float(value)))
        elif isinstance(value, (list, tuple)):
            same = [float(x) for x in value] == [float(x) for x in other]
        else:
            same = value == other
        if not same:
            bad.append(f"{key}: recipe {value!r}, verl {other!r}")
    assert not bad, f"{where}: the verl launch and the single-machine recipe differ:\n  " + "\n  ".join(bad)
