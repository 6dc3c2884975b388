"""Configuration of the scaled trainer: OmegaConf structured configs, composed from YAML fragments.

One dataclass per concern; the algorithm sections *are* the core's config dataclasses
(:class:`empg.OutcomeConfig`, :class:`empg.EMPGConfig`, :class:`empg.LossConfig`), and the episode
section is :class:`scaled.agent.AgentConfig`, the same object the verl agent loop reads.

A config file is a partial :class:`Config` with an optional Hydra-style ``defaults:`` list of other
files to merge first (``_self_`` marks where the file's own keys go; by default they come last)::

    # scaled/configs/alfworld_dapo_empg_qwen7b.yaml
    defaults: [base, env/alfworld, algorithm/dapo_empg, model/qwen7b_lora]
    name: alfworld_dapo_empg_qwen7b

A name in ``defaults`` is looked up next to the including file, then in ``scaled/configs``.
``key=value`` overrides (OmegaConf dot-list, values parsed as YAML) are merged last, e.g.
``algorithm.empg.variant=scaling optim.lr=1e-5``. Values are type-checked against the dataclasses;
an unknown key or a bad value is a ``ValueError`` that names it (``algorithm.empg.zeta``). String
values may interpolate others: ``trainer.out_dir`` defaults to ``runs/${name}``.

Defaults of the dataclasses are generic; ``scaled/configs/base.yaml`` holds the paper's recipe
(spec §6, verl-agent), quoted next to each value.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from empg import EMPGConfig, LossConfig, OutcomeConfig
from scaled.agent import AgentConfig
from scaled.rollout import RolloutConfig

__all__ = ["ModelConfig", "EnvConfig", "AlgorithmConfig", "OptimConfig", "TrainerConfig", "EvalConfig", "Config",
           "CONFIG_DIR", "compose_config", "load_config", "config_to_dict", "config_to_yaml"]

#: Where the shipped configs and their fragments live.
CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"


def _check_int(section: str, name: str, value: Any, low: int, allow_none: bool = False) -> None:
    """ValueError naming ``section.name`` unless ``value`` is an int >= ``low`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{section}.{name} must be an int >= {low}{' or null' if allow_none else ''}, got {value!r}")


def _check_number(section: str, name: str, value: Any, low: float, strict: bool) -> None:
    """ValueError naming ``section.name`` unless ``value`` is finite and > low (strict) or >= low."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        raise ValueError(f"{section}.{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")


@dataclass
class ModelConfig:
    """The policy model."""

    path: str = "Qwen/Qwen2.5-1.5B-Instruct"
    """Hub name or local folder (paper: Qwen2.5-1.5B-Instruct and Qwen2.5-7B-Instruct)."""
    tiny: bool = False
    """Build a tiny random-init Qwen2 + BPE tokenizer offline (scaled.tiny) instead of loading ``path``;
    ``path`` is then the folder it is written to (empty: a cache folder)."""
    tiny_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``scaled.tiny.build_tiny_model`` (vocab_size, hidden_size, num_layers, seed)."""
    dtype: str = "float32"
    """Parameter dtype; float32 keeps fp32 master weights (bf16 autocast still runs the forwards on GPU)."""
    lora: Optional[dict[str, Any]] = None
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
    """Generation backend: hf (built-in sampler) or vllm (scaled.policy)."""

    def __post_init__(self) -> None:
        _check_number("model", "temperature", self.temperature, 0.0, strict=True)
        if self.reference not in ("copy", "lora", "none"):
            raise ValueError(f"model.reference must be copy, lora or none, got {self.reference!r}")


@dataclass
class EnvConfig:
    """The environments and how tasks are drawn."""

    name: str = "alfworld"
    """alfworld, webshop or textworld (scaled.envs.make_env)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
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
    """Outcome advantage (GRPO / DAPO), EMPG modulation and loss: the core's own config dataclasses."""

    outcome: OutcomeConfig = field(default_factory=OutcomeConfig)
    """empg.OutcomeConfig: estimator (grpo, dapo = dynamic sampling with refill + clip-higher, drgrpo,
    reinforce), std_normalize, eps, max_refill_rounds."""
    empg: EMPGConfig = field(default_factory=lambda: EMPGConfig(variant="off"))
    """empg.EMPGConfig: variant (off, scaling, bonus, full), k (Eq. 10), k_f (Eq. 11), zeta (Eq. 8), eps."""
    loss: LossConfig = field(default_factory=LossConfig)
    """empg.LossConfig: kind, clip_low, clip_high (null: 0.28 under DAPO, else clip_low), dual_clip,
    agg, kl_coef (k3 low-var KL, paper 0.01)."""


@dataclass
class OptimConfig:
    """Optimiser and batching."""

    lr: float = 1e-6
    """AdamW learning rate (paper: 1e-6)."""
    weight_decay: float = 0.01
    """AdamW weight decay (verl default 0.01)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    max_grad_norm: float = 1.0
    """Gradient clipping (verl default 1.0)."""
    mini_batch_size: Optional[int] = None
    """Rows per optimizer step (verl-agent ppo_mini_batch_size=256); None = one step per iteration."""
    micro_batch_size: int = 8
    """Rows per forward/backward; gradients accumulate over a mini-batch."""
    epochs: int = 1
    """Passes over the batch per iteration (verl ppo_epochs=1)."""

    def __post_init__(self) -> None:
        _check_number("optim", "lr", self.lr, 0.0, strict=False)
        _check_number("optim", "weight_decay", self.weight_decay, 0.0, strict=False)
        _check_number("optim", "max_grad_norm", self.max_grad_norm, 0.0, strict=True)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)!r}")
        _check_int("optim", "mini_batch_size", self.mini_batch_size, 1, allow_none=True)
        _check_int("optim", "micro_batch_size", self.micro_batch_size, 1)
        _check_int("optim", "epochs", self.epochs, 1)


@dataclass
class TrainerConfig:
    """The loop, logging and checkpoints."""

    iterations: int = 150
    """Training iterations (paper: 150 steps)."""
    seed: int = 0
    """Seeds the model init of tiny models, the sampler and the task seeds."""
    out_dir: str = "runs/${name}"
    """checkpoints/, metrics.jsonl and tb/ go here."""
    save_every: int = 1
    """Checkpoint every n iterations (1: a crash loses at most one iteration)."""
    keep_checkpoints: int = 2
    """Checkpoints kept (the newest ones; a damaged newest one falls back to the one before)."""
    resume: bool = True
    """Resume from the newest checkpoint in out_dir/checkpoints when there is one."""
    tensorboard: bool = False
    """Mirror the metrics to TensorBoard (out_dir/tb)."""
    wandb: bool = False
    """Log to Weights & Biases (optional import; run name = config name)."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda[:i]."""
    progress: bool = True
    """tqdm progress bars."""
    num_threads: Optional[int] = None
    """torch CPU threads (None: torch's default)."""

    def __post_init__(self) -> None:
        _check_int("trainer", "iterations", self.iterations, 0)
        _check_int("trainer", "save_every", self.save_every, 1)
        _check_int("trainer", "keep_checkpoints", self.keep_checkpoints, 1)
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
    """Arg-max decoding instead of sampling."""
    batch_size: int = 16
    """Environments played in parallel."""

    def __post_init__(self) -> None:
        _check_int("eval", "episodes", self.episodes, 1)
        _check_int("eval", "batch_size", self.batch_size, 1)
        # 0 would divide the logits by zero (inf/NaN probabilities); use eval.greedy for arg-max.
        if not self.greedy:
            _check_number("eval", "temperature", self.temperature, 0.0, strict=True)


@dataclass
class Config:
    """Everything a training run needs."""

    name: str = "scaled"
    """Run name (output folder, logs)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------- composition
def _read_yaml(path: pathlib.Path):
    from omegaconf import DictConfig, OmegaConf

    try:
        node = OmegaConf.load(path)
    except Exception as err:  # yaml.YAMLError and friends
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(node, DictConfig):
        raise ValueError(f"config file {str(path)!r} must hold a mapping, got {type(node).__name__}")
    return node


def _find(name: Any, including: pathlib.Path) -> pathlib.Path:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{str(including)!r}: every defaults entry must be a file name, got {name!r}")
    rel = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    for folder in (including.parent, CONFIG_DIR):
        candidate = folder / rel
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"{str(including)!r}: defaults entry {name!r} not found in "
                            f"{str(including.parent)!r} or {str(CONFIG_DIR)!r}")


def _parts(path: pathlib.Path, stack: tuple[pathlib.Path, ...] = ()) -> list[tuple[str, Any]]:
    """The files to merge for ``path``, in order: its defaults (recursively), then itself (or at ``_self_``)."""
    from omegaconf import ListConfig, OmegaConf

    if path in stack:
        raise ValueError("config defaults form a cycle: " + " -> ".join(str(p) for p in (*stack, path)))
    node = _read_yaml(path)
    defaults = node.pop("defaults", [])
    if isinstance(defaults, str) or not isinstance(defaults, (list, ListConfig)):
        raise ValueError(f"{str(path)!r}: defaults must be a list of file names, got {defaults!r}")
    parts: list[tuple[str, Any]] = []
    placed = False
    for entry in OmegaConf.to_container(defaults) if isinstance(defaults, ListConfig) else defaults:
        if entry == "_self_":
            parts.append((str(path), node))
            placed = True
        else:
            parts += _parts(_find(entry, path), (*stack, path))
    if not placed:
        parts.append((str(path), node))
    return parts


def _merge(cfg, part, source: str):
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    try:
        return OmegaConf.merge(cfg, part)
    except ConfigKeyError as err:
        raise ValueError(f"unknown config key {err.full_key!r} (from {source}); "
                         f"known keys there: {_known_keys(cfg, err.full_key)}") from None
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise ValueError(f"bad value for config key {key!r} (from {source}): {str(err).splitlines()[0]}") from None


def _known_keys(cfg, full_key: str) -> list[str]:
    from omegaconf import DictConfig, OmegaConf

    parent = ".".join(str(full_key).split(".")[:-1])
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def compose_config(path: str | pathlib.Path | None = None, overrides: Sequence[str] = ()):
    """The merged OmegaConf ``DictConfig`` (typed by :class:`Config`, interpolations unresolved).

    Raises:
        FileNotFoundError: ``path`` or a ``defaults`` entry does not exist.
        ValueError: an unknown key, a value of the wrong type, or a malformed override (named).
    """
    from omegaconf import DictConfig, OmegaConf

    cfg = OmegaConf.structured(Config)
    if path is not None:
        p = pathlib.Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
        for source, part in _parts(p.resolve()):
            cfg = _merge(cfg, part, source)
    items = list(overrides)
    for item in items:
        if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0].strip():
            raise ValueError(f"override {item!r} must look like section.key=value")
    if items:
        try:
            dotlist = OmegaConf.from_dotlist(items)
        except Exception as err:
            raise ValueError(f"overrides {items!r} could not be parsed: {err}") from None
        for item in items:
            key = item.split("=", 1)[0].strip()
            target = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
            if isinstance(target, DictConfig) and not isinstance(OmegaConf.select(dotlist, key), DictConfig):
                raise ValueError(f"override {item!r}: {key} is a section ({OmegaConf.get_type(target).__name__}); "
                                 f"set one of its keys {sorted(str(k) for k in target.keys())}, e.g. {key}.<key>=value")
        cfg = _merge(cfg, dotlist, "the command line")
    # YAML 1.1 reads a bare `off` as False, which a str field stores as "False".
    if cfg.algorithm.empg.variant == "False":
        cfg.algorithm.empg.variant = "off"
    return cfg


def _instantiate(node, where: str):
    """``OmegaConf.to_object`` section by section (deepest first), so a failing check names its section."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    for key in node.keys():
        if OmegaConf.is_interpolation(node, key):
            continue  # a leaf: resolved when its section is instantiated
        child = node[key]
        if isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            _instantiate(child, f"{where}.{key}" if where else str(key))
    try:
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or where
        raise ValueError(f"bad value for config key {key!r}: {str(err).splitlines()[0]}") from None
    except (ValueError, TypeError) as err:
        raise ValueError(f"config {where or 'root'}: {err}") from None


def _check_finite(obj: Any, where: str) -> None:
    """No NaN or infinity anywhere in the config (it would surface later as a NaN loss)."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _check_finite(getattr(obj, f.name), f"{where}.{f.name}" if where else f.name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"config key {where!r} must be finite, got {obj!r}")


def load_config(path: str | pathlib.Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Compose ``path`` (with its ``defaults``) and ``key=value`` overrides into a checked :class:`Config`."""
    cfg: Config = _instantiate(compose_config(path, overrides), "")
    _check_finite(cfg, "")
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """The config as plain nested dicts (checkpoints, W&B)."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (``--print-config``)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
