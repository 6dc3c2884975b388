# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. EMPG vs GRPO on a long-horizon gridworld
#
# Notebooks 1 and 2 worked on hand-made numbers. Here we **train** on `toy_envs/KeyDoor-v0`: take
# the key, open the door, reach the goal. The reward is 1 on success and 0 otherwise, and it comes
# only at the end of a 22-step optimal path. That is the paper's setting in miniature: a long
# horizon and a sparse outcome.
#
# * **Policy**: a tabular softmax $\pi(a\mid s) = \mathrm{softmax}(\theta_s)$ (`empg.policies.TabularSoftmaxPolicy`),
#   starting uniform. Each step is one action, so a step's entropy is the entropy of one distribution.
# * **Trainer**: `empg.trainer.train`. Each update plays `group_size` episodes of each of
#   `tasks_per_update` tasks, computes the GRPO advantage per group, optionally modulates it with
#   EMPG (Eq. 7–12, $k=k'=1$, $\zeta=0.1$), and takes one REINFORCE step.
# * **The only difference** between the two methods is `empg="off"` vs `empg="full"`.
#
# We measure three things: learning curves with confidence bands over seeds, Proposition 1 during
# training, and the size of each update (KL between consecutive policies).

# %%
SCALE = 1  # 1 = quick (CI, ~4 seeds); 5 = 20 seeds, tighter bands

import math

import gymnasium as gym
import matplotlib.pyplot as plt
import torch

import toy_envs  # noqa: F401  (registers the env ids)
from empg.trainer import ToyTrainConfig, train
from toy_envs.demo import DEMO_DEFAULTS, ENV_KWARGS, mean_ci

torch.set_num_threads(1)
N_SEEDS = 4 * SCALE
UPDATES = 40

# %% [markdown]
# ## The setting, and why it needs care
#
# At the env's default step limit (3 × optimal = 66 steps) a uniformly random policy almost never
# reaches the goal (see `docs/toys.md`: 0.0% in 2,000 episodes). Every GRPO group is then all zeros,
# its advantage is zero, and neither method learns anything. This is the toy version of "the base
# model must sometimes succeed". We use the same fix as `make demo`: the step limit is raised to
# 100 steps, where a random policy succeeds about 0.5% of the time, so a batch of 32 episodes
# occasionally contains a success.
#
# The hyper-parameters are the demo's (`toy_envs.demo.DEMO_DEFAULTS`, tuned once on seeds that the
# demo does not report): plain SGD on the REINFORCE loss summed over an episode's steps, so that
# an update's size is proportional to the advantages that EMPG rescales.

# %%
env = gym.make("toy_envs/KeyDoor-v0", render_mode="ansi", **ENV_KWARGS)
obs, info = env.reset(seed=0)
print(env.render())
print(f"optimal steps: {info['optimal_steps']}, step limit: {info['max_steps']}, states: {env.observation_space.n}")
config = dict(DEMO_DEFAULTS, updates=UPDATES)
print("shared config:", config)

# %% [markdown]
# ## Train both methods on the same seeds
#
# Seed $s$ fixes the policy initialisation, the task draws and the action sampling, and it is the
# same for both methods. We also keep the Proposition 1 records (every step's entropy, Rényi-2
# entropy and squared score norm) every 5 updates.

# %%
def make_env():
    # .unwrapped skips gymnasium's checker wrappers (pure overhead); the env truncates itself.
    return gym.make("toy_envs/KeyDoor-v0", **ENV_KWARGS).unwrapped


runs = {"grpo": [], "empg": []}
for seed in range(N_SEEDS):
    for method in runs:
        cfg = ToyTrainConfig.for_method(method, seed=seed, progress=False, plot=False, prop1_every=5, **config)
        runs[method].append(train(cfg, make_env))
for method, results in runs.items():
    print(f"{method}: {sum(r.wall_time for r in results):.1f} s for {len(results)} runs")


def curves(method, key):
    return torch.tensor([r.curve(key) for r in runs[method]], dtype=torch.float64)  # [seeds, updates]


# %% [markdown]
# ## Learning curves with 95% confidence bands
#
# Each line is the mean training success rate over seeds; the band is the 95% Student-t interval of
# that mean (`toy_envs.demo.mean_ci`). With only a few seeds the bands are wide: read them before
# reading the gap between the lines.

# %%
def band(ax, method, key, **kw):
    c = curves(method, key)
    stats = [mean_ci(c[:, i].tolist()) for i in range(c.shape[1])]
    m = torch.tensor([s[0] for s in stats])
    h = torch.tensor([0.0 if math.isnan(s[1]) else s[1] for s in stats])
    x = torch.arange(1, c.shape[1] + 1)
    ax.plot(x, m, label=f"{method} ({c.shape[0]} seeds)", **kw)
    ax.fill_between(x, m - h, m + h, alpha=0.25, **kw)


fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for method, color in (("grpo", "C0"), ("empg", "C3")):
    band(axes[0], method, "charts/success_rate", color=color)
    band(axes[1], method, "charts/episode_length", color=color)
    band(axes[2], method, "policy/entropy_mean", color=color)
axes[0].set(ylabel="success rate", ylim=(-0.02, 1.02))
axes[1].set(ylabel="episode length (steps)")
axes[2].set(ylabel="mean step entropy (nats)")
for ax in axes:
    ax.set_xlabel("update")
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle(f"KeyDoor-v0 (default layout, {ENV_KWARGS}), mean ± 95% CI")
plt.tight_layout()
plt.show()

# %%
print(f"{'method':6s} {'final success (last 10)':>26s} {'AUC':>18s}")
summary = {}
for method in runs:
    c = curves(method, "charts/success_rate")
    final, auc = mean_ci(c[:, -10:].mean(1).tolist()), mean_ci(c.mean(1).tolist())
    summary[method] = final[0]
    print(f"{method:6s} {final[0]:17.3f} ± {final[1]:.3f} {auc[0]:10.3f} ± {auc[1]:.3f}")

# %% [markdown]
# **What this small run shows.** Both methods solve the layout within a few dozen updates once the
# first successes appear. With a handful of seeds the difference between them is within the noise.
# For a claim either way, run `make demo` (10 seeds, with Welch intervals on the difference) or raise
# `SCALE`. Notice *when* learning starts: before the first success every group is all zeros, so
# GRPO's advantage is exactly zero. EMPG's centred bonus is not zero there (only its mean is), so
# EMPG moves the policy a little even in all-failure batches. That movement is not guided by the
# outcome. It is a push toward steps whose next state the policy is already sure about.
#
# ### Check your understanding
# Learning happened for both methods (deterministic given the seeds), and the success rates are
# proper rates.

# %%
for method in runs:
    c = curves(method, "charts/success_rate")
    assert torch.all((c >= 0) & (c <= 1))
    assert c[:, -10:].mean() > c[:, :5].mean() + 0.3, method  # the policy improved a lot
# An all-failure GRPO batch has zero advantage: while nothing succeeds, GRPO's policy does not move.
for r in runs["grpo"]:
    for row in r.history:
        if row["charts/success_rate"] == 0:
            assert row["policy/kl_prev"] < 1e-12
            break

# %% [markdown]
# ## Proposition 1, measured during training
#
# The trainer recorded, at every 5th update, each step's Rényi-2 entropy $H_2$ and the squared
# norm of the score of the action it actually took, $\lVert e_a - \pi\rVert^2$. Proposition 1 says
# that the *expected* squared norm is $1 - e^{-H_2}$. So a single sample scatters around that
# curve, and the average of the samples in an $H_2$ bin lands on it. As training goes on, the
# states concentrate at low entropy, where the gradients are small: confident steps learn slowly.

# %%
records = [row for r in runs["empg"] for row in r.prop1]
h2 = torch.tensor([row["renyi2"] for row in records])
score = torch.tensor([row["score_norm_sq"] for row in records])
expected = torch.tensor([row["expected_score_norm_sq"] for row in records])
update = torch.tensor([row["update"] for row in records])

edges = torch.linspace(0, math.log(4), 9)
centres, bin_mean, bin_se, bin_curve = [], [], [], []
for lo, hi in zip(edges[:-1], edges[1:]):
    in_bin = (h2 >= lo) & (h2 < hi)
    if in_bin.sum() >= 30:
        centres.append(float(h2[in_bin].mean()))
        bin_mean.append(float(score[in_bin].mean()))
        bin_se.append(float(score[in_bin].std() / in_bin.sum().sqrt()))
        bin_curve.append(float((1 - torch.exp(-h2[in_bin])).mean()))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
sc = axes[0].scatter(h2, score, c=update, s=4, alpha=0.3, cmap="viridis")
grid = torch.linspace(0, math.log(4), 100)
axes[0].plot(grid, 1 - torch.exp(-grid), "k--", label=r"$1-e^{-H_2}$ (Prop. 1)")
axes[0].errorbar(centres, bin_mean, yerr=[2 * s for s in bin_se], fmt="o", c="C3", label="bin mean ± 2 s.e.")
axes[0].set(xlabel=r"Rényi-2 entropy $H_2$ of the step (nats)", ylabel=r"$\|\nabla_z\log\pi(a)\|^2$ of the taken action")
axes[0].legend(fontsize=8)
plt.colorbar(sc, ax=axes[0], label="update")
for method, color in (("grpo", "C0"), ("empg", "C3")):
    band(axes[1], method, "prop1/expected_score_norm_sq_mean", color=color)
axes[1].set(xlabel="update", ylabel=r"batch mean of $1-e^{-H_2}$")
axes[1].set_title("expected squared gradient size falls as the policy becomes confident", fontsize=9)
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Check your understanding
# The recorded expected squared score norm *is* $1 - e^{-H_2}$, for every step. The sampled norms
# average to it within each bin (a Monte-Carlo check; 4 standard errors, so a chance failure has
# probability below $10^{-4}$ per bin). And the batch mean of $1-e^{-H_2}$ falls from its uniform-policy
# value $1 - 1/4 = 0.75$.

# %%
assert torch.allclose(expected, 1 - torch.exp(-h2), atol=1e-9)
for m_, c_, s_ in zip(bin_mean, bin_curve, bin_se):
    assert abs(m_ - c_) < 4 * s_ + 1e-9, (m_, c_, s_)
for method in runs:
    c = curves(method, "prop1/expected_score_norm_sq_mean")
    assert torch.allclose(c[:, 0], torch.tensor(0.75, dtype=torch.float64))  # uniform start: 1 - 1/4
    assert c[:, -1].mean() < 0.5

# %% [markdown]
# ## KL stability: how far does each update move the policy?
#
# The trainer logs `policy/kl_prev`, the mean over the batch's visited states of
# $\mathrm{KL}(\pi_\text{before}\,\|\,\pi_\text{after})$ for one update, and `policy/kl_init`, the drift from the initial
# policy. The paper reports that in LLM training DAPO's KL *loss* oscillates late in training while
# EMPG's stays stable. Here there is no KL penalty (`kl_coef=0`), so we look at the update size
# directly. The early spikes are the first successes. Each one gives a large advantage to a long
# trajectory, and it moves many states at once.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for method, color in (("grpo", "C0"), ("empg", "C3")):
    band(axes[0], method, "policy/kl_prev", color=color)
    band(axes[1], method, "policy/kl_init", color=color)
axes[0].set(xlabel="update", ylabel=r"KL($\pi_{old}\|\pi_{new}$) per update", yscale="log")
axes[1].set(xlabel="update", ylabel=r"KL($\pi\|\pi_{init}$)")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
plt.tight_layout()
plt.show()

late = {m: curves(m, "policy/kl_prev")[:, UPDATES // 2 :] for m in runs}
for m, v in late.items():
    print(f"{m}: late-training KL per update: mean {float(v.mean()):.2e}, std over updates {float(v.std(1).mean()):.2e}")

# %% [markdown]
# In this small run, the late updates of both methods are small and smooth once the policy has
# converged. The tabular toy has none of what makes an LLM's KL oscillate (shared parameters,
# clipped ratios, thousands of tokens per step). It shows the mechanism, not the paper's curve.
# Confident steps have small gradients (Prop. 1), and $g>1$ enlarges exactly those. Yet $g$ has batch
# mean 1, so EMPG redistributes the update size rather than inflating it.
#
# ### Check your understanding
# KL divergences are non-negative and finite, and no update of either method blows up.

# %%
for m in runs:
    kl_prev = curves(m, "policy/kl_prev")
    assert torch.all(torch.isfinite(kl_prev)) and torch.all(kl_prev >= -1e-12)
    assert float(kl_prev.max()) < 5.0
    g_mean = curves(m, "empg/scale_mean")  # logged for both (for GRPO: what EMPG *would* use)
    assert torch.allclose(g_mean, torch.ones_like(g_mean), atol=1e-6)  # Eq. 10: batch mean of g is 1

# %% [markdown]
# **Next:** [4. Future clarity](04_future_clarity.ipynb): the bonus term on its own, in a gridworld built for it.
