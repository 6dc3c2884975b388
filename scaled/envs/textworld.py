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

import json
import os
import pathlib
import random
import re
from typing import Any, Sequence

from scaled.envs.base import TextEnv, match_admissible, normalize_command, resolve_data_path

GAME_SUFFIXES = (".z8", ".z5", ".z6", ".z3", ".ulx")
"""Compiled TextWorld game files that ``data_path`` folders are searched for."""


def _check_story_file(path: pathlib.Path, data: bytes) -> None:
    """Header, length and checksum of a Z-machine (or Glulx) story file; a damaged file would crash
    the interpreter's C code (and the process) instead of raising."""
    head = data[:4]
    if path.suffix == ".ulx":
        if head != b"Glul" or len(data) < 36:
            raise ValueError(f"{path}: not a compiled TextWorld game (bad Glulx header {head!r}; damaged?)")
        length = int.from_bytes(data[12:16], "big")
        if len(data) < length:
            raise ValueError(f"{path}: the game file is truncated ({len(data)} of {length} bytes)")
        return
    if len(data) < 0x40 or not 1 <= data[0] <= 8:
        raise ValueError(f"{path}: not a compiled TextWorld game (bad story-file header {head!r}; damaged?)")
    length = int.from_bytes(data[0x1A:0x1C], "big") * (2 if data[0] <= 3 else 4 if data[0] <= 5 else 8)
    if len(data) < length:
        raise ValueError(f"{path}: the game file is truncated ({len(data)} of {length} bytes)")
    checksum = int.from_bytes(data[0x1C:0x1E], "big")
    if length and checksum and sum(data[0x40:length]) & 0xFFFF != checksum:
        raise ValueError(f"{path}: the game file is damaged (its Z-machine checksum does not match)")


def check_game_file(path: str | os.PathLike) -> str:
    """A cheap check that ``path`` is a compiled TextWorld game with its ``.json`` metadata beside it.

    Returns:
        ``str(path)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is empty, not a Z-machine / Glulx story file, truncated, fails its checksum, or
            its ``.json`` is missing or damaged (the message names the file).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TextWorld game file {str(path)!r} does not exist")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path}: the TextWorld game file is empty")
    _check_story_file(path, data)
    meta = path.with_suffix(".json")
    if not meta.is_file():
        raise ValueError(f"{path}: its metadata file {meta.name} (written by tw-make) is missing")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta}: the game's metadata is not valid JSON ({exc}; truncated?)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{meta}: the game's metadata must be a JSON object, got {type(data).__name__}")
    return str(path)

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
        data_path: a folder of compiled games (``*.z8`` with their ``.json``, e.g. made by ``tw-make``),
            or one game file: play those instead of generating games.
        data_dir: deprecated name of ``data_path``.

    Raises:
        ValueError: bad arguments; an empty ``data_path`` folder; a damaged game file (named).
    """

    name = "textworld"

    def __init__(self, game_seeds: int | Sequence[int] = (0,), *, world_size: int = 3, nb_objects: int = 5,
                 quest_length: int = 3, cache_dir: str | os.PathLike | None = None, max_steps: int = 50,
                 seed: int | None = None, game_files: Sequence[str | os.PathLike] | None = None,
                 data_path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None):
        data_path = resolve_data_path(data_path, data_dir, "TextWorldEnv")
        if data_path is not None:
            if game_files is not None:
                raise ValueError("TextWorldEnv: pass data_path or game_files, not both")
            folder = pathlib.Path(data_path).expanduser()
            if folder.is_dir():
                game_files = sorted(str(p) for p in folder.iterdir() if p.suffix in GAME_SUFFIXES)
                if not game_files:
                    raise ValueError(f"TextWorldEnv: data_path {str(folder)!r} holds no game files "
                                     f"({', '.join('*' + x for x in GAME_SUFFIXES)})")
            elif folder.exists():
                game_files = [str(folder)]
            else:
                raise FileNotFoundError(f"TextWorldEnv: data_path {str(folder)!r} does not exist")
        if game_files is not None:
            game_files = [check_game_file(f) for f in game_files]
            if not game_files:
                raise ValueError("game_files: expected at least one game file, got an empty list")
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
        self._done = False
        self.gamefile = ""
        self.task = ""

    @property
    def num_games(self) -> int:
        return len(self.game_files) if self.game_files is not None else len(self.game_seeds)

    @property
    def num_tasks(self) -> int:
        """Number of games (``reset(options={"task_index": i})`` plays game ``i``)."""
        return self.num_games

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
            try:
                self._sessions[self.gamefile] = start(self.gamefile)
            except Exception as exc:  # the interpreter's own errors do not name the file
                raise ValueError(f"{self.gamefile}: cannot start this TextWorld game (damaged?): "
                                 f"{type(exc).__name__}: {exc}") from exc
        self._game = self._sessions[self.gamefile]
        try:
            obs, self._infos = self._game.reset()
        except Exception as exc:
            raise ValueError(f"{self.gamefile}: the TextWorld game failed to start (damaged?): "
                             f"{type(exc).__name__}: {exc}") from exc
        self.task = self._infos["objective"]
        self._score = self._infos["score"]
        self._steps = 0
        self._done = False
        return obs, self._info(invalid=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send ``action`` to the game; returns the 5-tuple with the score increase as reward."""
        self._check_running(self._game is not None, self._done)
        command = match_admissible(action, self._infos["admissible_commands"])
        invalid = command is None
        if invalid and _has_meta_verb(normalize_command(action)):
            truncated = self._count_step(False)
            return "Nothing happens.", 0.0, False, truncated, self._info(invalid)
        obs, score, done, self._infos = self._game.step(str(action) if invalid else command)
        reward = float(score - self._score)
        self._score = score
        self._done = bool(done)
        truncated = self._count_step(self._done)
        return obs, reward, self._done, truncated, self._info(invalid)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
        self._game = None
