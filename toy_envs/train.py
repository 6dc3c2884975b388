"""The toy trainer in one file: group rollouts, GRPO/DAPO, EMPG (Eq. 7–12) and a policy-gradient loss.

    python -m toy_envs.train --env toy_envs/KeyDoor-v0 --method empg --updates 100 --out runs/kd_empg
    python -m toy_envs.train --out runs/kd_empg --resume --updates 200     # continue the same run
    python -m toy_envs.train --env toy_envs/KeyDoor-v0 --env-kwargs '{"layout": "small"}' --method grpo
    empg-toy --help                                                         # the same, as a console script

It reads top to bottom like a CleanRL script: the arguments (:class:`ToyTrainConfig`, whose field
docstrings are the ``--help``), the pieces of one update, the training loop (:func:`train`, a library
function that the demo, the experiments, the tutorials and the tests call), and the command line.
One update:

1. **Rollouts.** Draw ``tasks_per_update`` task seeds; play ``group_size`` episodes of each (an
   episode starts with ``env.reset(seed=task_seed)``, so a group shares its task). Every step records
   the policy's action distribution there: the step entropy ``H_{i,t}`` (spec §2: a step is one
   action, so its "mean token entropy" is the entropy of that one distribution), ``log π_old(a)``,
   the Rényi-2 entropy and the squared score norm of the taken action (Proposition 1 diagnostics).
2. **Outcome advantage.** ``R_i`` is the episode return (sparse: 1 on success). GRPO normalises it
   within each group; DAPO (:class:`empg.OutcomeConfig` ``estimator="dapo"``) also drops groups whose
   rewards are all equal (dynamic sampling, refilled with up to ``max_refill_rounds`` extra rounds)
   and clips higher (:meth:`empg.LossConfig.resolved_clip_high`: ε_high = 0.28).
3. **EMPG.** The estimator is picked by name in the registry, ``empg.compute_advantages("empg",
   AdvantageInputs(rewards, group, step_entropy, trajectory, step), variant=..., metrics=row)``
   (Eq. 7–12, step-row layout): one pass gives the advantages and the logged ``empg/…`` statistics
   (with variant ``off`` the advantage is the plain outcome one and the statistics show what EMPG
   *would* do).
4. **Loss.** REINFORCE (``−agg A_s log π(a_s)``) or the clipped surrogate with ``old_logp`` from the
   rollout, for ``epochs`` passes over ``minibatches`` minibatches of trajectories; optional k3 KL to
   the initial policy.
5. **Logging** (names from :data:`empg.metrics.METRICS`): ``charts/…`` (success, return, length),
   ``empg/…`` (``ModulationTerms.stats``), ``policy/kl_prev`` (KL between the policies before and
   after the update), ``policy/kl_init``, ``policy/grad_norm``, ``loss/…``, ``prop1/…``; one JSON line
   per update in ``OUT/metrics.jsonl`` (:class:`empg.io.MetricsLog`), optional TensorBoard, a
   matplotlib figure, a tqdm bar.
6. **Checkpoints** every ``checkpoint_every`` updates in ``OUT/checkpoints`` (:class:`empg.io.CheckpointDir`:
   atomic writes, the last two kept, a damaged one skipped with a warning naming it), holding the
   policy, optimiser, initial policy, every RNG state, the update counter and the history. A run
   killed at any moment and started again with ``resume=True`` produces the same metrics and
   bit-identical weights as an uninterrupted run.

Diagnostics never change a run: the Prop. 1 subsample draws from its own generator, and logging,
checkpoints, plots and the progress bar draw no random numbers.

Environments are duck-typed (no gymnasium import in the loop): ``reset(seed=) -> (obs, info)`` and
``step(action) -> (obs, reward, terminated, truncated, info)``; integer observations with a
``Discrete``-like ``observation_space.n`` get a :class:`~toy_envs.policies.TabularSoftmaxPolicy`, text
observations with ``info["admissible_commands"]`` a :class:`~toy_envs.policies.LogLinearPolicy`.
The command line makes them with ``gymnasium.make`` (importing ``pkg`` of an id ``pkg/Name-v0`` first
so that it registers its environments).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import importlib
import inspect
import io
import itertools
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence

import torch

from empg import (AGGREGATIONS, VARIANTS, AdvantageInputs, EMPGConfig, LossConfig, OutcomeConfig, clipped_policy_loss,
                  compute_advantages, dynamic_sampling_mask, expected_score_norm_sq, kl_penalty, reinforce_loss,
                  renyi2_entropy, token_entropy)
from empg.io import CheckpointDir, MetricsLog, atomic_write_bytes, atomic_write_json, check_writable

from toy_envs.policies import LogLinearPolicy, SoftmaxPolicy, TabularSoftmaxPolicy, gumbel_max_sample, score_norm_sq

__all__ = [
    "ToyTrainConfig",
    "METHODS",
    "TrainResult",
    "Rollout",
    "train",
    "collect_rollouts",
    "compute_step_advantages",
    "make_policy",
    "plot_history",
    "make_gym_env_factory",
    "config_from_args",
    "main",
]

# =========================================================================== arguments

#: ``--method`` shortcuts: (outcome estimator, EMPG variant).
METHODS: dict[str, tuple[str, str]] = {
    "grpo": ("grpo", "off"),
    "dapo": ("dapo", "off"),
    "empg": ("grpo", "full"),
    "empg_scaling": ("grpo", "scaling"),
    "empg_bonus": ("grpo", "bonus"),
    "dapo_empg": ("dapo", "full"),
    "dapo_empg_scaling": ("dapo", "scaling"),
    "dapo_empg_bonus": ("dapo", "bonus"),
}


@dataclass
class ToyTrainConfig:
    """Everything one toy training run needs (CleanRL's ``Args``). Every field's docstring is its ``--help`` text.

    The algorithm's fields map one to one onto the core's config dataclasses, which define what they
    mean: :attr:`outcome_config` (:class:`empg.OutcomeConfig`), :attr:`empg_config`
    (:class:`empg.EMPGConfig`) and :attr:`loss_config` (:class:`empg.LossConfig`). Their defaults are
    the core's, except the toy's choices of a REINFORCE loss, no KL term and EMPG off.
    """

    # --- run ---
    env: str = "toy_envs/KeyDoor-v0"
    """gymnasium id of the environment (used by the CLI; the trainer itself takes a factory)."""
    env_kwargs: str = "{}"
    """JSON object of keyword arguments for gymnasium.make with env, e.g. '{"layout": "small"}' (used by the CLI)."""
    seed: int = 0
    """Seed of the policy initialisation, task draws, action sampling and minibatch order."""
    updates: int = 100
    """Number of policy updates (each is one batch of group rollouts)."""
    out: Optional[str] = None
    """Output directory for metrics.jsonl, config.json, checkpoints/, curves.png and prop1.csv (None: nothing written)."""
    resume: bool = False
    """Continue from the newest good checkpoint in OUT/checkpoints if there is one (the result equals an uninterrupted run)."""
    checkpoint_every: int = 10
    """Write a checkpoint atomically every this many updates (0: only at the end); the last two are kept."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = False
    """Also log to TensorBoard under OUT/tb (needs the tensorboard package)."""
    plot: bool = True
    """Save OUT/curves.png (matplotlib) at the end."""

    # --- rollouts ---
    tasks_per_update: int = 8
    """Distinct tasks per update (paper setup: 16 environments per step, verl-agent)."""
    group_size: int = 8
    """Episodes per task, G (paper setup: group size 8)."""
    num_tasks: int = 0
    """Task seeds are drawn from [0, num_tasks); 0 draws fresh seeds from [0, 2**31) each time."""
    max_episode_steps: int = 1000
    """Safety cap on an episode's length inside the trainer (the env's own TimeLimit usually ends it first)."""

    # --- advantage (empg.OutcomeConfig, empg.EMPGConfig) ---
    outcome: str = "grpo"
    """Outcome advantage (OutcomeConfig.estimator): grpo, or dapo (GRPO + dynamic sampling with refill + clip-higher)."""
    std_normalize: bool = OutcomeConfig.std_normalize
    """Divide by the group's reward std (GRPO; OutcomeConfig.std_normalize). False gives Dr.GRPO."""
    dapo_max_rounds: int = OutcomeConfig.max_refill_rounds
    """DAPO: extra rollout rounds of fresh tasks to refill the groups dynamic sampling dropped (OutcomeConfig.max_refill_rounds)."""
    empg: str = "off"
    """EMPG variant (EMPGConfig.variant): off, scaling (Eq. 10 only), bonus (Eq. 11 only) or full (Eq. 7-12)."""
    k: float = EMPGConfig.k
    """EMPG scaling sharpness k, Eq. 10 (reference pseudocode: 1.0)."""
    k_f: float = EMPGConfig.k_f
    """EMPG bonus sharpness k', Eq. 11 (reference pseudocode: 1.0)."""
    zeta: float = EMPGConfig.zeta
    """EMPG bonus weight zeta, Eq. 8 (reference pseudocode: 0.1; one re-implementation used 0.05)."""

    # --- loss and optimiser (empg.LossConfig) ---
    loss: str = "reinforce"
    """Loss (LossConfig.kind): reinforce (no ratio, one pass) or clipped (PPO surrogate with old_logp from the rollout)."""
    clip_low: float = LossConfig.clip_low
    """Clipped loss: epsilon_low (PPO/DAPO 0.2)."""
    clip_high: Optional[float] = LossConfig.clip_high
    """Clipped loss: epsilon_high; None means 0.28 for dapo (clip-higher) and clip_low otherwise (LossConfig.resolved_clip_high)."""
    epochs: int = 1
    """Passes over the batch per update (clipped loss)."""
    minibatches: int = 1
    """Minibatches per epoch (split by trajectory)."""
    agg: str = LossConfig.agg
    """Loss aggregation over steps (a step is one token here): token-mean (every step weighs the same), seq-mean-token-mean or seq-mean-token-sum (sum over an episode, mean over episodes)."""
    kl_coef: float = 0.0
    """k3 KL-to-initial-policy coefficient (paper: 0.01 for LLMs; 0 for the toys)."""
    optimizer: str = "adam"
    """adam or sgd."""
    lr: float = 0.1
    """Learning rate (tabular logits / log-linear weights)."""
    max_grad_norm: float = 0.0
    """Clip the gradient norm to this value (0: no clipping; the norm is logged either way)."""

    # --- policy ---
    policy: str = "auto"
    """auto (tabular for Discrete observations, log-linear for text), tabular, or loglinear."""
    num_features: int = 2**14
    """Log-linear policy: number of hash buckets."""
    init_std: float = 0.0
    """Tabular policy: std of the initial logits (0: uniform policy)."""

    # --- diagnostics (never change the run) ---
    prop1_every: int = 0
    """Every this many updates keep the per-step (H, H2, |score|^2) records for Prop. 1 (0: never)."""
    prop1_max_rows: int = 2000
    """At most this many per-step Prop. 1 records per recorded update (a subsample from the diagnostic's own generator)."""

    def __post_init__(self) -> None:
        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)!r}")

        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        for name in ("updates", "tasks_per_update", "group_size", "epochs", "minibatches", "max_episode_steps"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, "an int >= 1")
        for name in ("num_tasks", "checkpoint_every", "dapo_max_rounds", "prop1_every", "prop1_max_rows", "seed"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, name, "an int >= 0")
        need(self.outcome in ("grpo", "dapo"), "outcome", "'grpo' or 'dapo'")
        need(self.empg in VARIANTS, "empg", f"one of {VARIANTS}")
        need(self.loss in ("reinforce", "clipped"), "loss", "'reinforce' or 'clipped'")
        need(self.agg in AGGREGATIONS, "agg", f"one of {AGGREGATIONS}")
        need(self.optimizer in ("adam", "sgd"), "optimizer", "'adam' or 'sgd'")
        need(self.policy in ("auto", "tabular", "loglinear"), "policy", "'auto', 'tabular' or 'loglinear'")
        need(number(self.lr) and math.isfinite(self.lr) and self.lr > 0, "lr", "a finite number > 0")
        for name in ("k", "k_f", "zeta", "kl_coef", "max_grad_norm", "clip_low", "init_std"):
            v = getattr(self, name)
            need(number(v) and math.isfinite(v) and v >= 0, name, "a finite number >= 0")
        need(self.clip_high is None or (number(self.clip_high) and math.isfinite(self.clip_high) and self.clip_high >= 0),
             "clip_high", "None or a finite number >= 0")
        need(isinstance(self.num_features, int) and not isinstance(self.num_features, bool) and self.num_features >= 1,
             "num_features", "an int >= 1")
        need(isinstance(self.std_normalize, bool), "std_normalize", "a bool")
        try:
            kwargs = json.loads(self.env_kwargs) if isinstance(self.env_kwargs, str) else None
        except json.JSONDecodeError:
            kwargs = None
        need(isinstance(kwargs, dict), "env_kwargs", "a JSON object (text)")
        if self.resume and not self.out:
            raise ValueError("resume=True needs out (the directory holding the run's checkpoints)")
        # Both outcomes are group-relative: with G = 1 every advantage is 0, and DAPO's dynamic sampling
        # would drop every group (one reward is always "all equal") and never update.
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 for a group-relative advantage (grpo and dapo), got {self.group_size}")

    # The core's config objects for this run: the loop reads the algorithm from these.
    @property
    def outcome_config(self) -> OutcomeConfig:
        """:class:`empg.OutcomeConfig` of ``outcome``, ``std_normalize`` and ``dapo_max_rounds``."""
        return OutcomeConfig(estimator=self.outcome, std_normalize=self.std_normalize,
                             max_refill_rounds=self.dapo_max_rounds)

    @property
    def empg_config(self) -> EMPGConfig:
        """:class:`empg.EMPGConfig` of ``empg`` (the variant), ``k``, ``k_f`` and ``zeta``."""
        return EMPGConfig(variant=self.empg, k=self.k, k_f=self.k_f, zeta=self.zeta)

    @property
    def loss_config(self) -> LossConfig:
        """:class:`empg.LossConfig` of ``loss``, ``clip_low``, ``clip_high``, ``agg`` and ``kl_coef``."""
        return LossConfig(kind=self.loss, clip_low=self.clip_low, clip_high=self.clip_high, agg=self.agg,
                          kl_coef=self.kl_coef)

    @classmethod
    def for_method(cls, method: str, **overrides: Any) -> "ToyTrainConfig":
        """A config for one of :data:`METHODS` (e.g. ``"empg"`` = GRPO + full EMPG)."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        outcome, variant = METHODS[method]
        return cls(outcome=outcome, empg=variant, **overrides)

    @property
    def method(self) -> str:
        """The :data:`METHODS` name of this (outcome, empg) pair."""
        for name, pair in METHODS.items():
            if pair == (self.outcome, self.empg):
                return name
        return f"{self.outcome}+{self.empg}"  # pragma: no cover - every pair is listed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Fields that may differ between a run and its resumption (they do not change the numbers).
_RESUME_FREE = {"updates", "resume", "out", "progress", "tensorboard", "plot", "checkpoint_every"}


def _diagnostic_generator(name: str, seed: int) -> torch.Generator:
    """A generator of its own for one diagnostic, so that turning it on never moves the training RNG."""
    return torch.Generator().manual_seed(zlib.crc32(f"{name}:{seed}".encode()))


# =========================================================================== 1. rollouts


@dataclass
class Rollout:
    """One batch of episodes in the step-row layout (spec §1).

    Attributes:
        rewards: ``[N]`` episode return. success: ``[N]`` bool. length: ``[N]`` steps. group: ``[N]`` task index.
        task_seed: ``[N]`` the reset seed of each episode.
        records: ``S`` encoded observations (policy-specific, see :meth:`SoftmaxPolicy.encode`).
        actions, old_logp, step_entropy, renyi2, score_norm_sq, expected_score_norm_sq: ``[S]``.
        trajectory: ``[S]`` index into ``rewards``. step: ``[S]`` index inside the episode.
    """

    rewards: torch.Tensor
    success: torch.Tensor
    length: torch.Tensor
    group: torch.Tensor
    task_seed: torch.Tensor
    records: list
    actions: torch.Tensor
    old_logp: torch.Tensor
    step_entropy: torch.Tensor
    renyi2: torch.Tensor
    score_norm_sq: torch.Tensor
    expected_score_norm_sq: torch.Tensor
    trajectory: torch.Tensor
    step: torch.Tensor

    @property
    def num_episodes(self) -> int:
        return int(self.rewards.numel())

    @property
    def num_steps(self) -> int:
        return int(self.step.numel())

    def select(self, keep: torch.Tensor) -> "Rollout":
        """The episodes where ``keep [N]`` is True, re-indexed (trajectory ids 0..N'-1)."""
        keep = keep.bool()
        new_id = torch.cumsum(keep.long(), 0) - 1
        step_keep = keep[self.trajectory]
        idx = torch.nonzero(step_keep).flatten().tolist()
        return Rollout(
            rewards=self.rewards[keep], success=self.success[keep], length=self.length[keep],
            group=self.group[keep], task_seed=self.task_seed[keep],
            records=[self.records[i] for i in idx],
            actions=self.actions[step_keep], old_logp=self.old_logp[step_keep],
            step_entropy=self.step_entropy[step_keep], renyi2=self.renyi2[step_keep],
            score_norm_sq=self.score_norm_sq[step_keep], expected_score_norm_sq=self.expected_score_norm_sq[step_keep],
            trajectory=new_id[self.trajectory[step_keep]], step=self.step[step_keep],
        )

    @staticmethod
    def concat(parts: Sequence["Rollout"]) -> "Rollout":
        """Concatenate batches; trajectory ids and group ids are offset to stay distinct."""
        t_off, g_off = 0, 0
        fields: dict[str, list] = {f.name: [] for f in dataclasses.fields(Rollout)}
        for p in parts:
            for f in dataclasses.fields(Rollout):
                v = getattr(p, f.name)
                if f.name == "trajectory":
                    v = v + t_off
                elif f.name == "group":
                    v = v + g_off
                fields[f.name].append(v)
            t_off += p.num_episodes
            g_off += int(p.group.max()) + 1 if p.num_episodes else 0
        out = {k: (sum(v, []) if k == "records" else torch.cat(v)) for k, v in fields.items()}
        return Rollout(**out)


def _episode_success(info: dict, episode_return: float, terminated: bool) -> bool:
    for key in ("won", "is_success", "success"):
        if key in info:
            return bool(info[key])
    return bool(terminated and episode_return > 0)


class _EnvPool:
    """``n`` environments from a factory ``make_env()`` (one per slot) or ``make_env(task_seed)``."""

    def __init__(self, make_env: Callable[..., Any] | Sequence[Any], max_cached: int = 256):
        self._list = None
        self._per_task = False
        if isinstance(make_env, (list, tuple)):
            self._list = list(make_env)
            if not self._list:
                raise ValueError("make_env: the list of environments is empty")
        elif callable(make_env):
            try:
                params = [p for p in inspect.signature(make_env).parameters.values()
                          if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            except (TypeError, ValueError):
                params = []
            self._per_task = len(params) >= 1
        else:
            raise TypeError(f"make_env must be a callable or a list of environments, got {type(make_env).__name__}")
        self._make = make_env
        self._slots: dict[Any, Any] = {}
        self._max_cached = max_cached

    def get(self, slot: int, task_seed: int) -> Any:
        if self._list is not None:
            if slot >= len(self._list):
                raise ValueError(f"make_env: {len(self._list)} environments given but {slot + 1} needed "
                                 "(tasks_per_update * group_size)")
            return self._list[slot]
        key = (task_seed, slot) if self._per_task else slot
        if key not in self._slots:
            if len(self._slots) >= self._max_cached:
                old_key = next(iter(self._slots))
                old = self._slots.pop(old_key)
                if hasattr(old, "close"):
                    old.close()
            self._slots[key] = self._make(task_seed) if self._per_task else self._make()
        return self._slots[key]

    def first(self) -> Any:
        return self.get(0, 0)

    def close(self) -> None:
        for env in self._slots.values():
            if hasattr(env, "close"):
                env.close()
        self._slots.clear()


@torch.no_grad()
def collect_rollouts(
    policy: SoftmaxPolicy,
    envs: _EnvPool | Callable[..., Any] | Sequence[Any],
    task_seeds: Sequence[int],
    group_size: int,
    *,
    generator: torch.Generator | None = None,
    max_episode_steps: int = 1000,
) -> Rollout:
    """Play ``group_size`` episodes of each task seed in lock-step, sampling from ``policy``.

    Episode ``j`` of task ``m`` (group ``m``) starts with ``env.reset(seed=task_seeds[m])``. All
    running episodes share one batched policy call per time step; the step's entropy, Rényi-2
    entropy and score norms all come from that one call's logits.

    Returns:
        A :class:`Rollout` with ``N = len(task_seeds) · group_size`` episodes.
    """
    pool = envs if isinstance(envs, _EnvPool) else _EnvPool(envs)
    n = len(task_seeds) * group_size
    obs, infos, env_of = [None] * n, [None] * n, [None] * n
    for i in range(n):
        env = pool.get(i, int(task_seeds[i // group_size]))
        env_of[i] = env
        obs[i], infos[i] = env.reset(seed=int(task_seeds[i // group_size]))
    ep_return = [0.0] * n
    ep_len = [0] * n
    ep_success = [False] * n
    active = list(range(n))
    records: list = []
    # Per time step only the logits and the sampled actions are kept; every per-step quantity derived
    # from them (log π_old, H, H₂, score norms) is computed after the loop (_derived_step_values).
    cols: dict[str, list] = {k: [] for k in ("z", "a", "traj", "step")}
    while active:
        enc = [policy.encode(obs[i], infos[i]) for i in active]
        z = policy.logits(policy.collate(enc)).detach()
        act = gumbel_max_sample(z, generator)
        records.extend(enc)
        cols["z"].append(z)
        cols["a"].append(act)
        cols["traj"].append(active)
        cols["step"].append([ep_len[i] for i in active])
        still = []
        for i, a in zip(active, act.tolist()):
            o, r, term, trunc, info = env_of[i].step(a)
            r = float(r)
            if not math.isfinite(r):
                raise ValueError(f"the environment returned a non-finite reward {r!r}")
            ep_return[i] += r
            ep_len[i] += 1
            obs[i], infos[i] = o, info
            if term or trunc or ep_len[i] >= max_episode_steps:
                ep_success[i] = _episode_success(info, ep_return[i], bool(term))
            else:
                still.append(i)
        active = still
    if cols["z"]:
        a_all = torch.cat(cols["a"]).long()
        derived = _derived_step_values(cols["z"], cols["a"])
        traj = torch.as_tensor(list(itertools.chain.from_iterable(cols["traj"])), dtype=torch.long)
        step = torch.as_tensor(list(itertools.chain.from_iterable(cols["step"])), dtype=torch.long)
    else:
        a_all, traj, step = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        derived = {k: torch.zeros(0) for k in ("logp", "h", "h2", "sn", "esn")}
    return Rollout(
        rewards=torch.tensor(ep_return, dtype=torch.float64),
        success=torch.tensor(ep_success, dtype=torch.bool),
        length=torch.tensor(ep_len, dtype=torch.long),
        group=torch.arange(n) // group_size,
        task_seed=torch.as_tensor([int(task_seeds[i // group_size]) for i in range(n)], dtype=torch.long),
        records=records,
        actions=a_all,
        old_logp=derived["logp"].float(),
        step_entropy=derived["h"].double(),
        renyi2=derived["h2"].double(),
        score_norm_sq=derived["sn"].double(),
        expected_score_norm_sq=derived["esn"].double(),
        trajectory=traj,
        step=step,
    )


def _derived_step_values(zs: list[torch.Tensor], acts: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """log π_old(a), H, H₂, ‖e_a − π‖² and 1 − exp(−H₂) of every step, from the per-time-step logits ``[S_t, A]``.

    When every time step has the same number of actions (the tabular policy), one call over the whole
    batch; otherwise (text: the command lists differ) one call per time step, as during the rollout.
    Either way each value is a row-wise function of that step's logits.
    """
    chunks = [(torch.cat(zs), torch.cat(acts).long())] if len({z.shape[-1] for z in zs}) == 1 else \
        list(zip(zs, [a.long() for a in acts]))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("logp", "h", "h2", "sn", "esn")}
    for z, a in chunks:
        parts["logp"].append(torch.log_softmax(z, -1).gather(-1, a.unsqueeze(-1)).squeeze(-1))
        parts["h"].append(token_entropy(z))
        parts["h2"].append(renyi2_entropy(z))
        parts["sn"].append(score_norm_sq(z, a))  # ‖e_a − π‖² of the taken action (Prop. 1)
        parts["esn"].append(expected_score_norm_sq(z))  # its expectation 1 − exp(−H₂)
    return {k: torch.cat(v) for k, v in parts.items()}


def _draw_task_seeds(cfg: ToyTrainConfig, gen: torch.Generator, n: int) -> list[int]:
    high = cfg.num_tasks if cfg.num_tasks > 0 else 2**31 - 1
    return torch.randint(0, high, (n,), generator=gen).tolist()


# =========================================================================== 2-3. advantages


def compute_step_advantages(batch: Rollout, cfg: ToyTrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-step advantages ``[S]`` of a rollout via the registry, and the ``empg/…`` statistics, in one pass.

    GRPO outcome advantage on ``batch.rewards`` grouped by ``batch.group`` (DAPO's advantage is GRPO's
    on the groups it kept); with ``cfg.empg != "off"`` the registered ``empg`` estimator modulates it
    with the step entropies (Eq. 7–12). The same pass fills the ``empg/…`` statistics
    (``ModulationTerms.stats``), with the full variant's terms when EMPG is off (what EMPG *would* do).
    """
    inputs = AdvantageInputs(rewards=batch.rewards, group=batch.group, step_entropy=batch.step_entropy,
                             trajectory=batch.trajectory, step=batch.step)
    mod, outcome = cfg.empg_config, cfg.outcome_config
    stats: dict[str, float] = {}
    adv = compute_advantages("empg", inputs, variant=mod.variant, outcome="grpo", k=mod.k, k_f=mod.k_f, zeta=mod.zeta,
                             eps=mod.eps, std_normalize=outcome.std_normalize, metrics=stats)
    return adv.double(), stats


# =========================================================================== 4. policy and loss


def make_policy(cfg: ToyTrainConfig, env: Any) -> SoftmaxPolicy:
    """Tabular for ``Discrete``-like observation spaces (an ``n`` attribute), log-linear for text."""
    kind = cfg.policy
    obs_space = getattr(env, "observation_space", None)
    if kind == "auto":
        kind = "tabular" if hasattr(obs_space, "n") else "loglinear"
    if kind == "tabular":
        act_space = getattr(env, "action_space", None)
        if not hasattr(obs_space, "n") or not hasattr(act_space, "n"):
            raise ValueError("policy='tabular' needs Discrete observation and action spaces (with .n)")
        return TabularSoftmaxPolicy(int(obs_space.n), int(act_space.n), init_std=cfg.init_std)
    return LogLinearPolicy(cfg.num_features)


def _kl_rows(z_p: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """``[S]`` KL(softmax(z_p) ‖ softmax(z_q)) per row; ``-inf`` (invalid) actions contribute 0."""
    lp = torch.log_softmax(z_p.double(), -1)
    lq = torch.log_softmax(z_q.double(), -1)
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p)).sum(-1)


def _pad_steps(values: torch.Tensor, traj: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step rows ``[S]`` -> ``[n_traj, T_max]`` with a mask (for the seq-mean aggregations)."""
    uniq, t_local = torch.unique(traj, return_inverse=True)
    t_max = int(step.max()) + 1 if step.numel() else 1
    out = values.new_zeros(uniq.numel(), t_max)
    mask = torch.zeros(uniq.numel(), t_max, dtype=torch.bool)
    out = out.index_put((t_local, step), values)
    mask[t_local, step] = True
    return out, mask


def _update_policy(policy: SoftmaxPolicy, init_policy: SoftmaxPolicy, optimizer: torch.optim.Optimizer,
                   batch: Rollout, adv: torch.Tensor, cfg: ToyTrainConfig, gen: torch.Generator) -> dict[str, float]:
    """Epochs × minibatches of the chosen loss on ``batch``; returns ``loss/…`` and ``policy/…`` metrics."""
    loss_cfg = cfg.loss_config
    clip_high = loss_cfg.resolved_clip_high(cfg.outcome_config)
    params = [p for p in policy.parameters() if p.requires_grad]
    n = batch.num_episodes
    metrics: dict[str, list[float]] = {}
    epochs = cfg.epochs if loss_cfg.kind == "clipped" else 1
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for mb in torch.tensor_split(perm, min(cfg.minibatches, n)):
            in_mb = torch.zeros(n, dtype=torch.bool)
            in_mb[mb] = True
            rows = torch.nonzero(in_mb[batch.trajectory]).flatten()
            if rows.numel() == 0:
                continue
            sub = policy.collate([batch.records[i] for i in rows.tolist()])
            logp = policy.log_prob(sub, batch.actions[rows])
            a = adv[rows].to(logp.dtype)
            old = batch.old_logp[rows].to(logp.dtype)
            if loss_cfg.agg == "token-mean":
                args = (logp, old, a, None)
            else:
                t, s = batch.trajectory[rows], batch.step[rows]
                lp2, m2 = _pad_steps(logp, t, s)
                args = (lp2, _pad_steps(old, t, s)[0], _pad_steps(a, t, s)[0], m2)
            if loss_cfg.kind == "clipped":
                loss, m = clipped_policy_loss(args[0], args[1], args[2], args[3], clip_low=loss_cfg.clip_low,
                                              clip_high=clip_high, agg=loss_cfg.agg)
            else:
                loss, m = reinforce_loss(args[0], args[2], args[3], agg=loss_cfg.agg)
            if loss_cfg.kl_coef > 0:
                with torch.no_grad():
                    ref = init_policy.log_prob(sub, batch.actions[rows])
                kl_loss, km = kl_penalty(logp, ref, coef=loss_cfg.kl_coef)
                loss = loss + kl_loss
                m.update(km)
            if not torch.isfinite(loss):
                raise ValueError(f"the loss became non-finite ({float(loss)}); lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
            m["policy/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            optimizer.step()
            for key, v in m.items():
                metrics.setdefault(key, []).append(v)
    return {k: sum(v) / len(v) for k, v in metrics.items()}


# =========================================================================== 5-6. the training loop


@dataclass
class TrainResult:
    """What :func:`train` returns: the final policy, the per-update history and the Prop. 1 records."""

    policy: SoftmaxPolicy
    history: list[dict[str, float]]
    prop1: list[dict[str, Any]] = field(default_factory=list)
    config: ToyTrainConfig | None = None
    wall_time: float = 0.0

    def curve(self, key: str = "charts/success_rate") -> list[float]:
        return [row[key] for row in self.history]


def _remove_stale_temp_files(*folders: Path) -> None:
    """Temporary files of atomic writes that a kill interrupted (``.name.XXXX.tmp``); never read, so drop them."""
    for folder in folders:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def train(cfg: ToyTrainConfig, make_env: Callable[..., Any] | Sequence[Any],
          policy: SoftmaxPolicy | None = None, *, callback: Callable[[int, dict], Any] | None = None) -> TrainResult:
    """Train a softmax policy on ``make_env`` with ``cfg`` (see the module docstring for one update).

    Args:
        cfg: the run's :class:`ToyTrainConfig`.
        make_env: ``make_env()`` -> env (one per rollout slot; tasks are reset seeds),
            ``make_env(task_seed)`` -> env for that task, or a list of ``tasks_per_update · group_size`` envs.
        policy: a policy to train (default :func:`make_policy` from the first env).
        callback: called as ``callback(update, metrics)`` after every update; returning ``True`` stops
            the run early (after the checkpoint of that update, if one is due).

    Returns:
        A :class:`TrainResult`. With ``cfg.out`` set, also writes there config.json, metrics.jsonl
        (one row per update), checkpoints/step-*.pt (atomically, the last two), curves.png and
        (``prop1_every > 0``) prop1.csv.

    Raises:
        ValueError: ``cfg.out`` already holds checkpoints and ``cfg.resume`` is False, or the config
            differs from the checkpoint's (other than :data:`_RESUME_FREE` fields).
        empg.io.CheckpointError: ``resume`` and every checkpoint in the folder is damaged.
    """
    if not isinstance(cfg, ToyTrainConfig):
        raise TypeError(f"cfg must be a ToyTrainConfig, got {type(cfg).__name__}")
    t_start = time.perf_counter()
    outcome_cfg = cfg.outcome_config
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)  # tasks, actions, minibatch order: the run itself
    prop1_gen = _diagnostic_generator("prop1", cfg.seed)  # Prop. 1 subsample: a diagnostic
    pool = _EnvPool(make_env)
    if policy is None:
        policy = make_policy(cfg, pool.first())
    init_policy = copy.deepcopy(policy).requires_grad_(False)
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    optimizer = opt_cls(policy.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    prop1: list[dict[str, Any]] = []
    start, env_steps, episodes = 0, 0, 0

    out = Path(cfg.out) if cfg.out else None
    checkpoints = log = None
    if out is not None:
        check_writable(out)
        checkpoints = CheckpointDir(out / "checkpoints", keep=2)
        _remove_stale_temp_files(out, checkpoints.folder)
        if not cfg.resume and checkpoints.steps():
            raise ValueError(f"out {str(out)!r} already holds a run (checkpoints {checkpoints.steps()} in "
                             f"{str(checkpoints.folder)!r}); pass resume=True (--resume) to continue it, "
                             "or choose another out")
        latest = checkpoints.load_latest() if cfg.resume else None  # warns about, and skips, damaged files
        if latest is not None:
            step, ck = latest
            for newer in [s for s in checkpoints.steps() if s > step]:  # the damaged ones: keep them, out of the way
                bad = checkpoints.path(newer)
                bad.rename(bad.with_name(bad.name + ".damaged"))
            saved = {k: v for k, v in ck["config"].items() if k not in _RESUME_FREE}
            now = {k: v for k, v in cfg.to_dict().items() if k not in _RESUME_FREE}
            diff = sorted(k for k in now if saved.get(k) != now[k])
            if diff:
                raise ValueError(f"resume: the config differs from the checkpoint's ({checkpoints.path(step)}) in {diff}")
            policy.load_state_dict(ck["policy"])
            init_policy.load_state_dict(ck["init_policy"])
            optimizer.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            prop1_gen.set_state(ck["prop1_generator"])
            torch.set_rng_state(ck["torch_rng"])
            start, env_steps, episodes = ck["update"], ck["env_steps"], ck["episodes"]
            history, prop1 = ck["history"], ck["prop1"]
        atomic_write_json(out / "config.json", cfg.to_dict())
        log = MetricsLog(out / "metrics.jsonl", step_key="update", tensorboard=out / "tb" if cfg.tensorboard else None)
        log.truncate(start)  # rows of updates after the checkpoint will be written again

    def checkpoint(update: int) -> None:
        if checkpoints is None:
            return
        checkpoints.save(update, {
            "update": update, "env_steps": env_steps, "episodes": episodes, "config": cfg.to_dict(),
            "policy": policy.state_dict(), "init_policy": init_policy.state_dict(),
            "optimizer": optimizer.state_dict(), "generator": gen.get_state(), "prop1_generator": prop1_gen.get_state(),
            "torch_rng": torch.get_rng_state(), "history": history, "prop1": prop1,
        })
        if prop1:
            _write_prop1_csv(out / "prop1.csv", prop1)

    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.updates, initial=min(start, cfg.updates), desc=f"{cfg.method} seed {cfg.seed}",
                   dynamic_ncols=True)
    try:
        for update in range(start + 1, cfg.updates + 1):
            t0 = time.perf_counter()
            # 1. rollouts (DAPO: refill dropped groups with extra rounds of fresh tasks)
            seeds = _draw_task_seeds(cfg, gen, cfg.tasks_per_update)
            batch = collect_rollouts(policy, pool, seeds, cfg.group_size, generator=gen,
                                     max_episode_steps=cfg.max_episode_steps)
            all_eps = [batch]
            train_batch = batch
            row: dict[str, float] = {"update": update}
            if outcome_cfg.dynamic_sampling:
                kept = [batch.select(dynamic_sampling_mask(batch.rewards, batch.group))]
                n_groups = lambda parts: sum(int(torch.unique(p.group).numel()) for p in parts)  # noqa: E731
                rounds = 0
                while n_groups(kept) < cfg.tasks_per_update and rounds < outcome_cfg.max_refill_rounds:
                    rounds += 1
                    extra = collect_rollouts(policy, pool, _draw_task_seeds(cfg, gen, cfg.tasks_per_update),
                                             cfg.group_size, generator=gen, max_episode_steps=cfg.max_episode_steps)
                    all_eps.append(extra)
                    kept.append(extra.select(dynamic_sampling_mask(extra.rewards, extra.group)))
                train_batch = Rollout.concat(kept)
                row["dapo/kept_groups"] = float(n_groups(kept))
                row["dapo/rounds"] = float(rounds + 1)
            # Learning curves use the first round only, so methods are compared on the same number of episodes.
            row["charts/success_rate"] = float(batch.success.double().mean())
            row["charts/episode_return"] = float(batch.rewards.mean())
            row["charts/episode_length"] = float(batch.length.double().mean())
            env_steps += sum(p.num_steps for p in all_eps)
            episodes += sum(p.num_episodes for p in all_eps)
            row["charts/env_steps"] = float(env_steps)
            row["charts/episodes"] = float(episodes)
            row["prop1/score_norm_sq_mean"] = float(batch.score_norm_sq.mean())
            row["prop1/expected_score_norm_sq_mean"] = float(batch.expected_score_norm_sq.mean())
            row["policy/entropy_mean"] = float(batch.step_entropy.mean())

            # 2-3. outcome advantage + EMPG (one pass through the registry), 4. loss
            if train_batch.num_steps > 0:
                adv, stats = compute_step_advantages(train_batch, cfg)
                row.update(stats)
                visited = policy.collate(train_batch.records)
                with torch.no_grad():
                    z_before = policy.logits(visited).detach().clone()
                row.update(_update_policy(policy, init_policy, optimizer, train_batch, adv, cfg, gen))
                row["policy/skipped_update"] = 0.0
                with torch.no_grad():
                    z_after = policy.logits(visited)
                    row["policy/kl_prev"] = float(_kl_rows(z_before, z_after).mean())
                    row["policy/kl_init"] = float(_kl_rows(z_after, init_policy.logits(visited)).mean())
            else:
                # DAPO dropped every group: no update. Log what EMPG would see on the first round anyway.
                row.update(compute_step_advantages(batch, cfg)[1])
                row.update({"policy/kl_prev": 0.0, "policy/grad_norm": 0.0, "loss/policy": 0.0,
                            "policy/skipped_update": 1.0})
                with torch.no_grad():
                    vis = policy.collate(batch.records)
                    row["policy/kl_init"] = float(_kl_rows(policy.logits(vis), init_policy.logits(vis)).mean())

            # Diagnostics: their own generator, so the run is the same with them on or off.
            if cfg.prop1_every and update % cfg.prop1_every == 0 and batch.num_steps:
                m = min(cfg.prop1_max_rows, batch.num_steps)
                pick = torch.randperm(batch.num_steps, generator=prop1_gen)[:m].sort().values
                for i in pick.tolist():
                    prop1.append({
                        "update": update, "step_entropy": float(batch.step_entropy[i]),
                        "renyi2": float(batch.renyi2[i]), "score_norm_sq": float(batch.score_norm_sq[i]),
                        "expected_score_norm_sq": float(batch.expected_score_norm_sq[i]),
                        "one_minus_exp_neg_h2": float(1.0 - math.exp(-float(batch.renyi2[i]))),
                    })
            dt = time.perf_counter() - t0
            row["charts/SPS"] = sum(p.num_steps for p in all_eps) / max(dt, 1e-9)
            history.append(row)
            if log is not None:
                log.write(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(success=f"{row['charts/success_rate']:.2f}", H=f"{row['policy/entropy_mean']:.2f}")
            stop = bool(callback(update, row)) if callback is not None else False
            if cfg.checkpoint_every and update % cfg.checkpoint_every == 0 or update == cfg.updates or stop:
                checkpoint(update)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        pool.close()
    if out is not None and cfg.plot and history:
        plot_history(history, out / "curves.png", title=f"{cfg.env} — {cfg.method} (seed {cfg.seed})")
    return TrainResult(policy=policy, history=history, prop1=prop1, config=cfg, wall_time=time.perf_counter() - t_start)


def _write_prop1_csv(path: Path, prop1: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(prop1[0]))
    w.writeheader()
    w.writerows(prop1)
    atomic_write_bytes(path, buf.getvalue().encode())


def plot_history(history: Sequence[dict[str, float]], path: str | Path, title: str = "") -> None:
    """A 2×3 figure of the main curves (success, length, step entropy, g spread, KL between updates, KL to init)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [
        ("charts/success_rate", "success rate"),
        ("charts/episode_length", "episode length"),
        ("empg/step_entropy_mean", "mean step entropy (nats)"),
        ("empg/scale_std", "std of g (Eq. 10)"),
        ("policy/kl_prev", "KL(π_old ‖ π_new)"),
        ("policy/kl_init", "KL(π ‖ π_init)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    x = [row["update"] for row in history]
    for ax, (key, label) in zip(axes.flat, panels):
        ax.plot(x, [row.get(key, float("nan")) for row in history])
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# =========================================================================== command line


@dataclass
class _Command:
    """Train a softmax policy on a toy environment with GRPO/DAPO, with or without EMPG (Wang et al., arXiv:2509.09265).

    With --resume, the settings saved in OUT/config.json are the defaults, so `--out DIR --resume
    --updates N` continues a run; a folder that already holds a run needs --resume.
    """

    config: ToyTrainConfig = field(default_factory=ToyTrainConfig)
    """The run's settings."""
    method: Optional[Literal[tuple(METHODS)]] = None  # type: ignore[valid-type]
    """Shortcut for --outcome/--empg: grpo, dapo, empg (= grpo + full), empg_scaling, empg_bonus, dapo_empg, dapo_empg_scaling, dapo_empg_bonus."""


_BOOL_FLAGS = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(ToyTrainConfig) if f.type in (bool, "bool")}
_TRUE, _FALSE = ("1", "true", "yes", "y", "on"), ("0", "false", "no", "n", "off")


def _bool_flags_as_tyro(argv: Sequence[str]) -> list[str]:
    """``--progress false`` / ``--progress=false`` -> ``--no-progress`` (tyro's form); bare ``--resume`` stays."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in _BOOL_FLAGS:
            if not eq and i + 1 < len(argv) and argv[i + 1].strip().lower() in _TRUE + _FALSE:
                value, i = argv[i + 1], i + 1
            elif not eq:
                value = "true"
            if value.strip().lower() not in _TRUE + _FALSE:
                raise ValueError(f"{flag} expects a boolean (true/false), got {value!r}")
            arg = flag if value.strip().lower() in _TRUE else "--no-" + flag[2:]
        out.append(arg)
        i += 1
    return out


def config_from_args(argv: Sequence[str] | None = None) -> ToyTrainConfig:
    """Parse ``argv`` into a :class:`ToyTrainConfig` (tyro; the help comes from the field docstrings).

    With ``--resume`` and an ``OUT/config.json``, the saved settings are the defaults (explicit flags
    still win), so ``--out DIR --resume --updates N`` is enough to continue a run.

    Raises:
        ValueError: a malformed boolean flag. Invalid values exit through tyro with status 2, after
            printing the field's error.
    """
    import tyro

    args = _bool_flags_as_tyro(list(sys.argv[1:] if argv is None else argv))
    markers = (tyro.conf.OmitArgPrefixes,)
    prog = "python -m toy_envs.train"
    cmd = tyro.cli(_Command, args=args, config=markers, prog=prog)
    out = Path(cmd.config.out) if cmd.config.out else None
    if cmd.config.resume and out is not None and (out / "config.json").exists():
        saved = json.loads((out / "config.json").read_text())
        names = {f.name for f in dataclasses.fields(ToyTrainConfig)}
        default = _Command(config=ToyTrainConfig(**{k: v for k, v in saved.items() if k in names}))
        cmd = tyro.cli(_Command, args=args, config=markers, prog=prog, default=default)
    if cmd.method is None:
        return cmd.config
    outcome, variant = METHODS[cmd.method]
    return dataclasses.replace(cmd.config, outcome=outcome, empg=variant)


def make_gym_env_factory(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Callable[[], Any]:
    """``make_env()`` for :func:`train` from a gymnasium id (imports ``pkg`` of ``pkg/Name-v0`` to register it)."""
    import gymnasium as gym

    if "/" in env_id:
        module = env_id.split("/")[0]
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"env: cannot import {module!r} to register {env_id!r}: {err}") from None
    kwargs = dict(env_kwargs or {})
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"env: {env_id!r} is not a registered gymnasium id ({err})") from None

    def make_env():
        try:
            return gym.make(env_id, **kwargs)
        except TypeError as err:  # a keyword the env does not take: name the option, not a traceback
            raise ValueError(f"--env-kwargs {json.dumps(kwargs)}: {env_id} does not accept them ({err})") from None

    return make_env


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m toy_envs.train`` and the ``empg-toy`` console script; returns the exit status."""
    try:
        cfg = config_from_args(argv)
        make_env = make_gym_env_factory(cfg.env, json.loads(cfg.env_kwargs))
    except SystemExit as done:  # tyro: --help (0) or a value it rejected (2, message already printed)
        return int(done.code or 0)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = train(cfg, make_env)
    except (ValueError, OSError) as err:  # e.g. --resume with a changed config, a read-only --out
        print(f"error: {err}", file=sys.stderr)
        return 2
    last = result.history[-1] if result.history else {}
    tail = result.history[-10:]
    print(json.dumps({
        "env": cfg.env, "method": cfg.method, "seed": cfg.seed, "updates": len(result.history),
        "final_success_rate": (sum(r["charts/success_rate"] for r in tail) / len(tail)) if tail else None,
        "last": {k: last[k] for k in ("charts/success_rate", "charts/episode_length", "policy/kl_prev") if k in last},
        "wall_time_s": round(result.wall_time, 2), "out": cfg.out,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
