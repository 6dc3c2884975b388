"""EMPG in verl 0.9.1: a registered advantage estimator and a registered trainer, no patched internals.

Load it in every verl process with ``VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin`` and select it
with two options (``python -m scaled.verl.launch`` sets both)::

    algorithm.adv_estimator=empg            # core_algos.register_adv_est("empg")
    trainer.v1.trainer_mode=empg_sync       # trainer_base.register_trainer("empg_sync")

Options live under ``algorithm.empg`` (``scaled/verl/config/empg_trainer.yaml`` declares them):

======================  =========  ======================================================
``algorithm.empg.*``    default    meaning
======================  =========  ======================================================
``variant``             ``full``   off / scaling (ζ=0) / bonus (k=0) / full (spec §6 ablation)
``k``                   1.0        scaling sharpness, Eq. 10
``k_f``                 1.0        bonus sharpness k′, Eq. 11
``zeta``                0.1        bonus weight ζ, Eq. 8
``eps``                 1e-8       ε of Eq. 10 and 12
``outcome``             ``grpo``   grpo or dapo: the same advantage; DAPO's dynamic sampling and
                                   clip-higher are verl's ``algorithm.filter_groups`` and
                                   ``actor.clip_ratio_high``, which the launcher derives from it
======================  =========  ======================================================

``algorithm.norm_adv_by_std_in_grpo=False`` gives Dr.GRPO under the modulation.

Why a trainer. verl calls a registered estimator with ``token_level_rewards, response_mask, config,
index`` only. The V1 trainer computes the per-token entropies with the old log-probs and stores
them in TransferQueue (``entropy``), but its ``_compute_advantage`` never fetches them. The
``empg_sync`` trainer is verl's own synchronous trainer (:class:`PPOTrainerSync`) with one method
extended: ``_compute_advantage`` fetches ``entropy`` and ``response_mask`` for the batch's keys and
hands them, with the keys, the rows' padding tags and verl's ``metrics`` dict, to the estimator
through a context variable, then runs verl's own ``_compute_advantage`` unchanged (which reaches the
estimator through ``compute_advantage_for_multi_trajectories`` → ``compute_advantage``).
:data:`CONTACT_POINTS` lists the verl functions this relies on, with a hash of their 0.9.1 source
that ``tests/verl/test_plugin.py`` checks.

Step structure (spec §1), read from the batch keys ``{uid}_{session_id}_{index}``:

* **Concatenated rows** (one output per session, verl's own multi-turn loops): each maximal run of
  ``response_mask == 1`` is one turn (verl marks generated tokens 1, tool/environment tokens 0),
  read from the ``response_mask`` before rollout correction can zero single tokens.
* **Step rows** (several outputs per session: our agent loop, verl-agent style): trajectory =
  ``uid_session``, step = ``index``; a trajectory's outcome is its last step row's score (verl copies
  the final score onto every output of a session); a step's entropy is its mean token entropy.

Padding. verl's V1 trainer pads each batch to a multiple of lcm(data-parallel size, mini-batch rows)
with synthetic rows whose ``response_mask`` is all 0 (``padding_utils.upsample_batch_to_divisible_size``,
tagged ``is_padding``). Such rows (and any row without a ``response_mask`` token) are not steps: they
get advantage 0 and take no part in GRPO, the min/max of Eq. 12, the mean of Eq. 10 or the centring
of Eq. 7, in both layouts.

Outcome advantage: verl's own ``compute_grpo_outcome_advantage`` (so ``variant=off`` is verl's GRPO),
then :func:`empg.modulate_advantages` / :func:`empg.modulate_step_advantages` (Eq. 7–12), one pass,
whose ``empg/*`` statistics go to verl's metrics. With ``variant=off`` the advantages stay GRPO's and the
statistics are those of full EMPG on the same batch (:func:`empg.modulation_terms`, logging only,
``empg/enabled`` = 0), as the scaled and toy trainers log for their baselines.

This module imports without verl; :func:`install` (run on import when verl is importable) does the
two registrations.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import empg

__all__ = [
    "CONTACT_POINTS",
    "TRAINER_MODE",
    "VERL_VERSION",
    "EMPGVerlOptions",
    "changed_contact_points",
    "empg_adv_estimator",
    "empg_inputs",
    "install",
    "is_installed",
    "options_from_config",
    "padding_rows",
    "register_resolvers",
    "run_name",
    "step_ids_from_response_mask",
    "steps_from_keys",
]

#: The verl version the contact points were read from and tested against.
VERL_VERSION = "0.9.1"
#: ``trainer.v1.trainer_mode`` of the EMPG trainer (verl's sync trainer + the entropy hand-over).
TRAINER_MODE = "empg_sync"

#: What the plug-in relies on in verl 0.9.1: ``module:qualname`` -> (sha256 of its source, why).
#: Nothing is patched; if verl changes one of these, re-read it, re-check the plug-in, then update
#: the hash (``changed_contact_points()`` lists the ones that differ).
CONTACT_POINTS: dict[str, tuple[str, str]] = {
    "verl.trainer.ppo.v1.trainer_base:PPOTrainer._compute_old_log_prob": (
        "b2630e6178ed99f7b55b8e342911e746d7d48e148e87a3da090b0be8d5b8f70f",
        "stores the per-token entropies of the old policy in TransferQueue as 'entropy'"),
    "verl.trainer.ppo.v1.trainer_base:PPOTrainer._compute_advantage": (
        "2a4a2aa4a475b228d401959818e0b9019276ce27961c133961de217baa387da7",
        "extended by the empg_sync trainer (fetch entropy + response_mask, then call it); it passes the "
        "batch rows to compute_advantage_for_multi_trajectories in batch.keys order"),
    "verl.trainer.ppo.v1.trainer_base:PPOTrainer.__init__": (
        "6f938d77859b66aeeceb03a39bc9a7b5e7b6f50004aa8b1e2508f6e289fa1b93",
        "sets self.trainer_mode, which the empg_sync trainer reports as 'sync' (verl compares it with 'sync')"),
    "verl.trainer.ppo.v1.utils:compute_advantage_for_multi_trajectories": (
        "d973cc8aec79bc3d6c5482e3946d158639c27c209fb12b049b71c502d95b0a03",
        "hands a non-GRPO estimator the whole batch, rows in key order, through compute_advantage"),
    "verl.trainer.ppo.ray_trainer:compute_advantage": (
        "314695381c755264971a8f25865625bad4cf46c35d91901ba2a8f5e1ea980a18",
        "calls a registered estimator with token_level_rewards, response_mask, config, index"),
    "verl.trainer.ppo.padding_utils:construct_minimal_padding_template": (
        "31f96671a07428590e18035272c4c4de9e85d46c193513362cccc44612c08bd7",
        "padding rows: response_mask all 0, rm_scores 0, tag is_padding"),
    "verl.trainer.ppo.padding_utils:upsample_batch_to_divisible_size": (
        "65c6774fbd9dad48dee15791cd23fe73bab891f0af677861388a4ca7c91a95b5",
        "padding keys {pad_uid}_{i}_0 (a one-row session each)"),
    "verl.experimental.agent_loop.agent_loop:AgentLoopBase.__init__": (
        "8d0c1cd056eaeeec4f9563f17ed4e80e4bd914be3c94aa779c0e497b61848068",
        "the agent loop reads rollout_config (prompt/response length) and tokenises with continuous_token_builder"),
    "verl.trainer.ppo.v1.agent_loop_tq:AgentLoopWorkerTQ._agent_loop_postprocess": (
        "523edacbff73640dee470baf8c1f09fb3450e4095c05d5d2226f9ef706604b5b",
        "keys {uid}_{session_id}_{index}; the last output's reward copied onto every output of a session"),
}

_INSTALLED = False
#: Set by the empg_sync trainer around verl's _compute_advantage: entropies, keys, padding, metrics.
_ADV_CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("empg_adv_context", default=None)


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
            kw[name] = "off" if v is False else str(v)  # YAML 1.1 reads a bare `off` as False
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


def padding_rows(response_mask: torch.Tensor, is_padding: Any = None) -> torch.Tensor:
    """``[B]`` bool: rows that are not steps, i.e. tagged ``is_padding`` or without a ``response_mask`` token."""
    pad = ~(response_mask != 0).any(dim=-1)
    if is_padding is not None:
        tags = torch.as_tensor(np.asarray(is_padding, dtype=bool).reshape(-1))
        if tags.shape[0] != pad.shape[0]:
            raise ValueError(f"is_padding must have one entry per row ({pad.shape[0]}), got {tags.shape[0]}")
        pad = pad | tags.to(pad.device)
    return pad


def _dense_ids(values: Any, name: str) -> torch.Tensor:
    arr = np.asarray(values, dtype=object).reshape(-1)
    if len(arr) == 0:
        raise ValueError(f"{name} must not be empty")
    _, inv = np.unique(arr.astype(str), return_inverse=True)
    return torch.as_tensor(inv.reshape(-1), dtype=torch.long)


def _grpo(scores: torch.Tensor, index: np.ndarray, opts: EMPGVerlOptions) -> torch.Tensor:
    """verl's GRPO outcome advantage on one score per row (``[N] -> [N]``)."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    if scores.shape[0] == 0:
        return scores.float()
    ones = torch.ones(scores.shape[0], 1, dtype=torch.float32)
    adv, _ = compute_grpo_outcome_advantage(
        token_level_rewards=scores.float().unsqueeze(1), response_mask=ones, index=index,
        norm_adv_by_std_in_grpo=opts.norm_adv_by_std,
    )
    return adv[:, 0]


@contextlib.contextmanager
def empg_inputs(entropy: torch.Tensor, response_mask: torch.Tensor, keys: list[str], *,
                is_padding: Any = None, metrics: dict | None = None):
    """Hand the old policy's entropies to the ``empg`` estimator for the verl code run inside this block.

    The ``empg_sync`` trainer wraps verl's ``_compute_advantage`` in it; a custom trainer can do the same.

    Args:
        entropy: ``[B, L]`` token entropies (verl's ``entropy`` field, padded like ``response_mask``).
        response_mask: ``[B, L]`` before rollout correction (the turn structure is read from it).
        keys: ``[B]`` TransferQueue keys ``{uid}_{session_id}_{index}``, in the batch's row order.
        is_padding: ``[B]`` verl's ``is_padding`` tags.
        metrics: verl's metrics dict; the ``empg/*`` statistics are added to it.
    """
    if tuple(entropy.shape) != tuple(response_mask.shape) or len(keys) != response_mask.shape[0]:
        raise ValueError(f"empg_inputs: entropy {tuple(entropy.shape)}, response_mask {tuple(response_mask.shape)} "
                         f"and keys ({len(keys)}) must describe the same rows")
    token = _ADV_CONTEXT.set({"entropy": entropy, "response_mask": response_mask, "keys": list(keys),
                              "is_padding": is_padding, "metrics": metrics})
    try:
        yield
    finally:
        _ADV_CONTEXT.reset(token)


def _from_context(response_mask: torch.Tensor) -> dict[str, Any]:
    """The empg_sync trainer's hand-over for this batch (checked against it), else {}."""
    ctx = _ADV_CONTEXT.get()
    if ctx is None:
        return {}
    before = ctx["response_mask"]
    if tuple(before.shape) != tuple(response_mask.shape) or bool(((response_mask != 0) & (before == 0)).any()):
        raise ValueError(
            "empg: the entropies fetched by the empg_sync trainer do not line up with the batch verl passed "
            f"to the estimator (response_mask {tuple(before.shape)} vs {tuple(response_mask.shape)}); "
            f"verl=={VERL_VERSION} keeps the rows in key order, so this verl version is not supported")
    kw: dict[str, Any] = {"entropy": ctx["entropy"], "is_padding": ctx.get("is_padding"), "metrics": ctx.get("metrics")}
    traj, stp = steps_from_keys(ctx["keys"])
    if (stp > 0).any():  # several outputs per session: one row per turn
        kw["trajectory"], kw["step"] = traj, stp
    else:  # turn structure before rollout correction may zero single tokens inside a turn
        kw["step_ids"] = step_ids_from_response_mask(before)
    return kw


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
    is_padding: Any = None,
    metrics: dict | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``"empg"``: GRPO outcome advantage + EMPG (Eq. 7–12).

    verl passes the first four arguments; the rest come from the ``empg_sync`` trainer (through a
    context variable) or from an explicit caller.

    Args:
        token_level_rewards: ``[B, L]`` (verl), the row's score is its sum.
        response_mask: ``[B, L]`` 0/1.
        index: ``[B]`` prompt uid of each row (GRPO groups).
        config: verl's ``algorithm`` config (options under ``algorithm.empg``).
        entropy: ``[B, L]`` token entropies of the old policy.
        step_ids: ``[B, L]`` concatenated-rows layout (default: runs of ``response_mask``); tokens
            where ``response_mask`` is 0 are taken out of every step.
        trajectory, step: ``[B]`` step-rows layout (one row per turn); ``trajectory`` any hashable ids.
        is_padding: ``[B]`` bool, verl's padding tags; rows without a ``response_mask`` token count
            as padding too. Padding rows get advantage 0 and take no part in GRPO or the modulation.
        metrics: if given, ``ModulationTerms.stats("empg")`` (``empg/*`` keys) and ``empg/enabled`` are added to
            it; with ``variant="off"`` (and entropies) these are the full-EMPG terms of the batch, computed
            once for logging only (as the scaled and toy trainers log for their baselines).

    Returns:
        ``(advantages, returns)``, both ``[B, L]``, zero off ``response_mask`` and on padding rows.
    """
    opts = options_from_config(config)
    if index is None:
        raise ValueError("empg needs index (verl's non_tensor_batch['uid']) for the GRPO groups")
    index = np.asarray(index, dtype=object)
    if token_level_rewards.ndim != 2 or token_level_rewards.shape != response_mask.shape:
        raise ValueError(f"token_level_rewards and response_mask must both be [B, L], got "
                         f"{tuple(token_level_rewards.shape)} and {tuple(response_mask.shape)}")
    if entropy is None:
        ctx = _from_context(response_mask)
        entropy = ctx.pop("entropy", None)
        step_ids = ctx.pop("step_ids", step_ids)
        trajectory, step = ctx.pop("trajectory", trajectory), ctx.pop("step", step)
        is_padding = ctx.pop("is_padding", None) if is_padding is None else is_padding
        metrics = ctx.pop("metrics", None) if metrics is None else metrics
    if opts.variant != "off" and entropy is None:
        raise ValueError(
            "empg got no entropies: verl calls registered estimators without them. Run verl's V1 trainer "
            f"with trainer.v1.trainer_mode={TRAINER_MODE} (python -m scaled.verl.launch sets it) and load "
            f"VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin in every process, on verl=={VERL_VERSION}, "
            "or pass entropy=[B, L] yourself.")
    if entropy is not None and tuple(entropy.shape) != tuple(response_mask.shape):
        raise ValueError(f"entropy must be [B, L] like response_mask {tuple(response_mask.shape)}, "
                         f"got {tuple(entropy.shape)}")
    mask = response_mask.to(token_level_rewards.dtype)
    real = ~padding_rows(response_mask, is_padding)
    rows = torch.nonzero(real).flatten()
    adv = torch.zeros_like(token_level_rewards)
    if rows.numel() == 0:
        return adv, adv
    scores = token_level_rewards.sum(dim=-1)[rows]

    def sub(x):
        return None if x is None else x[rows]

    with torch.no_grad():
        if trajectory is not None or step is not None:
            if trajectory is None or step is None:
                raise ValueError("the step-row layout needs both trajectory and step")
            trajectory = np.asarray(trajectory, dtype=object).reshape(-1)
            step = np.asarray(step).reshape(-1)
            if trajectory.shape[0] != mask.shape[0] or step.shape[0] != mask.shape[0]:
                raise ValueError(f"trajectory and step must have one entry per row ({mask.shape[0]}), "
                                 f"got {trajectory.shape[0]} and {step.shape[0]}")
            keep = rows.numpy()
            out = _step_rows(scores, index[keep], mask[rows], sub(entropy), trajectory[keep], step[keep], opts, metrics)
        else:
            out = _concatenated(scores, index[rows.numpy()], response_mask[rows], sub(entropy), sub(step_ids),
                                opts, metrics)
        adv[rows] = out.to(adv.dtype) * mask[rows]
    return adv, adv


def _concatenated(scores, index, response_mask, entropy, step_ids, opts, metrics) -> torch.Tensor:
    """One row per trajectory: GRPO over the rows, then Eq. 7–12 on the turns (``[R, L]``)."""
    base = _grpo(scores, index, opts).to(torch.float32).unsqueeze(-1) * (response_mask != 0)
    if opts.variant == "off" and (metrics is None or entropy is None):
        return base
    if step_ids is None:
        ids = step_ids_from_response_mask(response_mask)
    else:
        if tuple(step_ids.shape) != tuple(response_mask.shape):
            raise ValueError(f"step_ids must be [B, L] like response_mask {tuple(response_mask.shape)}, "
                             f"got {tuple(step_ids.shape)}")
        ids = torch.where(response_mask != 0, step_ids.long(), torch.full_like(step_ids, -1, dtype=torch.long))
    if opts.variant == "off":  # a baseline: log the full-EMPG terms of this batch (one pass), train on GRPO
        _log_terms(metrics, empg.modulation_terms(base, entropy, ids, **_full_kwargs(opts)), enabled=False)
        return base
    out, terms = empg.modulate_advantages(base, entropy, ids, return_terms=True, **opts.modulation_kwargs())
    _log_terms(metrics, terms, enabled=True)
    return out


def _full_kwargs(opts) -> dict[str, float]:
    """The modulation settings of full EMPG with the run's k, k_f, zeta, eps (what a baseline logs)."""
    return empg.EMPGConfig(variant="full", k=opts.k, k_f=opts.k_f, zeta=opts.zeta, eps=opts.eps).modulation_kwargs()


def _log_terms(metrics: dict | None, terms, *, enabled: bool) -> None:
    """``empg/*`` statistics of one modulation pass into verl's metrics, with ``empg/enabled`` (0: logged only)."""
    if metrics is not None:
        metrics.update(terms.stats("empg"))
        metrics["empg/enabled"] = float(enabled)


def _step_rows(scores, index, mask, entropy, trajectory, step, opts, metrics) -> torch.Tensor:
    """One row per turn: GRPO over trajectories (outcome = last step's score), then Eq. 7–12 (``[R, 1]``)."""
    traj = _dense_ids(trajectory, "trajectory")
    try:
        stp = torch.as_tensor(np.asarray(step, dtype=np.int64))
    except (TypeError, ValueError):
        raise ValueError(f"step must hold integers, got {step[:5]!r}") from None
    n_traj = int(traj.max()) + 1
    # outcome of a trajectory = score of its last step row (largest step; the last such row in batch
    # order on a tie); its group = that row's uid. Deterministic, no duplicate-index writes.
    order = torch.arange(stp.shape[0])
    lowest = torch.full((n_traj,), torch.iinfo(torch.long).min, dtype=torch.long)
    max_step = lowest.scatter_reduce(0, traj, stp, reduce="amax")
    cand = torch.where(stp == max_step[traj], order, torch.full_like(order, -1))
    last = torch.full((n_traj,), -1, dtype=torch.long).scatter_reduce(0, traj, cand, reduce="amax")
    base = _grpo(scores[last], index[last.numpy()], opts)[traj]
    if opts.variant == "off" and (metrics is None or entropy is None):
        return base.unsqueeze(-1)
    on = mask > 0
    # entropies only where response_mask is 1 (where(), not *: inf/NaN off the mask stay out)
    ent = torch.where(on, entropy.to(torch.float64), torch.zeros((), dtype=torch.float64))
    step_entropy = ent.sum(-1) / on.double().sum(-1)  # every row here has a response token
    if opts.variant == "off":  # a baseline: log the full-EMPG terms of this batch (one pass), train on GRPO
        _log_terms(metrics, empg.step_modulation_terms(base, step_entropy, traj, stp, **_full_kwargs(opts)),
                   enabled=False)
        return base.unsqueeze(-1)
    out, terms = empg.modulate_step_advantages(base, step_entropy, traj, stp, return_terms=True,
                                               **opts.modulation_kwargs())
    _log_terms(metrics, terms, enabled=True)
    return out.unsqueeze(-1)


# --------------------------------------------------------------------------- the empg_sync trainer
def _is_empg(adv_estimator: Any) -> bool:
    return str(getattr(adv_estimator, "value", adv_estimator)) == "empg"


def _make_trainer_class():
    """verl's synchronous V1 trainer whose ``_compute_advantage`` hands the entropies to the estimator."""
    import transfer_queue as tq
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    class EMPGTrainerSync(PPOTrainerSync):
        """``trainer.v1.trainer_mode=empg_sync``: :class:`PPOTrainerSync` + the entropy hand-over to ``empg``."""

        # verl branches on ``self.trainer_mode == "sync"`` (replay buffer, refill, checkpoints): this
        # trainer is the sync one, registered under another name. The setter ignores verl's assignment.
        trainer_mode = property(lambda self: "sync", lambda self, value: None)

        def _compute_advantage(self, batch, metrics):
            if not _is_empg(self.config.algorithm.adv_estimator):
                return super()._compute_advantage(batch, metrics)
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                   select_fields=["entropy", "response_mask"]).to_padded_tensor()
            padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
            with empg_inputs(data["entropy"], data["response_mask"], batch.keys, is_padding=padding, metrics=metrics):
                return super()._compute_advantage(batch, metrics)

    EMPGTrainerSync.__module__ = __name__
    return EMPGTrainerSync


# --------------------------------------------------------------------------- config resolvers
def run_name(outcome: str, variant: str, model_path: str, lora_rank: Any = 0, norm_adv_by_std: Any = True) -> str:
    """``<method>_<model>`` of a verl run, e.g. ``dapo_empg_qwen2.5-1.5b-instruct`` (``scaled.config`` naming).

    ``norm_adv_by_std=False`` (``algorithm.norm_adv_by_std_in_grpo``) names the outcome ``drgrpo`` (``dapo-nostd``
    under DAPO), so Dr.GRPO and GRPO runs never share a run folder.
    """
    variant = "off" if variant is False else str(variant)
    if str(norm_adv_by_std).lower() in ("false", "0"):
        outcome = "drgrpo" if str(outcome) == "grpo" else f"{outcome}-nostd"
    method = str(outcome) if variant == "off" else f"{outcome}_empg" + ("" if variant == "full" else f"-{variant}")
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", str(model_path).rstrip("/").split("/")[-1]).strip("-").lower() or "model"
    return f"{method}_{model}" + ("-lora" if int(lora_rank or 0) > 0 else "")


def if_dapo(outcome: Any, when_dapo: Any, otherwise: Any) -> Any:
    """``when_dapo`` if ``algorithm.empg.outcome`` is dapo, else ``otherwise`` (checked: grpo or dapo)."""
    if str(outcome) not in ("grpo", "dapo"):
        raise ValueError(f"algorithm.empg.outcome must be 'grpo' or 'dapo', got {outcome!r}")
    return when_dapo if str(outcome) == "dapo" else otherwise


def register_resolvers() -> None:
    """``${empg_if_dapo:...}`` and ``${empg_run_name:...}`` for ``scaled/verl/config/empg_trainer.yaml``."""
    from omegaconf import OmegaConf

    # omegaconf 2.4 renamed register_new_resolver (2.1-2.3) to register_resolver (2.0's old name, other semantics)
    new = getattr(OmegaConf, "register_new_resolver")
    if tuple(int(x) for x in __import__("omegaconf").__version__.split(".")[:2]) >= (2, 4):
        new = OmegaConf.register_resolver
    new("empg_if_dapo", if_dapo, replace=True)
    new("empg_run_name", run_name, replace=True)


# --------------------------------------------------------------------------- install and checks
def _resolve(point: str) -> Any:
    module, qualname = point.split(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "__ray_actor_class__", obj)


def source_hash(point: str) -> str:
    """sha256 of the source of ``module:qualname`` in the installed verl."""
    return hashlib.sha256(inspect.getsource(_resolve(point)).encode()).hexdigest()


def changed_contact_points() -> dict[str, str]:
    """The contact points whose installed source differs from verl 0.9.1's: ``point -> why it matters``."""
    return {point: why for point, (sha, why) in CONTACT_POINTS.items() if source_hash(point) != sha}


def is_installed() -> bool:
    return _INSTALLED


def install() -> list[str]:
    """Register ``"empg"`` in verl's estimator registry and the ``empg_sync`` trainer (idempotent).

    Returns:
        The registrations, ``module:name`` each (the trainer only where TransferQueue is importable,
        i.e. where verl's V1 trainer can run at all).

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
    try:
        from verl.trainer.ppo.v1 import trainer_base
    except ImportError:  # pragma: no cover - TransferQueue missing: the V1 trainer cannot run anyway
        pass
    else:
        if TRAINER_MODE not in trainer_base.TRAINER_REGISTRY:
            trainer_base.register_trainer(TRAINER_MODE)(_make_trainer_class())
        done.append(f"verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY[{TRAINER_MODE!r}]")
    _INSTALLED = True
    return done


def _autoinstall() -> None:
    try:
        register_resolvers()
    except ImportError:  # pragma: no cover - omegaconf missing: nothing can read the config anyway
        pass
    try:
        importlib.import_module("verl.protocol")  # not just "verl": a folder named verl on sys.path is not it
    except ImportError:
        return  # importable without verl; install() explains what is missing
    install()


_autoinstall()
