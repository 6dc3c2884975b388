"""The one agent episode: a turn is prompt → answer → projection → validity → environment step → reward.

Both drivers play episodes through :class:`Episode`, so their rewards and step records agree:

* the standalone rollout (:func:`scaled.rollout.collect_rollouts`) holds N episodes and advances
  them in lock step, generating the active episodes' answers as one batch;
* the verl agent loop (:func:`scaled.verl.agent_loop.run_episode`) advances one episode per async
  task, with answers from verl's LLM server.

A driver asks for the user message (:meth:`Episode.prompt`), tokenises it and generates an answer,
and hands the decoded answer back (:meth:`Episode.advance`) with its tokens; the episode does
everything else::

    episode = Episode.start(env, seed=seed, config=AgentConfig())
    while not episode.done:
        text = generate(episode.prompt())
        episode.advance(text)

Rewards (verl-agent, spec §4), with ``AgentConfig.win_reward`` = 10 and ``invalid_penalty`` = 0.1:

* a step whose answer is **invalid** scores ``−invalid_penalty``;
* the last step adds ``win_reward`` when the episode is won;
* the episode's outcome reward R is the sum over its steps: ``R = win_reward·won − invalid_penalty·#invalid``.

"Invalid" has one definition, verl-agent's ``is_action_valid``: the *answer's form*
(:func:`scaled.agent.projection.project_action`: one ``<action>…</action>``, a ``<think>…</think>``
block, no Chinese characters; and, with ``check_admissible``, an admissible command). A well-formed
answer whose command the environment rejects is valid; it is recorded as ``env_invalid`` (the
environment's ``info["invalid_action"]``), logged, and not penalised.

An episode ends when the environment terminates or truncates, when it is won, or after
``AgentConfig.max_steps`` turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from scaled.agent.projection import project_action
from scaled.agent.prompts import ENVIRONMENT_DESCRIPTIONS, build_prompt, followup_prompt

__all__ = ["AgentConfig", "StepRecord", "Episode", "step_reward", "LAYOUTS"]

#: Context layouts (spec §1): a fresh prompt per step (verl-agent), or one growing conversation.
LAYOUTS = ("step", "concat")


@dataclass
class AgentConfig:
    """How an episode is played and rewarded (defaults: verl-agent and the paper's setup, spec §6)."""

    max_steps: int = 50
    """Turns per episode (paper: ALFWorld 50, WebShop 15)."""
    history_length: int = 2
    """(observation, action) pairs shown in a step prompt (verl-agent default 2)."""
    layout: str = "step"
    """step (verl-agent: a fresh prompt per turn, one training row per step) or concat (one conversation)."""
    win_reward: float = 10.0
    """Reward for winning, on the last step (verl-agent: 10 · won)."""
    invalid_penalty: float = 0.1
    """Subtracted on each step with an invalid answer (verl-agent: invalid_action_penalty_coef 0.1)."""
    require_think: bool = True
    """An answer without <think>…</think> is invalid (verl-agent)."""
    check_admissible: bool = False
    """A command outside the admissible ones makes the answer invalid too (verl-agent: False)."""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"agent.layout must be one of {LAYOUTS}, got {self.layout!r}")
        for name in ("max_steps", "history_length"):
            value = getattr(self, name)
            low = 1 if name == "max_steps" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"agent.{name} must be an int >= {low}, got {value!r}")
        for name in ("win_reward", "invalid_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"agent.{name} must be a finite number, got {value!r}")


def step_reward(config: AgentConfig, *, valid: bool, won: bool, last: bool) -> float:
    """Shaped reward of one step: ``−invalid_penalty·[not valid] + win_reward·[won and last]``."""
    return (0.0 if valid else -float(config.invalid_penalty)) + (float(config.win_reward) if (won and last) else 0.0)


@dataclass
class StepRecord:
    """One turn of one episode.

    Attributes:
        step: index of the turn in its episode (0, 1, …).
        prompt: the user message of this turn (:meth:`Episode.prompt`).
        text, action, valid: the decoded answer, the projected action and the answer's validity.
        env_invalid: the environment's ``info["invalid_action"]`` for this action (not penalised).
        reward: the shaped reward of this step (:func:`step_reward`).
        observation, admissible: what the agent saw.
        prompt_ids: the context the answer was sampled from (step layout); empty for concatenated
            rollouts, whose context is the conversation up to this turn.
        turn_ids: the tokens this turn adds to a concatenated conversation before the answer (the
            chat prompt at step 0, else :func:`scaled.agent.tokens.followup_turn_ids`); equal to
            ``prompt_ids`` in the step layout.
        response_ids: the generated tokens (the end-of-turn token included unless truncated).
        logprobs, entropies: ``[len(response_ids)]`` float32 recorded by the sampler, or None when
            the driver has none (verl's agent loop: verl recomputes them).
        truncated: the answer hit the response-length limit.
    """

    step: int
    prompt: str
    text: str
    action: str
    valid: bool
    env_invalid: bool
    reward: float
    observation: str
    admissible: list[str]
    prompt_ids: list[int] = field(default_factory=list)
    turn_ids: list[int] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    logprobs: torch.Tensor | None = None
    entropies: torch.Tensor | None = None
    truncated: bool = False


@dataclass(eq=False)
class Episode:
    """The state and record of one episode; :meth:`start` resets the environment, :meth:`advance` plays a turn.

    Attributes:
        task, task_type, env_name: the goal text (``info["task"]``), its family, the environment's name.
        config: the :class:`AgentConfig`.
        seed, group, index: the reset seed (the task), the GRPO group, the position in a batch.
        steps: one :class:`StepRecord` per turn played.
        won, env_return: whether the task was solved; the sum of the environment's native rewards
            (WebShop: the score).
        done: no further turn will be played.
        stop_reason: why a driver ended the episode early (:meth:`stop`, e.g. ``"prompt_too_long"``); "" otherwise.
        task_index: the task played when the driver picked it (``reset(options={"task_index": i})``), else None.
    """

    task: str
    task_type: str
    env_name: str = "textworld"
    config: AgentConfig = field(default_factory=AgentConfig)
    seed: int | None = None
    group: int = 0
    index: int = 0
    steps: list[StepRecord] = field(default_factory=list)
    won: bool = False
    env_return: float = 0.0
    done: bool = False
    stop_reason: str = ""
    env: Any = field(default=None, repr=False)
    observation: str = field(default="", repr=False)
    info: dict = field(default_factory=dict, repr=False)
    history: list[tuple[str, str]] = field(default_factory=list, repr=False)
    task_index: int | None = None

    # ------------------------------------------------------------------ start
    @classmethod
    def start(cls, env: Any, *, seed: int | None, config: AgentConfig, group: int = 0, index: int = 0,
              env_name: str | None = None, task_index: int | None = None) -> "Episode":
        """Reset ``env`` with ``seed`` (or on task ``task_index``) and return the episode at its first turn.

        Args:
            env: a ``scaled.envs`` text environment (``reset(seed)``, ``step(action)``, ``info["task"]``).
            seed: the reset seed (equal seeds, equal tasks: how GRPO groups are formed).
            config: the :class:`AgentConfig`.
            group, index: bookkeeping for the batch (GRPO group, position).
            env_name: picks the prompt's introduction (default ``env.name``).
            task_index: play this task (``reset(options={"task_index": i})``, evaluation without
                replacement) instead of the one ``seed`` draws.
        """
        if not isinstance(config, AgentConfig):
            raise TypeError(f"config must be an AgentConfig, got {type(config).__name__}")
        name = str(env_name if env_name is not None else getattr(env, "name", ""))
        if name not in ENVIRONMENT_DESCRIPTIONS:
            raise ValueError(f"env_name must be one of {sorted(ENVIRONMENT_DESCRIPTIONS)}, got {name!r}")
        if task_index is None:
            observation, info = env.reset(seed=None if seed is None else int(seed))
        else:
            observation, info = env.reset(seed=None if seed is None else int(seed),
                                          options={"task_index": int(task_index)})
        task = info.get("task")
        if not isinstance(task, str):
            raise ValueError(f"{name} environment: reset() info must hold the goal text under 'task' "
                             f"(the scaled.envs contract), got {task!r}")
        return cls(task=task, task_type=str(info.get("task_type", name)), env_name=name, config=config,
                   seed=None if seed is None else int(seed), group=int(group), index=int(index), env=env,
                   observation=observation, info=dict(info), task_index=None if task_index is None else int(task_index))

    # ------------------------------------------------------------------ a turn
    @property
    def admissible(self) -> list[str]:
        """The admissible commands now."""
        return list(self.info.get("admissible_commands") or [])

    @property
    def is_followup(self) -> bool:
        """True when this turn continues a conversation (concat layout after step 0): tokenise it as a follow-up."""
        return self.config.layout == "concat" and bool(self.steps)

    def prompt(self) -> str:
        """The user message of the current turn (the full step prompt, or a follow-up in a conversation)."""
        if self.done:
            raise RuntimeError("the episode is over: no prompt after the last turn")
        if self.is_followup:
            return followup_prompt(observation=self.observation, admissible=self.admissible)
        return build_prompt(env_name=self.env_name, task=self.task, observation=self.observation,
                            admissible=self.admissible, history=self.history,
                            history_length=self.config.history_length)

    def advance(self, text: str, *, prompt_ids: list[int] | None = None, turn_ids: list[int] | None = None,
                response_ids: list[int] | None = None, logprobs: torch.Tensor | None = None,
                entropies: torch.Tensor | None = None, truncated: bool = False) -> StepRecord:
        """Play one turn with the decoded answer ``text``; returns (and appends) its :class:`StepRecord`.

        The answer is projected to an action (invalid answers are sent too, as verl-agent does: the
        environment then reports an invalid command), the environment steps, and the step is
        rewarded (:func:`step_reward`). The token arguments are stored in the record as given
        (``turn_ids`` defaults to ``prompt_ids``).
        """
        if self.done:
            raise RuntimeError("the episode is over: advance() after the last turn")
        if not isinstance(text, str):
            raise TypeError(f"text must be the decoded answer (str), got {type(text).__name__}")
        cfg = self.config
        prompt = self.prompt()
        admissible = self.admissible
        action, valid = project_action(text, admissible, check_admissible=cfg.check_admissible,
                                       require_think=cfg.require_think)
        observation, env_reward, terminated, truncated_env, info = self.env.step(action)
        t = len(self.steps)
        won = bool(info.get("won", False))
        last = bool(terminated or truncated_env or won or t == cfg.max_steps - 1)
        prompt_ids = list(prompt_ids or [])
        record = StepRecord(
            step=t, prompt=prompt, text=text, action=action, valid=bool(valid),
            env_invalid=bool(info.get("invalid_action", False)), reward=step_reward(cfg, valid=valid, won=won, last=last),
            observation=self.observation, admissible=admissible, prompt_ids=prompt_ids,
            turn_ids=list(turn_ids) if turn_ids is not None else list(prompt_ids),
            response_ids=list(response_ids or []), logprobs=logprobs, entropies=entropies, truncated=bool(truncated),
        )
        self.steps.append(record)
        self.env_return += float(env_reward)
        self.won = won
        self.history.append((self.observation, action))
        self.observation, self.info = observation, dict(info)
        self.done = last
        return record

    def stop(self, reason: str = "stopped") -> None:
        """End the episode before its next turn (a driver's limit, e.g. the context length); ``reason`` is kept."""
        self.done = True
        self.stop_reason = str(reason)

    # ------------------------------------------------------------------ outcome
    @property
    def reward(self) -> float:
        """Outcome reward ``R = win_reward·won − invalid_penalty·#invalid``, the sum of the step rewards.

        Computed from the formula, not by adding the steps in order, so that equal outcomes are equal
        floats: DAPO's dynamic sampling compares a group's rewards exactly.
        """
        return float(self.config.win_reward) * float(self.won) - float(self.config.invalid_penalty) * self.num_invalid

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def num_invalid(self) -> int:
        return sum(not s.valid for s in self.steps)
