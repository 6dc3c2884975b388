"""verl's own worker and V1 trainer steps, end to end on CPU with the EMPG plug-in (tests/verl/worker_e2e.py).

One subprocess (about two minutes on 2 cores, ~2 GB with its local Ray): a tiny random-init Qwen2 in
``ActorRolloutRefWorker`` (FSDP2, gloo), generation, the trainer's ``_balance_batch`` (verl's padding
rows), ``_compute_old_log_prob`` (entropies), ``_compute_advantage`` with ``adv_estimator=empg`` on
the ``empg_sync`` trainer, ``_update_actor``; once with step rows and once with concatenated rows.
The checks here recompute EMPG from what verl stored and compare with what the actor trained on.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.verl
pytest.importorskip("verl.protocol")
pytest.importorskip("transfer_queue")

import empg  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
HPARAMS = dict(k=1.0, k_f=1.0, zeta=0.1, eps=1e-8)  # the empg_trainer.yaml defaults the script keeps


_RUN: dict = {}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    if "failure" in _RUN:  # one run for the module, even when it failed (pytest retries erroring fixtures)
        pytest.fail(_RUN["failure"])
    out = tmp_path_factory.mktemp("verl_worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_", "RAY_"))}
    proc = subprocess.run([sys.executable, str(ROOT / "tests/verl/worker_e2e.py"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        _RUN["failure"] = f"worker_e2e.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        pytest.fail(_RUN["failure"])
    result = torch.load(out / "result.pt", weights_only=False)
    result["out_dir"] = out
    return result


def _real(rec):
    pad = [bool(t.get("is_padding", False)) for t in rec["tags"]]
    return torch.tensor([not p for p in pad])


def _scores(rec):
    return rec["rm_scores"].sum(-1).double()


def _expected_step_rows(rec):
    """empg.modulate_step_advantages on verl's entropies, the trajectory/step read from the keys."""
    real = _real(rec)
    keys = [k for k, r in zip(rec["keys"], real) if r]
    traj_names = [k.rsplit("_", 1)[0] for k in keys]
    names = sorted(set(traj_names))
    traj = torch.tensor([names.index(t) for t in traj_names])
    step = torch.tensor([int(k.rsplit("_", 1)[1]) for k in keys])
    mask = rec["response_mask"][real].double()
    scores = _scores(rec)[real]
    # outcome of a trajectory: the score of its last step; its GRPO group: the prompt uid
    last = {t: i for i, t in sorted(enumerate(traj.tolist()), key=lambda x: step[x[0]])}
    outcome = torch.tensor([scores[last[t]] for t in range(len(names))])
    group = torch.tensor([sorted(set(n.split("_")[0] for n in names)).index(n.split("_")[0]) for n in names])
    base = empg.grpo_advantages(outcome, group)[traj]
    h = (rec["entropy"][real].double() * mask).sum(-1) / mask.sum(-1)
    want = torch.zeros_like(rec["advantages"], dtype=torch.float64)
    want[real] = empg.modulate_step_advantages(base, h, traj, step, **HPARAMS)[:, None] * mask
    base_tok = torch.zeros_like(want)
    base_tok[real] = base.double()[:, None] * mask
    return want, base_tok


def _expected_concatenated(rec):
    """empg.modulate_advantages on verl's entropies, one step per run of response_mask == 1."""
    real = _real(rec)
    mask = rec["response_mask"][real]
    group = torch.tensor([int(u[-1]) for u, r in zip(rec["uid"], real) if r])
    base = empg.grpo_advantages(_scores(rec)[real], group)[:, None] * mask
    ids = torch.full(mask.shape, -1)
    for i, row in enumerate(mask.tolist()):
        k, prev = -1, 0
        for j, m in enumerate(row):
            if m and not prev:
                k += 1
            if m:
                ids[i, j] = k
            prev = m
    want = torch.zeros_like(rec["advantages"], dtype=torch.float64)
    want[real] = empg.modulate_advantages(base.double(), rec["entropy"][real].double(), ids, **HPARAMS) * mask
    base_tok = torch.zeros_like(want)
    base_tok[real] = base.double()
    return want, base_tok


@pytest.mark.parametrize("layout", ["steps", "concat"])
def test_actor_trained_on_empg_of_the_entropies_verl_computed(result, layout):
    rec = result[layout]
    assert result["trainer_mode"] == "sync" and result["trainer_cls"].endswith("EMPGTrainerSync")
    # verl padded the batch (to a multiple of 3 prompts x 2 sessions = 6 rows) with its synthetic rows
    real = _real(rec)
    n_pad = len(rec["keys"]) - rec["n_real"]
    assert n_pad > 0 and int((~real).sum()) == n_pad and len(rec["keys"]) % 6 == 0
    assert all(k.startswith("pad") for k, r in zip(rec["keys"], real) if not r)
    assert int(rec["response_mask"][~real].sum()) == 0
    want, base = (_expected_step_rows if layout == "steps" else _expected_concatenated)(rec)
    assert base.abs().max() > 0.5  # GRPO is not trivially zero here (session 0 of each prompt wins)
    adv = rec["advantages"].double()
    torch.testing.assert_close(adv, want, rtol=1e-5, atol=1e-5)
    assert torch.all(adv[~real] == 0)  # padding rows: no advantage
    assert not torch.allclose(adv, base, atol=1e-3)  # EMPG changed something
    # ... and these are the values the actor's loss saw, row by row (matched by token ids)
    by_ids = {tuple(ids): adv_row for ids, adv_row in zip(rec["input_ids"], adv)}
    assert len(rec["trained"]) == len(rec["keys"])
    for ids, seen in rec["trained"]:
        stored = by_ids[tuple(ids)]
        torch.testing.assert_close(seen.double(), stored[: seen.shape[0]], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["steps", "concat"])
def test_empg_statistics_reach_verl_metrics_without_padding_rows(result, layout):
    rec = result[layout]
    m = rec["metrics"]
    real = _real(rec)
    n_steps = int(real.sum()) if layout == "steps" else 2 * int(real.sum())  # concatenated: two turns a row
    assert m["empg/num_steps"] == n_steps  # the padding rows are not steps
    assert m["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)
    want, _ = (_expected_step_rows if layout == "steps" else _expected_concatenated)(rec)
    on = rec["response_mask"] != 0
    assert m["empg/advantage_out_max"] == pytest.approx(float(want[on].max()), abs=1e-5)
    assert m["empg/advantage_out_min"] == pytest.approx(float(want[on].min()), abs=1e-5)
    assert m["actor/lr"] > 0 and "actor/pg_loss" in m  # verl's own update metrics in the same dict


def test_entropies_are_the_models_and_parameters_changed(result):
    """verl's entropies (first batch, before any update) equal a plain HF forward; the update moved every tensor."""
    from transformers import AutoModelForCausalLM

    rec = result["steps"]
    model = AutoModelForCausalLM.from_pretrained(result["model_path"], dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    real = _real(rec)
    for i in torch.nonzero(real).flatten().tolist():
        ids = torch.tensor(rec["input_ids"][i])
        n = int(rec["tags"][i]["response_len"])
        with torch.no_grad():
            logits = model(ids[None]).logits[0, -n - 1:-1]
        torch.testing.assert_close(empg.token_entropy(logits.double()).float(), rec["entropy"][i, :n],
                                   rtol=1e-4, atol=1e-4)
    changes = result["param_change"]
    assert len(changes) > 10 and min(changes.values()) > 0


def test_a_verl_checkpoint_becomes_a_model_that_scaled_evaluate_scores(result):
    """The trainer's own checkpoint -> ``python -m verl.model_merger merge`` -> a Hugging Face folder whose
    weights are the trained ones (in bf16, the dtype verl records in the checkpoint's config) and which
    ``python -m scaled.evaluate`` plays (docs/verl.md, "From a verl checkpoint to scaled.evaluate")."""
    from safetensors.torch import load_file

    ckpt = pathlib.Path(result["checkpoint"])
    assert (ckpt.parents[1] / "latest_checkpointed_iteration.txt").read_text().strip() == "2"  # what resume reads
    hf = result["out_dir"] / "hf"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_", "RAY_"))}
    merge = subprocess.run([sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                            "--local_dir", str(ckpt), "--target_dir", str(hf)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert merge.returncode == 0, merge.stderr[-3000:]
    merged = load_file(hf / "model.safetensors")
    trained = result["params"]
    assert set(merged) == set(trained) - {"lm_head.weight"}  # tied to the embeddings
    for name, value in merged.items():
        assert torch.equal(value, trained[name].to(value.dtype)), name
    ev = subprocess.run([sys.executable, "-m", "scaled.evaluate", "--config", "scaled/configs/smoke_cpu.yaml",
                         "model.tiny=false", f"model.path={hf}", "eval.max_tasks=2", "agent.max_steps=2",
                         "rollout.max_new_tokens=4", "trainer.progress=false"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "2 distinct tasks" in ev.stdout and "| All |" in ev.stdout
