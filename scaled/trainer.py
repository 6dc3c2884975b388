"""The scaled trainer: GRPO/DAPO outcome advantages + EMPG on an LLM agent, one iteration at a time.

One iteration (``Trainer.train_step``), reading top to bottom:

1. Roll out ``n_tasks × G`` episodes (:func:`scaled.rollout.collect_rollouts`); group j's G
   environments share a reset seed, i.e. a task.
2. Lay them out as step rows (verl-agent) or concatenated rows (``rollout.layout``).
3. DAPO only: drop the groups whose rewards are all equal (dynamic sampling).
4. Recompute, teacher-forced and without gradient, the old log-probs and token entropies (as verl
   does), and the reference log-probs for the KL term.
5. Advantages from the registry: ``empg.compute_advantages("empg", …, variant=off|scaling|bonus|full,
   outcome="grpo")``; with ``off`` this is plain GRPO. The step entropies that EMPG modulates with
   are the mean token entropies of each step's generated tokens (spec §2).
6. PPO update: :func:`empg.clipped_policy_loss` (clip-higher for DAPO) + :func:`empg.kl_penalty`
   (k3), gradient accumulation over micro-batches, clipping, AdamW.
7. Metrics (JSONL, optional TensorBoard / W&B) and an atomic checkpoint (temp file + ``os.replace``)
   holding the weights, the optimiser and every RNG state, so that resuming reproduces the next
   iteration exactly.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import time
from typing import Any

import numpy as np
import torch

import empg
from empg.io import atomic_torch_save, atomic_write_bytes
from scaled.config import Config, config_to_dict
from scaled.rollout import TrainRows, collect_rollouts, concatenated_rows, rollout_metrics, step_rows

__all__ = ["Trainer", "build_policy", "resolve_device"]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"trainer.device must be auto, cpu or cuda[:i], got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("trainer.device=cuda but CUDA is not available")
    return torch.device(name)


def build_policy(cfg: Config, device: torch.device):
    """Load (or build, for ``model.tiny``) the model and wrap it in a :class:`scaled.policy.Policy`."""
    from scaled.policy import load_policy

    path = cfg.model.path
    if cfg.model.tiny:
        from scaled.tiny import build_tiny_model

        path = str(build_tiny_model(path or None, **cfg.model.tiny_kwargs))
    reference = cfg.model.reference if cfg.algorithm.kl_coef > 0 else "none"
    return load_policy(path, reference=reference, lora=cfg.model.lora, dtype=cfg.model.dtype, device=device,
                       temperature=cfg.model.temperature, bf16=cfg.model.bf16,
                       gradient_checkpointing=cfg.model.gradient_checkpointing, backend=cfg.model.backend)


def _trim(rows: TrainRows) -> TrainRows:
    """Drop all-padding columns on the left (prompt side) and right of a (micro-)batch."""
    att = rows.attention_mask
    cols = torch.nonzero(att.any(0)).squeeze(-1)
    left, right = int(cols.min()), int(cols.max()) + 1
    left = min(left, rows.start - 1)
    right = max(right, rows.start + 1)
    k = right - rows.start
    cut = lambda t: None if t is None else t[:, :k]  # noqa: E731
    return TrainRows(rows.layout, rows.input_ids[:, left:right], att[:, left:right], rows.start - left,
                     cut(rows.loss_mask), cut(rows.rollout_logp), cut(rows.rollout_entropy), cut(rows.step_ids),
                     rows.rewards, rows.group, rows.trajectory, rows.step)


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
        envs: optional pre-built environments (``n_tasks · group_size`` of them); default: built
            with ``scaled.envs.make_env(cfg.env.name, **cfg.env.kwargs)``.
    """

    def __init__(self, cfg: Config, envs: list | None = None) -> None:
        self.cfg = cfg
        if cfg.trainer.num_threads:
            torch.set_num_threads(cfg.trainer.num_threads)
        self._seed_everything(cfg.trainer.seed)
        self.device = resolve_device(cfg.trainer.device)
        self.policy = build_policy(cfg, self.device)
        self.optimizer = torch.optim.AdamW(self.policy.trainable_parameters(), lr=cfg.optim.lr,
                                           betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.trainer.seed)
        n_envs = cfg.env.n_tasks * cfg.env.group_size
        if envs is None:
            from scaled.envs import make_env

            envs = [make_env(cfg.env.name, **cfg.env.kwargs) for _ in range(n_envs)]
        if len(envs) != n_envs:
            raise ValueError(f"envs: expected n_tasks * group_size = {n_envs} environments, got {len(envs)}")
        self.envs = envs
        self.iteration = 0
        self.out_dir = pathlib.Path(cfg.trainer.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._tb = None
        self._wandb = None
        if cfg.trainer.resume and (self.out_dir / CHECKPOINT_NAME).exists():
            self.load_checkpoint(self.out_dir / CHECKPOINT_NAME)
        else:
            # A fresh start (or resume=false) owns out_dir: drop metrics of an earlier run, which
            # would otherwise be appended to (iterations 1, 2, 1, 2, …).
            self._truncate_metrics(self.iteration)

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def task_seeds(self, iteration: int) -> tuple[list[int], list[int]]:
        """Reset seeds and group ids of iteration ``iteration``: G copies of each of n_tasks seeds."""
        n, g = self.cfg.env.n_tasks, self.cfg.env.group_size
        base = self.cfg.trainer.seed * 1_000_003 + iteration * n
        seeds = [base + j for j in range(n) for _ in range(g)]
        groups = [j for j in range(n) for _ in range(g)]
        return seeds, groups

    # ------------------------------------------------------------------ batches
    def _layout(self, trajs) -> TrainRows:
        pol = self.policy
        if self.cfg.rollout.layout == "step":
            return step_rows(trajs, pol.pad_id)
        return concatenated_rows(trajs, pol.pad_id, pol.eos_id)

    @staticmethod
    def _dynamic_sampling(rows: TrainRows) -> tuple[TrainRows | None, float]:
        """DAPO: keep only trajectories of groups whose rewards are not all equal."""
        keep = empg.dynamic_sampling_mask(rows.rewards, rows.group)
        frac = float(keep.float().mean())
        if not keep.any():
            return None, frac
        if rows.layout == "steps":
            return rows.select(torch.nonzero(keep[rows.trajectory]).squeeze(-1)), frac
        idx = torch.nonzero(keep).squeeze(-1)
        sub = rows.select(idx)
        sub.rewards, sub.group = rows.rewards[idx], rows.group[idx]
        return sub, frac

    def _micro_batches(self, rows_idx: torch.Tensor):
        size = self.cfg.optim.micro_batch_size
        for lo in range(0, rows_idx.numel(), size):
            yield rows_idx[lo : lo + size]

    @torch.no_grad()
    def _recompute(self, rows: TrainRows) -> dict[str, torch.Tensor]:
        """Old log-probs, token entropies and reference log-probs, teacher-forced, ``[B, L - start]``.

        Runs the model in eval mode (no dropout), like :meth:`scaled.policy.Policy.generate`: the
        old log-probs and the entropies EMPG modulates with must be those of the policy that
        sampled, not of one random dropout mask.
        """
        b, k = rows.loss_mask.shape
        old = torch.zeros(b, k)
        ent = torch.zeros(b, k)
        ref = torch.zeros(b, k) if self.policy.reference_mode != "none" else None
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            for idx in self._micro_batches(torch.arange(b)):
                mb = _trim(rows.select(idx))
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

    def compute_advantages(self, rows: TrainRows, entropy: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Token advantages ``[B, L - start]`` from the registry (GRPO ± EMPG) and EMPG statistics."""
        alg = self.cfg.algorithm
        mask = rows.loss_mask
        if rows.layout == "steps":
            step_h = _step_entropy(rows, entropy)
            inputs = empg.AdvantageInputs(rows.rewards, rows.group, step_entropy=step_h, trajectory=rows.trajectory,
                                          step=rows.step)
        else:
            step_h = None
            inputs = empg.AdvantageInputs(rows.rewards, rows.group, token_entropy=entropy, step_ids=rows.step_ids)
        kw = dict(variant=alg.empg, outcome="grpo", k=alg.k, k_f=alg.k_f, zeta=alg.zeta, std_normalize=alg.std_normalize)
        adv = empg.compute_advantages("empg", inputs, **kw)
        # Statistics of Eq. 7–12 on this batch (the variant's k/ζ; for "off", the full-EMPG terms, for reference).
        base = empg.compute_advantages("grpo", inputs, std_normalize=alg.std_normalize)
        mod_kw = empg.EMPGConfig(variant=alg.empg if alg.empg != "off" else "full", k=alg.k, k_f=alg.k_f,
                                 zeta=alg.zeta).modulation_kwargs()
        if rows.layout == "steps":
            terms = empg.step_modulation_terms(base, step_h, rows.trajectory, rows.step, **mod_kw)
            token_adv = adv.unsqueeze(-1).expand_as(mask).clone()
        else:
            terms = empg.modulation_terms(base, entropy, rows.step_ids, **mod_kw)
            token_adv = adv
        stats = terms.stats("empg")
        stats["empg/enabled"] = float(alg.empg != "off")
        return token_adv.float(), stats

    # ------------------------------------------------------------------ update
    def _update(self, rows: TrainRows, old: torch.Tensor, ref: torch.Tensor | None, adv: torch.Tensor) -> dict[str, float]:
        alg, opt = self.cfg.algorithm, self.cfg.optim
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
                denom = _loss_weight(rows.loss_mask[mini_idx], alg.loss_agg)
                if denom == 0:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                for idx in self._micro_batches(mini_idx):
                    mb = _trim(rows.select(idx))
                    kk = mb.loss_mask.shape[1]
                    mask = mb.loss_mask.to(self.device)
                    w = _loss_weight(mask, alg.loss_agg)
                    if w == 0:
                        continue
                    w /= denom
                    logp, _ = self.policy.token_logprobs(mb.input_ids.to(self.device), mb.attention_mask.to(self.device),
                                                         start=mb.start)
                    loss, metrics = empg.clipped_policy_loss(
                        logp, old[idx, :kk].to(self.device), adv[idx, :kk].to(self.device), mask,
                        clip_low=alg.clip_low, clip_high=alg.clip_high, agg=alg.loss_agg)
                    if ref is not None and alg.kl_coef > 0:
                        kl_loss, kl_metrics = empg.kl_penalty(logp, ref[idx, :kk].to(self.device), mask,
                                                              coef=alg.kl_coef, agg=alg.loss_agg)
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

    def train_step(self) -> dict[str, Any]:
        """One iteration: rollout, advantages, update. Returns the metrics dict (also written to disk)."""
        cfg = self.cfg
        t0 = time.time()
        seeds, groups = self.task_seeds(self.iteration)
        trajs = collect_rollouts(self.policy, self.envs, seeds=seeds, groups=groups, config=cfg.rollout,
                                 generator=self.generator, progress=cfg.trainer.progress)
        t_rollout = time.time() - t0
        metrics: dict[str, Any] = {"iteration": self.iteration + 1}
        metrics.update(rollout_metrics(trajs))
        rows = self._layout(trajs)
        if cfg.algorithm.outcome == "dapo":
            rows, kept = self._dynamic_sampling(rows)
            metrics["dapo/kept_trajectory_fraction"] = kept
        if rows is None:
            metrics["policy/skipped_update"] = 1.0
        else:
            rec = self._recompute(rows)
            mask = rows.loss_mask
            ent = rec["entropy"]
            step_h = _step_entropy(rows, ent)
            metrics["entropy/token_mean"] = float(ent[mask].mean())
            metrics["entropy/step_mean"] = float(step_h.mean())
            metrics["entropy/step_std"] = float(step_h.std(unbiased=False))
            metrics["entropy/step_min"] = float(step_h.min())
            metrics["entropy/step_max"] = float(step_h.max())
            metrics["entropy/rollout_recompute_max_abs_diff"] = float((ent - rows.rollout_entropy)[mask].abs().max())
            adv, stats = self.compute_advantages(rows, ent)
            metrics.update(stats)
            metrics["policy/advantage_mean"] = float(adv[mask].mean())
            metrics.update(self._update(rows, rec["old_logp"], rec["ref_logp"], adv))
            metrics["policy/skipped_update"] = 0.0
        self.iteration += 1
        dt = time.time() - t0
        n_tokens = sum(len(s.response_ids) for t in trajs for s in t.steps)
        metrics["perf/iteration_seconds"] = dt
        metrics["perf/rollout_seconds"] = t_rollout
        metrics["perf/generated_tokens_per_second"] = n_tokens / max(t_rollout, 1e-9)
        return metrics

    # ------------------------------------------------------------------ loop
    def train(self) -> list[dict[str, Any]]:
        """Run the remaining iterations; checkpoint every ``save_every``; return the new metrics."""
        cfg = self.cfg.trainer
        history = []
        todo = range(self.iteration, cfg.iterations)
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.iterations, initial=self.iteration, desc=f"train {self.cfg.name}")
        for _ in todo:
            metrics = self.train_step()
            # Log before checkpointing: a crash in between re-runs this iteration on resume, and
            # load_checkpoint drops the orphaned line; the other order would lose the line for good.
            self.log(metrics)
            if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations:
                self.save_checkpoint()
            history.append(metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(success=f"{metrics['charts/success_rate']:.2f}", score=f"{metrics['charts/score']:.2f}")
        if bar is not None:
            bar.close()
        self.close_loggers()
        return history

    def log(self, metrics: dict[str, Any]) -> None:
        """Append to ``metrics.jsonl``; TensorBoard and W&B when enabled."""
        with open(self.out_dir / METRICS_NAME, "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        step = int(metrics["iteration"])
        if self.cfg.trainer.tensorboard:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tb"))
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "iteration":
                    self._tb.add_scalar(k, v, step)
        if self.cfg.trainer.wandb:
            if self._wandb is None:
                try:
                    import wandb
                except ImportError as err:
                    raise ImportError("trainer.wandb=true needs the wandb package (pip install wandb)") from err
                self._wandb = wandb.init(project="empg", name=self.cfg.name, config=config_to_dict(self.cfg))
            self._wandb.log(metrics, step=step)

    def close_loggers(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    # ------------------------------------------------------------------ checkpoints
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().cpu() for n, p in self.policy.model.named_parameters() if p.requires_grad}

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> pathlib.Path:
        """Write weights, optimiser, iteration and RNG states atomically (:func:`empg.io.atomic_torch_save`)."""
        path = pathlib.Path(path) if path is not None else self.out_dir / CHECKPOINT_NAME
        state = {
            "iteration": self.iteration,
            "model": self._trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "sampler": self.generator.get_state(),
            },
            "config": config_to_dict(self.cfg),
        }
        atomic_torch_save(path, state)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint`; metrics after it are dropped."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        missing = self.policy.model.load_state_dict(state["model"], strict=False)
        trainable = {n for n, p in self.policy.model.named_parameters() if p.requires_grad}
        if set(missing.unexpected_keys) or (trainable & set(missing.missing_keys)):
            raise ValueError(f"checkpoint {str(path)!r} does not match the model: missing "
                             f"{sorted(trainable & set(missing.missing_keys))[:5]}, unexpected {missing.unexpected_keys[:5]}")
        self.optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.generator.set_state(rng["sampler"])
        self.iteration = int(state["iteration"])
        self._truncate_metrics(self.iteration)

    def _truncate_metrics(self, iteration: int) -> None:
        """Keep only the ``metrics.jsonl`` lines of iterations ``<= iteration`` (atomic rewrite)."""
        metrics_path = self.out_dir / METRICS_NAME
        if metrics_path.exists():
            keep = [line for line in metrics_path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("iteration", 0) <= iteration]
            atomic_write_bytes(metrics_path, "".join(line + "\n" for line in keep).encode())
