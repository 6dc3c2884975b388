"""scaled.verl.plugin against verl 0.9.1's real registries, DataProto and advantage code paths (CPU, no Ray).

The whole pipeline with verl's own worker and TransferQueue is tests/verl/test_worker_cpu.py.
"""

import os
import subprocess
import sys
import uuid
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


def _cfg(**empg_opts):
    return OmegaConf.create({"adv_estimator": "empg", "norm_adv_by_std_in_grpo": True, "empg": empg_opts})


def _run(code: str, env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _multi_traj():
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    return compute_advantage_for_multi_trajectories


# --------------------------------------------------------------------------- registration, contact points
def test_estimator_and_trainer_are_found_through_verl_use_external_modules():
    code = (
        "import verl\n"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
        "from verl.trainer.ppo.v1.trainer_base import get_trainer_cls\n"
        "from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync\n"
        "print('FOUND', get_adv_estimator_fn('empg').__module__)\n"
        "print('TRAINER', issubclass(get_trainer_cls('empg_sync'), PPOTrainerSync))\n"
    )
    r = _run(code, {"VERL_USE_EXTERNAL_MODULES": "scaled.verl.plugin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "FOUND scaled.verl.plugin" in r.stdout and "TRAINER True" in r.stdout
    # Control: the same lookup without the env var fails, so the env var is what registers it.
    r = _run(code, {})
    assert r.returncode != 0 and "Unknown advantage estimator" in r.stderr


def test_no_verl_function_is_replaced():
    """The plug-in registers; it does not patch: verl's functions are verl's own objects."""
    from verl.trainer.ppo.v1 import trainer_base, utils as v1_utils

    for fn in (ray_trainer.compute_advantage, v1_utils.compute_advantage_for_multi_trajectories,
               trainer_base.PPOTrainer._compute_advantage, trainer_base.PPOTrainer._compute_old_log_prob):
        assert fn.__module__.startswith("verl.") and not hasattr(fn, "__wrapped__")
    assert v1_utils.compute_advantage is ray_trainer.compute_advantage
    assert trainer_base.compute_advantage_for_multi_trajectories is v1_utils.compute_advantage_for_multi_trajectories
    assert sorted(plugin.install()) == sorted([
        "verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY['empg']",
        "verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY['empg_sync']"])


def test_the_pinned_verl_is_installed_and_its_contact_points_are_unchanged():
    import verl as verl_pkg

    assert verl_pkg.__version__ == plugin.VERL_VERSION, (
        f"verl {verl_pkg.__version__} is installed; the plug-in was checked against {plugin.VERL_VERSION}")
    changed = plugin.changed_contact_points()
    assert not changed, (
        f"verl {verl_pkg.__version__} changed functions the EMPG plug-in relies on (pinned: {plugin.VERL_VERSION}). "
        "Re-read each one, re-check scaled/verl/plugin.py and docs/verl.md, then update its hash in "
        "plugin.CONTACT_POINTS:\n" + "\n".join(f"  {point}: {why}" for point, why in changed.items()))


def test_contact_point_check_names_a_changed_function(monkeypatch):
    point = "verl.trainer.ppo.ray_trainer:compute_advantage"
    monkeypatch.setitem(plugin.CONTACT_POINTS, point, ("0" * 64, "calls the estimator"))
    assert plugin.changed_contact_points() == {point: "calls the estimator"}


def test_empg_sync_is_verls_sync_trainer():
    from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    cls = get_trainer_cls(plugin.TRAINER_MODE)
    assert issubclass(cls, PPOTrainerSync) and cls is not PPOTrainerSync
    trainer = object.__new__(cls)
    trainer.trainer_mode = plugin.TRAINER_MODE  # what PPOTrainer.__init__ does with the config value
    assert trainer.trainer_mode == "sync"  # verl's branches on "sync" (replay buffer, refill) hold


# --------------------------------------------------------------------------- batches
def test_step_ids_from_response_mask_hand_example():
    mask = torch.tensor([[1, 1, 0, 0, 1, 0, 1, 1], [0, 1, 1, 1, 0, 0, 0, 0]])
    # runs of ones: row 0 -> turns 0 (cols 0-1), 1 (col 4), 2 (cols 6-7); row 1 -> turn 0 (cols 1-3)
    want = torch.tensor([[0, 0, -1, -1, 1, -1, 2, 2], [-1, 0, 0, 0, -1, -1, -1, -1]])
    assert torch.equal(plugin.step_ids_from_response_mask(mask), want)


def _concat_batch(seed=0):
    """6 rows (one per trajectory, turns separated by masked observation tokens), 2 prompts a/b."""
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
    keys = [f"{u}_{i}_0" for i, u in enumerate(uid)]
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask},
                               non_tensors={"uid": uid})
    return data, entropy, keys, spans


def _step_rows(seed=0):
    """4 trajectories of prompts p, q, one row per turn, shuffled; keys uid_session_index."""
    g = torch.Generator().manual_seed(seed)
    rows = [  # (uid, session, step, score on the row)
        ("p", 0, 0, 0.0), ("p", 0, 1, 0.0), ("p", 0, 2, 1.0),
        ("p", 1, 0, 0.0), ("p", 1, 1, 0.0),
        ("q", 0, 0, 0.0), ("q", 0, 1, 1.0),
        ("q", 1, 0, 0.0), ("q", 1, 1, 1.0), ("q", 1, 2, 0.5),
    ]
    perm = torch.randperm(len(rows), generator=g).tolist()
    rows = [rows[i] for i in perm]
    S, L = len(rows), 6
    lens = torch.randint(1, L + 1, (S,), generator=g)
    mask = (torch.arange(L) < lens[:, None]).long()
    rewards = torch.zeros(S, L)
    rewards[torch.arange(S), lens - 1] = torch.tensor([r[3] for r in rows])
    entropy = torch.rand(S, L, generator=g) * 3.0
    keys = [f"{r[0]}_{r[1]}_{r[2]}" for r in rows]
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask},
                               non_tensors={"uid": np.array([r[0] for r in rows], dtype=object)})
    return data, entropy, keys, rows


def _advantage(data, entropy, keys, cfg=None, *, is_padding=None, metrics=None, before=None):
    """verl 0.9.1's own compute_advantage_for_multi_trajectories, with the empg_sync trainer's hand-over."""
    before = data.batch["response_mask"] if before is None else before
    with plugin.empg_inputs(entropy, before, keys, is_padding=is_padding, metrics=metrics):
        out = _multi_traj()(data, batch_keys=keys, adv_estimator="empg", config=cfg or _cfg())
    return out.batch["advantages"]


def _grpo(data):
    return ray_trainer.compute_advantage(data.select(deepcopy=True), adv_estimator="grpo").batch["advantages"]


def test_concatenated_rows_equal_modulate_advantages():
    data, ent, keys, spans = _concat_batch()
    mask = data.batch["response_mask"].clone()
    ids = torch.full(mask.shape, -1)  # step ids written by hand from the spans (k-th span of a row = step k)
    for i, row in enumerate(spans):
        for k, (a, b) in enumerate(row):
            ids[i, a:b] = k
    base = _grpo(data)
    out = _advantage(data, ent, keys, _cfg(k=1.0, k_f=2.0, zeta=0.05))
    want = empg.modulate_advantages(base, ent, ids, k=1.0, k_f=2.0, zeta=0.05)
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    assert torch.all(out[mask == 0] == 0)
    assert not torch.allclose(out, base)  # EMPG really changed something (so the comparison is not vacuous)


def test_step_rows_equal_modulate_step_advantages():
    data, ent, keys, rows = _step_rows()
    mask = data.batch["response_mask"].double()
    step_entropy = (ent.double() * mask).sum(-1) / mask.sum(-1)
    # Outcome of a trajectory = the score of its LAST step row: p0 -> 1, p1 -> 0, q0 -> 1, q1 -> 0.5.
    # GRPO by hand, unbiased std over 2 trajectories: p: mean .5, std .7071 -> +-0.7071;
    # q: mean .75, std .35355 -> q0 +0.7071, q1 -0.7071.
    traj_adv = {("p", 0): 0.70710678, ("p", 1): -0.70710678, ("q", 0): 0.70710678, ("q", 1): -0.70710678}
    base = torch.tensor([traj_adv[r[:2]] for r in rows], dtype=torch.float64)
    traj = torch.tensor([["p", "q"].index(r[0]) * 2 + r[1] for r in rows])
    step = torch.tensor([r[2] for r in rows])
    want = empg.modulate_step_advantages(base, step_entropy, traj, step, k=1.0, k_f=1.0, zeta=0.1)
    out = _advantage(data, ent, keys)
    torch.testing.assert_close(out, (want[:, None] * mask).float(), rtol=1e-5, atol=1e-5)
    traj_ids, steps = plugin.steps_from_keys(["u_1_0", "u_1_2", "v_0_1"])
    assert list(traj_ids) == ["u_1", "u_1", "v_0"] and list(steps) == [0, 2, 1]


# --------------------------------------------------------------------------- verl's padding rows
def _pad_like_verl(data, entropy, keys, multiple):
    """Pad a batch exactly as verl 0.9.1's V1 trainer does before the advantage step.

    ``upsample_batch_to_divisible_size`` (verl's own function) runs with its TransferQueue replaced
    by a dict, and the batch is then read back the way ``PPOTrainer._compute_advantage`` reads it
    (nested per-row tensors -> ``to_padded_tensor``).
    """
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo import padding_utils
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    store = {}
    mask, rewards = data.batch["response_mask"], data.batch["token_level_rewards"]
    for i, key in enumerate(keys):
        n = int(mask[i].nonzero().max()) + 1 if mask[i].any() else 1
        store[key] = {"prompts": torch.full((3,), 7), "responses": torch.full((n,), 8),
                      "input_ids": torch.full((3 + n,), 8), "attention_mask": torch.ones(3 + n, dtype=torch.long),
                      "position_ids": torch.arange(3 + n), "response_mask": mask[i, :n].clone(),
                      "rm_scores": rewards[i, :n].clone(), "uid": str(data.non_tensor_batch["uid"][i]),
                      "entropy": entropy[i, :n].clone()}

    class DictTQ:
        @staticmethod
        def kv_batch_get(keys, partition_id, select_fields=None):
            return [store[k] for k in keys]

        @staticmethod
        def kv_batch_put(keys, partition_id, fields, tags):
            for k, td in zip(keys, fields.unbind(0)):
                store[k] = {name: td[name] for name in td.keys()}

    meta = KVBatchMeta(keys=list(keys), tags=[{"status": "success"} for _ in keys], partition_id="train")
    original = padding_utils.tq
    padding_utils.tq = DictTQ
    try:
        meta = padding_utils.upsample_batch_to_divisible_size(meta, multiple, eos_token_id=8)
    finally:
        padding_utils.tq = original
    rows = list_of_dict_to_tensordict([{f: store[k][f] for f in ("response_mask", "rm_scores", "entropy")}
                                       for k in meta.keys])
    padded = DataProto(batch=rows.to_padded_tensor())
    padded.batch["token_level_rewards"] = padded.batch.pop("rm_scores")
    padded.non_tensor_batch["uid"] = np.array([store[k]["uid"] for k in meta.keys], dtype=object)
    ent = padded.batch.pop("entropy")
    return padded, ent, meta


@pytest.mark.parametrize("layout", ["concat", "steps"])
def test_padding_rows_get_zero_advantage_and_take_no_part(layout):
    """verl pads to a multiple of lcm(dp, mini-batch rows) with all-zero-response_mask rows (issue: every
    EMPG run crashed there). They must get advantage 0 and change nothing for the real rows."""
    data, ent, keys, _ = _concat_batch(3) if layout == "concat" else _step_rows(3)
    metrics = {}
    ref = _advantage(data.select(deepcopy=True), ent, keys, metrics=metrics)
    padded, pent, meta = _pad_like_verl(data, ent, keys, multiple=8)
    n, total = len(keys), len(meta.keys)
    assert total == 8 * ((n + 7) // 8) and total > n
    tags = [bool(t.get("is_padding", False)) for t in meta.tags]
    assert tags == [False] * n + [True] * (total - n)
    assert int(padded.batch["response_mask"][n:].sum()) == 0  # how verl builds them
    padded_metrics = {}
    out = _advantage(padded, pent, meta.keys, is_padding=tags, metrics=padded_metrics)
    assert torch.all(out[n:] == 0)
    width = ref.shape[1]
    torch.testing.assert_close(out[:n, :width], ref)  # not a step: no effect on Eq. 12, 10 or 7
    assert padded_metrics == metrics and metrics["empg/num_steps"] > 0
    # the same without the tags: a row without a response_mask token is not a step either
    untagged = _advantage(padded, pent, meta.keys)
    torch.testing.assert_close(untagged, out)


def test_a_batch_of_padding_rows_only_gets_zeros():
    data, ent, keys, _ = _step_rows(1)
    data.batch["response_mask"].zero_()
    out = _advantage(data, ent, keys)
    assert torch.equal(out, torch.zeros_like(out))


# --------------------------------------------------------------------------- options and edge cases
def test_variant_off_is_verl_grpo_and_missing_entropy_raises():
    data, ent, keys, _ = _concat_batch(1)
    base = _grpo(data)
    out = ray_trainer.compute_advantage(data.select(deepcopy=True), adv_estimator="empg", config=_cfg(variant="off"))
    torch.testing.assert_close(out.batch["advantages"], base)  # no entropies needed for variant off
    # verl's stock trainers (trainer_mode sync, or the legacy trainer) never hand over the entropies
    with pytest.raises(ValueError, match="trainer_mode=empg_sync"):
        ray_trainer.compute_advantage(data.select(deepcopy=True), adv_estimator="empg", config=_cfg())
    with pytest.raises(ValueError, match="variant"):
        _advantage(data, ent, keys, _cfg(variant="bogus"))


def test_hand_over_must_match_the_batch():
    data, ent, keys, _ = _concat_batch(0)
    with pytest.raises(ValueError, match="same rows"):
        with plugin.empg_inputs(ent[:3], data.batch["response_mask"], keys):
            pass
    other = torch.zeros_like(data.batch["response_mask"])  # a hand-over for another batch of the same shape
    with pytest.raises(ValueError, match="do not line up"):
        _advantage(data, ent, keys, before=other)


def test_turns_survive_token_rejection_in_rollout_correction():
    """verl's rollout correction may zero single tokens of the response_mask before the advantage step.

    The turn structure comes from the response_mask the trainer fetched before that, so a rejected
    token leaves its step's entropy mean but does not split the turn into two steps.
    """
    data, ent, keys, spans = _concat_batch(2)
    before = data.batch["response_mask"].clone()
    after = before.clone()
    after[0, 1] = 0  # token-level rejection inside turn 0 of row 0
    data.batch["response_mask"] = after
    base = _grpo(data)
    true_ids = torch.where(after != 0, plugin.step_ids_from_response_mask(before), torch.tensor(-1))
    want = empg.modulate_advantages(base, ent, true_ids, k=1.0, k_f=1.0, zeta=0.1)
    out = _advantage(data, ent, keys, before=before)
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    # control: without the stored structure the hole would split turn 0 into two steps
    split = empg.modulate_advantages(base, ent, plugin.step_ids_from_response_mask(after), k=1.0, k_f=1.0, zeta=0.1)
    assert not torch.allclose(split, want, atol=1e-4)


def test_step_rows_ignore_non_finite_entropy_off_the_mask():
    """Entropy at response_mask == 0 may be anything, even inf/NaN: it must not leak in."""
    data, ent, keys, _ = _step_rows(5)
    ref = _advantage(data.select(deepcopy=True), ent, keys)
    mask = data.batch["response_mask"]
    assert bool((mask == 0).any())  # the fixture has short rows, so the check below is not vacuous
    ent = ent.clone()
    ent[mask == 0] = float("nan")
    ent[(mask == 0) & (torch.arange(mask.shape[1]) % 2 == 0)] = float("inf")
    torch.testing.assert_close(_advantage(data, ent, keys), ref)


def test_given_step_ids_are_restricted_to_the_response_mask():
    data, ent, keys, spans = _concat_batch(2)
    mask = data.batch["response_mask"]
    want = _advantage(data.select(deepcopy=True), ent, keys)
    # step ids that also cover observation tokens (e.g. from a delimiter parser): a step spans from its
    # first generated token to the next step's first token. The entropy there is 123 (garbage).
    ids = torch.full(mask.shape, -1)
    for i, row in enumerate(spans):
        for k, (a, _) in enumerate(row):
            ids[i, a:] = k
    adv, _ = plugin.empg_adv_estimator(data.batch["token_level_rewards"], mask, data.non_tensor_batch["uid"], _cfg(),
                                       entropy=ent, step_ids=ids)
    torch.testing.assert_close(adv, want)


@pytest.mark.parametrize("layout", ["concat", "steps"])
def test_modulation_runs_once_and_its_statistics_reach_the_metrics(monkeypatch, layout):
    """One modulation pass per update: the advantages and the logged empg/* statistics come from it."""
    data, ent, keys, _ = _concat_batch(4) if layout == "concat" else _step_rows(4)
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
    adv = _advantage(data, ent, keys, metrics=metrics)
    assert calls == [True]
    assert metrics["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)  # Eq. 10: batch mean of g is 1
    assert metrics["empg/num_steps"] > 0 and torch.isfinite(adv).all()


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
    assert plugin.options_from_config(OmegaConf.create({"empg": {"variant": False}})).variant == "off"  # YAML `off`


def test_estimator_rejects_bad_input():
    data, ent, keys, _ = _step_rows(0)
    rw, mask, uid = data.batch["token_level_rewards"], data.batch["response_mask"], data.non_tensor_batch["uid"]
    with pytest.raises(ValueError, match="index"):
        plugin.empg_adv_estimator(rw, mask, None, _cfg(), entropy=ent)
    with pytest.raises(ValueError, match="entropy must be"):
        plugin.empg_adv_estimator(rw, mask, uid, _cfg(), entropy=ent[:, :2])
    with pytest.raises(ValueError, match="both trajectory and step"):
        plugin.empg_adv_estimator(rw, mask, uid, _cfg(), entropy=ent, trajectory=np.arange(len(uid)))
    with pytest.raises(ValueError, match="one entry per row"):
        plugin.empg_adv_estimator(rw, mask, uid, _cfg(), entropy=ent, trajectory=np.arange(3), step=np.arange(3))
    with pytest.raises(ValueError, match="is_padding"):
        plugin.padding_rows(mask, [True])
    with pytest.raises(ValueError, match="keys must look like"):
        plugin.steps_from_keys([f"bad-{uuid.uuid4().hex}"])


@pytest.mark.parametrize("layout", ["concat", "steps"])
def test_variant_off_logs_the_full_empg_terms_and_trains_on_grpo(monkeypatch, layout):
    """Baselines log the empg/* statistics too (as the scaled and toy trainers do): the full-EMPG terms of the
    same batch, computed once for logging; the advantages stay verl's GRPO."""
    data, ent, keys, _ = _concat_batch(5) if layout == "concat" else _step_rows(5)
    full = {}
    _advantage(data.select(deepcopy=True), ent, keys, metrics=full)
    plain = _advantage(data.select(deepcopy=True), ent, keys, _cfg(variant="off"))  # no metrics dict: GRPO only
    name = "modulation_terms" if layout == "concat" else "step_modulation_terms"
    real, calls = getattr(empg, name), []
    monkeypatch.setattr(empg, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    for other in ("modulate_advantages", "modulate_step_advantages"):  # the advantages are not modulated
        monkeypatch.setattr(empg, other, lambda *a, **k: pytest.fail(f"{other} ran under variant off"))
    off = {}
    adv = _advantage(data.select(deepcopy=True), ent, keys, _cfg(variant="off"), metrics=off)
    assert calls == [1]
    torch.testing.assert_close(adv, plain)
    assert off.pop("empg/enabled") == 0.0 and full.pop("empg/enabled") == 1.0
    assert set(off) == set(full) and off["empg/num_steps"] > 0
    for key in off:  # the same terms the full variant logs on this batch
        assert off[key] == pytest.approx(full[key], rel=1e-6, abs=1e-9), key
    assert off["empg/scale_mean"] == pytest.approx(1.0, abs=1e-6)  # Eq. 10 normalisation: batch mean of g is 1
    from empg.metrics import unknown_metrics

    assert unknown_metrics(off) == []
