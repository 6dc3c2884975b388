"""Entropies and Proposition 1 (spec §2) against hand-computed definitions, autograd and Monte Carlo."""

import math

import numpy as np
import pytest
import torch

import empg
from empg import reference

NEG_INF = float("-inf")


# --- Shannon and Rényi-2 against hand computations ----------------------------------------------


def test_uniform_over_four_is_log4():
    # π = (1/4, 1/4, 1/4, 1/4): H = −4 · (1/4) log(1/4) = log 4; H₂ = −log(4 · 1/16) = log 4.
    z = torch.zeros(4, dtype=torch.float64)
    assert empg.token_entropy(z).item() == pytest.approx(math.log(4), abs=1e-12)
    assert empg.renyi2_entropy(z).item() == pytest.approx(math.log(4), abs=1e-12)
    # Prop. 1: 1 − Σπ² = 1 − 4/16 = 0.75
    assert empg.expected_score_norm_sq(z).item() == pytest.approx(0.75, abs=1e-12)


def test_two_point_distribution_by_hand():
    # z = (0, log 3) ⇒ π = (1/4, 3/4).
    # H  = −(1/4 log 1/4 + 3/4 log 3/4) = log 4 − (3/4) log 3 ≈ 1.386294 − 0.823959 = 0.562335
    # H₂ = −log(1/16 + 9/16) = log(16/10) = log 1.6 ≈ 0.470004
    # 1 − Σπ² = 1 − 10/16 = 0.375
    z = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    assert empg.token_entropy(z).item() == pytest.approx(math.log(4) - 0.75 * math.log(3), abs=1e-12)
    assert empg.renyi2_entropy(z).item() == pytest.approx(math.log(1.6), abs=1e-12)
    assert empg.expected_score_norm_sq(z).item() == pytest.approx(0.375, abs=1e-12)


def test_masked_action_gives_zero_entropy():
    # z = (0, −inf) ⇒ π = (1, 0): H = −1·log 1 − 0·log 0 = 0 (with 0 log 0 = 0); H₂ = −log 1 = 0.
    z = torch.tensor([[0.0, NEG_INF], [NEG_INF, 0.0]])
    assert torch.equal(empg.token_entropy(z), torch.zeros(2))
    assert torch.equal(empg.renyi2_entropy(z), torch.zeros(2))
    assert torch.allclose(empg.expected_score_norm_sq(z), torch.zeros(2))
    # −inf on one of three actions: uniform over the other two ⇒ H = H₂ = log 2.
    z3 = torch.tensor([0.0, NEG_INF, 0.0], dtype=torch.float64)
    assert empg.token_entropy(z3).item() == pytest.approx(math.log(2), abs=1e-12)
    assert empg.renyi2_entropy(z3).item() == pytest.approx(math.log(2), abs=1e-12)


def test_random_logits_match_plain_loop_reference():
    z = torch.randn(5, 3, 7, dtype=torch.float64) * 3
    torch.testing.assert_close(empg.token_entropy(z), reference.token_entropy_ref(z), rtol=0, atol=1e-12)
    torch.testing.assert_close(empg.renyi2_entropy(z), reference.renyi2_entropy_ref(z), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        empg.expected_score_norm_sq(z), reference.expected_score_norm_sq_ref(z), rtol=0, atol=1e-12
    )


def test_renyi2_is_at_most_shannon():
    # H₂ ≤ H for every distribution (Rényi entropies decrease in their order).
    z = torch.randn(200, 6, dtype=torch.float64) * 4
    assert (empg.renyi2_entropy(z) <= empg.token_entropy(z) + 1e-12).all()


# --- stability, chunking, dtype, device, dim ------------------------------------------------------


def test_huge_logits_are_stable():
    # exp(1e4) overflows: a naive softmax gives NaN. π = (1, ≈0, ≈0) ⇒ H ≈ 0; (1e4, 1e4) ⇒ log 2.
    z = torch.tensor([[1e4, 0.0, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])
    h = empg.token_entropy(z)
    h2 = empg.renyi2_entropy(z)
    assert torch.isfinite(h).all() and torch.isfinite(h2).all()
    assert h[0].item() == pytest.approx(0.0, abs=1e-6)
    assert h[1].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[2].item() == pytest.approx(math.log(3), abs=1e-5)  # equal logits, however large
    assert h2[1].item() == pytest.approx(math.log(2), abs=1e-6)
    assert torch.isfinite(empg.expected_score_norm_sq(z)).all()


def test_chunking_equals_unchunked():
    z = torch.randn(4, 6, 50)
    full = empg.token_entropy(z, chunk_bytes=2**30)  # one chunk
    for chunk_bytes in (1, 4 * 50, 4 * 50 * 5 + 7):  # 1 row per chunk, 1 row, 5 rows (ragged last)
        torch.testing.assert_close(empg.token_entropy(z, chunk_bytes=chunk_bytes), full, rtol=0, atol=0)


def test_dtype_and_device_are_kept():
    z64 = torch.randn(3, 11, dtype=torch.float64)
    out64 = empg.token_entropy(z64)
    assert out64.dtype == torch.float64 and out64.device == z64.device
    for fn in (empg.token_entropy, empg.renyi2_entropy, empg.expected_score_norm_sq):
        zb = z64.to(torch.bfloat16)
        out = fn(zb)
        assert out.dtype == torch.bfloat16 and out.device == zb.device and out.shape == (3,)
        # bfloat16 has an 8-bit mantissa: relative error ~ 2^-8 ≈ 0.4 %; allow 2 %.
        torch.testing.assert_close(out.double(), fn(zb.double()), rtol=2e-2, atol=2e-2)


def test_numpy_input_is_converted():
    z = np.log(np.array([[0.25, 0.25, 0.5]]))
    # H = 2 · (1/4) log 4 + (1/2) log 2 = (3/2) log 2
    out = empg.token_entropy(z)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert out.item() == pytest.approx(1.5 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("fn", [empg.token_entropy, empg.renyi2_entropy, empg.expected_score_norm_sq])
def test_dim_argument(fn):
    z = torch.randn(5, 3, 2, dtype=torch.float64)  # action axis 0 (5 actions)
    moved = z.movedim(0, -1)  # [3, 2, 5]
    torch.testing.assert_close(fn(z, dim=0), fn(moved), rtol=0, atol=1e-14)
    torch.testing.assert_close(fn(z.movedim(0, 1), dim=1), fn(moved), rtol=0, atol=1e-14)
    torch.testing.assert_close(fn(moved, dim=2), fn(moved, dim=-1), rtol=0, atol=0)


def test_entropy_gradient_matches_analytic():
    # dH/dz_j = −π_j (log π_j + H)   (differentiate H = −Σ π log π with dπ_i/dz_j = π_i(δ_ij − π_j)).
    z = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    empg.token_entropy(z).sum().backward()
    p = torch.softmax(z.detach(), -1)
    h = -(p * p.log()).sum(-1, keepdim=True)
    torch.testing.assert_close(z.grad, -p * (p.log() + h), rtol=0, atol=1e-12)


def test_gradient_is_finite_with_masked_actions():
    # With z = (0, −inf, log 3): π = (1/4, 0, 3/4); dH/dz_j = −π_j (log π_j + H), 0 for the masked action.
    z = torch.tensor([0.0, NEG_INF, math.log(3.0)], dtype=torch.float64, requires_grad=True)
    empg.token_entropy(z).backward()
    h = math.log(4) - 0.75 * math.log(3)
    expected = [-0.25 * (math.log(0.25) + h), 0.0, -0.75 * (math.log(0.75) + h)]
    torch.testing.assert_close(z.grad, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


def test_step_entropies_mean_over_step_tokens_only():
    # row 0: step 0 = tokens (1, 2) ⇒ (1+2)/2 = 1.5; step 1 = token 3 ⇒ 3; the 9 is in no step.
    # row 1: step 0 = tokens (5, 6, 7) ⇒ 6; the 4 is in no step.
    ent = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 7.0]])
    ids = torch.tensor([[0, 0, 1, -1], [-1, 0, 0, 0]])
    h, row, step = empg.step_entropies(ent, ids)
    assert h.tolist() == [1.5, 3.0, 6.0]
    assert row.tolist() == [0, 0, 1] and step.tolist() == [0, 1, 0]


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [empg.token_entropy, empg.renyi2_entropy, empg.expected_score_norm_sq])
def test_bad_logits_raise_naming_the_argument(fn):
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor(1.0))  # scalar: no action axis
    with pytest.raises(ValueError, match="logits"):
        fn(torch.zeros(3, 0))  # empty action axis
    with pytest.raises(ValueError, match="dim"):
        fn(torch.zeros(3, 4), dim=2)
    with pytest.raises(TypeError, match="logits"):
        fn("not logits")
    with pytest.raises(TypeError, match="logits"):
        fn(torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor([0.0, float("nan")]))  # never a silent NaN
    with pytest.raises(ValueError, match="logits"):
        fn(torch.tensor([NEG_INF, NEG_INF]))  # no action left


def test_bad_chunk_bytes_and_step_inputs():
    with pytest.raises(ValueError, match="chunk_bytes"):
        empg.token_entropy(torch.zeros(2, 3), chunk_bytes=0)
    with pytest.raises(ValueError, match="step_ids"):
        empg.step_entropies(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="entropy"):
        empg.step_entropies(torch.tensor([[float("nan"), 0.0]]), torch.tensor([[0, 0]]))


# --- Proposition 1 --------------------------------------------------------------------------------


def _score_norms_by_autograd(z: torch.Tensor) -> torch.Tensor:
    """‖∇_z log π(a)‖² for every action a of the 1-D logits z, by autograd."""
    norms = []
    for a in range(z.numel()):
        zz = z.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.log_softmax(zz, -1)[a], zz)
        norms.append((grad * grad).sum())
    return torch.stack(norms)


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_proposition1_closed_form_against_autograd(scale):
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        z = torch.randn(6, generator=gen, dtype=torch.float64) * scale
        p = torch.softmax(z, -1)
        by_autograd = (p * _score_norms_by_autograd(z)).sum()  # Σ_a π(a) ‖∇ log π(a)‖²
        closed = empg.expected_score_norm_sq(z)
        via_h2 = 1.0 - torch.exp(-empg.renyi2_entropy(z))
        assert closed.item() == pytest.approx(by_autograd.item(), abs=1e-12)
        assert via_h2.item() == pytest.approx(by_autograd.item(), abs=1e-12)


def test_proposition1_monte_carlo():
    # a_n ∼ π i.i.d., X_n = ‖∇_z log π(a_n)‖² (by autograd); the sample mean estimates E X.
    # Tolerance: 5 standard errors (sample std / √n): a false failure has probability < 1e-6,
    # while a wrong formula (e.g. 1 − π_max, or Σπ²) is off by far more (checked below).
    gen = torch.Generator().manual_seed(1234)
    z = torch.tensor([2.0, 0.5, -1.0, 0.0, 1.0], dtype=torch.float64)
    p = torch.softmax(z, -1)
    norms = _score_norms_by_autograd(z)
    n = 200_000
    actions = torch.multinomial(p, n, replacement=True, generator=gen)
    x = norms[actions]
    estimate = x.mean().item()
    stderr = x.std().item() / math.sqrt(n)
    exact = empg.expected_score_norm_sq(z).item()
    assert abs(estimate - exact) < 5 * stderr
    assert stderr < 2e-3  # the test has power: 5 stderr is small next to the value (~0.65)
    assert abs(exact - (1 - p.max().item())) > 20 * stderr


def test_proposition1_low_entropy_means_small_gradients():
    # Consequence of Prop. 1: E‖∇ log π‖² grows with entropy along a temperature sweep.
    z = torch.tensor([3.0, 1.0, 0.0, -1.0], dtype=torch.float64)
    temps = torch.tensor([0.1, 0.3, 1.0, 3.0, 10.0], dtype=torch.float64)
    zs = z / temps[:, None]
    h, g = empg.token_entropy(zs), empg.expected_score_norm_sq(zs)
    assert (h.diff() > 0).all() and (g.diff() > 0).all()
