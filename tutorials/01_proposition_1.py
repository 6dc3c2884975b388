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

import math

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
# advantage $A=1$ on a *confident* policy (logits $[6, 0, 0, 0, 0, 0]$) and on an *uncertain* one
# (uniform), and measure how much the policy moves: the KL divergence between before and after.
#
# **Predict before you run the next cell.** (1) The confident policy samples its argmax action: is
# its squared score norm above or below 0.01? (2) It samples one of its *other* actions instead: is
# that squared score norm larger or smaller than the uncertain policy's?

# %%
def kl(p_logits, q_logits):
    p, lp, lq = torch.softmax(p_logits, -1), torch.log_softmax(p_logits, -1), torch.log_softmax(q_logits, -1)
    return float((p * (lp - lq)).sum())


alpha = 0.5
confident, uncertain = torch.tensor([6.0, 0, 0, 0, 0, 0]), torch.zeros(6)
rows = []
for label, logit in (("confident", confident), ("uncertain", uncertain)):
    for a, what in ((0, "argmax action"), (1, "another action")):
        score = torch.nn.functional.one_hot(torch.tensor(a), 6).double() - torch.softmax(logit, -1)  # e_a - pi
        new = logit + alpha * 1.0 * score
        rows.append((label, what, float(torch.softmax(logit, -1)[a]), float((score**2).sum()), kl(logit, new)))
print(f"{'policy':10s} {'sampled':15s} {'pi(a)':>7s} {'||score||^2':>12s} {'KL(old||new)':>14s}")
for r in rows:
    print(f"{r[0]:10s} {r[1]:15s} {r[2]:7.4f} {r[3]:12.5f} {r[4]:14.2e}")

# %% [markdown]
# The confident policy barely moves when it samples its argmax action, even though that action was
# rewarded: its score $e_a - \pi$ is almost zero. When it samples one of its other actions, the
# squared score norm is the largest in the table, larger than the uncertain policy's. That does not
# contradict Proposition 1, which is a statement about the *expectation* over $a \sim \pi$. The other
# actions are rare, so they contribute little to the expectation. The next cell splits the
# expectation into its terms.

# %%
for label, logit in (("confident", confident), ("uncertain", uncertain)):
    pi = torch.softmax(logit, -1)
    per_action = 1 - 2 * pi + (pi**2).sum()  # ||e_a - pi||^2 for every a
    contribution = pi * per_action
    print(f"{label:10s} argmax term pi*||.||^2 = {float(contribution[0]):.5f}, other five actions together = "
          f"{float(contribution[1:].sum()):.5f}, expectation = {float(contribution.sum()):.5f} "
          f"(closed form {float(empg.expected_score_norm_sq(logit)):.5f})")

# %% [markdown]
# For the confident policy the five rare actions carry almost all of the expectation, and even
# together they stay far below the uncertain policy's expectation. Rare samples with large
# gradients do happen. When the confident action was *wrong* (the paper's "hallucinated
# confidence"), such a rare sample is the only kind of step that moves the policy much. But most of
# the confident policy's samples are its argmax action, with almost no gradient.
#
# ## What EMPG's scale can and cannot do about it
#
# EMPG's self-calibrating scale $g$ (Eq. 10, next notebook) multiplies each step's advantage by
# $g_s = e^{-k\tilde H_s}/\operatorname{mean}_S e^{-k\tilde H}$, where $\tilde H_s \in [0, 1]$ is the
# step's entropy after min-max normalisation over the batch. So across one batch, $g$ varies by at
# most a factor $e^{k}$: with the default $k = 1$, the most confident step gets at most
# $e \approx 2.72$ times the weight of the most uncertain one. Compare that with the two policies
# above, placed in one batch:

# %%
step_h = torch.stack([empg.token_entropy(confident), empg.token_entropy(uncertain)])
terms = empg.step_modulation_terms(torch.ones(2), step_h, torch.tensor([0, 1]), torch.tensor([0, 0]), k=1.0, zeta=0.0)
g_conf, g_unc = float(terms.scale[0]), float(terms.scale[1])
sq_argmax_conf, sq_argmax_unc = rows[0][3], rows[2][3]
esq_conf, esq_unc = float(empg.expected_score_norm_sq(confident)), float(empg.expected_score_norm_sq(uncertain))
print(f"g:  confident {g_conf:.3f}, uncertain {g_unc:.3f}  -> ratio {g_conf / g_unc:.3f} (e = {math.e:.3f})")
print(f"squared score norm of the argmax action: uncertain / confident = {sq_argmax_unc / sq_argmax_conf:,.0f}")
print(f"score norm of the argmax action:         uncertain / confident = {(sq_argmax_unc / sq_argmax_conf) ** 0.5:,.1f}")
print(f"expected squared score norm (Prop. 1):   uncertain / confident = {esq_unc / esq_conf:,.1f}")
print(f"KL moved on the argmax action:           uncertain / confident = {rows[2][4] / rows[0][4]:,.0f}")

# %% [markdown]
# The squared gradient norms differ by a factor in the thousands, the expected ones by a factor in
# the tens, and $g$ by at most $e$. So $g$ **tilts** the balance toward confident steps. It does
# not compensate for the coupling, and it is not meant to: a confident step's update
# $g A (e_a - \pi)$ is still scaled by its small score. What EMPG changes is the *relative* weight
# of confident and uncertain steps within a batch. Notebook 2 measures how much that changes the
# update on real rollouts.
#
# ### Check your understanding
# The uncertain policy's expected squared score norm is $1 - 1/A$; the confident one's is far smaller.
# The ratio of $g$ between the two steps is $e^{k}$ (their normalised entropies are 0 and 1), far below
# the ratio of their squared score norms.

# %%
assert abs(float(empg.expected_score_norm_sq(torch.zeros(A))) - (1 - 1 / A)) < 1e-12
assert esq_conf < 0.05
assert rows[0][4] < rows[2][4]  # the confident policy moves less on its own argmax action
assert rows[1][3] > rows[2][3]  # ... but a rare action of the confident policy has the larger score
assert abs(g_conf / g_unc - math.e) < 1e-6
assert sq_argmax_unc / sq_argmax_conf > 1000 * (g_conf / g_unc)

# %% [markdown]
# ## Exercise: the closed form, by hand
#
# Write `my_expected_score_norm_sq(z)`: the expected squared score norm
# $\mathbb{E}_{a\sim\pi}\lVert e_a - \pi\rVert^2$ of a softmax policy with logits `z` (a 1-D tensor),
# without autograd and without `empg`. Use the proof above. Then run the check cell. If you get stuck,
# the solution is below the check.

# %%
def my_expected_score_norm_sq(z):
    """E_{a~pi} ||e_a - pi||^2 for pi = softmax(z). z: [A] float64 logits. Returns a 0-d tensor."""
    raise NotImplementedError("your code here")


# %%
def check_expected_score_norm_sq(fn):
    """Compare fn with the exact autograd expectation on 50 random policies (float64, tolerance 1e-10)."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        size = int(torch.randint(2, 9, (1,), generator=gen))
        z = torch.randn(size, generator=gen) * float(torch.rand(1, generator=gen) * 6)
        got, want = torch.as_tensor(fn(z), dtype=torch.float64), autograd_expected_norm(z)
        assert torch.allclose(got, want, atol=1e-10), f"logits {z.tolist()}: got {float(got)}, want {float(want)}"
    print("correct: agrees with autograd on 50 random policies")


from toy_envs.exercises import try_exercise

try_exercise(check_expected_score_norm_sq, my_expected_score_norm_sq)

# %% [markdown]
# ### Solution
#
# $\lVert e_a - \pi\rVert^2 = 1 - 2\pi_a + \sum_b \pi_b^2$, so the expectation is $1 - \sum_a \pi_a^2$.
# Computing $\pi$ with `softmax` keeps it stable for large logits.

# %%
def solution_expected_score_norm_sq(z):
    pi = torch.softmax(z, -1)
    return 1 - (pi**2).sum()


check_expected_score_norm_sq(solution_expected_score_norm_sq)

# %% [markdown]
# **Next:** [2. The modulation](02_the_modulation.ipynb) turns this observation into Eq. 7–12, and
# shows what it does to real updates.
