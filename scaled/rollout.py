"""Batched multi-turn rollouts of an LLM policy: N episodes (:class:`scaled.agent.Episode`) in lock step.

One rollout runs ``N = n_tasks · G`` environments: every environment of group ``j`` is reset with
the same seed (the same task), so GRPO can compare its G trajectories. At each turn the active
episodes' prompts are tokenised and generated as one batch (:meth:`scaled.policy.Policy.generate`),
and each decoded answer goes back to its episode (:meth:`scaled.agent.Episode.advance`), which does
the projection, the environment step and the reward; the environments of a turn are stepped
concurrently on a thread pool (``RolloutConfig.env_workers``). The episode definition is shared
with the verl agent loop (:mod:`scaled.verl.agent_loop`). The caller owns the environments (the
trainer keeps one pool of ``n_tasks · G`` for the whole run).

:func:`play_tasks` plays every task of a list once (``reset(options={"task_index": i})``): the
evaluation and the validation without replacement.

Context per turn (``AgentConfig.layout``):

* ``"step"`` (verl-agent): every turn is a fresh one-message chat (:func:`scaled.agent.build_prompt`).
* ``"concat"`` (RAGEN / multi-turn chat): the context is the conversation so far; later user turns
  only carry the new observation (:func:`scaled.agent.followup_prompt`). ``max_context_tokens``
  ends an episode whose next context would not fit.

In both layouts ``max_prompt_tokens`` ends an episode whose next prompt (the context a turn is
generated from) is longer than the limit.

:mod:`scaled.batch` lays the episodes out for training (one row per step, or one concatenated row
per trajectory).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from scaled.agent import AgentConfig, Episode, chat_prompt_ids, followup_turn_ids

__all__ = ["RolloutConfig", "collect_rollouts", "play_tasks", "rollout_metrics"]


@dataclass
class RolloutConfig:
    """How answers are generated (the episode itself is :class:`scaled.agent.AgentConfig`)."""

    max_new_tokens: int = 512
    """Response length per turn (paper: 512). A longer answer is cut there (``truncated``) and trained on as
    it is, like verl does (no overlong filtering); its projection usually finds no ``</action>``: invalid."""
    max_prompt_tokens: int | None = None
    """Longest context a turn may be generated from (verl ``data.max_prompt_length``; verl-agent: 2048 for
    ALFWorld, 4096 for WebShop). An episode whose next prompt is longer ends before that turn
    (``stop_reason="prompt_too_long"``, logged as ``rollout/prompt_too_long_rate``); None: no limit."""
    max_context_tokens: int | None = None
    """concat layout: end the episode once its conversation would exceed this many tokens (None: no limit)."""
    greedy: bool = False
    """Arg-max decoding instead of sampling (evaluation)."""
    env_workers: int = 8
    """Threads that reset and step the active environments of a turn concurrently (1: one after the other),
    for environments whose ``concurrent_steps`` allows it (WebShop: the search and the reward run in numpy and
    rapidfuzz). Every environment is stepped once per turn whatever the order, so results do not depend on it."""

    def __post_init__(self) -> None:
        for name, low, allow_none in (("max_new_tokens", 1, False), ("max_prompt_tokens", 1, True),
                                      ("max_context_tokens", 1, True), ("env_workers", 1, False)):
            value = getattr(self, name)
            if value is None and allow_none:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"rollout.{name} must be an int >= {low}{' or null' if allow_none else ''}, "
                                 f"got {value!r}")


def _context(episode: Episode, eos_id: int) -> list[int]:
    """The conversation of a concat-layout episode so far: ``turn_0 resp_0 turn_1 resp_1 …`` (a truncated
    response is closed with ``eos_id``, as :func:`scaled.batch.concatenated_rows` lays it out)."""
    ids: list[int] = []
    for s in episode.steps:
        ids += s.turn_ids + s.response_ids + ([eos_id] if s.truncated else [])
    return ids


def _map(pool: ThreadPoolExecutor | None, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]``, on the thread pool when there is one (results in order; the first error raised)."""
    if pool is None or len(items) < 2:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def collect_rollouts(
    policy,
    envs: Sequence[Any],
    *,
    seeds: Sequence[int | None],
    groups: Sequence[int],
    agent: AgentConfig,
    config: RolloutConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
    task_indices: Sequence[int] | None = None,
) -> list[Episode]:
    """Play one episode in each environment, batching the generation across them.

    Each turn generates the active episodes' answers as one batch, then steps their environments, on
    ``config.env_workers`` threads when every environment's ``concurrent_steps`` allows it (each one is
    stepped by one thread only; the episodes come back in order, whatever the threads' timing).

    Args:
        policy: a :class:`scaled.policy.Policy` (``tokenizer``, ``eos_id``, ``generate``).
        envs: N text environments (``scaled.envs`` interface), e.g. the trainer's pool.
        seeds: N reset seeds (equal within a group: the same task).
        groups: N group ids (the GRPO groups).
        agent: the episode definition (:class:`scaled.agent.AgentConfig`).
        config: a :class:`RolloutConfig`.
        generator: torch RNG for sampling.
        progress: show a tqdm bar over turns.
        task_indices: N task indices (``reset(options={"task_index": i})``) instead of the seeds' draw.

    Returns:
        N :class:`scaled.agent.Episode` in the order of ``envs``.
    """
    n = len(envs)
    if n == 0 or len(seeds) != n or len(groups) != n:
        raise ValueError(f"envs, seeds and groups must be non-empty and of equal length, got {n}, {len(seeds)}, {len(groups)}")
    if task_indices is not None and len(task_indices) != n:
        raise ValueError(f"task_indices: expected {n} (one per env), got {len(task_indices)}")
    tok, eos = policy.tokenizer, policy.eos_id
    # Threads only for environments that allow it (WebShop); ALFWorld/TextWorld step one after the other.
    workers = min(config.env_workers, n) if all(getattr(env, "concurrent_steps", False) for env in envs) else 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="env") if workers > 1 else None
    bar = None
    try:
        def start(i: int) -> Episode:
            return Episode.start(envs[i], seed=seeds[i], config=agent, group=int(groups[i]), index=i,
                                 task_index=None if task_indices is None else task_indices[i])

        episodes = _map(pool, start, range(n))
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=agent.max_steps, desc="rollout turns", leave=False)
        for _ in range(agent.max_steps):
            active = [e for e in episodes if not e.done]
            if not active:
                break
            turns = [followup_turn_ids(tok, e.prompt()) if e.is_followup else chat_prompt_ids(tok, e.prompt())
                     for e in active]
            contexts = [_context(e, eos) + t for e, t in zip(active, turns)] if agent.layout == "concat" else turns
            fits = [True] * len(active)
            for j, (e, c) in enumerate(zip(active, contexts)):
                if config.max_prompt_tokens is not None and len(c) > config.max_prompt_tokens:
                    e.stop("prompt_too_long")
                    fits[j] = False
                elif (agent.layout == "concat" and config.max_context_tokens is not None
                      and len(c) + config.max_new_tokens > config.max_context_tokens):
                    e.stop("context_too_long")
                    fits[j] = False
            if not all(fits):
                active = [e for e, ok in zip(active, fits) if ok]
                turns = [t for t, ok in zip(turns, fits) if ok]
                contexts = [c for c, ok in zip(contexts, fits) if ok]
                if not active:
                    break
            gen = policy.generate(contexts, max_new_tokens=config.max_new_tokens, generator=generator,
                                  greedy=config.greedy)
            texts = [tok.decode(r, skip_special_tokens=True) for r in gen.response_ids]

            def advance(j: int) -> None:
                active[j].advance(texts[j], prompt_ids=contexts[j] if agent.layout == "step" else [],
                                  turn_ids=turns[j], response_ids=gen.response_ids[j], logprobs=gen.logprobs[j],
                                  entropies=None if gen.entropies is None else gen.entropies[j],
                                  truncated=gen.truncated[j])

            _map(pool, advance, range(len(active)))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown(wait=True)
    return episodes


def play_tasks(
    policy,
    envs: Sequence[Any],
    task_indices: Sequence[int],
    *,
    agent: AgentConfig,
    config: RolloutConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> list[Episode]:
    """Play each task of ``task_indices`` once (evaluation without replacement), ``len(envs)`` at a time.

    Returns:
        One :class:`scaled.agent.Episode` per task index, in the given order (``episode.task_index`` set).
    """
    if not envs:
        raise ValueError("envs: expected at least one environment")
    episodes: list[Episode] = []
    for lo in range(0, len(task_indices), len(envs)):
        chunk = [int(i) for i in task_indices[lo : lo + len(envs)]]
        episodes += collect_rollouts(policy, envs[: len(chunk)], seeds=[None] * len(chunk),
                                     groups=list(range(lo, lo + len(chunk))), agent=agent, config=config,
                                     generator=generator, progress=progress, task_indices=chunk)
    return episodes


def rollout_metrics(episodes: Sequence[Episode], prefix: str = "rollout") -> dict[str, float]:
    """Success (overall and per task type), score, episode length, invalid-answer and env-invalid rates."""
    n = len(episodes)
    steps = [s for e in episodes for s in e.steps]
    per_step = max(1, len(steps))
    out = {
        "charts/success_rate": sum(e.won for e in episodes) / n,
        "charts/score": sum(e.reward for e in episodes) / n,
        "charts/env_return": sum(e.env_return for e in episodes) / n,
        "charts/episode_length": sum(e.length for e in episodes) / n,
        f"{prefix}/invalid_answer_rate": sum(not s.valid for s in steps) / per_step,
        f"{prefix}/env_invalid_action_rate": sum(s.env_invalid for s in steps) / per_step,
        f"{prefix}/truncated_response_rate": sum(s.truncated for s in steps) / per_step,
        f"{prefix}/prompt_too_long_rate": sum(e.stop_reason == "prompt_too_long" for e in episodes) / n,
        f"{prefix}/response_length": sum(len(s.response_ids) for s in steps) / per_step,
        f"{prefix}/num_trajectories": float(n),
        f"{prefix}/num_steps": float(len(steps)),
    }
    for task_type in sorted({e.task_type for e in episodes}):
        sel = [e for e in episodes if e.task_type == task_type]
        out[f"success/{task_type}"] = sum(e.won for e in sel) / len(sel)
    return out
