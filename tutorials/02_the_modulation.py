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
# # 2. The modulation: Eq. 7–12, what it does, and where it fails
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
#
# The plan: the formulas on a hand-made batch; how $g$ depends on the whole batch; what a batch mean
# of $g$ equal to 1 does and does not preserve; the mechanism on real rollouts (EMPG enlarges
# updates on confident steps of successful episodes); then the two regimes where it backfires.

# %%
SCALE = 1  # 1 = quick (CI): 2 seeds in the rollout sections; 5 = 10 seeds

import math

import matplotlib.pyplot as plt
import torch

import empg
from toy_envs.gridworld import KeyDoorEnv
from toy_envs.train import ToyTrainConfig, collect_rollouts, compute_step_advantages, train

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
SEEDS = list(range(2 * SCALE))

# %% [markdown]
# ## The shapes of g and f
#
# $g$ is large for confident steps ($\tilde H \to 0$) and small for uncertain ones. Its batch mean is
# 1: that fixes the *sum of the weights*, not the total size of the update (a section below shows
# the difference). $k$ sets how sharply $g$ falls, and $g$ spans a factor of at most $e^k$ in one
# batch. $f \in (e^{-k_f}, 1]$ is the clarity of a step; the bonus $\zeta f$ goes to the step
# *before* it.

# %%
h_tilde = torch.linspace(0, 1, 101)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for k in (0.5, 1.0, 2.0, 4.0):
    u = torch.exp(-k * h_tilde)
    axes[0].plot(h_tilde, u / u.mean(), label=f"k = {k}")  # batch of uniformly spread entropies
    axes[1].plot(h_tilde, torch.exp(-k * h_tilde), label=f"k_f = {k}")
axes[0].axhline(1, color="gray", lw=0.8, ls=":", label="g = 1")
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
# ### The four quadrants: advantage weight, not update size
#
# * success × confident → the largest positive **advantage weight** ($g>1$);
# * failure × confident → the largest negative weight: confident mistakes ("hallucinated
#   confidence") get the strongest push away;
# * uncertain steps, success or failure → damped weights ($g<1$).
#
# Hand arithmetic: $\tilde H \in \{0, 1\}$ (up to ε), $u = e^{-\tilde H} \in \{1, 0.3679\}$, mean
# $u = 0.6839$, so $g_{conf} = 1/0.6839 = 1.462$ and $g_{unc} = 0.3679/0.6839 = 0.538$.
#
# $A''$ is a weight. The update it produces on the step's logits is $A''(e_a - \pi)$, so its size is
# $|A''|\,\lVert e_a - \pi\rVert$, and notebook 1 showed that $\lVert e_a - \pi\rVert$ is small on a
# confident step. The next cell gives each step a policy over 8 actions with exactly its entropy
# (one dominant action, the rest uniform), assumes the dominant action was sampled, and prints both.

# %%
def dominant_action_logits(entropy, num_actions=8):
    """Logits with one action of mass p and the rest uniform, with p chosen (bisection) so that H = entropy."""
    lo, hi = 1.0 / num_actions, 1.0 - 1e-12
    for _ in range(100):
        p = (lo + hi) / 2
        z = torch.log(torch.tensor([p] + [(1 - p) / (num_actions - 1)] * (num_actions - 1)))
        lo, hi = (p, hi) if float(empg.token_entropy(z)) > entropy else (lo, p)
    return z


score_norm = {}
for h in (0.1, 2.0):
    pi = torch.softmax(dominant_action_logits(h), -1)
    score_norm[h] = float(torch.linalg.vector_norm(torch.nn.functional.one_hot(torch.tensor(0), 8) - pi))
print(f"{'quadrant':18s} {'H':>4s} {'weight A_final':>14s} {'||e_a - pi||':>12s} {'update size':>11s}")
for i in range(terms.num_steps):
    h, a_final = float(terms.step_entropy[i]), float(terms.centred[i])
    name = ("success" if terms.advantage[i] > 0 else "failure") + (" confident" if h < 1 else " uncertain")
    print(f"{name:18s} {h:4.1f} {a_final:14.4f} {score_norm[round(h, 1)]:12.4f} {abs(a_final) * score_norm[round(h, 1)]:11.4f}")

# %% [markdown]
# The confident success has the largest positive weight and still the *smaller* update of the two
# successes: its $\lVert e_a - \pi\rVert$ is about fifty times smaller than the uncertain step's
# (the `||e_a - pi||` column), while $g$ varies by at most a factor $e$. EMPG shifts weight toward confident steps; it does not make their updates
# larger than the uncertain ones. (A confident step whose *unlikely* action was sampled is the
# exception: its $\lVert e_a - \pi\rVert$ is close to $\sqrt 2$.)
#
# ### Check your understanding

# %%
g_conf, g_unc = 1 / ((1 + math.exp(-1)) / 2), math.exp(-1) / ((1 + math.exp(-1)) / 2)
conf = terms.step_entropy < 1
assert torch.allclose(terms.scale[conf], torch.tensor(g_conf), atol=1e-6)
assert torch.allclose(terms.scale[~conf], torch.tensor(g_unc), atol=1e-6)
assert abs(float(terms.scale.mean()) - 1) < 1e-6  # Eq. 10 is self-calibrating
# The bonus goes to step 0 and is ζ·f of step 1; the last step of each trajectory gets none.
assert torch.all(terms.bonus[terms.step == 1] == 0)
assert torch.allclose(terms.bonus[(terms.step == 0) & (terms.trajectory % 2 == 1)], torch.tensor(0.1))  # clear next step
assert score_norm[0.1] * g_conf < score_norm[2.0] * g_unc  # the confident step's update is still the smaller

# %% [markdown]
# ## A continuous picture: the factor on the advantage against the normalised entropy
#
# The hand-made batch has only two entropies. Here is a batch of 64 trajectories of 6 steps with
# entropies drawn uniformly from $[0, 2]$ nats, half of them successes. For every step we plot the
# factor $A''/A$ by which EMPG multiplies its incoming advantage (GRPO is the line at 1):
#
# * the curve $g(\tilde H)$ is the scaling alone (Eq. 10);
# * a trajectory's **last step** gets no bonus, so it sits on $g - \bar A'/A$: the centring (Eq. 7)
#   shifts successes down and failures up by the batch mean $\bar A'$ of $A'$;
# * every **other step** also gets the bonus $\zeta f_{t+1}$ of its next step (colour): it raises a
#   success's factor and lowers a failure's, since $\zeta f / A$ has the sign of $A$.
#
# The vertical line is where $g = 1$. Left of it the step is "confident" for this batch.

# %%
gen = torch.Generator().manual_seed(0)
n_traj, n_steps = 64, 6
traj_c = torch.arange(n_traj).repeat_interleave(n_steps)
step_c = torch.arange(n_steps).repeat(n_traj)
entropy_c = torch.rand(n_traj * n_steps, generator=gen) * 2.0
rewards_c = (torch.arange(n_traj) % 2 == 0).double()  # 8 groups of 8, half successes in each
adv_c = empg.grpo_advantages(rewards_c, torch.arange(n_traj) // 8)[traj_c]
terms_c = empg.step_modulation_terms(adv_c, entropy_c, traj_c, step_c, k=1.0, k_f=1.0, zeta=0.1)
ratio = terms_c.centred / terms_c.advantage
u_grid = torch.exp(-h_tilde)
g_curve = u_grid / torch.exp(-terms_c.normalized_entropy).mean()
h_star = float(-torch.log(torch.exp(-terms_c.normalized_entropy).mean()))  # g(h_star) = 1
mean_a_prime = float(terms_c.mean_modulated)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, sign, title in ((axes[0], 1, "success (A > 0)"), (axes[1], -1, "failure (A < 0)")):
    mine = torch.sign(terms_c.advantage) == sign
    a = float(terms_c.advantage[mine][0])
    last, mid = mine & ~terms_c.has_next, mine & terms_c.has_next
    sc = ax.scatter(terms_c.normalized_entropy[mid], ratio[mid], c=terms_c.bonus[mid], cmap="viridis", s=12,
                    vmin=0.1 * math.exp(-1), vmax=0.1, label=r"step with a next step (colour: bonus $\zeta f_{t+1}$)")
    ax.scatter(terms_c.normalized_entropy[last], ratio[last], marker="x", c="C3", s=20, label="last step (no bonus)")
    ax.plot(h_tilde, g_curve, "k-", lw=1.2, label=r"scaling alone: $g(\tilde H)$")
    ax.plot(h_tilde, g_curve - mean_a_prime / a, "C3--", lw=1, label=r"$g - \bar A'/A$ (centring)")
    ax.axhline(1, color="gray", ls=":", lw=1, label="GRPO (factor 1)")
    ax.axvline(h_star, color="gray", lw=0.8)
    ax.text(0.02, 0.04, "confident", transform=ax.transAxes, fontsize=9)
    ax.text(0.98, 0.04, "uncertain", transform=ax.transAxes, fontsize=9, ha="right")
    ax.set(xlabel=r"normalised step entropy $\tilde H$", title=title)
    ax.legend(fontsize=7, loc="upper right")
axes[0].set_ylabel(r"$A''/A$ (EMPG's factor on the advantage)")
fig.colorbar(sc, ax=axes, label=r"bonus $\zeta f_{t+1}$", fraction=0.03)
plt.show()
print(f"mean A' = {mean_a_prime:.4f}; |A| = {float(terms_c.advantage.abs().max()):.3f}; g = 1 at H~ = {h_star:.3f}")

# %% [markdown]
# The bonus and the centring are small next to the scaling here ($\zeta = 0.1$ against $|A| \approx 1$).
# They stop being small when $|A|$ is small, and when $A = 0$ they are all that is left: see the
# failure regimes below.
#
# ## The scale g depends on the whole batch
#
# **Predict before you run the next cell.** In the hand-made batch, (1) what are $g_{conf}$ and
# $g_{unc}$ with $k = 2$? (2) Back at $k = 1$, add one more trajectory: a single step with
# $H = 5$ nats and advantage 0. Which of the eight original $g$ values change, and in which
# direction?

# %%
def scales(entropy, traj, stp, adv, k=1.0):
    t = empg.step_modulation_terms(adv, entropy, traj, stp, k=k, k_f=1.0, zeta=0.1)
    return t.scale, t.normalized_entropy


g_k2, _ = scales(step_entropy, trajectory, step, advantages, k=2.0)
g_k1, ht_k1 = scales(step_entropy, trajectory, step, advantages)
g_out, ht_out = scales(torch.cat([step_entropy, torch.tensor([5.0])]), torch.cat([trajectory, torch.tensor([4])]),
                       torch.cat([step, torch.tensor([0])]), torch.cat([advantages, torch.tensor([0.0])]))
print(f"{'step':>10s} {'H':>4s} {'g (k=2)':>8s} {'g (k=1)':>8s} {'H~ (k=1)':>9s} {'g, +outlier':>12s} {'H~, +outlier':>13s}")
for i in range(9):
    row = f"{int(trajectory[i]) if i < 8 else 4:>4d},{int(step[i]) if i < 8 else 0:<5d} {[0.1, 2.0, 2.0, 0.1, 0.1, 2.0, 2.0, 0.1, 5.0][i]:4.1f} "
    row += f"{float(g_k2[i]):8.3f} {float(g_k1[i]):8.3f} {float(ht_k1[i]):9.3f} " if i < 8 else " " * 29
    print(row + f"{float(g_out[i]):12.3f} {float(ht_out[i]):13.3f}")

# %% [markdown]
# With $k = 2$ the spread grows to $e^2$: $g_{conf} = 2/(1+e^{-2})$ and $g_{unc} = 2e^{-2}/(1+e^{-2})$.
# The outlier moves *every* $g$, although it changed no existing step: it stretches the
# normalisation (Eq. 12), so the uncertain steps' $\tilde H$ falls from 1 to 0.388, and the mean of
# $e^{-\tilde H}$ changes. The confident steps lose weight and the uncertain steps gain it. One odd
# step (a garbled turn, a long observation that confuses the model) changes the weights of the whole
# batch. This is the price of a scale that needs no tuning.

# %%
assert torch.allclose(g_k2[conf], torch.tensor(2 / (1 + math.exp(-2))), atol=1e-6)
assert torch.allclose(ht_out[:8][~conf], torch.tensor(1.9 / 4.9), atol=1e-6)
assert torch.all(g_out[:8][conf] < g_k1[conf]) and torch.all(g_out[:8][~conf] > g_k1[~conf])

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
# ## What a batch mean of g = 1 does and does not preserve
#
# $\operatorname{mean}_S g = 1$ keeps the sum of the weights. It does not keep the total size of the
# update, nor anything quadratic in it. For any per-step quantity $x_s$, such as the score norm
# $\lVert\nabla_z\log\pi(a_s)\rVert$:
#
# $$\frac{1}{|S|}\sum_s g_s x_s = \bar x + \operatorname{Cov}_S(g, x).$$
#
# * $g$ falls as $\tilde H$ rises, and by Proposition 1 the score norm rises with the entropy (in
#   expectation), so the covariance is negative and $\sum_s g_s\lVert\nabla_s\rVert \le \sum_s\lVert\nabla_s\rVert$.
#   This is guaranteed when $x$ is a non-decreasing function of $\tilde H$ (Chebyshev's sum
#   inequality). For the norm of a *sampled* action it is a tendency, not a guarantee.
# * $\operatorname{mean}_S g^2 = 1 + \operatorname{Var}_S(g) \ge 1$. So with a common $|A|$ the sum
#   of squared advantages grows by that factor. Quantities that are quadratic in the update, such as
#   the KL divergence between the policy before and after it, tend to grow too; the real rollouts
#   below measure by how much, and show that it is not guaranteed.
#
# First on distributions we control: 200 policies over 6 actions, with one dominant action of mass
# from $1/6$ to $0.999$ (notebook 1's family), one step each, with $x$ the expected score norm
# $\sqrt{1 - e^{-H_2}}$.

# %%
p_top = torch.linspace(1 / 6, 0.999, 200)
family = torch.log(torch.stack([torch.cat([p[None], ((1 - p) / 5).repeat(5)]) for p in p_top]))
g_family = empg.step_modulation_terms(torch.ones(200), empg.token_entropy(family), torch.arange(200),
                                      torch.zeros(200, dtype=torch.long), zeta=0.0).scale
x_family = empg.expected_score_norm_sq(family).sqrt()
print(f"mean g = {float(g_family.mean()):.4f}, mean g^2 = {float((g_family**2).mean()):.4f}")
print(f"sum g*||grad|| / sum ||grad|| = {float((g_family * x_family).sum() / x_family.sum()):.4f}")
assert float((g_family * x_family).sum()) < float(x_family.sum()) and float((g_family**2).mean()) > 1

# %% [markdown]
# ## EMPG on real rollouts
#
# Now a real batch, with the setup of the library's mechanism test (`tests/toys/test_empg_mechanism.py`).
# A tabular policy on the small KeyDoor layout (8 optimal steps) is trained with GRPO for 4 updates
# from uniform (Adam, lr 0.1), so that some states are confident and others not. Then it plays one
# batch of 16 groups × 8 episodes. On that *same* batch we compute the GRPO advantages and the full
# EMPG advantages (a paired comparison: same steps, same actions). For the tabular policy the
# gradient of step $s$ with respect to its state's logits is exactly $A_s(e_{a_s} - \pi)$, so
# $|A_s|\,\lVert e_{a_s} - \pi\rVert$ is that step's contribution to the update.
#
# Confident = the third of the batch's steps with the lowest entropy, uncertain = the highest
# third. The notebook uses seeds `SEEDS` (2 at `SCALE = 1`).

# %%
def make_env():
    return KeyDoorEnv("small")


def rollout_batch(seed):
    """The mechanism test's setup: GRPO pre-training, then one batch of 16 x 8 episodes of task 0."""
    cfg = dict(tasks_per_update=4, group_size=8, progress=False, plot=False, lr=0.1, seed=seed)
    policy = train(ToyTrainConfig(updates=4, **cfg), make_env).policy
    batch = collect_rollouts(policy, make_env, [0] * 16, 8, generator=torch.Generator().manual_seed(100 + seed))
    adv = {v: compute_step_advantages(batch, ToyTrainConfig(empg=v, **cfg))[0] for v in ("off", "scaling", "full")}
    return policy, batch, adv


def one_update_kl(table, batch, adv, lr=2.0):
    """Mean KL(old || new) over the batch's visited steps after one SGD step of REINFORCE with these advantages."""
    states = torch.as_tensor(batch.records)
    score = torch.nn.functional.one_hot(batch.actions, table.shape[1]).double() - torch.softmax(table[states], -1)
    new = table + lr * torch.zeros_like(table).index_add_(0, states, adv[:, None] * score) / batch.num_episodes
    kl_state = (torch.softmax(table, -1) * (torch.log_softmax(table, -1) - torch.log_softmax(new, -1))).sum(-1)
    return float(kl_state[states].mean())


results = []
for seed in SEEDS:
    policy, batch, adv = rollout_batch(seed)
    if float(batch.step_entropy.max() - batch.step_entropy.min()) < 1e-6:
        # No success during pre-training means no update: the policy is still uniform, g = 1 everywhere.
        print(f"seed {seed}: the pre-trained policy is still uniform, so EMPG equals GRPO here; skipped")
        continue
    norm = batch.score_norm_sq.sqrt()  # ||e_a - pi|| of the sampled action
    success_step = batch.success[batch.trajectory]
    rank = batch.step_entropy.argsort().argsort().double() / (batch.num_steps - 1)
    confident, uncertain = success_step & (rank < 1 / 3), success_step & (rank > 2 / 3)
    size = {v: adv[v].abs() * norm for v in adv}
    _, t = empg.modulate_step_advantages(adv["off"], batch.step_entropy, batch.trajectory, batch.step, return_terms=True)
    g = t.scale[t.token_step]  # g of each batch row
    table = policy.table.detach().double()
    results.append(dict(
        seed=seed, success=float(batch.success.double().mean()), steps=batch.num_steps,
        h_min=float(batch.step_entropy.min()), h_max=float(batch.step_entropy.max()),
        confident=float(size["full"][confident].mean() / size["off"][confident].mean()),
        uncertain=float(size["full"][uncertain].mean() / size["off"][uncertain].mean()),
        total_g=float((g * norm).sum() / norm.sum()), mean_g2=float((g**2).mean()),
        sq_adv=float((adv["scaling"] ** 2).sum() / (adv["off"] ** 2).sum()),
        kl=one_update_kl(table, batch, adv["full"]) / one_update_kl(table, batch, adv["off"]),
    ))
    if len(results) == 1:
        first = dict(batch=batch, adv=adv, norm=norm, success_step=success_step, rank=rank, policy=policy)
assert results, "every seed's pre-trained policy stayed uniform: pick other SEEDS"
print(f"{'seed':>4s} {'success':>7s} {'steps':>5s} {'H range (nats)':>14s} | {'EMPG/GRPO update size on success steps':^38s} | "
      f"{'sum g|grad|':>11s} {'mean g^2':>8s} {'sum A^2 (scaling)':>17s} {'KL of one update (full)':>23s}")
print(f"{'':>4s} {'':>7s} {'':>5s} {'':>14s} | {'confident':>18s} {'uncertain':>19s} | {'/ sum |grad|':>11s} {'':>8s} "
      f"{'EMPG/GRPO':>17s} {'EMPG/GRPO':>23s}")
for r in results:
    print(f"{r['seed']:4d} {r['success']:7.2f} {r['steps']:5d} {r['h_min']:6.3f}..{r['h_max']:6.3f} | {r['confident']:18.3f} {r['uncertain']:19.3f} | "
          f"{r['total_g']:11.4f} {r['mean_g2']:8.4f} {r['sq_adv']:17.3f} {r['kl']:23.3f}")

# %%
b = first["batch"]
s = first["success_step"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
sc = axes[0].scatter((first["adv"]["off"].abs() * first["norm"])[s], (first["adv"]["full"].abs() * first["norm"])[s],
                     c=b.step_entropy[s], cmap="coolwarm", s=10, label="one step of a successful episode")
top = float((first["adv"]["full"].abs() * first["norm"])[s].max()) * 1.05
axes[0].plot([0, top], [0, top], "k:", lw=0.8, label="EMPG = GRPO")
axes[0].set(xlabel=r"GRPO update size $|A|\,\|e_a-\pi\|$", ylabel=r"EMPG update size $|A''|\,\|e_a-\pi\|$",
            title=f"same steps, two advantages (seed {results[0]['seed']})")
axes[0].legend(fontsize=8, loc="upper left")
fig.colorbar(sc, ax=axes[0], label="step entropy H (nats)")
x = torch.arange(len(results))
axes[1].bar(x - 0.2, [r["confident"] for r in results], width=0.4, color="C0", label="confident third")
axes[1].bar(x + 0.2, [r["uncertain"] for r in results], width=0.4, color="C1", label="uncertain third")
axes[1].axhline(1, color="k", lw=0.8, ls=":", label="no change")
axes[1].set(xticks=x, xticklabels=[f"seed {r['seed']}" for r in results], ylabel="mean update size, EMPG / GRPO",
            title="successful episodes, per seed")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What EMPG is for, and what it does.** On the steps of successful episodes, the full EMPG
# advantages make the update on the confident third larger than GRPO's and the update on the
# uncertain third smaller (the table's two left columns; the library's test checks this on seeds
# 0–3 with margins 1.1 and 0.9). On the left panel the blue (confident) points lie above the
# diagonal and the red (uncertain) ones below it.
#
# Look at the `H range` column. After 4 updates the policy is still close to uniform ($\log 4 \approx 1.386$
# nats), so the batch's step entropies differ by only a few hundredths of a nat. Eq. 12 stretches
# whatever range there is to $[0, 1]$, so $g$ spans its full range all the same: EMPG reacts to
# *relative* confidence within the batch, however small the differences are (notebook 8 meets the
# extreme case).
#
# The other columns are the previous section on real data. The sum of $g\lVert\nabla\rVert$ is
# below the sum of $\lVert\nabla\rVert$, but only slightly on these batches.
# $\operatorname{mean} g^2$ is above 1, as it must be. The sum of squared advantages (scaling only,
# to isolate $g$) and the KL of one update (full EMPG; the same SGD step, lr 2, with each set of
# advantages) usually grow too, but not
# always: $|A|$ differs from group to group, so they also depend on where the large $|A|$ fall. While
# writing this notebook we ran this cell with `SEEDS = list(range(20))`. On the 18 seeds where the
# pre-trained policy was not uniform, the update-size ratios had the direction above on all 18, the
# sum of squared advantages grew on 16 and the KL of one update on 17 (seed 7 is the exception, at
# 0.80). So on a typical batch EMPG moves the policy *more* than GRPO, not the same amount.
#
# Does that turn into faster learning? Only a little, and only in some settings. The paired gains
# below come from a command, not from this notebook: `python -m toy_envs.experiments.ablation --out runs/ablation --text-seeds 0`
# (KeyDoor, default layout, 10 seeds, SGD; `docs/toys.md`, section "Reproducing the paper in
# miniature"). There, the area under the success curve of GRPO + EMPG is +0.030 [+0.003, +0.057]
# above GRPO's, and DAPO + EMPG's +0.037 [+0.016, +0.058] above DAPO's (paired per-seed
# differences, 95% intervals). The same experiment's TextWorld part shows no gain (notebook 7).

# %%
for r in results:
    assert r["confident"] > 1 > r["uncertain"], r
    assert r["total_g"] <= 1 <= r["mean_g2"], r

# %% [markdown]
# ## Where it fails: two regimes and their causes
#
# ### 1. A batch in which every episode failed
#
# With a sparse reward, an untrained policy often fails every episode of a batch. GRPO's advantage
# is then exactly zero: no update. EMPG's is not. $g \cdot 0 = 0$, but the bonus $\zeta f_{t+1}$ is
# still added to every step that has a next step, and the centring subtracts its mean. What is left
# rewards the steps that lead to low-entropy next states and penalises the steps that lead to
# high-entropy ones, whatever the outcome: an intrinsic reward for becoming confident, before the
# policy has ever reached the goal.
#
# **Predict:** we keep only the failed episodes of the batch above, so every group is all-failure.
# Which of their steps get a positive advantage under EMPG, and which a negative one?

# %%
fail_batch = first["batch"].select(~first["batch"].success)
adv_fail = {v: compute_step_advantages(fail_batch, ToyTrainConfig(empg=v))[0] for v in ("off", "full")}
_, t_fail = empg.modulate_step_advantages(adv_fail["off"], fail_batch.step_entropy, fail_batch.trajectory,
                                          fail_batch.step, return_terms=True)
a_final = adv_fail["full"][torch.argsort(t_fail.token_step)]  # in the terms' (trajectory, step) order
mid = torch.nonzero(t_fail.has_next).flatten()
next_h = t_fail.step_entropy[mid + 1]  # terms are sorted by (trajectory, step): the next step is the next entry
print(f"{fail_batch.num_episodes} failed episodes, {fail_batch.num_steps} steps; "
      f"GRPO: max |A| = {float(adv_fail['off'].abs().max()):.1e}; EMPG: A'' from {float(a_final.min()):+.4f} "
      f"to {float(a_final.max()):+.4f}, positive on {float((a_final > 0).double().mean()):.0%} of the steps")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.scatter(next_h, a_final[mid], s=8, label="step with a next step")
last_steps = ~t_fail.has_next
ax.scatter(t_fail.step_entropy[last_steps], a_final[last_steps], s=14, marker="x", c="C3",
           label="last step (x: its own entropy)")
ax.axhline(0, color="gray", lw=0.8, ls=":", label="GRPO: 0 everywhere")
ax.set(xlabel="step entropy of the NEXT step (nats)", ylabel="EMPG advantage A''",
       title="an all-failure batch: EMPG's signal")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Every step with a next step lies on one decreasing curve, $A'' = \zeta e^{-k_f\tilde H_{t+1}} - \bar A'$:
# the advantage is a function of *the next state's entropy* and of nothing about the task. Steps
# that lead into the batch's more confident states are reinforced, steps that lead into its most
# uncertain states and every last step are pushed down. That is an intrinsic reward for moving
# toward states where the policy is already confident. One such update is small, but nothing
# outcome-related opposes it until a success appears. `docs/toys.md` gives this as the reason why
# GRPO + EMPG learned *worse* than GRPO in the KeyDoor demo (`python -m toy_envs.demo --out runs/demo`),
# where most early batches contain no success. DAPO's dynamic sampling drops all-equal groups before
# the modulation, which removes this case (not the next one).

# %%
assert float(adv_fail["off"].abs().max()) < 1e-9  # GRPO: no signal at all
assert float(a_final.max()) > 0 > float(a_final.min())
assert torch.all(torch.diff(a_final[mid][torch.argsort(next_h)]) <= 1e-12)  # decreasing in the next step's entropy

# %% [markdown]
# ### 2. Aliased observations: confident in the wrong place
#
# The bonus pays for entering a state whose entropy is low *relative to the batch*. It cannot tell a
# state where the policy is rightly confident from one where it is confident and wrong. When many
# different situations share one observation (aliasing: a fog where every cell looks the same),
# that observation collects the gradient of all of them and its entropy can fall fastest, while
# the right action still differs from cell to cell. Then the step that *enters* the fog gets the
# largest bonus. A two-trajectory illustration with made-up entropies: at the fork (1.3 nats), one
# episode enters the fog (0.5 nats there), the other the clear route (1.35 nats, near uniform over 4
# actions). The advantages are set to 0 to isolate the bonus; in a mixed batch the same bonus is
# added on top of $gA$, to winners and losers alike.

# %%
fork = empg.step_modulation_terms(torch.zeros(4), torch.tensor([1.3, 0.5, 1.3, 1.35]), torch.tensor([0, 0, 1, 1]),
                                  torch.tensor([0, 1, 0, 1]), k=1.0, k_f=1.0, zeta=0.1)
for i, what in ((0, "fork -> fog"), (2, "fork -> clear route")):
    print(f"{what:20s} bonus {float(fork.bonus[i]):.4f}  A'' {float(fork.centred[i]):+.4f}")
assert fork.centred[0] > fork.centred[2]

# %% [markdown]
# The clarity experiment measures this on the fog gridworld, `toy_envs/Fog-v0`:
# `python -m toy_envs.experiments.clarity --env fog --no-sweep --methods grpo,empg,dapo,dapo_empg,empg_scaling,empg_bonus --seeds 10 --out runs/clarity_fog`,
# then the same with `--seeds $(seq -s, 10 19)` for a fresh block (numbers and figures in
# `docs/toys.md`, section 3). Adding the bonus on top of the scaling *lowers* the share of episodes
# that take the clear route at the fork, by 0.23 [0.12, 0.33] on seeds 0–9 and by 0.26 [0.17, 0.35]
# on seeds 10–19 (paired per-seed differences, 95% intervals), and GRPO + EMPG succeeds less often
# than GRPO (0.21 against 0.59, then 0.25 against 0.38). An earlier ζ sweep on seeds 0–9 only (not
# rerun on fresh seeds) found the share falling further as $\zeta$ grew, on both bases.
#
# On `toy_envs/Clarity-v0`, built for the bonus's intended case (no aliasing; the default of
# `python -m toy_envs.experiments.clarity --out runs/clarity`), the bonus does not steer either:
# EMPG − GRPO in the predictable-route share is +0.084 [−0.032, +0.200] on seeds 0–19 and
# +0.001 [−0.022, +0.024] on seeds 20–39, both intervals including 0. Notebook 6 looks at both worlds.
#
# ## The two batch layouts give identical numbers
#
# LLM trainers store a batch either as **one row per step** (verl-agent) or as **concatenated rows**
# (one row per trajectory, tokens of all turns; `step_ids` marks which step each token belongs to,
# $-1$ for prompt/observation/padding tokens). The same core serves both. We rebuild the hand-made
# batch as concatenated rows: each step becomes 3 tokens whose entropies average to the step
# entropy, with observation tokens (id $-1$, arbitrary entropy) in between.

# %%
L = 11  # [obs obs][step0 x3][obs obs obs][step1 x3]
step_ids = torch.full((4, L), -1)
step_ids[:, 2:5] = 0
step_ids[:, 8:11] = 1
token_entropy = torch.rand(4, L, generator=torch.Generator().manual_seed(0)) * 5  # values at tokens in no step must not matter
for i in range(8):
    b_i, s_i = int(trajectory[i]), int(step[i])
    cols = slice(2, 5) if s_i == 0 else slice(8, 11)
    token_entropy[b_i, cols] = step_entropy[i] + torch.tensor([-0.05, 0.0, 0.05])  # mean = step entropy
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
# ## Exercise: Eq. 7–12 in a plain loop
#
# Write `my_modulate(advantage, step_entropy, trajectory, step, k, k_f, zeta)` for the step-row
# layout: one value per step in, one $A''$ per step out, in the same order. Use Python loops and
# the table at the top; do not call `empg`. Rows may come in any order, and "the next step" of
# $(i, t)$ is the step of trajectory $i$ with the smallest index above $t$ (indices may skip).
# Then run the check cell.

# %%
def my_modulate(advantage, step_entropy, trajectory, step, k=1.0, k_f=1.0, zeta=0.1, eps=1e-8):
    """A'' (Eq. 7) for S steps in the step-row layout. All inputs [S]; returns [S] float64."""
    raise NotImplementedError("your code here")


# %%
def check_modulate(fn):
    """Compare fn with empg.modulate_step_advantages on 30 random shuffled batches (tolerance 1e-10)."""
    gen = torch.Generator().manual_seed(2)
    for _ in range(30):
        n_traj = int(torch.randint(1, 6, (1,), generator=gen))
        lengths = torch.randint(1, 5, (n_traj,), generator=gen)
        traj = torch.arange(n_traj).repeat_interleave(lengths)
        stp = torch.cat([torch.randperm(6, generator=gen)[:n].sort().values for n in lengths.tolist()])  # gaps allowed
        perm = torch.randperm(traj.numel(), generator=gen)
        traj, stp = traj[perm], stp[perm]
        h = torch.rand(traj.numel(), generator=gen) * 3
        adv = torch.randn(n_traj, generator=gen)[traj]
        kw = dict(k=float(torch.rand(1, generator=gen) * 2), k_f=1.0, zeta=0.1)
        want = empg.modulate_step_advantages(adv, h, traj, stp, **kw)
        got = torch.as_tensor(fn(adv, h, traj, stp, **kw), dtype=torch.float64)
        assert torch.allclose(got, want, atol=1e-10), f"trajectory {traj.tolist()}, step {stp.tolist()}: got {got}, want {want}"
    print("correct: agrees with empg.modulate_step_advantages on 30 random batches")


from toy_envs.exercises import try_exercise

try_exercise(check_modulate, my_modulate)

# %% [markdown]
# ### Solution

# %%
def solution_modulate(advantage, step_entropy, trajectory, step, k=1.0, k_f=1.0, zeta=0.1, eps=1e-8):
    S = len(step_entropy)
    h = [float(x) for x in step_entropy]
    h_tilde = [(x - min(h)) / (max(h) - min(h) + eps) for x in h]  # Eq. 12
    u = [math.exp(-k * x) for x in h_tilde]
    g = [x / (sum(u) / S + eps) for x in u]  # Eq. 10
    f = [math.exp(-k_f * x) for x in h_tilde]  # Eq. 11
    a_prime = []
    for s in range(S):
        later = [r for r in range(S) if trajectory[r] == trajectory[s] and step[r] > step[s]]
        bonus = zeta * f[min(later, key=lambda r: int(step[r]))] if later else 0.0
        a_prime.append(g[s] * float(advantage[s]) + bonus)  # Eq. 8
    mean = sum(a_prime) / S
    return torch.tensor([a - mean for a in a_prime])  # Eq. 7


check_modulate(solution_modulate)

# %% [markdown]
# **Next:** [3. EMPG vs GRPO on a gridworld](03_gridworld_empg_vs_grpo.ipynb): whole training runs.
