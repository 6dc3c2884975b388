"""ALFWorld / WebShop / TextWorld (``scaled.envs``) as multi-turn environments inside verl 0.9.1's agent loop.

The episode is the standalone trainer's (:class:`scaled.agent.Episode`: prompt, projection, validity,
environment step, reward), played one turn at a time with answers from verl's LLM server
(verl-agent style, one row per step). The agent loop returns ``list[AgentLoopOutput]``, one per turn;
verl's V1 trainer stores them under the keys ``{uid}_{session_id}_{index}``, which
:mod:`scaled.verl.plugin` reads as (trajectory, step) for EMPG's step-row layout. The episode's
outcome reward ``R = win_reward·won − invalid_penalty·#invalid`` (spec §4) is the ``reward_score``
of the last output (verl copies it onto every output of the session).

Environments. Each agent-loop worker (a Ray actor process) keeps a pool of environments per
(env name, keyword arguments) and reuses them across episodes (:class:`EnvPool`): an episode borrows
one and gives it back; WebShop envs over the same files share one catalogue and index anyway
(docs/webshop.md). Resets and steps run off the event loop (``run_in_executor``), so the worker keeps
serving the other episodes' LLM calls meanwhile: on a thread pool for environments whose
``concurrent_steps`` allows it (WebShop), on one thread per worker for the others (ALFWorld's and
TextWorld's parsers are process-wide objects that are not thread-safe).

Register by importing this module (``VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin,scaled.verl.agent_loop``),
point ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` at ``scaled/verl/config/agent_loops.yaml``
and give each dataset row ``agent_name: empg_text_env`` and ``extra_info: {env, seed, task_index,
env_kwargs, agent}`` (``python -m scaled.verl.make_data`` writes them from the recipe).

:func:`run_episode` is the verl-independent core (tested against the standalone rollout on each
environment, tests/scaled/test_scaled_agent_loop_envs.py); :class:`TextEnvAgentLoop` adds verl's
tokenisation and the LLM server call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from scaled.agent import AgentConfig, Episode

__all__ = ["EnvPool", "agent_config_from_extra", "env_executor", "run_episode"]

#: ``async (prompt_text) -> prompt_ids`` (the chat prompt of one user message).
Tokenize = Callable[[str], Awaitable[list[int]]]
#: ``async (prompt_ids) -> (response_ids, response_text, truncated)``.
Generate = Callable[[list[int]], Awaitable[tuple[list[int], str, bool]]]


def _mapping(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):  # make_data.py stores mappings as JSON (parquet-friendly)
        value = json.loads(value)
    if not hasattr(value, "items"):
        raise ValueError(f"extra_info[{name!r}] must be a mapping (or its JSON), got {value!r}")
    return dict(value)


def agent_config_from_extra(extra: dict) -> AgentConfig:
    """The :class:`AgentConfig` of a dataset row (``extra_info["agent"]``, written by make_data from the recipe).

    A row without ``agent.max_steps`` takes the limit of its ``env_kwargs.max_steps``, else the recipe's
    (``agent.max_steps`` of ``scaled/configs/env/<env>.yaml``, :func:`scaled.config.recipe_max_steps`).
    Only the step layout is possible here (one ``AgentLoopOutput`` per turn).
    """
    fields = _mapping(extra.get("agent"), "agent")
    if "max_steps" not in fields:
        env_kw = _mapping(extra.get("env_kwargs"), "env_kwargs")
        if env_kw.get("max_steps") is not None:
            fields["max_steps"] = env_kw["max_steps"]
        else:
            from scaled.config import recipe_max_steps

            fields["max_steps"] = recipe_max_steps(str(extra.get("env", "alfworld")))
    cfg = AgentConfig(**fields)
    if cfg.layout != "step":
        raise ValueError(f"empg_text_env plays the step layout (one output per turn), got agent.layout={cfg.layout!r}")
    return cfg


class EnvPool:
    """Environments reused across episodes, one free list per (env name, keyword arguments).

    ``borrow`` hands out a free environment (or builds one) and takes it back when the episode ends;
    an environment is used by one episode at a time. Thread- and task-safe.
    """

    def __init__(self):
        self._free: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.created = 0

    @staticmethod
    def _key(name: str, kwargs: dict) -> str:
        return json.dumps([name, kwargs], sort_keys=True, default=str)

    def acquire(self, name: str, kwargs: dict) -> Any:
        """A free environment of ``make_env(name, **kwargs)`` from the pool, or a new one; give it back with
        :meth:`release` (or use :meth:`borrow`)."""
        key = self._key(name, kwargs)
        with self._lock:
            free = self._free.setdefault(key, [])
            if free:
                return free.pop()
        from scaled.envs import make_env

        env = make_env(name, **kwargs)
        with self._lock:
            self.created += 1
        env._empg_pool_key = key
        return env

    def release(self, env: Any) -> None:
        """Return an environment from :meth:`acquire` to its free list (the caller must not use it afterwards)."""
        with self._lock:
            self._free.setdefault(env._empg_pool_key, []).append(env)

    @contextlib.contextmanager
    def borrow(self, name: str, kwargs: dict):
        """Context manager: :meth:`acquire` an environment, :meth:`release` it on exit; an exception inside
        closes it instead (its state is unknown) and propagates."""
        env = self.acquire(name, kwargs)
        try:
            yield env
        except BaseException:
            env.close()  # state unknown after an error: do not hand it out again
            raise
        else:
            self.release(env)

    def close(self) -> None:
        """Close every free environment and empty the pool (borrowed ones are closed by their borrowers)."""
        with self._lock:
            envs = [env for free in self._free.values() for env in free]
            self._free.clear()
        for env in envs:
            env.close()


_EXECUTORS: dict[bool, ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()


def env_executor(env: Any) -> Executor:
    """The executor an environment's resets and steps run on: a shared thread pool when its
    ``concurrent_steps`` allows it, else one thread per process (``EMPG_ENV_THREADS`` threads, default 8)."""
    concurrent = bool(getattr(env, "concurrent_steps", False))
    with _EXECUTORS_LOCK:
        if concurrent not in _EXECUTORS:
            workers = int(os.environ.get("EMPG_ENV_THREADS", "8")) if concurrent else 1
            _EXECUTORS[concurrent] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="empg-env")
        return _EXECUTORS[concurrent]


async def run_episode(env: Any, tokenize: Tokenize, generate: Generate, *, config: AgentConfig,
                      seed: int | None = None, task_index: int | None = None, env_name: str | None = None,
                      max_prompt_tokens: int | None = None, executor: Executor | None = None) -> Episode:
    """Play one episode of a ``scaled.envs`` text environment with an async LLM.

    Args:
        env: a ``scaled.envs.make_env(...)`` environment.
        tokenize: ``async (prompt_text) -> prompt_ids``.
        generate: ``async (prompt_ids) -> (response_ids, response_text, truncated)``.
        config: the episode definition (:class:`scaled.agent.AgentConfig`, step layout).
        seed: passed to ``env.reset`` (the task), unless ``task_index`` picks the task.
        task_index: play this task (``reset(options={"task_index": i})``, validation without replacement).
        env_name: the prompt's environment (default ``env.name``).
        max_prompt_tokens: end the episode before a turn whose prompt is longer (``stop_reason
            "prompt_too_long"``), as the standalone rollout does (verl would cut the prompt instead).
        executor: run ``reset`` and ``step`` there (``run_in_executor``); None: inline.

    Returns:
        The finished :class:`scaled.agent.Episode`, one :class:`scaled.agent.StepRecord` per turn.
    """
    if config.layout != "step":
        raise ValueError(f"run_episode plays the step layout, got config.layout={config.layout!r}")
    loop = asyncio.get_running_loop()

    async def call(fn, *args, **kwargs):
        if executor is None:
            return fn(*args, **kwargs)
        return await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))

    episode = await call(Episode.start, env, seed=seed, config=config, env_name=env_name, task_index=task_index)
    while not episode.done:
        prompt_ids = list(await tokenize(episode.prompt()))
        if max_prompt_tokens is not None and len(prompt_ids) > max_prompt_tokens:
            episode.stop("prompt_too_long")
            break
        response_ids, text, truncated = await generate(prompt_ids)
        await call(episode.advance, text, prompt_ids=prompt_ids, response_ids=list(response_ids),
                   truncated=bool(truncated))
    return episode


try:  # the verl part: only when verl is importable
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
except ImportError:  # pragma: no cover - exercised without verl
    AgentLoopBase = None

if AgentLoopBase is not None:
    from uuid import uuid4

    #: This worker process's environments (each verl agent-loop worker is its own Ray actor process).
    POOL = EnvPool()

    def episode_outputs(episode: Episode) -> list[AgentLoopOutput]:
        """One ``AgentLoopOutput`` per turn; the episode reward is the ``reward_score`` of the last one.

        verl's V1 ``AgentLoopWorkerTQ._agent_loop_postprocess`` copies the last output's
        ``reward_score`` and ``extra_fields["reward_extra_info"]`` onto the earlier outputs, so the
        last output must carry ``reward_extra_info`` (a dict; here the episode's won / #invalid).
        """
        outputs = []
        n_invalid = episode.num_invalid
        for t, s in enumerate(episode.steps):
            last = t == len(episode.steps) - 1
            extra = {"empg_step": t, "won": episode.won, "num_invalid": n_invalid, "turn_scores": [], "tool_rewards": []}
            if last:
                extra["reward_extra_info"] = {"won": float(episode.won), "num_invalid": float(n_invalid)}
            outputs.append(AgentLoopOutput(
                prompt_ids=s.prompt_ids, response_ids=s.response_ids, response_mask=[1] * len(s.response_ids),
                reward_score=episode.reward if last else None, num_turns=2, metrics={}, extra_fields=extra,
            ))
        return outputs

    @register("empg_text_env")
    class TextEnvAgentLoop(AgentLoopBase):
        """verl agent loop: one ``scaled.envs`` episode -> ``list[AgentLoopOutput]`` (one per turn)."""

        async def run(self, sampling_params: dict[str, Any], **kwargs) -> list[AgentLoopOutput]:
            extra = dict(kwargs.get("extra_info") or {})
            env_name = str(extra.get("env", "alfworld"))
            config = agent_config_from_extra(extra)
            response_length = int(self.rollout_config.response_length)
            builder = self.continuous_token_builder
            eos = self.tokenizer.eos_token_id

            loop = asyncio.get_running_loop()

            async def tokenize(prompt: str) -> list[int]:
                # the builder itself (not ct_build_initial_tokens, which would cut a long prompt)
                return await loop.run_in_executor(
                    None, lambda: builder.build_initial_tokens([{"role": "user", "content": prompt}]))

            async def generate(prompt_ids: list[int]):
                out = await self.server_manager.generate(request_id=uuid4().hex, prompt_ids=prompt_ids,
                                                         sampling_params=sampling_params)
                ids = list(out.token_ids)
                ids = ids[:response_length]
                truncated = len(ids) == response_length and ids[-1] != eos  # hit the length limit, no end of turn
                text = await loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
                return ids, text, truncated

            task_index = extra.get("task_index")
            with POOL.borrow(env_name, _mapping(extra.get("env_kwargs"), "env_kwargs")) as env:
                episode = await run_episode(
                    env, tokenize, generate, config=config, env_name=env_name,
                    seed=None if extra.get("seed") is None else int(extra["seed"]),
                    task_index=None if task_index is None else int(task_index),
                    max_prompt_tokens=int(self.rollout_config.prompt_length), executor=env_executor(env))
            return episode_outputs(episode)

    __all__ += ["POOL", "TextEnvAgentLoop", "episode_outputs"]
