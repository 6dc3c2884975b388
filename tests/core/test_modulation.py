"""The EMPG modulation, Eq. 7–12 (spec §3): fixtures, edge cases, invariances, and spec §7's mistakes."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import empg
from empg import reference

E = math.exp
EPS = 1e-8
NAN = float("nan")


def close(actual, expected, atol=1e-7):
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64), rtol=0, atol=atol
    )


# --- the hand-derived fixture --------------------------------------------------------------------
# Three steps: trajectory 0 has steps 0 and 1 with H = 0 and 2, trajectory 1 one step with H = 1.
# Incoming (outcome) advantages: +1 on trajectory 0, −1 on trajectory 1.  k = k_f = 1, ζ = 0.1.
#
# Eq. 12  min H = 0, max H = 2  ⇒  H̃ = (0, 2, 1)/(2 + ε) ≈ (0, 1, 0.5)
# Eq. 10  u = exp(−H̃) = (1, e⁻¹, e^-½) ≈ (1, 0.367879, 0.606531); mean u = 1.974410/3 = 0.658137
#         g = u / mean u ≈ (1.519441, 0.558971, 0.921588)             (mean g = 1)
# Eq. 11  f = exp(−H̃) = (1, 0.367879, 0.606531)
# Eq. 8   only step (0, 0) has a next step, (0, 1): bonus = 0.1 · f(0,1) = 0.0367879
#         A′ = (1.519441·1 + 0.036788, 0.558971·1, 0.921588·(−1)) = (1.556229, 0.558971, −0.921588)
# Eq. 7   mean A′ = (1.556229 + 0.558971 − 0.921588)/3 = 0.397871
#         A″ = A′ − 0.397871 = (1.158358, 0.161100, −1.319459)
U = [1.0, E(-1.0), E(-0.5)]
G = [x / (sum(U) / 3) for x in U]
A_PRIME = [G[0] + 0.1 * E(-1.0), G[1], -G[2]]
A_SECOND = [a - sum(A_PRIME) / 3 for a in A_PRIME]


def test_fixture_numbers_in_the_comment():
    close(G, [1.519441, 0.558971, 0.921588], atol=1e-6)
    close(A_SECOND, [1.158358, 0.161100, -1.319459], atol=1e-6)


def test_step_layout_fixture_each_equation():
    adv = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    h = torch.tensor([0.0, 2.0, 1.0], dtype=torch.float64)
    traj, step = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])
    t = empg.step_modulation_terms(adv, h, traj, step, k=1, k_f=1, zeta=0.1)
    close(t.normalized_entropy, [0.0, 1.0, 0.5])  # Eq. 12
    close(t.scale, G)  # Eq. 10
    close(t.clarity, U)  # Eq. 11 (k_f = k = 1, so f = u here)
    close(t.bonus, [0.1 * E(-1.0), 0.0, 0.0])  # Eq. 8, second term
    close(t.modulated, A_PRIME)  # Eq. 8
    close(t.centred, A_SECOND)  # Eq. 7
    close(t.mean_modulated, sum(A_PRIME) / 3)
    assert t.has_next.tolist() == [True, False, False]
    out = empg.modulate_step_advantages(adv, h, traj, step, k=1, k_f=1, zeta=0.1)
    close(out, A_SECOND)
    assert out.dtype == torch.float64


def test_k_and_k_f_enter_separately():
    # k = 2, k_f = 0.5 on the fixture: u = exp(−2H̃) = (1, e⁻², e⁻¹), f = exp(−H̃/2) = (1, e^-½, e^-¼).
    # bonus(0,0) = 0.1 · f(0,1) = 0.1 e^-½.
    adv = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    t = empg.step_modulation_terms(adv, [0.0, 2.0, 1.0], [0, 0, 1], [0, 1, 0], k=2, k_f=0.5, zeta=0.1)
    u = [1.0, E(-2.0), E(-1.0)]
    close(t.scale, [x / (sum(u) / 3) for x in u])
    close(t.clarity, [1.0, E(-0.5), E(-0.25)])
    close(t.bonus, [0.1 * E(-0.5), 0.0, 0.0])


def test_token_layout_fixture():
    # The same three steps as concatenated rows. Row 0: prompt, step 0 (token entropies 0, 0 ⇒ H = 0),
    # observation, step 1 (1, 3 ⇒ H = 2), padding. Row 1: prompt, step 0 (0.5, 1, 1.5 ⇒ H = 1), padding.
    ids = torch.tensor([[-1, 0, 0, -1, 1, 1, -1], [-1, 0, 0, 0, -1, -1, -1]])
    ent = torch.tensor([[9.0, 0.0, 0.0, 7.0, 1.0, 3.0, 0.0], [5.0, 0.5, 1.0, 1.5, 0.0, 0.0, 0.0]], dtype=torch.float64)
    adv = torch.tensor([[1.0] * 7, [-1.0] * 7], dtype=torch.float64)
    out = empg.modulate_advantages(adv, ent, ids, k=1, k_f=1, zeta=0.1)
    s0, s1, s2 = A_SECOND
    close(out, [[1.0, s0, s0, 1.0, s1, s1, 1.0], [-1.0, s2, s2, s2, -1.0, -1.0, -1.0]])  # no-step tokens unchanged
    t = empg.modulation_terms(adv, ent, ids, k=1, k_f=1, zeta=0.1)
    close(t.step_entropy, [0.0, 2.0, 1.0])
    assert t.trajectory.tolist() == [0, 0, 1] and t.step.tolist() == [0, 1, 0]


def test_token_level_advantage_varying_inside_a_step():
    # One row, steps 0 (tokens A = 1, 3; H = 0) and 1 (token A = 2; H = 1), k = 1, ζ = 0.1, k_f = 1.
    # H̃ = (0, 1); u = (1, e⁻¹); g = u/((1 + e⁻¹)/2); f = (1, e⁻¹); bonus(step 0) = 0.1 e⁻¹.
    # Step values in the mean use the token mean of A: A_0 = (1 + 3)/2 = 2, A_1 = 2.
    # mean A′ = (g0·2 + 0.1e⁻¹ + g1·2)/2 = (2·2 + 0.1e⁻¹)/2 since g0 + g1 = 2.
    # Token j of step s: g_s·A_j + bonus_s − mean A′.
    g0, g1 = 2 / (1 + E(-1)), 2 * E(-1) / (1 + E(-1))
    mean = (4 + 0.1 * E(-1)) / 2
    out = empg.modulate_advantages([[1.0, 3.0, 2.0]], [[0.0, 0.0, 1.0]], [[0, 0, 1]], zeta=0.1)
    close(out, [[g0 * 1 + 0.1 * E(-1) - mean, g0 * 3 + 0.1 * E(-1) - mean, g1 * 2 - mean]], atol=1e-6)  # float32
    assert out.dtype == torch.float32  # python floats become the default dtype


def test_four_quadrants():
    # Four single-step trajectories (no bonus): H = (0, 1, 0, 1), A = (+1, +1, −1, −1), k = 1.
    # H̃ = (0, 1, 0, 1); u = (1, e⁻¹, 1, e⁻¹); g_conf = 2/(1 + e⁻¹) ≈ 1.462, g_unc = 2e⁻¹/(1 + e⁻¹) ≈ 0.538.
    # A′ = (1.462, 0.538, −1.462, −0.538); mean A′ = 0 ⇒ A″ = A′.
    h = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    out = empg.modulate_step_advantages(adv, h, [0, 1, 2, 3], [0, 0, 0, 0])
    g_conf, g_unc = 2 / (1 + E(-1)), 2 * E(-1) / (1 + E(-1))
    close(out, [g_conf, g_unc, -g_conf, -g_unc])
    assert out[0] > 1.0  # confident success amplified
    assert out[2] < -1.0  # confident failure penalised harder ("hallucinated confidence")
    assert 0 < out[1] < 1.0 and -1.0 < out[3] < 0  # uncertain steps damped either way


def test_scale_has_batch_mean_one_and_stats():
    gen = torch.Generator().manual_seed(3)
    h = torch.rand(40, generator=gen, dtype=torch.float64) * 3
    t = empg.step_modulation_terms(torch.ones(40), h, torch.arange(40) // 4, torch.arange(40) % 4)
    close(t.scale.mean(), 1.0, atol=1e-7)
    assert (t.normalized_entropy >= 0).all() and (t.normalized_entropy < 1).all()
    stats = t.stats()
    assert all(key.startswith("empg/") for key in stats)
    assert stats["empg/scale_mean"] == pytest.approx(1.0, abs=1e-7)
    assert stats["empg/num_steps"] == 40.0


# --- edge cases of spec §3 -----------------------------------------------------------------------


def test_no_steps_returns_unchanged_copy():
    adv = torch.tensor([[0.5, -1.0, 2.0]])
    out = empg.modulate_advantages(adv, torch.zeros(1, 3), torch.full((1, 3), -1))
    assert torch.equal(out, adv) and out.data_ptr() != adv.data_ptr()
    empty = empg.modulate_step_advantages(torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0))
    assert empty.shape == (0,)
    assert empg.modulation_terms(adv, torch.zeros(1, 3), torch.full((1, 3), -1)).stats() == {"empg/num_steps": 0.0}


@pytest.mark.parametrize("h_value", [0.0, 0.7])
def test_all_entropies_equal(h_value):
    # H̃ = 0/(0 + ε) = 0; u = 1; g = 1/(1 + ε); f = 1. Trajectory 0 has 2 steps, trajectory 1 has 1.
    # A′ = (g·1 + ζ·1, g·1, g·(−2)) with ζ = 0.1; mean A′ = (0.1 + g·0)/3 = 0.1/3.
    h = torch.full((3,), h_value, dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -2.0], dtype=torch.float64)
    t = empg.step_modulation_terms(adv, h, [0, 0, 1], [0, 1, 0])
    g = 1 / (1 + EPS)
    assert torch.equal(t.normalized_entropy, torch.zeros(3, dtype=torch.float64))
    close(t.scale, [g] * 3, atol=1e-15)
    close(t.clarity, [1.0] * 3, atol=0)
    close(t.centred, [g + 0.1 - 0.1 / 3, g - 0.1 / 3, -2 * g - 0.1 / 3], atol=1e-12)
    assert torch.isfinite(t.centred).all()


def test_single_step_trajectory_gets_no_bonus():
    # Trajectory 7 has one step: bonus 0, so its A″ = g·A − mean A′ exactly.
    adv = torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64)
    t = empg.step_modulation_terms(adv, [0.2, 0.0, 1.0], [7, 3, 3], [0, 0, 1], zeta=0.5)
    # Sorted by (trajectory, step): (3, 0), (3, 1), (7, 0).
    assert t.trajectory.tolist() == [3, 3, 7]
    assert t.bonus[2].item() == 0.0 and t.bonus[1].item() == 0.0 and t.bonus[0].item() > 0
    close(t.centred[2], t.scale[2] * 0.5 - t.mean_modulated, atol=1e-15)


@pytest.mark.parametrize("bad", [NAN, float("inf"), -0.1])
def test_bad_entropy_on_step_token_raises(bad):
    ent = torch.tensor([[0.5, bad, 0.2]])
    with pytest.raises(ValueError, match="entropy"):
        empg.modulate_advantages(torch.ones(1, 3), ent, torch.tensor([[0, 0, -1]]))
    with pytest.raises(ValueError, match="step_entropy"):
        empg.modulate_step_advantages(torch.ones(2), torch.tensor([0.5, bad]), [0, 0], [0, 1])


def test_nan_on_non_step_token_is_fine():
    ids = torch.tensor([[0, 0, -1, 1]])
    clean = empg.modulate_advantages(torch.ones(1, 4), torch.tensor([[0.5, 1.0, 0.0, 2.0]]), ids)
    dirty = empg.modulate_advantages(
        torch.tensor([[1.0, 1.0, NAN, 1.0]]), torch.tensor([[0.5, 1.0, NAN, 2.0]]), ids
    )
    assert torch.isfinite(dirty[:, [0, 1, 3]]).all()
    torch.testing.assert_close(dirty[:, [0, 1, 3]], clean[:, [0, 1, 3]], rtol=0, atol=0)


def test_nan_advantage_on_step_token_raises():
    with pytest.raises(ValueError, match="advantages"):
        empg.modulate_advantages(torch.tensor([[NAN, 1.0]]), torch.ones(1, 2), torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="advantages"):
        empg.modulate_step_advantages(torch.tensor([float("inf")]), [1.0], [0], [0])


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="entropy"):
        empg.modulate_advantages(torch.ones(2, 4), torch.ones(2, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="step_ids"):
        empg.modulate_advantages(torch.ones(2, 4), torch.ones(2, 4), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="advantages"):
        empg.modulate_advantages(torch.ones(8), torch.ones(8), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="step_entropy"):
        empg.modulate_step_advantages(torch.ones(3), torch.ones(2), [0, 0, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="trajectory"):
        empg.modulate_step_advantages(torch.ones(3), torch.ones(3), [0, 0], [0, 1, 0])
    with pytest.raises(ValueError, match="step"):
        empg.modulate_step_advantages(torch.ones(3), torch.ones(3), [0, 0, 1], [0, 1])


def test_bad_ids_raise():
    with pytest.raises(ValueError, match="step_ids"):
        empg.modulate_advantages(torch.ones(1, 2), torch.ones(1, 2), torch.tensor([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="step_ids"):
        empg.modulate_advantages(torch.ones(1, 2), torch.ones(1, 2), torch.tensor([[0, -2]]))
    with pytest.raises(ValueError, match="trajectory"):
        empg.modulate_step_advantages(torch.ones(2), torch.ones(2), [0.0, 1.5], [0, 0])
    with pytest.raises(ValueError, match="step"):
        empg.modulate_step_advantages(torch.ones(2), torch.ones(2), [0, 0], [1, 1])  # duplicate (0, 1)
    # Whole-number floats are accepted as ids.
    out = empg.modulate_step_advantages(torch.ones(2), torch.ones(2), [0.0, 1.0], [0.0, 0.0])
    assert torch.isfinite(out).all()


def test_bad_hyper_parameters_raise():
    args = (torch.ones(1, 2), torch.ones(1, 2), torch.tensor([[0, 1]]))
    for name, value in (("k", -1.0), ("k_f", NAN), ("zeta", float("inf")), ("eps", 0.0)):
        with pytest.raises(ValueError, match=name):
            empg.modulate_advantages(*args, **{name: value})
    with pytest.raises(TypeError, match="zeta"):
        empg.modulate_advantages(*args, zeta="0.1")


def test_inputs_not_modified():
    gen = torch.Generator().manual_seed(5)
    adv = torch.randn(3, 10, generator=gen)
    ent = torch.rand(3, 10, generator=gen)
    ids = torch.tensor([[-1, 0, 0, 1, 1, -1, 2, 2, -1, -1]] * 3)
    copies = [x.clone() for x in (adv, ent, ids)]
    out = empg.modulate_advantages(adv, ent, ids)
    for x, c in zip((adv, ent, ids), copies):
        assert torch.equal(x, c)
    assert not torch.equal(out, adv)
    # numpy inputs, step layout
    a_np, h_np = np.array([1.0, -1.0, 0.5]), np.array([0.1, 0.9, 0.4])
    a_copy, h_copy = a_np.copy(), h_np.copy()
    out_np = empg.modulate_step_advantages(a_np, h_np, np.array([0, 0, 1]), np.array([0, 1, 0]))
    assert isinstance(out_np, torch.Tensor)
    assert np.array_equal(a_np, a_copy) and np.array_equal(h_np, h_copy)


# --- invariances and agreements -------------------------------------------------------------------


def _random_token_batch(seed, b=4, length=30, max_steps=5):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((b, length), -1)
    for r in range(b):
        pos = 1
        for s in range(int(torch.randint(0, max_steps + 1, (1,), generator=gen))):
            n = int(torch.randint(1, 4, (1,), generator=gen))
            if pos + n > length:
                break
            ids[r, pos : pos + n] = s
            pos += n + int(torch.randint(0, 3, (1,), generator=gen))
    ent = torch.rand(b, length, generator=gen, dtype=torch.float64) * 3
    adv = (torch.randn(b, 1, generator=gen, dtype=torch.float64)).expand(b, length).clone()
    return adv, ent, ids


def test_step_row_order_does_not_matter():
    gen = torch.Generator().manual_seed(11)
    adv = torch.randn(12, generator=gen, dtype=torch.float64)
    h = torch.rand(12, generator=gen, dtype=torch.float64)
    traj, step = torch.arange(12) // 3, torch.arange(12) % 3
    out = empg.modulate_step_advantages(adv, h, traj, step)
    perm = torch.randperm(12, generator=gen)
    out_perm = empg.modulate_step_advantages(adv[perm], h[perm], traj[perm], step[perm])
    close(out_perm, out[perm], atol=1e-12)


def test_batch_row_order_does_not_matter():
    adv, ent, ids = _random_token_batch(12, b=6)
    out = empg.modulate_advantages(adv, ent, ids)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    close(empg.modulate_advantages(adv[perm], ent[perm], ids[perm]), out[perm], atol=1e-12)


def test_values_at_tokens_in_no_step_do_not_matter():
    adv, ent, ids = _random_token_batch(13)
    out = empg.modulate_advantages(adv, ent, ids)
    off = ids < 0
    adv2, ent2 = adv.clone(), ent.clone()
    adv2[off] = 123.0
    ent2[off] = 55.0
    out2 = empg.modulate_advantages(adv2, ent2, ids)
    assert torch.equal(out2[~off], out[~off])
    assert (out2[off] == 123.0).all()  # returned unchanged


def test_token_and_step_layouts_agree():
    adv, ent, ids = _random_token_batch(14, b=5)
    out_tok = empg.modulate_advantages(adv, ent, ids, zeta=0.3, k=1.5)
    h, row, step = empg.step_entropies(ent, ids)
    out_step = empg.modulate_step_advantages(adv[row, 0], h, row, step, zeta=0.3, k=1.5)
    t = empg.modulation_terms(adv, ent, ids, zeta=0.3, k=1.5)
    for s in range(h.numel()):
        tok = out_tok[row[s]][ids[row[s]] == step[s]]
        close(tok, torch.full_like(tok, out_step[s].item()), atol=1e-12)
    close(t.centred, out_step, atol=1e-12)


def test_k0_zeta0_reduces_to_centred_advantage():
    # g = 1/(1 + ε), no bonus: A″ = A − mean over STEPS of A (not over trajectories).
    # Row 0 (A = 2) has 3 steps, row 1 (A = −1) has 1: mean = (3·2 − 1)/4 = 1.25 ⇒ 0.75 and −2.25.
    ids = torch.tensor([[0, 1, 1, 2, -1], [-1, 0, 0, -1, -1]])
    adv = torch.tensor([[2.0] * 5, [-1.0] * 5], dtype=torch.float64)
    ent = torch.rand(2, 5, dtype=torch.float64)
    out = empg.modulate_advantages(adv, ent, ids, k=0, zeta=0)
    close(out, [[0.75, 0.75, 0.75, 0.75, 2.0], [-1.0, -2.25, -2.25, -1.0, -1.0]], atol=1e-7)
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(20, generator=gen, dtype=torch.float64)
    h = torch.rand(20, generator=gen, dtype=torch.float64)
    out_s = empg.modulate_step_advantages(a, h, torch.arange(20) // 5, torch.arange(20) % 5, k=0, zeta=0)
    close(out_s, a - a.mean(), atol=1e-7)


_hparams = dict(
    k=st.floats(0, 3), k_f=st.floats(0, 3), zeta=st.floats(0, 1)
)


@st.composite
def token_batches(draw):
    b = draw(st.integers(1, 4))
    length = draw(st.integers(1, 10))
    ids = draw(st.lists(st.lists(st.integers(-1, 3), min_size=length, max_size=length), min_size=b, max_size=b))
    ent = draw(st.lists(st.lists(st.floats(0, 5), min_size=length, max_size=length), min_size=b, max_size=b))
    adv = draw(st.lists(st.lists(st.floats(-3, 3), min_size=length, max_size=length), min_size=b, max_size=b))
    return (torch.tensor(adv, dtype=torch.float64), torch.tensor(ent, dtype=torch.float64), torch.tensor(ids))


@settings(max_examples=60, deadline=None)
@given(token_batches(), st.fixed_dictionaries(_hparams))
def test_token_level_matches_reference(batch, hp):
    adv, ent, ids = batch
    fast = empg.modulate_advantages(adv, ent, ids, **hp)
    slow = reference.modulate_advantages_ref(adv, ent, ids, **hp)
    close(fast, slow, atol=1e-7)


@st.composite
def step_batches(draw):
    pairs = draw(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 5)), max_size=12, unique=True))
    n = len(pairs)
    h = draw(st.lists(st.floats(0, 5), min_size=n, max_size=n))
    a = draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n))
    traj = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    step = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    return torch.tensor(a, dtype=torch.float64), torch.tensor(h, dtype=torch.float64), traj, step


@settings(max_examples=60, deadline=None)
@given(step_batches(), st.fixed_dictionaries(_hparams))
def test_step_level_matches_reference(batch, hp):
    a, h, traj, step = batch
    fast = empg.modulate_step_advantages(a, h, traj, step, **hp)
    slow = reference.modulate_step_advantages_ref(a, h, traj, step, **hp)
    close(fast, slow, atol=1e-7)


# --- spec §7: one test per known mistake ---------------------------------------------------------


def test_mistake_normalising_over_token_entropies():
    # Step 0 tokens (0, 4) ⇒ H = 2; step 1 tokens (1, 1) ⇒ H = 1; step 2 tokens (3, 3) ⇒ H = 3.
    # Right (step level): min 1, max 3 ⇒ H̃ = (0.5, 0, 1).
    # Wrong (token level): min 0, max 4 ⇒ H̃ = (0.5, 0.25, 0.75).
    ids = torch.tensor([[0, 0, 1, 1, 2, 2]])
    ent = torch.tensor([[0.0, 4.0, 1.0, 1.0, 3.0, 3.0]], dtype=torch.float64)
    adv = torch.ones(1, 6, dtype=torch.float64)
    t = empg.modulation_terms(adv, ent, ids, zeta=0.0)
    close(t.normalized_entropy, [0.5, 0.0, 1.0])
    # With ζ = 0: A″ = g − mean g = g − 1, g = exp(−H̃)/mean(exp(−H̃)).
    u = [E(-0.5), 1.0, E(-1.0)]
    expected = [x / (sum(u) / 3) - 1 for x in u]
    out = empg.modulate_advantages(adv, ent, ids, zeta=0.0)
    close(out[0, [0, 2, 4]], expected)


def test_mistake_scaling_applied_once_per_step():
    # Three single-step trajectories, H = (0, 1, 2) ⇒ H̃ = (0, 0.5, 1), A = 1 each, ζ = 0.
    # Right: A″_s = g_s·1 − 1 with g = u/mean u, u = (1, e^-½, e⁻¹).
    # Wrong (whole batch × g once per step): every step gets (g0·g1·g2)·1 − ..., identical values.
    u = [1.0, E(-0.5), E(-1.0)]
    g = [x / (sum(u) / 3) for x in u]
    out = empg.modulate_step_advantages(torch.ones(3, dtype=torch.float64), [0.0, 1.0, 2.0], [0, 1, 2], [0, 0, 0], zeta=0)
    close(out, [x - 1 for x in g])
    # And per token: each token of a step carries its own step's g (once), not a product.
    ids = torch.tensor([[0, 0, 1, 1, 2, 2]])
    ent = torch.tensor([[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]])
    a = torch.tensor([[1.0, 3.0, 1.0, 3.0, 1.0, 3.0]], dtype=torch.float64)
    out_tok = empg.modulate_advantages(a, ent, ids, zeta=0)
    mean = sum(x * 2 for x in g) / 3  # step values use token-mean A = 2
    close(out_tok, [[g[0] - mean, 3 * g[0] - mean, g[1] - mean, 3 * g[1] - mean, g[2] - mean, 3 * g[2] - mean]])


def test_mistake_padding_counted_in_step_entropy():
    # Row 0: step 0 = tokens (1, 3), then 2 padding tokens (id −1, entropy 0) ⇒ H = 2 (wrong: 4/4 = 1).
    # Row 1: step 0 = (1) ⇒ H = 1; row 2: step 0 = (3) ⇒ H = 3.  Right H̃ = (0.5, 0, 1); wrong (0, 0, 1).
    ids = torch.tensor([[0, 0, -1, -1], [0, -1, -1, -1], [0, -1, -1, -1]])
    ent = torch.tensor([[1.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    t = empg.modulation_terms(torch.ones(3, 4), ent, ids)
    close(t.step_entropy, [2.0, 1.0, 3.0], atol=0)
    close(t.normalized_entropy, [0.5, 0.0, 1.0])
    h, _, _ = empg.step_entropies(ent, ids)
    close(h, [2.0, 1.0, 3.0], atol=0)


def test_mistake_bonus_on_every_row():
    # k = 0 (g = 1/(1+ε) ≈ 1), ζ = 0.5, H = (0, 2) on trajectory 0 (steps 0, 1) and H = 1 on trajectory 1.
    # H̃ = (0, 1, 0.5), f = (1, e⁻¹, e^-½). Only (0, 0) has a next step: bonus = 0.5·e⁻¹.
    # A = 0 everywhere ⇒ A′ = (0.5e⁻¹, 0, 0); mean = 0.5e⁻¹/3.
    # Wrong (bonus on every row, e.g. its own f or a wrapped-around next): the last steps get > 0 bonuses.
    t = empg.step_modulation_terms(torch.zeros(3, dtype=torch.float64), [0.0, 2.0, 1.0], [0, 0, 1], [0, 1, 0], k=0, zeta=0.5)
    close(t.bonus, [0.5 * E(-1.0), 0.0, 0.0])
    m = 0.5 * E(-1.0) / 3
    close(t.centred, [0.5 * E(-1.0) - m, -m, -m])
    # Concatenated rows: a row's last step and a row with one step get no bonus either.
    out = empg.modulate_advantages(torch.zeros(2, 3), [[0.0, 2.0, 9.0], [1.0, 0.0, 0.0]], [[0, 1, -1], [0, -1, -1]], k=0, zeta=0.5)
    close(out, [[0.5 * E(-1.0) - m, -m, 0.0], [-m, 0.0, 0.0]], atol=1e-7)


# A toy word-level tokenizer: the step structure must come from delimiter token ids, so two chat
# templates with different text give the same steps, and template-like words inside observations
# (which a text parser would count) are ignored.
_VOCAB: dict[str, int] = {}


def _tok(text: str) -> list[int]:
    return [_VOCAB.setdefault(w, len(_VOCAB) + 1) for w in text.split()]


def _dialogue(header: str, end: str) -> tuple[list[int], list[int]]:
    """Token ids of a 3-turn dialogue and a per-token label (step index or -1), by construction."""
    parts = [
        ("system: you are an agent . user: the task mentions assistant turns and " + end, -1),
        (header, -1),
        ("<think> go north </think> <action> north </action> " + end, 0),
        ("observation: you see an assistant statue . " + header.split()[0] + " is written here", -1),
        (header, -1),
        ("<action> take key </action> " + end, 1),
        ("observation: ok", -1),
        (header, -1),
        ("<action> open door </action> " + end, 2),
    ]
    toks, labels = [], []
    for text, label in parts:
        t = _tok(text)
        toks += t
        labels += [label] * len(t)
    return toks, labels


def test_mistake_step_index_from_prompt_text():
    results = []
    for header, end in (("<|im_start|> assistant", "<|im_end|>"), ("### Assistant :", "</s>")):
        toks, labels = _dialogue(header, end)
        ids = empg.step_ids_from_delimiters(torch.tensor([toks]), start=_tok(header), end=_tok(end))
        assert ids[0].tolist() == labels  # observation text mentioning "assistant" opens no step
        # Entropy is a function of the word (the end-of-turn token gets 0.3 in both templates).
        ent = torch.tensor([[0.3 if t in _tok(end) else 0.1 * (t % 7) for t in toks]], dtype=torch.float64)
        out = empg.modulate_advantages(torch.ones(1, len(toks), dtype=torch.float64), ent, ids)
        results.append(out[ids >= 0])
    # The step tokens are the same words in both templates (only the delimiters differ), so both
    # give identical modulated advantages.
    close(results[0], results[1], atol=1e-12)


def test_mistake_trainer_drops_entropies():
    # The `empg` estimator must refuse to run without entropies rather than silently return the baseline.
    rewards, group = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    ids = torch.tensor([[0, 0, 1], [0, -1, -1]])
    with pytest.raises(ValueError, match="token_entropy"):
        empg.compute_advantages("empg", empg.AdvantageInputs(rewards, group, step_ids=ids))
    with pytest.raises(ValueError, match="step_entropy"):
        empg.compute_advantages("empg", empg.AdvantageInputs(rewards, group, trajectory=[0, 0, 1], step=[0, 1, 0]))
    with pytest.raises(ValueError, match="step"):
        empg.compute_advantages("empg", empg.AdvantageInputs(rewards, group))
    # With entropies the result differs from the baseline, so a silent fallback would be visible.
    inputs = empg.AdvantageInputs(rewards, group, token_entropy=torch.tensor([[0.1, 0.1, 2.0], [1.0, 0.0, 0.0]]), step_ids=ids)
    with_empg = empg.compute_advantages("empg", inputs)
    baseline = empg.compute_advantages("grpo", inputs)
    assert not torch.allclose(with_empg[ids >= 0], baseline[ids >= 0])


# --- the step-slicing loop (the benchmark's speed reference, issue 17) ----------------------------


def test_step_slicing_loop_matches_the_vectorised_path():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_modulation as bm

    token_ids, mask, adv, ent, turns = bm.make_batch(rows=5, length=4096, seed=7)
    # Make one row end in a step cut off by the length limit (no end-of-turn, then padding), and
    # give another row no steps at all.
    row = token_ids[1, : int(mask[1].sum())].tolist()
    cut = len(row) - 1 - row[::-1].index(bm.END[0])  # the last end-of-turn of row 1
    token_ids[1, cut:] = bm.PAD
    mask = token_ids != bm.PAD
    token_ids[3] = torch.where(token_ids[3] == bm.START[0], 5, token_ids[3])
    for hp in ({}, {"k": 2.0, "k_f": 0.5, "zeta": 0.3}):
        ids = empg.step_ids_from_delimiters(token_ids, start=bm.START, end=bm.END, mask=mask)
        assert int(ids[3].max()) == -1 and int(ids[0].max()) + 1 == turns[0]
        fast = empg.modulate_advantages(adv.double(), ent.double(), ids, **hp)
        loop = reference.step_slicing_modulation_ref(token_ids, adv.double(), ent.double(), start=bm.START, end=bm.END,
                                                     mask=mask, **hp)
        close(loop, fast, atol=1e-12)
        # and against the token-level reference loops
        close(reference.modulate_advantages_ref(adv, ent, ids, **hp), fast, atol=1e-5)
    # No step anywhere: unchanged.
    none = torch.full_like(token_ids, 3)
    torch.testing.assert_close(reference.step_slicing_modulation_ref(none, adv, ent, start=bm.START, end=bm.END), adv)



def test_step_entropies_accumulate_in_float64():
    # A near-uniform policy: float32 token entropies around 10.4 nats whose step means differ by
    # ~1e-4 nats. Eq. 12 divides by that range, so float32 sums over 300-token steps (error ~1e-3
    # on a sum of ~3000) would move H̃ by ~1e-2; float64 accumulation keeps it at float32 input precision.
    gen = torch.Generator().manual_seed(8)
    b, n_steps, size = 4, 5, 300
    ids = torch.arange(n_steps).repeat_interleave(size).repeat(b, 1)
    offsets = torch.rand(b, n_steps, 1, generator=gen, dtype=torch.float64) * 1e-4
    ent64 = (10.4 + offsets + 1e-3 * torch.rand(b, n_steps, size, generator=gen, dtype=torch.float64)).reshape(b, -1)
    ent = ent64.float()
    terms = empg.modulation_terms(torch.ones(b, n_steps * size), ent, ids)
    h = ent.double().reshape(b, n_steps, size).mean(-1).reshape(-1)  # exact means of the float32 inputs
    close(terms.step_entropy, h, atol=1e-12)
    close(terms.normalized_entropy, (h - h.min()) / (h.max() - h.min() + EPS), atol=1e-6)
    close(empg.step_entropies(ent64, ids)[0], ent64.reshape(b, n_steps, size).mean(-1).reshape(-1), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_half_and_full_precision_inputs(dtype):
    adv, ent, ids = _random_token_batch(31, b=3, length=12)
    out = empg.modulate_advantages(adv.to(dtype), ent.to(dtype), ids)
    assert out.dtype == dtype
    expected = reference.modulate_advantages_ref(adv.to(dtype).double(), ent.to(dtype).double(), ids)
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    close(out.double(), expected, atol=tol)
    h, _, _ = empg.step_entropies(ent.to(dtype), ids)
    assert h.dtype == dtype
