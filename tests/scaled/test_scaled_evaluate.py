"""scaled.evaluate: every task of a split once per sample (no replacement), Wilson intervals, the paper's table shape."""

import pathlib
import warnings

import pytest
import torch

from scaled.config import load_config
from scaled.evaluate import evaluate, format_table, load_trained_state, mean_interval, method_name, wilson_interval
from scaled.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"
SHIPPED_TYPES = {"pick_and_place_simple": 2, "look_at_obj_in_light": 1, "pick_clean_then_place_in_recep": 1,
                 "pick_heat_then_place_in_recep": 1, "pick_cool_then_place_in_recep": 1, "pick_two_obj_and_place": 1}


def test_evaluate_plays_every_task_of_the_split_once_from_the_newest_checkpoint(tmp_path):
    overrides = [f"model.path={tmp_path / 'tiny'}", f"trainer.out_dir={tmp_path / 'run'}", "env.n_tasks=1",
                 "env.group_size=2", "agent.max_steps=2", "rollout.max_new_tokens=6", "optim.lr=1.0e-3",
                 "trainer.iterations=2", "trainer.val_every=0", "trainer.val_before_train=false",
                 "eval.batch_size=3", "eval.greedy=true"]
    cfg = load_config(SMOKE, overrides)
    trainer = Trainer(cfg)
    trainer.train()
    state = load_trained_state(str(tmp_path / "run"))  # a run folder: its newest checkpoint
    assert state["iteration"] == 2
    trained = dict(trainer.policy.model.named_parameters())
    assert all(torch.equal(v, trained[k].detach()) for k, v in state["model"].items())
    assert load_trained_state(str(trainer.checkpoints.path(1)))["iteration"] == 1  # or one file
    results = evaluate(cfg, str(tmp_path / "run"))
    # The smoke config has no splits: its "test split" is the 7 shipped games, each played exactly once
    # (3 at a time), so the per-type counts are those of the games, not of a draw with replacement.
    assert (results["num_tasks"], results["split_tasks"], results["episodes"], results["samples"]) == (7, 7, 7, 1)
    assert {k: v["tasks"] for k, v in results["per_task_type"].items()} == SHIPPED_TYPES
    assert 1.0 <= results["episode_length"] <= 2.0 and 0.0 <= results["success"] <= 1.0
    low, high = results["success_ci"]
    assert 0.0 <= low <= results["success"] <= high <= 1.0 and high > low
    assert evaluate(cfg, str(tmp_path / "run")) == results  # greedy: the same episodes again
    table = format_table(results, env_name="alfworld", model="tiny", method=method_name(cfg))
    caption, _, head, _, row = table.splitlines()
    assert caption.startswith("alfworld test split (all data): 7 distinct tasks x 1 sample(s), greedy")
    assert head == "| Model | Method | Pick | Look | Clean | Heat | Cool | Pick2 | All |"
    assert row.startswith("| tiny | GRPO + EMPG | ") and row.count("[") == 7  # each cell with its interval
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_trained_state(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--checkpoint"):
        load_trained_state(str(tmp_path / "nowhere.pt"))


def test_samples_replay_every_task_with_fresh_sampling_seeds(tmp_path):
    cfg = load_config(SMOKE, [f"model.path={tmp_path / 'tiny'}", "agent.max_steps=1", "rollout.max_new_tokens=4",
                              "eval.batch_size=4", "eval.max_tasks=3", "eval.expected_tasks=134"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # max_tasks set: no warning about the split size
        results = evaluate(cfg, samples=2)
    assert (results["num_tasks"], results["split_tasks"], results["episodes"]) == (3, 7, 6)
    # each task counts once (its mean over the 2 samples), so the interval is over 3 tasks
    assert sum(v["tasks"] for v in results["per_task_type"].values()) == 3
    assert "3 distinct tasks of 7 x 2 sample(s), temperature 0.4" in format_table(
        results, env_name="alfworld", model="m", method="x")
    with pytest.warns(RuntimeWarning, match=r"has 7 tasks, the paper's has 134 \(eval\.expected_tasks\)"):
        evaluate(load_config(SMOKE, [f"model.path={tmp_path / 'tiny'}", "agent.max_steps=1", "rollout.max_new_tokens=2",
                                     "eval.batch_size=7", "eval.expected_tasks=134"]))
    with pytest.raises(ValueError, match=r"--split must be one of"):
        evaluate(cfg, split="dev")
    with pytest.raises(ValueError, match=r"--samples \(eval\.samples\)"):
        evaluate(cfg, samples=0)


@pytest.mark.parametrize("n", [1, 2, 7, 134, 500])
def test_wilson_interval_matches_scipy(n):
    from scipy.stats import binomtest

    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        if not 0 <= k <= n:
            continue
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # 88.1% of 134 games (the paper's DAPO + EMPG 1.5B ALFWorld number, 118/134): about ±5.5 points
    low, high = wilson_interval(118, 134)
    assert 0.81 < low < 0.82 and 0.92 < high < 0.93


def test_interval_inputs_are_checked():
    with pytest.raises(ValueError, match="n must be"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 4, confidence=1.5)
    with pytest.raises(ValueError, match="values"):
        mean_interval([])
    assert mean_interval([0.5]) == (0.5, 0.5)
    low, high = mean_interval([0.0, 1.0, 0.5, 0.5])
    assert low < 0.5 < high and high - 0.5 == pytest.approx(0.5 - low)
