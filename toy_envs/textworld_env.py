"""``toy_envs/TextWorld-v0``: a real TextWorld game as a gymnasium environment.

The game is generated offline by textworld's own generator (:func:`toy_envs.textworld_games.generate_game`,
seeded and cached on disk) and played through :class:`toy_envs.textworld_games.TextWorldGame`.

- **Observation**: the game's feedback text (``gymnasium.spaces.Text``), cleaned of the ASCII banner,
  the prompt and the status bar. With ``observation="state"`` the room description and the
  inventory are appended, which makes the observation (nearly) Markov. Characters outside
  printable ASCII become ``?``; text longer than ``max_obs_length`` is cut.
- **Action**: an index into the sorted admissible commands, ``Discrete(max_actions)``. The
  commands are in ``info["admissible_commands"]`` and the valid indices in ``info["action_mask"]``
  (``int8[max_actions]``, usable as ``env.action_space.sample(mask=...)``). An index beyond the list
  (or outside ``[0, max_actions)``) is an *invalid action*: the game does not advance, the previous
  observation is returned, ``info["invalid_action"] = True``, the reward is
  ``invalid_action_reward`` (default 0), and the step still counts toward the step limit.
- **Reward**: ``reward="sparse"`` (default) gives 1 on the winning step and 0 otherwise;
  ``reward="score"`` gives textworld's score increments (they sum to ``max_score`` on a win).
- **Episode end**: ``terminated`` when the game is won or lost; ``truncated`` after
  ``max_episode_steps`` steps (the env truncates itself; no ``TimeLimit`` wrapper is added).
  textworld's own gym API returns the old 4-tuple with a *cumulative* score; this env converts it.
- **Determinism**: the game is fixed by ``seed`` (alias ``game_seed``) at construction and
  TextWorld games are deterministic, so ``reset(seed=...)`` only seeds ``np_random`` (unused by
  the dynamics). To train on many tasks, make one env per game seed.
- **info** (every reset/step): ``admissible_commands``, ``action_mask``, ``invalid_action``,
  ``command`` (the command sent, or ``None``), ``won``, ``lost``, ``score``, ``max_score``,
  ``moves``, ``policy_commands`` (a shortest winning plan from here), ``walkthrough``,
  ``objective``, ``episode_step``, ``game_path``.

Works in ``gymnasium.vector.SyncVectorEnv`` (observations come back as a tuple of strings).
"""

from __future__ import annotations

import operator
import os
import pathlib
import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .textworld_games import TextWorldGame, generate_game

__all__ = ["CHARSET", "TextWorldEnv", "VARIANTS", "register_textworld_variants"]

#: Every character an observation may contain: printable ASCII plus whitespace.
CHARSET = frozenset(string.printable)

#: Registered ids and their kwargs; ``TextWorld-v0`` uses the constructor defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "toy_envs/TextWorld-v0": {},
    "toy_envs/TextWorld-Easy-v0": {"world_size": 2, "nb_objects": 3, "quest_length": 2},
    "toy_envs/TextWorld-Hard-v0": {
        "world_size": 5,
        "nb_objects": 10,
        "quest_length": 6,
        "max_episode_steps": 100,
    },
}


def register_textworld_variants() -> None:
    """Register the ids in :data:`VARIANTS` with gymnasium (idempotent; imports no textworld)."""
    for env_id, kwargs in VARIANTS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="toy_envs.textworld_env:TextWorldEnv",
                kwargs=dict(kwargs),
            )


class TextWorldEnv(gym.Env):
    """One real TextWorld game; actions index the sorted admissible commands (see module docstring).

    Args:
        seed: game generator seed (int >= 0); ``game_seed`` is an alias. Default 0.
        world_size: number of rooms. quest_length: actions in the winning plan.
        nb_objects: minimum number of objects.
        max_episode_steps: truncate after this many steps (int >= 1).
        max_actions: size of the ``Discrete`` action space (int >= 1); commands past this index
            cannot be chosen.
        cache_dir: where generated games are cached (default ``$EMPG_CACHE/textworld``).
        game_path: play this existing ``.z8`` (with its ``.json``) instead of generating one.
        reward: ``"sparse"`` (1 on win) or ``"score"`` (score increments).
        invalid_action_reward: reward of an invalid action (default 0.0; e.g. -0.01 to penalise).
        observation: ``"feedback"`` (the game's reply) or ``"state"`` (reply + room + inventory).
        max_obs_length: maximum observation length in characters.
        render_mode: ``None``, ``"ansi"`` (returns the last observation) or ``"human"`` (prints it).
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        seed: int | None = None,
        *,
        game_seed: int | None = None,
        world_size: int = 3,
        quest_length: int = 3,
        nb_objects: int = 5,
        max_episode_steps: int = 50,
        max_actions: int = 64,
        cache_dir: str | os.PathLike | None = None,
        game_path: str | os.PathLike | None = None,
        reward: str = "sparse",
        invalid_action_reward: float = 0.0,
        observation: str = "feedback",
        max_obs_length: int = 16384,
        render_mode: str | None = None,
    ):
        if seed is not None and game_seed is not None and seed != game_seed:
            raise ValueError(f"seed ({seed}) and game_seed ({game_seed}) are aliases; pass one")
        game_seed = game_seed if game_seed is not None else (seed if seed is not None else 0)
        for name, value in (("max_episode_steps", max_episode_steps), ("max_actions", max_actions),
                            ("max_obs_length", max_obs_length)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if reward not in ("sparse", "score"):
            raise ValueError(f"reward must be 'sparse' or 'score', got {reward!r}")
        if observation not in ("feedback", "state"):
            raise ValueError(f"observation must be 'feedback' or 'state', got {observation!r}")
        invalid_action_reward = float(invalid_action_reward)
        if not np.isfinite(invalid_action_reward):
            raise ValueError(f"invalid_action_reward must be finite, got {invalid_action_reward}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")

        if game_path is not None:
            game_path = pathlib.Path(game_path)
            if not game_path.is_file():
                raise ValueError(f"game_path {game_path} is not a file (expected a TextWorld .z8)")
        else:
            game_path = generate_game(
                seed=game_seed,
                world_size=world_size,
                nb_objects=nb_objects,
                quest_length=quest_length,
                cache_dir=cache_dir,
            )
        self.game_path = game_path
        self.game_seed = int(game_seed)
        self.max_episode_steps = int(max_episode_steps)
        self.max_actions = int(max_actions)
        self.reward_mode = reward
        self.invalid_action_reward = invalid_action_reward
        self.observation_mode = observation
        self.render_mode = render_mode

        self.observation_space = spaces.Text(
            max_length=int(max_obs_length), min_length=0, charset=CHARSET
        )
        self.action_space = spaces.Discrete(self.max_actions)

        self._game: TextWorldGame | None = None  # started lazily on the first reset
        self._obs = ""
        self._infos: dict[str, Any] = {}
        self._episode_step = 0
        self._score = 0
        self._done = True

    # -- helpers -------------------------------------------------------------------------------

    def _text(self, obs: str, infos: dict[str, Any]) -> str:
        if self.observation_mode == "state":
            obs = "\n\n".join(part for part in (obs, infos["description"], infos["inventory"]) if part)
        obs = "".join(c if c in CHARSET else "?" for c in obs)
        return obs[: self.observation_space.max_length]

    def _info(self, *, invalid: bool, command: str | None) -> dict[str, Any]:
        commands = list(self._infos["admissible_commands"])
        mask = np.zeros(self.max_actions, dtype=np.int8)
        mask[: min(len(commands), self.max_actions)] = 1
        return {
            "admissible_commands": commands,
            "action_mask": mask,
            "invalid_action": invalid,
            "command": command,
            "won": self._infos["won"],
            "lost": self._infos["lost"],
            "score": self._infos["score"],
            "max_score": self._infos["max_score"],
            "moves": self._infos["moves"],
            "policy_commands": list(self._infos["policy_commands"]),
            "walkthrough": list(self._infos["walkthrough"]),
            "objective": self._infos["objective"],
            "episode_step": self._episode_step,
            "game_path": str(self.game_path),
        }

    def action_index(self, command: str) -> int:
        """Index of ``command`` in the current admissible commands (ValueError if absent)."""
        commands = self._infos.get("admissible_commands", [])
        if command not in commands:
            raise ValueError(f"command {command!r} is not admissible now; admissible: {commands}")
        return commands.index(command)

    # -- gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Restart the game; returns ``(obs, info)``. ``seed`` seeds ``np_random`` only."""
        super().reset(seed=seed)
        if self._game is None:
            self._game = TextWorldGame(self.game_path)
        obs, self._infos = self._game.reset()
        self._obs = self._text(obs, self._infos)
        self._episode_step = 0
        self._score = self._infos["score"]
        self._done = False
        if self.render_mode == "human":
            self.render()
        return self._obs, self._info(invalid=False, command=None)

    def step(self, action):
        """Play admissible command number ``action``; returns the gymnasium 5-tuple."""
        if self._done:
            raise RuntimeError("step() called on a finished episode (or before reset()); call reset()")
        try:
            if isinstance(action, (bool, np.bool_)):
                raise TypeError
            action = operator.index(action)  # int, numpy integer, 0-d integer array
        except TypeError:
            raise TypeError(
                f"action must be an int index, got {type(action).__name__} ({action!r})"
            ) from None
        self._episode_step += 1
        commands = self._infos["admissible_commands"]
        if not 0 <= action < min(len(commands), self.max_actions):
            reward = self.invalid_action_reward
            terminated = False
            info = self._info(invalid=True, command=None)
        else:
            command = commands[action]
            obs, score, done, self._infos = self._game.step(command)
            self._obs = self._text(obs, self._infos)
            won, lost = self._infos["won"], self._infos["lost"]
            if self.reward_mode == "sparse":
                reward = 1.0 if won else 0.0
            else:
                reward = float(score - self._score)
            self._score = score
            terminated = bool(won or lost or done)
            info = self._info(invalid=False, command=command)
        truncated = (not terminated) and self._episode_step >= self.max_episode_steps
        self._done = terminated or truncated
        if self.render_mode == "human":
            self.render()
        return self._obs, float(reward), terminated, bool(truncated), info

    def render(self):
        """``"ansi"``: return the last observation; ``"human"``: print it."""
        if self.render_mode == "ansi":
            return self._obs
        if self.render_mode == "human":
            print(self._obs)
        return None

    def close(self):
        """Stop the game interpreter (safe to call twice)."""
        if self._game is not None:
            self._game.close()
            self._game = None
