"""A seeded statistical test of the mechanism EMPG claims, on a small gridworld (KeyDoor small layout).

Claim (spec §3): on successful episodes, EMPG's update on *confident* steps is larger than the
baseline's, and on *uncertain* steps smaller. We measure the size of each step's contribution to the
update, ``|A_s| · ‖∇_z log π(a_s|s)‖`` (for the tabular policy the gradient w.r.t. the logits z of the
visited state is exactly that state's row of the parameter gradient), with GRPO advantages and with
full EMPG advantages on the *same* rollout batch (a paired comparison).

Setup: train GRPO for 4 updates from a uniform policy (so some states are confident and others
not), then roll out one batch of 16 × 8 episodes. Confident = the third of steps with the lowest step
entropy, uncertain = the highest third (ranks over the batch). Repeated for 4 seeds.

Tolerance: by Eq. 10 g ∈ [e^{-1}, 1] / mean(u), and the bonus/centring terms of Eq. 8/7 are ≤ ζ = 0.1
in size, against |A| ≈ 0.3–2.5 for GRPO on successful episodes. We require the EMPG/GRPO ratio of the
mean magnitude to be > 1.1 on confident steps and < 0.9 on uncertain ones for every seed (observed
values for seeds 0-3: 1.26-1.40 and 0.70-0.85; the runs are seeded, so they are deterministic).
"""

import pytest
import torch

from toy_envs.train import ToyTrainConfig, collect_rollouts, compute_step_advantages, train

gridworld = pytest.importorskip("toy_envs.gridworld")


def _make_env():
    return gridworld.KeyDoorEnv("small")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_empg_enlarges_confident_and_damps_uncertain_success_steps(seed):
    cfg = dict(tasks_per_update=4, group_size=8, progress=False, plot=False, lr=0.1, seed=seed)
    pretrained = train(ToyTrainConfig(updates=4, **cfg), _make_env).policy
    batch = collect_rollouts(pretrained, _make_env, [0] * 16, 8, generator=torch.Generator().manual_seed(100 + seed))
    assert 0 < int(batch.success.sum()) < batch.num_episodes  # both outcomes occur, so GRPO has a signal

    adv_grpo, _ = compute_step_advantages(batch, ToyTrainConfig(empg="off", **cfg))
    adv_empg, _ = compute_step_advantages(batch, ToyTrainConfig(empg="full", **cfg))
    score_norm = batch.score_norm_sq.sqrt()
    size_grpo = adv_grpo.abs() * score_norm
    size_empg = adv_empg.abs() * score_norm

    success_step = batch.success[batch.trajectory]
    rank = batch.step_entropy.argsort().argsort().double() / (batch.num_steps - 1)
    confident = success_step & (rank < 1 / 3)
    uncertain = success_step & (rank > 2 / 3)
    assert confident.sum() > 20 and uncertain.sum() > 20

    ratio_confident = float(size_empg[confident].mean() / size_grpo[confident].mean())
    ratio_uncertain = float(size_empg[uncertain].mean() / size_grpo[uncertain].mean())
    # printed for the docs and notebook 8, which quote them (pytest tests/toys/test_empg_mechanism.py -s)
    print(f"\nseed {seed}: EMPG/GRPO update size on successful steps: confident {ratio_confident:.2f}, "
          f"uncertain {ratio_uncertain:.2f}")
    assert ratio_confident > 1.1, ratio_confident
    assert ratio_uncertain < 0.9, ratio_uncertain

