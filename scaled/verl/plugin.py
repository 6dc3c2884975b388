"""EMPG as a verl advantage estimator, plus the trainer hook that keeps the entropies (verl 0.9.1).

Load it in every process that imports verl (driver and Ray actors) with
``VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin`` and select it with ``algorithm.adv_estimator=empg``.
Options live under ``algorithm.empg`` (``scaled/verl/config/empg_trainer.yaml`` declares them; with
verl's stock config add them with ``+algorithm.empg.k=1.0`` …):

======================  =========  ======================================================
``algorithm.empg.*``    default    meaning
======================  =========  ======================================================
``variant``             ``full``   off / scaling (ζ=0) / bonus (k=0) / full (spec §6 ablation)
``k``                   1.0        scaling sharpness, Eq. 10
``k_f``                 1.0        bonus sharpness k′, Eq. 11
``zeta``                0.1        bonus weight ζ, Eq. 8
``eps``                 1e-8       ε of Eq. 10 and 12
``outcome``             ``grpo``   grpo or dapo (same advantage: DAPO's dynamic sampling and
                                   clip-higher are verl's ``algorithm.filter_groups`` and
                                   ``actor.clip_ratio_high``, set by the launch scripts)
======================  =========  ======================================================

``algorithm.norm_adv_by_std_in_grpo=False`` gives Dr.GRPO under the modulation.

Why a hook. verl calls a registered estimator with only ``token_level_rewards, response_mask,
config, index`` and never with entropies: the trainer computes per-token entropies together with
the old log-probs and then drops them. Contact points, verl **0.9.1** (pinned; check them again
before moving the pin):

1. Legacy trainer (``trainer.use_v1=False``): ``verl.trainer.ppo.ray_trainer.RayPPOTrainer.fit``
   calls ``self._compute_old_log_prob(batch)``, which returns a DataProto with ``old_log_probs`` and
   ``entropys``; ``fit`` then runs ``old_log_prob.batch.pop("entropys")`` before
   ``batch.union(old_log_prob)``. We wrap ``RayPPOTrainer._compute_old_log_prob`` so its output also
   carries a copy, ``empg_entropy``, and the turn structure ``empg_step_ids`` (from the
   ``response_mask`` before rollout correction can zero tokens), which survive the pop and are
   unioned into the batch.
2. V1 trainer (``trainer.use_v1=True``, the 0.9.1 default): ``verl.trainer.ppo.v1.trainer_base.
   PPOTrainer._compute_old_log_prob`` writes ``entropy`` into TransferQueue, but
   ``PPOTrainer._compute_advantage`` fetches only ``uid, response_mask, rm_scores, …`` and drops
   it. We wrap ``PPOTrainer._compute_advantage`` so, when the estimator is ``empg``, it fetches
   ``entropy`` and ``response_mask`` for the same keys (same row order) and hands them, with the keys
   and its ``metrics`` dict (``empg/*`` statistics are logged there), to
3. ``compute_advantage`` (``verl.trainer.ppo.ray_trainer.compute_advantage``, also bound by name in
   ``verl.trainer.ppo.v1.utils``), which both trainers call with the whole DataProto. Our wrapper,
   for ``adv_estimator == "empg"`` only, reads the entropies and the step structure from the
   DataProto and calls the registered estimator with them as extra keyword arguments. Every other
   estimator goes to verl's original function untouched.

Step structure (spec §1):

* Concatenated rows (one row per trajectory, verl's multi-turn agent loop): ``step_ids`` are the
  maximal runs of ``response_mask == 1`` (verl marks LLM tokens 1 and environment tokens 0, so each
  run is one turn), or ``batch["empg_step_ids"]`` when an agent loop provides it.
* Step rows (one row per turn): ``non_tensor_batch["empg_trajectory"]`` and ``["empg_step"]``; in
  the V1 trainer they are read from the TransferQueue keys ``{uid}_{session_id}_{index}`` that an
  agent loop returning ``list[AgentLoopOutput]`` produces (trajectory = ``uid_session``, step =
  ``index``). A trajectory's outcome is the score of its last step row (V1 copies the final score
  onto every output; verl-agent puts it on the last step); a step's entropy is the mean token
  entropy over its ``response_mask``.

Outcome advantage: verl's own ``compute_grpo_outcome_advantage`` (so ``variant=off`` is exactly
verl's GRPO), grouped by ``uid`` (trajectories in the step-row layout). Then
:func:`empg.modulate_advantages` / :func:`empg.modulate_step_advantages` (Eq. 7–12), times
``response_mask``.

This module imports without verl; :func:`install` (run on import when verl is importable) does the
registration and the patches, and raises ``ImportError`` with install instructions otherwise.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import empg

__all__ = [
    "VERL_VERSION",
    "EMPGVerlOptions",
    "empg_adv_estimator",
    "install",
    "is_installed",
    "options_from_config",
    "step_ids_from_response_mask",
    "steps_from_keys",
]

#: The verl version the contact points above were read from and tested against.
VERL_VERSION = "0.9.1"
#: Keys the hook adds to a DataProto.
ENTROPY_KEY = "empg_entropy"
STEP_IDS_KEY = "empg_step_ids"
TRAJECTORY_KEY = "empg_trajectory"
STEP_KEY = "empg_step"

_INSTALLED = False
# V1 trainer: entropies + TransferQueue keys of the batch whose advantage is being computed.
_V1_CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("empg_v1_context", default=None)


@dataclass
class EMPGVerlOptions(empg.EMPGConfig):
    """``algorithm.empg.*`` (the fields of :class:`empg.EMPGConfig`, plus ``outcome``) and
    ``algorithm.norm_adv_by_std_in_grpo``."""

    outcome: str = "grpo"
    """grpo or dapo: the same advantage; DAPO's dynamic sampling and clip-higher are verl settings."""
    norm_adv_by_std: bool = True
    """verl's ``algorithm.norm_adv_by_std_in_grpo`` (False: Dr.GRPO under the modulation)."""

    def __post_init__(self) -> None:
        super().__post_init__()  # variant, k, k_f, zeta, eps
        if self.outcome not in ("grpo", "dapo"):
            raise ValueError(f"algorithm.empg.outcome must be 'grpo' or 'dapo', got {self.outcome!r}")


def _cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if hasattr(cfg, "get"):
        try:
            return cfg.get(key, default)
        except Exception:  # dataclass-backed configs whose .get rejects unknown keys
            pass
    return getattr(cfg, key, default)


#: The keys of ``algorithm.empg``: empg.EMPGConfig's fields and ``outcome``.
_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(empg.EMPGConfig)) + ("outcome",)


def options_from_config(config: Any) -> EMPGVerlOptions:
    """Read :class:`EMPGVerlOptions` from verl's ``algorithm`` config (DictConfig, dict or AlgoConfig).

    Raises:
        ValueError: an unknown ``algorithm.empg.*`` key (a typo would otherwise be ignored), a
            non-numeric or non-finite ``k``/``k_f``/``zeta``/``eps``, or an invalid value.
    """
    sub = _cfg_get(config, "empg", None)
    if sub is not None and hasattr(sub, "keys"):
        unknown = sorted(str(key) for key in sub.keys() if str(key) not in _OPTION_NAMES)
        if unknown:
            raise ValueError(f"unknown option(s) algorithm.empg.{unknown}; expected a subset of {list(_OPTION_NAMES)}")
    kw: dict[str, Any] = {}
    for name in _OPTION_NAMES:
        v = _cfg_get(sub, name, None)
        if v is None:
            continue
        if name in ("variant", "outcome"):
            kw[name] = str(v)
            continue
        try:
            if isinstance(v, bool):
                raise TypeError
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"algorithm.empg.{name} must be a number, got {v!r}") from None
        if not np.isfinite(x):
            raise ValueError(f"algorithm.empg.{name} must be finite, got {v!r}")
        kw[name] = x
    nrm = _cfg_get(config, "norm_adv_by_std_in_grpo", True)
    if nrm is not None and not isinstance(nrm, (bool, np.bool_)):
        raise ValueError(f"algorithm.norm_adv_by_std_in_grpo must be true or false, got {nrm!r}")
    return EMPGVerlOptions(**kw, norm_adv_by_std=bool(True if nrm is None else nrm))


def step_ids_from_response_mask(response_mask: torch.Tensor) -> torch.Tensor:
    """Step ids of concatenated multi-turn rows: the k-th run of ``response_mask == 1`` is step k.

    Args:
        response_mask: ``[B, L]`` 0/1 (verl: 1 for LLM-generated tokens, 0 for environment tokens and padding).

    Returns:
        ``[B, L]`` int64: 0, 1, 2, … on the tokens of each turn, -1 elsewhere.
    """
    if not isinstance(response_mask, torch.Tensor) or response_mask.ndim != 2:
        raise ValueError(f"response_mask must be a 2-D tensor [B, L], got {type(response_mask).__name__}"
                         f"{tuple(getattr(response_mask, 'shape', ()))}")
    m = response_mask != 0
    prev = torch.zeros_like(m)
    prev[:, 1:] = m[:, :-1]
    starts = m & ~prev
    ids = torch.cumsum(starts.long(), dim=1) - 1
    return torch.where(m, ids, torch.full_like(ids, -1))


def steps_from_keys(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(trajectory, step) from V1 TransferQueue keys ``{uid}_{session_id}_{index}``."""
    traj, step = [], []
    for key in keys:
        parts = str(key).rsplit("_", 2)
        if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
            raise ValueError(f"keys must look like '{{uid}}_{{session_id}}_{{index}}', got {key!r}")
        traj.append(f"{parts[0]}_{parts[1]}")
        step.append(int(parts[2]))
    return np.array(traj, dtype=object), np.array(step, dtype=np.int64)


def _dense_ids(values: Any, name: str) -> torch.Tensor:
    arr = np.asarray(values, dtype=object).reshape(-1)
    _, inv = np.unique(arr.astype(str), return_inverse=True)
    if len(arr) == 0:
        raise ValueError(f"{name} must not be empty")
    return torch.as_tensor(inv.reshape(-1), dtype=torch.long)


def _grpo(scores: torch.Tensor, index: np.ndarray, opts: EMPGVerlOptions) -> torch.Tensor:
    """verl's GRPO outcome advantage on one score per row (``[N] -> [N]``)."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    ones = torch.ones(scores.shape[0], 1, dtype=torch.float32)
    adv, _ = compute_grpo_outcome_advantage(
        token_level_rewards=scores.float().unsqueeze(1), response_mask=ones, index=index,
        norm_adv_by_std_in_grpo=opts.norm_adv_by_std,
    )
    return adv[:, 0]


def empg_adv_estimator(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    *,
    entropy: torch.Tensor | None = None,
    step_ids: torch.Tensor | None = None,
    trajectory: Any = None,
    step: Any = None,
    metrics: dict | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``"empg"``: GRPO outcome advantage + EMPG (Eq. 7–12).

    Args:
        token_level_rewards: ``[B, L]`` (verl), the row's score is its sum.
        response_mask: ``[B, L]`` 0/1.
        index: ``[B]`` prompt uid of each row (GRPO groups).
        config: verl's ``algorithm`` config (options under ``algorithm.empg``).
        entropy: ``[B, L]`` token entropies of the old policy; passed by the hook, never by verl.
        step_ids: ``[B, L]`` concatenated-rows layout (default: runs of ``response_mask``); tokens
            where ``response_mask`` is 0 are taken out of every step.
        trajectory, step: ``[B]`` step-rows layout (one row per turn); ``trajectory`` any hashable ids.
        metrics: if given, ``ModulationTerms.stats("empg")`` (``empg/*`` keys) is added to it.

    Returns:
        ``(advantages, returns)``, both ``[B, L]``, zero off ``response_mask``.
    """
    opts = options_from_config(config)
    if index is None:
        raise ValueError("empg needs index (verl's non_tensor_batch['uid']) for the GRPO groups")
    index = np.asarray(index, dtype=object)
    if token_level_rewards.ndim != 2 or token_level_rewards.shape != response_mask.shape:
        raise ValueError(f"token_level_rewards and response_mask must both be [B, L], got "
                         f"{tuple(token_level_rewards.shape)} and {tuple(response_mask.shape)}")
    mask = response_mask.to(token_level_rewards.dtype)
    if opts.variant != "off" and entropy is None:
        raise ValueError(
            "empg got no entropies: verl calls registered estimators without them. Load the hook with "
            "VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin in every process (driver and Ray actors), "
            f"on verl=={VERL_VERSION}, or pass entropy=[B, L] yourself."
        )
    scores = token_level_rewards.sum(dim=-1)
    with torch.no_grad():
        if trajectory is not None or step is not None:
            if trajectory is None or step is None:
                raise ValueError("the step-row layout needs both trajectory and step")
            traj = _dense_ids(trajectory, "trajectory")
            stp = torch.as_tensor(np.asarray(step, dtype=np.int64))
            if traj.shape[0] != scores.shape[0] or stp.shape[0] != scores.shape[0]:
                raise ValueError(f"trajectory and step must have one entry per row ({scores.shape[0]})")
            n_traj = int(traj.max()) + 1
            # outcome of a trajectory = score of its last step row (largest step; the last such row in
            # batch order on a tie); its group = that row's uid. Deterministic, no duplicate-index writes.
            rows = torch.arange(stp.shape[0])
            max_step = torch.full((n_traj,), torch.iinfo(torch.long).min, dtype=torch.long)
            max_step = max_step.scatter_reduce(0, traj, stp, reduce="amax")
            cand = torch.where(stp == max_step[traj], rows, torch.full_like(rows, -1))
            last = torch.full((n_traj,), -1, dtype=torch.long).scatter_reduce(0, traj, cand, reduce="amax")
            base = _grpo(scores[last], index[last.numpy()], opts)[traj]
            if opts.variant == "off":
                out = base
            else:
                on = mask > 0
                # entropies only where response_mask is 1 (where(), not *: inf/NaN off the mask stay out)
                ent = torch.where(on, entropy.to(torch.float64), torch.zeros((), dtype=torch.float64))
                denom = on.double().sum(-1)
                if bool((denom <= 0).any()):
                    raise ValueError("every step row needs at least one response_mask token")
                step_entropy = ent.sum(-1) / denom
                out, terms = empg.modulate_step_advantages(base, step_entropy, traj, stp, return_terms=True,
                                                           **opts.modulation_kwargs())
                if metrics is not None:
                    metrics.update(terms.stats("empg"))
            adv = out.to(token_level_rewards.dtype).unsqueeze(-1) * mask
        else:
            base = _grpo(scores, index, opts).to(token_level_rewards.dtype).unsqueeze(-1) * mask
            if opts.variant == "off":
                adv = base
            else:
                if step_ids is None:
                    ids = step_ids_from_response_mask(response_mask)
                else:
                    if tuple(step_ids.shape) != tuple(response_mask.shape):
                        raise ValueError(f"step_ids must be [B, L] like response_mask {tuple(response_mask.shape)}, "
                                         f"got {tuple(step_ids.shape)}")
                    ids = torch.where(response_mask != 0, step_ids.long(), torch.full_like(step_ids, -1, dtype=torch.long))
                adv, terms = empg.modulate_advantages(base, entropy, ids, return_terms=True, **opts.modulation_kwargs())
                adv = adv * mask
                if metrics is not None:
                    metrics.update(terms.stats("empg"))
    return adv, adv


def _is_empg(adv_estimator: Any) -> bool:
    return str(getattr(adv_estimator, "value", adv_estimator)) == "empg"


def _empg_kwargs_from_data(data: Any) -> dict[str, Any]:
    """Entropies and step structure from a DataProto (hook keys first, then V1 context)."""
    kw: dict[str, Any] = {}
    batch, ntb = data.batch, data.non_tensor_batch
    if ENTROPY_KEY in batch.keys():
        kw["entropy"] = batch[ENTROPY_KEY]
    if STEP_IDS_KEY in batch.keys():
        kw["step_ids"] = batch[STEP_IDS_KEY]
    if TRAJECTORY_KEY in ntb and STEP_KEY in ntb:
        kw["trajectory"], kw["step"] = ntb[TRAJECTORY_KEY], ntb[STEP_KEY]
    return kw


def _wrap_compute_advantage(orig):
    @functools.wraps(orig)
    def compute_advantage(data, adv_estimator, *args, **kwargs):
        if not _is_empg(adv_estimator):
            return orig(data, adv_estimator, *args, **kwargs)
        if "response_mask" not in data.batch.keys():
            return orig(data, adv_estimator, *args, **kwargs)  # verl fills it and raises for us
        config = kwargs.get("config", args[4] if len(args) > 4 else None)  # (gamma, lam, num_repeat, norm, config)
        ctx = _V1_CONTEXT.get()
        adv, ret = empg_adv_estimator(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch.get("uid"),
            config=config,
            metrics=None if ctx is None else ctx.get("metrics"),
            **_empg_kwargs_from_data(data),
        )
        data.batch["advantages"] = adv
        data.batch["returns"] = ret
        for key in (ENTROPY_KEY, STEP_IDS_KEY):
            if key in data.batch.keys():
                data.batch.pop(key)  # do not ship them to the actor update
        return data

    compute_advantage.__empg_wrapped__ = orig
    return compute_advantage


def _wrap_old_log_prob(orig):
    @functools.wraps(orig)
    def _compute_old_log_prob(self, batch, *args, **kwargs):
        out = orig(self, batch, *args, **kwargs)
        old = out[0] if isinstance(out, tuple) else out
        if _is_empg(self.config.algorithm.adv_estimator) and "entropys" in old.batch.keys():
            old.batch[ENTROPY_KEY] = old.batch["entropys"].clone()
            # Step ids from the response_mask as it is now: rollout correction (token-level rejection
            # sampling) may zero tokens of a turn before compute_advantage, which must not split the turn.
            if STEP_IDS_KEY not in batch.batch.keys() and "response_mask" in batch.batch.keys():
                old.batch[STEP_IDS_KEY] = step_ids_from_response_mask(batch.batch["response_mask"])
        return out

    _compute_old_log_prob.__empg_wrapped__ = orig
    return _compute_old_log_prob


def _wrap_multi_trajectories(orig):
    @functools.wraps(orig)
    def compute_advantage_for_multi_trajectories(data, batch_keys, adv_estimator, *args, **kwargs):
        if _is_empg(adv_estimator):
            ctx = _V1_CONTEXT.get()
            if ctx is not None and ctx.get("entropy") is not None:
                data.batch[ENTROPY_KEY] = ctx["entropy"]
            if ctx is not None and ctx.get("step_ids") is not None and STEP_IDS_KEY not in data.batch.keys():
                data.batch[STEP_IDS_KEY] = ctx["step_ids"]
            keys = list(batch_keys)
            if keys:
                traj, stp = steps_from_keys(keys)
                if (stp > 0).any():  # several outputs per session
                    data.non_tensor_batch[TRAJECTORY_KEY], data.non_tensor_batch[STEP_KEY] = traj, stp
        return orig(data, batch_keys, adv_estimator, *args, **kwargs)

    compute_advantage_for_multi_trajectories.__empg_wrapped__ = orig
    return compute_advantage_for_multi_trajectories


def _wrap_v1_compute_advantage(orig):
    @functools.wraps(orig)
    def _compute_advantage(self, batch, *args, **kwargs):
        if not _is_empg(self.config.algorithm.adv_estimator):
            return orig(self, batch, *args, **kwargs)
        import transfer_queue as tq
        from verl.protocol import DataProto

        metrics = kwargs.get("metrics", args[0] if args else None)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["entropy", "response_mask"])
        data = DataProto(batch=data.to_padded_tensor())
        # step ids from the response_mask before rollout correction may zero some tokens (see legacy hook)
        token = _V1_CONTEXT.set({"entropy": data.batch["entropy"], "metrics": metrics,
                                 "step_ids": step_ids_from_response_mask(data.batch["response_mask"])})
        try:
            return orig(self, batch, *args, **kwargs)
        finally:
            _V1_CONTEXT.reset(token)

    _compute_advantage.__empg_wrapped__ = orig
    return _compute_advantage


def _patch(obj: Any, name: str, wrapper) -> None:
    cur = getattr(obj, name)
    if getattr(cur, "__empg_wrapped__", None) is None:
        setattr(obj, name, wrapper(cur))


def is_installed() -> bool:
    return _INSTALLED


def install(*, trainers: bool = True) -> list[str]:
    """Register ``"empg"`` in verl's estimator registry and patch the contact points (idempotent).

    Args:
        trainers: also patch the trainers (imports ``ray_trainer`` and, if TransferQueue is
            importable, the V1 trainer). The registry alone needs only ``core_algos``.

    Returns:
        The patched contact points, ``module:qualname`` each.

    Raises:
        ImportError: verl is not importable (install it: ``make test-verl`` builds ``.venv-verl``).
    """
    global _INSTALLED
    try:
        from verl.trainer.ppo import core_algos
    except ImportError as e:  # pragma: no cover - exercised without verl
        raise ImportError(
            f"scaled.verl.plugin needs verl=={VERL_VERSION} (and its Ray/tensordict stack), which is not "
            "importable here: use the separate environment built by `make test-verl` (.venv-verl) or "
            f"`pip install verl=={VERL_VERSION}`. Original error: {e}"
        ) from e
    if core_algos.ADV_ESTIMATOR_REGISTRY.get("empg") is not empg_adv_estimator:
        core_algos.register_adv_est("empg")(empg_adv_estimator)
    done = ["verl.trainer.ppo.core_algos:ADV_ESTIMATOR_REGISTRY['empg']"]
    if trainers:
        from verl.trainer.ppo import ray_trainer

        _patch(ray_trainer, "compute_advantage", _wrap_compute_advantage)
        _patch(ray_trainer.RayPPOTrainer, "_compute_old_log_prob", _wrap_old_log_prob)
        done += ["verl.trainer.ppo.ray_trainer:compute_advantage",
                 "verl.trainer.ppo.ray_trainer:RayPPOTrainer._compute_old_log_prob"]
        try:
            from verl.trainer.ppo.v1 import trainer_base as v1_base
            from verl.trainer.ppo.v1 import utils as v1_utils
        except ImportError:  # TransferQueue missing: only the legacy trainer can run anyway
            pass
        else:
            v1_utils.compute_advantage = ray_trainer.compute_advantage
            _patch(v1_utils, "compute_advantage_for_multi_trajectories", _wrap_multi_trajectories)
            v1_base.compute_advantage_for_multi_trajectories = v1_utils.compute_advantage_for_multi_trajectories
            _patch(v1_base.PPOTrainer, "_compute_advantage", _wrap_v1_compute_advantage)
            done += ["verl.trainer.ppo.v1.utils:compute_advantage",
                     "verl.trainer.ppo.v1.utils:compute_advantage_for_multi_trajectories",
                     "verl.trainer.ppo.v1.trainer_base:PPOTrainer._compute_advantage"]
    _INSTALLED = True
    return done


def _autoinstall() -> None:
    try:
        import verl  # noqa: F401
    except ImportError:
        return  # importable without verl; install() explains what is missing
    install()


_autoinstall()
