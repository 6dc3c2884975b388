"""Tests of the toy policies (toy_envs/policies.py): shapes, hand values, Proposition 1, hashing, bad input."""

import math

import pytest
import torch

import empg
from toy_envs.policies import FeatureBatch, LogLinearPolicy, TabularSoftmaxPolicy, hash_features, score_norm_sq, tokenize


def _table_policy():
    pol = TabularSoftmaxPolicy(3, 4)
    with torch.no_grad():
        # state 0: uniform; state 1: logits (log 1, log 1, log 2, log 4) -> π = (1, 1, 2, 4) / 8; state 2: one-hot-ish
        pol.table[1] = torch.log(torch.tensor([1.0, 1.0, 2.0, 4.0]))
        pol.table[2] = torch.tensor([10.0, 0.0, 0.0, 0.0])
    return pol


def test_tabular_hand_values():
    pol = _table_policy()
    states = pol.collate([pol.encode(0), pol.encode(1)])
    z = pol.logits(states)
    assert z.shape == (2, 4)
    h = pol.entropy(states)
    # uniform over 4: log 4; π = (1/8, 1/8, 1/4, 1/2): H = 2·(1/8)·log 8 + (1/4)·log 4 + (1/2)·log 2 = 1.75 log 2
    assert torch.allclose(h, torch.tensor([math.log(4), 1.75 * math.log(2)]), atol=1e-6)
    # Rényi-2: Σπ² = 1/4 (uniform) and (1 + 1 + 4 + 16)/64 = 22/64
    assert torch.allclose(empg.renyi2_entropy(pol.logits(states)), torch.tensor([math.log(4), -math.log(22 / 64)]), atol=1e-6)
    assert torch.allclose(empg.expected_score_norm_sq(pol.logits(states)), torch.tensor([0.75, 1 - 22 / 64]), atol=1e-6)
    # log π(a): state 1 action 3 -> log(1/2); state 0 action 2 -> log(1/4)
    lp = pol.log_prob(states, torch.tensor([2, 3]))
    assert torch.allclose(lp, torch.tensor([math.log(0.25), math.log(0.5)]), atol=1e-6)
    # ‖e_a − π‖² at state 1, a = 3: (1/8)² + (1/8)² + (1/4)² + (1/2)² = 22/64 ... = 1 − 2·(1/2) + 22/64
    assert torch.allclose(score_norm_sq(pol.logits(states), torch.tensor([0, 3])), torch.tensor([1 - 0.5 + 0.25, 22 / 64]), atol=1e-6)
    assert torch.allclose(torch.softmax(z, -1)[1], torch.tensor([0.125, 0.125, 0.25, 0.5]), atol=1e-6)


def test_tabular_score_is_autograd_gradient_of_the_table_row():
    """∇_θ log π(a|s) is e_a − π in row s and 0 elsewhere, so its squared norm is score_norm_sq."""
    pol = _table_policy()
    states = pol.collate([1])
    lp = pol.log_prob(states, torch.tensor([3]))
    (grad,) = torch.autograd.grad(lp.sum(), pol.table)
    assert torch.count_nonzero(grad[[0, 2]]) == 0
    assert torch.allclose(grad[1], torch.tensor([0.0, 0.0, 0.0, 1.0]) - torch.tensor([0.125, 0.125, 0.25, 0.5]))
    assert torch.allclose(grad.pow(2).sum(), score_norm_sq(pol.logits(states), torch.tensor([3])).sum())


def test_prop1_monte_carlo_float64():
    """E_{a∼π} ‖e_a − π‖² = 1 − exp(−H₂): Monte-Carlo with 40k Gumbel-max samples per state (seed 0).

    Tolerance: the per-sample value lies in [0, 2], so the std of the mean is < 1/sqrt(4e4) = 0.005;
    we allow 0.02 (4 std).
    """
    torch.manual_seed(0)
    pol = TabularSoftmaxPolicy(5, 6, init_std=1.5).double()
    gen = torch.Generator().manual_seed(0)
    n = 40_000
    for s in range(5):
        states = pol.collate([s] * n)
        a = pol.sample(states, generator=gen)
        mc = score_norm_sq(pol.logits(states), a).mean()
        analytic = 1 - torch.exp(-empg.renyi2_entropy(pol.logits(pol.collate([s]))))[0]
        assert abs(float(mc.detach() - analytic.detach())) < 0.02
        # The sampler is softmax(z): empirical frequencies within 0.01 of π (std <= 0.0025, so 4 std).
        freq = torch.bincount(a, minlength=6).double() / n
        assert torch.allclose(freq, torch.softmax(pol.logits(pol.collate([s])), -1)[0].detach(), atol=0.01)


def test_tabular_bad_input():
    pol = TabularSoftmaxPolicy(3, 4)
    with pytest.raises(ValueError, match="obs"):
        pol.encode(3)
    with pytest.raises(TypeError, match="obs"):
        pol.encode("hello")
    with pytest.raises(ValueError, match="actions"):
        pol.log_prob(pol.collate([0]), torch.tensor([4]))
    with pytest.raises(ValueError, match="actions"):
        pol.log_prob(pol.collate([0, 1]), torch.tensor([0]))
    with pytest.raises(TypeError, match="actions"):
        pol.log_prob(pol.collate([0]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="actions"):
        score_norm_sq(pol.logits(pol.collate([0])), torch.tensor([4]))
    with pytest.raises(TypeError, match="actions"):
        score_norm_sq(pol.logits(pol.collate([0])), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="num_states"):
        TabularSoftmaxPolicy(0, 4)
    with pytest.raises(ValueError, match="states"):
        pol.logits(torch.tensor([-1]))


def test_tokenize_and_hash_features():
    assert tokenize("-= Kitchen =-  You see a KEY.") == ["kitchen", "you", "see", "a", "key"]
    dim = 2**20  # large: collisions are unlikely, so every feature has its own bucket
    idx, val = hash_features("a key, a key", "take key", dim)
    # keys: bias, c:take, c:key, b:take_key, and crosses {take, key} × {a, key} (obs words de-duplicated) -> 8
    assert sum(val) == 8.0 and len(idx) == 8
    assert list(idx) == sorted(idx) and all(0 <= i < dim for i in idx)
    assert hash_features("a key, a key", "take key", dim) == (idx, val)  # deterministic (crc32, not hash())
    # dim = 1: everything collides into bucket 0 with the total count
    assert hash_features("a key", "take key", 1) == ((0,), (8.0,))
    with pytest.raises(ValueError, match="dim"):
        hash_features("a", "b", 0)
    with pytest.raises(TypeError, match="obs"):
        hash_features(None, "b", 4)


def test_loglinear_padding_and_values():
    pol = LogLinearPolicy(num_features=64)
    recs = [pol.encode("room with a key", {"admissible_commands": ["take key", "go north", "look"]}),
            pol.encode("dark room", commands=["look"])]
    batch = pol.collate(recs)
    assert isinstance(batch, FeatureBatch) and len(batch) == 2 and batch.max_actions == 3
    z = pol.logits(batch)
    assert z.shape == (2, 3)
    assert torch.isinf(z[1, 1:]).all() and torch.isfinite(z[0]).all()
    # zero weights -> uniform over each step's commands: H = log 3 and log 1 = 0
    assert torch.allclose(pol.entropy(batch), torch.tensor([math.log(3), 0.0]), atol=1e-6)
    assert torch.allclose(empg.expected_score_norm_sq(pol.logits(batch)), torch.tensor([2 / 3, 0.0]), atol=1e-6)
    with torch.no_grad():
        pol.weight.normal_()
    # logits are w · φ: recompute the first command's logit by hand from its sparse features
    (idx, val) = recs[0][0]
    expected = sum(float(pol.weight[i]) * v for i, v in zip(idx, val))
    assert abs(float(pol.logits(batch)[0, 0]) - expected) < 1e-5
    lp = pol.log_prob(batch, torch.tensor([0, 0]))
    assert float(lp[1]) == pytest.approx(0.0, abs=1e-6)  # the only command has probability 1
    # sampling never picks a padded (-inf) action
    a = pol.sample(pol.collate([recs[1]] * 500), generator=torch.Generator().manual_seed(0))
    assert int(a.max()) == 0
    with pytest.raises(ValueError, match="actions"):
        pol.log_prob(batch, torch.tensor([0, 2]))  # step 1 has one command only
    with pytest.raises(ValueError, match="admissible_commands"):
        pol.encode("x", {})
    with pytest.raises(TypeError, match="obs"):
        pol.encode(3, commands=["look"])


def test_loglinear_gradient_is_feature_weighted_score():
    """∇_w log π(c|o) = Σ_c' (1[c'=c] − π(c')) φ(o, c')  (log-linear softmax)."""
    pol = LogLinearPolicy(num_features=32).double()
    with torch.no_grad():
        pol.weight.normal_(generator=torch.Generator().manual_seed(1))
    rec = pol.encode("a small key on the table", commands=["take key", "open door", "go east"])
    batch = pol.collate([rec])
    lp = pol.log_prob(batch, torch.tensor([1]))
    (grad,) = torch.autograd.grad(lp.sum(), pol.weight)
    p = torch.softmax(pol.logits(batch), -1)[0]
    phi = torch.zeros(3, 32, dtype=torch.float64)
    for a, (idx, val) in enumerate(rec):
        phi[a, list(idx)] = torch.tensor(val, dtype=torch.float64)
    expected = (torch.nn.functional.one_hot(torch.tensor(1), 3).double() - p) @ phi
    assert torch.allclose(grad, expected, atol=1e-10)


def test_tabular_rejects_non_integer_obs_and_non_finite_init():
    """A float observation must not be truncated to a state id, and a NaN/inf init_std must not give NaN logits."""
    import numpy as np

    pol = TabularSoftmaxPolicy(3, 4)
    assert pol.encode(np.int64(2)) == 2 and pol.encode(np.array(1)) == 1
    for bad in (1.7, 1.0, True, np.float32(1.0), torch.tensor(1.0)):
        with pytest.raises(TypeError, match="obs"):
            pol.encode(bad)
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="init_std"):
            TabularSoftmaxPolicy(3, 4, init_std=bad)
