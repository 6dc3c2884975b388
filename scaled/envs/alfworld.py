"""ALFWorld as a `TextEnv`: the real ``alfworld`` text engine (ALFRED PDDL domain + TextWorld).

The environment walks ``data_path`` for task folders in the official ALFRED/ALFWorld layout
(``<task>/trial_*/traj_data.json`` with either a prebuilt ``game.tw-pddl`` or an
``initial_state.pddl``), keeps the solvable games of the requested task types, and plays them with
``textworld.envs.PddlEnv`` wrapped in ALFWorld's ``AlfredDemangler`` and ``AlfredInfos`` (exactly the
stack that ``alfworld.agents.environment.AlfredTWEnv`` registers). Admissible commands come from
the engine.

When a folder has no ``game.tw-pddl`` it is built like ``alfworld-generate`` does: the JSON
``{pddl_domain, grammar (with the goal text added by add_task_to_grammar), pddl_problem, solvable}``,
where ``solvable`` is checked by asking the planner for a plan. Built files go to ``game_dir``
(default ``$EMPG_CACHE/alfworld`` or ``~/.cache/empg/alfworld``), never into ``~/.cache/alfworld``.

Task types (``TASK_TYPES``) are the six of ALFWorld; ``info["task_type"]`` and ``env.task_type`` give
the current one so results can be broken down per type like the paper's table.

Splits (``SPLITS``) are the data release's folders: ``split="train"`` (3,553 games),
``"valid_seen"`` (in-distribution, 140) and ``"valid_unseen"`` (out-of-distribution, 134: the split
the paper reports), read from ``data_path/<split>`` (``data_path`` = ``$ALFWORLD_DATA/json_2.1.1``;
``$ALFWORLD_DATA`` itself works too).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
import re
from typing import Any

from scaled.envs.base import TextEnv, match_admissible, resolve_data_path

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
"""ALFWorld's six task types (``alfworld.agents.environment.alfred_tw_env.TASK_TYPES``)."""

SPLITS = ("train", "valid_seen", "valid_unseen")
"""The data release's splits (folders of ``json_2.1.1``): training, in- and out-of-distribution evaluation."""

SHIPPED_DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "alfworld"
"""Small hand-made games in the ALFRED layout, shipped with empg (one per task type)."""

DOWNLOAD_HELP = (
    "Download the ALFWorld data with `pip install alfworld==0.4.2 && alfworld-download` "
    "(it writes to $ALFWORLD_DATA, default ~/.cache/alfworld; needs internet), then pass "
    "data_path=$ALFWORLD_DATA/json_2.1.1 with split=train (or valid_seen / valid_unseen). "
    "For an offline smoke run use data_path=None, the small games shipped in scaled/data/alfworld."
)

_TASK_RE = re.compile(r"Your task is to:\s*(.*?)\s*$", re.S)


class AlfWorldDataError(FileNotFoundError, ValueError):
    """No usable ALFWorld games at the given path (the message says how to get them)."""


GAME_FIELDS = ("pddl_domain", "grammar", "pddl_problem")
"""Fields every ``game.tw-pddl`` must have (strings)."""


def _read_json(path: pathlib.Path, what: str) -> Any:
    """Parse a JSON file; a ValueError naming the file (and line) when it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise ValueError(f"{path}: the {what} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}; truncated?)") from None


def read_task_type(traj_path: pathlib.Path) -> str:
    """``task_type`` of a trial's ``traj_data.json`` (a ValueError naming the file if it has none)."""
    traj = _read_json(traj_path, "trial file (traj_data.json)")
    if not isinstance(traj, dict):
        raise ValueError(f"{traj_path}: expected a JSON object, got {type(traj).__name__}")
    task_type = traj.get("task_type")
    if not isinstance(task_type, str) or not task_type:
        raise ValueError(f"{traj_path}: no 'task_type' field (a string such as 'pick_and_place_simple'), "
                         f"got {task_type!r}")
    return task_type


def read_game_file(path: pathlib.Path) -> dict:
    """A ``game.tw-pddl``, checked: a JSON object with the `GAME_FIELDS` strings (ValueError otherwise)."""
    game = _read_json(path, "game file (game.tw-pddl)")
    if not isinstance(game, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(game).__name__}")
    for field in GAME_FIELDS:
        if not isinstance(game.get(field), str):
            raise ValueError(f"{path}: field {field!r} is missing or not a string (a damaged game file?)")
    return game


def _import_alfworld(data_path: pathlib.Path | None):
    """Import alfworld lazily; set ALFWORLD_DATA first so it does not create ~/.cache/alfworld."""
    if data_path is not None:
        os.environ.setdefault("ALFWORLD_DATA", str(data_path))
    try:
        import textworld  # noqa: F401
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        from alfworld.agents.utils.misc import add_task_to_grammar
        from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("ALFWorld needs `pip install alfworld==0.4.2` (the empg[alfworld] extra).") from exc
    return AlfredDemangler, AlfredInfos, add_task_to_grammar, ALFRED_PDDL_PATH, ALFRED_TWL2_PATH


def _default_game_dir() -> pathlib.Path:
    root = os.environ.get("EMPG_CACHE")
    return (pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "empg") / "alfworld"


def _make_pddl_env(request_policy: bool):
    """A fresh ``PddlEnv`` with the ALFWorld wrappers (demangled names, gamefile in infos)."""
    import textworld
    from textworld.envs import PddlEnv

    AlfredDemangler, AlfredInfos = _import_alfworld(None)[:2]
    infos = textworld.EnvInfos(won=True, admissible_commands=True, policy_commands=request_policy,
                               extras=["gamefile"])
    return AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))


def expert_plan(game_file: str | os.PathLike) -> list[str]:
    """The planner's command sequence that wins ``game_file`` from its initial state ([] if none)."""
    _import_alfworld(pathlib.Path(game_file).parent)
    env = _make_pddl_env(request_policy=True)
    try:
        env.load(str(game_file))
        state = env.reset()
        return list(state["policy_commands"] or [])
    finally:
        env.close()


def build_game_file(trial_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                    goal_desc_human_anns_prob: float = 0.0, check_solvable: bool = True) -> dict:
    """Write ``game.tw-pddl`` for one ALFRED trial folder, as ``alfworld-generate`` does.

    Args:
        trial_dir: folder with ``traj_data.json`` and ``initial_state.pddl``.
        out_path: where to write the JSON game file.
        goal_desc_human_anns_prob: probability of using a human annotation instead of the templated goal.
        check_solvable: ask the planner for a plan and store ``solvable`` accordingly (else ``True``).

    Returns:
        The game data dict that was written.
    """
    trial_dir = pathlib.Path(trial_dir)
    _, _, add_task_to_grammar, pddl_path, twl2_path = _import_alfworld(trial_dir)
    traj = json.loads((trial_dir / "traj_data.json").read_text())
    problem = (trial_dir / "initial_state.pddl").read_text()
    # The goal template is drawn with the *global* `random` (alfworld's get_templated_task_desc):
    # seed it from the folder name so a game's wording is reproducible, and restore the state after.
    seed = int(hashlib.sha1(trial_dir.name.encode()).hexdigest()[:8], 16)
    saved = random.getstate()
    try:
        random.seed(seed)
        grammar = add_task_to_grammar(pathlib.Path(twl2_path).read_text(), traj,
                                      goal_desc_human_anns_prob=goal_desc_human_anns_prob,
                                      rng=random.Random(seed))
    finally:
        random.setstate(saved)
    game = {"pddl_domain": pathlib.Path(pddl_path).read_text(), "grammar": grammar,
            "pddl_problem": problem, "solvable": True, "walkthrough": None}
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # unique temporary name: several processes may build the same cached game at once
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        tmp.write_text(json.dumps(game))
        if check_solvable:  # the planner reads the game from disk: check the temporary file
            try:
                plan = expert_plan(tmp)
            except Exception:  # the engine raises on malformed problems: treat as unsolvable
                plan = []
            game["solvable"] = bool(plan)
            game["walkthrough"] = plan or None
            tmp.write_text(json.dumps(game))
        os.replace(tmp, out_path)  # atomic: readers see no file or the finished one
    finally:
        tmp.unlink(missing_ok=True)
    return game


def split_folder(data_path: str | os.PathLike | None, split: str) -> pathlib.Path:
    """The folder of ``split`` under ``data_path`` (``data_path/<split>`` or ``data_path/json_2.1.1/<split>``).

    Raises:
        ValueError: ``split`` is not one of `SPLITS`, or ``data_path`` is None (the shipped games have no splits).
        AlfWorldDataError: no such folder.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
    if data_path is None:
        raise ValueError(f"split={split!r} needs data_path, the folder holding train/, valid_seen/ and valid_unseen/ "
                         f"($ALFWORLD_DATA/json_2.1.1); the small games shipped in scaled/data/alfworld have no splits")
    root = pathlib.Path(data_path).expanduser().resolve()
    for folder in (root / split, root / "json_2.1.1" / split):
        if folder.is_dir():
            return folder
    raise AlfWorldDataError(f"ALFWorld data_path {str(root)!r} has no {split!r} split: expected the folder "
                            f"{str(root / split)!r} (data_path is the folder holding train/, valid_seen/ and "
                            f"valid_unseen/, e.g. $ALFWORLD_DATA/json_2.1.1). {DOWNLOAD_HELP}")


class AlfWorldEnv(TextEnv):
    """ALFWorld text games (real ``alfworld`` engine) behind the `TextEnv` interface.

    Args:
        data_path: folder in the ALFRED layout (e.g. ``$ALFWORLD_DATA/json_2.1.1/train``); ``None``
            uses the small games shipped in ``scaled/data/alfworld``.
        task_types: task types to keep (names from `TASK_TYPES`); default all six.
        max_steps: steps before truncation (verl-agent uses 50 for ALFWorld).
        game_dir: where to write ``game.tw-pddl`` files that are missing from ``data_path``.
        goal_desc_human_anns_prob: passed to ``add_task_to_grammar`` when building game files.
        expert_plan: put the planner's remaining plan in ``info["expert_plan"]`` (slow: replans each step).
        seed: seeds the choice of game when ``reset`` gets no seed.
        data_dir: deprecated name of ``data_path``.
        split: one of `SPLITS`: play ``data_path/<split>`` (or ``data_path/json_2.1.1/<split>``);
            ``None`` plays every game under ``data_path``.

    Raises:
        AlfWorldDataError: ``data_path`` does not exist or holds no playable game, or has no folder for
            ``split`` (also a ValueError).
        ValueError: a trial's ``traj_data.json`` is unreadable or has no ``task_type``, or a
            ``game.tw-pddl`` is unreadable or lacks a field (the message names the file).

    Importing ``alfworld`` creates ``$ALFWORLD_DATA`` (default ``~/.cache/alfworld``); when it is unset,
    it is set to ``data_path`` first, so nothing is written to the home directory.

    Attributes:
        game_files: the playable game files (sorted); ``task_types_of_games`` their task types.
        task_type, task: those of the current episode.
    """

    name = "alfworld"

    def __init__(self, data_path: str | os.PathLike | None = None, *, task_types=None, max_steps: int = 50,
                 game_dir: str | os.PathLike | None = None, goal_desc_human_anns_prob: float = 0.0,
                 expert_plan: bool = False, seed: int | None = None, data_dir: str | os.PathLike | None = None,
                 split: str | None = None):
        data_path = resolve_data_path(data_path, data_dir, "AlfWorldEnv")
        if split is not None:
            data_path = split_folder(data_path, split)
        self.split = split
        if task_types is None:
            task_types = TASK_TYPES
        if isinstance(task_types, str):
            task_types = [task_types]
        unknown = [t for t in task_types if t not in TASK_TYPES]
        if unknown or not task_types:
            raise ValueError(f"task_types: unknown {unknown or task_types!r}; expected a non-empty subset of {list(TASK_TYPES)}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
        self.data_path = pathlib.Path(data_path).expanduser().resolve() if data_path is not None else SHIPPED_DATA
        if not self.data_path.is_dir():
            raise AlfWorldDataError(f"ALFWorld data_path {str(self.data_path)!r} does not exist. {DOWNLOAD_HELP}")
        _import_alfworld(self.data_path)
        self.task_types = tuple(task_types)
        self.max_steps = max_steps
        tag = hashlib.sha1(str(self.data_path).encode()).hexdigest()[:10]
        self.game_dir = pathlib.Path(game_dir) if game_dir is not None else _default_game_dir() / tag
        self.goal_desc_human_anns_prob = goal_desc_human_anns_prob
        self.request_expert_plan = expert_plan
        self.game_files, self.task_types_of_games = self._collect_games()
        if not self.game_files:
            raise AlfWorldDataError(
                f"No playable ALFWorld games of types {list(self.task_types)} under {str(self.data_path)!r} "
                f"(looked for */traj_data.json with game.tw-pddl or initial_state.pddl). {DOWNLOAD_HELP}")
        self._rng = random.Random(seed)
        self._env = None
        self._loaded = None
        self._state = None
        self.task_type = ""
        self.task = ""
        self.gamefile = ""
        self._steps = 0
        self._won = False

    # ----------------------------------------------------------------- data
    def _collect_games(self) -> tuple[list[str], list[str]]:
        """Walk ``data_path`` like ``AlfredTWEnv.collect_game_files``; build missing game files."""
        games, types = [], []
        traj_paths = sorted(self.data_path.rglob("traj_data.json"))
        if len(traj_paths) > 100:  # the full data set: thousands of folders, show progress
            from tqdm.auto import tqdm

            traj_paths = tqdm(traj_paths, desc="ALFWorld games", leave=False)
        for traj_path in traj_paths:
            trial_dir = traj_path.parent
            rel = trial_dir.relative_to(self.data_path)
            if "movable" in str(rel) or "Sliced" in str(rel):  # not supported by ALFWorld either
                continue
            task_type = read_task_type(traj_path)
            if task_type not in self.task_types:
                continue
            game_file = trial_dir / "game.tw-pddl"
            if not game_file.exists():
                if not (trial_dir / "initial_state.pddl").exists():
                    continue
                game_file = self.game_dir / rel / "game.tw-pddl"
                try:
                    problem = (trial_dir / "initial_state.pddl").read_text(encoding="utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{trial_dir / 'initial_state.pddl'}: not UTF-8 text ({exc.reason})") from None
                stale = True
                if game_file.exists():
                    try:  # a cached build: rebuild it when it is damaged or out of date
                        stale = read_game_file(game_file)["pddl_problem"] != problem
                    except ValueError:
                        stale = True
                if stale:
                    build_game_file(trial_dir, game_file, goal_desc_human_anns_prob=self.goal_desc_human_anns_prob)
            if not read_game_file(game_file).get("solvable"):
                continue
            games.append(str(game_file))
            types.append(task_type)
        return games, types

    @property
    def num_games(self) -> int:
        return len(self.game_files)

    @property
    def num_tasks(self) -> int:
        """Number of games (``reset(options={"task_index": i})`` plays ``game_files[i]``)."""
        return len(self.game_files)

    # ----------------------------------------------------------------- episode
    def _info(self, invalid: bool) -> dict[str, Any]:
        state = self._state
        info = {
            "admissible_commands": [c for c in state["admissible_commands"]],
            "won": bool(state["won"]),
            "invalid_action": invalid,
            "task": self.task,
            "task_type": self.task_type,
            "gamefile": self.gamefile,
            "step": self._steps,
        }
        if self.request_expert_plan:
            info["expert_plan"] = list(state.get("policy_commands") or [])
        return info

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Start a game: ``options={"game_index": i}`` picks one, else ``seed`` (or the env's RNG) does."""
        index = self._episode_index(self.num_games, seed, options, "game_index")
        self.gamefile = self.game_files[index]
        self.task_type = self.task_types_of_games[index]
        if self._env is None:
            self._env = _make_pddl_env(request_policy=self.request_expert_plan)
        if self._loaded != self.gamefile:
            self._env.load(self.gamefile)
            self._loaded = self.gamefile
        self._state = self._env.reset()
        obs = self._state["feedback"]
        match = _TASK_RE.search(obs)
        self.task = match.group(1).rstrip(".") if match else ""
        self._steps = 0
        self._won = False
        return obs, self._info(invalid=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send ``action`` to the engine; non-admissible actions give "Nothing happens." and are flagged."""
        self._check_running(self._state is not None, self._won)
        command = match_admissible(action, self._state["admissible_commands"])
        invalid = command is None
        self._state, _, _ = self._env.step(str(action) if invalid else command)
        won = bool(self._state["won"])
        reward = 1.0 if won and not self._won else 0.0
        self._won = won
        truncated = self._count_step(won)
        return self._state["feedback"], reward, won, truncated, self._info(invalid)

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
            self._loaded = None
