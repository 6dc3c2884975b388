"""Damaged ALFWorld and TextWorld data: a ValueError naming the file and the field, never a KeyError
or an interpreter error from deep inside; ``data_dir`` as a deprecated alias of ``data_path``.

The corruptions are generated here from the shipped ALFWorld games and a generated TextWorld game.
"""

import importlib.util
import json
import shutil

import pytest

from scaled.envs import make_env

needs_alfworld = pytest.mark.skipif(importlib.util.find_spec("alfworld") is None,
                                    reason="needs alfworld (pip install alfworld==0.4.2)")
needs_textworld = pytest.mark.skipif(importlib.util.find_spec("textworld") is None,
                                     reason="needs textworld (pip install textworld)")


# --------------------------------------------------------------------------- ALFWorld
@pytest.fixture()
def alf_data(tmp_path):
    from scaled.envs.alfworld import SHIPPED_DATA

    trial = next(SHIPPED_DATA.glob("look_at_obj_in_light*/trial_*"))
    dst = tmp_path / "data" / trial.parent.name / trial.name
    shutil.copytree(trial, dst)
    return tmp_path / "data", dst


@needs_alfworld
def test_alfworld_trial_without_task_type(alf_data, tmp_path):
    data, trial = alf_data
    traj = json.loads((trial / "traj_data.json").read_text())
    del traj["task_type"]
    (trial / "traj_data.json").write_text(json.dumps(traj))
    with pytest.raises(ValueError, match=r"traj_data\.json: no 'task_type' field"):
        make_env("alfworld", data_path=data, game_dir=tmp_path / "games")


@needs_alfworld
@pytest.mark.parametrize("content, message", [
    ('{"task_type": "look_at_obj_in_light", "pddl_par', r"traj_data\.json: the trial file .* is not valid JSON .*truncated"),
    ("", r"traj_data\.json: the trial file .* is empty"),
    ("[1]", r"traj_data\.json: expected a JSON object, got list"),
    ('{"task_type": 5}', r"traj_data\.json: no 'task_type' field .*got 5"),
])
def test_alfworld_unreadable_trial_file(alf_data, tmp_path, content, message):
    data, trial = alf_data
    (trial / "traj_data.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        make_env("alfworld", data_path=data, game_dir=tmp_path / "games")


@pytest.fixture()
def alf_built(alf_data, tmp_path):
    """The copied trial, plus the path of the game file ``make_env`` built (and cached) from it."""
    data, trial = alf_data
    env = make_env("alfworld", data_path=data, game_dir=tmp_path / "games")
    built = env.game_files[0]
    env.close()
    return data, trial, built


def _cut(text):
    return text[: len(text) // 2].encode()


def _without_grammar(text):
    game = json.loads(text)
    del game["grammar"]
    return json.dumps(game).encode()


@needs_alfworld
@pytest.mark.parametrize("damage, message", [
    (_cut, r"game\.tw-pddl: the game file .* is not valid JSON"),
    (_without_grammar, r"game\.tw-pddl: field 'grammar' is missing"),
    (lambda text: b"\xff\xfe\x00", r"game\.tw-pddl: the game file .* is not UTF-8"),
], ids=["truncated", "no_grammar", "not_utf8"])
def test_alfworld_unreadable_game_file(alf_built, tmp_path, damage, message):
    # the official layout ships game.tw-pddl: a damaged one is user data, so it is an error
    data, trial, built = alf_built
    (trial / "game.tw-pddl").write_bytes(damage(open(built).read()))
    with pytest.raises(ValueError, match=message):
        make_env("alfworld", data_path=data, game_dir=tmp_path / "games")


@needs_alfworld
def test_alfworld_damaged_cached_game_is_rebuilt(alf_built, tmp_path):
    data, _, built = alf_built
    open(built, "w").write("{")  # a cached build (not user data) that was cut: rebuilt silently
    env = make_env("alfworld", data_path=data, game_dir=tmp_path / "games")
    assert env.game_files == [built] and json.loads(open(built).read())["solvable"] is True
    env.close()


@needs_alfworld
def test_alfworld_empty_folder_and_data_dir_alias(tmp_path, alf_data):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"No playable ALFWorld games .*empty"):
        make_env("alfworld", data_path=tmp_path / "empty", game_dir=tmp_path / "games")
    data, _ = alf_data
    with pytest.warns(DeprecationWarning, match="data_dir is deprecated, use data_path"):
        env = make_env("alfworld", data_dir=data, game_dir=tmp_path / "games")
    assert env.num_games == 1
    env.close()
    with pytest.raises(ValueError, match="data_path.*data_dir"):
        make_env("alfworld", data_path=data, data_dir=data)


# --------------------------------------------------------------------------- TextWorld
@pytest.fixture(scope="module")
def tw_game(tmp_path_factory):
    from toy_envs.textworld_games import generate_game

    return generate_game(seed=2, world_size=2, nb_objects=3, quest_length=2,
                         cache_dir=tmp_path_factory.mktemp("tw_cache"))


def _copy_game(src, folder):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder / src.name)
    shutil.copy(src.with_suffix(".json"), folder / src.with_suffix(".json").name)
    return folder / src.name


@needs_textworld
def test_textworld_plays_a_folder_of_games(tw_game, tmp_path):
    game = _copy_game(tw_game, tmp_path / "games")
    env = make_env("textworld", data_path=tmp_path / "games")
    assert env.game_files == [str(game)]
    with pytest.raises(RuntimeError, match=r"TextWorldEnv\.step called before reset"):
        env.step("look")
    obs, info = env.reset(seed=0)
    for action in info["walkthrough"]:
        obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and info["won"]
    with pytest.raises(RuntimeError, match=r"TextWorldEnv\.step called after the episode ended; call reset"):
        env.step("look")
    env.close()
    with pytest.warns(DeprecationWarning, match="data_dir is deprecated"):
        make_env("textworld", data_dir=game).close()


@needs_textworld
@pytest.mark.parametrize("damage, message", [
    (lambda game: game.write_bytes(b"\x00not a story file" * 10),
     r"\.z8: not a compiled TextWorld game \(bad story-file header"),
    (lambda game: game.write_bytes(b""), r"\.z8: the TextWorld game file is empty"),
    (lambda game: game.with_suffix(".json").unlink(), r"\.z8: its metadata file .*\.json .* is missing"),
    (lambda game: game.with_suffix(".json").write_text('{"metadata": {"walkth'),
     r"\.json: the game's metadata is not valid JSON"),
], ids=["garbage", "empty", "no_json", "bad_json"])
def test_textworld_damaged_game_file_at_construction(tw_game, tmp_path, damage, message):
    game = _copy_game(tw_game, tmp_path / "games")
    damage(game)
    with pytest.raises(ValueError, match=message):
        make_env("textworld", data_path=tmp_path / "games")
    with pytest.raises(ValueError, match=message):
        make_env("textworld", game_files=[game])


@needs_textworld
@pytest.mark.parametrize("damage, message", [
    ("truncate", r"\.z8: the game file is truncated \(64 of \d+ bytes\)"),
    ("flip", r"\.z8: the game file is damaged \(its Z-machine checksum does not match\)"),
])
def test_textworld_truncated_or_corrupted_story_file(tw_game, tmp_path, damage, message):
    # sent to the interpreter, such a file can crash the whole process (jericho is C code)
    game = _copy_game(tw_game, tmp_path / "games")
    data = bytearray(game.read_bytes())
    if damage == "truncate":
        data = data[:64]
    else:
        data[len(data) // 2] ^= 0x5A
    game.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=message):
        make_env("textworld", data_path=tmp_path / "games")


def test_textworld_empty_or_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"holds no game files"):
        make_env("textworld", data_path=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_env("textworld", data_path=tmp_path / "nowhere")
