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
# # 1. Proposition 1: the gradient–entropy coupling
#
# EMPG starts from one observation about softmax policies: **how big a policy-gradient step is
# depends on how uncertain the policy was**. This notebook derives the fact, checks it three ways
# (closed form, autograd, Monte-Carlo), and shows why it makes confident steps learn slowly.
#
# **Setting.** A softmax policy over $A$ actions with logits $z \in \mathbb{R}^A$:
# $\pi(a) = e^{z_a} / \sum_b e^{z_b}$. The score is $\nabla_z \log \pi(a)$.
#
# **Proposition 1.** $\;\mathbb{E}_{a\sim\pi}\,\lVert \nabla_z \log \pi(a) \rVert^2 = 1 - \exp(-H_2(\pi))$,
# where $H_2(\pi) = -\log \sum_a \pi(a)^2$ is the Rényi-2 (collision) entropy.
#
# **Proof.** $\log\pi(a) = z_a - \log\sum_b e^{z_b}$, so $\nabla_z \log\pi(a) = e_a - \pi$. Then
# $\lVert e_a - \pi\rVert^2 = 1 - 2\pi_a + \sum_b \pi_b^2$. Averaging over $a \sim \pi$:
# $1 - 2\sum_a \pi_a^2 + \sum_b\pi_b^2 = 1 - \sum_a \pi_a^2 = 1 - e^{-H_2(\pi)}$. $\blacksquare$
#
# Scale the notebook up with `SCALE` (more samples, more distributions).

# %%
SCALE = 1  # 1 = quick (CI); 10 = smoother plots

import matplotlib.pyplot as plt
import torch

import empg

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## Three ways to compute the expected squared score norm
#
# 1. the closed form `empg.expected_score_norm_sq` ($1-\sum\pi^2$),
# 2. autograd: differentiate $\log\pi(a)$ for every action and average $\lVert\cdot\rVert^2$ exactly,
# 3. Monte-Carlo: sample actions from $\pi$ and average the squared norms.

# %%
A = 6
z = torch.randn(A) * 2


def autograd_expected_norm(z):
    """Exact expectation over actions of ||d log pi(a) / dz||^2, each gradient by autograd."""
    pi = torch.softmax(z, -1).detach()
    total = 0.0
    for a in range(z.numel()):
        zz = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.log_softmax(zz, -1)[a], zz)
        total += pi[a] * (g**2).sum()
    return total


def monte_carlo_norm(z, n):
    pi = torch.softmax(z, -1)
    a = torch.multinomial(pi, n, replacement=True)
    grads = torch.nn.functional.one_hot(a, z.numel()).double() - pi  # e_a - pi
    sq = (grads**2).sum(-1)
    return sq.mean(), sq.std() / n**0.5


closed = empg.expected_score_norm_sq(z)
auto = autograd_expected_norm(z)
mc, se = monte_carlo_norm(z, 20_000 * SCALE)
h2 = empg.renyi2_entropy(z)
print(f"closed form   1 - sum pi^2   = {closed:.6f}")
print(f"1 - exp(-H2)                 = {1 - torch.exp(-h2):.6f}")
print(f"autograd (exact expectation) = {auto:.6f}")
print(f"Monte-Carlo                  = {mc:.6f} ± {se:.6f} (1 s.e.)")

# %% [markdown]
# ### Check your understanding
# The closed form must equal autograd to round-off, and Monte-Carlo must sit within a few standard
# errors. A broken library fails here.

# %%
assert torch.allclose(closed, auto, atol=1e-12)
assert torch.allclose(closed, 1 - torch.exp(-h2), atol=1e-12)
assert abs(float(mc - closed)) < 5 * float(se)  # 5 s.e.: fails by chance with p < 1e-6

# %% [markdown]
# ## The coupling, across many distributions
#
# We draw random distributions (logits at several temperatures) and *structured* ones: a
# "confident" family (one action with mass $p$, the rest uniform). For each we plot the expected
# squared score norm against $H_2$ and against the Shannon entropy $H$.
#
# Against $H_2$ every point lies on the curve $1-e^{-H_2}$. Against Shannon entropy the relation is
# not a function, but it is monotone in trend: low entropy ⇒ small gradients.

# %%
n = 400 * SCALE
temps = torch.logspace(-1, 1, n)
logits = torch.randn(n, A) / temps[:, None]
p_top = torch.linspace(1 / A, 0.999, 60 * SCALE)
structured = torch.log(torch.stack([torch.cat([p[None], ((1 - p) / (A - 1)).repeat(A - 1)]) for p in p_top]))

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for name, zs, style in (("random", logits, dict(s=6, alpha=0.5)), ("one dominant action", structured, dict(s=12, c="C3"))):
    norm = empg.expected_score_norm_sq(zs)
    axes[0].scatter(empg.renyi2_entropy(zs), norm, label=name, **style)
    axes[1].scatter(empg.token_entropy(zs), norm, label=name, **style)
h = torch.linspace(0, torch.log(torch.tensor(float(A))), 100)
axes[0].plot(h, 1 - torch.exp(-h), "k--", label=r"$1-e^{-H_2}$")
axes[0].set_xlabel(r"Rényi-2 entropy $H_2$ (nats)")
axes[1].set_xlabel(r"Shannon entropy $H$ (nats)")
for ax in axes:
    ax.set_ylabel(r"$E_{a\sim\pi}\|\nabla_z \log\pi(a)\|^2$")
    ax.legend()
fig.suptitle("Proposition 1: expected gradient size is set by the policy's entropy")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Check your understanding
# Since $H_2 \le H$ always, $1-e^{-H}$ bounds the expected squared norm from above.

# %%
all_z = torch.cat([logits, structured])
assert torch.all(empg.renyi2_entropy(all_z) <= empg.token_entropy(all_z) + 1e-12)
assert torch.all(empg.expected_score_norm_sq(all_z) <= 1 - torch.exp(-empg.token_entropy(all_z)) + 1e-12)

# %% [markdown]
# ## Why confident steps learn slowly
#
# Take one plain policy-gradient step $z \leftarrow z + \alpha A\,\nabla_z\log\pi(a)$ with the same
# advantage $A=1$ on a *confident* policy and on an *uncertain* one, and measure how much the policy
# moves (KL between before and after). The confident policy barely moves, even when the sampled
# action was right: its gradient is tiny. If instead it was *wrong* with high confidence (the paper's
# "hallucinated confidence"), a plain gradient barely corrects it. EMPG's self-calibrating scale $g$
# (Eq. 10, next notebook) compensates: it enlarges updates on confident steps and damps uncertain ones.

# %%
def kl(p_logits, q_logits):
    p, lp, lq = torch.softmax(p_logits, -1), torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits, -1)
    return float((p * (lp - lq)).sum())


alpha = 0.5
rows = []
for label, logit in (("confident", torch.tensor([6.0, 0, 0, 0, 0, 0])), ("uncertain", torch.zeros(6))):
    for a, what in ((0, "argmax action"), (1, "another action")):
        g = torch.nn.functional.one_hot(torch.tensor(a), 6).double() - torch.softmax(logit, -1)
        new = logit + alpha * 1.0 * g
        rows.append((label, what, float((g**2).sum()), kl(logit, new)))
print(f"{'policy':10s} {'sampled':15s} {'||score||^2':>12s} {'KL(old||new)':>14s}")
for r in rows:
    print(f"{r[0]:10s} {r[1]:15s} {r[2]:12.5f} {r[3]:14.2e}")

# %% [markdown]
# ### Check your understanding
# The uncertain policy's expected squared score norm is $1 - 1/A$; the confident one's is far smaller.

# %%
assert abs(float(empg.expected_score_norm_sq(torch.zeros(A))) - (1 - 1 / A)) < 1e-12
assert float(empg.expected_score_norm_sq(torch.tensor([6.0, 0, 0, 0, 0, 0]))) < 0.05
assert rows[0][3] < rows[2][3]  # the confident policy moves less on its own argmax action

# %% [markdown]
# **Next:** [2. The modulation](02_the_modulation.ipynb) turns this observation into Eq. 7–12.
