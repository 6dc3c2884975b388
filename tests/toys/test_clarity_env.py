"""Clarity-v0: the fork, the two routes' labels, the optimal-action sets per state, determinism.

Expected values are derived by hand from the maps in toy_envs/maps/clarity_*.txt, written out in the
comments next to each test.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import toy_envs
from toy_envs import ClarityEnv, optimal_actions

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

# clarity_default (rows 0..10, cols 0..8):
#   #########
#   #ccccccG#      corridor (1,1)..(1,6), its goal G=(1,7)
#   #S#######      S=(2,1): the fork (up: corridor, down: triangle)
#   #ooooooG#      triangle cells (3+i, 1+j) with i + j < 6, goals on i + j = 6
#   #oooooG##
#   #ooooG###
#   #oooG####
#   #ooG#####
#   #oG######
#   #G#######
#   #########
# Both routes: 1 step off the fork + 6 = 7. Cells: 6 c + 21 o + 8 G (7 on the triangle's edge, 1 at the
# corridor's end) + S = 36 ids (no fog, one phase).
D_DEFAULT, D_SMALL = 6, 4
PREDICTABLE_PLAN = [UP] + [RIGHT] * 6
OPEN_PLANS = [[DOWN] + [RIGHT] * 6, [DOWN] * 7, [DOWN, RIGHT, DOWN, RIGHT, DOWN, RIGHT, DOWN]]


def triangle_cells(d):
    """The open route's cells (3 + i, 1 + j), i + j < d, and its goals (i + j = d)."""
    cells = [(3 + i, 1 + j) for i in range(d) for j in range(d - i)]
    goals = [(3 + i, 1 + d - i) for i in range(d + 1)]
    return cells, goals


@pytest.mark.parametrize("render_mode", [None, "rgb_array", "ansi"])
@pytest.mark.parametrize("layout", ["default", "small"])
def test_check_env(layout, render_mode):
    env = gym.make("toy_envs/Clarity-v0", layout=layout, render_mode=render_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env.unwrapped, skip_render_check=False)


def test_registered_and_sizes():
    assert gym.registry["toy_envs/Clarity-v0"].entry_point == "toy_envs.gridworld:ClarityEnv"
    assert "toy_envs/Clarity-v0" in toy_envs.ENV_IDS
    assert toy_envs.layout_names("clarity") == ["default", "small"]
    for layout, d, n_states in (("default", D_DEFAULT, 36), ("small", D_SMALL, 21)):
        env = ClarityEnv(layout)
        _, info = env.reset(seed=0)
        # corridor d cells + triangle d(d+1)/2 cells + (d + 1) + 1 goals + S
        assert n_states == d + d * (d + 1) // 2 + (d + 2) + 1
        assert env.observation_space == gym.spaces.Discrete(n_states)
        assert info["optimal_steps"] == d + 1 and info["max_steps"] == 3 * (d + 1)
        assert len(optimal_actions(env)) == d + 1
        assert info["route"] is None


def test_no_aliasing_every_cell_has_its_own_id():
    env = ClarityEnv()
    ids = [env.observation_of(pos) for pos in env.layout.cells]
    assert sorted(ids) == list(range(env.observation_space.n))  # a bijection cells <-> ids


def test_both_routes_win_in_the_same_number_of_steps():
    for plan, route in [(PREDICTABLE_PLAN, "predictable")] + [(p, "open") for p in OPEN_PLANS]:
        env = ClarityEnv()
        env.reset(seed=0)
        for i, a in enumerate(plan):
            _, reward, terminated, truncated, info = env.step(a)
            assert info["route"] == route
            assert terminated == (i == len(plan) - 1) and not truncated
        assert reward == 1.0 and info["success"] and info["steps"] == D_DEFAULT + 1


def test_route_labels_of_every_cell():
    env = ClarityEnv()
    cells, goals = triangle_cells(D_DEFAULT)
    corridor = [(1, 1 + j) for j in range(D_DEFAULT)]
    for pos in env.layout.cells:
        expected = "predictable" if pos in corridor else "open" if pos in cells else None
        assert env.route_of(pos) == expected, pos
    assert sorted(env.layout.goals) == sorted(goals + [(1, 1 + D_DEFAULT)])
    # the route is the one entered most recently: into the corridor, back through the fork, into the triangle
    env.reset(seed=0)
    assert env.step(UP)[4]["route"] == "predictable"
    assert env.step(DOWN)[4]["route"] == "predictable"  # back on the fork: no route tile, the label stays
    assert env.step(DOWN)[4]["route"] == "open"


@pytest.mark.parametrize(("layout", "d"), [("default", D_DEFAULT), ("small", D_SMALL)])
def test_optimal_action_sets_per_state(layout, d):
    env = ClarityEnv(layout)
    sets = env.optimal_action_sets()
    table = env.optimal_action_table()
    cells, goals = triangle_cells(d)
    seen = 0
    for pos in env.layout.cells:
        obs = env.observation_of(pos)
        if pos == env.layout.start:
            assert sets[obs] == (UP, DOWN)  # the fork: both routes are optimal
        elif env.route_of(pos) == "predictable":
            assert sets[obs] == (RIGHT,)  # the corridor: exactly one right move
        elif env.route_of(pos) == "open":
            assert sets[obs] == (RIGHT, DOWN)  # the triangle: two equally right moves, in every state
            seen += 1
        else:
            assert pos in env.layout.goals and sets[obs] == ()
        assert table[obs] == (sets[obs][0] if sets[obs] else -1)
    assert seen == len(cells) == d * (d + 1) // 2


def test_optimal_action_sets_are_what_bfs_says():
    """Every action in a state's set shortens the distance by one; every other action does not."""
    env = ClarityEnv()
    sets = env.optimal_action_sets()
    for pos in env.layout.cells:
        if pos in env.layout.goals:
            continue
        s = env._state_id(pos, 0)
        d = env._dist[s]
        for a in range(4):
            assert (a in sets[env.observation_of(pos)]) == (env._dist[env._next[s, a]] == d - 1)


def test_fog_optimal_action_sets_mark_the_aliased_id():
    env = toy_envs.FogEnv("small")
    sets = env.optimal_action_sets()
    fog_id = env.observation_of((4, 1))
    assert sets[fog_id] == ()  # fog cells disagree (down, right, up all occur)
    assert sets[env.observation_of((3, 1))] == (UP, DOWN)  # the fork of Fog-v0


def test_determinism_any_seed():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=200).tolist()

    def run(seed):
        env = ClarityEnv()
        out = [env.reset(seed=seed)[0]]
        for a in actions:
            obs, reward, terminated, truncated, info = env.step(a)
            out.append((obs, reward, terminated, truncated, info["route"], info["pos"]))
            if terminated or truncated:
                out.append(env.reset(seed=seed)[0])
        return out

    assert run(0) == run(0) == run(123)  # no slip: the seed changes nothing


def test_seeded_slip_is_reproducible():
    def run(seed):
        env = ClarityEnv(slip_prob=0.5)
        env.reset(seed=seed)
        out = []
        for _ in range(40):
            _, _, terminated, truncated, info = env.step(LEFT)  # a wall at the fork: only slips move the agent
            out.append(info["pos"])
            if terminated or truncated:
                env.reset()
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize(
    "layout",
    [
        "#####\n#S.G#\n#####",  # no route tiles
        "#######\n#ScG~#\n#o####\n#G####\n#######",  # fog is not allowed
        "#####\n#ScG#\n#####",  # no open route
    ],
)
def test_bad_layouts_raise_naming_layout(layout):
    with pytest.raises(ValueError, match="layout"):
        ClarityEnv(layout)


def test_several_goals_only_where_allowed():
    from toy_envs.gridworld import parse_layout

    two_goals = "#######\n#GcSoG#\n#######"
    with pytest.raises(ValueError, match="exactly one goal"):
        parse_layout(two_goals)
    assert parse_layout(two_goals, many_goals=True).goals == ((1, 1), (1, 5))
    env = ClarityEnv(two_goals)  # left: the predictable goal, right: the open one; 2 steps either way
    env.reset(seed=0)
    assert env.step(LEFT)[4]["route"] == "predictable"
    _, reward, terminated, _, info = env.step(LEFT)
    assert reward == 1.0 and terminated and info["success"] and info["route"] == "predictable"
    with pytest.raises(ValueError, match="at least one goal"):
        parse_layout("#####\n#Sco#\n#####", many_goals=True)



def test_random_walk_infos_reproduces_the_random_policy_table():
    """docs/toys.md, "How hard is exploration?": KeyDoor default at 3x optimal 1/2000, Clarity small 142 p / 528 o."""
    from toy_envs.gridworld import random_walk_infos

    keydoor = random_walk_infos(gym.make("toy_envs/KeyDoor-v0", max_steps=66).unwrapped, 2000)
    assert sum(i["success"] for i in keydoor) == 1
    clarity = random_walk_infos(gym.make("toy_envs/Clarity-v0", layout="small").unwrapped, 2000)
    routes = [i["route"] for i in clarity if i["success"]]
    assert (routes.count("predictable"), routes.count("open")) == (142, 528)
    with pytest.raises(ValueError, match="episodes"):
        random_walk_infos(gym.make("toy_envs/Clarity-v0").unwrapped, 0)
