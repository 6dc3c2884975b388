"""Configuration of the scaled trainer: one dataclass per concern, loaded from YAML + ``key=value`` overrides.

Defaults are the paper's setup (spec §6, verl-agent): Qwen2.5-1.5B-Instruct, 150 iterations, group
size 8, 16 tasks (environments) per iteration, lr 1e-6, k3 ("low_var_kl") KL coefficient 0.01,
response length 512, ALFWorld max 50 turns. ``scaled/configs/*.yaml`` override what differs.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from empg.config import VARIANTS
from empg.losses import AGGREGATIONS
from scaled.rollout import RolloutConfig



def _check_int(section: str, name: str, value: Any, low: int, allow_none: bool = False) -> None:
    """ValueError naming ``section.name`` unless ``value`` is an int >= ``low`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{section}.{name} must be an int >= {low}{' or null' if allow_none else ''}, got {value!r}")


def _check_number(section: str, name: str, value: Any, low: float, strict: bool) -> float:
    """``value`` as a float; ValueError naming ``section.name`` unless finite and > low (strict) or >= low.

    Numeric strings are accepted: YAML 1.1 reads ``1e-6`` and ``1.0e9`` (no dot, or no exponent sign) as strings.
    """
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        raise ValueError(f"{section}.{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")
    return float(value)


__all__ = ["ModelConfig", "EnvConfig", "AlgorithmConfig", "OptimConfig", "TrainerConfig", "EvalConfig", "Config",
           "load_config", "apply_overrides", "config_to_dict"]


@dataclass
class ModelConfig:
    """The policy model."""

    path: str = "Qwen/Qwen2.5-1.5B-Instruct"
    """Hub name or local folder (paper: Qwen2.5-1.5B-Instruct and Qwen2.5-7B-Instruct)."""
    tiny: bool = False
    """Build a tiny random-init Qwen2 + BPE tokenizer offline (scaled.tiny) instead of loading ``path``;
    ``path`` is then the folder it is written to (empty: a cache folder)."""
    tiny_kwargs: dict = field(default_factory=dict)
    """Keyword arguments of ``scaled.tiny.build_tiny_model`` (vocab_size, hidden_size, num_layers, seed)."""
    dtype: str = "float32"
    """Parameter dtype; float32 keeps fp32 master weights (bf16 autocast still runs the forwards on GPU)."""
    lora: dict | None = None
    """peft LoRA settings (e.g. {r: 64, lora_alpha: 128}); None = full fine-tuning."""
    reference: str = "copy"
    """KL reference: copy (frozen copy), lora (adapter disabled), none (no KL)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (verl-agent: enable_gradient_checkpointing=True)."""
    bf16: bool = True
    """bf16 autocast on CUDA (no effect on CPU)."""
    temperature: float = 1.0
    """Rollout sampling temperature (verl-agent: 1.0)."""
    backend: str = "hf"
    """Generation backend: hf (built-in sampler) or vllm (not implemented; raises)."""


@dataclass
class EnvConfig:
    """The environments and how tasks are drawn."""

    name: str = "alfworld"
    """alfworld, webshop or textworld (scaled.envs.make_env)."""
    kwargs: dict = field(default_factory=dict)
    """Passed to make_env (data_path, max_steps, …)."""
    n_tasks: int = 16
    """Tasks (groups) per iteration (paper / verl-agent: 16 environments, data.train_batch_size=16)."""
    group_size: int = 8
    """Rollouts per task, G (paper: group size 8, env.rollout.n=8)."""

    def __post_init__(self) -> None:
        _check_int("env", "n_tasks", self.n_tasks, 1)
        _check_int("env", "group_size", self.group_size, 1)


@dataclass
class AlgorithmConfig:
    """Outcome advantage, EMPG modulation and loss (spec §3–5)."""

    outcome: str = "grpo"
    """grpo, or dapo (GRPO advantage + dynamic sampling + clip-higher)."""
    std_normalize: bool = True
    """GRPO divides by the group std (verl norm_adv_by_std_in_grpo=True)."""
    empg: str = "off"
    """EMPG variant: off, scaling, bonus or full."""
    k: float = 1.0
    """Eq. 10 sharpness (reference pseudocode 1.0)."""
    k_f: float = 1.0
    """Eq. 11 sharpness k′ (reference pseudocode 1.0)."""
    zeta: float = 0.1
    """Eq. 8 bonus weight ζ (reference pseudocode 0.1)."""
    clip_low: float = 0.2
    """ε_low (PPO/GRPO/DAPO 0.2)."""
    clip_high: float = 0.2
    """ε_high (GRPO 0.2; DAPO clip-higher 0.28)."""
    loss_agg: str = "token-mean"
    """token-mean (verl default, DAPO), seq-mean-token-mean or seq-mean-token-sum."""
    kl_coef: float = 0.01
    """k3 (low_var_kl) KL-to-reference coefficient (paper: 0.01)."""

    def __post_init__(self) -> None:
        if self.outcome not in ("grpo", "dapo"):
            raise ValueError(f"algorithm.outcome must be 'grpo' or 'dapo', got {self.outcome!r}")
        if self.empg is False:  # YAML 1.1 reads a bare `off` as False
            self.empg = "off"
        if self.empg not in VARIANTS:
            raise ValueError(f"algorithm.empg must be one of {VARIANTS}, got {self.empg!r}")
        for name in ("k", "k_f", "zeta", "clip_low", "clip_high", "kl_coef"):
            setattr(self, name, _check_number("algorithm", name, getattr(self, name), 0.0, strict=False))
        if self.loss_agg not in AGGREGATIONS:
            raise ValueError(f"algorithm.loss_agg must be one of {AGGREGATIONS}, got {self.loss_agg!r}")


@dataclass
class OptimConfig:
    """Optimiser and batching."""

    lr: float = 1e-6
    """AdamW learning rate (paper: 1e-6)."""
    weight_decay: float = 0.01
    """AdamW weight decay (verl default 0.01)."""
    betas: tuple = (0.9, 0.999)
    max_grad_norm: float = 1.0
    """Gradient clipping (verl default 1.0)."""
    mini_batch_size: int | None = None
    """Rows per optimizer step (verl-agent ppo_mini_batch_size=256); None = one step per iteration."""
    micro_batch_size: int = 8
    """Rows per forward/backward; gradients accumulate over a mini-batch."""
    epochs: int = 1
    """Passes over the batch per iteration (verl ppo_epochs=1)."""

    def __post_init__(self) -> None:
        self.lr = _check_number("optim", "lr", self.lr, 0.0, strict=False)
        self.weight_decay = _check_number("optim", "weight_decay", self.weight_decay, 0.0, strict=False)
        self.max_grad_norm = _check_number("optim", "max_grad_norm", self.max_grad_norm, 0.0, strict=True)
        _check_int("optim", "mini_batch_size", self.mini_batch_size, 1, allow_none=True)
        _check_int("optim", "micro_batch_size", self.micro_batch_size, 1)
        _check_int("optim", "epochs", self.epochs, 1)


@dataclass
class TrainerConfig:
    """The loop, logging and checkpoints."""

    iterations: int = 150
    """Training iterations (paper: 150 steps)."""
    seed: int = 0
    out_dir: str = "runs/scaled"
    """Checkpoint, metrics.jsonl and TensorBoard folder."""
    save_every: int = 1
    """Checkpoint every n iterations (1: a crash loses at most one iteration)."""
    resume: bool = True
    """Resume from out_dir/checkpoint.pt when present."""
    tensorboard: bool = False
    wandb: bool = False
    """Log to Weights & Biases (optional import; project = out_dir name)."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda."""
    progress: bool = True
    """tqdm progress bars."""
    num_threads: int | None = None
    """torch CPU threads (None: torch's default)."""

    def __post_init__(self) -> None:
        _check_int("trainer", "iterations", self.iterations, 0)
        _check_int("trainer", "save_every", self.save_every, 1)
        _check_int("trainer", "seed", self.seed, -(2**62))
        _check_int("trainer", "num_threads", self.num_threads, 1, allow_none=True)


@dataclass
class EvalConfig:
    """Evaluation (scaled.evaluate)."""

    episodes: int = 32
    """Episodes (distinct seeds) to evaluate."""
    seed: int = 100_000
    """First evaluation seed (disjoint from training seeds)."""
    temperature: float = 0.4
    """Sampling temperature (verl-agent val_kwargs.temperature=0.4)."""
    greedy: bool = False
    batch_size: int = 16
    """Environments played in parallel."""

    def __post_init__(self) -> None:
        _check_int("eval", "episodes", self.episodes, 1)
        _check_int("eval", "batch_size", self.batch_size, 1)
        # 0 would divide the logits by zero (inf/NaN probabilities); use eval.greedy for arg-max.
        if not self.greedy:
            self.temperature = _check_number("eval", "temperature", self.temperature, 0.0, strict=True)


@dataclass
class Config:
    """Everything a training run needs."""

    name: str = "scaled"
    model: ModelConfig = field(default_factory=ModelConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = _parse_value(value)
    return data


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        sub = _SECTIONS.get(name) if cls is Config else None
        kwargs[name] = _build(sub, value or {}, f"{where}.{name}") if sub is not None else value
    if cls is OptimConfig and "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return cls(**kwargs)


_SECTIONS = {"model": ModelConfig, "env": EnvConfig, "rollout": RolloutConfig, "algorithm": AlgorithmConfig,
             "optim": OptimConfig, "trainer": TrainerConfig, "eval": EvalConfig}


def load_config(path: str | pathlib.Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (sections as in :class:`Config`) and apply ``key=value`` overrides."""
    import yaml

    data: dict = {}
    if path is not None:
        p = pathlib.Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
        data = yaml.safe_load(p.read_text()) or {}
    apply_overrides(data, overrides)
    return _build(Config, data, "config")


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
