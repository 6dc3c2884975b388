"""Small softmax policies for the toys: a tabular one for gridworlds and a log-linear one for text.

Both are ``torch.nn.Module`` s with the same per-step interface, so the toy trainer
(:mod:`toy_envs.train`) and the measurements of spec §2 treat them alike:

1. ``encode(obs, info)`` turns one observation (and, for text, ``info["admissible_commands"]``)
   into a compact per-step record;
2. ``collate(records)`` batches S such records;
3. ``logits(batch) -> [S, A_max]`` gives the action logits, ``-inf`` where a step has fewer actions.

``log_prob``, ``entropy`` and ``sample`` are derived from ``logits`` in the base class. Every action
distribution is a softmax ``π = softmax(z)`` over the logits ``z`` of one step; the Proposition 1
quantities are functions of those logits: :func:`score_norm_sq` here (the taken action's
``‖e_a − π‖²``), :func:`empg.renyi2_entropy` and :func:`empg.expected_score_norm_sq` (``1 − exp(−H₂)``).
The score norms are taken with respect to ``z``; for the tabular policy ``z`` *is* a row of the
parameter table, so that is also the parameter gradient of the visited state.

No environment is imported here: observations are plain ints (gridworld state ids) or strings.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from empg import token_entropy

__all__ = ["SoftmaxPolicy", "TabularSoftmaxPolicy", "LogLinearPolicy", "FeatureBatch", "gumbel_max_sample", "hash_features",
           "score_norm_sq", "tokenize"]


class SoftmaxPolicy(nn.Module):
    """Base class: a softmax over per-step action logits. Subclasses define encode/collate/logits."""

    def encode(self, obs: Any, info: Mapping[str, Any] | None = None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def collate(self, records: Sequence[Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, batch: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, batch: Any, actions: Any) -> torch.Tensor:
        """``[S]`` log π(a_s | s) of the given actions (``[S]`` int). Differentiable."""
        z = self.logits(batch)
        a = _actions(actions, z)
        return torch.log_softmax(z, dim=-1).gather(-1, a.unsqueeze(-1)).squeeze(-1)

    def entropy(self, batch: Any) -> torch.Tensor:
        """``[S]`` Shannon entropy H(π(·|s)) in nats (spec §2) via :func:`empg.token_entropy`."""
        return token_entropy(self.logits(batch))

    @torch.no_grad()
    def sample(self, batch: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[S]`` actions drawn from π with ``generator`` (Gumbel-max, so invalid ``-inf`` actions never win)."""
        return gumbel_max_sample(self.logits(batch), generator)


def gumbel_max_sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[S]`` one draw from ``softmax(logits [S, A])`` per row: ``argmax_a z_a + Gumbel noise`` (``-inf`` never wins)."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_(1e-12, 1.0 - 1e-12)
    return (logits.double() - torch.log(-torch.log(u))).argmax(-1)


def score_norm_sq(logits: torch.Tensor, actions: Any) -> torch.Tensor:
    """Proposition 1's per-action term: ``‖∇_z log π(a)‖² = ‖e_a − π‖² = 1 − 2π_a + Σ_b π_b²``.

    Args:
        logits: ``[S, A]`` action logits z of S steps (``-inf`` for a step's missing actions).
        actions: ``[S]`` int, the action taken at each step.

    Returns:
        ``[S]`` the squared norm of the score of the taken action with respect to the logits; its
        expectation under π is ``1 − exp(−H₂)`` (:func:`empg.expected_score_norm_sq`).
    """
    a = _actions(actions, logits)
    p = torch.log_softmax(logits, dim=-1).exp()
    pa = p.gather(-1, a.unsqueeze(-1)).squeeze(-1)
    return 1.0 - 2.0 * pa + (p * p).sum(-1)


def _actions(actions: Any, logits: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(actions)
    if a.dtype.is_floating_point or a.dtype == torch.bool:
        raise TypeError(f"actions must be integers, got dtype {a.dtype}")
    if a.shape != logits.shape[:-1]:
        raise ValueError(f"actions must have shape {tuple(logits.shape[:-1])} (one per step), got {tuple(a.shape)}")
    a = a.long()
    if a.numel() and (int(a.min()) < 0 or int(a.max()) >= logits.shape[-1]):
        raise ValueError(f"actions must lie in [0, {logits.shape[-1]}), got {int(a.min())}..{int(a.max())}")
    if a.numel() and not bool(torch.isfinite(logits.gather(-1, a.unsqueeze(-1))).all()):
        raise ValueError("actions must be valid for their step (an action index beyond that step's commands)")
    return a


# --------------------------------------------------------------------------- tabular


class TabularSoftmaxPolicy(SoftmaxPolicy):
    """``π(a|s) = softmax(θ_s)_a`` with a logits table ``θ ∈ R^{num_states × num_actions}``.

    Observations are integer state ids in ``[0, num_states)`` (a gymnasium ``Discrete`` space; aliased
    cells share an id, so the policy cannot tell them apart). The table starts at zero (uniform policy)
    unless ``init_std > 0``.

    Args:
        num_states: number of distinct observations. num_actions: number of actions (4 in the gridworlds).
        init_std: std of a Gaussian initialisation of the table (0 = uniform start).
    """

    def __init__(self, num_states: int, num_actions: int, *, init_std: float = 0.0):
        super().__init__()
        for name, v in (("num_states", num_states), ("num_actions", num_actions)):
            # numpy integers (gymnasium's Discrete(n).n is np.int64) are accepted as ints.
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        num_states, num_actions = int(num_states), int(num_actions)
        if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or not math.isfinite(init_std) or init_std < 0:
            # a NaN/inf std would silently fill the table with NaN/inf logits
            raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
        self.num_states = num_states
        self.num_actions = num_actions
        self.table = nn.Parameter(torch.randn(num_states, num_actions) * init_std if init_std else torch.zeros(num_states, num_actions))

    def encode(self, obs: Any, info: Mapping[str, Any] | None = None) -> int:
        """The state id of ``obs`` (an int, 0-d array or one-element array)."""
        # int(2.7) would silently truncate a non-integer observation to a valid-looking state id.
        dtype = getattr(obs, "dtype", None)
        if isinstance(obs, (bool, float)) or getattr(dtype, "kind", "") in ("f", "b", "c") or (
                isinstance(obs, torch.Tensor) and (obs.is_floating_point() or obs.dtype == torch.bool)):
            raise TypeError(f"obs must be an integer state id for TabularSoftmaxPolicy, got {obs!r}")
        try:
            s = int(obs)
        except (TypeError, ValueError):
            raise TypeError(f"obs must be an integer state id for TabularSoftmaxPolicy, got {type(obs).__name__}") from None
        if not 0 <= s < self.num_states:
            raise ValueError(f"obs must be a state id in [0, {self.num_states}), got {s}")
        return s

    def collate(self, records: Sequence[int]) -> torch.Tensor:
        """``[S]`` long tensor of state ids."""
        return torch.as_tensor(list(records), dtype=torch.long)

    def logits(self, states: Any) -> torch.Tensor:
        """``[S, num_actions]`` logits ``θ_s`` of the states ``[S]`` (or one state -> ``[num_actions]``)."""
        s = torch.as_tensor(states)
        if s.dtype.is_floating_point or s.dtype == torch.bool:
            raise TypeError(f"states must be integer ids, got dtype {s.dtype}")
        s = s.long()
        if s.numel() and (int(s.min()) < 0 or int(s.max()) >= self.num_states):
            raise ValueError(f"states must lie in [0, {self.num_states}), got {int(s.min())}..{int(s.max())}")
        return self.table[s]

    def extra_repr(self) -> str:
        return f"num_states={self.num_states}, num_actions={self.num_actions}"


# --------------------------------------------------------------------------- log-linear

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` (punctuation and TextWorld's ``-=`` banners dropped)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _bucket(key: str, dim: int) -> int:
    # crc32 rather than hash(): Python's str hash is salted per process, which would break
    # reproducibility and checkpoints.
    return zlib.crc32(key.encode("utf-8")) % dim


@lru_cache(maxsize=65536)
def hash_features(obs: str, command: str, dim: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Hashed sparse features φ(obs, command) of one (observation, command) pair.

    The feature set (words from :func:`tokenize`; every feature is hashed with crc32 into ``dim`` buckets):

    * ``bias`` — 1 for every command (cancels in the softmax; kept so that a pair is never empty);
    * command unigrams ``c:w`` and bigrams ``b:w1_w2`` — what the command *is*;
    * crosses ``x:cw|ow`` of each command word with each distinct observation word — whether the
      command mentions things the observation talks about (``take key`` × ``... a key on the table``).

    Counts are accumulated when two features share a bucket (a collision), so the result is a sparse
    count vector. Observation words are de-duplicated, so long descriptions do not dominate.

    Args:
        obs: observation text. command: one admissible command. dim: number of hash buckets (≥ 1).

    Returns:
        ``(indices, values)``: sorted distinct bucket ids in ``[0, dim)`` and their counts.
    """
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    if not isinstance(obs, str) or not isinstance(command, str):
        raise TypeError(f"obs and command must be str, got {type(obs).__name__} and {type(command).__name__}")
    cw = tokenize(command)
    ow = sorted(set(tokenize(obs)))
    keys = ["bias"]
    keys += [f"c:{w}" for w in cw]
    keys += [f"b:{a}_{b}" for a, b in zip(cw, cw[1:])]
    keys += [f"x:{c}|{o}" for c in dict.fromkeys(cw) for o in ow]
    counts: dict[int, float] = {}
    for k in keys:
        j = _bucket(k, dim)
        counts[j] = counts.get(j, 0.0) + 1.0
    idx = tuple(sorted(counts))
    return idx, tuple(counts[j] for j in idx)


@dataclass
class FeatureBatch:
    """S steps of (observation, commands) pairs in a flat sparse layout for :class:`LogLinearPolicy`.

    Attributes:
        index: ``[F]`` bucket id of each non-zero feature. value: ``[F]`` its count.
        slot: ``[F]`` flat position ``s · max_actions + a`` of the (step, command) it belongs to.
        num_actions: ``[S]`` number of commands of each step. max_actions: ``max(num_actions)``.
    """

    index: torch.Tensor
    value: torch.Tensor
    slot: torch.Tensor
    num_actions: torch.Tensor
    max_actions: int

    def __len__(self) -> int:
        return int(self.num_actions.numel())


class LogLinearPolicy(SoftmaxPolicy):
    """``π(c|o) ∝ exp(w · φ(o, c))`` over the admissible commands ``c`` of the observation ``o``.

    φ is :func:`hash_features` (bag of command words/bigrams and command-word × observation-word
    crosses, hashed into ``num_features`` buckets). The number of actions varies per step: it is the
    number of admissible commands, and ``logits`` pads with ``-inf``.

    Args:
        num_features: number of hash buckets / weights (e.g. 2**14).
    """

    def __init__(self, num_features: int = 2**14):
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        self.num_features = num_features
        self.weight = nn.Parameter(torch.zeros(num_features))

    def encode(self, obs: Any, info: Mapping[str, Any] | None = None, commands: Sequence[str] | None = None):
        """Features of ``obs`` with each command of ``commands`` (default ``info["admissible_commands"]``).

        Returns:
            A tuple of ``(indices, values)`` pairs, one per command (see :func:`hash_features`).
        """
        if commands is None:
            if info is None or "admissible_commands" not in info:
                raise ValueError("LogLinearPolicy.encode needs commands or info['admissible_commands']")
            commands = info["admissible_commands"]
        if isinstance(commands, str) or len(commands) == 0:
            raise ValueError(f"commands must be a non-empty list of str, got {commands!r}")
        if not isinstance(obs, str):
            raise TypeError(f"obs must be a str for LogLinearPolicy, got {type(obs).__name__}")
        return tuple(hash_features(obs, str(c), self.num_features) for c in commands)

    def collate(self, records: Sequence[Sequence[tuple[tuple[int, ...], tuple[float, ...]]]]) -> FeatureBatch:
        """Batch encoded steps into a :class:`FeatureBatch`."""
        n_act = [len(r) for r in records]
        max_a = max(n_act, default=1)
        index, value, slot = [], [], []
        for s, rec in enumerate(records):
            for a, (idx, val) in enumerate(rec):
                index.extend(idx)
                value.extend(val)
                slot.extend([s * max_a + a] * len(idx))
        return FeatureBatch(
            index=torch.as_tensor(index, dtype=torch.long),
            value=torch.as_tensor(value, dtype=torch.float32),
            slot=torch.as_tensor(slot, dtype=torch.long),
            num_actions=torch.as_tensor(n_act, dtype=torch.long),
            max_actions=max_a,
        )

    def logits(self, batch: FeatureBatch) -> torch.Tensor:
        """``[S, max_actions]``: ``z_{s,a} = Σ_j w_j φ_j(o_s, c_a)``, ``-inf`` beyond a step's commands."""
        if not isinstance(batch, FeatureBatch):
            raise TypeError(f"batch must be a FeatureBatch (from collate), got {type(batch).__name__}")
        s, a_max = len(batch), batch.max_actions
        if batch.index.numel() and int(batch.index.max()) >= self.num_features:
            raise ValueError(f"feature index out of range for num_features={self.num_features}")
        flat = torch.zeros(s * a_max, dtype=self.weight.dtype, device=self.weight.device)
        flat = flat.index_add(0, batch.slot, self.weight[batch.index] * batch.value.to(self.weight.dtype))
        z = flat.view(s, a_max)
        valid = torch.arange(a_max).unsqueeze(0) < batch.num_actions.unsqueeze(1)
        return z.masked_fill(~valid, float("-inf"))

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}"
