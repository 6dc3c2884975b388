"""The advantage-estimator registry and the config dataclasses."""

import math

import pytest
import torch

import empg
from empg import registry

BUILT_IN = ("grpo", "drgrpo", "reinforce", "empg", "empg_scaling", "empg_bonus")

# Two groups of two trajectories. Step rows: trajectory 0 has 3 steps, 1 has 2, 2 has 1, 3 has 2.
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
GROUP = torch.tensor([0, 0, 1, 1])
TRAJ = torch.tensor([2, 0, 1, 0, 3, 1, 3, 0])  # rows in arbitrary order
STEP = torch.tensor([0, 1, 1, 0, 0, 0, 1, 2])
STEP_H = torch.tensor([0.3, 1.2, 0.1, 0.0, 2.0, 0.7, 0.4, 1.5], dtype=torch.float64)
# Concatenated rows for the same four trajectories.
STEP_IDS = torch.tensor([[-1, 0, 0, 1, 2, -1], [-1, 0, 1, 1, -1, -1], [0, 0, -1, -1, -1, -1], [-1, 0, -1, 1, 1, -1]])
TOKEN_H = torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def step_inputs():
    return empg.AdvantageInputs(REWARDS, GROUP, step_entropy=STEP_H, trajectory=TRAJ, step=STEP)


def token_inputs():
    return empg.AdvantageInputs(REWARDS, GROUP, token_entropy=TOKEN_H, step_ids=STEP_IDS)


def test_built_in_names_present():
    assert set(BUILT_IN) <= set(empg.available_advantages())
    for name in BUILT_IN:
        assert callable(empg.get_advantage(name))


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="nope") as err:
        empg.get_advantage("nope")
    for name in BUILT_IN:
        assert name in str(err.value)


def test_register_custom_and_duplicate_error():
    name = "test_only_constant"
    try:

        @empg.register_advantage(name)
        def constant(inputs, *, value=2.0, **_):
            return torch.full_like(torch.as_tensor(inputs.rewards), value)

        assert empg.compute_advantages(name, step_inputs(), value=3.0).tolist() == [3.0] * 4
        empg.register_advantage(name)(constant)  # re-registering the same function is a no-op

        with pytest.raises(ValueError, match=name):

            @empg.register_advantage(name)
            def other(inputs, **_):
                return inputs.rewards

        assert empg.get_advantage(name) is constant  # not overwritten
    finally:
        registry._REGISTRY.pop(name, None)
    with pytest.raises(TypeError, match="name"):
        empg.register_advantage("")


def test_grpo_in_each_layout():
    # GRPO: group 0 (1, 0) ⇒ (±0.5)/(√0.5 + 1e-6); group 1 (0, 1) the reverse.
    a = 0.5 / (0.5**0.5 + 1e-6)
    per_traj = torch.tensor([a, -a, -a, a], dtype=torch.float64)
    torch.testing.assert_close(empg.compute_advantages("grpo", empg.AdvantageInputs(REWARDS, GROUP)), per_traj)
    torch.testing.assert_close(empg.compute_advantages("grpo", step_inputs()), per_traj[TRAJ])
    tok = empg.compute_advantages("grpo", token_inputs())
    torch.testing.assert_close(tok, per_traj[:, None].expand(4, 6))
    torch.testing.assert_close(
        empg.compute_advantages("drgrpo", empg.AdvantageInputs(REWARDS, GROUP)), torch.tensor([0.5, -0.5, -0.5, 0.5], dtype=torch.float64)
    )
    torch.testing.assert_close(
        empg.compute_advantages("reinforce", empg.AdvantageInputs(REWARDS, GROUP)), REWARDS - 0.5
    )


def test_empg_equals_modulation_on_grpo_base_both_layouts():
    base_steps = empg.compute_advantages("grpo", step_inputs())
    expected = empg.modulate_step_advantages(base_steps, STEP_H, TRAJ, STEP, k=1.0, k_f=1.0, zeta=0.1)
    torch.testing.assert_close(empg.compute_advantages("empg", step_inputs()), expected, rtol=0, atol=0)
    base_tok = empg.compute_advantages("grpo", token_inputs())
    expected_tok = empg.modulate_advantages(base_tok, TOKEN_H, STEP_IDS, k=1.0, k_f=1.0, zeta=0.1)
    torch.testing.assert_close(empg.compute_advantages("empg", token_inputs()), expected_tok, rtol=0, atol=0)
    # Hyper-parameters pass through.
    custom = empg.compute_advantages("empg", step_inputs(), k=2.0, k_f=0.5, zeta=0.05)
    torch.testing.assert_close(custom, empg.modulate_step_advantages(base_steps, STEP_H, TRAJ, STEP, k=2.0, k_f=0.5, zeta=0.05))


def test_empg_variants():
    inputs = step_inputs()
    base = empg.compute_advantages("grpo", inputs)
    scaling = empg.modulate_step_advantages(base, STEP_H, TRAJ, STEP, zeta=0.0)
    bonus = empg.modulate_step_advantages(base, STEP_H, TRAJ, STEP, k=0.0)
    torch.testing.assert_close(empg.compute_advantages("empg", inputs, variant="scaling"), scaling, rtol=0, atol=0)
    torch.testing.assert_close(empg.compute_advantages("empg_scaling", inputs), scaling, rtol=0, atol=0)
    torch.testing.assert_close(empg.compute_advantages("empg", inputs, variant="bonus"), bonus, rtol=0, atol=0)
    torch.testing.assert_close(empg.compute_advantages("empg_bonus", inputs), bonus, rtol=0, atol=0)
    torch.testing.assert_close(empg.compute_advantages("empg", inputs, variant="off"), base, rtol=0, atol=0)
    assert not torch.allclose(scaling, bonus) and not torch.allclose(scaling, base)
    with pytest.raises(ValueError, match="variant"):
        empg.compute_advantages("empg", inputs, variant="half")


def test_empg_outcome_choice():
    inputs = step_inputs()
    dr = empg.compute_advantages("drgrpo", inputs)
    torch.testing.assert_close(
        empg.compute_advantages("empg", inputs, outcome="drgrpo"), empg.modulate_step_advantages(dr, STEP_H, TRAJ, STEP)
    )
    # DAPO's advantage is GRPO's (its differences are in sampling and the loss).
    torch.testing.assert_close(empg.compute_advantages("empg", inputs, outcome="dapo"), empg.compute_advantages("empg", inputs))
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        empg.compute_advantages("empg", inputs, outcome="ppo")


def test_layout_errors():
    with pytest.raises(ValueError, match="step_ids"):
        empg.compute_advantages("grpo", empg.AdvantageInputs(REWARDS, GROUP, step_ids=STEP_IDS[:3]))
    with pytest.raises(ValueError, match="trajectory"):
        empg.compute_advantages("grpo", empg.AdvantageInputs(REWARDS, GROUP, step_entropy=STEP_H))
    with pytest.raises(ValueError, match="trajectory"):
        empg.compute_advantages("grpo", empg.AdvantageInputs(REWARDS, GROUP, step_entropy=STEP_H, trajectory=TRAJ + 4, step=STEP))


def test_config_defaults_and_validation():
    cfg = empg.EMPGConfig()
    assert (cfg.variant, cfg.k, cfg.k_f, cfg.zeta, cfg.eps) == ("full", 1.0, 1.0, 0.1, 1e-8)  # paper's pseudocode
    assert cfg.modulation_kwargs() == {"k": 1.0, "k_f": 1.0, "zeta": 0.1, "eps": 1e-8}
    assert empg.EMPGConfig(variant="scaling").modulation_kwargs()["zeta"] == 0.0
    assert empg.EMPGConfig(variant="bonus").modulation_kwargs()["k"] == 0.0
    assert not empg.EMPGConfig(variant="off").enabled
    with pytest.raises(ValueError, match="variant"):
        empg.EMPGConfig(variant="x")
    with pytest.raises(ValueError, match="zeta"):
        empg.EMPGConfig(zeta=-1)
    with pytest.raises(ValueError, match="eps"):
        empg.EMPGConfig(eps=0)
    loss = empg.LossConfig()
    assert (loss.clip_low, loss.agg, loss.kl_coef) == (0.2, "token-mean", 0.01)  # PPO / DAPO / paper setup
    # one definition of clip-higher: 0.28 under DAPO, symmetric 0.2 under GRPO, an explicit value wins
    assert loss.resolved_clip_high("dapo") == 0.28 and loss.resolved_clip_high(empg.OutcomeConfig()) == 0.2
    assert empg.LossConfig(clip_high=0.3).resolved_clip_high("dapo") == 0.3
    with pytest.raises(ValueError, match="agg"):
        empg.LossConfig(agg="mean")
    out = empg.OutcomeConfig()
    assert (out.estimator, out.max_refill_rounds, out.eps) == ("grpo", 3, 1e-6) and not out.dynamic_sampling
    assert empg.OutcomeConfig(estimator="dapo").dynamic_sampling
    with pytest.raises(ValueError, match="max_refill_rounds"):
        empg.OutcomeConfig(max_refill_rounds=-1)


# --- single pass: the advantages and the logged terms come from one modulation (issue 9) ------------


@pytest.fixture
def count_modulations(monkeypatch):
    """Count the runs of Eq. 7–12 (every entry point goes through modulation._step_terms once)."""
    from empg import modulation

    calls = []
    real = modulation._step_terms

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(modulation, "_step_terms", counting)
    return calls


@pytest.mark.parametrize("layout", ["steps", "tokens"])
def test_return_terms_come_from_the_same_pass(layout, count_modulations):
    base = empg.compute_advantages("grpo", step_inputs() if layout == "steps" else token_inputs())
    if layout == "steps":
        args = (base, STEP_H, TRAJ, STEP)
        plain, with_terms, terms_only = empg.modulate_step_advantages, empg.modulate_step_advantages, empg.step_modulation_terms
    else:
        args = (base, TOKEN_H, STEP_IDS)
        plain, with_terms, terms_only = empg.modulate_advantages, empg.modulate_advantages, empg.modulation_terms
    out, terms = with_terms(*args, return_terms=True, zeta=0.2)
    assert len(count_modulations) == 1
    torch.testing.assert_close(out, plain(*args, zeta=0.2), rtol=0, atol=0)
    again = terms_only(*args, zeta=0.2)
    for name in ("scale", "bonus", "centred", "step_entropy"):
        torch.testing.assert_close(getattr(terms, name), getattr(again, name), rtol=0, atol=0)
    # The terms map back onto the output: each step's tokens (rows) carry its centred value A″.
    tok = terms.token_step
    assert tok.shape == out.shape
    in_step = tok >= 0
    torch.testing.assert_close(out[in_step].double(), terms.centred[tok[in_step]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("make_inputs", [step_inputs, token_inputs])
def test_registry_metrics_from_one_modulation(make_inputs, count_modulations):
    from empg.metrics import unknown_metrics

    metrics = {}
    out = empg.compute_advantages("empg", make_inputs(), zeta=0.2, metrics=metrics)
    assert len(count_modulations) == 1  # the advantages and their statistics: one pass
    base = empg.compute_advantages("grpo", make_inputs())
    if make_inputs is step_inputs:
        terms = empg.step_modulation_terms(base, STEP_H, TRAJ, STEP, zeta=0.2)
    else:
        terms = empg.modulation_terms(base, TOKEN_H, STEP_IDS, zeta=0.2)
    assert metrics == {**terms.stats("empg"), "empg/enabled": 1.0}
    assert metrics["empg/num_steps"] == 8.0 and unknown_metrics(metrics) == []
    assert not torch.equal(out, base)
    # variant "off" with a metrics dict: the baseline advantages, the full-EMPG terms logged, one pass.
    count_modulations.clear()
    off_metrics = {}
    off = empg.compute_advantages("empg", make_inputs(), variant="off", zeta=0.2, metrics=off_metrics)
    assert len(count_modulations) == 1
    torch.testing.assert_close(off, base, rtol=0, atol=0)
    assert off_metrics == {**terms.stats("empg"), "empg/enabled": 0.0}
    # variant "off" without metrics: no modulation at all.
    count_modulations.clear()
    empg.compute_advantages("empg", make_inputs(), variant="off")
    assert count_modulations == []


def test_stats_values():
    # Two single-step trajectories, H = (0, 1), A = (1, -1), k = 1, ζ = 0.1 (no bonus: no next steps).
    # H̃ = (0, 1); g = (1, e⁻¹)/((1 + e⁻¹)/2); A′ = (g0, -g1), mean A′ = (g0 - g1)/2.
    t = empg.step_modulation_terms(torch.tensor([1.0, -1.0]), [0.0, 1.0], [0, 1], [0, 0])
    g0, g1 = 2 / (1 + math.exp(-1)), 2 * math.exp(-1) / (1 + math.exp(-1))
    stats = t.stats()
    assert stats["empg/num_steps"] == 2.0
    assert stats["empg/scale_mean"] == pytest.approx(1.0) and stats["empg/scale_max"] == pytest.approx(g0)
    assert stats["empg/scale_min"] == pytest.approx(g1) and stats["empg/scale_std"] == pytest.approx((g0 - g1) / 2)
    assert stats["empg/advantage_out_mean"] == pytest.approx(0.0, abs=1e-12)
    assert stats["empg/advantage_out_max"] == pytest.approx(g0 - (g0 - g1) / 2)
    assert stats["empg/bonus_max"] == 0.0 and stats["empg/normalized_entropy_max"] == pytest.approx(1.0)
