"""ALFWorld / WebShop (``scaled.envs``) as multi-turn environments inside verl 0.9.1's agent loop.

The episode is the standalone trainer's (:class:`scaled.agent.Episode`: prompt, projection,
validity, environment step, reward), played one turn at a time with answers from verl's LLM server
(verl-agent style, one row per step). The agent loop returns ``list[AgentLoopOutput]``, one per turn;
verl's V1 trainer stores them under the keys ``{uid}_{session_id}_{index}``, which
:mod:`scaled.verl.plugin` reads as (trajectory, step) for EMPG's step-row layout. The episode's
outcome reward ``R = win_reward·won − invalid_penalty·#invalid`` (spec §4) is the ``reward_score``
of the last output (verl copies it onto every output of the session).

Register by importing this module (``VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin,scaled.verl.agent_loop``),
point ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` at
``scaled/verl/config/agent_loops.yaml`` and give each dataset row ``agent_name: empg_text_env`` and
``extra_info: {env: alfworld|webshop, seed: int, env_kwargs: {...}, agent: {AgentConfig fields}}``
(``scaled/verl/make_data.py`` writes them).

:func:`run_episode` is the verl-independent core (it runs in the main environment and is tested
against the standalone rollout); :class:`TextEnvAgentLoop` only adds verl's tokenisation
(``ct_build_initial_tokens``) and the LLM server call (``server_manager.generate``).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from scaled.agent import AgentConfig, Episode

__all__ = ["run_episode", "agent_config_from_extra", "MAX_STEPS"]

#: Paper setting (spec §6): ALFWorld 50 steps, WebShop 15 steps (default of ``agent.max_steps``).
MAX_STEPS = {"alfworld": 50, "webshop": 15, "textworld": 50}

#: ``async (prompt_text) -> (prompt_ids, response_ids, response_text)``.
Generate = Callable[[str], Awaitable[tuple[list[int], list[int], str]]]


def _mapping(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):  # make_data.py stores mappings as JSON (parquet-friendly)
        value = json.loads(value)
    if not hasattr(value, "items"):
        raise ValueError(f"extra_info[{name!r}] must be a mapping (or its JSON), got {value!r}")
    return dict(value)


def agent_config_from_extra(extra: dict) -> AgentConfig:
    """The :class:`AgentConfig` of a dataset row: ``extra_info["agent"]``, ``max_steps`` by env by default.

    Only the step layout is possible here (one ``AgentLoopOutput`` per turn).
    """
    fields = _mapping(extra.get("agent"), "agent")
    env_name = str(extra.get("env", "alfworld"))
    if "max_steps" not in fields:
        fields["max_steps"] = int(extra.get("max_steps") or MAX_STEPS.get(env_name, 50))
    cfg = AgentConfig(**fields)
    if cfg.layout != "step":
        raise ValueError(f"empg_text_env plays the step layout (one output per turn), got agent.layout={cfg.layout!r}")
    return cfg


async def run_episode(env: Any, generate: Generate, *, config: AgentConfig, seed: int | None = None,
                      env_name: str | None = None) -> Episode:
    """Play one episode of a ``scaled.envs`` text environment with an async LLM.

    Args:
        env: a ``scaled.envs.make_env(...)`` environment.
        generate: ``async (prompt_text) -> (prompt_ids, response_ids, response_text)``.
        config: the episode definition (:class:`scaled.agent.AgentConfig`, step layout).
        seed: passed to ``env.reset`` (the task).
        env_name: the prompt's environment (default ``env.name``).

    Returns:
        The finished :class:`scaled.agent.Episode`, one :class:`scaled.agent.StepRecord` per turn.
    """
    if config.layout != "step":
        raise ValueError(f"run_episode plays the step layout, got config.layout={config.layout!r}")
    episode = Episode.start(env, seed=seed, config=config, env_name=env_name)
    while not episode.done:
        prompt_ids, response_ids, text = await generate(episode.prompt())
        episode.advance(text, prompt_ids=list(prompt_ids), response_ids=list(response_ids))
    return episode


try:  # the verl part: only when verl is importable
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
except ImportError:  # pragma: no cover - exercised without verl
    AgentLoopBase = None

if AgentLoopBase is not None:
    from uuid import uuid4

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

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.response_length = self.rollout_config.response_length

        async def run(self, sampling_params: dict[str, Any], **kwargs) -> list[AgentLoopOutput]:
            from scaled.envs import make_env

            extra = dict(kwargs.get("extra_info") or {})
            env_name = str(extra.get("env", "alfworld"))
            config = agent_config_from_extra(extra)
            env = make_env(env_name, **_mapping(extra.get("env_kwargs"), "env_kwargs"))

            async def generate(prompt: str):
                prompt_ids = await self.ct_build_initial_tokens([{"role": "user", "content": prompt}])
                out = await self.server_manager.generate(request_id=uuid4().hex, prompt_ids=prompt_ids,
                                                         sampling_params=sampling_params)
                ids = list(out.token_ids)[: self.response_length]
                text = await self.loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
                return prompt_ids, ids, text

            try:
                episode = await run_episode(env, generate, config=config, seed=extra.get("seed"), env_name=env_name)
            finally:
                env.close()
            return episode_outputs(episode)

    __all__ += ["TextEnvAgentLoop", "episode_outputs"]
