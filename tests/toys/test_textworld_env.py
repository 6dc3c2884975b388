"""Tests for real TextWorld games: generation + cache, the playing session, and TextWorldEnv.

One small game (2 rooms, 3 objects, quest of 2 actions) is generated once per session by
textworld's real generator; every env test plays that game. Nothing is mocked.
"""

from __future__ import annotations

import multiprocessing
import pathlib
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("textworld")

import toy_envs  # noqa: E402,F401  (registers toy_envs/TextWorld-v0)
from toy_envs.textworld_env import VARIANTS, TextWorldEnv, register_textworld_variants  # noqa: E402
from toy_envs.textworld_games import (  # noqa: E402
    TextWorldGame,
    clean_feedback,
    default_cache_dir,
    generate_game,
    start,
    walkthrough,
)

PARAMS = dict(seed=7, world_size=2, nb_objects=3, quest_length=2)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("textworld_cache")


@pytest.fixture(scope="session")
def game_path(cache_dir) -> pathlib.Path:
    return generate_game(**PARAMS, cache_dir=cache_dir)


def make_env(game_path, **kwargs) -> TextWorldEnv:
    return TextWorldEnv(game_path=game_path, **kwargs)


def _game_files(game_path) -> list[str]:
    return sorted([game_path.name, game_path.with_suffix(".json").name])


def _generate_in(cache_dir: str) -> str:
    return str(generate_game(**PARAMS, cache_dir=cache_dir))


# -- generation and cache --------------------------------------------------------------------------


def test_generate_game_writes_z8_and_json_named_by_parameters(game_path, cache_dir):
    assert game_path.parent == cache_dir
    assert game_path.suffix == ".z8" and game_path.is_file()
    assert game_path.with_suffix(".json").is_file()
    for part in ("ws2", "no3", "ql2", "seed7"):
        assert part in game_path.name
    # Only the two game files remain: the private temporary compile directory was removed.
    assert sorted(p.name for p in cache_dir.iterdir()) == _game_files(game_path)


def test_walkthrough_length_is_the_quest_length(game_path):
    # quest_length=2 fixes the winning plan to exactly 2 commands (min = max = depth = 2).
    commands = walkthrough(game_path)
    assert len(commands) == PARAMS["quest_length"]
    assert all(isinstance(c, str) and c for c in commands)


def test_cache_is_reused_without_regenerating(game_path, cache_dir):
    mtime = game_path.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = generate_game(**PARAMS, cache_dir=cache_dir)
    elapsed = time.perf_counter() - t0
    assert again == game_path
    assert game_path.stat().st_mtime_ns == mtime  # not rewritten
    assert elapsed < 0.5  # generation takes ~1 s; a cache hit is a stat() call


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_concurrent_generation_is_safe_and_deterministic(game_path, tmp_path):
    # Two processes make the same game into an empty directory at once. Both must succeed and the
    # result must be byte-identical to the session game (same seed => same bytes).
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        paths = pool.map(_generate_in, [str(tmp_path), str(tmp_path)])
    assert paths[0] == paths[1] == str(tmp_path / game_path.name)
    assert pathlib.Path(paths[0]).read_bytes() == game_path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == _game_files(game_path)


def test_different_seed_gives_a_different_game(game_path, cache_dir):
    other = generate_game(**{**PARAMS, "seed": 8}, cache_dir=cache_dir)
    assert other != game_path
    assert other.read_bytes() != game_path.read_bytes()


def test_default_cache_dir_follows_empg_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EMPG_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "textworld"
    monkeypatch.delenv("EMPG_CACHE")
    assert default_cache_dir() == pathlib.Path.home() / ".cache" / "empg" / "textworld"


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed=0, world_size=0), ValueError, "world_size"),
        (dict(seed=0, quest_length=0), ValueError, "quest_length"),
        (dict(seed=0, nb_objects=-2), ValueError, "nb_objects"),
        (dict(seed=True), TypeError, "seed"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, exc, name, tmp_path):
    with pytest.raises(exc, match=name):
        generate_game(**kwargs, cache_dir=tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # textworld warns as it falls back on adjectives
def test_impossible_parameters_raise_runtime_error_with_advice(tmp_path):
    # 500 objects in a single room: textworld's grammar runs out of distinct object names
    # ("Not enough variation ..."), so no game can be generated.
    with pytest.raises(RuntimeError, match="nb_objects") as info:
        generate_game(seed=0, world_size=1, nb_objects=500, quest_length=1, cache_dir=tmp_path)
    assert "Try fewer objects" in str(info.value)
    assert "Not enough variation" in str(info.value)  # textworld's own reason is kept
    assert not list(tmp_path.glob("*.z8"))


def test_broken_compiler_raises_runtime_error_saying_what_to_reinstall(monkeypatch, tmp_path):
    # textworld finds its Inform 7 compiler through INFORM_HOME; point it at an empty directory.
    monkeypatch.setenv("INFORM_HOME", str(tmp_path / "no_inform"))
    with pytest.raises(RuntimeError, match="pip install") as info:
        generate_game(seed=0, world_size=1, nb_objects=0, quest_length=1, cache_dir=tmp_path / "c")
    assert "INFORM_HOME" in str(info.value)
    assert not list((tmp_path / "c").glob("*.z8"))  # nothing half-written left in the cache
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp-")]


def test_missing_textworld_raises_import_error_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "textworld", None)  # makes `import textworld` fail
    with pytest.raises(ImportError, match=r'pip install "empg\[toy\]"'):
        generate_game(seed=0, cache_dir=tmp_path)


# -- playing session -------------------------------------------------------------------------------


def test_clean_feedback_removes_banner_prompt_and_status_bar():
    raw = "\n\n   ____  __\n  | $$ \\$$|\n\nWelcome!\n\n\n\n-= Room =-\nA room.\n\n>    -= Room =-0/1"
    # Letterless banner lines vanish, blank runs collapse, the '>' prompt line is dropped.
    assert clean_feedback(raw) == "Welcome!\n\n-= Room =-\nA room."


def test_textworld_game_session_plays_the_walkthrough(game_path):
    with start(game_path) as game:
        assert isinstance(game, TextWorldGame)
        obs, infos = game.reset()
        assert isinstance(obs, str) and "$$" not in obs and obs
        assert infos["admissible_commands"] == sorted(infos["admissible_commands"])
        assert infos["walkthrough"] == walkthrough(game_path)
        assert infos["policy_commands"] == infos["walkthrough"]  # the plan from the start
        assert infos["score"] == 0 and infos["max_score"] >= 1
        assert not infos["won"] and not infos["lost"]
        commands = walkthrough(game_path)
        for i, command in enumerate(commands):
            assert command in infos["admissible_commands"]
            obs, score, done, infos = game.step(command)
            assert done == (i == len(commands) - 1)
        assert infos["won"] and score == infos["max_score"]  # cumulative score, textworld's convention
    game.close()  # closing twice is fine


# -- gymnasium env ---------------------------------------------------------------------------------


def test_variants_are_registered():
    register_textworld_variants()
    register_textworld_variants()  # idempotent
    for env_id in VARIANTS:
        assert env_id in gym.registry
        assert gym.registry[env_id].entry_point == "toy_envs.textworld_env:TextWorldEnv"
    assert gym.registry["toy_envs/TextWorld-Easy-v0"].kwargs["quest_length"] == 2


def test_walkthrough_wins_with_reward_one(game_path):
    env = make_env(game_path)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    rewards = []
    terminated = truncated = False
    for command in walkthrough(game_path):
        assert not (terminated or truncated)
        action = info["admissible_commands"].index(command)
        assert env.action_index(command) == action
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs in env.observation_space
        assert info["command"] == command and not info["invalid_action"]
        rewards.append(reward)
    # Sparse reward: 0 on the first step, 1 on the winning (second) step.
    assert rewards == [0.0, 1.0]
    assert terminated and not truncated and info["won"]
    env.close()


def test_score_reward_sums_to_max_score(game_path):
    # Score mode pays textworld's score increments (its score is cumulative); they sum to max_score.
    env = make_env(game_path, reward="score")
    _, info = env.reset()
    total = 0.0
    for command in walkthrough(game_path):
        _, reward, terminated, _, info = env.step(env.action_index(command))
        total += reward
    assert terminated and total == info["max_score"] == info["score"]
    env.close()


def test_invalid_index_is_reported_not_raised(game_path):
    env = make_env(game_path, invalid_action_reward=-0.25, max_actions=64)
    obs0, info0 = env.reset()
    n = len(info0["admissible_commands"])
    assert info0["action_mask"].tolist() == [1] * n + [0] * (64 - n)
    for step, action in enumerate([n, 63, -1, np.int64(n + 1)], start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["invalid_action"] is True and info["command"] is None
        assert reward == -0.25
        assert obs == obs0  # the game did not advance
        assert info["moves"] == info0["moves"] == 0
        assert info["episode_step"] == step
        assert not terminated and not truncated
    with pytest.raises(TypeError, match="action"):
        env.step("look")
    with pytest.raises(TypeError, match="action"):
        env.step(1.0)
    obs, _, _, _, info = env.step(np.array(info0["admissible_commands"].index("look")))  # 0-d array
    assert not info["invalid_action"] and info["command"] == "look"
    env.close()


def test_truncation_at_step_limit(game_path):
    env = make_env(game_path, max_episode_steps=3)
    _, info = env.reset()
    look = info["admissible_commands"].index("look")
    flags = [env.step(look)[2:4] for _ in range(3)]
    # (terminated, truncated): only the 3rd step hits the limit.
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(look)
    env.close()


def test_determinism_across_instances(game_path):
    def rollout(seed):
        env = make_env(game_path)
        rng = np.random.default_rng(seed)
        obs, info = env.reset(seed=seed)
        trace = [(obs, info["admissible_commands"])]
        for _ in range(8):
            action = int(rng.integers(len(info["admissible_commands"])))
            obs, reward, terminated, truncated, info = env.step(action)
            trace.append((obs, reward, terminated, info["admissible_commands"], info["score"]))
            assert info["admissible_commands"] == sorted(info["admissible_commands"])
            if terminated or truncated:
                break
        env.close()
        return trace

    assert rollout(3) == rollout(3)


def test_check_env_with_default_kwargs(cache_dir):
    # Default game (seed 0, 3 rooms, 5 objects, quest of 3); only the cache location is changed.
    env = gym.make("toy_envs/TextWorld-v0", cache_dir=cache_dir)
    check_env(env.unwrapped)
    env.close()


def test_check_env_easy_variant_on_session_game(game_path):
    register_textworld_variants()
    env = gym.make("toy_envs/TextWorld-Easy-v0", game_path=game_path)
    check_env(env.unwrapped)
    env.close()


def test_sync_vector_env(game_path, cache_dir):
    other = generate_game(**{**PARAMS, "seed": 8}, cache_dir=cache_dir)
    envs = gym.vector.SyncVectorEnv([lambda: make_env(game_path), lambda: make_env(other)])
    obs, info = envs.reset(seed=0)
    assert isinstance(obs, tuple) and len(obs) == 2 and all(isinstance(o, str) for o in obs)
    assert len(info["admissible_commands"]) == 2
    obs, reward, terminated, truncated, info = envs.step(np.array([0, 0]))
    assert reward.shape == (2,) and terminated.shape == (2,) and truncated.shape == (2,)
    envs.close()


def test_constructor_validates_arguments(game_path, tmp_path):
    with pytest.raises(ValueError, match="reward"):
        make_env(game_path, reward="dense")
    with pytest.raises(ValueError, match="max_actions"):
        make_env(game_path, max_actions=0)
    with pytest.raises(ValueError, match="game_seed"):
        TextWorldEnv(seed=1, game_seed=2, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="game_path"):
        TextWorldEnv(game_path=tmp_path / "missing.z8")
