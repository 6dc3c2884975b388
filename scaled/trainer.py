"""The scaled trainer: GRPO/DAPO outcome advantages + EMPG on an LLM agent, one iteration at a time.

One iteration (``Trainer.train_step``), reading top to bottom:

1. Roll out ``n_tasks × G`` episodes (:func:`scaled.rollout.collect_rollouts`); group j's G
   environments share a reset seed, i.e. a task. DAPO (``algorithm.outcome.estimator=dapo``, the one
   definition in :class:`empg.OutcomeConfig`): keep only the groups whose rewards are not all equal
   (dynamic sampling) and refill with extra rounds of fresh tasks until ``n_tasks`` groups are kept
   or ``max_refill_rounds`` extra rounds were played.
2. Lay the kept episodes out as step rows (verl-agent) or concatenated rows (``agent.layout``;
   :mod:`scaled.batch`).
3. Recompute, teacher-forced and without gradient, the old log-probs and token entropies (as verl
   does), and the reference log-probs for the KL term. ``rollout/logprob_recompute_max_abs_diff``
   (the largest |sampler log-prob − recomputed log-prob| over the sampled tokens) checks that the
   sampler runs the weights being trained.
4. Advantages from the registry in one pass: ``empg.compute_advantages("empg", …, variant=off|scaling|
   bonus|full, metrics=…)``; with ``off`` this is the plain outcome advantage (GRPO), and the
   ``empg/*`` statistics come from the same pass. The step entropies EMPG modulates with are the
   mean token entropies of each step's generated tokens (spec §2).
5. Update: :func:`empg.clipped_policy_loss` (ε_high = ``LossConfig.resolved_clip_high``: 0.28 under
   DAPO) + :func:`empg.kl_penalty` (k3), gradient accumulation over micro-batches, clipping, AdamW;
   then the sampler gets the new weights (``policy.sync_sampler_weights()`` when the policy has one).
6. Validation every ``trainer.val_every`` iterations (and before training with
   ``trainer.val_before_train``): ``eval.val_tasks`` distinct tasks of ``env.val_split``, each played
   once at ``eval.temperature`` (0.4), logged as ``val/*`` in the iteration's row. It uses its own
   generator and environments, so it never changes the training run.
7. Metrics (:class:`empg.io.MetricsLog`: JSONL, optional TensorBoard; names from :mod:`empg.metrics`)
   and a checkpoint (:class:`empg.io.CheckpointDir`: atomic, the last ``keep_checkpoints`` kept)
   holding the trainable weights (the adapter only, for LoRA), every RNG state, the config and, per
   ``trainer.save_optimizer``, the optimiser state, so that resuming reproduces the next iteration
   exactly. Resuming with another config is an error naming the differing keys
   (``trainer.allow_config_change`` overrides it).

The environments are a pool of ``n_tasks × G`` instances built once and reused by every iteration
and refill round (WebShop instances share one catalogue and index); a turn steps them concurrently
(``rollout.env_workers``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import shutil
import time
import warnings
from typing import Any, Sequence

import numpy as np
import torch

import empg
from empg.io import CheckpointDir, CheckpointError, MetricsLog, check_writable, load_checkpoint_file
from scaled.agent import Episode
from scaled.batch import TrainRows, concatenated_rows, step_rows, trim_padding
from scaled.config import Config, config_diff, config_to_dict, make_split_env, val_task_indices
from scaled.rollout import collect_rollouts, play_tasks, rollout_metrics

__all__ = ["Trainer", "build_policy", "resolve_device", "informative_episodes", "val_metrics", "checkpoint_bytes",
           "checkpoint_footprint", "load_weights", "check_model_path"]

METRICS_NAME = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
OPTIMIZER_DIR = "optimizer"
"""Sub-folder of ``checkpoints/`` with the optimizer states of ``trainer.save_optimizer=latest``."""


def resolve_device(name: str) -> torch.device:
    """The torch device of ``trainer.device``: ``auto`` (cuda when available, else cpu), ``cpu`` or ``cuda[:i]``.

    Raises:
        ValueError: another value, or cuda without CUDA (named ``trainer.device``).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"trainer.device must be auto, cpu or cuda[:i], got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name} but CUDA is not available")
    return torch.device(name)


def check_model_path(path: str) -> None:
    """A ``model.path`` that names a local folder (absolute, ``./``, ``../`` or ``~``) must hold a model.

    Raises:
        ValueError: no such folder, or no ``config.json`` in it (named ``model.path``).
    """
    if not path.startswith(("/", "./", "../", "~")) and not pathlib.Path(path).exists():
        return  # a hub name (e.g. Qwen/Qwen2.5-1.5B-Instruct): transformers resolves it
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"model.path={path!r}: no such folder (a local model folder, or a hub name such as "
                         f"Qwen/Qwen2.5-1.5B-Instruct; model.tiny=true builds a tiny model instead)")
    if not (folder / "config.json").is_file():
        raise ValueError(f"model.path={path!r}: the folder holds no config.json (not a transformers model folder)")


def build_policy(cfg: Config, device: torch.device):
    """Load (or build, for ``model.tiny``) the model and wrap it in a :class:`scaled.policy.Policy`."""
    from scaled.policy import load_policy

    path = cfg.model.path
    if cfg.model.tiny:
        from scaled.tiny import build_tiny_model

        path = str(build_tiny_model(path or None, **cfg.model.tiny_kwargs))
    else:
        check_model_path(path)
    reference = cfg.model.reference if cfg.algorithm.loss.kl_coef > 0 else "none"
    options = dict(cfg.model.sampler_options)
    if cfg.model.backend == "vllm":
        # The trainer recomputes every token's entropy teacher-forced (old log-probs and entropies in one
        # pass); the sampler need not run that pass a second time. Evaluation needs no entropies.
        options.setdefault("entropies", "none")
    extra = {} if cfg.model.logprob_chunk_bytes is None else {"logprob_chunk_bytes": int(cfg.model.logprob_chunk_bytes)}
    return load_policy(path, reference=reference, lora=cfg.model.lora, dtype=cfg.model.dtype, device=device,
                       temperature=cfg.model.temperature, bf16=cfg.model.bf16,
                       gradient_checkpointing=cfg.model.gradient_checkpointing, backend=cfg.model.backend,
                       sampler_options=options, **extra)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> list[str]:
    """``model.load_state_dict(weights, strict=False)`` with errors that name the checkpoint ``where``.

    Returns:
        The model's keys the checkpoint does not hold (frozen weights are not saved).

    Raises:
        ValueError: a tensor has another shape, or the checkpoint holds keys the model does not have.
    """
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # size mismatches
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        raise ValueError(f"checkpoint {where!r} does not match the model ({len(lines)} problem(s)): "
                         + "; ".join(lines[:3])) from None
    if result.unexpected_keys:
        raise ValueError(f"checkpoint {where!r} does not match the model: unexpected {result.unexpected_keys[:5]}")
    return list(result.missing_keys)


def _remove_stale_temp_files(*folders: pathlib.Path) -> None:
    """Temporary files of atomic writes that a crash interrupted (``.<name>.<random>.tmp``): never read, so drop them."""
    for folder in folders:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def checkpoint_bytes(params: Sequence[torch.nn.Parameter], optimizer: bool) -> int:
    """Bytes of a checkpoint of ``params`` (the trainable ones): the weights, plus AdamW's two moments of the
    same size when ``optimizer`` (a few KB of RNG state and config on top)."""
    weights = sum(p.numel() * p.element_size() for p in params)
    return weights * (3 if optimizer else 1)


def checkpoint_footprint(weight_bytes: int, keep: int = 2, save_optimizer: str = "latest") -> dict[str, int]:
    """Disk use of a run's checkpoints, from the bytes ``W`` of its trainable weights (AdamW moments: ``2W``).

    Returns:
        ``{"per_save": bytes written per checkpoint, "steady": bytes on disk between saves, "peak": bytes on
        disk during a save}``: ``latest`` keeps ``keep`` weight files and one optimizer file (steady
        ``(keep + 2) W``; a save briefly holds one more of each), ``all`` keeps ``keep`` files of ``3W``,
        ``none`` ``keep`` files of ``W``.
    """
    w = int(weight_bytes)
    if save_optimizer == "latest":
        return {"per_save": 3 * w, "steady": (keep + 2) * w, "peak": (keep + 1) * w + 4 * w}
    if save_optimizer == "all":
        return {"per_save": 3 * w, "steady": keep * 3 * w, "peak": (keep + 1) * 3 * w}
    if save_optimizer == "none":
        return {"per_save": w, "steady": keep * w, "peak": (keep + 1) * w}
    raise ValueError(f"save_optimizer must be latest, all or none, got {save_optimizer!r}")


def val_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """``val/*``: success rate, score, env return, episode length, invalid answers and success per task type."""
    out: dict[str, float] = {}
    for key, value in rollout_metrics(episodes, prefix="rollout").items():
        namespace, name = key.split("/", 1)
        out["val/" + (f"success/{name}" if namespace == "success" else name)] = value
    out["val/num_tasks"] = float(len({e.task_index for e in episodes}))
    return out


def informative_episodes(episodes: Sequence[Episode]) -> list[Episode]:
    """DAPO's dynamic sampling: the episodes of the groups whose outcome rewards are not all equal."""
    if not episodes:
        return []
    rewards = torch.tensor([e.reward for e in episodes], dtype=torch.float64)
    group = torch.tensor([e.group for e in episodes], dtype=torch.long)
    keep = empg.dynamic_sampling_mask(rewards, group)
    return [e for e, k in zip(episodes, keep.tolist()) if k]


def _step_entropy(rows: TrainRows, entropy: torch.Tensor) -> torch.Tensor:
    """Step entropies H (spec §2), the mean token entropy of each step: ``[B]`` (float64) for step rows,
    ``[S]`` (``empg.step_entropies``) for concatenated rows."""
    mask = rows.loss_mask
    if rows.layout == "steps":
        return (entropy.double() * mask).sum(-1) / mask.sum(-1).clamp_min(1)  # float64, as empg.step_entropies
    return empg.step_entropies(entropy, torch.where(mask, rows.step_ids, -1))[0]


def _loss_weight(mask: torch.Tensor, agg: str) -> float:
    """What a batch counts for in the loss aggregation: its tokens (``token-mean``) or its non-empty rows."""
    return float(mask.sum()) if agg == "token-mean" else float((mask.sum(-1) > 0).sum())


class Trainer:
    """GRPO/DAPO ± EMPG on a transformers policy in ``scaled.envs`` environments.

    Args:
        cfg: a :class:`scaled.config.Config`.
        envs: optional pre-built environments (``n_tasks · group_size`` of them); default: a pool built
            once with ``scaled.envs.make_env(cfg.env.name, **scaled.config.env_kwargs(cfg, "train"))``
            (the training split). Validation builds its own pool on the validation split.

    Raises:
        ValueError: a setting the trainer cannot run with, a run folder it must not resume or overwrite
            (another config, metrics without checkpoints), every checkpoint damaged (``CheckpointError``).
        OSError: ``trainer.out_dir`` is not writable or too small for one checkpoint.
    """

    def __init__(self, cfg: Config, envs: list | None = None) -> None:
        self.cfg = cfg
        # The registry's GRPO inside the "empg" estimator uses eps = 1e-6 (OutcomeConfig's default).
        if cfg.algorithm.outcome.eps != empg.OutcomeConfig().eps:
            raise ValueError(f"algorithm.outcome.eps: only the default {empg.OutcomeConfig().eps} is supported by "
                             f"empg.compute_advantages('empg', ...), got {cfg.algorithm.outcome.eps}")
        if cfg.trainer.num_threads:
            torch.set_num_threads(cfg.trainer.num_threads)
        self._seed_everything(cfg.trainer.seed)
        self.device = resolve_device(cfg.trainer.device)
        self.out_dir = check_writable(pathlib.Path(cfg.trainer.out_dir), "trainer.out_dir")
        self.iteration = 0
        self.checkpoints = CheckpointDir(self.out_dir / CHECKPOINT_DIR, keep=cfg.trainer.keep_checkpoints)
        self.optimizer_checkpoints = CheckpointDir(self.out_dir / CHECKPOINT_DIR / OPTIMIZER_DIR, keep=2)
        _remove_stale_temp_files(self.out_dir, self.checkpoints.folder, self.optimizer_checkpoints.folder)
        self.metrics_log = MetricsLog(self.out_dir / METRICS_NAME, step_key="iteration",
                                      tensorboard=self.out_dir / "tb" if cfg.trainer.tensorboard else None)
        self._wandb = None
        self.envs: list = []
        self.val_envs: list | None = None
        self._val_tasks: list[int] | None = None
        self.policy = None
        try:  # however start-up fails, what was opened (logs, environments, a vLLM engine) is closed
            self._start(envs)
        except BaseException:
            self.close()
            raise

    def _start(self, envs: list | None) -> None:
        cfg = self.cfg
        # Read the checkpoint first: a run that cannot be resumed (damaged files, another config) stops
        # before the model is loaded.
        latest = self.checkpoints.load_latest() if cfg.trainer.resume else None
        if latest is not None:
            self._check_resume_config(*latest)
        else:
            self._check_fresh_start()
        # The environments before the model: a bad env setting or data path stops before a big model loads.
        n_envs = cfg.env.n_tasks * cfg.env.group_size
        if envs is None:
            envs = self.make_envs("train", n_envs)
        if len(envs) != n_envs:
            raise ValueError(f"envs: expected n_tasks * group_size = {n_envs} environments, got {len(envs)}")
        self.envs = envs
        self.policy = build_policy(cfg, self.device)
        self._check_disk_space()
        self.optimizer = torch.optim.AdamW(self.policy.trainable_parameters(), lr=cfg.optim.lr,
                                           betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.trainer.seed)
        if latest is not None:
            self.load_state(latest[1])
        else:
            # A fresh start (or resume=false) owns out_dir: drop the checkpoints and metrics of an
            # earlier run, which would otherwise be resumed from or appended to (iterations 1, 2, 1, 2, …).
            for folder in (self.checkpoints, self.optimizer_checkpoints):
                for step in folder.steps():
                    folder.path(step).unlink()
            self.metrics_log.truncate(-1)

    def make_envs(self, split: str, n: int) -> list:
        """A pool of ``n`` environments on the ``train``, ``val`` or ``test`` split (built once, reused)."""
        envs: list = []
        try:
            for _ in range(n):
                envs.append(make_split_env(self.cfg, split))
        except BaseException:
            for env in envs:  # a failure part-way closes what was built
                env.close()
            raise
        return envs

    def close(self) -> None:
        """Close the loggers, every environment of the pools and the policy's sampler (the vLLM engine)."""
        self.close_loggers()
        try:
            for env in (self.envs or []) + (self.val_envs or []):
                env.close()
        finally:
            close = getattr(getattr(self, "policy", None), "close", None)
            if callable(close):
                close()

    # ------------------------------------------------------------------ run folder checks
    def _check_resume_config(self, step: int, state: dict[str, Any]) -> None:
        """A checkpoint made with another config is not resumed (unless ``trainer.allow_config_change``)."""
        saved = state.get("config")
        path = self.checkpoints.path(step)
        if not isinstance(saved, dict):
            warnings.warn(f"checkpoint {str(path)!r} holds no config: resuming without checking it", RuntimeWarning)
            return
        diff = config_diff(saved, config_to_dict(self.cfg))
        if not diff:
            return
        listing = ", ".join(f"{key} ({old!r} -> {new!r})" for key, old, new in diff)
        if not self.cfg.trainer.allow_config_change:
            raise ValueError(
                f"trainer.out_dir {str(self.out_dir)!r} holds a run (checkpoint {str(path)!r}) made with a different "
                f"config: {listing}. Resume it with the same config, choose another trainer.out_dir, start over "
                f"with trainer.resume=false, or continue with the new values with --allow-config-change "
                f"(trainer.allow_config_change=true).")
        warnings.warn(f"resuming {str(path)!r} with a changed config (allowed): {listing}", RuntimeWarning)

    def _check_fresh_start(self) -> None:
        """No checkpoint to resume: refuse to wipe a folder whose metrics show a run past its first checkpoint."""
        if not self.cfg.trainer.resume:
            return
        rows = self.metrics_log.read()
        done = max((int(r.get("iteration", 0)) for r in rows), default=0)
        if done > self.cfg.trainer.save_every:
            raise ValueError(
                f"trainer.out_dir {str(self.out_dir)!r} holds metrics up to iteration {done} but no checkpoint in "
                f"{str(self.checkpoints.folder)!r}: not starting over on top of that run. Restore its checkpoints, "
                f"choose another trainer.out_dir, or start over with trainer.resume=false.")

    def _check_disk_space(self) -> None:
        """Fail at start, not after the first iteration, when the output folder cannot hold one checkpoint."""
        mode = self.cfg.trainer.save_optimizer
        need = checkpoint_footprint(checkpoint_bytes(self.policy.trainable_parameters(), False),
                                    self.cfg.trainer.keep_checkpoints, mode)["per_save"]
        free = shutil.disk_usage(self.out_dir).free
        if free < need:
            raise OSError(28, f"trainer.out_dir {str(self.out_dir)!r} has {free / 2**30:.2f} GiB free, but one checkpoint "
                              f"needs {need / 2**30:.2f} GiB (trainable weights{' + AdamW moments' if mode != 'none' else ''},"
                              f" trainer.save_optimizer={mode}); free space or choose another trainer.out_dir")

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def task_seeds(self, iteration: int, round_: int = 0) -> tuple[list[int], list[int]]:
        """Reset seeds and group ids of one rollout round: G copies of each of n_tasks seeds.

        Round 0 is the iteration's batch; rounds 1, 2, … are DAPO refills with fresh tasks (seeds no
        other round of an iteration below 10^7 uses) and group ids ``round · n_tasks + j``.
        """
        n, g = self.cfg.env.n_tasks, self.cfg.env.group_size
        base = self.cfg.trainer.seed * 1_000_003 + (round_ * 10_000_019 + iteration) * n
        seeds = [base + j for j in range(n) for _ in range(g)]
        groups = [round_ * n + j for j in range(n) for _ in range(g)]
        return seeds, groups

    def rollout_round(self, iteration: int, round_: int) -> list[Episode]:
        """Play one round of ``n_tasks × G`` episodes with the current policy."""
        seeds, groups = self.task_seeds(iteration, round_)
        return collect_rollouts(self.policy, self.envs, seeds=seeds, groups=groups, agent=self.cfg.agent,
                                config=self.cfg.rollout, generator=self.generator, progress=self.cfg.trainer.progress)

    def collect(self) -> tuple[list[list[Episode]], list[Episode], dict[str, float]]:
        """This iteration's rounds and training episodes; DAPO: dynamic sampling with refill.

        Returns:
            ``(rounds, episodes, metrics)``: every round played (round 0 first), the episodes to train
            on, and the ``dapo/*`` statistics (empty unless DAPO).
        """
        outcome = self.cfg.algorithm.outcome
        rounds = [self.rollout_round(self.iteration, 0)]
        if not outcome.dynamic_sampling:
            return rounds, rounds[0], {}
        kept = informative_episodes(rounds[0])
        first_fraction = len(kept) / len(rounds[0])
        n_groups = lambda eps: len({e.group for e in eps})  # noqa: E731
        while n_groups(kept) < self.cfg.env.n_tasks and len(rounds) <= outcome.max_refill_rounds:
            rounds.append(self.rollout_round(self.iteration, len(rounds)))
            kept += informative_episodes(rounds[-1])
        return rounds, kept, {"dapo/kept_groups": float(n_groups(kept)), "dapo/rounds": float(len(rounds)),
                              "dapo/kept_trajectory_fraction": first_fraction}

    # ------------------------------------------------------------------ batches
    def _layout(self, episodes: Sequence[Episode]) -> TrainRows:
        pol = self.policy
        if self.cfg.agent.layout == "step":
            return step_rows(episodes, pol.pad_id)
        return concatenated_rows(episodes, pol.pad_id, pol.eos_id)

    def _micro_batches(self, rows_idx: torch.Tensor):
        size = self.cfg.optim.micro_batch_size
        for lo in range(0, rows_idx.numel(), size):
            yield rows_idx[lo : lo + size]

    @torch.no_grad()
    def _recompute(self, rows: TrainRows, reference: bool = True) -> dict[str, torch.Tensor]:
        """Old log-probs, token entropies and reference log-probs, teacher-forced, ``[B, L - start]``.

        Runs the model in eval mode (no dropout), like :meth:`scaled.policy.Policy.generate`: the
        old log-probs and the entropies EMPG modulates with must be those of the policy that
        sampled, not of one random dropout mask.
        """
        b, k = rows.loss_mask.shape
        old = torch.zeros(b, k)
        ent = torch.zeros(b, k)
        ref = torch.zeros(b, k) if reference and self.policy.reference_mode != "none" else None
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            for idx in self._micro_batches(torch.arange(b)):
                mb = trim_padding(rows.select(idx))
                ids, att = mb.input_ids.to(self.device), mb.attention_mask.to(self.device)
                kk = mb.loss_mask.shape[1]
                lp, en = self.policy.token_logprobs(ids, att, start=mb.start, with_entropy=True)
                old[idx, :kk], ent[idx, :kk] = lp.cpu(), en.cpu()
                if ref is not None:
                    rl, _ = self.policy.token_logprobs(ids, att, start=mb.start, reference=True)
                    ref[idx, :kk] = rl.cpu()
        finally:
            model.train(was_training)
        return {"old_logp": old, "entropy": ent, "ref_logp": ref}

    @staticmethod
    def _recompute_metrics(rows: TrainRows, rec: dict[str, torch.Tensor]) -> dict[str, float]:
        """How far the sampler's recorded values are from the teacher-forced recomputation (max |Δ|)."""
        mask = rows.loss_mask
        out = {"rollout/logprob_recompute_max_abs_diff": float((rec["old_logp"] - rows.rollout_logp)[mask].abs().max())}
        # Samplers that report no entropies (vLLM with entropies="none") leave NaN in rollout_entropy: nothing to compare.
        reported = mask & ~torch.isnan(rows.rollout_entropy)
        if bool(reported.any()):
            out["entropy/rollout_recompute_max_abs_diff"] = float((rec["entropy"] - rows.rollout_entropy)[reported].abs().max())
        return out

    def compute_advantages(self, rows: TrainRows, entropy: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Token advantages ``[B, L - start]`` from the registry (outcome ± EMPG, one pass) and ``empg/*`` statistics.

        With ``variant=off`` the statistics are the full-EMPG terms of this batch (what EMPG would do),
        computed in the same registry call, for logging only.
        """
        alg = self.cfg.algorithm
        if rows.layout == "steps":
            inputs = empg.AdvantageInputs(rows.rewards, rows.group, step_entropy=_step_entropy(rows, entropy),
                                          trajectory=rows.trajectory, step=rows.step)
        else:
            inputs = empg.AdvantageInputs(rows.rewards, rows.group, token_entropy=entropy, step_ids=rows.step_ids)
        stats: dict[str, float] = {}
        adv = empg.compute_advantages(
            "empg", inputs, variant=alg.empg.variant, outcome=alg.outcome.estimator, k=alg.empg.k, k_f=alg.empg.k_f,
            zeta=alg.empg.zeta, eps=alg.empg.eps, std_normalize=alg.outcome.std_normalize, metrics=stats)
        token_adv = adv.unsqueeze(-1).expand_as(rows.loss_mask).clone() if rows.layout == "steps" else adv
        return token_adv.float(), stats

    # ------------------------------------------------------------------ update
    def _update(self, rows: TrainRows, old: torch.Tensor, ref: torch.Tensor | None, adv: torch.Tensor) -> dict[str, float]:
        alg, opt = self.cfg.algorithm, self.cfg.optim
        loss_cfg = alg.loss
        clip_high = loss_cfg.resolved_clip_high(alg.outcome)
        b = rows.num_rows
        mini = opt.mini_batch_size or b
        sums: dict[str, float] = {}
        weight_total = 0.0
        grad_norms = []
        self.policy.model.train()
        params = self.policy.trainable_parameters()
        for _ in range(opt.epochs):
            for lo in range(0, b, mini):
                mini_idx = torch.arange(lo, min(b, lo + mini))
                denom = _loss_weight(rows.loss_mask[mini_idx], loss_cfg.agg)
                if denom == 0:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                for idx in self._micro_batches(mini_idx):
                    mb = trim_padding(rows.select(idx))
                    kk = mb.loss_mask.shape[1]
                    mask = mb.loss_mask.to(self.device)
                    w = _loss_weight(mask, loss_cfg.agg)
                    if w == 0:
                        continue
                    w /= denom
                    logp, _ = self.policy.token_logprobs(mb.input_ids.to(self.device), mb.attention_mask.to(self.device),
                                                         start=mb.start)
                    a = adv[idx, :kk].to(self.device)
                    if loss_cfg.kind == "clipped":
                        loss, metrics = empg.clipped_policy_loss(
                            logp, old[idx, :kk].to(self.device), a, mask, clip_low=loss_cfg.clip_low,
                            clip_high=clip_high, dual_clip=loss_cfg.dual_clip, agg=loss_cfg.agg)
                    else:
                        loss, metrics = empg.reinforce_loss(logp, a, mask, agg=loss_cfg.agg)
                    if ref is not None and loss_cfg.kl_coef > 0:
                        kl_loss, kl_metrics = empg.kl_penalty(logp, ref[idx, :kk].to(self.device), mask,
                                                              coef=loss_cfg.kl_coef, agg=loss_cfg.agg)
                        loss = loss + kl_loss
                        metrics.update(kl_metrics)
                    (loss * w).backward()
                    metrics["loss/total"] = float(loss.detach())
                    for key, v in metrics.items():
                        sums[key] = sums.get(key, 0.0) + w * v
                    weight_total += w
                grad_norm = torch.nn.utils.clip_grad_norm_(params, opt.max_grad_norm)
                if not torch.isfinite(grad_norm):
                    raise FloatingPointError(f"non-finite gradient norm {float(grad_norm)} at iteration {self.iteration}")
                grad_norms.append(float(grad_norm))
                self.optimizer.step()
        out = {k: v / max(weight_total, 1e-12) for k, v in sums.items()}
        if grad_norms:
            out["policy/grad_norm"] = float(np.mean(grad_norms))
        out["policy/optimizer_steps"] = float(len(grad_norms))
        return out

    def _sync_sampler(self) -> float | None:
        """Hand the updated weights to the sampler before the next rollout (vLLM backend; no-op for HF).

        Returns the seconds the sync took (``perf/weight_sync_seconds``), None for a sampler without one.
        """
        sync = getattr(self.policy, "sync_sampler_weights", None)
        if not callable(sync):
            return None
        stats = sync() or {}
        return float(stats["seconds"]) if "seconds" in stats else None

    def _sleep_sampler(self) -> None:
        """Free the sampler's accelerator memory for the update (vLLM sleep mode, ``model.sampler_options.sleep_level``;
        a no-op otherwise). The sync after the update wakes it."""
        sleep = getattr(self.policy, "sleep_sampler", None)
        if callable(sleep):
            sleep()

    def train_step(self) -> dict[str, Any]:
        """One iteration: rollout, advantages, update. Returns the metrics row (not yet written)."""
        t0 = time.time()
        rounds, episodes, dapo_metrics = self.collect()
        t_rollout = time.time() - t0
        metrics: dict[str, Any] = {"iteration": self.iteration + 1}
        # Learning curves use the first round only, so methods are compared on the same number of episodes.
        metrics.update(rollout_metrics(rounds[0]))
        metrics.update(dapo_metrics)
        if not episodes:
            # DAPO kept no group: no update. The sampler/recompute check still runs, on the first round.
            rows = self._layout(rounds[0])
            metrics.update(self._recompute_metrics(rows, self._recompute(rows, reference=False)))
            metrics["policy/skipped_update"] = 1.0
        else:
            rows = self._layout(episodes)
            self._sleep_sampler()  # the sampler is not needed again before the sync below
            rec = self._recompute(rows)
            metrics.update(self._recompute_metrics(rows, rec))
            mask = rows.loss_mask
            ent = rec["entropy"]
            step_h = _step_entropy(rows, ent)
            metrics["entropy/token_mean"] = float(ent[mask].mean())
            metrics["entropy/step_mean"] = float(step_h.mean())
            metrics["entropy/step_std"] = float(step_h.std(unbiased=False))
            metrics["entropy/step_min"] = float(step_h.min())
            metrics["entropy/step_max"] = float(step_h.max())
            adv, stats = self.compute_advantages(rows, ent)
            metrics.update(stats)
            metrics["policy/advantage_mean"] = float(adv[mask].mean())
            metrics.update(self._update(rows, rec["old_logp"], rec["ref_logp"], adv))
            metrics["policy/skipped_update"] = 0.0
            sync_seconds = self._sync_sampler()
            if sync_seconds is not None:
                metrics["perf/weight_sync_seconds"] = sync_seconds
        self.iteration += 1
        dt = time.time() - t0
        n_tokens = sum(len(s.response_ids) for eps in rounds for e in eps for s in e.steps)
        metrics["perf/iteration_seconds"] = dt
        metrics["perf/rollout_seconds"] = t_rollout
        metrics["perf/generated_tokens_per_second"] = n_tokens / max(t_rollout, 1e-9)
        return metrics

    # ------------------------------------------------------------------ validation
    def val_task_indices(self) -> list[int]:
        """The validation tasks: ``eval.val_tasks`` distinct tasks of the validation split, the same every time
        (a subset drawn with ``eval.seed``; all of them when the split is smaller)."""
        if self._val_tasks is None:
            n = self._val_pool()[0].num_tasks
            self._val_tasks = val_task_indices(n, self.cfg.eval.val_tasks, self.cfg.eval.seed)
        return self._val_tasks

    def _val_pool(self) -> list:
        if self.val_envs is None:
            self.val_envs = self.make_envs("val", 1)
            n = min(self.cfg.eval.batch_size, self.val_envs[0].num_tasks, self.cfg.eval.val_tasks or 10**9)
            self.val_envs += self.make_envs("val", n - 1)
        return self.val_envs

    def validate(self) -> dict[str, float]:
        """Play the validation tasks once each at ``eval.temperature``; returns the ``val/*`` metrics.

        Uses a generator seeded with ``eval.seed + iteration`` and restores every global RNG afterwards, so a
        run with validation trains exactly like one without.
        """
        t0 = time.time()
        ev = self.cfg.eval
        envs, tasks = self._val_pool(), self.val_task_indices()
        generator = torch.Generator(device=self.device).manual_seed(ev.seed + self.iteration)
        rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
               torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
        temperature = self.policy.temperature
        self.policy.temperature = float(ev.temperature) if not ev.greedy else temperature
        try:
            episodes = play_tasks(self.policy, envs, tasks, agent=self.cfg.agent,
                                  config=dataclasses.replace(self.cfg.rollout, greedy=ev.greedy), generator=generator)
        finally:
            self.policy.temperature = temperature
            random.setstate(rng[0])
            np.random.set_state(rng[1])
            torch.set_rng_state(rng[2])
            if rng[3] is not None:
                torch.cuda.set_rng_state_all(rng[3])
        out = val_metrics(episodes)
        out["perf/val_seconds"] = time.time() - t0
        return out

    def _validate_now(self) -> bool:
        """Whether the iteration just finished is a validation one (every ``val_every``, and the last one)."""
        every = self.cfg.trainer.val_every
        return every > 0 and (self.iteration % every == 0 or self.iteration == self.cfg.trainer.iterations)

    # ------------------------------------------------------------------ loop
    def train(self) -> list[dict[str, Any]]:
        """Run the remaining iterations; validate and checkpoint on schedule; return the new metrics rows."""
        cfg = self.cfg.trainer
        history = []
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.iterations, initial=self.iteration, desc=f"train {self.cfg.name}")
        try:
            if self.iteration == 0 and cfg.val_before_train and cfg.iterations > 0:
                row = {"iteration": 0, **self.validate()}
                self.log(row)
                history.append(row)
            for _ in range(self.iteration, cfg.iterations):
                metrics = self.train_step()
                if self._validate_now():
                    metrics.update(self.validate())
                # Log before checkpointing: a crash in between re-runs this iteration on resume, and
                # resuming cuts the orphaned row; the other order would lose the row for good.
                self.log(metrics)
                if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations:
                    self.save_checkpoint()
                history.append(metrics)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(success=f"{metrics['charts/success_rate']:.2f}", score=f"{metrics['charts/score']:.2f}")
        finally:
            if bar is not None:
                bar.close()
            self.close_loggers()
        return history

    def log(self, metrics: dict[str, Any]) -> None:
        """Append the row to ``metrics.jsonl`` (and TensorBoard); W&B when enabled."""
        self.metrics_log.write(metrics)
        if self.cfg.trainer.wandb:
            if self._wandb is None:
                try:
                    import wandb
                except ImportError as err:
                    raise ImportError("trainer.wandb=true needs the wandb package (pip install wandb)") from err
                self._wandb = wandb.init(project="empg", name=self.cfg.name, config=config_to_dict(self.cfg))
            self._wandb.log(metrics, step=int(metrics["iteration"]))

    def close_loggers(self) -> None:
        self.metrics_log.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    # ------------------------------------------------------------------ checkpoints
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """The trainable parameters only: every weight for full fine-tuning, the adapter for LoRA."""
        return {n: p.detach().cpu() for n, p in self.policy.model.named_parameters() if p.requires_grad}

    def state_dict(self, optimizer: bool = True) -> dict[str, Any]:
        """Trainable weights, iteration, every RNG state, the config, and the optimiser state when ``optimizer``."""
        return {
            "iteration": self.iteration,
            "model": self._trainable_state(),
            "optimizer": self.optimizer.state_dict() if optimizer else None,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "sampler": self.generator.get_state(),
            },
            "config": config_to_dict(self.cfg),
        }

    def save_checkpoint(self) -> pathlib.Path:
        """Write :meth:`state_dict` to ``out_dir/checkpoints/step-<iteration>.pt`` (atomic; the newest
        ``keep_checkpoints`` kept).

        ``trainer.save_optimizer``: ``all`` puts the optimiser state in every checkpoint; ``latest`` writes it to
        ``checkpoints/optimizer/step-<iteration>.pt`` *before* the checkpoint and then deletes the older
        ones, so whichever checkpoint is the newest on disk has its optimiser state; ``none`` never saves it.

        Raises:
            OSError: the disk is full or the folder read-only; the message names the file, and no partial
                file is left behind (:func:`empg.io.atomic_write_bytes`).
        """
        mode = self.cfg.trainer.save_optimizer
        try:
            if mode == "latest":
                self.optimizer_checkpoints.save(self.iteration, {"iteration": self.iteration,
                                                                 "optimizer": self.optimizer.state_dict()})
            path = self.checkpoints.save(self.iteration, self.state_dict(optimizer=mode == "all"))
        except OSError as err:
            raise OSError(err.errno, f"could not write the checkpoint of iteration {self.iteration} in "
                                     f"{str(self.checkpoints.folder)!r} (disk full or read-only?): "
                                     f"{err.strerror or err}") from err
        for step in self.optimizer_checkpoints.steps():
            if step < self.iteration or mode != "latest":
                self.optimizer_checkpoints.path(step).unlink(missing_ok=True)
        return path

    def _load_optimizer(self, state: dict[str, Any]) -> None:
        step = int(state["iteration"])
        opt_state = state.get("optimizer")
        problem = f"trainer.save_optimizer={self.cfg.trainer.save_optimizer!r}"
        if opt_state is None:
            path = self.optimizer_checkpoints.path(step)
            if path.exists():
                try:
                    opt_state = load_checkpoint_file(path)["optimizer"]
                except (CheckpointError, KeyError, TypeError) as err:
                    problem = f"{path} is damaged: {err}"
            else:
                problem = f"no {path} ({problem} keeps the optimizer state of the newest checkpoint only)"
        if opt_state is None:
            warnings.warn(f"resuming from iteration {step} without its optimizer state ({problem}): the AdamW "
                          f"moments restart from zero", RuntimeWarning)
            return
        self.optimizer.load_state_dict(opt_state)
        for group in self.optimizer.param_groups:  # the config's values (they differ only with allow_config_change)
            group.update(lr=self.cfg.optim.lr, betas=tuple(self.cfg.optim.betas), weight_decay=self.cfg.optim.weight_decay)

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; metrics rows after its iteration are dropped.

        Raises:
            ValueError: the checkpoint's weights do not fit the model (names the checkpoint and the tensors).
        """
        where = str(self.checkpoints.path(int(state["iteration"])))
        missing = load_weights(self.policy.model, state["model"], where)
        trainable = {n for n, p in self.policy.model.named_parameters() if p.requires_grad}
        if trainable & set(missing):
            raise ValueError(f"checkpoint {where!r} does not match the model: missing {sorted(trainable & set(missing))[:5]}")
        self._load_optimizer(state)
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.generator.set_state(rng["sampler"])
        self.iteration = int(state["iteration"])
        self.metrics_log.truncate(self.iteration)
        self._sync_sampler()
