"""The LLM agent: prompts, action projection and the one episode definition (turn + reward).

* :mod:`scaled.agent.prompts`: verl-agent style user messages (task, observation, history, admissible actions).
* :mod:`scaled.agent.projection`: answer text → (action, valid); the one definition of an invalid answer.
* :mod:`scaled.agent.tokens`: ChatML token ids of a turn.
* :mod:`scaled.agent.episode`: :class:`Episode` (``prompt()`` / ``advance(answer)``), :class:`AgentConfig`,
  the step reward. The standalone rollout and the verl agent loop both drive it.
"""

from scaled.agent.episode import LAYOUTS, AgentConfig, Episode, StepRecord, step_reward
from scaled.agent.projection import project_action
from scaled.agent.prompts import ENVIRONMENT_DESCRIPTIONS, build_prompt, followup_prompt, format_history
from scaled.agent.tokens import assistant_header_ids, chat_prompt_ids, followup_turn_ids

__all__ = [
    "AgentConfig",
    "ENVIRONMENT_DESCRIPTIONS",
    "Episode",
    "LAYOUTS",
    "StepRecord",
    "assistant_header_ids",
    "build_prompt",
    "chat_prompt_ids",
    "followup_prompt",
    "followup_turn_ids",
    "format_history",
    "project_action",
    "step_reward",
]
