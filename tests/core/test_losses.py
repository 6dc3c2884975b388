"""Policy losses (spec §5): clipped surrogate with clip-higher and dual-clip, aggregations, k3 KL, REINFORCE."""

import math

import pytest
import torch

import empg

# Per-token table (ε_low = 0.2, ε_high = 0.28 ⇒ the ratio is clipped to [0.8, 1.28]):
#   ρ     A    min(ρA, clip(ρ)A)          ℓ = −min(...)   clipped?
#   1.10  +1   min(1.10, 1.10) = 1.10     −1.10           no  (inside)
#   1.50  +1   min(1.50, 1.28) = 1.28     −1.28           yes
#   0.50  +1   min(0.50, 0.80) = 0.50     −0.50           no  (pessimistic branch is ρA)
#   0.50  −1   min(−0.50, −0.80) = −0.80   0.80           yes
#   1.50  −1   min(−1.50, −1.28) = −1.50   1.50           no
#   1.25  +1   min(1.25, 1.25) = 1.25     −1.25           no  (symmetric 0.2 clipping would clip it)
#   0.75  −1   min(−0.75, −0.80) = −0.80   0.80           yes
# token-mean: (−1.10 − 1.28 − 0.50 + 0.80 + 1.50 − 1.25 + 0.80)/7 = −1.03/7 = −0.147142857
RHO = [1.10, 1.50, 0.50, 0.50, 1.50, 1.25, 0.75]
ADV = [1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0]
PER_TOKEN = [-1.10, -1.28, -0.50, 0.80, 1.50, -1.25, 0.80]


def _logps(rho):
    old = torch.linspace(-2.0, -0.5, len(rho), dtype=torch.float64)
    return old + torch.log(torch.tensor(rho, dtype=torch.float64)), old


def test_clipped_loss_by_hand():
    logp, old = _logps(RHO)
    loss, metrics = empg.clipped_policy_loss(logp, old, torch.tensor(ADV, dtype=torch.float64))
    assert loss.item() == pytest.approx(-1.03 / 7, abs=1e-12)
    assert metrics["policy/clip_frac"] == pytest.approx(3 / 7)
    assert metrics["loss/policy"] == pytest.approx(-1.03 / 7, abs=1e-12)
    assert metrics["policy/ratio_mean"] == pytest.approx(sum(RHO) / 7, abs=1e-12)
    # Symmetric PPO clipping (0.2/0.2) clips the ρ = 1.25 token too (ℓ = −1.20 instead of −1.25), and
    # the ρ = 1.5 token at 1.2 (ℓ = −1.20 instead of −1.28): (−1.03 + 0.05 + 0.08)/7 = −0.90/7.
    loss_sym, m_sym = empg.clipped_policy_loss(logp, old, torch.tensor(ADV), clip_high=0.2)
    assert loss_sym.item() == pytest.approx(-0.90 / 7, abs=1e-6)
    assert m_sym["policy/clip_frac"] == pytest.approx(4 / 7)


def test_clipped_tokens_get_no_gradient():
    # d ℓ/d logp = −A ρ on unclipped tokens, 0 on clipped ones; token-mean divides by 7.
    logp, old = _logps(RHO)
    logp.requires_grad_(True)
    loss, _ = empg.clipped_policy_loss(logp, old, torch.tensor(ADV, dtype=torch.float64))
    loss.backward()
    clipped = [False, True, False, True, False, False, True]
    expected = [0.0 if c else -a * r / 7 for r, a, c in zip(RHO, ADV, clipped)]
    torch.testing.assert_close(logp.grad, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)


def test_dual_clip():
    # c = 3, A < 0: ℓ = min(ℓ, −A·c) = min(ℓ, 3). ρ = 5, A = −1: ℓ = max(5, 1.28) = 5 → capped at 3.
    # ρ = 2, A = −1: ℓ = 2 < 3, unchanged. ρ = 5, A = +1: ℓ = −min(5, 1.28) = −1.28, dual-clip does not apply.
    logp, old = _logps([5.0, 2.0, 5.0])
    adv = torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64)
    loss, m = empg.clipped_policy_loss(logp, old, adv, dual_clip=3.0, agg="seq-mean-token-sum")
    # 1-D input: each entry is its own row, so seq-mean-token-sum is the plain mean: (3 + 2 − 1.28)/3
    assert loss.item() == pytest.approx((3 + 2 - 1.28) / 3, abs=1e-12)
    assert m["policy/dual_clip_frac"] == pytest.approx(1 / 3)
    loss_no, _ = empg.clipped_policy_loss(logp, old, adv)
    assert loss_no.item() == pytest.approx((5 + 2 - 1.28) / 3, abs=1e-12)


# values [[1, 2, 3], [4, 5, 6], [7, 8, 9]], mask [[1, 1, 0], [1, 0, 0], [0, 0, 0]]:
#   token-mean          = (1 + 2 + 4)/3 = 7/3
#   seq-mean-token-mean = ((1 + 2)/2 + 4/1)/2 = (1.5 + 4)/2 = 2.75   (the empty row is skipped)
#   seq-mean-token-sum  = ((1 + 2) + 4)/2 = 3.5
VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]]).bool()


@pytest.mark.parametrize("mode, expected", [("token-mean", 7 / 3), ("seq-mean-token-mean", 2.75), ("seq-mean-token-sum", 3.5)])
def test_aggregations_by_hand(mode, expected):
    assert empg.aggregate(VALUES, MASK, mode).item() == pytest.approx(expected, abs=1e-12)
    # Masked-out values are never read, even NaN/inf.
    dirty = VALUES.clone()
    dirty[0, 2], dirty[2, 0] = float("nan"), float("inf")
    assert empg.aggregate(dirty, MASK, mode).item() == pytest.approx(expected, abs=1e-12)
    # An empty mask gives 0, not NaN.
    assert empg.aggregate(VALUES, torch.zeros_like(MASK), mode).item() == 0.0


def test_aggregation_reaches_the_loss():
    # All ratios 1 (logp = old), A = values ⇒ per-token ℓ = −A: each loss is −aggregate(A).
    adv = VALUES
    for mode, expected in (("token-mean", 7 / 3), ("seq-mean-token-mean", 2.75), ("seq-mean-token-sum", 3.5)):
        loss, _ = empg.clipped_policy_loss(torch.zeros(3, 3), torch.zeros(3, 3), adv, MASK, agg=mode)
        assert loss.item() == pytest.approx(-expected, abs=1e-6)
    with pytest.raises(ValueError, match="mode"):
        empg.aggregate(VALUES, MASK, "sum")


def test_kl_k3_by_hand():
    # r = ref − logp; k3 = eʳ − r − 1.
    # logp = log 0.5, ref = log 0.25: r = log 0.5 ⇒ 0.5 + 0.693147 − 1 = 0.193147
    # logp = log 0.5, ref = log 0.75: r = log 1.5 ⇒ 1.5 − 0.405465 − 1 = 0.094535
    # equal ⇒ 1 − 0 − 1 = 0
    logp = torch.log(torch.tensor([0.5, 0.5, 0.3], dtype=torch.float64))
    ref = torch.log(torch.tensor([0.25, 0.75, 0.3], dtype=torch.float64))
    k3 = empg.kl_k3(logp, ref)
    expected = [0.5 + math.log(2) - 1, 1.5 - math.log(1.5) - 1, 0.0]
    torch.testing.assert_close(k3, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
    loss, m = empg.kl_penalty(logp, ref, coef=0.01)
    assert loss.item() == pytest.approx(0.01 * sum(expected) / 3, abs=1e-12)
    assert m["loss/kl"] == pytest.approx(sum(expected) / 3, abs=1e-12) and m["loss/kl_coef"] == 0.01


def test_kl_k3_nonnegative_and_zero_when_equal():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, generator=gen) * 3, torch.randn(1000, generator=gen) * 3
    assert (empg.kl_k3(a, b) >= 0).all()
    assert torch.equal(empg.kl_k3(a, a), torch.zeros(1000))


def test_reinforce_loss_gradient():
    # loss = −mean_j A_j log π_j ⇒ ∂loss/∂logp_j = −A_j/3 (token-mean over 3 tokens); A gets no gradient.
    logp = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    adv = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    loss, metrics = empg.reinforce_loss(logp, adv)
    assert loss.item() == pytest.approx(-(2 * -0.5 + -1 * -1.0 + 0.5 * -2.0) / 3, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv.detach() / 3)
    assert adv.grad is None
    assert set(metrics) == {"loss/policy"}


def test_masked_nan_does_not_reach_loss_or_gradient():
    nan = float("nan")
    mask = torch.tensor([[True, False, True]])
    logp = torch.tensor([[-1.0, -float("inf"), -0.5]], requires_grad=True)
    adv = torch.tensor([[1.0, nan, -1.0]])
    for loss, _ in (
        empg.clipped_policy_loss(logp, torch.tensor([[-1.0, nan, -0.5]]), adv, mask),
        empg.reinforce_loss(logp, adv, mask),
        empg.kl_penalty(logp, torch.tensor([[-1.2, nan, -0.4]]), mask),
    ):
        logp.grad = None
        assert torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(logp.grad).all() and logp.grad[0, 1] == 0


def test_metrics_keys_are_namespaced():
    logp, old = _logps(RHO)
    _, m1 = empg.clipped_policy_loss(logp, old, torch.tensor(ADV))
    _, m2 = empg.kl_penalty(logp, old)
    _, m3 = empg.reinforce_loss(logp, torch.tensor(ADV))
    for m in (m1, m2, m3):
        assert m and all("/" in key and isinstance(v, float) for key, v in m.items())


def test_bad_inputs_name_the_argument():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="old_logp"):
        empg.clipped_policy_loss(x, torch.zeros(2, 4), x)
    with pytest.raises(ValueError, match="advantages"):
        empg.clipped_policy_loss(x, x, torch.zeros(3))
    with pytest.raises(ValueError, match="mask"):
        empg.clipped_policy_loss(x, x, x, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="clip_low"):
        empg.clipped_policy_loss(x, x, x, clip_low=-0.1)
    with pytest.raises(ValueError, match="dual_clip"):
        empg.clipped_policy_loss(x, x, x, dual_clip=0.5)
    with pytest.raises(ValueError, match="advantages"):
        empg.clipped_policy_loss(x, x, torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="logp"):
        empg.reinforce_loss(torch.full((2, 3), float("nan")), x)
    with pytest.raises(ValueError, match="ref_logp"):
        empg.kl_k3(x, torch.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        empg.reinforce_loss(x, x, agg="mean")
