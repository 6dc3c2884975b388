"""Trainer: one iteration moves every parameter, resume reproduces the next iteration, DAPO refills,
the sampler check (the smoke CLI end to end: test_scaled_reliability.py)."""

import json
import pathlib

import pytest
import torch

import empg
from empg.metrics import unknown_metrics
from scaled.config import load_config
from scaled.trainer import Trainer, informative_episodes

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"


def _cfg(tmp_path, out, *extra):
    tiny = tmp_path.parent / "tiny_trainer"
    return load_config(SMOKE, [f"model.path={tiny}", f"trainer.out_dir={out}", "env.n_tasks=1", "env.group_size=2",
                               "agent.max_steps=2", "rollout.max_new_tokens=8",
                               "optim.weight_decay=0.0", "optim.lr=1.0e-3", "optim.micro_batch_size=3",
                               "trainer.val_every=0", "trainer.val_before_train=false", *extra])


def _params(trainer):
    return {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters()}


def test_one_iteration_changes_every_parameter(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "run"))
    before = _params(trainer)
    metrics = trainer.train_step()
    after = _params(trainer)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, unchanged  # weight decay is 0: only the gradient can move them
    for key in ("charts/success_rate", "loss/policy", "loss/kl", "policy/clip_frac", "policy/grad_norm",
                "empg/scale_mean", "empg/clarity_mean", "entropy/step_mean", "rollout/invalid_answer_rate"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and not NaN
    # The sampler ran the weights being trained: float32 sampling with a KV cache vs one teacher-forced
    # forward agree to ~1e-6.
    assert metrics["entropy/rollout_recompute_max_abs_diff"] < 1e-4
    assert metrics["rollout/logprob_recompute_max_abs_diff"] < 1e-4
    assert metrics["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)  # Eq. 10: batch mean of g is 1
    assert unknown_metrics(metrics) == []


def test_concat_layout_iteration_logs_known_metrics_and_checks_the_sampler(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "c", "agent.layout=concat"))
    metrics = trainer.train_step()
    assert unknown_metrics(metrics) == []
    assert metrics["policy/skipped_update"] == 0.0
    assert metrics["rollout/logprob_recompute_max_abs_diff"] < 1e-4


def test_logprob_check_catches_a_stale_sampler(tmp_path):
    # A sampler that keeps the initial weights (the frozen reference copy) after the first update: the
    # check is ~1e-6 on iteration 1 and jumps on iteration 2. With lr 1e-3 one AdamW step moves every
    # weight by ~1e-3, which moves the tiny model's log-probs by far more than the 1e-3 threshold.
    trainer = Trainer(_cfg(tmp_path, tmp_path / "stale"))
    policy = trainer.policy
    fresh_generate = policy.generate

    def stale_generate(*args, **kwargs):
        live, policy.model = policy.model, policy.ref_model
        try:
            return fresh_generate(*args, **kwargs)
        finally:
            policy.model = live

    policy.generate = stale_generate
    first, second = trainer.train_step(), trainer.train_step()
    assert first["rollout/logprob_recompute_max_abs_diff"] < 1e-4
    assert second["rollout/logprob_recompute_max_abs_diff"] > 1e-3


def test_sampler_weights_are_synced_after_the_update(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "sync"))
    seen = []
    trainer.policy.sync_sampler_weights = lambda: seen.append(_params(trainer))
    trainer.train_step()
    assert len(seen) == 1
    after = _params(trainer)
    assert all(torch.equal(seen[0][n], after[n]) for n in after)  # called once the optimizer steps were done


def test_resume_gives_an_identical_next_step(tmp_path):
    straight = Trainer(_cfg(tmp_path, tmp_path / "a", "trainer.iterations=2"))
    hist_a = straight.train()
    first = Trainer(_cfg(tmp_path, tmp_path / "b", "trainer.iterations=1"))
    first.train()
    resumed = Trainer(_cfg(tmp_path, tmp_path / "b", "trainer.iterations=2"))
    assert resumed.iteration == 1
    hist_b = resumed.train()
    pa, pb = _params(straight), _params(resumed)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    strip = lambda m: {k: v for k, v in m.items() if not k.startswith("perf/")}  # noqa: E731
    assert strip(hist_a[-1]) == strip(hist_b[-1])
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2]


def test_dapo_refills_then_skips_when_no_group_is_informative(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "d", "algorithm.outcome.estimator=dapo"))
    assert trainer.cfg.algorithm.loss.resolved_clip_high(trainer.cfg.algorithm.outcome) == 0.28  # clip-higher
    before = _params(trainer)
    metrics = trainer.train_step()
    # Seeded: the random tiny model neither wins nor answers validly in 8 tokens, so both trajectories of
    # every group score -0.1 · 2 = -0.2: the first round and the 3 refill rounds keep nothing, and no
    # update happens. The sampler check still runs (on the first round).
    assert metrics["dapo/kept_trajectory_fraction"] == 0.0
    assert metrics["dapo/rounds"] == 4.0 and metrics["dapo/kept_groups"] == 0.0
    assert metrics["policy/skipped_update"] == 1.0
    assert metrics["rollout/logprob_recompute_max_abs_diff"] < 1e-4
    assert unknown_metrics(metrics) == []
    assert all(torch.equal(before[n], p) for n, p in _params(trainer).items())


def _record(t, prompt, entropies):
    from scaled.agent import StepRecord

    n = len(entropies)
    return StepRecord(step=t, prompt="", text="", action="", valid=True, env_invalid=False, reward=0.0, observation="",
                      admissible=[], prompt_ids=prompt, turn_ids=prompt, response_ids=list(range(10, 10 + n)),
                      logprobs=torch.zeros(n), entropies=torch.tensor(entropies))


def _hand_episodes(rewards, groups, entropies):
    """Episodes with hand-set outcome rewards and per-step token entropies.

    R = win_reward·won − invalid_penalty·#invalid: a won episode with valid steps and win_reward = r scores r.
    """
    from scaled.agent import AgentConfig, Episode

    episodes = []
    for i, (r, g, ents) in enumerate(zip(rewards, groups, entropies)):
        ep = Episode(task="", task_type="t", config=AgentConfig(win_reward=r), seed=g, group=g, index=i, won=True,
                     steps=[_record(t, [1, 2, 3][: 1 + (i + t) % 3], e) for t, e in enumerate(ents)])
        assert ep.reward == r
        episodes.append(ep)
    return episodes


@pytest.mark.parametrize("layout", ["steps", "tokens"])
def test_dynamic_sampling_keeps_exactly_the_groups_with_distinct_rewards(layout):
    from scaled.batch import concatenated_rows, step_rows
    from scaled.tiny import build_tiny_tokenizer

    # Group 0 scores [1, 1] (dropped), group 1 scores [0, 2] (kept): trajectories 2 and 3 remain.
    episodes = _hand_episodes([1.0, 1.0, 0.0, 2.0], [0, 0, 1, 1], [[[0.5]], [[0.5], [0.5]], [[0.5]], [[0.5], [0.5]]])
    kept = informative_episodes(episodes)
    assert kept == episodes[2:]
    if layout == "steps":
        rows = step_rows(kept, pad_id=0)
        assert rows.trajectory.tolist() == [0, 1, 1] and rows.step.tolist() == [0, 0, 1]
        adv = empg.grpo_advantages(rows.rewards, rows.group)[rows.trajectory]
    else:
        tok = build_tiny_tokenizer()
        rows = concatenated_rows(kept, tok.pad_token_id, tok.eos_token_id)
        full = concatenated_rows(episodes, tok.pad_token_id, tok.eos_token_id).input_ids
        assert torch.equal(rows.input_ids, full[2:, : rows.input_ids.shape[1]])
        adv = empg.grpo_advantages(rows.rewards, rows.group)
    assert rows.rewards.tolist() == [0.0, 2.0] and rows.group.tolist() == [1, 1]
    # GRPO on the kept group [0, 2]: mean 1, unbiased std sqrt(2): A = ∓1 / (sqrt(2) + 1e-6) ≈ ∓0.70711.
    torch.testing.assert_close(adv.abs(), torch.full_like(adv, 2 ** -0.5), atol=1e-5, rtol=0)


def _bare_trainer(*overrides):
    """A Trainer with only a config: enough for compute_advantages and collect (no model, no environments)."""
    trainer = Trainer.__new__(Trainer)
    trainer.cfg = load_config(SMOKE, list(overrides))
    trainer.iteration = 0
    return trainer


def test_dapo_refill_rounds_stop_once_n_tasks_groups_are_informative():
    # n_tasks = 2, G = 2. Round 0: group 0 ties, group 1 informative (1 kept < 2) -> refill. Round 1: both
    # tie -> refill. Round 2: both informative (3 kept >= 2) -> stop. Rounds 3+ would raise.
    trainer = _bare_trainer("algorithm.outcome.estimator=dapo", "env.n_tasks=2", "env.group_size=2")
    rewards = {0: [1.0, 1.0, 0.0, 2.0], 1: [0.0, 0.0, -0.1, -0.1], 2: [0.0, 10.0, 9.9, 0.0]}
    calls = []

    def rollout_round(iteration, round_):
        calls.append(round_)
        seeds, groups = trainer.task_seeds(iteration, round_)
        assert groups == [2 * round_, 2 * round_, 2 * round_ + 1, 2 * round_ + 1]  # unique across rounds
        return _hand_episodes(rewards[round_], groups, [[[0.5]]] * 4)

    trainer.rollout_round = rollout_round
    rounds, kept, metrics = trainer.collect()
    assert calls == [0, 1, 2] and len(rounds) == 3
    assert [e.group for e in kept] == [1, 1, 4, 4, 5, 5]
    assert metrics == {"dapo/kept_groups": 3.0, "dapo/rounds": 3.0, "dapo/kept_trajectory_fraction": 0.5}
    # max_refill_rounds bounds the extra rounds: with 1, round 2 is never played.
    trainer.cfg.algorithm.outcome.max_refill_rounds = 1
    calls.clear()
    rounds, kept, metrics = trainer.collect()
    assert calls == [0, 1] and metrics["dapo/kept_groups"] == 1.0 and metrics["dapo/rounds"] == 2.0
    # GRPO plays one round and trains on all of it.
    grpo = _bare_trainer("env.n_tasks=2", "env.group_size=2")
    grpo.rollout_round = rollout_round
    calls.clear()
    rounds, kept, metrics = grpo.collect()
    assert calls == [0] and len(kept) == 4 and metrics == {}


def test_refill_rounds_draw_fresh_tasks():
    trainer = _bare_trainer("env.n_tasks=16", "env.group_size=8")
    seen = set()
    for iteration in range(200):
        for round_ in range(4):
            seeds, _ = trainer.task_seeds(iteration, round_)
            assert len(set(seeds)) == 16 and not seen & set(seeds)
            seen |= set(seeds)


def test_trainer_advantages_use_step_means_of_generated_tokens_only():
    # Spec §7: step entropies are means over the step's generated tokens (padding not counted), the
    # entropies reach the advantage, and each step is scaled once. Hand fixture, k = k_f = 1, ζ = 0.1:
    #   traj 0 (R = 1): step 0 tokens [0, 0] -> H = 0; step 1 tokens [1] -> H = 1
    #   traj 1 (R = 0): step 0 tokens [2, 0] -> H = 1
    #   GRPO (one group [1, 0]: mean 1/2, unbiased std sqrt(1/2)): A = ±(1/2) / (sqrt(1/2) + 1e-6) = ±a, a ≈ 0.70711,
    #   on the steps [+a, +a, -a].
    #   H~ = [0, 1, 1]; u = [1, 1/e, 1/e]; g = u / mean(u); f = u; only (traj 0, step 0) has a next step.
    #   A' = g·A + [ζ/e, 0, 0]; A'' = A' - mean(A').
    import math

    from scaled.batch import step_rows

    episodes = _hand_episodes([1.0, 0.0], [0, 0], [[[0.0, 0.0], [1.0]], [[2.0, 0.0]]])
    rows = step_rows(episodes, pad_id=0)
    trainer = _bare_trainer("algorithm.empg.variant=full", "algorithm.empg.k=1.0", "algorithm.empg.k_f=1.0",
                            "algorithm.empg.zeta=0.1")
    ent = rows.rollout_entropy.clone()
    adv, stats = trainer.compute_advantages(rows, ent)
    a = 0.5 / (math.sqrt(0.5) + 1e-6)
    u = [1.0, math.exp(-1), math.exp(-1)]
    g = [x / (sum(u) / 3 + 1e-8) for x in u]
    a1 = [g[0] * a + 0.1 * math.exp(-1), g[1] * a, -g[2] * a]
    expected = torch.tensor([x - sum(a1) / 3 for x in a1], dtype=torch.float64)
    got = torch.stack([adv[r][rows.loss_mask[r]][0] for r in range(rows.num_rows)]).double()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    for r in range(rows.num_rows):  # one value per step on every generated token
        assert torch.all(adv[r][rows.loss_mask[r]] == adv[r][rows.loss_mask[r]][0])
    assert stats["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)
    # Values at padding (not generated) must not matter.
    ent_pad = torch.where(rows.loss_mask, ent, torch.full_like(ent, 100.0))
    torch.testing.assert_close(trainer.compute_advantages(rows, ent_pad)[0], adv)
    # With EMPG off the entropies play no role: plain GRPO, [+a, +a, -a].
    off, off_stats = _bare_trainer("algorithm.empg.variant=off").compute_advantages(rows, ent)
    assert off_stats["empg/enabled"] == 0.0 and stats["empg/enabled"] == 1.0
    torch.testing.assert_close(off[rows.loss_mask].double(),
                               torch.tensor([a, a, a, -a, -a], dtype=torch.float64), atol=1e-6, rtol=0)


def test_recompute_runs_without_dropout(tmp_path):
    # old_logp and the EMPG entropies come from the sampling policy, not from a random dropout mask:
    # with attention dropout 0.5 and the model left in train mode (as _update leaves it), two
    # recomputations must agree exactly and match the rollout's eval-mode values (float32, ~1e-5).
    trainer = Trainer(_cfg(tmp_path, tmp_path / "drop"))
    rows = trainer._layout(trainer.rollout_round(0, 0))
    model = trainer.policy.model
    n_dropout = 0
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
            n_dropout += 1
    assert n_dropout > 0
    model.train()
    a, b = trainer._recompute(rows), trainer._recompute(rows)
    assert model.training  # the mode is restored
    m = rows.loss_mask
    assert torch.equal(a["entropy"], b["entropy"]) and torch.equal(a["old_logp"], b["old_logp"])
    torch.testing.assert_close(a["entropy"][m], rows.rollout_entropy[m], atol=1e-4, rtol=0)
    torch.testing.assert_close(a["old_logp"][m], rows.rollout_logp[m], atol=1e-4, rtol=0)


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    # Micro-batches of 1 row and one micro-batch of all rows give the same gradient for each loss
    # aggregation (the accumulation weights w = tokens or rows of the micro-batch / of the mini-batch).
    # lr = 0 and a huge clip leave the parameters and the gradients untouched; float32, tolerance 1e-5.
    trainer = Trainer(_cfg(tmp_path, tmp_path / "acc", "optim.lr=0.0", "optim.max_grad_norm=1.0e9"))
    rows = trainer._layout(trainer.rollout_round(0, 0))
    assert rows.num_rows >= 3
    rec = trainer._recompute(rows)
    adv, _ = trainer.compute_advantages(rows, rec["entropy"])
    adv = adv + torch.linspace(-1.0, 1.0, adv.shape[1])  # vary inside rows, so a wrong weight shows up
    params = trainer.policy.trainable_parameters()
    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        trainer.cfg.algorithm.loss.agg = agg
        grads = []
        for micro in (1, rows.num_rows):
            trainer.cfg.optim.micro_batch_size = micro
            trainer._update(rows, rec["old_logp"], rec["ref_logp"], adv)
            grads.append(torch.cat([p.grad.flatten() for p in params]))
        assert grads[0].abs().max() > 0
        torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4, msg=agg)


def test_fresh_start_owns_out_dir_and_checkpoints_follow_their_metrics(tmp_path):
    # Every checkpoint must find its iteration's metrics line already written (log, then checkpoint:
    # a crash in between re-runs the iteration instead of losing its line), and resume=false must
    # not append to the metrics of an earlier run in the same out_dir.
    out = tmp_path / "own"
    seen = []
    trainer = Trainer(_cfg(tmp_path, out, "trainer.iterations=1"))
    save = trainer.save_checkpoint

    def save_and_look(*args, **kwargs):
        lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
        seen.append([json.loads(line)["iteration"] for line in lines])
        return save(*args, **kwargs)

    trainer.save_checkpoint = save_and_look
    trainer.train()
    assert seen == [[1]]
    trainer = Trainer(_cfg(tmp_path, out, "trainer.iterations=2"))  # resumes at 1, runs 2
    assert trainer.iteration == 1
    trainer.train()
    assert trainer.checkpoints.steps() == [1, 2]
    fresh = Trainer(_cfg(tmp_path, out, "trainer.iterations=1", "trainer.resume=false"))
    assert fresh.iteration == 0 and fresh.checkpoints.steps() == []  # the old run's checkpoints are gone
    fresh.train()
    assert [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert Trainer(_cfg(tmp_path, out, "trainer.iterations=1")).iteration == 1  # resumes the new run, not the old


def test_checkpoints_keep_the_newest_and_fall_back_past_a_damaged_one(tmp_path):
    out = tmp_path / "keep"
    trainer = Trainer(_cfg(tmp_path, out, "trainer.iterations=3"))
    trainer.train()
    assert trainer.checkpoints.steps() == [2, 3]  # keep_checkpoints = 2
    trainer.checkpoints.path(3).write_bytes(b"")  # a crash while the disk was full
    with pytest.warns(RuntimeWarning, match="step-00000003.pt"):
        resumed = Trainer(_cfg(tmp_path, out, "trainer.iterations=3"))
    assert resumed.iteration == 2
    assert [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_step_on_cuda(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "g", "trainer.device=cuda", "model.bf16=true"))
    assert trainer.policy.device.type == "cuda"
    before = _params(trainer)
    metrics = trainer.train_step()
    assert metrics["policy/grad_norm"] == metrics["policy/grad_norm"]
    assert any(not torch.equal(before[n], p) for n, p in _params(trainer).items())
    # bf16 forwards: rollout and teacher-forced entropies agree only to bf16 precision.
    assert metrics["entropy/rollout_recompute_max_abs_diff"] < 0.2
