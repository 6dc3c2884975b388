"""The text-environment interface shared by ALFWorld, WebShop and TextWorld, and `make_env`.

Every environment is a multi-turn text game:

- ``reset(seed=None, options=None) -> (observation: str, info: dict)``
- ``step(action: str) -> (observation: str, reward: float, terminated: bool, truncated: bool, info: dict)``

``info`` always holds

- ``"admissible_commands"``: ``list[str]``, the actions the environment accepts now;
- ``"won"``: ``bool``, whether the task is solved;
- ``"invalid_action"``: ``bool``, whether the last action was not admissible (``False`` after reset);
- ``"task"``: ``str``, the goal text;
- ``"task_type"``: ``str``, the task family (ALFWorld's six types; ``"webshop"``; ``"textworld"``).

Invalid actions never raise: they leave the state unchanged (or do what the native engine does with
them) and are flagged in ``info``. ``reward`` is the environment's *native* reward (1.0 on the winning
step for ALFWorld and TextWorld, the WebShop score in [0, 1] at Buy Now); the trainer applies the
verl-agent shaping (10 * won, -0.1 per invalid action) itself.

Episodes with the same ``seed`` get the same task, which is how the rollout forms GRPO groups.

Tasks can also be enumerated, to play every task of a split exactly once (evaluation without
replacement): ``env.num_tasks`` is the number of tasks and ``reset(options={"task_index": i})``
starts task ``i`` (``0 <= i < num_tasks``; the environment-specific names ``game_index`` /
``goal_index`` work too). ALFWorld and WebShop take ``split=`` for the benchmarks' own splits
(``SPLITS``).
"""

from __future__ import annotations

import abc
import numbers
import os
import random
import warnings
from typing import Any, Sequence

INFO_KEYS = ("admissible_commands", "won", "invalid_action", "task", "task_type")
"""Keys that every environment puts in ``info`` after ``reset`` and ``step``."""


class TextEnv(abc.ABC):
    """A multi-turn text environment (see the module docstring for the contract)."""

    name: str = "text"
    """Registry name of the environment ("alfworld", "webshop", "textworld")."""

    max_steps: int = 50
    """Steps after which an episode is truncated."""

    concurrent_steps: bool = False
    """Whether ``reset``/``step`` of *different* instances may run on different threads at once (a rollout
    then steps them on a thread pool). False where the engine shares module-level state: ALFWorld's and
    TextWorld's parsers (tatsu, in ``textworld``) are process-wide objects that are not thread-safe."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode; returns ``(observation, info)``. Same ``seed`` -> same task."""

    @abc.abstractmethod
    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; returns ``(observation, reward, terminated, truncated, info)``."""

    def close(self) -> None:
        """Release resources (engines, subprocesses). Safe to call twice."""

    _steps: int = 0
    """Steps of the current episode (``reset`` sets it to 0, :meth:`_count_step` counts them)."""

    def _check_running(self, started: bool, terminated: bool) -> None:
        """For ``step``: a RuntimeError unless an episode was ``started`` by ``reset``, has not ``terminated``
        and has not reached ``max_steps``."""
        if not started:
            raise RuntimeError(f"{type(self).__name__}.step called before reset")
        if terminated or self._steps >= self.max_steps:
            raise RuntimeError(f"{type(self).__name__}.step called after the episode ended; call reset")

    def _count_step(self, terminated: bool) -> bool:
        """Count one step; returns ``truncated``: ``max_steps`` reached by an episode that did not terminate."""
        self._steps += 1
        return not terminated and self._steps >= self.max_steps

    @property
    def num_tasks(self) -> int:
        """Number of distinct tasks; ``reset(options={"task_index": i})`` plays task ``i``."""
        raise NotImplementedError(f"{type(self).__name__} does not enumerate its tasks")

    def _episode_index(self, count: int, seed: int | None, options: dict | None, key: str) -> int:
        """Task index for ``reset``: ``options["task_index"]`` or ``options[key]``, else drawn from
        ``seed``, else from ``self._rng``."""
        options = options or {}
        for name in ("task_index", key):
            if name in options:
                index = options[name]
                if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < count:
                    raise ValueError(f"options[{name!r}]: expected an int 0 <= i < {count}, got {index!r}")
                return int(index)
        if seed is not None:
            return random.Random(seed).randrange(count)
        return self._rng.randrange(count)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def resolve_data_path(data_path: str | os.PathLike | None, data_dir: str | os.PathLike | None,
                      owner: str) -> str | os.PathLike | None:
    """The data location from ``data_path``, or from the deprecated ``data_dir`` (with a warning).

    Raises:
        ValueError: both are given.
    """
    if data_dir is None:
        return data_path
    if data_path is not None:
        raise ValueError(f"{owner}: pass data_path only (data_dir is its deprecated name), got both "
                         f"data_path={str(data_path)!r} and data_dir={str(data_dir)!r}")
    warnings.warn(f"{owner}: data_dir is deprecated, use data_path", DeprecationWarning, stacklevel=3)
    return data_dir


def normalize_command(action: str) -> str:
    """Canonical form for comparing an action with the admissible ones: lower case, single spaces."""
    return " ".join(str(action).strip().lower().split())


def match_admissible(action: str, admissible: Sequence[str]) -> str | None:
    """The admissible command that ``action`` names (ignoring case and repeated spaces), else ``None``."""
    return {normalize_command(c): c for c in admissible}.get(normalize_command(action))


ENV_NAMES = ("alfworld", "webshop", "textworld")


def make_env(name: str, **kwargs: Any) -> TextEnv:
    """Build a text environment by name.

    Args:
        name: one of ``"alfworld"``, ``"webshop"``, ``"textworld"``.
        **kwargs: passed to the environment class (`AlfWorldEnv`, `WebShopEnv`, `TextWorldEnv`).

    Returns:
        A `TextEnv`.

    Raises:
        ValueError: if ``name`` is unknown.
    """
    if not isinstance(name, str) or name.lower() not in ENV_NAMES:
        raise ValueError(f"make_env: unknown environment name {name!r}; expected one of {list(ENV_NAMES)}")
    name = name.lower()
    if name == "alfworld":
        from scaled.envs.alfworld import AlfWorldEnv

        return AlfWorldEnv(**kwargs)
    if name == "webshop":
        from scaled.envs.webshop import WebShopEnv

        return WebShopEnv(**kwargs)
    from scaled.envs.textworld import TextWorldEnv

    return TextWorldEnv(**kwargs)
