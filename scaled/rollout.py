"""Batched multi-turn rollouts of an LLM policy: N episodes (:class:`scaled.agent.Episode`) in lock step.

One rollout runs ``N = n_tasks · G`` environments: every environment of group ``j`` is reset with
the same seed (the same task), so GRPO can compare its G trajectories. At each turn the active
episodes' prompts are tokenised and generated as one batch (:meth:`scaled.policy.Policy.generate`),
and each decoded answer goes back to its episode (:meth:`scaled.agent.Episode.advance`), which does
the projection, the environment step and the reward. The episode definition is shared with the
verl agent loop (:mod:`scaled.verl.agent_loop`).

Context per turn (``AgentConfig.layout``):

* ``"step"`` (verl-agent): every turn is a fresh one-message chat (:func:`scaled.agent.build_prompt`).
* ``"concat"`` (RAGEN / multi-turn chat): the context is the conversation so far; later user turns
  only carry the new observation (:func:`scaled.agent.followup_prompt`). ``max_context_tokens``
  ends an episode whose next context would not fit.

:mod:`scaled.batch` lays the episodes out for training (one row per step, or one concatenated row
per trajectory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from scaled.agent import AgentConfig, Episode, chat_prompt_ids, followup_turn_ids

__all__ = ["RolloutConfig", "collect_rollouts", "rollout_metrics"]


@dataclass
class RolloutConfig:
    """How answers are generated (the episode itself is :class:`scaled.agent.AgentConfig`)."""

    max_new_tokens: int = 512
    """Response length per turn (paper: 512)."""
    max_context_tokens: int | None = None
    """concat layout: end the episode once its conversation would exceed this many tokens (None: no limit)."""
    greedy: bool = False
    """Arg-max decoding instead of sampling (evaluation)."""

    def __post_init__(self) -> None:
        for name, low, allow_none in (("max_new_tokens", 1, False), ("max_context_tokens", 1, True)):
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


def collect_rollouts(
    policy,
    envs: Sequence[Any],
    *,
    seeds: Sequence[int],
    groups: Sequence[int],
    agent: AgentConfig,
    config: RolloutConfig,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> list[Episode]:
    """Play one episode in each environment, batching the generation across them.

    Args:
        policy: a :class:`scaled.policy.Policy` (``tokenizer``, ``eos_id``, ``generate``).
        envs: N text environments (``scaled.envs`` interface).
        seeds: N reset seeds (equal within a group: the same task).
        groups: N group ids (the GRPO groups).
        agent: the episode definition (:class:`scaled.agent.AgentConfig`).
        config: a :class:`RolloutConfig`.
        generator: torch RNG for sampling.
        progress: show a tqdm bar over turns.

    Returns:
        N :class:`scaled.agent.Episode` in the order of ``envs``.
    """
    n = len(envs)
    if n == 0 or len(seeds) != n or len(groups) != n:
        raise ValueError(f"envs, seeds and groups must be non-empty and of equal length, got {n}, {len(seeds)}, {len(groups)}")
    tok, eos = policy.tokenizer, policy.eos_id
    episodes = [Episode.start(env, seed=int(seeds[i]), config=agent, group=int(groups[i]), index=i)
                for i, env in enumerate(envs)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=agent.max_steps, desc="rollout turns", leave=False)
    for _ in range(agent.max_steps):
        active = [e for e in episodes if not e.done]
        if not active:
            break
        turns = [followup_turn_ids(tok, e.prompt()) if e.is_followup else chat_prompt_ids(tok, e.prompt())
                 for e in active]
        if agent.layout == "concat":
            contexts = [_context(e, eos) + turn for e, turn in zip(active, turns)]
            if config.max_context_tokens is not None:
                fits = [len(c) + config.max_new_tokens <= config.max_context_tokens for c in contexts]
                for e, ok in zip(active, fits):
                    if not ok:
                        e.stop()
                active = [e for e, ok in zip(active, fits) if ok]
                turns = [t for t, ok in zip(turns, fits) if ok]
                contexts = [c for c, ok in zip(contexts, fits) if ok]
                if not active:
                    break
        else:
            contexts = turns
        gen = policy.generate(contexts, max_new_tokens=config.max_new_tokens, generator=generator, greedy=config.greedy)
        for j, e in enumerate(active):
            resp = gen.response_ids[j]
            e.advance(tok.decode(resp, skip_special_tokens=True),
                      prompt_ids=contexts[j] if agent.layout == "step" else [], turn_ids=turns[j], response_ids=resp,
                      logprobs=gen.logprobs[j], entropies=gen.entropies[j], truncated=gen.truncated[j])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
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
        f"{prefix}/response_length": sum(len(s.response_ids) for s in steps) / per_step,
        f"{prefix}/num_trajectories": float(n),
        f"{prefix}/num_steps": float(len(steps)),
    }
    for task_type in sorted({e.task_type for e in episodes}):
        sel = [e for e in episodes if e.task_type == task_type]
        out[f"success/{task_type}"] = sum(e.won for e in sel) / len(sel)
    return out
