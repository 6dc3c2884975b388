"""Trainer: one iteration moves every parameter, resume reproduces the next iteration, the smoke CLI runs."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from scaled.config import load_config
from scaled.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
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
    # A random tiny model never wins and (almost surely) never answers validly: one group, equal rewards.
    if metrics["dapo/kept_trajectory_fraction"] == 0.0:
        assert metrics["policy/skipped_update"] == 1.0
        assert all(torch.equal(before[n], p) for n, p in _params(trainer).items())


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown key"):
        load_config(SMOKE, ["algorithm.not_a_key=1"])
    with pytest.raises(ValueError, match="empg"):
        load_config(SMOKE, ["algorithm.empg=sometimes"])
    with pytest.raises(ValueError, match="layout"):
        load_config(SMOKE, ["rollout.layout=diagonal"])


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
