"""Tests of the toy trainer (toy_envs/train.py) and its CLI (python -m toy_envs.train, empg-toy).

In-process tests use a duck-typed chain environment defined here (no gymnasium), which also checks
that the trainer needs nothing but ``reset(seed=)``/``step`` and ``observation_space.n``. The CLI
runs in a subprocess on the real ``toy_envs/KeyDoor-v0`` (small layout) with tiny budgets.
Kill-and-resume and damaged checkpoints are in test_toy_reliability.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from empg.io import CheckpointDir, MetricsLog
from empg.metrics import unknown_metrics
from toy_envs.train import ToyTrainConfig, collect_rollouts, compute_step_advantages, train

REPO = Path(__file__).resolve().parents[2]


class _Space:
    def __init__(self, n):
        self.n = n


class ChainEnv:
    """Walk right from cell 0 to cell n within T steps; action 1 = right, 0 = left, 2/3 = stay. Reward 1 at n."""

    def __init__(self, n=4, T=12):
        self.n, self.T = n, T
        self.observation_space, self.action_space = _Space(n + 1), _Space(4)

    def reset(self, seed=None, options=None):
        self.s, self.t = 0, 0
        return self.s, {}

    def step(self, a):
        self.t += 1
        self.s = self.s + 1 if a == 1 else (max(0, self.s - 1) if a == 0 else self.s)
        done = self.s == self.n
        return self.s, float(done), done, (self.t >= self.T and not done), {}


def _cfg(**kw):
    base = dict(updates=4, tasks_per_update=2, group_size=4, progress=False, plot=False, lr=0.2)
    base.update(kw)
    return ToyTrainConfig(**base)


def test_rollout_layout_and_step_entropy():
    """Step rows: one per step, step index 0..T_i−1, entropy = log 4 under the uniform initial policy."""
    from toy_envs.policies import TabularSoftmaxPolicy

    pol = TabularSoftmaxPolicy(5, 4)
    batch = collect_rollouts(pol, ChainEnv, [0, 1], 3, generator=torch.Generator().manual_seed(0))
    assert batch.num_episodes == 6 and batch.group.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.num_steps == int(batch.length.sum())
    for i in range(6):
        steps = batch.step[batch.trajectory == i].sort().values
        assert steps.tolist() == list(range(int(batch.length[i])))
    assert torch.allclose(batch.step_entropy, torch.full_like(batch.step_entropy, torch.log(torch.tensor(4.0)).item()))
    # Prop. 1 under the uniform policy: E‖e_a − π‖² = 1 − 1/4 and every taken action has exactly that norm.
    assert torch.allclose(batch.score_norm_sq, torch.full_like(batch.score_norm_sq, 0.75))
    assert torch.allclose(batch.rewards, batch.success.double())


def test_advantages_go_through_the_registry():
    """GRPO: A = (R − mean_g)/(std_g + 1e-6) on each step; EMPG full: zero batch mean (Eq. 7) and different."""
    from toy_envs.policies import TabularSoftmaxPolicy

    pol = TabularSoftmaxPolicy(5, 4, init_std=1.0)
    batch = collect_rollouts(pol, ChainEnv, [0, 1, 2, 3], 4, generator=torch.Generator().manual_seed(3))
    adv_g, stats = compute_step_advantages(batch, _cfg(empg="off"))
    r = batch.rewards
    for g in range(4):
        rg = r[batch.group == g]
        a = (rg - rg.mean()) / (rg.std() + 1e-6)
        for j, traj in enumerate(torch.nonzero(batch.group == g).flatten().tolist()):
            assert torch.allclose(adv_g[batch.trajectory == traj], a[j].expand(int(batch.length[traj])).double())
    adv_e, stats_e = compute_step_advantages(batch, _cfg(empg="full"))
    assert abs(float(adv_e.mean())) < 1e-9
    assert not torch.allclose(adv_e, adv_g)
    assert stats["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)
    assert "empg/clarity_mean" in stats and "empg/step_entropy_mean" in stats


@pytest.mark.parametrize("method", ["grpo", "empg", "dapo_empg"])
def test_chain_learns(method):
    """A 4-step chain (uniform success ≈ 0.2 in 12 steps): 25 updates lift the success rate above 0.9."""
    cfg = ToyTrainConfig.for_method(method, updates=25, tasks_per_update=4, group_size=8, progress=False, plot=False, lr=0.2)
    res = train(cfg, ChainEnv)
    curve = res.curve()
    assert sum(curve[-3:]) / 3 > 0.9, curve
    row = res.history[-1]
    for key in ("charts/success_rate", "charts/episode_return", "charts/episode_length", "empg/step_entropy_mean",
                "empg/scale_mean", "empg/clarity_mean", "policy/kl_prev", "policy/kl_init", "policy/grad_norm",
                "loss/policy", "prop1/score_norm_sq_mean", "prop1/expected_score_norm_sq_mean"):
        assert key in row, key
        assert row[key] == row[key], key  # no NaN
    assert all(unknown_metrics(r) == [] for r in res.history)  # every logged name is in empg.metrics.METRICS


def test_clipped_loss_with_epochs_and_kl():
    cfg = _cfg(loss="clipped", epochs=3, minibatches=2, kl_coef=0.05, empg="full", agg="seq-mean-token-mean")
    row = train(cfg, ChainEnv).history[-1]
    assert "policy/clip_frac" in row and "loss/kl" in row
    assert row["policy/kl_init"] > 0
    assert unknown_metrics(row) == []
    # DAPO logs its dynamic sampling; once every group succeeds it drops them all and skips the update.
    hist = train(_cfg(outcome="dapo", empg="full", updates=2), ChainEnv).history
    assert all("dapo/kept_groups" in r and "empg/step_entropy_mean" in r for r in hist)
    assert all(unknown_metrics(r) == [] for r in hist)


def _comparable(history):
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in history]


@pytest.mark.parametrize("kw", [dict(), dict(loss="clipped", epochs=2, minibatches=2, outcome="dapo", empg="full", optimizer="adam")])
def test_resume_equals_uninterrupted(tmp_path, kw):
    """3 updates + resume to 6 gives exactly the history and parameters of 6 uninterrupted updates."""
    full = train(_cfg(updates=6, out=str(tmp_path / "full"), checkpoint_every=2, **kw), ChainEnv)
    part = train(_cfg(updates=3, out=str(tmp_path / "part"), checkpoint_every=2, **kw), ChainEnv)
    checkpoints = CheckpointDir(tmp_path / "part" / "checkpoints")
    assert checkpoints.steps() == [2, 3]  # the last two are kept
    step, ck = checkpoints.load_latest()
    assert step == 3 and ck["update"] == 3 and len(ck["history"]) == 3
    assert {"policy", "optimizer", "generator", "prop1_generator", "torch_rng", "init_policy"} <= set(ck)
    resumed = train(_cfg(updates=6, out=str(tmp_path / "part"), checkpoint_every=2, resume=True, **kw), ChainEnv)
    assert _comparable(resumed.history) == _comparable(full.history)
    assert torch.equal(resumed.policy.table, full.policy.table)
    # the metrics log holds each update once, the same rows as the uninterrupted run's
    log = MetricsLog(tmp_path / "part" / "metrics.jsonl", step_key="update").read()
    assert _comparable(log) == _comparable(MetricsLog(tmp_path / "full" / "metrics.jsonl").read())
    assert [r["update"] for r in log] == [1, 2, 3, 4, 5, 6]
    # stopping early through the callback also leaves a resumable checkpoint
    stopped = train(_cfg(updates=6, out=str(tmp_path / "cb"), checkpoint_every=0, **kw), ChainEnv,
                    callback=lambda u, m: u == 2)
    assert len(stopped.history) == 2 and CheckpointDir(tmp_path / "cb" / "checkpoints").steps() == [2]
    again = train(_cfg(updates=6, out=str(tmp_path / "cb"), checkpoint_every=0, resume=True, **kw), ChainEnv)
    assert _comparable(again.history) == _comparable(full.history)


def test_resume_rejects_changed_config(tmp_path):
    train(_cfg(updates=2, out=str(tmp_path)), ChainEnv)
    with pytest.raises(ValueError, match="lr"):
        train(_cfg(updates=4, out=str(tmp_path), resume=True, lr=0.5), ChainEnv)
    # a folder that holds a run is never silently started over
    with pytest.raises(ValueError, match="already holds a run"):
        train(_cfg(updates=4, out=str(tmp_path)), ChainEnv)


def test_failed_checkpoint_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """A write that fails (disk full at the rename) raises, leaves no temporary file, and resume uses the last good one."""
    train(_cfg(updates=2, out=str(tmp_path), checkpoint_every=1), ChainEnv)

    real_replace = os.replace

    def boom(src, dst):  # the disk fills up exactly when a checkpoint is renamed into place
        if Path(dst).name.startswith("step-"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        train(_cfg(updates=3, out=str(tmp_path), checkpoint_every=1, resume=True), ChainEnv)
    monkeypatch.undo()
    checkpoints = CheckpointDir(tmp_path / "checkpoints")
    assert checkpoints.steps() == [1, 2] and checkpoints.load_latest()[0] == 2
    assert not [p.name for p in tmp_path.rglob(".*.tmp")]  # no temp files left behind
    resumed = train(_cfg(updates=3, out=str(tmp_path), checkpoint_every=1, resume=True), ChainEnv)
    full = train(_cfg(updates=3, checkpoint_every=1), ChainEnv)
    assert _comparable(resumed.history) == _comparable(full.history)


@pytest.mark.parametrize("bad", [dict(updates=0), dict(group_size=1), dict(lr=-1.0), dict(lr=float("nan")),
                                 dict(empg="half"), dict(outcome="ppo"), dict(loss="mse"), dict(agg="sum"),
                                 dict(zeta=-0.1), dict(resume=True), dict(tasks_per_update=2.5), dict(policy="mlp")])
def test_bad_config_raises(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name if name != "resume" else "out"):
        ToyTrainConfig(**bad)
    with pytest.raises(ValueError, match="method"):
        ToyTrainConfig.for_method("ppo")


def test_text_env_with_loglinear_policy():
    """A one-step text task: pick the command that names the object in the observation (log-linear policy)."""
    objects = ["key", "apple", "lamp", "coin"]

    class PickEnv:
        def reset(self, seed=None, options=None):
            self.target = objects[(seed or 0) % 4]
            cmds = [f"take {o}" for o in objects]
            return f"a {self.target}", {"admissible_commands": cmds}

        def step(self, a):
            won = objects[a] == self.target
            return "done", float(won), True, False, {"won": won, "admissible_commands": ["look"]}

    cfg = _cfg(updates=20, tasks_per_update=8, group_size=4, num_tasks=4, lr=0.2, num_features=4096)
    res = train(cfg, PickEnv)
    assert type(res.policy).__name__ == "LogLinearPolicy"
    assert sum(res.curve()[-3:]) / 3 > 0.75, res.curve()  # uniform start: 0.25; seed 0 reaches ~0.93


def _cli(*args, cwd=REPO):
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "toy_envs.train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


SMALL = ["--env", "toy_envs/KeyDoor-v0", "--env-kwargs", '{"layout": "small"}', "--tasks-per-update", "2",
         "--group-size", "4", "--progress", "false", "--checkpoint-every", "1"]


def test_cli_smoke_and_resume(tmp_path):
    """Subprocess runs as a user would: metrics files, plot, checkpoint; --resume continues the run."""
    run = tmp_path / "run"
    p = _cli(*SMALL, "--method", "empg", "--updates", "2", "--out", str(run), "--prop1-every", "2")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["method"] == "empg" and summary["updates"] == 2
    for name in ("metrics.jsonl", "config.json", "checkpoints/step-00000002.pt", "curves.png", "prop1.csv"):
        assert (run / name).stat().st_size > 0, name
    first = MetricsLog(run / "metrics.jsonl", step_key="update").read()
    header = set().union(*first)
    assert "charts/success_rate" in header and "empg/scale_mean" in header and "policy/kl_prev" in header
    assert unknown_metrics(header) == []
    prop1 = (run / "prop1.csv").read_text().splitlines()
    assert prop1[0].startswith("update,step_entropy,renyi2,score_norm_sq") and len(prop1) > 1
    # --resume takes the saved config (method, env, sizes) from OUT/config.json
    p = _cli("--out", str(run), "--resume", "--updates", "3", "--progress", "false")
    assert p.returncode == 0, p.stderr
    resumed = MetricsLog(run / "metrics.jsonl", step_key="update").read()
    assert [r["update"] for r in resumed] == [1, 2, 3]
    assert _comparable(resumed[:2]) == _comparable(first)
    saved = json.loads((run / "config.json").read_text())
    assert saved["empg"] == "full" and json.loads(saved["env_kwargs"]) == {"layout": "small"}
    # without --resume the same folder is refused (it holds a run), naming the way out
    p = _cli(*SMALL, "--updates", "2", "--out", str(run))
    assert p.returncode == 2 and "already holds a run" in p.stderr and "--resume" in p.stderr


def _plain(text):
    """Help and error text without tyro's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_cli_help_and_errors(capsys):
    from toy_envs.train import main

    assert main(["--help"]) == 0
    text = _plain(capsys.readouterr().out)
    assert "Episodes per task, G" in text and "--tasks-per-update" in text and "--method" in text
    assert "--progress, --no-progress" in text and "OutcomeConfig.max_refill_rounds" in text
    assert main(["--updates", "0", "--progress", "false"]) == 2
    assert "updates must be an int >= 1" in _plain(capsys.readouterr().err)
    assert main(["--env", "toy_envs/NoSuch-v0", "--updates", "1"]) == 2
    assert "NoSuch" in capsys.readouterr().err
    assert main(["--progress=maybe"]) == 2
    assert "--progress expects a boolean" in capsys.readouterr().err
    assert main(["--env-kwargs", "[1]"]) == 2
    assert "env_kwargs must be a JSON object" in _plain(capsys.readouterr().err)


@pytest.mark.parametrize("argv, expected", [
    (["--method", "dapo_empg", "--clip-high", "0.3", "--dapo-max-rounds", "1"],
     dict(outcome="dapo", empg="full", clip_high=0.3, dapo_max_rounds=1)),
    (["--progress", "false", "--plot=no", "--tensorboard"], dict(progress=False, plot=False, tensorboard=True)),
    (["--no-progress", "--clip-high", "None", "--lr", "0.5"], dict(progress=False, clip_high=None, lr=0.5)),
])
def test_cli_flags_map_onto_the_config(argv, expected):
    """The old flag forms (``--progress false``, a bare ``--resume``, ``--method``) and tyro's (``--no-progress``) both work,
    and DAPO's flags land on the core's config objects (OutcomeConfig, LossConfig)."""
    from toy_envs.train import config_from_args

    cfg = config_from_args(argv)
    assert json.loads(cfg.env_kwargs) == {}
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key
    if cfg.outcome == "dapo":
        assert cfg.outcome_config.dynamic_sampling and cfg.outcome_config.max_refill_rounds == 1
        assert cfg.loss_config.resolved_clip_high(cfg.outcome_config) == 0.3


def test_config_embeds_the_core_configs():
    """DAPO without --clip-high clips higher at 0.28, GRPO symmetrically; the defaults are the core's."""
    import empg

    dapo, grpo = ToyTrainConfig.for_method("dapo"), ToyTrainConfig.for_method("grpo")
    assert dapo.loss_config.resolved_clip_high(dapo.outcome_config) == empg.config.DAPO_CLIP_HIGH == 0.28
    assert grpo.loss_config.resolved_clip_high(grpo.outcome_config) == grpo.clip_low == 0.2
    assert dapo.dapo_max_rounds == empg.OutcomeConfig().max_refill_rounds == 3
    e = ToyTrainConfig.for_method("empg_bonus", k=2.0).empg_config
    assert (e.variant, e.k, e.k_f, e.zeta) == ("bonus", 2.0, 1.0, 0.1)
    assert e.modulation_kwargs()["k"] == 0.0  # bonus only: the core's EMPGConfig turns the scaling off


def _biased_chain_policy():
    """Tabular policy on ChainEnv whose 'right' logit grows along the chain (0, 0.5, …, 2): the step
    entropies differ by state (log 4 = 1.386 at cell 0 down to 1.114 at cell 3, the last one acted in)
    and both outcomes occur."""
    from toy_envs.policies import TabularSoftmaxPolicy

    pol = TabularSoftmaxPolicy(5, 4)
    with torch.no_grad():
        pol.table[:, 1] = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])
    return pol


def _hand_step_advantages(batch, variant, k=1.0, k_f=1.0, zeta=0.1, eps=1e-8):
    """Spec §3-4 as a plain loop over step rows, matched to trajectories and next steps by their ids."""
    import math

    adv_of = {}
    for g in set(batch.group.tolist()):
        members = [i for i in range(batch.num_episodes) if int(batch.group[i]) == g]
        r = [float(batch.rewards[i]) for i in members]
        mean = sum(r) / len(r)
        std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))  # unbiased, as torch.std
        for i, x in zip(members, r):
            adv_of[i] = (x - mean) / (std + 1e-6)
    h = batch.step_entropy.tolist()
    h_norm = [(x - min(h)) / (max(h) - min(h) + eps) for x in h]  # Eq. 12
    u = [math.exp(-k * x) for x in h_norm]
    g_scale = [x / (sum(u) / len(u) + eps) for x in u]  # Eq. 10
    f = [math.exp(-k_f * x) for x in h_norm]  # Eq. 11
    row_of = {(int(t), int(s)): j for j, (t, s) in enumerate(zip(batch.trajectory, batch.step))}
    out = []
    for j in range(batch.num_steps):
        t, s = int(batch.trajectory[j]), int(batch.step[j])
        a = adv_of[t] * (g_scale[j] if variant in ("scaling", "full") else 1.0)
        if variant in ("bonus", "full") and (t, s + 1) in row_of:  # Eq. 8: only when a next step exists
            a += zeta * f[row_of[(t, s + 1)]]
        out.append(a)
    if variant == "off":
        return torch.tensor(out, dtype=torch.float64)
    mean = sum(out) / len(out)
    return torch.tensor([a - mean for a in out], dtype=torch.float64)  # Eq. 7


@pytest.mark.parametrize("variant", ["off", "scaling", "bonus", "full"])
def test_step_advantages_match_a_hand_loop(variant):
    """The trainer's advantages equal spec §3-4 computed by a loop, on a real rollout whose step rows are
    interleaved across episodes (time-major), so rows must be matched by (trajectory, step) ids.

    Tolerance 1e-7: the bonus-only variant divides by (mean u + eps) with u = 1, a relative 1e-8 change.
    """
    pol = _biased_chain_policy()
    batch = collect_rollouts(pol, ChainEnv, [0, 1, 2], 6, generator=torch.Generator().manual_seed(4))
    assert batch.trajectory[:3].tolist() == [0, 1, 2]  # interleaved, not sorted by trajectory
    assert batch.step_entropy.std() > 0.05 and 0 < int(batch.success.sum()) < batch.num_episodes
    adv, _ = compute_step_advantages(batch, _cfg(empg=variant))
    assert torch.allclose(adv, _hand_step_advantages(batch, variant), rtol=0, atol=1e-7)


def test_dapo_selection_keeps_mixed_groups_with_rows_matched():
    """Dynamic sampling keeps exactly the groups with unequal rewards; select/concat keep every step row
    with its own episode (records, actions, entropies, step index) and re-index trajectories."""
    from empg.advantages import dynamic_sampling_mask
    from toy_envs.train import Rollout

    pol = _biased_chain_policy()
    b = collect_rollouts(pol, lambda: ChainEnv(T=6), [0, 1, 2, 3, 4, 5], 3, generator=torch.Generator().manual_seed(4))
    keep = dynamic_sampling_mask(b.rewards, b.group)
    for g in range(6):
        r = b.rewards[b.group == g]
        assert bool(keep[b.group == g].all()) == bool(r.max() > r.min())
        assert bool(keep[b.group == g].any()) == bool(r.max() > r.min())
    assert 0 < int(keep.sum()) < b.num_episodes  # this seed has both kinds of group

    def episodes(r):
        """Per episode: (reward, group size, [(step, record, action, entropy)] in step order)."""
        out = []
        for i in range(r.num_episodes):
            rows = sorted((int(r.step[j]), r.records[j], int(r.actions[j]), float(r.step_entropy[j]))
                          for j in range(r.num_steps) if int(r.trajectory[j]) == i)
            out.append((float(r.rewards[i]), rows))
        return out

    kept = b.select(keep)
    both = Rollout.concat([kept, kept])
    expected = [e for e, k in zip(episodes(b), keep.tolist()) if k]
    assert episodes(kept) == expected and episodes(both) == expected + expected
    assert set(both.group[: kept.num_episodes].tolist()).isdisjoint(both.group[kept.num_episodes:].tolist())
    # the advantages of the merged batch: GRPO within each (distinct) group, as a loop computes it
    adv, _ = compute_step_advantages(both, _cfg(outcome="dapo", empg="full"))
    assert torch.allclose(adv, _hand_step_advantages(both, "full"), rtol=0, atol=1e-7)


def test_kl_metrics_directions():
    """policy/kl_prev = KL(π_before ‖ π_after) and policy/kl_init = KL(π_after ‖ π_init) on visited steps.

    A one-cell chain (n = 1) visits only state 0, so both are the KL of that one row, computed here by
    hand in float64. The two directions differ by ~10% here, so a swapped direction fails (tolerance 1e-9).
    """
    from toy_envs.policies import TabularSoftmaxPolicy

    torch.manual_seed(0)
    pol = TabularSoftmaxPolicy(2, 4, init_std=0.5)
    p_init = torch.softmax(pol.table[0].detach().double(), -1)
    res = train(_cfg(updates=1, tasks_per_update=2, group_size=8, lr=0.3), lambda: ChainEnv(n=1, T=3), policy=pol)
    p_after = torch.softmax(res.policy.table[0].detach().double(), -1)
    kl_before_after = float((p_init * (p_init / p_after).log()).sum())
    kl_after_init = float((p_after * (p_after / p_init).log()).sum())
    assert abs(kl_before_after - kl_after_init) > 1e-3
    row = res.history[0]
    assert row["policy/kl_prev"] == pytest.approx(kl_before_after, rel=1e-9)
    assert row["policy/kl_init"] == pytest.approx(kl_after_init, rel=1e-9)


@pytest.mark.parametrize("bad", [dict(outcome="dapo", group_size=1), dict(lr="0.1"), dict(clip_high="x"),
                                 dict(k=True), dict(num_features=True)])
def test_bad_config_raises_value_error_naming_the_field(bad):
    """DAPO with G = 1 would drop every group and never update; non-numbers must not pass as numbers."""
    name = [k for k in bad if k != "outcome"][0]
    with pytest.raises(ValueError, match=name):
        ToyTrainConfig(**bad)


def test_rollout_step_entropy_is_that_of_the_acting_state():
    """Each step row's entropy, old log-prob and score norm are those of π(·|s_t) at the state where the
    action was taken (not the next state's): under a state-dependent policy the cells have different
    entropies (1.386 … 1.114), and each episode's recorded states replay ChainEnv's dynamics."""
    pol = _biased_chain_policy()
    batch = collect_rollouts(pol, ChainEnv, [0, 1], 4, generator=torch.Generator().manual_seed(4))
    assert len(set(batch.records)) >= 3  # several cells, so several distinct entropies
    probs = torch.softmax(pol.table.detach().double(), -1)
    for j in range(batch.num_steps):
        s, a = batch.records[j], int(batch.actions[j])
        p = probs[s]
        assert float(batch.step_entropy[j]) == pytest.approx(float(-(p * p.log()).sum()), abs=1e-6)
        assert float(batch.old_logp[j]) == pytest.approx(float(p[a].log()), abs=1e-6)
        assert float(batch.score_norm_sq[j]) == pytest.approx(float(1 - 2 * p[a] + (p * p).sum()), abs=1e-6)
    for i in range(batch.num_episodes):
        rows = sorted((int(batch.step[j]), batch.records[j], int(batch.actions[j]))
                      for j in range(batch.num_steps) if int(batch.trajectory[j]) == i)
        assert rows[0][1] == 0  # every episode starts in cell 0
        for (_, s, a), (_, s_next, _) in zip(rows, rows[1:]):
            assert s_next == (s + 1 if a == 1 else (max(0, s - 1) if a == 0 else s))
