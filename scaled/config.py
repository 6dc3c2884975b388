"""Configuration of the scaled trainer: one dataclass per concern, loaded from YAML + ``key=value`` overrides.

Defaults are the paper's setup (spec §6, verl-agent): Qwen2.5-1.5B-Instruct, 150 iterations, group
size 8, 16 tasks (environments) per iteration, lr 1e-6, k3 ("low_var_kl") KL coefficient 0.01,
response length 512, ALFWorld max 50 turns. ``scaled/configs/*.yaml`` override what differs.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from empg.config import VARIANTS
from scaled.rollout import RolloutConfig

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
        if self.kl_coef < 0:
            raise ValueError(f"algorithm.kl_coef must be >= 0, got {self.kl_coef}")


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
