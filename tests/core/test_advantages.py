"""Outcome advantages (spec §4): GRPO, Dr.GRPO, DAPO's dynamic-sampling filter, REINFORCE."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import empg
from empg import reference

# Two groups, interleaved: group 0 = rewards (1, 0, 0, 1) at positions 0, 2, 3, 5; group 1 = (2, 4) at 1, 4.
REWARDS = torch.tensor([1.0, 2.0, 0.0, 0.0, 4.0, 1.0], dtype=torch.float64)
GROUP = torch.tensor([0, 1, 0, 0, 1, 0])


def test_grpo_by_hand():
    # group 0: mean 0.5; unbiased std = √((4 · 0.25)/3) = √(1/3) ≈ 0.577350 ⇒ A = ±0.5/0.577350 = ±0.866025
    # group 1: mean 3;   unbiased std = √((1 + 1)/1) = √2 ≈ 1.414214   ⇒ A = ∓1/1.414214 = ∓0.707107
    s0, s1 = math.sqrt(1 / 3) + 1e-6, math.sqrt(2) + 1e-6
    expected = [0.5 / s0, -1 / s1, -0.5 / s0, -0.5 / s0, 1 / s1, 0.5 / s0]
    out = empg.grpo_advantages(REWARDS, GROUP)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)
    assert out[0].item() == pytest.approx(0.866025, abs=1e-5)  # (the 1e-6 in the std shifts the 6th digit)


def test_drgrpo_by_hand():
    # No std: A = R − group mean = (1−0.5, 2−3, 0−0.5, 0−0.5, 4−3, 1−0.5)
    out = empg.grpo_advantages(REWARDS, GROUP, std_normalize=False)
    assert out.tolist() == [0.5, -1.0, -0.5, -0.5, 1.0, 0.5]


def test_group_of_one_and_all_equal_group():
    # A lone rollout: R − mean = 0 (std 0 by convention) ⇒ 0, never NaN. An all-equal group ⇒ 0/(0 + 1e-6) = 0.
    out = empg.grpo_advantages([3.0, 1.0, 1.0, 1.0], [9, 2, 2, 2])
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert empg.grpo_advantages([3.0], [0], std_normalize=False).tolist() == [0.0]


def test_dtype_kept_and_group_ids_arbitrary():
    out = empg.grpo_advantages(REWARDS.float(), GROUP * 100 - 7)  # any integer ids
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, empg.grpo_advantages(REWARDS, GROUP).float())
    assert empg.grpo_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long)).shape == (0,)


def test_dynamic_sampling_mask_by_hand():
    # group 0 (1, 0): keep; group 1 (3, 3): all equal ⇒ drop; group 2 (5): a lone rollout ⇒ drop;
    # group 3 (0.5, 0.5, 0.6): keep.
    rewards = [1.0, 3.0, 0.0, 3.0, 5.0, 0.5, 0.5, 0.6]
    group = [0, 1, 0, 1, 2, 3, 3, 3]
    mask = empg.dynamic_sampling_mask(rewards, group)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [True, False, True, False, False, True, True, True]


def test_reinforce_by_hand():
    # Mean baseline over the batch: mean(1, 2, 6) = 3 ⇒ (−2, −1, 3).
    assert empg.reinforce_advantages([1.0, 2.0, 6.0]).tolist() == [-2.0, -1.0, 3.0]
    # Per group it is Dr.GRPO: group means 1.5 and 6 ⇒ (−0.5, 0.5, 0).
    assert empg.reinforce_advantages([1.0, 2.0, 6.0], [0, 0, 1]).tolist() == [-0.5, 0.5, 0.0]


def test_broadcast_to_steps():
    assert empg.broadcast_to_steps([10.0, 20.0], [1, 0, 1, 1]).tolist() == [20.0, 10.0, 20.0, 20.0]
    with pytest.raises(ValueError, match="trajectory"):
        empg.broadcast_to_steps([10.0, 20.0], [0, 2])
    with pytest.raises(ValueError, match="trajectory"):
        empg.broadcast_to_steps([10.0, 20.0], [0.5])


@st.composite
def grouped_rewards(draw):
    n = draw(st.integers(1, 16))
    rewards = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 10.0, -0.1]), min_size=n, max_size=n))
    group = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    return torch.tensor(rewards, dtype=torch.float64), torch.tensor(group)


@settings(max_examples=50, deadline=None)
@given(grouped_rewards(), st.booleans())
def test_matches_reference(batch, std_normalize):
    rewards, group = batch
    torch.testing.assert_close(
        empg.grpo_advantages(rewards, group, std_normalize=std_normalize),
        reference.grpo_advantages_ref(rewards, group, std_normalize=std_normalize),
        rtol=0,
        atol=1e-9,
    )
    assert torch.equal(empg.dynamic_sampling_mask(rewards, group), reference.dynamic_sampling_mask_ref(rewards, group))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="rewards"):
        empg.grpo_advantages(torch.ones(2, 2), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="group"):
        empg.grpo_advantages(torch.ones(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="rewards"):
        empg.grpo_advantages(torch.tensor([1.0, float("nan")]), [0, 0])
    with pytest.raises(ValueError, match="group"):
        empg.dynamic_sampling_mask([1.0, 0.0], [0.5, 0.0])
    with pytest.raises(ValueError, match="eps"):
        empg.grpo_advantages([1.0, 0.0], [0, 0], eps=-1.0)
    with pytest.raises(ValueError, match="rewards"):
        empg.reinforce_advantages([[1.0, 0.0]])
    with pytest.raises(TypeError, match="rewards"):
        empg.grpo_advantages("1, 2", [0, 0])
