"""verl-agent style prompts: task, current observation, the last n steps, admissible actions.

Each step the agent gets one fresh prompt (verl-agent processes steps independently):

    You are an expert agent operating in {environment}. Your task is to: {task}
    Prior to this step, you have already taken {t} step(s). Below are the most recent {n}
    observations and the corresponding actions you took: [Observation 1: '…', Action 1: '…'] …
    You are now at step {t+1} and your current observation is: {observation}
    Your admissible actions of the current situation are: ['…', '…'].
    Now it's your turn to take an action. … <think> </think> … <action> </action> tags.

(wording after verl-agent's ``ALFWORLD_TEMPLATE`` / ``WEBSHOP_TEMPLATE``). At step 0 the history
sentences are left out (verl-agent's ``*_TEMPLATE_NO_HIS``). For the concatenated-rows layout the
follow-up turns are short (:func:`followup_prompt`): the history is already in the conversation.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["ENVIRONMENT_DESCRIPTIONS", "build_prompt", "followup_prompt", "format_history", "ANSWER_INSTRUCTION"]

#: How each environment is introduced ("You are an expert agent operating in ...").
ENVIRONMENT_DESCRIPTIONS = {
    "alfworld": "the ALFRED Embodied Environment",
    "webshop": "the WebShop e-commerce environment",
    "textworld": "a TextWorld text adventure",
}

ANSWER_INSTRUCTION = (
    "Now it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning process MUST be "
    "enclosed within <think> </think> tags.\n"
    "Once you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags."
)


def _check_str(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def format_history(history: Sequence[tuple[str, str]], history_length: int, *, first_index: int = 1) -> str:
    """``[Observation k: '…', Action k: '…']`` for the last ``history_length`` (observation, action) pairs."""
    if history_length < 0:
        raise ValueError(f"history_length must be >= 0, got {history_length}")
    recent = list(history)[-history_length:] if history_length else []
    start = first_index + len(history) - len(recent)
    parts = []
    for j, (obs, act) in enumerate(recent):
        parts.append(f"[Observation {start + j}: '{obs.strip()}', Action {start + j}: '{act.strip()}']")
    return "\n".join(parts)


def _admissible_text(admissible: Sequence[str]) -> str:
    if isinstance(admissible, str) or not all(isinstance(a, str) for a in admissible):
        raise TypeError("admissible must be a sequence of str")
    return ", ".join(f"'{a}'" for a in admissible)


def build_prompt(
    *,
    env_name: str,
    task: str,
    observation: str,
    admissible: Sequence[str],
    history: Sequence[tuple[str, str]] = (),
    history_length: int = 2,
) -> str:
    """The user message of one step (verl-agent style).

    Args:
        env_name: ``alfworld``, ``webshop`` or ``textworld`` (picks the introduction).
        task: the task description (ALFWorld "put a clean mug in …", WebShop instruction, TextWorld objective).
        observation: the current observation text.
        admissible: the admissible commands now.
        history: all earlier (observation, action) pairs of this episode, oldest first.
        history_length: how many of the most recent pairs to show (verl-agent default 2).

    Returns:
        The prompt text (put it in a ``{"role": "user"}`` message).
    """
    if env_name not in ENVIRONMENT_DESCRIPTIONS:
        raise ValueError(f"env_name must be one of {sorted(ENVIRONMENT_DESCRIPTIONS)}, got {env_name!r}")
    _check_str(task, "task")
    _check_str(observation, "observation")
    lines = [f"You are an expert agent operating in {ENVIRONMENT_DESCRIPTIONS[env_name]}. Your task is to: {task.strip()}"]
    steps_done = len(history)
    if steps_done and history_length > 0:
        shown = min(history_length, steps_done)
        lines.append(
            f"Prior to this step, you have already taken {steps_done} step(s). Below are the most recent {shown} "
            f"observations and the corresponding actions you took:\n{format_history(history, history_length)}"
        )
        lines.append(f"You are now at step {steps_done + 1} and your current observation is: {observation.strip()}")
    else:
        lines.append(f"Your current observation is: {observation.strip()}")
    lines.append(f"Your admissible actions of the current situation are: [{_admissible_text(admissible)}].")
    lines.append("")
    lines.append(ANSWER_INSTRUCTION)
    return "\n".join(lines)


def followup_prompt(*, observation: str, admissible: Sequence[str]) -> str:
    """A follow-up user turn for multi-turn (concatenated) conversations: new observation + actions."""
    _check_str(observation, "observation")
    return (
        f"Your current observation is: {observation.strip()}\n"
        f"Your admissible actions of the current situation are: [{_admissible_text(admissible)}].\n\n"
        f"{ANSWER_INSTRUCTION}"
    )
