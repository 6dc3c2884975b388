"""Gridworld toys: KeyDoor-v0 and Fog-v0 (conformance, dynamics, aliasing, rendering, errors).

Expected values (optimal lengths, state counts, routes) are derived by hand from the maps in
toy_envs/maps/ and written in comments next to each test.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import toy_envs
from toy_envs import FogEnv, KeyDoorEnv, optimal_actions

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

# keydoor_small (rows 0..4, cols 0..6):
#   #######
#   #S..#G#      S=(1,1)  G=(1,5)
#   #...D.#      D=(2,4)
#   #K..#.#      K=(3,1)
#   #######
# Hand plan: down, down (take K) -> right, right -> up to (2,3) -> right into D (opens)
# -> right (2,5) -> up to G. 8 steps; no shorter plan exists (Manhattan S->K 2, K->D 4, D->G 2).
SMALL_PLAN = [DOWN, DOWN, RIGHT, RIGHT, UP, RIGHT, RIGHT, UP]

# fog_default: the clear route goes up through the top serpentine, the fog route is its mirror image.
#   #############
#   #ccc#ccc#ccc#
#   #c#c#c#c#c#c#
#   #c#ccc#ccc#c#
#   #S#########G#     S=(4,1)  G=(4,11)
#   #~#~~~#~~~#~#
#   #~#~#~#~#~#~#
#   #~~~#~~~#~~~#
#   #############
# Clear route: up x3, right x2, down x2, right x2, up x2, right x2, down x2, right x2, up x2,
# right x2, down x3 = 24 steps. The fog route swaps up and down.
CLEAR_PLAN = (
    [UP] * 3 + [RIGHT] * 2 + [DOWN] * 2 + [RIGHT] * 2 + [UP] * 2 + [RIGHT] * 2
    + [DOWN] * 2 + [RIGHT] * 2 + [UP] * 2 + [RIGHT] * 2 + [DOWN] * 3
)
FOG_PLAN = [{UP: DOWN, DOWN: UP}.get(a, a) for a in CLEAR_PLAN]


def play(env, actions):
    """Step through ``actions``; return lists of (obs, reward, terminated, truncated, info)."""
    out = []
    for a in actions:
        out.append(env.step(a))
    return out


@pytest.mark.parametrize("env_id", ["toy_envs/KeyDoor-v0", "toy_envs/Fog-v0"])
@pytest.mark.parametrize("render_mode", [None, "rgb_array", "ansi"])
def test_check_env_default_kwargs(env_id, render_mode):
    env = gym.make(env_id, render_mode=render_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env.unwrapped, skip_render_check=False)


def test_registered_ids():
    ids = set(gym.registry)
    for env_id in ("toy_envs/KeyDoor-v0", "toy_envs/Fog-v0", "toy_envs/TextWorld-v0"):
        assert env_id in ids
    assert gym.registry["toy_envs/TextWorld-v0"].entry_point == "toy_envs.textworld_env:TextWorldEnv"


@pytest.mark.parametrize(
    ("cls", "layout", "expected_optimal", "expected_states"),
    [
        # small: 8 (SMALL_PLAN); 13 non-wall cells x 3 phases = 39 ids.
        (KeyDoorEnv, "small", 8, 39),
        # default: S(1,1) -> K(4,5): 3 down + 4 right = 7; K -> D(1,6): 3 up + 1 right = 4;
        # D -> (1,12): 6 right, down 2 to (3,12), left 3 to G(3,9) = 11.  7 + 4 + 11 = 22.
        # Non-wall cells: 12 + 6 + 9 + 5 = 32 -> x 3 phases = 96.
        (KeyDoorEnv, "default", 22, 96),
        # large: S(1,1) -> K(7,8): 6 down + 7 right = 13; K -> D(4,9): 3 up + 1 right = 4;
        # D -> G(5,14) along the corridor: (4,10) (5,10) (6,10) (6,11) (6,12) (5,12) (4,12) (3,12)
        # (3,13) (3,14) (3,15) (3,16) (4,16) (5,16) (6,16) (6,15) (6,14) G = 18.  13 + 4 + 18 = 35.
        (KeyDoorEnv, "large", 35, None),
        # fog default: 24 (CLEAR_PLAN); 25 clear cells (9 + 6 + 8 + S + G) + 1 shared fog id = 26.
        (FogEnv, "default", 24, 26),
        # fog small: up 2, right 4, down 2 = 8; clear cells 5 + 2 + S + G = 9, + 1 fog id = 10.
        (FogEnv, "small", 8, 10),
    ],
)
def test_optimal_lengths_and_state_counts(cls, layout, expected_optimal, expected_states):
    env = cls(layout)
    _, info = env.reset(seed=0)
    assert info["optimal_steps"] == expected_optimal
    assert info["max_steps"] == 3 * expected_optimal  # default step limit
    assert len(optimal_actions(env)) == expected_optimal
    if expected_states is not None:
        assert env.observation_space == gym.spaces.Discrete(expected_states)


def test_keydoor_default_is_long_horizon():
    env = gym.make("toy_envs/KeyDoor-v0")
    _, info = env.reset(seed=0)
    assert info["optimal_steps"] >= 20


def test_hand_plan_wins_small_and_reward_is_sparse():
    env = KeyDoorEnv("small")
    env.reset(seed=0)
    steps = play(env, SMALL_PLAN)
    rewards = [s[1] for s in steps]
    assert rewards == [0.0] * 7 + [1.0]
    assert [s[2] for s in steps] == [False] * 7 + [True]
    assert not any(s[3] for s in steps)
    infos = [s[4] for s in steps]
    assert infos[1]["has_key"] and infos[1]["pos"] == (3, 1)  # took the key on step 2
    assert not infos[4]["door_open"] and infos[5]["door_open"] and infos[5]["pos"] == (2, 4)
    assert infos[-1]["success"] and infos[-1]["pos"] == (1, 5)


def test_closed_door_blocks_without_key():
    # From S go right twice to (1,3), down to (2,3), then right into the closed door: no key -> stay.
    env = KeyDoorEnv("small")
    env.reset(seed=0)
    steps = play(env, [RIGHT, RIGHT, DOWN, RIGHT])
    assert steps[-1][4]["pos"] == (2, 3)
    assert not steps[-1][4]["door_open"]
    assert steps[-1][0] == steps[-2][0]  # same observation: nothing changed


@pytest.mark.parametrize(
    ("env_id", "layout"),
    [("toy_envs/KeyDoor-v0", name) for name in ("small", "default", "large")]
    + [("toy_envs/Fog-v0", name) for name in ("small", "default")],
)
def test_expert_wins_in_optimal_steps(env_id, layout):
    env = gym.make(env_id, layout=layout)
    _, info = env.reset(seed=3)
    rewards, done, n = [], False, 0
    while not done:
        _, r, term, trunc, last = env.step(env.unwrapped.expert_action())
        rewards.append(r)
        done = term or trunc
        n += 1
    assert term and not trunc
    assert n == info["optimal_steps"]
    assert rewards[-1] == 1.0 and all(r == 0.0 for r in rewards[:-1])
    assert last["success"]


def test_truncation_at_the_limit():
    # Up from S=(1,1) in the small map is a wall: the agent never moves and never wins.
    env = KeyDoorEnv("small")
    env.reset(seed=0)
    steps = play(env, [UP] * 24)  # default limit 3 x 8 = 24
    assert [s[3] for s in steps] == [False] * 23 + [True]
    assert not any(s[2] for s in steps)
    assert all(s[1] == 0.0 for s in steps)
    with pytest.raises(RuntimeError):
        env.step(UP)

    env = KeyDoorEnv("small", max_steps=5)
    env.reset(seed=0)
    steps = play(env, [UP] * 5)
    assert [s[3] for s in steps] == [False] * 4 + [True]


def test_winning_on_the_last_allowed_step_is_not_truncated():
    env = KeyDoorEnv("small", max_steps=8)
    env.reset(seed=0)
    *_, (obs, r, term, trunc, info) = play(env, SMALL_PLAN)
    assert (r, term, trunc) == (1.0, True, False)


def test_keydoor_observation_is_markov():
    """Each observation id maps to exactly one (pos, has_key, door_open) along random walks."""
    env = KeyDoorEnv("small", max_steps=400)
    rng = np.random.default_rng(0)
    seen = {}
    for episode in range(20):
        obs, info = env.reset(seed=episode)
        done = False
        while True:
            key = (info["pos"], info["has_key"], info["door_open"])
            assert seen.setdefault(int(obs), key) == key
            if done:
                break
            obs, _, term, trunc, info = env.step(int(rng.integers(4)))
            done = term or trunc
    # Same cell, before and after taking the key: different ids.
    assert env.observation_of((2, 1), False, False) != env.observation_of((2, 1), True, False)
    assert len(seen) > 13  # the walks visited more ids than there are cells (phases differ)


def test_seeding_determinism_with_slip():
    def rollout(seed):
        env = gym.make("toy_envs/KeyDoor-v0", layout="small", slip_prob=0.3, max_steps=60)
        obs, _ = env.reset(seed=seed)
        traj = [obs]
        for a in [RIGHT, DOWN, LEFT, UP] * 15:
            obs, r, term, trunc, info = env.step(a)
            traj.append((obs, r, info["pos"]))
            if term or trunc:
                break
        return traj

    assert rollout(7) == rollout(7)
    # With 60 slip draws at p = 0.3, different seeds give different trajectories (checked on 3 pairs).
    assert rollout(7) != rollout(8) or rollout(1) != rollout(2) or rollout(3) != rollout(4)


def test_deterministic_without_slip_for_any_seed():
    trajs = []
    for seed in (0, 1, 2):
        env = gym.make("toy_envs/Fog-v0")
        env.reset(seed=seed)
        trajs.append([env.step(a)[0] for a in FOG_PLAN])
    assert trajs[0] == trajs[1] == trajs[2]


@pytest.mark.parametrize("env_id", ["toy_envs/KeyDoor-v0", "toy_envs/Fog-v0"])
def test_sync_vector_env(env_id):
    n = 3
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, layout="small") for _ in range(n)])
    obs, infos = envs.reset(seed=[0, 1, 2])
    assert obs.shape == (n,)
    assert list(infos["optimal_steps"]) == [8] * n
    plan = optimal_actions(envs.envs[0])
    for t, a in enumerate(plan):
        obs, rew, term, trunc, infos = envs.step(np.full(n, a))
        assert obs.shape == (n,) and rew.shape == (n,)
        assert list(rew) == ([1.0] * n if t == len(plan) - 1 else [0.0] * n)
    assert term.all() and not trunc.any()
    assert all(envs.single_observation_space.contains(int(o)) for o in obs)
    envs.close()


def test_fog_cells_share_one_id_clear_cells_distinct():
    env = FogEnv()
    obs0, info = env.reset(seed=0)
    assert info["route"] is None
    fog_steps = play(env, FOG_PLAN)
    fog_obs = [s[0] for s in fog_steps[:-1]]  # steps 1..23 end in fog, step 24 on G
    assert len(set(fog_obs)) == 1
    assert fog_steps[-1][1] == 1.0 and fog_steps[-1][4]["route"] == "fog"
    assert fog_steps[-1][4]["fog_steps"] == 23

    env.reset(seed=0)
    clear_steps = play(env, CLEAR_PLAN)
    clear_obs = [obs0] + [s[0] for s in clear_steps]
    assert len(set(clear_obs)) == 25  # S, 23 clear cells, G: all distinct
    assert fog_obs[0] not in clear_obs
    assert clear_steps[-1][1] == 1.0 and clear_steps[-1][4]["route"] == "clear"
    assert clear_steps[-1][4]["fog_steps"] == 0


def test_fog_correct_action_differs_between_fog_cells():
    """Inside the fog the BFS expert needs several different actions, so one shared id cannot be confident."""
    env = FogEnv()
    env.reset(seed=0)
    env.step(DOWN)  # into the fog at (5,1); from here the fog route (23 left) beats going back (1 + 24)
    fog_obs = env._obs()
    actions = set()
    while env.layout.tile(env._pos) == "~":
        a = env.expert_action()
        actions.add(a)
        obs, *_ = env.step(a)
    assert actions == {UP, RIGHT, DOWN}
    assert env._pos == env.layout.goal
    table = env.optimal_action_table()
    assert table[fog_obs] == -1  # no single right action for the aliased id
    # Every clear id on the route (not the goal) has a definite action: the clear route is learnable.
    env.reset(seed=0)
    for a in CLEAR_PLAN:
        assert table[env._obs()] == a  # at S both up and down are optimal; ties go to up (0)
        env.step(a)


def test_route_is_the_last_region_entered():
    env = FogEnv("small")
    # fog_small: S=(3,1); clear route up, fog route down (mirror), each 8 steps.
    env.reset(seed=0)
    steps = play(env, [DOWN, UP, UP])  # into fog, back to S, into the clear route
    assert [s[4]["route"] for s in steps] == ["fog", "fog", "clear"]  # S itself is untagged
    steps = play(env, [UP, RIGHT, RIGHT, RIGHT, RIGHT, DOWN, DOWN])
    assert steps[-1][1] == 1.0 and steps[-1][4]["route"] == "clear"
    # An episode that never leaves S ends with route None (left of S is a wall).
    env.reset(seed=0)
    steps = play(env, [LEFT] * env.max_steps)
    assert steps[-1][3] and steps[-1][4]["route"] is None


def test_render_rgb_and_ansi():
    env = KeyDoorEnv("small", render_mode="rgb_array", cell_size=8)
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (5 * 8, 7 * 8, 3) and img.dtype == np.uint8
    agent_cell = img[8:16, 8:16]  # S=(1,1)
    assert (agent_cell == np.array([220, 50, 50], dtype=np.uint8)).all(axis=-1).any()
    env.step(DOWN)
    img2 = env.render()
    assert not (img2[8:16, 8:16] == np.array([220, 50, 50], dtype=np.uint8)).all(axis=-1).any()

    env = KeyDoorEnv("small", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    rows = text.splitlines()[:5]
    assert rows[1] == "#A..#G#" and sum(r.count("A") for r in rows) == 1
    play(env, SMALL_PLAN[:6])  # key taken, door opened, agent on the door at (2,4)
    rows = env.render().splitlines()[:5]
    assert "K" not in "".join(rows)
    assert rows[2] == "#...A.#"
    env.step(RIGHT)
    assert env.render().splitlines()[2] == "#.../A#"

    env = KeyDoorEnv("small")
    env.reset(seed=0)
    with pytest.warns(UserWarning):
        assert env.render() is None


def test_custom_layout_text_and_rows():
    text = """
        #########
        #S.K#..G#
        #...D...#
        #########
    """
    env = KeyDoorEnv(text)
    _, info = env.reset(seed=0)
    # S(1,1) -> K(1,3): 2 right; K -> D(2,4): down + right = 2; D -> G(1,7): right 3 + up 1 = 4. Total 8.
    assert info["optimal_steps"] == 8
    env2 = KeyDoorEnv([row.strip() for row in text.strip().splitlines()])
    assert env2.reset(seed=0)[1]["optimal_steps"] == 8


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (KeyDoorEnv, {"layout": "nope"}, "layout"),
        (KeyDoorEnv, {"layout": 42}, "layout"),
        (KeyDoorEnv, {"layout": "#####\n#S.G#\n###"}, "layout"),  # ragged
        (KeyDoorEnv, {"layout": "#####\n#SxG#\n#####"}, "layout"),  # unknown char
        (KeyDoorEnv, {"layout": "#####\n#SSG#\n#####"}, "layout"),  # two starts
        (KeyDoorEnv, {"layout": "#####\n#S..#\n#####"}, "layout"),  # no goal
        (KeyDoorEnv, {"layout": "######\n#S.DG#\n######"}, "layout"),  # door without key
        (KeyDoorEnv, {"layout": "#######\n#SK.#G#\n#######"}, "layout"),  # goal unreachable / no door
        (KeyDoorEnv, {"layout": "#######\n#SK.DG#\n#.....#\n#######"}, "layout"),  # goal bypasses door
        (KeyDoorEnv, {"layout": "#######\n#S.DKG#\n#######"}, "layout"),  # key behind the door
        (FogEnv, {"layout": "#####\n#S.G#\n#####"}, "layout"),  # no fog
        (KeyDoorEnv, {"max_steps": 0}, "max_steps"),
        (KeyDoorEnv, {"max_steps": 2.5}, "max_steps"),
        (KeyDoorEnv, {"max_steps": True}, "max_steps"),
        (KeyDoorEnv, {"slip_prob": 1.0}, "slip_prob"),
        (KeyDoorEnv, {"slip_prob": -0.1}, "slip_prob"),
        (KeyDoorEnv, {"render_mode": "human"}, "render_mode"),
        (FogEnv, {"cell_size": 0}, "cell_size"),
    ],
)
def test_bad_kwargs_raise_naming_the_argument(cls, kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        cls(**kwargs)


def test_bad_kwargs_through_gym_make():
    with pytest.raises(ValueError, match="layout"):
        gym.make("toy_envs/KeyDoor-v0", layout="nope")


def test_bad_action_and_options():
    env = KeyDoorEnv("small")
    with pytest.raises(ValueError, match="options"):
        env.reset(seed=0, options={"start": (1, 2)})
    env.reset(seed=0)
    for bad in (4, -1, "up", 1.5):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    with pytest.raises(ValueError, match="pos"):
        env.observation_of((0, 0))


def test_layout_names():
    assert toy_envs.layout_names("keydoor") == ["default", "large", "small"]
    assert toy_envs.layout_names("fog") == ["default", "small"]
