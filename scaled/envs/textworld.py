"""TextWorld games (the same ones as ``toy_envs/TextWorld-v0``) as a `TextEnv`, for fast CPU tests.

Games are made by ``toy_envs.textworld_games.generate_game`` (real ``tw-make custom`` games, cached on
disk) and played with its ``TextWorldGame`` session. The environment holds a list of game seeds;
``reset(seed=s)`` picks one of them from ``s`` (same seed, same game), ``options={"game_index": i}``
picks one directly.

Reward is TextWorld's native one: the increase of the quest score (1 on the winning step for the
default one-quest games). Commands go to the game (its parser answers unknown ones), except the
interpreter's meta commands (`META_VERBS`: save, restore, script, quit, restart, undo, ...), which
would write files into the working directory, restart the game behind the step counter, or leave
it waiting at a yes/no prompt: those get "Nothing happens." and the game is untouched.
``info["invalid_action"]`` says whether a command was outside the admissible commands.
"""

from __future__ import annotations

import os
import random
import re
from typing import Any, Sequence

from scaled.envs.base import TextEnv, match_admissible, normalize_command

META_VERBS = frozenset({
    "quit", "q", "restart", "restore", "save", "script", "transcript", "unscript", "noscript",
    "undo", "verify", "version", "notify",
})
"""Inform interpreter meta verbs that are never sent to the game (they act outside the story)."""

_SENTENCE_SPLIT = re.compile(r"[.,;!?]|\bthen\b")


def _has_meta_verb(command: str) -> bool:
    """Whether any sentence of ``command`` (Inform splits on '.', ',', 'then') starts with a `META_VERBS` word."""
    for sentence in _SENTENCE_SPLIT.split(command):
        words = sentence.split()
        if words and words[0] in META_VERBS:
            return True
    return False


class TextWorldEnv(TextEnv):
    """Generated TextWorld games behind the `TextEnv` interface.

    Args:
        game_seeds: seeds of the games to play (one game per seed); an int means ``[int]``.
        world_size, nb_objects, quest_length: generator settings (``tw-make custom``).
        cache_dir: where generated games are cached (default ``$EMPG_CACHE/textworld``).
        max_steps: steps before truncation.
        seed: seeds the game choice when ``reset`` gets no seed.
        game_files: play these ``.z8`` files instead of generating games.
    """

    name = "textworld"

    def __init__(self, game_seeds: int | Sequence[int] = (0,), *, world_size: int = 3, nb_objects: int = 5,
                 quest_length: int = 3, cache_dir: str | os.PathLike | None = None, max_steps: int = 50,
                 seed: int | None = None, game_files: Sequence[str | os.PathLike] | None = None):
        if isinstance(game_seeds, int):
            game_seeds = [game_seeds]
        game_seeds = list(game_seeds)
        if game_files is None and (not game_seeds or not all(isinstance(s, int) and s >= 0 for s in game_seeds)):
            raise ValueError(f"game_seeds: expected a non-empty list of ints >= 0, got {game_seeds!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
        self.game_seeds = game_seeds
        self.generator_kwargs = dict(world_size=world_size, nb_objects=nb_objects, quest_length=quest_length,
                                     cache_dir=cache_dir)
        self.game_files = [str(f) for f in game_files] if game_files is not None else None
        self.max_steps = max_steps
        self._rng = random.Random(seed)
        self._sessions: dict[str, Any] = {}
        self._game = None
        self._infos: dict[str, Any] = {}
        self.gamefile = ""
        self.task = ""

    @property
    def num_games(self) -> int:
        return len(self.game_files) if self.game_files is not None else len(self.game_seeds)

    def _game_path(self, index: int) -> str:
        if self.game_files is not None:
            return self.game_files[index]
        from toy_envs.textworld_games import generate_game

        return str(generate_game(seed=self.game_seeds[index], **self.generator_kwargs))

    def _info(self, invalid: bool) -> dict[str, Any]:
        infos = self._infos
        return {"admissible_commands": list(infos["admissible_commands"]), "won": bool(infos["won"]),
                "invalid_action": invalid, "task": self.task, "task_type": "textworld",
                "lost": bool(infos["lost"]), "score": infos["score"], "max_score": infos["max_score"],
                "walkthrough": list(infos["walkthrough"]), "gamefile": self.gamefile, "step": self._steps}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Start a game (``options={"game_index": i}``, else chosen by ``seed``); returns ``(obs, info)``."""
        from toy_envs.textworld_games import start

        index = self._episode_index(self.num_games, seed, options, "game_index")
        self.gamefile = self._game_path(index)
        if self.gamefile not in self._sessions:
            self._sessions[self.gamefile] = start(self.gamefile)
        self._game = self._sessions[self.gamefile]
        obs, self._infos = self._game.reset()
        self.task = self._infos["objective"]
        self._score = self._infos["score"]
        self._steps = 0
        self._done = False
        return obs, self._info(invalid=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send ``action`` to the game; returns the 5-tuple with the score increase as reward."""
        if self._game is None:
            raise RuntimeError("TextWorldEnv.step called before reset")
        if self._done or self._steps >= self.max_steps:
            raise RuntimeError("TextWorldEnv.step called after the episode ended; call reset")
        command = match_admissible(action, self._infos["admissible_commands"])
        invalid = command is None
        if invalid and _has_meta_verb(normalize_command(action)):
            self._steps += 1
            truncated = self._steps >= self.max_steps
            return "Nothing happens.", 0.0, False, truncated, self._info(invalid)
        obs, score, done, self._infos = self._game.step(str(action) if invalid else command)
        reward = float(score - self._score)
        self._score = score
        self._steps += 1
        self._done = bool(done)
        truncated = not done and self._steps >= self.max_steps
        return obs, reward, bool(done), truncated, self._info(invalid)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
        self._game = None
