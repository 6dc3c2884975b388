"""ALFWorld / WebShop (``scaled.envs``) as multi-turn environments inside verl 0.9.1's agent loop.

verl-agent style, one row per step: every turn gets a fresh prompt (task, last ``history_length``
(observation, action) pairs, admissible actions; :func:`scaled.prompts.build_prompt`), the model
answers ``<think>…</think><action>…</action>``, :func:`scaled.projection.project_action` extracts the
action, the environment steps. The agent loop returns ``list[AgentLoopOutput]``, one per turn; verl's
V1 trainer stores them under the keys ``{uid}_{session_id}_{index}``, which
:mod:`scaled.verl_plugin` reads as (trajectory, step) for EMPG's step-row layout. The episode
reward ``10 · won − 0.1 · (#invalid actions)`` (spec §4) is the ``reward_score`` of the last output
(verl copies it onto every output of the session).

Register by importing this module (``VERL_USE_EXTERNAL_MODULES=scaled.verl_plugin,scaled.verl_agent_loop``),
point ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` at
``scaled/verl/config/agent_loops.yaml`` and give each dataset row ``agent_name: empg_text_env`` and
``extra_info: {env: alfworld|webshop, seed: int, env_kwargs: {...}}``.

:func:`run_episode` is the verl-independent core (tested on CPU with a real environment);
:class:`TextEnvAgentLoop` only adds verl's tokenisation (``ct_build_initial_tokens``) and the LLM
server call (``server_manager.generate``), which need a GPU rollout server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from uuid import uuid4

from scaled.projection import project_action
from scaled.prompts import build_prompt

__all__ = ["StepRecord", "EpisodeResult", "run_episode", "episode_reward", "MAX_STEPS"]

#: Paper setting (spec §6): ALFWorld 50 steps, WebShop 15 steps.
MAX_STEPS = {"alfworld": 50, "webshop": 15, "textworld": 50}
WIN_REWARD, INVALID_PENALTY = 10.0, 0.1


@dataclass
class StepRecord:
    """One turn: the prompt tokens, the generated tokens and what the environment did with them."""

    prompt_ids: list[int]
    response_ids: list[int]
    action: str
    valid: bool
    reward: float


@dataclass
class EpisodeResult:
    steps: list[StepRecord] = field(default_factory=list)
    won: bool = False
    num_invalid: int = 0

    @property
    def reward(self) -> float:
        return episode_reward(self.won, self.num_invalid)


def episode_reward(won: bool, num_invalid: int) -> float:
    """verl-agent episode reward (spec §4): ``10 · won − 0.1 · #invalid``."""
    return WIN_REWARD * float(bool(won)) - INVALID_PENALTY * int(num_invalid)


Policy = Callable[[str], Awaitable[tuple[list[int], list[int], str]]]


async def run_episode(env: Any, policy: Policy, *, env_name: str, seed: int | None = None,
                      max_steps: int | None = None, history_length: int = 2) -> EpisodeResult:
    """Play one episode of a ``scaled.envs`` text environment with an async policy.

    Args:
        env: a ``scaled.envs.make_env(...)`` environment (``reset(seed)``, ``step(action)``).
        policy: ``async (prompt_text) -> (prompt_ids, response_ids, response_text)``.
        env_name: ``alfworld``, ``webshop`` or ``textworld`` (prompt wording, default step limit).
        seed: passed to ``env.reset``.
        max_steps: turn limit (default :data:`MAX_STEPS`).
        history_length: (observation, action) pairs shown in each prompt (verl-agent: 2).

    Returns:
        An :class:`EpisodeResult`, one :class:`StepRecord` per turn.
    """
    if env_name not in MAX_STEPS:
        raise ValueError(f"env_name must be one of {sorted(MAX_STEPS)}, got {env_name!r}")
    limit = MAX_STEPS[env_name] if max_steps is None else int(max_steps)
    if limit < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
    obs, info = env.reset(seed=seed)
    task = str(info.get("task") or info.get("objective") or info.get("instruction") or obs)
    result = EpisodeResult()
    history: list[tuple[str, str]] = []
    for _ in range(limit):
        admissible = list(info.get("admissible_commands") or [])
        prompt = build_prompt(env_name=env_name, task=task, observation=obs, admissible=admissible,
                              history=history, history_length=history_length)
        prompt_ids, response_ids, text = await policy(prompt)
        action, valid = project_action(text, admissible, lowercase=(env_name != "webshop"))
        next_obs, reward, terminated, truncated, info = env.step(action)
        valid = valid and not bool(info.get("invalid_action", False))
        result.num_invalid += int(not valid)
        result.steps.append(StepRecord(list(prompt_ids), list(response_ids), action, valid, float(reward)))
        history.append((obs, action))
        obs = next_obs
        if info.get("won"):
            result.won = True
        if terminated or truncated:
            break
    return result


try:  # the verl part: only when verl is importable
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
except ImportError:  # pragma: no cover - exercised without verl
    AgentLoopBase = None

if AgentLoopBase is not None:

    def episode_outputs(ep: EpisodeResult) -> list[AgentLoopOutput]:
        """One ``AgentLoopOutput`` per turn; the episode reward is the ``reward_score`` of the last one.

        verl's V1 ``AgentLoopWorkerTQ._agent_loop_postprocess`` copies the last output's
        ``reward_score`` and ``extra_fields["reward_extra_info"]`` onto the earlier outputs, so the
        last output must carry ``reward_extra_info`` (a dict; here the episode's won / #invalid).
        """
        outputs = []
        for t, s in enumerate(ep.steps):
            last = t == len(ep.steps) - 1
            extra = {"empg_step": t, "won": ep.won, "num_invalid": ep.num_invalid, "turn_scores": [], "tool_rewards": []}
            if last:
                extra["reward_extra_info"] = {"won": float(ep.won), "num_invalid": float(ep.num_invalid)}
            outputs.append(AgentLoopOutput(
                prompt_ids=s.prompt_ids, response_ids=s.response_ids, response_mask=[1] * len(s.response_ids),
                reward_score=ep.reward if last else None, num_turns=2, metrics={}, extra_fields=extra,
            ))
        return outputs

    @register("empg_text_env")
    class TextEnvAgentLoop(AgentLoopBase):
        """verl agent loop: one ``scaled.envs`` episode -> ``list[AgentLoopOutput]`` (one per turn)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.prompt_length = self.rollout_config.prompt_length
            self.response_length = self.rollout_config.response_length

        async def run(self, sampling_params: dict[str, Any], **kwargs) -> list[AgentLoopOutput]:
            from scaled.envs import make_env

            extra = dict(kwargs.get("extra_info") or {})
            env_name = str(extra.get("env", "alfworld"))
            env_kwargs = extra.get("env_kwargs") or {}
            if isinstance(env_kwargs, str):  # make_data.py stores it as JSON (parquet-friendly)
                env_kwargs = json.loads(env_kwargs)
            env = make_env(env_name, **dict(env_kwargs))

            async def policy(prompt: str):
                prompt_ids = await self.ct_build_initial_tokens([{"role": "user", "content": prompt}])
                out = await self.server_manager.generate(request_id=uuid4().hex, prompt_ids=prompt_ids,
                                                         sampling_params=sampling_params)
                ids = list(out.token_ids)[: self.response_length]
                text = await self.loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
                return prompt_ids, ids, text

            try:
                ep = await run_episode(env, policy, env_name=env_name, seed=extra.get("seed"),
                                       max_steps=extra.get("max_steps"),
                                       history_length=int(extra.get("history_length", 2)))
            finally:
                env.close()
            return episode_outputs(ep)

    __all__ += ["TextEnvAgentLoop", "episode_outputs"]


def _run(coro):  # small helper for scripts/tests
    return asyncio.run(coro)
