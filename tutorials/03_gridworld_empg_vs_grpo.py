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
# * **The only difference** between a method and its EMPG version is `empg="off"` vs `empg="full"`.
#
# We measure three things: learning curves with confidence bands over seeds, Proposition 1 during
# training, and the size of each update (KL between consecutive policies).

# %%
SCALE = 1  # 1 = quick (CI: 4 seeds per method); 5 = 20 seeds, tighter bands

import math

import gymnasium as gym
import matplotlib.pyplot as plt
import torch

import toy_envs  # noqa: F401  (registers the env ids)
from toy_envs.train import ToyTrainConfig, train
from toy_envs.demo import DEMO_DEFAULTS, ENV_KWARGS, mean_ci

torch.set_num_threads(1)
N_SEEDS = 4 * SCALE
UPDATES = 30

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
# ## Train four methods on the same seeds
#
# * `grpo`: the GRPO advantage, no modulation.
# * `empg`: GRPO + EMPG (Eq. 7–12).
# * `dapo`: GRPO + **dynamic sampling**. Groups whose rewards are all equal (here: all failures) are
#   dropped, and up to 3 extra rounds of rollouts refill the batch. (Clip-higher, DAPO's other half,
#   does not apply to the REINFORCE loss used here.)
# * `dapo_empg`: DAPO + EMPG, the combination with the paper's best numbers (spec §6).
#
# Seed $s$ fixes the policy initialisation, the task draws and the action sampling, and it is the
# same for every method. We also keep the Proposition 1 records (every step's entropy, Rényi-2
# entropy and squared score norm) every 5 updates.

# %%
def make_env():
    # .unwrapped skips gymnasium's checker wrappers (pure overhead); the env truncates itself.
    return gym.make("toy_envs/KeyDoor-v0", **ENV_KWARGS).unwrapped


METHODS = {"grpo": "C0", "empg": "C3", "dapo": "C2", "dapo_empg": "C1"}
runs = {m: [] for m in METHODS}
for seed in range(N_SEEDS):
    for method in runs:
        cfg = ToyTrainConfig.for_method(method, seed=seed, progress=False, plot=False, prop1_every=5, **config)
        runs[method].append(train(cfg, make_env))
for method, results in runs.items():
    print(f"{method:10s} {sum(r.wall_time for r in results):5.1f} s for {len(results)} runs")


def curves(method, key):
    return torch.tensor([r.curve(key) for r in runs[method]], dtype=torch.float64)  # [seeds, updates]


# %% [markdown]
# ## Learning curves with 95% confidence bands
#
# Each line is the mean training success rate over seeds; the band is the 95% Student-t interval of
# that mean (`toy_envs.demo.mean_ci`). With only a few seeds the bands are wide: read them before
# reading the gap between the lines. The success rate is measured on the first round of rollouts
# of each update, so every method is scored on the same number of episodes per point. DAPO,
# however, *trains* on more episodes (its refill rounds); the table counts them.

# %%
def band(ax, method, key, **kw):
    c = curves(method, key)
    stats = [mean_ci(c[:, i].tolist()) for i in range(c.shape[1])]
    m = torch.tensor([s[0] for s in stats])
    h = torch.tensor([0.0 if math.isnan(s[1]) else s[1] for s in stats])
    x = torch.arange(1, c.shape[1] + 1)
    ax.plot(x, m, label=f"{method} ({c.shape[0]} seeds)", color=METHODS[method])
    ax.fill_between(x, m - h, m + h, alpha=0.2, color=METHODS[method], **kw)


fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for method in METHODS:
    band(axes[0], method, "charts/success_rate")
    band(axes[1], method, "charts/episode_length")
    band(axes[2], method, "policy/entropy_mean")
axes[0].set(ylabel="success rate", ylim=(-0.02, 1.02))
axes[1].set(ylabel="episode length (steps)")
axes[2].set(ylabel="mean step entropy (nats)")
for ax in axes:
    ax.set_xlabel("update")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
fig.suptitle(f"KeyDoor-v0 (default layout, {ENV_KWARGS}), mean ± 95% CI")
plt.tight_layout()
plt.show()

# %%
print(f"{'method':10s} {'final success (last 5)':>24s} {'AUC':>16s} {'never succeeded':>16s} {'episodes trained on':>20s}")
for method in runs:
    c = curves(method, "charts/success_rate")
    final, auc = mean_ci(c[:, -5:].mean(1).tolist()), mean_ci(c.mean(1).tolist())
    never = int((c.max(1).values == 0).sum())
    episodes = float(curves(method, "charts/episodes")[:, -1].mean())
    print(f"{method:10s} {final[0]:15.3f} ± {final[1]:.3f} {auc[0]:8.3f} ± {auc[1]:.3f} {never:10d}/{c.shape[0]} {episodes:20.0f}")

# %% [markdown]
# **What this small run shows** (4 seeds, 30 updates; the numbers are printed above).
#
# * **DAPO and DAPO+EMPG** learn the layout on every seed, and their curves lie on top of each
#   other. Part of their speed is bought: while nothing succeeds, dynamic sampling draws up to 4
#   rounds of rollouts per update, so they see several times more episodes (last column).
# * **GRPO** waits for a lucky success. Until then every group is all zeros and its advantage is
#   exactly zero. In this run one of the four seeds had not started learning after 30 updates
#   (two of eight when we tried 8 seeds), hence the wide band.
# * **GRPO+EMPG** does worst here. On 3 of the 4 seeds (5 of 8 when we tried 8) the mean step
#   entropy collapses toward zero before the policy finds the goal, and every episode runs to the
#   step limit. The next section explains why, and why dynamic sampling prevents it.
#
# With 4 seeds, differences smaller than the bands mean nothing. Raise `SCALE` for tighter bands.
#
# ## Why GRPO+EMPG can collapse before the first success
#
# Before the first success every group is all zeros, so the GRPO advantage is exactly zero and GRPO
# does not move. EMPG's modulated advantage is *not* zero there. The scaled part $g\cdot A$ vanishes,
# but the bonus remains: $A''_s = \zeta f_{s+1} - \operatorname{mean}_S(\zeta f_{\text{next}})$. That
# is an intrinsic reward for "the next step is confident", and nothing about the goal. In a
# gridworld it feeds on itself. An action that bumps into a wall leaves the agent in the same state,
# so if that state is confident the bump earns the largest bonus, and the policy grows *more*
# confident of it. The collapsed policies end up walking into one wall for the whole episode.
# DAPO's dynamic sampling drops all-failure groups before the modulation sees them, so the bonus
# only ever reshapes a real outcome signal.
#
# We check the mechanism on one all-failure batch from a randomly initialised policy (at the env's
# default 66-step limit nothing succeeds).

# %%
from toy_envs.train import collect_rollouts, compute_step_advantages
from toy_envs.policies import TabularSoftmaxPolicy

torch.manual_seed(0)
probe_policy = TabularSoftmaxPolicy(int(env.observation_space.n), 4, init_std=1.0)
probe = collect_rollouts(probe_policy, lambda: gym.make("toy_envs/KeyDoor-v0").unwrapped, [0, 1], group_size=8,
                         generator=torch.Generator().manual_seed(0))
print(f"{probe.num_episodes} episodes, {probe.num_steps} steps, successes: {int(probe.success.sum())}")
adv_grpo, _ = compute_step_advantages(probe, ToyTrainConfig.for_method("grpo"))
adv_empg, _ = compute_step_advantages(probe, ToyTrainConfig.for_method("empg"))

# The next step of each step row (rows are stored time-major: all episodes' step 0, then step 1, ...).
key = {(int(t), int(s)): i for i, (t, s) in enumerate(zip(probe.trajectory, probe.step))}
nxt = torch.tensor([key.get((int(t), int(s) + 1), -1) for t, s in zip(probe.trajectory, probe.step)])
has_next = nxt >= 0
state = torch.tensor(probe.records)
bump = has_next & (state == state[nxt.clamp_min(0)])  # the agent did not move (a wall, or the closed door)

fig, ax = plt.subplots(figsize=(6, 3.8))
h_next = probe.step_entropy[nxt.clamp_min(0)]
ax.scatter(h_next[has_next & ~bump], adv_empg[has_next & ~bump], s=6, alpha=0.4, label="moved")
ax.scatter(h_next[bump], adv_empg[bump], s=6, alpha=0.4, c="C3", label="bumped (same state next)")
ax.axhline(0, color="k", lw=0.8, label="GRPO advantage (all zero)")
ax.set(xlabel="entropy of the next step (nats)", ylabel="EMPG advantage of this step",
       title="all-failure batch: only the clarity bonus is left")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# And here is what the collapsed GRPO+EMPG policies do. We play one episode of each final policy
# from the start, sampling its actions, and count the distinct states it visits and how often a
# move left the agent where it was.

# %%
def sampled_walk(policy, steps=100, seed=0):
    walk_env = make_env()
    obs, _ = walk_env.reset(seed=0)
    seen, stayed, gen = {int(obs)}, 0, torch.Generator().manual_seed(seed)
    for _ in range(steps):
        action = int(policy.sample(torch.tensor([int(obs)]), generator=gen)[0])
        new_obs, reward, terminated, truncated, _ = walk_env.step(action)
        stayed += int(new_obs == obs)
        seen.add(int(new_obs))
        obs = new_obs
        if terminated or truncated:
            break
    return len(seen), stayed, bool(reward > 0)


for seed, r in enumerate(runs["empg"]):
    n_states, stayed, won = sampled_walk(r.policy)
    print(f"GRPO+EMPG seed {seed}: final step entropy {r.curve('policy/entropy_mean')[-1]:.2f}, one episode visits "
          f"{n_states} states, stays put on {stayed} moves, reaches the goal: {won}")

# %% [markdown]
# ### Check your understanding
# On an all-failure batch the GRPO advantage is zero everywhere. The EMPG advantage is the centred
# bonus: Eq. 12 then Eq. 11 by hand, $\zeta f$ of the next step, 0 for last steps, minus the batch
# mean (Eq. 7). Its mean is zero, but it is not zero.

# %%
assert int(probe.success.sum()) == 0
assert torch.all(adv_grpo == 0)
H = probe.step_entropy
h_tilde = (H - H.min()) / (H.max() - H.min() + 1e-8)  # Eq. 12
f = torch.exp(-1.0 * h_tilde)  # Eq. 11, k' = 1
bonus = torch.where(has_next, 0.1 * f[nxt.clamp_min(0)], torch.zeros_like(f))  # Eq. 8 with A = 0, zeta = 0.1
assert torch.allclose(adv_empg, bonus - bonus.mean(), atol=1e-9)  # Eq. 7
assert abs(float(adv_empg.mean())) < 1e-9 and float(adv_empg.abs().max()) > 0.01
# Learning happened for every method that only learns from outcomes (deterministic given the seeds).
for method in ("grpo", "dapo", "dapo_empg"):
    c = curves(method, "charts/success_rate")
    assert c[:, -5:].mean() > c[:, :5].mean() + 0.3, method

# %% [markdown]
# ## Proposition 1, measured during training
#
# The trainer recorded, at every 5th update, each step's Rényi-2 entropy $H_2$ and the squared
# norm of the score of the action it actually took, $\lVert e_a - \pi\rVert^2$. Proposition 1 says
# that the *expected* squared norm is $1 - e^{-H_2}$. So a single sample scatters around that
# curve, and the average of the samples in an $H_2$ bin lands on it. As training goes on, the
# states concentrate at low entropy, where the gradients are small: confident steps learn slowly.

# %%
records = [row for m in runs for r in runs[m] for row in r.prop1]
h2 = torch.tensor([row["renyi2"] for row in records], dtype=torch.float64)
score = torch.tensor([row["score_norm_sq"] for row in records], dtype=torch.float64)
expected = torch.tensor([row["expected_score_norm_sq"] for row in records], dtype=torch.float64)
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
for method in METHODS:
    band(axes[1], method, "prop1/expected_score_norm_sq_mean")
axes[1].set(xlabel="update", ylabel=r"batch mean of $1-e^{-H_2}$")
axes[1].set_title("expected squared gradient size falls as the policy becomes confident", fontsize=9)
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Check your understanding
# The recorded expected squared score norm *is* $1 - e^{-H_2}$, for every step. The sampled norms
# average to it within each bin (a Monte-Carlo check; 4 standard errors, so a chance failure has
# probability below $10^{-4}$ per bin). And the batch mean of $1-e^{-H_2}$ falls from its uniform-policy
# value $1 - 1/4 = 0.75$.

# %%
assert torch.allclose(expected, 1 - torch.exp(-h2), atol=1e-5)  # the trainer works in float32
for m_, c_, s_ in zip(bin_mean, bin_curve, bin_se):
    assert abs(m_ - c_) < 4 * s_ + 1e-9, (m_, c_, s_)
for method in runs:
    c = curves(method, "prop1/expected_score_norm_sq_mean")
    assert torch.allclose(c[:, 0], torch.tensor(0.75, dtype=torch.float64))  # uniform start: 1 - 1/4
    assert c[:, -1].mean() < 0.75 - 0.1, method

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
for method in METHODS:
    band(axes[0], method, "policy/kl_prev")
    band(axes[1], method, "policy/kl_init")
axes[0].set(xlabel="update", ylabel=r"KL($\pi_{old}\|\pi_{new}$) per update", yscale="log")
axes[1].set(xlabel="update", ylabel=r"KL($\pi\|\pi_{init}$)")
for ax in axes:
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

late = {m: curves(m, "policy/kl_prev")[:, UPDATES // 2 :] for m in runs}
for m, v in late.items():
    print(f"{m:10s} late-training KL per update: mean {float(v.mean()):.2e}, std over updates {float(v.std(1).mean()):.2e}")

# %% [markdown]
# **What this small run shows.** DAPO's late updates are the spikiest (largest mean and
# largest spikes). Late in training most groups succeed on every episode and are dropped. A group that
# keeps one failure gets a large normalised advantage (one failure among 8 has $A \approx -2.5$), on a
# long, wandering trajectory, and one update then moves many states at once. DAPO+EMPG's late updates
# are smaller in this run. With 8 seeds they were smaller on 6. On a seventh, DAPO had stopped
# updating altogether: every group succeeded and was dropped. A failed trajectory wanders through
# uncertain states, where $g<1$ damps its penalty. That is the paper's observation (DAPO's KL
# oscillates late, EMPG's stays stable) in miniature, but the evidence is a few seeds of a tabular
# toy. GRPO+EMPG's late KL is tiny for a bad reason: its collapsed policies have stopped moving.
#
# Why EMPG does not simply inflate updates: confident steps have small gradients (Prop. 1), and
# $g>1$ enlarges exactly those. But $g$ has batch mean 1, so it redistributes the update size
# rather than growing it.
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
