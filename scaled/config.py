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
values may interpolate others (``${env.name}``); ``trainer.out_dir`` defaults to
``runs/<env>_<method>_<model>`` (:func:`run_tag`).

Defaults of the dataclasses are generic; ``scaled/configs/base.yaml`` holds the paper's recipe
(spec §6, verl-agent), quoted next to each value.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from empg import EMPGConfig, LossConfig, OutcomeConfig
from scaled.agent import AgentConfig
from scaled.rollout import RolloutConfig

__all__ = ["ModelConfig", "EnvConfig", "AlgorithmConfig", "OptimConfig", "TrainerConfig", "EvalConfig", "Config",
           "CONFIG_DIR", "RESUME_EXEMPT", "compose_config", "load_config", "config_to_dict", "config_to_yaml",
           "config_diff", "env_kwargs", "make_split_env", "val_task_indices", "MODEL_DTYPES", "LORA_DEFAULTS", "lora_settings", "recipe_max_steps", "run_tag", "method_tag", "model_tag", "missing_keys", "RECIPE_KEYS"]

#: Where the shipped configs and their fragments live.
CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"

#: trainer.save_optimizer values.
SAVE_OPTIMIZER = ("latest", "all", "none")

#: model.dtype values (``scaled.policy.load_policy``).
MODEL_DTYPES = ("float32", "bfloat16", "float16")
# LoRA settings not given in model.lora (the single-machine policy and the verl launch both use these)
LORA_DEFAULTS = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}

#: eval.split values and the env section field each one reads.
EVAL_SPLITS = {"test": "test_split", "val": "val_split", "train": "train_split"}

#: Keys that may change when a run is resumed: how long it runs and where, how it reports, how much memory a
#: step takes (micro-batches and threads change no result beyond float rounding). Everything else must match
#: the checkpoint's config unless ``trainer.allow_config_change`` (``--allow-config-change``).
RESUME_EXEMPT = (
    "trainer.iterations", "trainer.out_dir", "trainer.resume", "trainer.allow_config_change", "trainer.progress",
    "trainer.tensorboard", "trainer.wandb", "trainer.device", "trainer.num_threads", "trainer.save_every",
    "trainer.keep_checkpoints", "trainer.save_optimizer", "optim.micro_batch_size", "model.gradient_checkpointing",
    "rollout.env_workers", "eval.split", "eval.samples", "eval.max_tasks", "eval.batch_size",
    "model.sampler_options", "model.logprob_chunk_bytes",
)

#: The settings that define the paper's setup (spec §6; docs/scaling_up.md, "The recipe"). They are set in
#: ``base.yaml``, ``env/<env>.yaml`` and ``algorithm/<method>.yaml`` and nowhere else (``model/`` fragments set none
#: of them): the single-machine trainer and the verl launch read them from these files.
RECIPE_KEYS = (
    "env.n_tasks", "env.group_size", "env.train_split", "env.val_split", "env.test_split",
    "agent.max_steps", "agent.history_length", "agent.layout", "agent.win_reward", "agent.invalid_penalty",
    "agent.require_think", "agent.check_admissible",
    "rollout.max_new_tokens", "rollout.max_prompt_tokens",
    "model.temperature",
    "algorithm.outcome.estimator", "algorithm.outcome.std_normalize", "algorithm.outcome.max_refill_rounds",
    "algorithm.empg.variant", "algorithm.loss.clip_low", "algorithm.loss.clip_high", "algorithm.loss.agg",
    "algorithm.loss.kl_coef",
    "optim.lr", "optim.weight_decay", "optim.max_grad_norm", "optim.mini_batch_size", "optim.epochs",
    "trainer.iterations", "trainer.val_every", "trainer.val_before_train",
    "eval.temperature", "eval.val_tasks",
)

#: What to do about a required key that a config leaves unset (``???``).
_MISSING_HINTS = {
    "env.kwargs.data_path": ("the paper configs need the real data: env.kwargs.data_path=$ALFWORLD_DATA/json_2.1.1 "
                             "(ALFWorld: the folder holding train/, valid_seen/, valid_unseen/) or "
                             "env.kwargs.data_path=<folder with the WebShop release files>; only "
                             "scaled/configs/smoke_cpu.yaml plays the small data shipped in scaled/data"),
}


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
    """Keyword arguments of ``scaled.tiny.build_tiny_model`` (vocab_size, hidden_size, num_layers, num_heads,
    num_kv_heads, seed)."""
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
    sampler_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the backend's sampler (``scaled.sampling``): for vllm e.g. {gpu_memory_utilization: 0.3,
    sleep_level: 1, sync: memory, kv_cache_memory_bytes: ..., max_model_len: ...}; for hf {finish_check_every: 16}.
    The trainer and the evaluation run vllm with ``entropies: none`` unless set (they recompute entropies teacher-forced)."""
    logprob_chunk_bytes: Optional[int] = None
    """Budget of one ``[C, V]`` float32 buffer of the chunked teacher-forced log-prob path (None: 64 MiB)."""

    def __post_init__(self) -> None:
        _check_number("model", "temperature", self.temperature, 0.0, strict=True)
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"model.backend must be hf or vllm, got {self.backend!r}")
        if not isinstance(self.sampler_options, dict):
            raise ValueError(f"model.sampler_options must be a mapping of sampler keyword arguments, got "
                             f"{self.sampler_options!r}")
        _check_int("model", "logprob_chunk_bytes", self.logprob_chunk_bytes, 1, allow_none=True)
        if self.reference not in ("copy", "lora", "none"):
            raise ValueError(f"model.reference must be copy, lora or none, got {self.reference!r}")
        if self.dtype not in MODEL_DTYPES:
            raise ValueError(f"model.dtype must be one of {list(MODEL_DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.path, str) or (not self.tiny and not self.path.strip()):
            raise ValueError(f"model.path must be a hub name or a local folder, got {self.path!r}")
        if self.lora is not None:
            lora_settings(self.lora)


def lora_settings(lora: dict[str, Any]) -> dict[str, Any]:
    """``model.lora`` over the defaults both trainers use (peft ``LoraConfig`` keywords; r >= 1)."""
    cfg = {**LORA_DEFAULTS, **dict(lora)}
    r = cfg["r"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"model.lora.r must be an int >= 1, got {r!r}")
    return cfg


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
    train_split: Optional[str] = None
    """The env's ``split`` for training (ALFWorld ``train``; WebShop ``train``, goals [1500:]); None: all its data."""
    val_split: Optional[str] = None
    """The env's ``split`` for validation during training (ALFWorld ``valid_seen``; WebShop ``validation``)."""
    test_split: Optional[str] = None
    """The env's ``split`` that ``scaled.evaluate`` reports (ALFWorld ``valid_unseen``, 134 games; WebShop ``test``,
    500 goals)."""

    def __post_init__(self) -> None:
        from scaled.envs.base import ENV_NAMES

        if not isinstance(self.name, str) or self.name.lower() not in ENV_NAMES:
            raise ValueError(f"env.name must be one of {list(ENV_NAMES)}, got {self.name!r}")
        _check_int("env", "n_tasks", self.n_tasks, 1)
        _check_int("env", "group_size", self.group_size, 1)
        if "split" in self.kwargs:
            raise ValueError(f"env.kwargs.split={self.kwargs['split']!r}: set env.train_split, env.val_split and "
                             f"env.test_split instead (one split per purpose, so training never plays the held-out tasks)")
        splits = {"train_split": self.train_split, "val_split": self.val_split, "test_split": self.test_split}
        for name, value in splits.items():
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"env.{name} must be a split name or null, got {value!r}")
        if any(v is not None for v in splits.values()):
            # Training never draws from the validation or test tasks.
            missing = [k for k, v in splits.items() if v is None]
            if missing:
                raise ValueError(f"env.{missing[0]} must be set when another split is (got {splits}): an env "
                                 f"without a split plays all its data, the other splits included")
            if self.train_split in (self.val_split, self.test_split):
                raise ValueError(f"env.train_split {self.train_split!r} must differ from env.val_split and "
                                 f"env.test_split (got {splits}): training would see the held-out tasks")


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
    out_dir: Optional[str] = None
    """checkpoints/, metrics.jsonl and tb/ go here; None: ``runs/<env>_<method>_<model>`` (`run_tag`), so runs
    of different methods, envs or models never share a folder."""
    save_every: int = 1
    """Checkpoint every n iterations (1: a crash loses at most one iteration)."""
    keep_checkpoints: int = 2
    """Checkpoints kept (the newest ones; a damaged newest one falls back to the one before)."""
    save_optimizer: str = "latest"
    """Where the optimizer state (AdamW moments: 2x the trainable weights in fp32) is saved: ``latest`` (only
    with the newest checkpoint; a fallback to an older one restarts the moments, with a warning), ``all``
    (every kept checkpoint: exact fallback, more disk) or ``none`` (never; every resume restarts them)."""
    resume: bool = True
    """Resume from the newest checkpoint in out_dir/checkpoints when there is one."""
    allow_config_change: bool = False
    """Resume even when the config differs from the checkpoint's (``--allow-config-change``); otherwise that
    is an error naming the differing keys (the keys in `RESUME_EXEMPT` may always change)."""
    val_every: int = 0
    """Validate every n iterations (on env.val_split, eval.temperature, eval.val_tasks tasks), logged as
    ``val/*``; 0: never (verl-agent: trainer.test_freq=5)."""
    val_before_train: bool = False
    """Also validate the initial model (a row with iteration 0; verl-agent: val_before_train=True)."""
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
        _check_int("trainer", "val_every", self.val_every, 0)
        if self.save_optimizer not in SAVE_OPTIMIZER:
            raise ValueError(f"trainer.save_optimizer must be one of {list(SAVE_OPTIMIZER)}, got {self.save_optimizer!r}")
        if self.out_dir is not None and (not isinstance(self.out_dir, str) or not self.out_dir.strip()):
            raise ValueError(f"trainer.out_dir must be a folder name or null, got {self.out_dir!r}")


@dataclass
class EvalConfig:
    """Evaluation (scaled.evaluate) and validation during training: every task of a split, without replacement."""

    split: str = "test"
    """The split ``scaled.evaluate`` plays: test (env.test_split), val (env.val_split) or train (env.train_split)."""
    samples: int = 1
    """Episodes per task, each with its own sampling seed (``eval.seed + sample``)."""
    max_tasks: Optional[int] = None
    """Play only the first n tasks of the split (a quick look); None: every task."""
    expected_tasks: Optional[int] = None
    """The split's size in the paper (ALFWorld valid_unseen 134, WebShop test 500): a warning when the split
    has another number of tasks (a partial download?); None: no check."""
    val_tasks: Optional[int] = 128
    """Distinct validation tasks per validation during training: the same seeded subset of env.val_split each
    time (verl-agent: val_data_size=128); None: the whole split."""
    seed: int = 100_000
    """Seeds the sampling of evaluation and validation episodes (never the training streams)."""
    temperature: float = 0.4
    """Sampling temperature (verl-agent val_kwargs.temperature=0.4, do_sample=True)."""
    greedy: bool = False
    """Arg-max decoding instead of sampling."""
    batch_size: int = 16
    """Environments played in parallel (the evaluation's env pool)."""

    def __post_init__(self) -> None:
        if self.split not in EVAL_SPLITS:
            raise ValueError(f"eval.split must be one of {list(EVAL_SPLITS)}, got {self.split!r}")
        _check_int("eval", "samples", self.samples, 1)
        _check_int("eval", "max_tasks", self.max_tasks, 1, allow_none=True)
        _check_int("eval", "expected_tasks", self.expected_tasks, 1, allow_none=True)
        _check_int("eval", "val_tasks", self.val_tasks, 1, allow_none=True)
        _check_int("eval", "batch_size", self.batch_size, 1)
        _check_int("eval", "seed", self.seed, 0)
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

    def __post_init__(self) -> None:
        if self.trainer.out_dir is None:
            self.trainer.out_dir = f"runs/{run_tag(self)}"


def method_tag(cfg: Config) -> str:
    """``grpo``, ``dapo_empg``, ``grpo_empg-scaling``, …: the outcome estimator and the EMPG variant."""
    variant = cfg.algorithm.empg.variant
    tag = cfg.algorithm.outcome.estimator
    return tag if variant == "off" else tag + ("_empg" if variant == "full" else f"_empg-{variant}")


def model_tag(cfg: Config) -> str:
    """``tiny``, ``qwen2.5-1.5b-instruct``, ``qwen2.5-7b-instruct-lora``, …"""
    if cfg.model.tiny:
        return "tiny"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.model.path.rstrip("/").split("/")[-1]).strip("-").lower() or "model"
    return name + ("-lora" if cfg.model.lora else "")


def run_tag(cfg: Config) -> str:
    """``<env>_<method>_<model>``, the default output folder name (``runs/<tag>``), e.g. ``alfworld_dapo_empg_qwen2.5-1.5b-instruct``."""
    return f"{cfg.env.name}_{method_tag(cfg)}_{model_tag(cfg)}"


# --------------------------------------------------------------------------- composition
def _read_yaml(path: pathlib.Path):
    from omegaconf import DictConfig, OmegaConf

    try:
        node = OmegaConf.load(path)
    except Exception as err:  # yaml.YAMLError and friends
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
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
            value = OmegaConf.select(dotlist, key)
            # a section takes a mapping, or null where it is optional (model.lora=null: full fine-tuning)
            if isinstance(target, DictConfig) and value is not None and not isinstance(value, DictConfig):
                raise ValueError(f"override {item!r}: {key} is a section ({OmegaConf.get_type(target).__name__}); "
                                 f"set one of its keys {sorted(str(k) for k in target.keys())}, e.g. {key}.<key>=value")
        cfg = _merge(cfg, dotlist, "the command line")
    # YAML 1.1 reads a bare `off` as False, which a str field stores as "False".
    if cfg.algorithm.empg.variant == "False":
        cfg.algorithm.empg.variant = "off"
    return cfg


def missing_keys(node, prefix: str = "") -> list[str]:
    """The keys of a composed config that are required but unset (``???``), e.g. ``["env.kwargs.data_path"]``."""
    from omegaconf import DictConfig, OmegaConf

    out = []
    for key in node.keys():
        full = f"{prefix}.{key}" if prefix else str(key)
        if OmegaConf.is_missing(node, key):
            out.append(full)
        elif not OmegaConf.is_interpolation(node, key) and isinstance(node[key], DictConfig):
            out += missing_keys(node[key], full)
    return out


def _check_missing(node) -> None:
    missing = missing_keys(node)
    if missing:
        hints = [f"{k}: {_MISSING_HINTS[k]}" for k in missing if k in _MISSING_HINTS]
        raise ValueError(f"config key {missing[0]!r} is required but not set"
                         + (f" (also {missing[1:]})" if len(missing) > 1 else "")
                         + (f"; {'; '.join(hints)}" if hints else f"; set it with {missing[0]}=<value>"))


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
        msg = str(err)
        # "EMPGConfig.zeta must be ..." -> "config algorithm.empg.zeta: EMPGConfig.zeta must be ..."
        m = re.match(r"(\w+)\.(\w+)\b", msg)
        cls = OmegaConf.get_type(node)
        if m and cls is not None and m.group(1) == cls.__name__:
            key = f"{where}.{m.group(2)}" if where else m.group(2)
            raise ValueError(f"config {key}: {msg}") from None
        raise ValueError(f"config {where or 'root'}: {msg}") from None


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


def load_config(path: str | pathlib.Path | None = None, overrides: Sequence[str] = (), *,
                allow_missing: bool = False) -> Config:
    """Compose ``path`` (with its ``defaults``) and ``key=value`` overrides into a checked :class:`Config`.

    Args:
        allow_missing: leave required keys that are unset (``???``, e.g. the paper configs'
            ``env.kwargs.data_path``) as None instead of raising (``--print-config``).

    Raises:
        ValueError: as :func:`compose_config`; a required key is not set (named, with what to set it to).
    """
    node = compose_config(path, overrides)
    if allow_missing:
        from omegaconf import OmegaConf

        for key in missing_keys(node):
            OmegaConf.update(node, key, None, force_add=True)
    _check_missing(node)
    cfg: Config = _instantiate(node, "")
    _check_finite(cfg, "")
    return cfg


def env_kwargs(cfg: Config, split: str) -> dict[str, Any]:
    """``make_env`` keyword arguments for the ``train``, ``val`` or ``test`` tasks: ``env.kwargs`` plus that
    split's ``split=`` (when ``env.<split>_split`` is set).

    Raises:
        ValueError: ``split`` is not train, val or test.
    """
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {list(EVAL_SPLITS)}, got {split!r}")
    kwargs = dict(cfg.env.kwargs)
    name = getattr(cfg.env, EVAL_SPLITS[split])
    if name is not None:
        kwargs["split"] = name
    return kwargs


def make_split_env(cfg: Config, split: str):
    """``scaled.envs.make_env(cfg.env.name, **env_kwargs(cfg, split))``, with errors that name the setting.

    Raises:
        ValueError: an unknown ``env.name``, a keyword the env does not take (``env.kwargs.<key>``, named), or
            the env's own data errors (missing ``data_path``, no games, ...).
    """
    from scaled.envs import make_env

    kwargs = env_kwargs(cfg, split)
    try:
        return make_env(cfg.env.name, **kwargs)
    except TypeError as err:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if m is None:
            raise
        raise ValueError(f"env.kwargs.{m.group(1)}: the {cfg.env.name} environment takes no argument "
                         f"{m.group(1)!r} ({err})") from None
    except (ValueError, OSError) as err:
        msg = str(err)
        if "data_path" in msg and "env.kwargs.data_path" not in msg and err.args == (msg,):
            err.args = (f"env.kwargs.data_path: {msg}",)  # the env names its argument; add the setting (same type)
        raise


def val_task_indices(num_tasks: int, val_tasks: int | None, seed: int) -> list[int]:
    """The validation tasks: ``val_tasks`` distinct task indices of ``range(num_tasks)`` drawn with ``seed``
    (sorted), or all of them when ``val_tasks`` is None or not smaller than ``num_tasks``.

    The one definition that the single-machine trainer (``Trainer.val_task_indices``) and the verl data
    (``scaled.verl.make_data``, val.parquet) both use, so the two validate on the same tasks.

    Raises:
        ValueError: ``num_tasks`` < 0 or ``val_tasks`` < 1 (named).
    """
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 0:
        raise ValueError(f"num_tasks must be an int >= 0, got {num_tasks!r}")
    _check_int("eval", "val_tasks", val_tasks, 1, allow_none=True)
    if val_tasks is None or val_tasks >= num_tasks:
        return list(range(num_tasks))
    return sorted(random.Random(seed).sample(range(num_tasks), val_tasks))


def recipe_max_steps(env: str) -> int:
    """The turn limit the recipe sets for ``env`` (``agent.max_steps`` of ``scaled/configs/env/<env>.yaml``);
    :class:`scaled.agent.AgentConfig`'s default for an env without a fragment (textworld)."""
    path = CONFIG_DIR / "env" / f"{env}.yaml"
    if not path.is_file():
        return AgentConfig().max_steps
    return int(compose_config(path).agent.max_steps)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def config_diff(old: dict, new: dict, exempt: Sequence[str] = RESUME_EXEMPT) -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every leaf that differs between two :func:`config_to_dict` trees.

    Keys in ``exempt`` (and keys below them) are ignored; a key present on one side only counts as a
    difference (``<absent>`` on the other).
    """
    a, b = _flatten(old), _flatten(new)
    absent = "<absent>"

    def skipped(key: str) -> bool:
        return any(key == e or key.startswith(e + ".") for e in exempt)

    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, absent), b.get(key, absent)
        if isinstance(va, tuple):
            va = list(va)
        if isinstance(vb, tuple):
            vb = list(vb)
        if va != vb and not skipped(key):
            out.append((key, va, vb))
    return out


def config_to_dict(cfg: Config) -> dict:
    """The config as plain nested dicts (checkpoints, W&B)."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML (``--print-config``)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
