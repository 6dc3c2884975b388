"""scaled.evaluate: a run folder's newest checkpoint is scored and shown in the paper's table shape."""

import pathlib

import pytest
import torch

from scaled.config import load_config
from scaled.evaluate import evaluate, format_table, load_trained_state, method_name
from scaled.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"


def test_evaluate_loads_the_newest_checkpoint_of_a_run(tmp_path):
    overrides = [f"model.path={tmp_path / 'tiny'}", f"trainer.out_dir={tmp_path / 'run'}", "env.n_tasks=1",
                 "env.group_size=2", "agent.max_steps=2", "rollout.max_new_tokens=6", "optim.lr=1.0e-3",
                 "trainer.iterations=2", "eval.episodes=3", "eval.batch_size=2", "eval.greedy=true"]
    cfg = load_config(SMOKE, overrides)
    trainer = Trainer(cfg)
    trainer.train()
    state = load_trained_state(str(tmp_path / "run"))  # a run folder: its newest checkpoint
    assert state["iteration"] == 2
    trained = dict(trainer.policy.model.named_parameters())
    assert all(torch.equal(v, trained[k].detach()) for k, v in state["model"].items())
    assert load_trained_state(str(trainer.checkpoints.path(1)))["iteration"] == 1  # or one file
    results = evaluate(cfg, str(tmp_path / "run"))
    assert results["episodes"] == 3 and sum(results["per_task_type_counts"].values()) == 3
    assert 1.0 <= results["episode_length"] <= 2.0 and 0.0 <= results["success"] <= 1.0
    assert evaluate(cfg, str(tmp_path / "run")) == results  # greedy: the same episodes again
    table = format_table(results, env_name="alfworld", model="tiny", method=method_name(cfg))
    assert table.splitlines()[0] == "| Model | Method | Pick | Look | Clean | Heat | Cool | Pick2 | All |"
    assert "| tiny | GRPO + EMPG |" in table
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_trained_state(str(tmp_path))
