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
# # 3. EMPG vs GRPO on a long-horizon gridworld: learning curves
#
# Notebooks 1 and 2 worked on hand-made numbers. Here we **train** on `toy_envs/KeyDoor-v0`: take
# the key, open the door, reach the goal. The reward is 1 on success and 0 otherwise, and it comes
# only at the end of a 22-step optimal path. That is the paper's setting in miniature: a long
# horizon and a sparse outcome.
#
# * **Policy**: a tabular softmax $\pi(a\mid s) = \mathrm{softmax}(\theta_s)$ (`toy_envs.policies.TabularSoftmaxPolicy`),
#   starting uniform. Each step is one action, so a step's entropy is the entropy of one distribution.
# * **Trainer**: `toy_envs.train.train`. Each update plays `group_size` episodes of each of
#   `tasks_per_update` tasks, computes the GRPO advantage per group, optionally modulates it with
#   EMPG (Eq. 7–12, $k=k'=1$, $\zeta=0.1$), and takes one REINFORCE step.
# * **The only difference** between a method and its EMPG version is `empg="off"` vs `empg="full"`.
#
# This notebook is about one thing: the learning curves of four methods, one line per seed, and why
# one of them can fail. The same kind of runs are measured two more ways in the next two notebooks:
# [4. Proposition 1 during training](04_prop1_during_training.ipynb) and
# [5. How far each update moves the policy (KL)](05_kl_between_updates.ipynb).

# %%
SCALE = 1  # 1 = quick (CI: 4 seeds per method); 3 = 12 seeds

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch

import toy_envs  # noqa: F401  (registers the env ids)
from toy_envs.demo import DEMO_DEFAULTS, ENV_KWARGS, LABELS, mean_ci
from toy_envs.policies import TabularSoftmaxPolicy
from toy_envs.train import ToyTrainConfig, collect_rollouts, compute_step_advantages, train
from toy_envs.gridworld import random_walk_infos

torch.set_num_threads(1)
N_SEEDS = 4 * SCALE
UPDATES = 30

# %% [markdown]
# ## The setting, and why it needs care
#
# How often does a uniformly random policy reach the goal? If the answer is "never", every GRPO
# group is all zeros, its advantage is zero, and no method learns anything. The next cell measures
# it with the protocol of the table in `docs/toys.md` ("How hard is exploration?"): 2,000 episodes,
# `reset(seed=episode)`, uniform actions from one seeded generator. It does so at the env's default
# step limit (3 × optimal = 66 steps, the table's column) and at the 100 steps that `make demo` and this
# notebook use.

# %%
def random_policy_wins(max_steps, episodes=2000):
    """Wins of a uniformly random policy on the default KeyDoor layout (docs/toys.md's protocol)."""
    walk_env = gym.make("toy_envs/KeyDoor-v0", max_steps=max_steps).unwrapped  # same dynamics, no checker wrappers
    # one generator for all episodes, as in the docs' script
    return sum(info["success"] for info in random_walk_infos(walk_env, episodes))


random_wins = {limit: random_policy_wins(limit) for limit in (66, ENV_KWARGS["max_steps"])}
for limit, wins in random_wins.items():
    print(f"step limit {limit:3d}: the random policy wins {wins} of 2000 episodes = {wins / 20:.2f}%")
print("docs/toys.md, limit 66 (3x optimal): 0.05%")

# %% [markdown]
# At the default limit the random policy wins about once in 2,000 episodes (the same number as
# `docs/toys.md`, since the protocol is the same). A batch of 32 episodes then almost never holds a
# success. At 100 steps it wins several times as often, so a batch *occasionally* holds one. This is
# the toy version of "the base model must sometimes succeed". We use the demo's setting: the
# 100-step limit and the demo's hyper-parameters (`toy_envs.demo.DEMO_DEFAULTS`, tuned once on seeds
# that the demo does not report): plain SGD on the REINFORCE loss summed over an episode's steps, so
# that an update's size is proportional to the advantages that EMPG rescales.

# %%
assert random_wins[66] == 1  # docs/toys.md: 0.05% = 1 of 2,000 (this cell follows its script)
assert random_wins[ENV_KWARGS["max_steps"]] > 2 * random_wins[66]

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
# same for every method. These are the demo's four methods on the demo's seeds 0, 1, ... with half
# its updates (30 instead of 60), so the curves here are the first half of the demo's.
#
# **Predict before you run the next cell.** Before the first success every group is all failures.
# (1) What is GRPO's update then? (2) EMPG's advantage is $g\,A + \zeta f_{t+1}$, centred over the
# batch (Eq. 7–8): is it zero too? (3) Which of the four methods, if any, do you expect to end some
# seeds with a confident policy that never reaches the goal?

# %%
def make_env():
    # .unwrapped skips gymnasium's checker wrappers (pure overhead); the env truncates itself.
    return gym.make("toy_envs/KeyDoor-v0", **ENV_KWARGS).unwrapped


METHODS = {"grpo": "C0", "empg": "C3", "dapo": "C2", "dapo_empg": "C1"}
runs = {m: [] for m in METHODS}
for seed in range(N_SEEDS):
    for method in runs:
        cfg = ToyTrainConfig.for_method(method, seed=seed, progress=False, plot=False, **config)
        runs[method].append(train(cfg, make_env))
for method, results in runs.items():
    print(f"{method:10s} {sum(r.wall_time for r in results):5.1f} s for {len(results)} runs")


def curves(method, key):
    return torch.tensor([r.curve(key) for r in runs[method]], dtype=torch.float64)  # [seeds, updates]


# %% [markdown]
# ## Learning curves, one line per seed
#
# A thin line is one seed; the thick line is the mean over seeds. With a handful of seeds a
# confidence band says little and leaves the valid range (a success rate above 1, an entropy below
# 0); single seeds show what actually happened, and every one of them stays in range. The success
# rate is measured on the first round of rollouts of each update, so every method is scored on the
# same number of episodes per point. DAPO, however, *trains* on more episodes (its refill rounds);
# the table counts them.

# %%
def per_seed_lines(ax, method, key):
    c = curves(method, key)
    x = torch.arange(1, c.shape[1] + 1)
    for row in c:
        ax.plot(x, row, color=METHODS[method], lw=0.7, alpha=0.45)
    ax.plot(x, c.mean(0), color=METHODS[method], lw=2.4, label=f"{LABELS[method]} (mean of {c.shape[0]})")


fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
panels = [("charts/success_rate", "success rate", (-0.02, 1.02)),
          ("charts/episode_length", "episode length (steps)", (0, ENV_KWARGS["max_steps"] + 2)),
          ("policy/entropy_mean", "mean step entropy (nats)", (0, np.log(4) + 0.05))]
for ax, (key, label, ylim) in zip(axes, panels):
    for method in METHODS:
        per_seed_lines(ax, method, key)
    ax.plot([], [], color="gray", lw=0.7, alpha=0.6, label="thin: one seed")
    ax.set(xlabel="update", ylabel=label, ylim=ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
fig.suptitle(f"KeyDoor-v0 (default layout, {ENV_KWARGS}): {N_SEEDS} seeds per method")
plt.tight_layout()
plt.show()

# %% [markdown]
# The table counts, per method, the seeds that never had a successful training episode and the seeds
# that **collapsed**: the last update's mean step entropy is below 0.3 nats (a uniform policy has
# $\log 4 \approx 1.39$) while the last 5 updates had no success at all. A collapsed policy is
# confident and no longer reaches the goal. The definition says nothing about earlier updates: a
# collapsed seed may have won a few episodes before (the walk cell below prints how many updates had
# a win), and the "never succeeded" column counts the seeds that never won at all.

# %%
COLLAPSE_ENTROPY = 0.3


def collapsed(method):
    """Per seed: near-deterministic at the end, and no success in the last 5 updates."""
    final_entropy = curves(method, "policy/entropy_mean")[:, -1]
    return (final_entropy < COLLAPSE_ENTROPY) & (curves(method, "charts/success_rate")[:, -5:].max(1).values == 0)


print(f"{'method':12s} {'final success (last 5)':>24s} {'AUC':>16s} {'never succeeded':>16s} {'collapsed':>10s} "
      f"{'episodes trained on':>20s}")
summary = {}
for method in runs:
    c = curves(method, "charts/success_rate")
    final, auc = mean_ci(c[:, -5:].mean(1).tolist()), mean_ci(c.mean(1).tolist())
    never = int((c.max(1).values == 0).sum())
    n_collapsed = int(collapsed(method).sum())
    episodes = float(curves(method, "charts/episodes")[:, -1].mean())
    summary[method] = dict(final=final[0], never=never, collapsed=n_collapsed, episodes=episodes)
    print(f"{LABELS[method]:12s} {final[0]:15.3f} ± {final[1]:.3f} {auc[0]:8.3f} ± {auc[1]:.3f} "
          f"{never:10d}/{c.shape[0]} {n_collapsed:7d}/{c.shape[0]} {episodes:20.0f}")

# %% [markdown]
# **What this small run shows** (the numbers are the table's; the next cell asserts each statement,
# at this notebook's `SCALE`).
#
# * **DAPO and DAPO + EMPG** learn on every seed. Part of their speed is bought: while nothing
#   succeeds, dynamic sampling draws up to 4 rounds of rollouts per update, so they train on more
#   episodes (last column).
# * **GRPO** waits for a lucky success. Until then every group is all zeros and its advantage is
#   exactly zero, so its policy stays uniform: its entropy lines stay at $\log 4$ until the first
#   success. None of its seeds collapses.
# * **GRPO + EMPG** is the only method with collapsed seeds (the "collapsed" column): the mean step
#   entropy falls below 0.3 nats while the policy is not reaching the goal, and every episode runs
#   to the step limit. Whether such a seed won a few episodes first (while still near uniform) varies
#   by seed; the walk cell below prints it. The next section explains why, and why dynamic sampling
#   prevents it.
#
# With 4 seeds, differences smaller than the spread of the thin lines mean nothing; raise `SCALE`
# for more. The demo runs the same four methods on 10 seeds for 60 updates
# (`python -m toy_envs.demo --out runs/demo`); its numbers are in the README and in the table of
# notebook 8.

# %%
for method in ("dapo", "dapo_empg"):
    assert summary[method]["never"] == 0 and summary[method]["collapsed"] == 0, method
    assert float(curves(method, "charts/success_rate")[:, -5:].mean(1).min()) > 0.9, method  # every seed learned
    assert summary[method]["episodes"] > summary["grpo"]["episodes"], method
assert summary["grpo"]["collapsed"] == 0
assert summary["empg"]["collapsed"] >= 1
# GRPO does not move before its first success: the entropy stays at log 4 until then
for r in runs["grpo"]:
    first = next((i for i, s in enumerate(r.curve()) if s > 0), len(r.history))
    assert all(abs(h - np.log(4)) < 1e-6 for h in r.curve("policy/entropy_mean")[:first])

# %% [markdown]
# ## Why GRPO + EMPG can collapse without reaching the goal
#
# Before the first success, and in every later batch without one, every group is all zeros, so the
# GRPO advantage is exactly zero and GRPO does not move. EMPG's modulated advantage is *not* zero there. The scaled part $g\cdot A$ vanishes,
# but the bonus remains: $A''_s = \zeta f_{s+1} - \operatorname{mean}_S(\zeta f_{\text{next}})$. That
# is an intrinsic reward for "the next step is confident", and nothing about the goal. In a
# gridworld it feeds on itself. An action that bumps into a wall leaves the agent in the same state,
# so if that state is confident the bump earns the largest bonus, and the policy grows *more*
# confident of it. DAPO's dynamic sampling drops all-failure groups before the modulation sees them,
# so the bonus only ever reshapes a real outcome signal.
#
# We look at one all-failure batch from a randomly initialised policy (at the env's default 66-step
# limit, where the cell above found one win in 2,000 random episodes).

# %%
def next_step_index(batch):
    """For every step row, the row of the same episode's next step, or -1 for a last step."""
    key = {(int(t), int(s)): i for i, (t, s) in enumerate(zip(batch.trajectory, batch.step))}
    return torch.tensor([key.get((int(t), int(s) + 1), -1) for t, s in zip(batch.trajectory, batch.step)])


def all_failure_batch(seed):
    torch.manual_seed(seed)
    policy = TabularSoftmaxPolicy(int(env.observation_space.n), 4, init_std=1.0)
    batch = collect_rollouts(policy, lambda: gym.make("toy_envs/KeyDoor-v0").unwrapped, [0, 1], group_size=8,
                             generator=torch.Generator().manual_seed(seed))
    assert int(batch.success.sum()) == 0, "this batch has a success; pick another seed"
    return batch


probe = all_failure_batch(0)
print(f"{probe.num_episodes} episodes, {probe.num_steps} steps, successes: {int(probe.success.sum())}")
adv_grpo, _ = compute_step_advantages(probe, ToyTrainConfig.for_method("grpo"))
adv_empg, _ = compute_step_advantages(probe, ToyTrainConfig.for_method("empg"))

nxt = next_step_index(probe)
has_next = nxt >= 0
state = torch.tensor(probe.records)
bump = has_next & (state == state[nxt.clamp_min(0)])  # the agent did not move (a wall, or the closed door)

fig, ax = plt.subplots(figsize=(6.5, 4))
h_next = probe.step_entropy[nxt.clamp_min(0)]
ax.scatter(h_next[has_next & ~bump], adv_empg[has_next & ~bump], s=6, alpha=0.4, label="moved")
ax.scatter(h_next[bump], adv_empg[bump], s=6, alpha=0.4, c="C3", label="bumped (same state next)")
ax.axhline(0, color="k", lw=0.8, label="GRPO advantage (all zero)")
ax.set(xlabel="entropy of the next step (nats)", ylabel="EMPG advantage of this step",
       title="all-failure batch: only the clarity bonus is left")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"GRPO advantage: all zero = {bool(torch.all(adv_grpo == 0))}; EMPG advantage: mean {float(adv_empg.mean()):.1e}, "
      f"range [{float(adv_empg.min()):+.4f}, {float(adv_empg.max()):+.4f}]")

# %% [markdown]
# The EMPG advantage falls on one decreasing curve of the entropy of the next step: the lower that entropy, the
# larger the advantage, whatever the outcome. Now what the collapsed GRPO + EMPG policies do. We play
# one episode of each final GRPO + EMPG policy from the start, sampling its actions, and count the
# distinct states it visits and how often a move left the agent where it was.

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


walks = {}
for seed, (r, is_collapsed) in enumerate(zip(runs["empg"], collapsed("empg").tolist())):
    walks[seed] = sampled_walk(r.policy)
    n_states, stayed, won = walks[seed]
    win_updates = sum(1 for s in r.curve() if s > 0)
    print(f"GRPO+EMPG seed {seed} ({'collapsed' if is_collapsed else 'not collapsed'}): updates with a win during "
          f"training {win_updates}, final step entropy {r.curve('policy/entropy_mean')[-1]:.2f}, one episode visits "
          f"{n_states} states, stays put on {stayed} of its moves, reaches the goal: {won}")

# %% [markdown]
# A collapsed policy visits a few states and spends most of its moves walking into a wall, exactly
# what the bonus paid for. (The next cell checks this on every collapsed seed: fewer than 10 states,
# and more than half of the moves stay put.)

# %%
for seed, is_collapsed in enumerate(collapsed("empg").tolist()):
    if is_collapsed:
        n_states, stayed, won = walks[seed]
        assert n_states < 10 and stayed > 50 and not won, (seed, walks[seed])

# %% [markdown]
# ## Exercise: the advantage of an all-failure batch, by hand
#
# Write `my_all_failure_advantage(step_entropy, next_index, zeta, k_f)`: EMPG's advantage for a batch
# in which every episode failed, so $A = 0$ for every step. Follow the equations: normalise the
# entropies over the batch (Eq. 12: min-max, with $\epsilon = 10^{-8}$ in the denominator), turn them
# into clarities $f = e^{-k'\tilde H}$ (Eq. 11), give each step $\zeta f$ of its *next* step and 0 to a
# last step (Eq. 8 with $A = 0$), then centre over the batch (Eq. 7). `next_index[i]` is the row of
# step `i`'s next step, or −1 (`next_step_index` above). The check compares your function with the
# library on three all-failure batches and several $(\zeta, k')$. If you get stuck, the solution is
# below the check.

# %%
def my_all_failure_advantage(step_entropy, next_index, zeta=0.1, k_f=1.0):
    """EMPG advantage [S] when every outcome advantage is 0. step_entropy: [S]; next_index: [S] int (-1 = last)."""
    raise NotImplementedError("your code here")


# %%
def check_all_failure_advantage(fn):
    """Compare fn with toy_envs' registry call (compute_step_advantages) on 3 batches x 3 (zeta, k') settings."""
    for seed in (0, 1, 2):
        batch = all_failure_batch(seed)
        for zeta, k_f in ((0.1, 1.0), (0.5, 2.0), (1.0, 0.5)):
            want, _ = compute_step_advantages(batch, ToyTrainConfig.for_method("empg", zeta=zeta, k_f=k_f))
            got = torch.as_tensor(fn(batch.step_entropy, next_step_index(batch), zeta, k_f), dtype=torch.float64)
            assert got.shape == want.shape, f"shape {tuple(got.shape)}, want {tuple(want.shape)}"
            err = float((got - want.double()).abs().max())
            assert err < 1e-6, f"batch {seed}, zeta={zeta}, k'={k_f}: largest difference {err:.2e}"
    print("correct: agrees with the library on 3 all-failure batches and 3 settings")


from toy_envs.exercises import try_exercise

try_exercise(check_all_failure_advantage, my_all_failure_advantage)

# %% [markdown]
# ### Solution
#
# The mean of the result is 0 (Eq. 7), but the result is not 0: that is the whole problem.

# %%
def solution_all_failure_advantage(step_entropy, next_index, zeta=0.1, k_f=1.0):
    H = step_entropy.double()
    h_tilde = (H - H.min()) / (H.max() - H.min() + 1e-8)  # Eq. 12
    f = torch.exp(-k_f * h_tilde)  # Eq. 11
    has_next = next_index >= 0
    bonus = torch.where(has_next, zeta * f[next_index.clamp_min(0)], torch.zeros_like(f))  # Eq. 8 with A = 0
    return bonus - bonus.mean()  # Eq. 7


check_all_failure_advantage(solution_all_failure_advantage)
assert torch.all(adv_grpo == 0) and float(adv_empg.abs().max()) > 0.01

# %% [markdown]
# **Next:** [4. Proposition 1 during training](04_prop1_during_training.ipynb): the gradient–entropy
# coupling of notebook 1, measured on the steps of real training runs.
