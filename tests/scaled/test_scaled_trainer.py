"""Trainer: one iteration moves every parameter, resume reproduces the next iteration, the smoke CLI runs."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import empg
from scaled.config import load_config
from scaled.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"


def _cfg(tmp_path, out, *extra):
    tiny = tmp_path.parent / "tiny_trainer"
    return load_config(SMOKE, [f"model.path={tiny}", f"trainer.out_dir={out}", "env.n_tasks=1", "env.group_size=2",
                               "rollout.max_steps=2", "env.kwargs.max_steps=2", "rollout.max_new_tokens=8",
                               "optim.weight_decay=0.0", "optim.lr=1.0e-3", "optim.micro_batch_size=3", *extra])


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
    # The first micro-batch sees ratio exactly 1 (old log-probs = same teacher-forced forward).
    assert metrics["entropy/rollout_recompute_max_abs_diff"] < 1e-4
    assert metrics["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)  # Eq. 10: batch mean of g is 1


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


def test_dapo_drops_groups_with_equal_rewards(tmp_path):
    trainer = Trainer(_cfg(tmp_path, tmp_path / "d", "algorithm.outcome=dapo", "algorithm.clip_high=0.28"))
    before = _params(trainer)
    metrics = trainer.train_step()
    # Seeded: the random tiny model neither wins nor answers validly in 8 tokens, so both trajectories of
    # the one group score -0.1 · 2 = -0.2: the group is dropped and no update happens.
    assert metrics["dapo/kept_trajectory_fraction"] == 0.0
    assert metrics["policy/skipped_update"] == 1.0
    assert all(torch.equal(before[n], p) for n, p in _params(trainer).items())


def _record(t, prompt, entropies):
    from scaled.rollout import StepRecord

    n = len(entropies)
    return StepRecord(step=t, prompt_ids=prompt, turn_ids=prompt, response_ids=list(range(10, 10 + n)),
                      logprobs=torch.zeros(n), entropies=torch.tensor(entropies), truncated=False, text="", action="",
                      valid=True, env_invalid=False, reward=0.0, observation="", admissible=[])


def _hand_trajs(rewards, groups, entropies):
    """Trajectories with hand-set rewards (on the first step) and per-step token entropies."""
    from scaled.rollout import Trajectory

    trajs = []
    for i, (r, g, ents) in enumerate(zip(rewards, groups, entropies)):
        tr = Trajectory(index=i, group=g, seed=g, task="", task_type="t",
                        steps=[_record(t, [1, 2, 3][: 1 + (i + t) % 3], e) for t, e in enumerate(ents)])
        tr.steps[0].reward = r
        trajs.append(tr)
    return trajs


@pytest.mark.parametrize("layout", ["steps", "tokens"])
def test_dynamic_sampling_keeps_exactly_the_groups_with_distinct_rewards(layout):
    from scaled.rollout import concatenated_rows, step_rows
    from scaled.tiny import build_tiny_tokenizer

    # Group 0 scores [1, 1] (dropped), group 1 scores [0, 2] (kept): trajectories 2 and 3 remain.
    trajs = _hand_trajs([1.0, 1.0, 0.0, 2.0], [0, 0, 1, 1], [[[0.5]], [[0.5], [0.5]], [[0.5]], [[0.5], [0.5]]])
    if layout == "steps":
        rows = step_rows(trajs, pad_id=0)
    else:
        tok = build_tiny_tokenizer()
        rows = concatenated_rows(trajs, tok.pad_token_id, tok.eos_token_id)
    kept, frac = Trainer._dynamic_sampling(rows)
    assert frac == 0.5
    if layout == "steps":
        assert kept.trajectory.tolist() == [2, 3, 3] and kept.step.tolist() == [0, 0, 1]
        adv = empg.grpo_advantages(kept.rewards, kept.group)[kept.trajectory]
    else:
        assert kept.rewards.tolist() == [0.0, 2.0] and kept.group.tolist() == [1, 1]
        assert torch.equal(kept.input_ids, rows.input_ids[2:])
        adv = empg.grpo_advantages(kept.rewards, kept.group)
    # GRPO on the kept group [0, 2]: mean 1, unbiased std sqrt(2): A = ∓1 / (sqrt(2) + 1e-6) ≈ ∓0.70711.
    torch.testing.assert_close(adv.abs(), torch.full_like(adv, 2 ** -0.5), atol=1e-5, rtol=0)


def _bare_trainer(**algorithm):
    """A Trainer with only a config: enough for compute_advantages (no model, no environments)."""
    cfg = load_config(SMOKE, [f"algorithm.{k}={v}" for k, v in algorithm.items()])
    trainer = Trainer.__new__(Trainer)
    trainer.cfg = cfg
    return trainer


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

    from scaled.rollout import step_rows

    trajs = _hand_trajs([1.0, 0.0], [0, 0], [[[0.0, 0.0], [1.0]], [[2.0, 0.0]]])
    rows = step_rows(trajs, pad_id=0)
    trainer = _bare_trainer(empg="full", k=1.0, k_f=1.0, zeta=0.1)
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
    off, _ = _bare_trainer(empg="off").compute_advantages(rows, ent)
    torch.testing.assert_close(off[rows.loss_mask].double(),
                               torch.tensor([a, a, a, -a, -a], dtype=torch.float64), atol=1e-6, rtol=0)


def test_recompute_runs_without_dropout(tmp_path):
    # old_logp and the EMPG entropies come from the sampling policy, not from a random dropout mask:
    # with attention dropout 0.5 and the model left in train mode (as _update leaves it), two
    # recomputations must agree exactly and match the rollout's eval-mode values (float32, ~1e-5).
    from scaled.rollout import collect_rollouts

    trainer = Trainer(_cfg(tmp_path, tmp_path / "drop"))
    seeds, groups = trainer.task_seeds(0)
    trajs = collect_rollouts(trainer.policy, trainer.envs, seeds=seeds, groups=groups, config=trainer.cfg.rollout,
                             generator=trainer.generator)
    rows = trainer._layout(trajs)
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
    from scaled.rollout import collect_rollouts

    trainer = Trainer(_cfg(tmp_path, tmp_path / "acc", "optim.lr=0.0", "optim.max_grad_norm=1.0e9"))
    seeds, groups = trainer.task_seeds(0)
    trajs = collect_rollouts(trainer.policy, trainer.envs, seeds=seeds, groups=groups, config=trainer.cfg.rollout,
                             generator=trainer.generator)
    rows = trainer._layout(trajs)
    assert rows.num_rows >= 3
    rec = trainer._recompute(rows)
    adv, _ = trainer.compute_advantages(rows, rec["entropy"])
    adv = adv + torch.linspace(-1.0, 1.0, adv.shape[1])  # vary inside rows, so a wrong weight shows up
    params = trainer.policy.trainable_parameters()
    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        trainer.cfg.algorithm.loss_agg = agg
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
    Trainer(_cfg(tmp_path, out, "trainer.iterations=1", "trainer.resume=false")).train()
    assert [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown key"):
        load_config(SMOKE, ["algorithm.not_a_key=1"])
    with pytest.raises(ValueError, match="empg"):
        load_config(SMOKE, ["algorithm.empg=sometimes"])
    with pytest.raises(ValueError, match="layout"):
        load_config(SMOKE, ["rollout.layout=diagonal"])


@pytest.mark.parametrize("override,name", [
    ("optim.micro_batch_size=0", "optim.micro_batch_size"),   # was: range() arg 3 must not be zero
    ("optim.mini_batch_size=0", "optim.mini_batch_size"),     # was: silently one full batch
    ("optim.lr=-1.0e-5", "optim.lr"),
    ("trainer.save_every=0", "trainer.save_every"),           # was: ZeroDivisionError after an iteration
    ("eval.temperature=0", "eval.temperature"),               # was: logits / 0 -> NaN probabilities
    ("algorithm.loss_agg=sum", "algorithm.loss_agg"),         # was: only after the first rollout
    ("algorithm.zeta=.nan", "algorithm.zeta"),
    ("env.group_size=0", "env.group_size"),
])
def test_config_bad_values_name_the_field(override, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        load_config(SMOKE, [override])


def test_config_reads_yaml_1_1_number_strings_as_numbers():
    # YAML 1.1 reads 1e-5 (no dot) and 1.0e9 (no exponent sign) as strings; AdamW would reject them later.
    cfg = load_config(SMOKE, ["optim.lr=1e-5", "optim.max_grad_norm=1.0e9"])
    assert cfg.optim.lr == 1e-5 and cfg.optim.max_grad_norm == 1e9


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "scaled" / "configs").glob("*.yaml")))
def test_every_shipped_config_loads(name):
    cfg = load_config(ROOT / "scaled" / "configs" / name)
    assert cfg.env.name in ("alfworld", "webshop", "textworld")


def test_smoke_config_trains_end_to_end_in_a_subprocess(tmp_path):
    env = dict(os.environ, EMPG_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    out = tmp_path / "smoke"
    proc = subprocess.run([sys.executable, "-m", "scaled.train", "--config", str(SMOKE), f"trainer.out_dir={out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoint.pt").exists()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["iteration"] == 2


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
