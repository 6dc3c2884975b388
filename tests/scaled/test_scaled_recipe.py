"""The single-machine side of the recipe (issue 16): validation, runs that cannot mix, affordable
checkpoints, env pools stepped concurrently, the prompt-length limit."""

import json
import pathlib
import threading

import pytest
import torch

from empg.metrics import unknown_metrics
from scaled.config import load_config
from scaled.trainer import Trainer, checkpoint_bytes, checkpoint_footprint

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"


def _cfg(tmp_path, out, *extra):
    return load_config(SMOKE, [f"model.path={tmp_path.parent / 'tiny_recipe'}", f"trainer.out_dir={out}",
                               "env.n_tasks=1", "env.group_size=2", "agent.max_steps=2", "rollout.max_new_tokens=6",
                               "optim.lr=1.0e-3", "trainer.val_every=0", "trainer.val_before_train=false",
                               "eval.val_tasks=2", "eval.batch_size=2", *extra])


def _params(trainer):
    return {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters()}


def _train_part(row):
    return {k: v for k, v in row.items() if not k.startswith(("val/", "perf/"))}


# --------------------------------------------------------------------------- validation
def test_validation_logs_val_rows_and_never_changes_training(tmp_path):
    plain = Trainer(_cfg(tmp_path, tmp_path / "plain", "trainer.iterations=2", "agent.max_steps=1"))
    rows_plain = plain.train()
    val = Trainer(_cfg(tmp_path, tmp_path / "val", "trainer.iterations=2", "agent.max_steps=1", "trainer.val_every=1",
                       "trainer.val_before_train=true"))
    rows_val = val.train()
    assert [r["iteration"] for r in rows_val] == [0, 1, 2]
    assert all("val/success_rate" in r and r["val/num_tasks"] == 2.0 for r in rows_val)
    assert all(unknown_metrics(r) == [] for r in rows_val)
    # validation uses its own generator, environments and temperature: training is bit-for-bit the same
    assert [_train_part(r) for r in rows_val[1:]] == [_train_part(r) for r in rows_plain]
    pa, pb = _params(plain), _params(val)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert val.policy.temperature == 1.0  # restored after validating at eval.temperature = 0.4
    # the same tasks every time, the same episodes at the same iteration
    again = val.validate()
    assert {k: v for k, v in again.items() if not k.startswith("perf/")} == \
        {k: v for k, v in rows_val[-1].items() if k.startswith("val/")}
    logged = [json.loads(line) for line in (tmp_path / "val" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in logged] == [0, 1, 2]


# --------------------------------------------------------------------------- runs cannot mix
def test_resuming_with_another_config_is_an_error_naming_the_keys(tmp_path):
    out = tmp_path / "run"
    Trainer(_cfg(tmp_path, out, "trainer.iterations=1")).train()
    with pytest.raises(ValueError, match=r"algorithm\.empg\.variant \('full' -> 'off'\), optim\.lr \(0\.001 -> 0\.5\)") as err:
        Trainer(_cfg(tmp_path, out, "trainer.iterations=2", "algorithm.empg.variant=off", "optim.lr=0.5"))
    assert "--allow-config-change" in str(err.value) and str(out) in str(err.value)
    # keys that may change on resume: how long, how it reports, micro-batches, threads
    t = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "trainer.progress=true", "optim.micro_batch_size=1",
                     "rollout.env_workers=2"))
    assert t.iteration == 1
    with pytest.warns(RuntimeWarning, match=r"changed config \(allowed\): optim\.lr"):
        t = Trainer(_cfg(tmp_path, out, "trainer.iterations=2", "optim.lr=0.5", "trainer.allow_config_change=true"))
    assert t.iteration == 1 and t.optimizer.param_groups[0]["lr"] == 0.5


def test_cli_refuses_a_changed_config_and_allow_config_change_resumes(tmp_path, capsys):
    from scaled.train import main

    out = tmp_path / "cli"
    base = ["--config", str(SMOKE), f"model.path={tmp_path.parent / 'tiny_recipe'}", f"trainer.out_dir={out}",
            "env.n_tasks=1", "env.group_size=2", "agent.max_steps=1", "rollout.max_new_tokens=4",
            "trainer.val_before_train=false", "trainer.val_every=0"]
    assert main([*base, "trainer.iterations=1"]) == 0
    with pytest.raises(SystemExit) as exit_:
        main([*base, "trainer.iterations=2", "algorithm.outcome.estimator=dapo"])
    assert exit_.value.code == 2
    assert "algorithm.outcome.estimator ('grpo' -> 'dapo')" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="changed config"):
        assert main([*base, "trainer.iterations=2", "algorithm.outcome.estimator=dapo", "--allow-config-change"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2] and "dapo/rounds" in rows[1]


def test_a_folder_with_metrics_but_no_checkpoint_is_not_silently_restarted(tmp_path):
    out = tmp_path / "lost"
    Trainer(_cfg(tmp_path, out, "trainer.iterations=2")).train()
    for path in (out / "checkpoints").glob("step-*.pt"):
        path.unlink()  # e.g. checkpoints deleted by hand, metrics of 2 iterations left
    with pytest.raises(ValueError, match=r"holds metrics up to iteration 2 but no checkpoint.*trainer\.resume=false"):
        Trainer(_cfg(tmp_path, out, "trainer.iterations=2"))
    fresh = Trainer(_cfg(tmp_path, out, "trainer.iterations=2", "trainer.resume=false"))  # explicit: starts over
    assert fresh.iteration == 0 and not (out / "metrics.jsonl").read_text().strip()


# --------------------------------------------------------------------------- checkpoints
def _optimizer_equal(a, b):
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) and
                                          torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)


def test_save_optimizer_latest_keeps_one_optimizer_state_and_resumes_exactly(tmp_path):
    from empg.io import load_checkpoint_file

    out = tmp_path / "latest"
    trainer = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "agent.max_steps=1"))
    trainer.train()
    assert trainer.checkpoints.steps() == [2, 3] and trainer.optimizer_checkpoints.steps() == [3]
    assert all(load_checkpoint_file(trainer.checkpoints.path(s))["optimizer"] is None for s in (2, 3))
    weights = trainer.checkpoints.path(3).stat().st_size
    assert trainer.optimizer_checkpoints.path(3).stat().st_size > 1.8 * weights  # the two AdamW moments
    resumed = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "agent.max_steps=1"))
    assert resumed.iteration == 3 and _optimizer_equal(resumed.optimizer, trainer.optimizer)
    # a damaged newest checkpoint falls back to iteration 2, whose optimizer state is gone: said, and moments reset
    trainer.checkpoints.path(3).write_bytes(b"")
    with pytest.warns(RuntimeWarning) as record:
        fallback = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "agent.max_steps=1"))
    text = " ".join(str(w.message) for w in record)
    assert "step-00000003.pt" in text and "without its optimizer state" in text and "restart from zero" in text
    assert fallback.iteration == 2 and not fallback.optimizer.state_dict()["state"]


def test_save_optimizer_all_falls_back_exactly_and_none_saves_no_moments(tmp_path):
    out = tmp_path / "all"
    straight = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "trainer.save_optimizer=all"))
    straight.train()
    assert straight.optimizer_checkpoints.steps() == []
    straight.checkpoints.path(3).write_bytes(b"PK\x03\x04 not a whole checkpoint")
    with pytest.warns(RuntimeWarning, match="step-00000003.pt"):
        again = Trainer(_cfg(tmp_path, out, "trainer.iterations=3", "trainer.save_optimizer=all"))
    assert again.iteration == 2
    again.train()  # redo iteration 3 from the good checkpoint 2, optimizer included: the same weights
    pa, pb = _params(straight), _params(again)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    none = Trainer(_cfg(tmp_path, tmp_path / "none", "trainer.iterations=1", "trainer.save_optimizer=none"))
    none.train()
    assert none.optimizer_checkpoints.steps() == [] and none.checkpoints.path(1).stat().st_size < 1.2 * sum(
        p.numel() * 4 for p in none.policy.trainable_parameters()) + 200_000
    with pytest.warns(RuntimeWarning, match="without its optimizer state"):
        Trainer(_cfg(tmp_path, tmp_path / "none", "trainer.iterations=2", "trainer.save_optimizer=none"))


def test_lora_checkpoints_hold_only_the_adapter(tmp_path):
    from empg.io import load_checkpoint_file

    trainer = Trainer(_cfg(tmp_path, tmp_path / "lora", "trainer.iterations=1", "model.reference=lora",
                           "model.lora={r: 4, lora_alpha: 8, target_modules: all-linear}"))
    trainer.train()
    state = load_checkpoint_file(trainer.checkpoints.path(1))
    assert state["model"] and all("lora_" in k for k in state["model"])
    total = sum(p.numel() for p in trainer.policy.model.parameters())
    saved = sum(t.numel() for t in state["model"].values())
    assert saved == sum(p.numel() for p in trainer.policy.trainable_parameters()) and saved < total / 5


# Parameter counts of the paper's models, from their configs (meta device: no weights, no download).
QWEN = {
    "Qwen2.5-1.5B-Instruct": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                  num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    "Qwen2.5-7B-Instruct": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
}


def _gb(n):
    return f"{n / 1e9:.1f} GB"


def test_checkpoint_sizes_in_the_docs_follow_from_the_parameter_counts():
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    docs = (ROOT / "docs" / "scaling_up.md").read_text()
    rows = {}
    for name, kwargs in QWEN.items():
        with torch.device("meta"):
            model = Qwen2ForCausalLM(Qwen2Config(**kwargs))
        full = checkpoint_bytes(list(model.parameters()), optimizer=False)
        with torch.device("meta"):
            lora = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, target_modules="all-linear"))
        adapter = checkpoint_bytes([p for p in lora.parameters() if p.requires_grad], optimizer=False)
        rows[name] = (full, adapter)
    assert rows["Qwen2.5-1.5B-Instruct"][0] == 1_543_714_304 * 4  # 1.54B parameters, fp32
    assert rows["Qwen2.5-7B-Instruct"][1] == 161_480_704 * 4  # LoRA r = 64 on every linear layer
    for name, (full, adapter) in rows.items():
        for label, w in (("full", full), ("LoRA r=64", adapter)):
            latest = checkpoint_footprint(w, 2, "latest")
            every = checkpoint_footprint(w, 2, "all")
            row = (f"| {name} | {label} | {_gb(w)} | {_gb(latest['per_save'])} | {_gb(latest['steady'])} | "
                   f"{_gb(latest['peak'])} | {_gb(every['steady'])} |")
            assert row in docs, row
    assert checkpoint_footprint(rows["Qwen2.5-1.5B-Instruct"][0])["per_save"] / 1e9 == pytest.approx(18.5, abs=0.05)


# --------------------------------------------------------------------------- env pools and concurrent steps
def test_the_env_pool_is_built_once_and_reused_by_every_iteration_and_refill(tmp_path, monkeypatch):
    import scaled.envs

    made = []
    real = scaled.envs.make_env

    def counting(name, **kwargs):
        made.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(scaled.envs, "make_env", counting)
    trainer = Trainer(_cfg(tmp_path, tmp_path / "pool", "env.group_size=3", "algorithm.outcome.estimator=dapo",
                           "algorithm.outcome.max_refill_rounds=1"))
    pool = list(trainer.envs)
    assert len(made) == 3  # n_tasks x G, once
    trainer.train_step()
    trainer.train_step()
    assert len(made) == 3 and all(a is b for a, b in zip(trainer.envs, pool))


def _webshop_policy(tmp_path):
    from scaled.policy import load_policy
    from scaled.tiny import build_tiny_model

    path = build_tiny_model(tmp_path.parent / "tiny_recipe", vocab_size=512, hidden_size=64, num_layers=2, seed=0)
    return load_policy(str(path), reference="none", device=torch.device("cpu"))


def test_webshop_envs_step_on_threads_and_give_the_same_episodes(tmp_path):
    from scaled.agent import AgentConfig
    from scaled.envs import make_env
    from scaled.rollout import RolloutConfig, collect_rollouts

    policy = _webshop_policy(tmp_path)
    envs = [make_env("webshop", cache_dir=tmp_path / "cache", max_steps=3) for _ in range(6)]
    threads = []
    for env in envs:
        step = env.step

        def spy(action, _step=step):
            threads.append(threading.current_thread().name)
            return _step(action)

        env.step = spy
    runs = []
    for workers in (1, 4):
        threads.clear()
        out = collect_rollouts(policy, envs, seeds=[0, 0, 1, 1, 2, 2], groups=[0, 0, 1, 1, 2, 2],
                               agent=AgentConfig(max_steps=3), config=RolloutConfig(max_new_tokens=8, env_workers=workers),
                               generator=torch.Generator().manual_seed(5))
        runs.append([[(s.text, s.action, s.reward, s.observation) for s in e.steps] + [e.reward, e.task] for e in out])
        assert [e.index for e in out] == list(range(6))
        names = set(threads)
        assert (names == {"MainThread"}) if workers == 1 else (len(names) > 1 and "MainThread" not in names)
    assert runs[0] == runs[1]  # in order and identical, whatever the threads' timing


def test_alfworld_envs_are_never_stepped_on_threads():
    from scaled.envs.alfworld import AlfWorldEnv
    from scaled.envs.textworld import TextWorldEnv
    from scaled.envs.webshop import WebShopEnv

    # textworld's PDDL and logic parsers are process-wide tatsu objects, not thread-safe
    assert not AlfWorldEnv.concurrent_steps and not TextWorldEnv.concurrent_steps and WebShopEnv.concurrent_steps


def test_a_prompt_over_the_limit_ends_the_episode_before_the_turn(tmp_path):
    from scaled.agent import AgentConfig, chat_prompt_ids
    from scaled.envs import make_env
    from scaled.rollout import RolloutConfig, collect_rollouts, rollout_metrics

    policy = _webshop_policy(tmp_path)
    envs = [make_env("webshop", cache_dir=tmp_path / "cache", max_steps=4) for _ in range(2)]
    free = collect_rollouts(policy, envs, seeds=[3, 3], groups=[0, 0], agent=AgentConfig(max_steps=4),
                            config=RolloutConfig(max_new_tokens=8), generator=torch.Generator().manual_seed(1))
    lengths = [[len(s.prompt_ids) for s in e.steps] for e in free]
    first = lengths[0][0]
    assert all(len(x) >= 2 and x[0] == first for x in lengths) and max(max(x) for x in lengths) > first
    # a limit between the first prompt and the longest one: episodes end before the turn that would exceed it
    limit = first
    cut = collect_rollouts(policy, envs, seeds=[3, 3], groups=[0, 0], agent=AgentConfig(max_steps=4),
                           config=RolloutConfig(max_new_tokens=8, max_prompt_tokens=limit),
                           generator=torch.Generator().manual_seed(1))
    for e, full in zip(cut, free):
        assert all(len(s.prompt_ids) <= limit for s in e.steps)
        assert e.steps[0].text == full.steps[0].text  # the same draws until the cut
        if max(len(s.prompt_ids) for s in full.steps) > limit:
            assert e.stop_reason == "prompt_too_long" and e.length < full.length
    assert rollout_metrics(cut)["rollout/prompt_too_long_rate"] > 0
    assert chat_prompt_ids(policy.tokenizer, cut[0].steps[0].prompt) == cut[0].steps[0].prompt_ids
