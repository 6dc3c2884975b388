"""Real TextWorld games, generated offline with textworld's own generator, cached on disk.

This module is shared by the toy environment (``toy_envs/TextWorld-v0``) and the scaled text
environment (``scaled/envs``). It does three things:

1. :func:`generate_game` makes a game with ``textworld.generator.make_game`` + ``compile_game``
   (in-process; about 0.5–1.5 s per small game, against about 2–6 s for ``tw-make custom`` in a
   subprocess, which produces the very same ``.z8`` bytes). The result is cached: the file name
   encodes the textworld version and every parameter, e.g.
   ``tw1.7.0_ws3_no5_ql3_seed1.z8`` (with its ``.json`` next to it, which textworld needs to
   compute admissible commands). Default cache directory: ``$EMPG_CACHE/textworld`` or
   ``~/.cache/empg/textworld``. Generation is deterministic for a seed, and safe when several
   processes generate the same game at once: each compiles in its own temporary directory and
   moves the files into place with :func:`os.replace` (the ``.json`` first, the ``.z8`` last, so a
   visible ``.z8`` always has its ``.json``).
2. :func:`walkthrough` reads a game's winning command sequence.
3. :class:`TextWorldGame` (made with :func:`start`) is a small playing session with a stable,
   documented ``infos`` dict, so that the gymnasium toy env and the scaled wrapper do not each
   re-learn textworld's API::

       game = start(generate_game(seed=1, world_size=2, quest_length=2))
       obs, infos = game.reset()
       obs, score, done, infos = game.step(infos["admissible_commands"][0])
       game.close()

   ``obs`` is the game's feedback text, cleaned by :func:`clean_feedback` (the ASCII-art banner,
   the ``>`` prompt and the status bar are removed). ``score`` is textworld's *cumulative* score
   and ``done`` is ``won or lost`` (textworld's own convention: the old 4-tuple). ``infos`` has:

   - ``admissible_commands``: ``list[str]``, sorted, the commands textworld accepts now;
   - ``won``, ``lost``: ``bool``;
   - ``score`` (cumulative), ``max_score``, ``moves`` (turns taken so far): ``int``;
   - ``policy_commands``: ``list[str]``, a shortest winning plan from the current state;
   - ``walkthrough``: ``list[str]``, the winning plan from the start (fixed);
   - ``objective``: ``str``, the quest text;
   - ``description``, ``inventory``: ``str``, the current room and the inventory (cleaned);
   - ``feedback``: ``str``, the raw, uncleaned feedback.

   Every call returns fresh lists, so callers may keep or mutate them.

``textworld`` is imported lazily: ``import toy_envs`` works without it, and using these functions
without it raises an :class:`ImportError` that says ``pip install "empg[toy]"``.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import pathlib
import re
import shutil
import tempfile
import warnings
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "TextWorldGame",
    "clean_feedback",
    "default_cache_dir",
    "game_filename",
    "generate_game",
    "start",
    "walkthrough",
]

INSTALL_HINT = 'pip install "empg[toy]"  (or: pip install "textworld>=1.6")'


def _import_textworld():
    """Import textworld, or raise an ImportError that says what to install."""
    try:
        import textworld
        import textworld.generator  # noqa: F401
    except ImportError as exc:  # pragma: no cover - textworld is installed in the dev env
        raise ImportError(
            f"TextWorld games need the `textworld` package, which could not be imported ({exc}). "
            f"Install it with: {INSTALL_HINT}"
        ) from exc
    return textworld


def default_cache_dir() -> pathlib.Path:
    """Where generated games live: ``$EMPG_CACHE/textworld``, else ``~/.cache/empg/textworld``."""
    root = os.environ.get("EMPG_CACHE")
    if root:
        return pathlib.Path(root).expanduser() / "textworld"
    return pathlib.Path.home() / ".cache" / "empg" / "textworld"


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as int, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def game_filename(*, seed: int, world_size: int, nb_objects: int, quest_length: int) -> str:
    """File name of a cached game; it encodes the textworld version and every parameter."""
    version = _import_textworld().__version__
    return f"tw{version}_ws{world_size}_no{nb_objects}_ql{quest_length}_seed{seed}.z8"


def generate_game(
    *,
    seed: int,
    world_size: int = 3,
    nb_objects: int = 5,
    quest_length: int = 3,
    cache_dir: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Generate (or reuse from the cache) a TextWorld game and return the path of its ``.z8``.

    Same generator as ``tw-make custom --world-size W --nb-objects N --quest-length L --seed S``.

    Args:
        seed: generator seed (int >= 0); the same seed and parameters give the same game bytes.
        world_size: number of rooms (int >= 1).
        nb_objects: minimum number of objects in the world (int >= 0); extra distractors are
            added up to this number.
        quest_length: number of actions of the winning plan (int >= 1).
        cache_dir: directory for the game files; default :func:`default_cache_dir`.

    Returns:
        Path to ``<cache_dir>/tw<version>_ws<W>_no<N>_ql<L>_seed<S>.z8``; its ``.json`` sits next to it.

    Raises:
        TypeError, ValueError: a parameter has the wrong type or range.
        ImportError: textworld is not installed.
        RuntimeError: textworld could not generate or compile the game; the message says what
            to change (e.g. fewer objects per room) or what to reinstall.
    """
    seed = _check_int("seed", seed, 0)
    world_size = _check_int("world_size", world_size, 1)
    nb_objects = _check_int("nb_objects", nb_objects, 0)
    quest_length = _check_int("quest_length", quest_length, 1)
    textworld = _import_textworld()
    from textworld.generator import compile_game, make_game

    cache = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = game_filename(
        seed=seed, world_size=world_size, nb_objects=nb_objects, quest_length=quest_length
    )
    target = cache / name
    target_json = target.with_suffix(".json")
    if target.is_file() and target_json.is_file():
        return target

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(
            f"cannot create the TextWorld game cache directory {cache} ({exc}); "
            "pass cache_dir=... or set EMPG_CACHE to a writable directory"
        ) from exc

    params = (
        f"seed={seed}, world_size={world_size}, nb_objects={nb_objects}, "
        f"quest_length={quest_length}"
    )
    options = textworld.GameOptions()
    options.seeds = seed
    options.nb_rooms = world_size
    options.nb_objects = nb_objects
    # Same as `tw-make custom --quest-length L`.
    options.chaining.min_length = quest_length
    options.chaining.max_length = quest_length
    options.chaining.max_depth = quest_length
    options.file_ext = ".z8"

    try:
        game = make_game(options)
    except Exception as exc:
        raise RuntimeError(
            f"TextWorld could not generate a game with {params}: {type(exc).__name__}: {exc}. "
            "Try fewer objects per room (lower nb_objects or raise world_size), a shorter "
            "quest_length, or another seed."
        ) from exc

    # Compile in a private temporary directory, then move into place atomically, so that two
    # processes making the same game never see each other's half-written files.
    tmp_dir = pathlib.Path(tempfile.mkdtemp(prefix=".tmp-" + target.stem + "-", dir=cache))
    try:
        options.path = str(tmp_dir / name)
        try:
            compiled = pathlib.Path(compile_game(game, options))
        except Exception as exc:
            raise RuntimeError(
                f"TextWorld generated the game ({params}) but could not compile it with the "
                f"Inform 7 compiler that ships inside the textworld wheel: {type(exc).__name__}: "
                f"{exc}. Reinstall textworld ({INSTALL_HINT}; add --force-reinstall), and unset "
                "INFORM_HOME if it points elsewhere."
            ) from exc
        os.replace(compiled.with_suffix(".json"), target_json)
        os.replace(compiled, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


def _game_json(path: str | os.PathLike) -> dict:
    path = pathlib.Path(path)
    json_path = path.with_suffix(".json")
    if not json_path.is_file():
        raise FileNotFoundError(
            f"{json_path} not found: a TextWorld .z8 needs the .json that textworld writes next "
            "to it (make games with generate_game or tw-make)"
        )
    with open(json_path, encoding="utf-8") as f:
        return json.load(f)


def walkthrough(path: str | os.PathLike) -> list[str]:
    """The winning command sequence of a generated game (``metadata["walkthrough"]`` of its .json).

    Args:
        path: the game's ``.z8`` (its ``.json`` must sit next to it).

    Returns:
        The commands, in order; playing them from the start wins the game.
    """
    data = _game_json(path)
    commands = data.get("metadata", {}).get("walkthrough")
    if commands is None:
        raise ValueError(f"game {path} has no walkthrough in its metadata")
    return list(commands)


_PROMPT_RE = re.compile(r"\n>[^\n]*\Z")  # the trailing '>' prompt and the status bar after it
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")
_BLANKS_RE = re.compile(r"\n{3,}")


def clean_feedback(text: str) -> str:
    """Remove the prompt, the status bar and the ASCII-art banner from textworld's feedback.

    Rule: drop the last line if it starts with ``>``, drop every line without a letter or a
    digit (the banner is drawn with ``$|_\\/``), collapse blank runs, strip.
    """
    text = _PROMPT_RE.sub("", text.replace("\r\n", "\n"))
    lines = [line.strip() for line in text.split("\n")]
    lines = [line if _ALNUM_RE.search(line) else "" for line in lines]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


@contextlib.contextmanager
def _quiet_jericho():
    """Silence jericho's "game not fully supported" warning (textworld ignores it globally too,
    but pytest and ``warnings.catch_warnings`` reset that filter). TextWorld tracks score itself."""
    with warnings.catch_warnings():
        try:
            import jericho

            warnings.simplefilter("ignore", jericho.UnsupportedGameWarning)
        except (ImportError, AttributeError):  # pragma: no cover - jericho ships with textworld
            pass
        yield


class TextWorldGame:
    """A playing session of one compiled TextWorld game (see the module docstring for ``infos``).

    ``step`` returns textworld's 4-tuple ``(obs, score, done, infos)`` with the *cumulative* score;
    the gymnasium env converts it to the 5-tuple.
    """

    def __init__(self, path: str | os.PathLike):
        textworld = _import_textworld()
        self.path = pathlib.Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TextWorld game {self.path} not found")
        self._walkthrough = walkthrough(self.path)
        request = textworld.EnvInfos(
            admissible_commands=True,
            won=True,
            lost=True,
            score=True,
            max_score=True,
            moves=True,
            policy_commands=True,
            objective=True,
            description=True,
            inventory=True,
        )
        with _quiet_jericho():
            self._env = textworld.start(str(self.path), request)
        self._closed = False

    def _convert(self, state) -> tuple[str, dict[str, Any]]:
        feedback = state.feedback or ""
        infos = {
            "admissible_commands": sorted(state["admissible_commands"] or []),
            "won": bool(state["won"]),
            "lost": bool(state["lost"]),
            "score": int(state["score"] or 0),
            "max_score": int(state["max_score"] or 0),
            "moves": int(state["moves"] or 0),
            "policy_commands": list(state["policy_commands"] or []),
            "walkthrough": list(self._walkthrough),
            "objective": str(state["objective"] or ""),
            "description": clean_feedback(state["description"] or ""),
            "inventory": clean_feedback(state["inventory"] or ""),
            "feedback": feedback,
        }
        return clean_feedback(feedback), infos

    def reset(self) -> tuple[str, dict[str, Any]]:
        """Start the game from the beginning; returns ``(obs, infos)``."""
        if self._closed:
            raise RuntimeError("this TextWorldGame is closed; start a new one")
        with _quiet_jericho():
            state = self._env.reset()
        return self._convert(state)

    def step(self, command: str) -> tuple[str, int, bool, dict[str, Any]]:
        """Send one text command; returns ``(obs, cumulative score, done, infos)``."""
        if not isinstance(command, str):
            raise TypeError(f"command must be a str, got {type(command).__name__}")
        if self._closed:
            raise RuntimeError("this TextWorldGame is closed; start a new one")
        state, score, done = self._env.step(command)
        obs, infos = self._convert(state)
        return obs, int(score or 0), bool(done), infos

    def close(self) -> None:
        """Stop the interpreter; calling it twice is fine."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def __enter__(self) -> TextWorldGame:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(path: str | os.PathLike) -> TextWorldGame:
    """Open a playing session of the game at ``path`` (a ``.z8`` with its ``.json``)."""
    return TextWorldGame(path)
