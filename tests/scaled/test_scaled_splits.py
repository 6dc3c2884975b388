"""Held-out splits as in the original benchmarks (issue 16): training never sees a validation or test task.

* ALFWorld: ``json_2.1.1/{train,valid_seen,valid_unseen}`` (here a copy of the shipped games in that layout).
* WebShop: goals shuffled with seed 233; test = [0:500], validation = [500:1500], train = [1500:] (here a
  generated catalogue in the release format, with enough synthetic goals).
* The trainer plays the train split, validates on the validation split, ``scaled.evaluate`` plays the test split.
"""

import pathlib

import pytest

from alfworld_release import LAYOUT, write_release
from scaled.config import env_kwargs, load_config
from scaled.envs import make_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"
pytest.importorskip("alfworld")


@pytest.fixture(scope="module")
def alfworld_data(tmp_path_factory):
    """``<root>/json_2.1.1/<split>/<task>/trial_*`` like ``alfworld-download``; game files built into ``games/``."""
    return write_release(tmp_path_factory.mktemp("alfworld_data"))


def _kw(root, **extra):
    return dict(data_path=str(root / "json_2.1.1"), game_dir=str(root / "games"), max_steps=3, **extra)


def _names(env):
    return {pathlib.Path(g).parent.parent.name for g in env.game_files}


def test_alfworld_splits_are_the_release_folders_and_disjoint(alfworld_data):
    envs = {split: make_env("alfworld", **_kw(alfworld_data, split=split)) for split in LAYOUT}
    for split, env in envs.items():
        assert _names(env) == set(LAYOUT[split]) and env.num_tasks == len(LAYOUT[split]) and env.split == split
    assert not _names(envs["train"]) & (_names(envs["valid_seen"]) | _names(envs["valid_unseen"]))
    # $ALFWORLD_DATA itself (the folder holding json_2.1.1) works too
    same = make_env("alfworld", data_path=str(alfworld_data), game_dir=str(alfworld_data / "games"), split="valid_unseen")
    assert same.game_files == envs["valid_unseen"].game_files
    # training draws (reset by seed, with replacement) stay inside the train split
    train = envs["train"]
    drawn = set()
    for seed in range(16):  # seeds 0..15 draw each of the 4 train games (a reset loads a game: ~0.3 s)
        train.reset(seed=seed)
        drawn.add(pathlib.Path(train.gamefile).parent.parent.name)
    assert drawn == set(LAYOUT["train"])
    # enumeration without replacement: task_index i is game_files[i]
    unseen = envs["valid_unseen"]
    for i in range(unseen.num_tasks):
        unseen.reset(options={"task_index": i})
        assert unseen.gamefile == unseen.game_files[i]
    with pytest.raises(ValueError, match=r"options\['task_index'\]: expected an int 0 <= i < 2, got 2"):
        unseen.reset(options={"task_index": 2})


def test_alfworld_split_errors_name_the_split_and_the_folder(alfworld_data, tmp_path):
    from scaled.envs.alfworld import AlfWorldDataError

    with pytest.raises(ValueError, match=r"split: expected one of \['train', 'valid_seen', 'valid_unseen'\], got 'test'"):
        make_env("alfworld", **_kw(alfworld_data, split="test"))
    with pytest.raises(ValueError, match=r"split='train' needs data_path"):
        make_env("alfworld", split="train")  # the shipped games have no splits
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(AlfWorldDataError, match=r"no 'valid_seen' split: expected the folder '.*valid_seen'"):
        make_env("alfworld", data_path=str(tmp_path / "json_2.1.1"), split="valid_seen")
    # the old advice (data_path=.../json_2.1.1/train) with a split: named, not silently the wrong folder
    with pytest.raises(AlfWorldDataError, match=r"json_2\.1\.1/train' has no 'train' split"):
        make_env("alfworld", data_path=str(alfworld_data / "json_2.1.1" / "train"), split="train")


@pytest.fixture(scope="module")
def webshop_release(tmp_path_factory):
    from scaled.envs.webshop_synth import write_release

    folder = tmp_path_factory.mktemp("webshop_release")
    write_release(folder, 400, seed=3)  # ~1,900 synthetic goals: every split non-empty
    return folder


def test_webshop_splits_are_the_original_slices_of_the_shuffled_goals(webshop_release, tmp_path):
    kw = dict(data_path=webshop_release, cache_dir=tmp_path / "cache", human_goals=False)
    everything = make_env("webshop", **kw)
    envs = {split: make_env("webshop", split=split, **kw) for split in ("train", "validation", "test")}
    goals = everything.goals
    assert len(goals) > 1500
    assert envs["test"].goals == goals[:500] and envs["validation"].goals == goals[500:1500]
    assert envs["train"].goals == goals[1500:]
    ids = {split: {id(g) for g in env.goals} for split, env in envs.items()}  # one shared goal list: identity
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["validation"] and not ids["test"] & ids["validation"]
    assert sum(map(len, ids.values())) == len(goals)
    # training draws stay in the train goals
    train = envs["train"]
    for seed in range(300):
        train.reset(seed=seed)
        assert id(train.goal) in ids["train"]
    # enumeration: task_index i is goals[i] (goal_index, the env's own name, too)
    test = envs["test"]
    assert test.num_tasks == 500
    test.reset(options={"task_index": 499})
    assert test.goal is goals[499]
    test.reset(options={"goal_index": 7})
    assert test.goal is goals[7]


def test_webshop_split_errors(webshop_release, tmp_path):
    kw = dict(data_path=webshop_release, cache_dir=tmp_path / "cache", human_goals=False)
    with pytest.raises(ValueError, match=r"split: expected one of \['test', 'validation', 'train'\], got 'dev'"):
        make_env("webshop", split="dev", **kw)
    with pytest.raises(ValueError, match="pass split or goal_range, not both"):
        make_env("webshop", split="test", goal_range=(0, 5), **kw)
    # the 12 goals of the shipped catalogue cannot hold the splits: said with the count
    with pytest.raises(ValueError, match=r"no goals in the shipped catalogue .*split='train'.*\(12 goals in all"):
        make_env("webshop", split="train", cache_dir=tmp_path / "cache")


def test_webshop_paper_config_trains_validates_and_tests_on_the_three_splits(webshop_release, tmp_path):
    cfg = load_config(ROOT / "scaled" / "configs" / "webshop_dapo_empg_qwen1.5b.yaml",
                      [f"env.kwargs.data_path={webshop_release}", "env.kwargs.human_goals=false",
                       f"env.kwargs.cache_dir={tmp_path / 'cache'}"])
    envs = {s: make_env(cfg.env.name, **env_kwargs(cfg, s)) for s in ("train", "val", "test")}
    assert [envs[s].split for s in ("train", "val", "test")] == ["train", "validation", "test"]
    assert not {id(g) for g in envs["train"].goals} & {id(g) for g in envs["test"].goals + envs["val"].goals}


def test_trainer_trains_on_train_validates_on_valid_seen_and_evaluate_tests_on_valid_unseen(alfworld_data, tmp_path):
    from scaled.evaluate import evaluate
    from scaled.trainer import Trainer

    splits = ["env.train_split=train", "env.val_split=valid_seen", "env.test_split=valid_unseen"]
    cfg = load_config(SMOKE, [f"model.path={tmp_path / 'tiny'}", f"trainer.out_dir={tmp_path / 'run'}",
                              f"env.kwargs.data_path={alfworld_data / 'json_2.1.1'}",
                              f"env.kwargs.game_dir={alfworld_data / 'games'}", *splits, "env.n_tasks=2",
                              "env.group_size=2", "agent.max_steps=1", "rollout.max_new_tokens=4", "eval.batch_size=2"])
    trainer = Trainer(cfg)
    assert all(_names(env) == set(LAYOUT["train"]) for env in trainer.envs)
    episodes = [e for it in range(3) for r in range(2) for e in trainer.rollout_round(it, r)]
    played = {pathlib.Path(e.info["gamefile"]).parent.parent.name for e in episodes}
    assert played <= set(LAYOUT["train"])
    val = trainer.validate()
    assert val["val/num_tasks"] == 1.0 and set(trainer.val_task_indices()) == {0}
    assert all(_names(env) == set(LAYOUT["valid_seen"]) for env in trainer.val_envs)
    assert "val/success/look_at_obj_in_light" in val  # the valid_seen game's type
    trainer.close()
    results = evaluate(cfg)  # eval.split = test -> env.test_split = valid_unseen
    assert (results["env_split"], results["num_tasks"], results["episodes"]) == ("valid_unseen", 2, 2)
    assert set(results["per_task_type"]) == {"pick_and_place_simple", "pick_cool_then_place_in_recep"}
