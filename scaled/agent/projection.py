"""Action projection: from the model's text to an environment action (verl-agent conventions).

The policy answers ``<think>…</think><action>…</action>``. :func:`project_action` is a pure function
that extracts the action and says whether the answer was *valid*; an invalid answer is still sent to
the environment (verl-agent does the same) and costs the invalid-action penalty in the reward.

Rules (verl-agent's ``alfworld_projection`` / ``webshop_projection``, made stricter where noted):

* the action is the text inside the **last** ``<action>…</action>`` pair, stripped and lower-cased
  (verl-agent lower-cases the answer for ALFWorld and WebShop alike; our environments parse commands
  case-insensitively, and an admissible match is returned in the environment's own spelling);
* invalid when there is no complete ``<action>…</action>`` pair, when there is more than one
  ``<action>`` or ``</action>`` tag (stricter: verl-agent takes the first), when the action is empty,
  or when the tags are out of order;
* invalid when ``<think>…</think>`` is missing (``require_think``, verl-agent's check);
* invalid when the text contains Chinese characters (U+4E00–U+9FFF; verl-agent's check, since
  Qwen models drift into Chinese);
* optionally (``check_admissible``, off by default as in verl-agent) invalid when the action is not
  one of the admissible commands; matching ignores case and repeated whitespace and returns the
  admissible spelling.

This is the one definition of an *invalid* answer (verl-agent's ``is_action_valid``): it is about the
answer's form. Whether the environment accepted the command is recorded separately
(``StepRecord.env_invalid``, the environment's ``info["invalid_action"]``) and costs nothing.

When no action can be extracted, the action is the last 30 characters of the text (verl-agent's
fallback), which the environment then reports as an invalid command.
"""

from __future__ import annotations

import re
from typing import Sequence

from scaled.envs.base import match_admissible

__all__ = ["project_action", "ACTION_START", "ACTION_END", "THINK_START", "THINK_END"]

ACTION_START, ACTION_END = "<action>", "</action>"
THINK_START, THINK_END = "<think>", "</think>"
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_FALLBACK_CHARS = 30


def project_action(
    text: str,
    admissible: Sequence[str] | None = None,
    *,
    check_admissible: bool = False,
    require_think: bool = True,
) -> tuple[str, bool]:
    """Extract the action from a ``<think>…</think><action>…</action>`` answer.

    Args:
        text: the decoded response of one step (special tokens already removed or kept; they are
            ignored).
        admissible: the admissible commands of the current state (needed when ``check_admissible``).
        check_admissible: mark actions outside ``admissible`` invalid.
        require_think: mark answers without a ``<think>…</think>`` block invalid.

    Returns:
        ``(action, valid)``: the action string to send to the environment and whether the answer
        followed the format (and, if checked, named an admissible action).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if admissible is not None and (isinstance(admissible, str) or not all(isinstance(a, str) for a in admissible)):
        raise TypeError("admissible must be a sequence of str (or None)")
    if check_admissible and admissible is None:
        raise ValueError("check_admissible=True needs the admissible commands (admissible=None was given)")
    fallback = text[-_FALLBACK_CHARS:].strip().lower()
    n_open, n_close = text.count(ACTION_START), text.count(ACTION_END)
    end = text.rfind(ACTION_END)
    start = text.rfind(ACTION_START, 0, end) if end >= 0 else -1
    if start < 0 or end < 0:
        return fallback, False
    action = text[start + len(ACTION_START) : end].strip().lower()
    valid = n_open == 1 and n_close == 1 and bool(action)
    if ACTION_START in action or ACTION_END in action:
        valid = False
    if require_think:
        t_start, t_end = text.find(THINK_START), text.find(THINK_END)
        if t_start < 0 or t_end < t_start:
            valid = False
    if _CHINESE.search(text):
        valid = False
    if admissible is not None:
        match = match_admissible(action, admissible)
        if match is not None:
            action = match
        elif check_admissible:
            valid = False
    return action, valid
