"""Gridworlds from text maps: the long-horizon ``KeyDoor-v0``, the aliased ``Fog-v0`` and ``Clarity-v0``.

A layout is a rectangle of characters, one per cell:

====  ==========================================================================
char  meaning
====  ==========================================================================
``#``  wall (the agent cannot enter it; moving off the map also counts as a wall)
``.``  floor
``S``  start (floor; exactly one)
``G``  goal (floor; entering it ends the episode with reward 1; exactly one, except in ``Clarity-v0``)
``K``  key (floor; entering it picks the key up; at most one)
``D``  door (a wall until the agent walks into it holding the key; then it opens for good)
``~``  fog (floor whose observation is aliased: every fog cell emits the same id)
``c``  clear-route floor (plain floor, tagged so ``Fog-v0``/``Clarity-v0`` can report ``info["route"]``)
``o``  open-route floor (plain floor, tagged so ``Clarity-v0`` can report ``info["route"]``)
====  ==========================================================================

Actions are ``Discrete(4)``: 0 = up, 1 = right, 2 = down, 3 = left. Walking into a wall, off
the map or into a closed door without the key leaves the agent where it is (the step still
counts). Walking into the closed door *with* the key opens it and moves the agent onto it.

Markov state and observation. The state is (cell, has_key, door_open). Since the door only
opens for the key holder, door_open implies has_key, so the pair is one *phase*
``phase = has_key + door_open`` in {0, 1, 2}; a layout without a key has one phase, one with a
key but no door two, one with both three. Clear (non-fog) cells are numbered 0..C-1 in
row-major order and fog cells share one id per phase:

    obs = phase * (C + F) + clear_index(cell)   for a clear cell,
    obs = phase * (C + F) + C                   for any fog cell,

with F = 1 if the layout has fog and 0 otherwise, and ``num_states = n_phases * (C + F)``.
Without fog the observation is the full Markov state, so a tabular softmax policy
``pi(a | obs)`` applies directly; with fog it is not, which is the point of ``Fog-v0``.
(Some ids, such as phase 0 on the door cell, can never occur; a tabular policy just never
visits those rows.)

Reward is 1.0 on the step that enters ``G`` (``terminated=True``) and 0.0 on every other step.
The episode is truncated after ``max_steps`` steps (default: 3 x the optimal number of steps,
found by breadth-first search over the Markov states). ``truncated`` is False on a step that
reaches the goal, even if it is the last allowed one.
"""

from __future__ import annotations

import textwrap
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "ACTION_NAMES",
    "ClarityEnv",
    "FogEnv",
    "GridLayout",
    "GridWorldEnv",
    "KeyDoorEnv",
    "layout_names",
    "load_layout",
    "optimal_actions",
    "parse_layout",
    "random_walk_infos",
]

WALL, FLOOR, START, GOAL, KEY, DOOR, FOG, CLEAR, OPEN = "#", ".", "S", "G", "K", "D", "~", "c", "o"
TILES = frozenset(WALL + FLOOR + START + GOAL + KEY + DOOR + FOG + CLEAR + OPEN)
ACTION_NAMES = ("up", "right", "down", "left")
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # (d_row, d_col) for up, right, down, left

MAPS_DIR = Path(__file__).resolve().parent / "maps"

# RGB colours for render_mode="rgb_array".
_COLOURS = {
    WALL: (60, 60, 60),
    FLOOR: (235, 235, 235),
    START: (235, 235, 235),
    CLEAR: (220, 235, 250),  # a faint blue tint marks the clear route
    OPEN: (245, 235, 215),  # a faint sand tint marks the open route
    FOG: (150, 150, 165),
    GOAL: (80, 190, 90),
    KEY: (235, 235, 235),  # floor under the key; the key itself is drawn on top
    DOOR: (140, 90, 40),  # closed; an open door is drawn lighter
}
_OPEN_DOOR = (215, 185, 140)
_KEY_COLOUR = (240, 200, 30)
_AGENT_COLOUR = (220, 50, 50)


@dataclass(frozen=True)
class GridLayout:
    """A parsed text map.

    Attributes:
        rows: the map, one string per row, all the same length.
        start, goal: (row, col) of ``S`` and of the first ``G`` (row-major).
        key, door: (row, col) of ``K`` and ``D``, or None when absent.
        cells: (row, col) of every non-wall cell, row-major; a cell's index in it is its cell index.
        goals: (row, col) of every ``G``, row-major (one cell unless the map was parsed with ``many_goals``).
    """

    rows: tuple[str, ...]
    start: tuple[int, int]
    goal: tuple[int, int]
    key: tuple[int, int] | None
    door: tuple[int, int] | None
    cells: tuple[tuple[int, int], ...]
    goals: tuple[tuple[int, int], ...] = ()

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0])

    def tile(self, pos: tuple[int, int]) -> str:
        """The map character at (row, col); ``#`` outside the map."""
        r, c = pos
        if 0 <= r < self.height and 0 <= c < self.width:
            return self.rows[r][c]
        return WALL

    @property
    def n_phases(self) -> int:
        """1 without a key, 2 with a key and no door, 3 with both (phase = has_key + door_open)."""
        return 1 + (self.key is not None) + (self.door is not None)

    @property
    def has_fog(self) -> bool:
        return any(FOG in row for row in self.rows)

    def text(self) -> str:
        return "\n".join(self.rows)


def layout_names(family: str) -> list[str]:
    """Names of the built-in layouts of a family ("keydoor", "fog" or "clarity"), from ``maps/<family>_<name>.txt``."""
    return sorted(p.stem[len(family) + 1 :] for p in MAPS_DIR.glob(f"{family}_*.txt"))


def load_layout(layout: str | Sequence[str], *, family: str) -> str:
    """Map text for ``layout``: a built-in name of ``family``, a text map (has a newline), or a list of rows.

    Raises:
        ValueError: naming ``layout`` when it is neither a known name nor a map.
        TypeError: when ``layout`` is not a string or a sequence of strings.
    """
    if isinstance(layout, str):
        if "\n" in layout:
            return layout
        path = MAPS_DIR / f"{family}_{layout}.txt"
        if layout and "/" not in layout and path.is_file():
            return path.read_text()
        raise ValueError(
            f"layout: unknown layout name {layout!r}; expected one of {layout_names(family)} "
            "or a text map with one row per line"
        )
    if isinstance(layout, Sequence) and layout and all(isinstance(row, str) for row in layout):
        return "\n".join(layout)
    raise TypeError(f"layout: expected a layout name, a text map or a list of row strings, got {layout!r}")


def parse_layout(text: str, *, many_goals: bool = False) -> GridLayout:
    """Parse a text map (see the module docstring for the characters).

    With ``many_goals`` the map may hold several ``G`` cells (entering any of them succeeds).

    Leading/trailing blank lines and a common indentation are removed, and each row is stripped
    on the right, so maps can be written as indented triple-quoted strings.

    Raises:
        ValueError: naming ``layout`` when the map is ragged, has an unknown character, or does
            not have exactly one ``S`` and one ``G``, at most one ``K`` and ``D``, or a ``D`` but no ``K``.
    """
    lines = [line.rstrip() for line in textwrap.dedent(text).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ValueError("layout: the map is empty")
    width = len(lines[0])
    for i, line in enumerate(lines):
        if len(line) != width:
            raise ValueError(f"layout: row {i} has {len(line)} characters, expected {width} (maps must be rectangular)")
        bad = sorted(set(line) - TILES)
        if bad:
            raise ValueError(f"layout: row {i} has unknown character(s) {bad}; expected only {''.join(sorted(TILES))!r}")

    def find(ch: str) -> list[tuple[int, int]]:
        return [(r, c) for r, line in enumerate(lines) for c, x in enumerate(line) if x == ch]

    found = {ch: find(ch) for ch in (START, GOAL, KEY, DOOR)}
    if len(found[START]) != 1:
        raise ValueError(f"layout: expected exactly one start {START!r}, found {len(found[START])}")
    if not found[GOAL] or (len(found[GOAL]) > 1 and not many_goals):
        raise ValueError(f"layout: expected {'at least' if many_goals else 'exactly'} one goal {GOAL!r}, "
                         f"found {len(found[GOAL])}")
    for ch, what in ((KEY, "key"), (DOOR, "door")):
        if len(found[ch]) > 1:
            raise ValueError(f"layout: expected at most one {what} {ch!r}, found {len(found[ch])}")
    if found[DOOR] and not found[KEY]:
        raise ValueError("layout: a door 'D' needs a key 'K'")
    cells = tuple((r, c) for r, line in enumerate(lines) for c, x in enumerate(line) if x != WALL)
    return GridLayout(
        rows=tuple(lines),
        start=found[START][0],
        goal=found[GOAL][0],
        key=found[KEY][0] if found[KEY] else None,
        door=found[DOOR][0] if found[DOOR] else None,
        cells=cells,
        goals=tuple(found[GOAL]),
    )


class GridWorldEnv(gym.Env):
    """A deterministic gridworld on a text map with key, door, fog and goal (see the module docstring).

    Args:
        layout: a built-in layout name of this class's family (``layout_names(family)``), a text
            map string, or a list of row strings. Subclasses have a default.
        max_steps: truncate after this many steps; None means ``3 * optimal_steps``.
        slip_prob: probability in [0, 1) that an action is replaced by a uniformly random one
            (drawn from ``self.np_random``, so seeded); 0 makes the dynamics deterministic.
        render_mode: None, "rgb_array" (``uint8 [H*cell_size, W*cell_size, 3]``) or "ansi" (a string).
        cell_size: pixels per cell for "rgb_array".

    Observation: ``Discrete(num_states)``, see the module docstring. Reset info holds
    ``optimal_steps`` and ``max_steps``; every info holds ``pos`` (row, col), ``has_key``,
    ``door_open``, ``steps`` and ``success``.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}
    family: str = "keydoor"
    default_layout: str | None = None
    many_goals: bool = False  # whether a layout may have several G cells

    def __init__(
        self,
        layout: str | Sequence[str] | None = None,
        *,
        max_steps: int | None = None,
        slip_prob: float = 0.0,
        render_mode: str | None = None,
        cell_size: int = 16,
    ):
        if layout is None:
            if self.default_layout is None:
                raise ValueError("layout: this environment has no default layout; pass a name or a text map")
            layout = self.default_layout
        self.layout = parse_layout(load_layout(layout, family=self.family), many_goals=self.many_goals)
        self._validate_layout(self.layout)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)) or cell_size < 1:
            raise ValueError(f"cell_size: expected a positive int, got {cell_size!r}")
        self.cell_size = int(cell_size)
        if isinstance(slip_prob, bool) or not isinstance(slip_prob, (int, float, np.floating)) or not 0.0 <= slip_prob < 1.0:
            raise ValueError(f"slip_prob: expected a float in [0, 1), got {slip_prob!r}")
        self.slip_prob = float(slip_prob)

        self._build_tables()
        start_state = self._state_id(self.layout.start, 0)
        if self._dist[start_state] < 0:
            raise ValueError("layout: the goal cannot be reached from the start")
        self.optimal_steps = int(self._dist[start_state])
        if max_steps is None:
            max_steps = 3 * self.optimal_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive int or None, got {max_steps!r}")
        self.max_steps = int(max_steps)

        self.action_space = spaces.Discrete(4)
        self.observation_space = spaces.Discrete(self.num_states)
        self._pos = self.layout.start
        self._phase = 0
        self._steps = 0
        self._done = True

    # ----- layout and tables -------------------------------------------------------------------
    def _validate_layout(self, layout: GridLayout) -> None:
        """Hook for subclasses to require tiles (raise ValueError naming ``layout``)."""

    def _build_tables(self) -> None:
        """Index cells, observations, the transition table and BFS distances to the goal."""
        lay = self.layout
        self._cell_index = {pos: i for i, pos in enumerate(lay.cells)}
        n_cells = len(lay.cells)
        self.n_phases = lay.n_phases
        clear = [pos for pos in lay.cells if lay.tile(pos) != FOG]
        self._clear_index = {pos: i for i, pos in enumerate(clear)}
        self._obs_per_phase = len(clear) + int(lay.has_fog)
        self.num_states = self.n_phases * self._obs_per_phase
        n_states = self.n_phases * n_cells
        # next_state[s, a] for the full Markov state s = phase * n_cells + cell.
        self._next = np.zeros((n_states, 4), dtype=np.int64)
        for phase in range(self.n_phases):
            for pos in lay.cells:
                s = self._state_id(pos, phase)
                for a in range(4):
                    npos, nphase = self._transition(pos, phase, a)
                    self._next[s, a] = self._state_id(npos, nphase)
        # Breadth-first search backwards from every goal state: dist[s] = fewest steps to the goal.
        self._dist = np.full(n_states, -1, dtype=np.int64)
        self._goal_cells = frozenset(lay.goals)
        goal_states = [self._state_id(g, p) for g in lay.goals for p in range(self.n_phases)]
        preds: list[list[int]] = [[] for _ in range(n_states)]
        goal_set = set(goal_states)
        for s in range(n_states):
            if s in goal_set:
                continue  # the goal is terminal
            for a in range(4):
                preds[self._next[s, a]].append(s)
        queue = deque(goal_states)
        for g in goal_states:
            self._dist[g] = 0
        while queue:
            s = queue.popleft()
            for p in preds[s]:
                if self._dist[p] < 0:
                    self._dist[p] = self._dist[s] + 1
                    queue.append(p)
        # Per Markov state: its cell, its phase and the observation it emits (step() looks these up).
        self._state_pos = [pos for _ in range(self.n_phases) for pos in lay.cells]
        self._state_phase = [phase for phase in range(self.n_phases) for _ in lay.cells]
        self._state_obs = [self.observation_of(pos, phase >= 1, phase >= 2)
                           for phase, pos in zip(self._state_phase, self._state_pos)]
        self._next_list = self._next.tolist()

    def _state_id(self, pos: tuple[int, int], phase: int) -> int:
        return phase * len(self.layout.cells) + self._cell_index[pos]

    def _transition(self, pos: tuple[int, int], phase: int, action: int) -> tuple[tuple[int, int], int]:
        """Deterministic move: (pos, phase) --action--> (pos', phase'); see the module docstring."""
        lay = self.layout
        npos = (pos[0] + _MOVES[action][0], pos[1] + _MOVES[action][1])
        tile = lay.tile(npos)
        if tile == WALL:
            return pos, phase
        if tile == DOOR and phase < 2:
            return (npos, 2) if phase == 1 else (pos, phase)  # open it with the key, else bump
        if tile == KEY and phase == 0:
            return npos, 1
        return npos, phase

    def observation_of(self, pos: tuple[int, int], has_key: bool = False, door_open: bool = False) -> int:
        """The observation id the agent receives at ``pos`` with that inventory (see the module docstring)."""
        pos = (int(pos[0]), int(pos[1]))
        if pos not in self._cell_index:
            raise ValueError(f"pos: {pos} is not a non-wall cell of the layout")
        phase = int(bool(has_key)) + int(bool(door_open))
        if phase >= self.n_phases or (door_open and not has_key):
            raise ValueError(f"has_key/door_open: ({has_key}, {door_open}) is impossible in this layout")
        base = phase * self._obs_per_phase
        if self.layout.tile(pos) == FOG:
            return base + len(self._clear_index)
        return base + self._clear_index[pos]

    # ----- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        """Start an episode at ``S`` without the key. ``options`` is accepted and must be None or empty."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"options: this environment takes no reset options, got {sorted(options)}")
        self._pos = self.layout.start
        self._phase = 0
        self._steps = 0
        self._done = False
        self._on_reset()
        info = self._info()
        info["optimal_steps"] = self.optimal_steps
        info["max_steps"] = self.max_steps
        return self._obs(), info

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        """Move one cell; reward 1.0 only on entering the goal; truncate at ``max_steps``."""
        # A plain int in range skips gymnasium's (slow) Discrete.contains; anything else goes through it.
        if not (type(action) is int and 0 <= action < 4) and not self.action_space.contains(action):
            raise ValueError(f"action: expected an int in [0, 4), got {action!r}")
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        action = int(action)
        if self.slip_prob > 0.0 and self.np_random.random() < self.slip_prob:
            action = int(self.np_random.integers(4))
        state = self._next_list[self._state_id(self._pos, self._phase)][action]  # = _transition(pos, phase, action)
        self._pos, self._phase = self._state_pos[state], self._state_phase[state]
        self._steps += 1
        self._on_move()
        terminated = self._pos in self._goal_cells
        truncated = (not terminated) and self._steps >= self.max_steps
        self._done = terminated or truncated
        reward = 1.0 if terminated else 0.0
        return self._state_obs[state], reward, terminated, truncated, self._info()

    def _on_reset(self) -> None:
        """Hook: extra per-episode bookkeeping."""

    def _on_move(self) -> None:
        """Hook: called after every move."""

    def _obs(self) -> int:
        return self._state_obs[self._state_id(self._pos, self._phase)]

    def _info(self) -> dict[str, Any]:
        return {
            "pos": self._pos,
            "has_key": self._phase >= 1,
            "door_open": self._phase >= 2,
            "steps": self._steps,
            "success": self._pos in self._goal_cells,
        }

    # ----- expert ------------------------------------------------------------------------------
    def expert_action(self) -> int:
        """An optimal action from the current state (BFS; ties go to the lowest action id).

        The expert sees the true position, not the (possibly aliased) observation.
        """
        s = self._state_id(self._pos, self._phase)
        d = self._dist[s]
        if d <= 0:
            raise RuntimeError("expert_action: the episode is at the goal (or the goal is unreachable)")
        for a in range(4):
            if self._dist[self._next[s, a]] == d - 1:
                return a
        raise AssertionError("unreachable: BFS distances are inconsistent")  # pragma: no cover

    def optimal_action_table(self) -> np.ndarray:
        """``int64 [num_states]``: the optimal action for each observation id, -1 where there is none.

        -1 marks the goal, ids that never occur, and aliased fog ids (no single action is right
        there). Ties go to the lowest action id. Handy to check a learned tabular policy, or to
        build a prior for it.
        """
        table = np.full(self.num_states, -1, dtype=np.int64)
        owners: dict[int, list[int]] = {}
        for phase in range(self.n_phases):
            for pos in self.layout.cells:
                obs = self.observation_of(pos, phase >= 1, phase >= 2)
                owners.setdefault(obs, []).append(self._state_id(pos, phase))
        for obs, states in owners.items():
            if len(states) != 1 or self._dist[states[0]] <= 0:
                continue
            s = states[0]
            table[obs] = next(a for a in range(4) if self._dist[self._next[s, a]] == self._dist[s] - 1)
        return table

    def optimal_action_sets(self) -> list[tuple[int, ...]]:
        """Per observation id, every optimal action (ascending): the moves that shorten the way to a goal.

        ``()`` marks the goal cells, ids that never occur, and aliased ids (fog) whose cells differ in
        their optimal actions. ``optimal_action_table()[obs]`` is the first entry of each non-empty set.
        """
        sets: list[tuple[int, ...] | None] = [None] * self.num_states
        seen = [False] * self.num_states
        for phase in range(self.n_phases):
            for pos in self.layout.cells:
                obs = self.observation_of(pos, phase >= 1, phase >= 2)
                s = self._state_id(pos, phase)
                best = () if self._dist[s] <= 0 else tuple(
                    a for a in range(4) if self._dist[self._next[s, a]] == self._dist[s] - 1)
                if seen[obs] and sets[obs] != best:
                    best = ()  # cells that share the id disagree
                sets[obs], seen[obs] = best, True
        return [x if x is not None else () for x in sets]

    def optimal_plan(self) -> list[int]:
        """The optimal action sequence from the current state to the goal (ties to the lowest id)."""
        s = self._state_id(self._pos, self._phase)
        if self._dist[s] < 0:
            raise RuntimeError("optimal_plan: the goal is unreachable from the current state")
        plan = []
        while self._dist[s] > 0:
            a = next(a for a in range(4) if self._dist[self._next[s, a]] == self._dist[s] - 1)
            plan.append(a)
            s = self._next[s, a]
        return plan

    # ----- rendering ---------------------------------------------------------------------------
    def render(self) -> np.ndarray | str | None:
        """"rgb_array": ``uint8 [H*cell_size, W*cell_size, 3]``; "ansi": the map with the agent as ``A``."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'ansi'")
            return None
        if self.render_mode == "ansi":
            return self._render_ansi()
        return self._render_rgb()

    def _tile_now(self, pos: tuple[int, int]) -> str:
        """The tile as it looks now: the key vanishes once taken, an open door is drawn ``/``."""
        tile = self.layout.tile(pos)
        if tile == KEY and self._phase >= 1:
            return FLOOR
        if tile == DOOR and self._phase >= 2:
            return "/"
        return tile

    def _render_ansi(self) -> str:
        rows = []
        for r in range(self.layout.height):
            rows.append("".join("A" if (r, c) == self._pos else self._tile_now((r, c)) for c in range(self.layout.width)))
        status = (
            f"step {self._steps}/{self.max_steps}  pos {self._pos}  key {'yes' if self._phase >= 1 else 'no'}"
            f"  door {'open' if self._phase >= 2 else 'closed'}"
        )
        return "\n".join(rows) + "\n" + status + "\n"

    def _render_rgb(self) -> np.ndarray:
        cs = self.cell_size
        img = np.zeros((self.layout.height * cs, self.layout.width * cs, 3), dtype=np.uint8)
        pad = max(1, cs // 4)
        for r in range(self.layout.height):
            for c in range(self.layout.width):
                tile = self._tile_now((r, c))
                cell = img[r * cs : (r + 1) * cs, c * cs : (c + 1) * cs]
                cell[:] = _OPEN_DOOR if tile == "/" else _COLOURS.get(tile, _COLOURS[FLOOR])
                if tile == KEY:
                    cell[pad : cs - pad, pad : cs - pad] = _KEY_COLOUR
                if (r, c) == self._pos:
                    cell[pad : cs - pad, pad : cs - pad] = _AGENT_COLOUR
                    if self._phase >= 1 and cs >= 4:  # the carried key: a dot on the agent
                        m = cs // 2
                        cell[m - 1 : m + 1, m - 1 : m + 1] = _KEY_COLOUR
                if cs >= 4:  # thin grid lines
                    cell[-1, :] = (200, 200, 200) if tile != WALL else _COLOURS[WALL]
                    cell[:, -1] = (200, 200, 200) if tile != WALL else _COLOURS[WALL]
        return img


class KeyDoorEnv(GridWorldEnv):
    """``toy_envs/KeyDoor-v0``: take the key, open the door, reach the goal; reward 1 only on success.

    A long-horizon, sparse-reward task: the default layout needs 22 steps (BFS), and the episode
    is truncated at ``max_steps`` (default 3 x optimal). Built-in layouts: "small" (8 steps, for
    tests and tutorials), "default" (22) and "large" (35); maps in ``docs/toys.md``. A layout must
    have ``K`` and ``D``, the key must be reachable without the door, and the goal must not be.
    Observation ``Discrete(n_phases * n_cells)``: the full Markov state (cell, has_key, door_open).
    """

    family = "keydoor"
    default_layout = "default"

    def _validate_layout(self, layout: GridLayout) -> None:
        if layout.key is None or layout.door is None:
            raise ValueError("layout: a KeyDoor layout needs a key 'K' and a door 'D'")
        # Without the door (treated as a wall) the key must be reachable and the goal must not be.
        seen = {layout.start}
        stack = [layout.start]
        while stack:
            r, c = stack.pop()
            for dr, dc in _MOVES:
                nxt = (r + dr, c + dc)
                if nxt not in seen and layout.tile(nxt) not in (WALL, DOOR):
                    seen.add(nxt)
                    stack.append(nxt)
        if any(g in seen for g in layout.goals):
            raise ValueError("layout: the goal can be reached without passing the door; wall it off")
        if layout.key not in seen:
            raise ValueError("layout: the key must be reachable from the start without passing the door")


class FogEnv(GridWorldEnv):
    """``toy_envs/Fog-v0``: two equally long routes to the goal, one through aliased fog.

    Every fog cell (``~``) emits the same observation id, while clear cells have their own ids.
    The built-in layouts are mirror images top/bottom: the clear route (tagged ``c``) runs above,
    the fog route below, with the same length, so an agent that knew where it was would succeed
    equally on both. Inside the fog the correct action changes from cell to cell (down, right, up),
    so a tabular policy over observations cannot be confident *and correct* there (it can become
    confident and wrong: the shared id gets the most updates); on the clear route each cell
    has its own id and a deterministic policy can learn it. Built-in layouts: "default" (24 steps
    either way) and "small" (8 steps).

    ``info["route"]`` is the region the agent entered most recently: "fog" after entering a ``~``
    cell, "clear" after entering a ``c`` cell, None before either (start, or cells with neither
    tag). At the end of an episode it says which route the agent took last; for a successful episode
    it is the route through which the goal was reached. ``info["fog_steps"]`` counts steps that
    ended in fog.
    """

    family = "fog"
    default_layout = "default"

    def _validate_layout(self, layout: GridLayout) -> None:
        if not layout.has_fog or not any(CLEAR in row for row in layout.rows):
            raise ValueError("layout: a Fog layout needs fog '~' cells and clear-route 'c' cells")

    def _on_reset(self) -> None:
        self._route: str | None = None
        self._fog_steps = 0

    def _on_move(self) -> None:
        tile = self.layout.tile(self._pos)
        if tile == FOG:
            self._route = "fog"
            self._fog_steps += 1
        elif tile == CLEAR:
            self._route = "clear"

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["route"] = getattr(self, "_route", None)
        info["fog_steps"] = getattr(self, "_fog_steps", 0)
        return info


def optimal_actions(env: gym.Env) -> list[int]:
    """The optimal action sequence from ``env``'s current state to the goal (BFS over Markov states).

    Works through wrappers (uses ``env.unwrapped``); does not step the env. Ties go to the lowest
    action id (0 up, 1 right, 2 down, 3 left).
    """
    base = env.unwrapped
    if not isinstance(base, GridWorldEnv):
        raise TypeError(f"env: expected a toy_envs gridworld, got {type(base).__name__}")
    return base.optimal_plan()


def random_walk_infos(env: gym.Env, episodes: int, seed: int = 0) -> list[dict]:
    """The final ``info`` of ``episodes`` uniformly random episodes (a baseline for any gridworld).

    Episode ``i`` starts from ``env.reset(seed=i)``; every action comes from one
    ``numpy.random.default_rng(seed)``, as in the random-policy script of the toys page.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    rng = np.random.default_rng(seed)
    n_actions = int(env.action_space.n)
    infos = []
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(int(rng.integers(n_actions)))
            done = terminated or truncated
        infos.append(info)
    return infos


class ClarityEnv(GridWorldEnv):
    """``toy_envs/Clarity-v0``: two equally long routes, one with one right move per state, one with two.

    The case the future-clarity bonus (Eq. 11) is meant for, without aliasing: the observation is the
    Markov state (every cell has its own id). From the start ``S`` (the fork: up or down) one route is a
    corridor (``c`` cells, ``info["route"] == "predictable"``) where every state has exactly one move
    that gets closer to a goal, so a learning policy can become confident there. The other is an open
    triangle (``o`` cells, ``info["route"] == "open"``) whose far edge is a row of goals ``G``: in every
    one of its states two moves (right and down) get equally closer, so nothing pushes the policy's
    entropy there towards 0. Both routes are equally long, and a deterministic policy succeeds on either
    with probability 1. Built-in layouts: "default" and "small"; maps in ``docs/toys.md``.

    ``info["route"]`` is the route the agent entered most recently ("predictable" after a ``c`` cell,
    "open" after an ``o`` cell, None before either); for a successful episode, the route through which
    it reached a goal. A layout must have ``c`` and ``o`` cells and no fog; it may have several ``G``.
    """

    family = "clarity"
    default_layout = "default"
    many_goals = True
    ROUTES = {CLEAR: "predictable", OPEN: "open"}

    def _validate_layout(self, layout: GridLayout) -> None:
        if layout.has_fog:
            raise ValueError("layout: a Clarity layout has no fog '~' (the observation must be the Markov state)")
        tiles = {layout.tile(pos) for pos in layout.cells}
        if CLEAR not in tiles or OPEN not in tiles:
            raise ValueError("layout: a Clarity layout needs predictable-route 'c' cells and open-route 'o' cells")

    def route_of(self, pos: tuple[int, int]) -> str | None:
        """"predictable" for a ``c`` cell, "open" for an ``o`` cell, None for any other cell."""
        return self.ROUTES.get(self.layout.tile((int(pos[0]), int(pos[1]))))

    def _on_reset(self) -> None:
        self._route: str | None = None

    def _on_move(self) -> None:
        route = self.ROUTES.get(self.layout.tile(self._pos))
        if route is not None:
            self._route = route

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["route"] = getattr(self, "_route", None)
        return info
