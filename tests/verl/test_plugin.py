"""scaled.verl.plugin against verl 0.9.1's real registry, DataProto and trainer code paths (CPU)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.verl

verl = pytest.importorskip("verl.protocol")
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo import core_algos, ray_trainer  # noqa: E402

import empg  # noqa: E402
import scaled.verl.plugin as plugin  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
plugin.install()
GRPO = ray_trainer.compute_advantage.__empg_wrapped__  # verl's original compute_advantage


def _cfg(**empg_opts):
    return OmegaConf.create({"adv_estimator": "empg", "norm_adv_by_std_in_grpo": True, "empg": empg_opts})


def _run(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_registry_finds_empg_through_verl_use_external_modules():
    code = (
        "import verl\n"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
        "print('FOUND', get_adv_estimator_fn('empg').__module__)\n"
    )
    r = _run(code, {"VERL_USE_EXTERNAL_MODULES": "scaled.verl.plugin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FOUND scaled.verl.plugin" in r.stdout
    # Control: the same lookup without the env var fails, so the env var is what registers it.
    r = _run(code, {})
    assert r.returncode != 0 and "Unknown advantage estimator" in r.stderr


def test_step_ids_from_response_mask_hand_example():
    mask = torch.tensor([[1, 1, 0, 0, 1, 0, 1, 1], [0, 1, 1, 1, 0, 0, 0, 0]])
    # runs of ones: row 0 -> turns 0 (cols 0-1), 1 (col 4), 2 (cols 6-7); row 1 -> turn 0 (cols 1-3)
    want = torch.tensor([[0, 0, -1, -1, 1, -1, 2, 2], [-1, 0, 0, 0, -1, -1, -1, -1]])
    assert torch.equal(plugin.step_ids_from_response_mask(mask), want)


def _concat_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L = 6, 10
    mask = torch.zeros(B, L, dtype=torch.long)
    spans = [[(0, 3), (5, 7)], [(0, 2)], [(0, 1), (3, 4), (6, 9)], [(0, 4), (6, 8)], [(0, 5)], [(1, 3), (4, 10)]]
    for i, row in enumerate(spans):
        for a, b in row:
            mask[i, a:b] = 1
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    rewards = torch.zeros(B, L)
    last = (mask * torch.arange(L)).argmax(-1)
    rewards[torch.arange(B), last] = scores
    entropy = torch.rand(B, L, generator=g) * 2.0
    entropy[mask == 0] = 123.0  # garbage off the response mask must not matter
    uid = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask, plugin.ENTROPY_KEY: entropy},
        non_tensors={"uid": uid},
    )
    return data, spans


def test_concatenated_rows_equal_modulate_advantages():
    data, spans = _concat_batch()
    ent = data.batch[plugin.ENTROPY_KEY].clone()
    mask = data.batch["response_mask"].clone()
    # step ids written by hand from the spans (k-th span of a row = step k)
    ids = torch.full(mask.shape, -1)
    for i, row in enumerate(spans):
        for k, (a, b) in enumerate(row):
            ids[i, a:b] = k
    base = GRPO(data.select(deepcopy=True), adv_estimator="grpo").batch["advantages"]
    cfg = _cfg(k=1.0, k_f=2.0, zeta=0.05)
    out = ray_trainer.compute_advantage(data, adv_estimator="empg", config=cfg)
    want = empg.modulate_advantages(base, ent, ids, k=1.0, k_f=2.0, zeta=0.05)
    torch.testing.assert_close(out.batch["advantages"], want, rtol=1e-6, atol=1e-6)
    assert torch.all(out.batch["advantages"][mask == 0] == 0)
    assert plugin.ENTROPY_KEY not in out.batch.keys()  # popped after use: not shipped to the actor
    # EMPG really changed something (so the comparison above is not vacuous)
    assert not torch.allclose(out.batch["advantages"], base)


def test_variant_off_is_verl_grpo_and_missing_entropy_raises():
    data, _ = _concat_batch(1)
    base = GRPO(data.select(deepcopy=True), adv_estimator="grpo").batch["advantages"]
    out = ray_trainer.compute_advantage(data.select(deepcopy=True), adv_estimator="empg", config=_cfg(variant="off"))
    torch.testing.assert_close(out.batch["advantages"], base)
    fn = core_algos.get_adv_estimator_fn("empg")
    with pytest.raises(ValueError, match="no entropies"):
        fn(token_level_rewards=data.batch["token_level_rewards"], response_mask=data.batch["response_mask"],
           index=data.non_tensor_batch["uid"], config=_cfg())
    with pytest.raises(ValueError, match="variant"):
        ray_trainer.compute_advantage(data, adv_estimator="empg", config=_cfg(variant="bogus"))


def _step_rows(seed=0):
    """3 trajectories (2 for prompt p, 1 for q... plus a second for q), one row per turn, shuffled."""
    g = torch.Generator().manual_seed(seed)
    rows = [  # (trajectory, step, uid, score on the row)
        ("t0", 0, "p", 0.0), ("t0", 1, "p", 0.0), ("t0", 2, "p", 1.0),
        ("t1", 0, "p", 0.0), ("t1", 1, "p", 0.0),
        ("t2", 0, "q", 0.0), ("t2", 1, "q", 1.0),
        ("t3", 0, "q", 0.0), ("t3", 1, "q", 1.0), ("t3", 2, "q", 0.5),
    ]
    perm = torch.randperm(len(rows), generator=g).tolist()
    rows = [rows[i] for i in perm]
    S, L = len(rows), 6
    lens = torch.randint(1, L + 1, (S,), generator=g)
    mask = (torch.arange(L) < lens[:, None]).long()
    rewards = torch.zeros(S, L)
    rewards[torch.arange(S), lens - 1] = torch.tensor([r[3] for r in rows])
    entropy = torch.rand(S, L, generator=g) * 3.0
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask, plugin.ENTROPY_KEY: entropy},
        non_tensors={
            "uid": np.array([r[2] for r in rows], dtype=object),
            plugin.TRAJECTORY_KEY: np.array([r[0] for r in rows], dtype=object),
            plugin.STEP_KEY: np.array([r[1] for r in rows]),
        },
    )
    return data, rows


def test_step_rows_equal_modulate_step_advantages():
    data, rows = _step_rows()
    mask = data.batch["response_mask"].double()
    step_entropy = (data.batch[plugin.ENTROPY_KEY].double() * mask).sum(-1) / mask.sum(-1)
    # Outcome of a trajectory = the score of its LAST step row: t0 -> 1, t1 -> 0, t2 -> 1, t3 -> 0.5.
    # GRPO by hand, unbiased std over 2 trajectories: p: mean .5, std .7071 -> +-0.7071;
    # q: mean .75, std .35355 -> t2 +0.7071, t3 -0.7071.
    traj_adv = {"t0": 0.70710678, "t1": -0.70710678, "t2": 0.70710678, "t3": -0.70710678}
    base = torch.tensor([traj_adv[r[0]] for r in rows], dtype=torch.float64)
    traj = torch.tensor([int(r[0][1]) for r in rows])
    step = torch.tensor([r[1] for r in rows])
    want = empg.modulate_step_advantages(base, step_entropy, traj, step, k=1.0, k_f=1.0, zeta=0.1)
    out = ray_trainer.compute_advantage(data, adv_estimator="empg", config=_cfg())
    adv = out.batch["advantages"]
    torch.testing.assert_close(adv, (want[:, None] * mask).float(), rtol=1e-5, atol=1e-5)


def test_v1_keys_give_the_step_rows_layout():
    """V1 path: compute_advantage_for_multi_trajectories with keys {uid}_{session}_{index}."""
    v1_utils = pytest.importorskip("verl.trainer.ppo.v1.utils")
    ref = ray_trainer.compute_advantage(_step_rows(3)[0], adv_estimator="empg", config=_cfg())
    data, rows = _step_rows(3)  # the same batch again (the hook pops its entropy key after use)
    keys = [f"{r[2]}_{r[0]}_{r[1]}" for r in rows]  # uid_session_index: trajectory = uid_session
    data.non_tensor_batch.pop(plugin.TRAJECTORY_KEY)
    data.non_tensor_batch.pop(plugin.STEP_KEY)
    out = v1_utils.compute_advantage_for_multi_trajectories(data, batch_keys=keys, adv_estimator="empg", config=_cfg())
    torch.testing.assert_close(out.batch["advantages"], ref.batch["advantages"])
    traj, step = plugin.steps_from_keys(["u_1_0", "u_1_2", "v_0_1"])
    assert list(traj) == ["u_1", "u_1", "v_0"] and list(step) == [0, 2, 1]


class _StubActorWG:
    """Stands in for the GPU actor worker group: per-token 'entropy' = 0.01 * input id, log-prob = -id."""

    def compute_log_prob(self, batch_td):
        from verl.utils import tensordict_utils as tu

        ids = batch_td["input_ids"]  # nested (jagged) after left_right_2_no_padding
        flat = ids.values().float()
        out = tu.get_tensordict({
            "entropy": torch.nested.nested_tensor_from_jagged(0.01 * flat, offsets=ids.offsets()),
            "log_probs": torch.nested.nested_tensor_from_jagged(-flat, offsets=ids.offsets()),
        })
        tu.assign_non_tensor(out, metrics={"mfu": 0.0})
        return out


def test_legacy_hook_keeps_entropies_through_the_pop():
    """RayPPOTrainer._compute_old_log_prob (real code, stub worker) then fit's pop + union."""
    B, P, R = 3, 3, 4
    prompts = torch.tensor([[0, 5, 6], [7, 8, 9], [0, 0, 4]])
    prompt_mask = (prompts != 0).long()
    responses = torch.tensor([[11, 12, 13, 0], [14, 15, 16, 17], [18, 0, 0, 0]])
    resp_attn = (responses != 0).long()
    input_ids = torch.cat([prompts, responses], 1)
    attn = torch.cat([prompt_mask, resp_attn], 1)
    pos = torch.clamp(torch.cumsum(attn, 1) - 1, min=0)
    batch = DataProto.from_dict(tensors={
        "prompts": prompts, "responses": responses, "input_ids": input_ids, "attention_mask": attn,
        "position_ids": pos, "response_mask": resp_attn,
    })
    trainer = object.__new__(ray_trainer.RayPPOTrainer)
    trainer.config = OmegaConf.create({"algorithm": {"adv_estimator": "empg"},
                                       "actor_rollout_ref": {"actor": {"calculate_sum_pi_squared": False}}})
    trainer.actor_rollout_wg = _StubActorWG()
    old, _ = trainer._compute_old_log_prob(batch)
    # what RayPPOTrainer.fit does next (verl 0.9.1, ray_trainer.py): pop "entropys", union
    old.batch.pop("entropys")
    batch = batch.union(old)
    assert plugin.ENTROPY_KEY in batch.batch.keys()
    # entropy of response token j is the model output at the token BEFORE it (causal shift):
    # row 0: tokens before 11,12,13 are 6,11,12 -> 0.06, 0.11, 0.12
    got = batch.batch[plugin.ENTROPY_KEY]
    torch.testing.assert_close(got[0, :3], torch.tensor([0.06, 0.11, 0.12]))
    torch.testing.assert_close(got[1], torch.tensor([0.09, 0.14, 0.15, 0.16]))
    torch.testing.assert_close(got[2, :1], torch.tensor([0.04]))
    # the stock estimators do not get the extra key
    trainer.config.algorithm.adv_estimator = "grpo"
    old2, _ = trainer._compute_old_log_prob(batch.select(batch_keys=["prompts", "responses", "input_ids",
                                                                     "attention_mask", "position_ids",
                                                                     "response_mask"], deepcopy=True))
    assert plugin.ENTROPY_KEY not in old2.batch.keys()


def test_options_are_validated_with_the_option_named():
    with pytest.raises(ValueError, match=r"algorithm\.empg\.\['zetta'\]"):  # typo must not be ignored
        plugin.options_from_config(_cfg(zetta=0.2))
    with pytest.raises(ValueError, match=r"algorithm\.empg\.k must be a number"):
        plugin.options_from_config(_cfg(k="abc"))
    with pytest.raises(ValueError, match=r"algorithm\.empg\.k_f must be finite"):
        plugin.options_from_config(_cfg(k_f=float("nan")))
    with pytest.raises(ValueError, match=r"algorithm\.empg\.outcome"):
        plugin.options_from_config(_cfg(outcome="ppo"))
    with pytest.raises(ValueError, match="zeta"):
        plugin.options_from_config(_cfg(zeta=-1.0))
    with pytest.raises(ValueError, match="norm_adv_by_std_in_grpo"):
        plugin.options_from_config(OmegaConf.create({"norm_adv_by_std_in_grpo": "no", "empg": {}}))
    o = plugin.options_from_config(OmegaConf.create({"norm_adv_by_std_in_grpo": False,
                                                     "empg": {"variant": "scaling", "k": 2, "outcome": "dapo"}}))
    assert (o.variant, o.k, o.outcome, o.norm_adv_by_std) == ("scaling", 2.0, "dapo", False)
    assert o.modulation_kwargs()["zeta"] == 0.0  # scaling-only variant drops the bonus
    assert isinstance(o, empg.EMPGConfig)  # the core's config dataclass, extended by outcome / norm_adv_by_std
    assert set(plugin._OPTION_NAMES) == {"variant", "k", "k_f", "zeta", "eps", "outcome"}


def test_step_rows_ignore_non_finite_entropy_off_the_mask():
    """Entropy at response_mask == 0 (padding) may be anything, even inf/NaN: it must not leak in."""
    ref = ray_trainer.compute_advantage(_step_rows(5)[0], adv_estimator="empg", config=_cfg())
    data, _ = _step_rows(5)
    mask = data.batch["response_mask"]
    assert bool((mask == 0).any())  # the fixture has padded rows, so the check below is not vacuous
    ent = data.batch[plugin.ENTROPY_KEY]
    ent[mask == 0] = float("nan")
    ent[(mask == 0) & (torch.arange(mask.shape[1]) % 2 == 0)] = float("inf")
    out = ray_trainer.compute_advantage(data, adv_estimator="empg", config=_cfg())
    torch.testing.assert_close(out.batch["advantages"], ref.batch["advantages"])


def test_given_step_ids_are_restricted_to_the_response_mask():
    data, spans = _concat_batch(2)
    ent, mask = data.batch[plugin.ENTROPY_KEY].clone(), data.batch["response_mask"]
    want = ray_trainer.compute_advantage(_concat_batch(2)[0], adv_estimator="empg", config=_cfg())
    # step ids that also cover observation tokens (e.g. from a delimiter parser): a step spans from its
    # first generated token to the next step's first token. The entropy there is 123 (garbage).
    ids = torch.full(mask.shape, -1)
    for i, row in enumerate(spans):
        for k, (a, _) in enumerate(row):
            ids[i, a:] = k
    data.batch[plugin.STEP_IDS_KEY] = ids
    out = ray_trainer.compute_advantage(data, adv_estimator="empg", config=_cfg())
    torch.testing.assert_close(out.batch["advantages"], want.batch["advantages"])
    assert plugin.STEP_IDS_KEY not in out.batch.keys()


def _legacy_old_log_prob(batch):
    trainer = object.__new__(ray_trainer.RayPPOTrainer)
    trainer.config = OmegaConf.create({"algorithm": {"adv_estimator": "empg"},
                                       "actor_rollout_ref": {"actor": {"calculate_sum_pi_squared": False}}})
    trainer.actor_rollout_wg = _StubActorWG()
    old, _ = trainer._compute_old_log_prob(batch)
    old.batch.pop("entropys")  # what fit does
    return batch.union(old)


def test_legacy_turns_survive_token_rejection_in_rollout_correction():
    """Two turns separated by observation tokens; rollout correction then zeros one token inside turn 0.

    Turn structure is read at _compute_old_log_prob time (before the correction), so turn 0 stays ONE
    step (with the rejected token left out of its entropy mean), not two.
    """
    prompts = torch.tensor([[5, 6], [5, 7], [5, 8], [5, 9]])
    # responses: turn 0 = cols 0-2, observation cols 3-4 (mask 0), turn 1 = cols 5-6
    responses = torch.tensor([[11, 12, 13, 40, 41, 14, 15], [16, 17, 18, 42, 43, 19, 20],
                              [21, 22, 23, 44, 45, 24, 25], [26, 27, 28, 46, 47, 29, 30]])
    rmask = torch.tensor([[1, 1, 1, 0, 0, 1, 1]] * 4)
    input_ids = torch.cat([prompts, responses], 1)
    attn = torch.ones_like(input_ids)
    batch = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "input_ids": input_ids, "attention_mask": attn,
                 "position_ids": torch.cumsum(attn, 1) - 1, "response_mask": rmask},
        non_tensors={"uid": np.array(["a", "a", "b", "b"], dtype=object)},
    )
    batch = _legacy_old_log_prob(batch)
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0])
    rewards = torch.zeros(4, 7)
    rewards[:, 6] = scores
    batch.batch["token_level_rewards"] = rewards
    ent = batch.batch[plugin.ENTROPY_KEY].clone()
    new_mask = rmask.clone()
    new_mask[0, 1] = 0  # token-level rejection inside turn 0 of row 0
    batch.batch["response_mask"] = new_mask
    true_ids = torch.tensor([[0, 0, 0, -1, -1, 1, 1]] * 4)
    true_ids[0, 1] = -1
    base = torch.tensor([0.70710678, -0.70710678, -0.70710678, 0.70710678])[:, None] * new_mask
    want = empg.modulate_advantages(base, ent, true_ids, k=1.0, k_f=1.0, zeta=0.1)
    out = ray_trainer.compute_advantage(batch, adv_estimator="empg", config=_cfg())
    torch.testing.assert_close(out.batch["advantages"], want, rtol=1e-6, atol=1e-6)
    # control: without the stored ids the hole would split turn 0 into two steps -> a different result
    split = empg.modulate_advantages(base, ent, plugin.step_ids_from_response_mask(new_mask), k=1.0, k_f=1.0, zeta=0.1)
    assert not torch.allclose(split, want, atol=1e-4)


@pytest.mark.parametrize("layout", ["concat", "steps"])
def test_modulation_runs_once_and_its_statistics_reach_the_metrics(monkeypatch, layout):
    """One modulation pass per update: the advantages and the logged empg/* statistics come from it."""
    data = _concat_batch(4)[0] if layout == "concat" else _step_rows(4)[0]
    name = "modulate_advantages" if layout == "concat" else "modulate_step_advantages"
    real = getattr(empg, name)
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("return_terms"))
        return real(*args, **kwargs)

    monkeypatch.setattr(empg, name, counted)
    for other in ("modulation_terms", "step_modulation_terms"):  # a second pass for the statistics would fail here
        monkeypatch.setattr(empg, other, lambda *a, **k: pytest.fail(f"{other} ran a second modulation pass"))
    metrics = {}
    ent = data.batch[plugin.ENTROPY_KEY].clone()
    fn = core_algos.get_adv_estimator_fn("empg")
    kw = dict(token_level_rewards=data.batch["token_level_rewards"], response_mask=data.batch["response_mask"],
              index=data.non_tensor_batch["uid"], config=_cfg(), entropy=ent, metrics=metrics)
    if layout == "steps":
        kw.update(trajectory=data.non_tensor_batch[plugin.TRAJECTORY_KEY], step=data.non_tensor_batch[plugin.STEP_KEY])
    adv, _ = fn(**kw)
    assert calls == [True]
    assert metrics["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)  # Eq. 10: batch mean of g is 1
    assert metrics["empg/num_steps"] > 0 and torch.isfinite(adv).all()
