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
# # 4. Future clarity: the bonus on its own
#
# EMPG's second term (Eq. 8, 11) adds $\zeta f_{i,t+1}$ to step $t$, where $f = e^{-k'\tilde H}$ is
# the *clarity* of the next step. The stated intent is to reward actions that lead to states
# where the agent knows what to do. `toy_envs/Fog-v0` is built to test exactly that. Two routes
# from `S` to `G` have the same length and the same reward. On the clear route (`c`) every cell has
# its own observation id. On the fog route (`~`) every cell emits **the same** id, so a policy
# that only sees its observation cannot tell the fog cells apart.
#
# Question: does the bonus steer the agent into the clear route? And what does $\zeta$ do?
#
# We isolate the bonus with the `bonus` variant (`empg="bonus"`: $k=0$, so $g\equiv1$; only
# Eq. 11, 8 and 7). The baseline is GRPO, and the sweep is $\zeta \in \{0, 0.1, 0.3, 1\}$.

# %%
SCALE = 1  # 1 = quick (CI: 6 seeds per setting); 4 = 24 seeds

import math

import gymnasium as gym
import matplotlib.pyplot as plt
import torch

import toy_envs  # noqa: F401  (registers the env ids)
from toy_envs.train import ToyTrainConfig, make_policy, train
from toy_envs.demo import DEMO_DEFAULTS, mean_ci

torch.set_num_threads(1)
N_SEEDS = 6 * SCALE
UPDATES = 30
ENV_KWARGS = dict(layout="small", max_steps=40)  # 8 optimal steps; a 5x limit (random policy: ~15% success)

# %%
env = gym.make("toy_envs/Fog-v0", render_mode="ansi", **ENV_KWARGS).unwrapped
obs, info = env.reset(seed=0)
print(env.render())
layout = env.layout
start = int(obs)
fog_id = env.observation_of((info["pos"][0] + 1, info["pos"][1]))  # the cell below the start: fog
first_clear_id = env.observation_of((info["pos"][0] - 1, info["pos"][1]))  # the cell above: clear route
print(f"start id {start}, first clear cell id {first_clear_id}, fog id {fog_id} (shared by every ~ cell), "
      f"{env.observation_space.n} ids in all")

# %% [markdown]
# ## Where the bonus acts
#
# At the fork (the start) the agent goes up into the clear route or down into the fog (left and
# right are walls). The bonus for that first step is $\zeta f$ of the *second* step, that is,
# the clarity of the first clear cell or of the fog id. So the fork decision gets a larger bonus on
# whichever side the policy is **currently more confident**. We check this on one batch of
# rollouts, and we also check the route label the env reports in `info["route"]`.

# %%
from toy_envs.train import collect_rollouts
from toy_envs.policies import TabularSoftmaxPolicy


def make_env():
    return gym.make("toy_envs/Fog-v0", **ENV_KWARGS).unwrapped


torch.manual_seed(0)
probe_policy = TabularSoftmaxPolicy(int(env.observation_space.n), 4, init_std=1.0)
probe = collect_rollouts(probe_policy, make_env, [0], group_size=16, generator=torch.Generator().manual_seed(0))
adv = torch.zeros(probe.num_steps, dtype=torch.float64)  # a zero outcome: only the bonus is left
from empg import step_modulation_terms

terms = step_modulation_terms(adv, probe.step_entropy, probe.trajectory, probe.step, k=0.0, k_f=1.0, zeta=0.1)
state = torch.tensor(probe.records)
visits = torch.bincount(state, minlength=env.observation_space.n)
print("visits per observation id:", visits.tolist())

# %% [markdown]
# ### Check your understanding
# The fork step's bonus is $\zeta f$ of step 1 (Eq. 11 by hand, with the batch min–max of Eq. 12).
# The fog id is visited more than any clear cell, because every fog cell reports it. And the
# expert's route (BFS, ties to "up") is labelled `clear`.

# %%
H = probe.step_entropy
f_by_hand = torch.exp(-(H - H.min()) / (H.max() - H.min() + 1e-8))  # Eq. 12 then Eq. 11, k' = 1
for i in torch.nonzero(terms.step == 0).flatten().tolist():
    j = int(torch.nonzero((terms.trajectory == terms.trajectory[i]) & (terms.step == 1)).flatten()[0])
    nxt_row = int(torch.nonzero((probe.trajectory == terms.trajectory[j]) & (probe.step == 1)).flatten()[0])
    assert abs(float(terms.bonus[i]) - 0.1 * float(f_by_hand[nxt_row])) < 1e-9
assert int(visits[fog_id]) > int(visits[torch.arange(len(visits)) != fog_id].max())
expert_env = make_env()
expert_env.reset(seed=0)
for action in toy_envs.optimal_actions(expert_env):
    _, reward, terminated, _, info = expert_env.step(action)
assert terminated and info["success"] and info["route"] == "clear"

# %% [markdown]
# ## Train: GRPO against the bonus at several ζ
#
# Every setting shares the demo's hyper-parameters (`toy_envs.demo.DEMO_DEFAULTS`: SGD, REINFORCE
# summed over an episode's steps) and the same seeds. During training we trace three numbers
# through the trainer's `callback`. The first is the **route preference** at the fork,
# $\pi(\text{up}\mid\text{start}) / (\pi(\text{up}\mid\text{start}) + \pi(\text{down}\mid\text{start}))$: 0.5 means
# no preference, and 1 means always the clear route. The other two are the policy's entropies at
# the two cells after the fork. After training we play 50 episodes per
# seed and record where successful episodes reached the goal (`info["route"]`).

# %%
def route_preference(policy):
    """π(up | start) / (π(up | start) + π(down | start)): how the policy splits between the two routes."""
    p = torch.softmax(policy.table[start].detach(), -1)
    return float(p[0] / (p[0] + p[2]))  # actions: 0 up, 1 right, 2 down, 3 left (walls)


def policy_entropy(policy, state_id):
    return float(torch.distributions.Categorical(logits=policy.table[state_id].detach()).entropy())


def evaluate(policy, episodes=50, seed=0):
    """Success rate and the share of wins that came through the clear route (sampled actions)."""
    eval_env, gen = make_env(), torch.Generator().manual_seed(seed)
    wins, clear_wins = 0, 0
    for ep in range(episodes):
        obs, info = eval_env.reset(seed=ep)
        terminated = truncated = False
        while not (terminated or truncated):
            action = int(policy.sample(torch.tensor([int(obs)]), generator=gen)[0])
            obs, reward, terminated, truncated, info = eval_env.step(action)
        wins += int(info["success"])
        clear_wins += int(info["success"] and info["route"] == "clear")
    return wins / episodes, clear_wins / max(wins, 1)


SETTINGS = {"GRPO": ("grpo", 0.1), "bonus ζ=0": ("empg_bonus", 0.0), "bonus ζ=0.1": ("empg_bonus", 0.1),
            "bonus ζ=0.3": ("empg_bonus", 0.3), "bonus ζ=1": ("empg_bonus", 1.0)}
traces, finals = {}, {}
for name, (method, zeta) in SETTINGS.items():
    traces[name], finals[name] = [], []
    for seed in range(N_SEEDS):
        cfg = ToyTrainConfig.for_method(method, seed=seed, zeta=zeta, progress=False, plot=False,
                                        **dict(DEMO_DEFAULTS, updates=UPDATES))
        policy = make_policy(cfg, env)
        trace = []
        record = lambda update, row: trace.append(  # noqa: E731
            [route_preference(policy), policy_entropy(policy, fog_id),
             policy_entropy(policy, first_clear_id), row["charts/success_rate"]])
        train(cfg, make_env, policy, callback=record)
        traces[name].append(trace)
        finals[name].append(evaluate(policy))
traces = {k: torch.tensor(v, dtype=torch.float64) for k, v in traces.items()}  # [seeds, updates, 4]
finals = {k: torch.tensor(v, dtype=torch.float64) for k, v in finals.items()}  # [seeds, 2]

# %%
print(f"{'setting':12s} {'route preference, final':>24s} {'success (eval)':>18s} {'wins via clear':>18s}")
for name in SETTINGS:
    p_up = mean_ci(traces[name][:, -1, 0].tolist())
    succ = mean_ci(finals[name][:, 0].tolist())
    clear = mean_ci(finals[name][:, 1].tolist())
    print(f"{name:12s} {p_up[0]:15.2f} ± {p_up[1]:.2f} {succ[0]:11.2f} ± {succ[1]:.2f} {clear[0]:11.2f} ± {clear[1]:.2f}")

# %%
colors = dict(zip(SETTINGS, ["k", "C7", "C0", "C1", "C3"]))
x = torch.arange(1, UPDATES + 1)


def band(ax, values, label, color, ls="-"):
    stats = [mean_ci(values[:, i].tolist()) for i in range(values.shape[1])]
    m = torch.tensor([s[0] for s in stats])
    h = torch.tensor([0.0 if math.isnan(s[1]) else s[1] for s in stats])
    ax.plot(x, m, color=color, ls=ls, label=label)
    ax.fill_between(x, m - h, m + h, color=color, alpha=0.15)


fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
for name in SETTINGS:
    band(axes[0], traces[name][:, :, 0], name, colors[name])
    band(axes[1], traces[name][:, :, 3], name, colors[name])
axes[0].axhline(0.5, color="gray", lw=0.8, ls=":")
axes[0].set(xlabel="update", ylabel="route preference: clear (1) vs fog (0)", ylim=(0, 1))
axes[1].set(xlabel="update", ylabel="training success rate", ylim=(-0.02, 1.02))
for name in ("GRPO", "bonus ζ=0.1", "bonus ζ=1"):
    band(axes[2], traces[name][:, :, 1], f"{name}: fog id", colors[name], ls="--")
    band(axes[2], traces[name][:, :, 2], f"{name}: first clear cell", colors[name])
axes[2].set(xlabel="update", ylabel="policy entropy after the fork (nats)")
axes[0].legend(fontsize=8)
axes[2].legend(fontsize=7)
for ax in axes:
    ax.grid(alpha=0.3)
fig.suptitle(f"Fog-v0 {ENV_KWARGS}, mean ± 95% CI over {N_SEEDS} seeds")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What this run shows, honestly
#
# With 6 seeds (`SCALE = 1`) the bands are wide. We also ran `SCALE = 3` (18 seeds, about 40 s).
# Its final route preferences were GRPO 0.86 ± 0.11, ζ=0 0.90 ± 0.02, ζ=0.1 0.88 ± 0.04,
# ζ=0.3 0.82 ± 0.15 and ζ=1 0.62 ± 0.23. Its success rates were 0.98, 1.00, 1.00, 0.88 and 0.46.
# The patterns below held in both runs.
#
# * **GRPO alone already prefers the clear route**, with no bonus. A policy that cannot tell fog
#   cells apart rarely finishes the fog route within the step limit. So successes come through the
#   clear route (the last column: even agents that wander into the fog come back and win by the
#   clear route), and the outcome advantage reinforces "up".
# * **The bonus pushes toward the fog, not away from it, and more so the larger ζ.** Right after
#   the start, the route preference dips below 0.5 under the bonus, deepest for ζ = 1. The right
#   panel shows why. The fog id is visited on every fog step of every episode, so its row of the
#   table collects far more gradient than any clear cell. It becomes *confident* first (low
#   entropy), even though no single action is right in every fog cell. The bonus measures the
#   **policy's** confidence in the next state, not whether that state really is clear. So it
#   rewards the step into the fog, which makes the fog row more confident still (the dashed red
#   curve). This is the paper's "hallucinated confidence", seen from the bonus's side.
# * **ζ trades the bonus against the outcome.** At the paper's ζ = 0.1 the bonus is a small
#   perturbation of a GRPO advantage of size ~1, and the end result is within the noise of ζ = 0.
#   At ζ = 1 the bonus is as large as the outcome signal. Success drops to about half: the policy
#   settles into what it is confident about rather than what wins.
# * **ζ = 0 is not GRPO.** The `bonus` variant still centres the advantages over all steps
#   (Eq. 7). Failed episodes are longer than successful ones, so that centring alone changes the
#   update. The right control for the bonus is ζ = 0, not GRPO.
#
# So, at this budget, the toy does **not** show the future-clarity bonus steering toward the
# clear route. It shows the condition the bonus needs: low policy entropy must mean that the
# agent really knows what to do. Observation aliasing breaks that condition. In an LLM agent the
# "observation" is the whole context, and aliasing is far rarer than in this gridworld. But a
# model that is confidently wrong in some state type would attract the bonus in the same way.
#
# ### Check your understanding
# These are facts of the run above, deterministic given the seeds. Early in training the fog id is
# more confident than the first clear cell. The strongest bonus pulls the early route preference
# below GRPO's, and it never beats GRPO's success. The traced values are proper probabilities.

# %%
early = slice(2, 10)
assert float(traces["bonus ζ=0.1"][:, early, 1].mean()) < float(traces["bonus ζ=0.1"][:, early, 2].mean())
for name in SETTINGS:
    assert torch.all((traces[name][:, :, 3] >= 0) & (traces[name][:, :, 3] <= 1))
    assert torch.all((traces[name][:, :, 0] > 0) & (traces[name][:, :, 0] < 1))
assert float(finals["bonus ζ=1"][:, 0].mean()) <= float(finals["GRPO"][:, 0].mean())
assert float(traces["bonus ζ=1"][:, 1:6, 0].mean()) < float(traces["GRPO"][:, 1:6, 0].mean())

# %% [markdown]
# **Next:** [5. A TextWorld agent](05_textworld_agent.ipynb): the same trainer with a log-linear
# policy on real text games, and the ablation table.
