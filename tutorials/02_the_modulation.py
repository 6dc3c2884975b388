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
# # 2. The modulation: Eq. 7–12 on a hand-made batch
#
# Notebook 1 showed that a softmax policy's gradient shrinks with its entropy. EMPG rescales each
# step's advantage by the policy's uncertainty *at that step*, and adds a bonus for steps that lead
# to a clear next state. Over the set $S$ of all steps in a batch:
#
# | Eq. | name | formula |
# |---|---|---|
# | 12 | batch min-max normalisation | $\tilde H_s = (H_s - \min_S H)/(\max_S H - \min_S H + \epsilon)$ |
# | 10 | self-calibrating scale | $g_s = e^{-k\tilde H_s} / (\operatorname{mean}_S e^{-k\tilde H} + \epsilon)$ |
# | 11 | future clarity | $f_s = e^{-k_f \tilde H_s}$ |
# | 8 | modulated advantage | $A'_{i,t} = g_{i,t}A_{i,t} + \zeta f_{i,t+1}$ (bonus only if step $t+1$ exists) |
# | 7 | centring | $A''_s = A'_s - \operatorname{mean}_S A'$ |
#
# $H_s$ is the **step entropy**: the mean token entropy over the tokens of step $s$.

# %%
SCALE = 1  # unused here: everything in this notebook is instant

import matplotlib.pyplot as plt
import torch

import empg

torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## The shapes of g and f
#
# $g$ is large for confident steps ($\tilde H \to 0$) and small for uncertain ones, and its batch
# mean is 1, so it redistributes update size without changing its total. $k$ sets how sharply.
# $f \in (e^{-k_f}, 1]$ is the clarity of a step; the bonus $\zeta f$ goes to the step *before* it.

# %%
h_tilde = torch.linspace(0, 1, 101)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for k in (0.5, 1.0, 2.0, 4.0):
    u = torch.exp(-k * h_tilde)
    axes[0].plot(h_tilde, u / u.mean(), label=f"k = {k}")  # batch of uniformly spread entropies
    axes[1].plot(h_tilde, torch.exp(-k * h_tilde), label=f"k_f = {k}")
axes[0].axhline(1, color="gray", lw=0.8, ls=":")
axes[0].set(xlabel=r"normalised step entropy $\tilde H$", ylabel="g (Eq. 10)", title="self-calibrating scale")
axes[1].set(xlabel=r"normalised step entropy $\tilde H$", ylabel="f (Eq. 11)", title="future clarity")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A hand-made batch in the step-row layout
#
# Four trajectories of one task. Two succeeded and two failed, so their GRPO advantages are
# $\pm 0.866$ (reward minus group mean, over the unbiased group std). In each, one step was taken
# confidently and one uncertainly:
#
# | trajectory | outcome | step 0 entropy | step 1 entropy |
# |---|---|---|---|
# | 0 | success | 0.1 (confident) | 2.0 (uncertain) |
# | 1 | success | 2.0 (uncertain) | 0.1 (confident) |
# | 2 | failure | 0.1 (confident) | 2.0 (uncertain) |
# | 3 | failure | 2.0 (uncertain) | 0.1 (confident) |

# %%
trajectory = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
step = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
step_entropy = torch.tensor([0.1, 2.0, 2.0, 0.1, 0.1, 2.0, 2.0, 0.1])
rewards = torch.tensor([1.0, 1.0, 0.0, 0.0])
base = empg.grpo_advantages(rewards, torch.zeros(4, dtype=torch.long))
advantages = base[trajectory]  # every step carries its trajectory's advantage
print("GRPO advantage per trajectory:", base)

terms = empg.step_modulation_terms(advantages, step_entropy, trajectory, step, k=1.0, k_f=1.0, zeta=0.1)
print(f"{'traj':>4} {'step':>4} {'H':>5} {'H~':>6} {'g':>6} {'bonus':>7} {'A':>7} {'A_prime':>8} {'A_final':>8}")
for i in range(terms.num_steps):
    print(
        f"{int(terms.trajectory[i]):4d} {int(terms.step[i]):4d} {float(terms.step_entropy[i]):5.2f} "
        f"{float(terms.normalized_entropy[i]):6.3f} {float(terms.scale[i]):6.3f} {float(terms.bonus[i]):7.4f} "
        f"{float(terms.advantage[i]):7.3f} {float(terms.modulated[i]):8.4f} {float(terms.centred[i]):8.4f}"
    )

# %% [markdown]
# ### The four quadrants
#
# * success × confident → the largest positive update ($g>1$);
# * failure × confident → the largest penalty: confident mistakes ("hallucinated confidence") are
#   punished hardest;
# * uncertain steps, success or failure → damped ($g<1$).
#
# Hand arithmetic: $\tilde H \in \{0, 1\}$ (up to ε), $u = e^{-\tilde H} \in \{1, 0.3679\}$, mean
# $u = 0.6839$, so $g_{conf} = 1/0.6839 = 1.462$ and $g_{unc} = 0.3679/0.6839 = 0.538$.

# %%
conf = terms.step_entropy < 1
succ = terms.advantage > 0
plt.figure(figsize=(5, 3.8))
for mask, label, c in ((conf & succ, "confident success", "C2"), (~conf & succ, "uncertain success", "C9"),
                       (conf & ~succ, "confident failure", "C3"), (~conf & ~succ, "uncertain failure", "C1")):
    plt.scatter(terms.advantage[mask], (terms.scale * terms.advantage)[mask], s=80, c=c, label=label)
plt.plot([-1.2, 1.2], [-1.2, 1.2], "k:", lw=0.8, label="unmodulated")
plt.xlabel("incoming advantage A"), plt.ylabel("g · A"), plt.legend(fontsize=8)
plt.title("Eq. 10 amplifies confident steps, damps uncertain ones")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Check your understanding

# %%
import math

g_conf, g_unc = 1 / ((1 + math.exp(-1)) / 2), math.exp(-1) / ((1 + math.exp(-1)) / 2)
assert torch.allclose(terms.scale[conf], torch.tensor(g_conf), atol=1e-6)
assert torch.allclose(terms.scale[~conf], torch.tensor(g_unc), atol=1e-6)
assert abs(float(terms.scale.mean()) - 1) < 1e-6  # Eq. 10 is self-calibrating
# The bonus goes to step 0 and is ζ·f of step 1; the last step of each trajectory gets none.
assert torch.all(terms.bonus[terms.step == 1] == 0)
assert torch.allclose(terms.bonus[(terms.step == 0) & (terms.trajectory % 2 == 1)], torch.tensor(0.1))  # clear next step

# %% [markdown]
# ## What centring does (Eq. 7)
#
# After scaling and the bonus, the batch mean of $A'$ is no longer zero (the bonus is always
# positive). Eq. 7 subtracts that mean, so the modulated advantages stay a zero-mean signal: the
# bonus changes *which* steps are reinforced, not the overall push on every action. There is no
# division by the standard deviation.

# %%
print(f"mean A' = {float(terms.modulated.mean()):.4f}  ->  mean A'' = {float(terms.centred.mean()):.2e}")
assert abs(float(terms.centred.mean())) < 1e-12

# %% [markdown]
# ## The two batch layouts give identical numbers
#
# LLM trainers store a batch either as **one row per step** (verl-agent) or as **concatenated rows**
# (one row per trajectory, tokens of all turns; `step_ids` marks which step each token belongs to,
# $-1$ for prompt/observation/padding tokens). The same core serves both. We rebuild the batch above
# as concatenated rows: each step becomes 3 tokens whose entropies average to the step entropy,
# with observation tokens (id $-1$, arbitrary entropy) in between.

# %%
L = 11  # [obs obs][step0 x3][obs obs obs][step1 x3]
step_ids = torch.full((4, L), -1)
step_ids[:, 2:5] = 0
step_ids[:, 8:11] = 1
token_entropy = torch.rand(4, L) * 5  # values at tokens in no step must not matter
for i in range(8):
    b, s = int(trajectory[i]), int(step[i])
    cols = slice(2, 5) if s == 0 else slice(8, 11)
    token_entropy[b, cols] = step_entropy[i] + torch.tensor([-0.05, 0.0, 0.05])  # mean = step entropy
token_adv = base[:, None].expand(4, L).clone()

token_out = empg.modulate_advantages(token_adv, token_entropy, step_ids, k=1.0, k_f=1.0, zeta=0.1)
step_out = empg.modulate_step_advantages(advantages, step_entropy, trajectory, step, k=1.0, k_f=1.0, zeta=0.1)
print(token_out[:, [2, 8]])
print(step_out.reshape(4, 2))
assert torch.allclose(token_out[:, [2, 8]], step_out.reshape(4, 2), atol=1e-10)
assert torch.equal(token_out[step_ids < 0], token_adv[step_ids < 0])  # tokens in no step unchanged

# %% [markdown]
# Shuffling the step rows changes nothing either: the next step is found by (trajectory, step), not
# by position.

# %%
perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
shuffled = empg.modulate_step_advantages(advantages[perm], step_entropy[perm], trajectory[perm], step[perm])
assert torch.allclose(shuffled, step_out[perm])

# %% [markdown]
# **Next:** [3. EMPG vs GRPO on a gridworld](03_gridworld_empg_vs_grpo.ipynb).
