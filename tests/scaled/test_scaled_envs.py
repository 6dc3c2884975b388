"""Conformance and winning plans for the scaled text environments (ALFWorld, WebShop, TextWorld).

Everything runs offline on the data shipped in scaled/data (ALFWorld games, WebShop catalogue) or
on a TextWorld game generated into a temporary cache.
"""

import importlib.util
import json
import pathlib
import re
import shutil

import pytest

from scaled.envs import INFO_KEYS, TextEnv, make_env

# find_spec, not import: importing alfworld creates $ALFWORLD_DATA (default ~/.cache/alfworld)
needs_alfworld = pytest.mark.skipif(importlib.util.find_spec("alfworld") is None,
                                    reason="needs alfworld (pip install alfworld==0.4.2)")
needs_textworld = pytest.mark.skipif(importlib.util.find_spec("textworld") is None,
                                     reason="needs textworld (pip install textworld)")


def check_info(info, *, after_reset):
    """Every env puts the common keys in info, with the documented types."""
    for key in INFO_KEYS:
        assert key in info, key
    assert isinstance(info["admissible_commands"], list)
    assert all(isinstance(c, str) for c in info["admissible_commands"])
    assert isinstance(info["won"], bool) and isinstance(info["invalid_action"], bool)
    assert isinstance(info["task"], str) and info["task"]
    assert isinstance(info["task_type"], str) and info["task_type"]
    if after_reset:
        assert info["invalid_action"] is False and info["won"] is False


def test_make_env_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="alfworld.*webshop.*textworld"):
        make_env("minecraft")


# --------------------------------------------------------------------------- ALFWorld
from scaled.envs.alfworld import (  # noqa: E402
    SHIPPED_DATA,
    TASK_TYPES,
    AlfWorldDataError,
    AlfWorldEnv,
    expert_plan,
)


@pytest.fixture(scope="module")
def alf(tmp_path_factory):
    env = make_env("alfworld", game_dir=tmp_path_factory.mktemp("alfworld_games"), max_steps=30)
    yield env
    env.close()


@needs_alfworld
def test_alfworld_collects_every_shipped_game_and_type(alf):
    assert isinstance(alf, TextEnv)
    folders = sorted(p.parent.parent.name for p in SHIPPED_DATA.rglob("traj_data.json"))
    assert alf.num_games == len(folders) == 7
    # every one of the six task types has a game (folder names start with the type, as in ALFRED)
    assert set(alf.task_types_of_games) == set(TASK_TYPES)
    for game_file, task_type in zip(alf.game_files, alf.task_types_of_games):
        assert pathlib.Path(game_file).parent.parent.name.startswith(task_type)


@needs_alfworld
def test_alfworld_reset_and_invalid_action(alf):
    obs, info = alf.reset(seed=0)
    check_info(info, after_reset=True)
    assert "Your task is to:" in obs and info["task"] in obs
    assert info["task_type"] == alf.task_type in TASK_TYPES
    assert "look" in info["admissible_commands"]
    assert any(c.startswith("go to ") for c in info["admissible_commands"])
    obs, reward, terminated, truncated, info = alf.step("fly to the moon")
    check_info(info, after_reset=False)
    assert info["invalid_action"] is True
    assert obs == "Nothing happens."  # the engine's answer to a non-admissible command
    assert (reward, terminated, truncated) == (0.0, False, False)
    # admissible commands are matched case- and space-insensitively
    _, _, _, _, info = alf.step("  LOOK ")
    assert info["invalid_action"] is False


@needs_alfworld
def test_alfworld_same_seed_same_game(alf):
    _, first = alf.reset(seed=123)
    _, second = alf.reset(seed=123)
    assert first["gamefile"] == second["gamefile"] and first["task"] == second["task"]


@needs_alfworld
def test_alfworld_expert_plan_wins_every_game(alf):
    for index in range(alf.num_games):
        obs, info = alf.reset(options={"game_index": index})
        # the planner's plan, stored in game.tw-pddl when the game was built (as alfworld-generate does)
        plan = json.loads(pathlib.Path(alf.gamefile).read_text())["walkthrough"]
        assert plan, alf.gamefile
        if index == 0:
            assert expert_plan(alf.gamefile) == plan
        for step, action in enumerate(plan):
            assert action in info["admissible_commands"], (alf.gamefile, action)
            obs, reward, terminated, truncated, info = alf.step(action)
            last = step == len(plan) - 1
            assert terminated is last and info["won"] is last
            assert reward == (1.0 if last else 0.0)
        assert truncated is False


@needs_alfworld
def test_alfworld_closed_drawer_must_be_opened(alf):
    index = next(i for i, f in enumerate(alf.game_files) if "CellPhone-None-Bed" in f)
    obs, info = alf.reset(options={"game_index": index})
    # a hand-written plan: the phone is in the closed drawer 2
    obs, _, _, _, info = alf.step("go to drawer 2")
    assert "drawer 2 is closed" in obs and "cellphone" not in obs
    obs, _, _, _, info = alf.step("take cellphone 1 from drawer 2")
    assert info["invalid_action"] is True and obs == "Nothing happens."
    obs, _, _, _, info = alf.step("open drawer 2")
    assert "cellphone 1" in obs
    for action in ["take cellphone 1 from drawer 2", "go to bed 1"]:
        _, reward, terminated, _, info = alf.step(action)
        assert not terminated and not info["invalid_action"]
    _, reward, terminated, _, info = alf.step("move cellphone 1 to bed 1")
    assert terminated and info["won"] and reward == 1.0


@needs_alfworld
def test_alfworld_truncates_at_max_steps(tmp_path):
    env = AlfWorldEnv(task_types=["look_at_obj_in_light"], max_steps=2, game_dir=tmp_path)
    assert env.num_games == 1 and env.task_types_of_games == ["look_at_obj_in_light"]
    with pytest.raises(RuntimeError, match=r"AlfWorldEnv\.step called before reset"):
        env.step("look")
    env.reset()
    assert env.step("look")[3] is False
    _, _, terminated, truncated, _ = env.step("look")
    assert (terminated, truncated) == (False, True)
    with pytest.raises(RuntimeError, match=r"AlfWorldEnv\.step called after the episode ended; call reset"):
        env.step("look")
    env.close()


@needs_alfworld
def test_alfworld_uses_a_prebuilt_game_file(alf, tmp_path):
    # official layout with game.tw-pddl only (as alfworld-download ships it)
    src = pathlib.Path(alf.game_files[alf.task_types_of_games.index("pick_heat_then_place_in_recep")])
    trial = tmp_path / "data" / "pick_heat_then_place_in_recep-Potato-None-CounterTop-1" / "trial_T1"
    trial.mkdir(parents=True)
    shutil.copy(src, trial / "game.tw-pddl")
    traj = SHIPPED_DATA.glob("pick_heat*/trial_*/traj_data.json")
    shutil.copy(next(traj), trial / "traj_data.json")
    env = AlfWorldEnv(tmp_path / "data", game_dir=tmp_path / "unused")
    assert env.game_files == [str(trial / "game.tw-pddl")]
    assert not (tmp_path / "unused").exists()
    obs, info = env.reset()
    assert info["task_type"] == "pick_heat_then_place_in_recep" and "potato" in info["task"]
    # an unsolvable prebuilt game is skipped, like AlfredTWEnv does
    data = json.loads((trial / "game.tw-pddl").read_text())
    data["solvable"] = False
    (trial / "game.tw-pddl").write_text(json.dumps(data))
    with pytest.raises(AlfWorldDataError):
        AlfWorldEnv(tmp_path / "data")
    env.close()


@needs_alfworld
def test_alfworld_builds_game_files_and_skips_unsolvable(tmp_path):
    src = next(SHIPPED_DATA.glob("pick_and_place_simple-KeyChain*/trial_*"))
    for name, drop in [("ok", None), ("unsolvable", "(canContain SideTableType KeyChainType)")]:
        trial = tmp_path / "data" / f"pick_and_place_simple-KeyChain-None-SideTable-{name}" / "trial_T1"
        trial.mkdir(parents=True)
        shutil.copy(src / "traj_data.json", trial)
        problem = (src / "initial_state.pddl").read_text()
        if drop:  # nothing may hold a key chain on the side table any more: no plan exists
            assert drop in problem
            problem = problem.replace(drop, "")
        (trial / "initial_state.pddl").write_text(problem)
    env = AlfWorldEnv(tmp_path / "data", game_dir=tmp_path / "games")
    built = sorted((tmp_path / "games").rglob("game.tw-pddl"))
    assert len(built) == 2 and not list((tmp_path / "data").rglob("game.tw-pddl"))  # data folder untouched
    assert [json.loads(p.read_text())["solvable"] for p in built] == [True, False]  # "ok" < "unsolvable"
    assert env.num_games == 1 and "-ok" in env.game_files[0]
    game = json.loads(pathlib.Path(env.game_files[0]).read_text())
    assert set(game) >= {"pddl_domain", "grammar", "pddl_problem", "solvable"}
    assert "UNKNOWN GOAL" not in game["grammar"] and "keychain" in game["grammar"]
    env.close()


@needs_alfworld
def test_alfworld_missing_data_says_how_to_download(tmp_path):
    with pytest.raises(AlfWorldDataError, match="alfworld-download"):
        make_env("alfworld", data_path=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="ALFWORLD_DATA"):
        make_env("alfworld", data_path=tmp_path)  # exists but holds no games


@needs_alfworld
def test_alfworld_bad_task_type():
    with pytest.raises(ValueError, match="task_types"):
        AlfWorldEnv(task_types=["make_coffee"])


# --------------------------------------------------------------------------- WebShop
from scaled.envs.webshop import WebShopDataError, WebShopEnv  # noqa: E402
from scaled.envs.webshop_reward import PRICE_RANGE  # noqa: E402


@pytest.fixture(scope="module")
def shop():
    return make_env("webshop")


def buy(env, asin, options):
    """Search the product's title, open it (paging if needed), choose options, buy; returns the last step."""
    title = env.product_by_asin[asin]["Title"]
    obs, _, _, _, info = env.step(f"search[{title}]")
    assert not info["invalid_action"]
    while f"click[{asin.lower()}]" not in info["admissible_commands"]:
        obs, _, _, _, info = env.step("click[Next >]")
        assert not info["invalid_action"]
    obs, _, _, _, info = env.step(f"click[{asin}]")
    assert info["page"] == "item" and title in obs
    for value in options:
        obs, _, _, _, info = env.step(f"click[{value}]")
        assert not info["invalid_action"], value
    return env.step("click[Buy Now]")


def test_webshop_reset_conformance(shop):
    obs, info = shop.reset(seed=0)
    check_info(info, after_reset=True)
    assert info["task_type"] == "webshop"
    assert info["admissible_commands"] == ["search[<query>]"]
    assert info["task"] in obs and obs.startswith("WebShop [SEP] Instruction:")


def test_webshop_goal_text_and_prices(shop):
    for goal in shop.goals:
        price = shop.prices[goal["asin"]]
        low, *high = shop.product_by_asin[goal["asin"]]["pricing"]
        assert low <= price <= (high[0] if high else low)
        # price_upper: one of the first four 10-dollar steps above the price, never the first
        # (it is the larger of two distinct draws)
        steps = [p for p in PRICE_RANGE if p > price][:4]
        assert goal["price_upper"] in steps[1:]
        assert goal["instruction_text"].endswith(f", and price lower than {goal['price_upper']:.2f} dollars")
    # prices are fixed by price_seed: a second env agrees
    assert WebShopEnv(price_seed=0).prices == shop.prices


def test_webshop_right_item_and_options_score_one(shop):
    for index, goal in enumerate(shop.goals):
        shop.reset(options={"goal_index": index})
        obs, reward, terminated, truncated, info = buy(shop, goal["asin"], goal["goal_options"])
        assert reward == pytest.approx(1.0), (goal["instruction_text"], shop.last_reward_parts)
        assert terminated and not truncated and info["won"] is True
        assert info["admissible_commands"] == [] and "Thank you for shopping" in obs


def test_webshop_wrong_purchases_score_below_one(shop):
    index = next(i for i, g in enumerate(shop.goals) if g["asin"] == "B07SHAMP02")
    # goal: tea tree shampoo for dandruff, 20 fl oz (attributes: tea tree, dandruff)
    shop.reset(options={"goal_index": index})
    _, reward, terminated, _, info = buy(shop, "B07SHAMP02", ["10 fl oz"])
    # wrong size: (2 attributes + 0 options + price ok) / (2 + 1 + 1) = 0.75
    assert terminated and reward == pytest.approx(0.75) and info["won"] is False
    shop.reset(options={"goal_index": index})
    _, reward, _, _, info = buy(shop, "B07SHAMP03", ["16 fl oz"])
    # another shampoo (same query -> r_type 1): no tea tree, no dandruff, size not 20 fl oz,
    # price 16.99 < upper: (0 + 0 + 1) / 4 = 0.25
    assert reward == pytest.approx(0.25) and info["won"] is False
    shop.reset(options={"goal_index": index})
    _, reward, _, _, info = buy(shop, "B05HEADP04", ["black"])
    # headphones: no title noun in common with the goal's product -> r_type 0
    assert reward == 0.0 and info["won"] is False


def test_webshop_synthetic_goals():
    env = WebShopEnv(human_goals=False)
    shirt = [g for g in env.goals if g["asin"] == "B09TSHRT01"]
    # goal.py::get_synthetic_goals: one goal per option combination (4 sizes x 4 colours), option
    # names sorted ("color" < "size"), and ONE price limit per product shared by all its goals
    assert len(shirt) == 16
    assert len({g["price_upper"] for g in shirt}) == 1
    upper = shirt[0]["price_upper"]
    texts = {g["instruction_text"] for g in shirt}
    instruction = env.product_by_asin["B09TSHRT01"]["instruction_text"]
    assert f"{instruction} with color: navy blue, and size: large, and price lower than {upper:.2f} dollars" in texts
    goal = next(g for g in shirt if g["goal_options"] == {"color": "navy blue", "size": "large"})
    env.reset(options={"goal_index": env.goals.index(goal)})
    _, reward, _, _, info = buy(env, "B09TSHRT01", ["navy blue", "large"])
    assert reward == pytest.approx(1.0) and info["won"]


def test_webshop_invalid_actions_are_flagged(shop):
    obs0, _ = shop.reset(seed=1)
    for action in ["click[Buy Now]", "buy the shampoo", "search[]", "click[search]"]:
        obs, reward, terminated, _, info = shop.step(action)
        assert info["invalid_action"] is True and obs == obs0 and reward == 0.0 and not terminated
    obs, _, _, _, info = shop.step("search[shampoo]")
    assert info["page"] == "results" and not info["invalid_action"]
    obs, _, _, _, info = shop.step("search[headphones]")  # no search bar on the results page
    assert info["invalid_action"] is True and info["page"] == "results"


def test_webshop_navigation(shop):
    shop.reset(seed=2)
    # matches the 20 shampoos, headphones, lamps and shoes -> 2 pages of 10
    _, _, _, _, info = shop.step("search[shampoo headphones lamp shoes]")
    assert "click[next >]" in info["admissible_commands"] and "click[< prev]" not in info["admissible_commands"]
    obs, _, _, _, info = shop.step("click[Next >]")
    assert "Page 2" in obs and "click[< prev]" in info["admissible_commands"]
    asin = next(c[6:-1] for c in info["admissible_commands"] if re.fullmatch(r"click\[b0\w+\]", c))
    _, _, _, _, info = shop.step(f"click[{asin}]")
    assert info["page"] == "item"
    for sub in ["Description", "Features", "Reviews"]:
        obs, _, _, _, info = shop.step(f"click[{sub}]")
        assert info["page"] == sub.lower() and info["admissible_commands"] == ["click[back to search]", "click[< prev]"]
        _, _, _, _, info = shop.step("click[< Prev]")
        assert info["page"] == "item"
    obs, _, _, _, info = shop.step("click[< Prev]")
    assert info["page"] == "results" and "Page 2" in obs
    _, _, _, _, info = shop.step("click[Back to Search]")
    assert info["page"] == "search" and info["admissible_commands"] == ["search[<query>]"]


class _IndexWithMoreProducts:
    """Stands in for a search index built over more products than were loaded (e.g. the full
    pyserini index with num_products=100): it returns an ASIN the catalogue does not have."""

    def search(self, query, k):
        return ["B00MISSING", "B07SHAMP02"]


def test_webshop_drops_hits_outside_the_catalogue():
    env = WebShopEnv(num_products=15)
    env.search_engine = _IndexWithMoreProducts()
    env.reset(seed=0)
    obs, _, _, _, info = env.step("search[tea tree shampoo]")
    # engine.py keeps only hits that are in the loaded products: 1 result, no crash
    assert not info["invalid_action"] and "Total results: 1" in obs
    assert [c for c in info["admissible_commands"] if re.fullmatch(r"click\[b0\w+\]", c)] == ["click[b07shamp02]"]


def test_webshop_truncates_at_max_steps():
    env = WebShopEnv(max_steps=2)
    with pytest.raises(RuntimeError, match=r"WebShopEnv\.step called before reset"):
        env.step("click[nothing]")
    env.reset(seed=0)
    assert env.step("click[nothing]")[3] is False
    _, _, terminated, truncated, _ = env.step("click[nothing]")
    assert (terminated, truncated) == (False, True)
    with pytest.raises(RuntimeError, match=r"WebShopEnv\.step called after the episode ended; call reset"):
        env.step("click[nothing]")


def test_webshop_reads_release_format_variants(tmp_path):
    # the 1000-item file names, a str small_description, empty pricing ($100), a "/" in an option
    # value, null options, a duplicate and a malformed ASIN, reviews with "stars"/"review" keys
    cat = "Grocery › Snacks › Bars"
    base = {"full_description": "", "images": [""], "category": "grocery", "query": "Bars ",
            "product_category": cat}
    items = [
        {**base, "asin": "B000000001", "name": "Oat Bar", "small_description": "gluten free oats",
         "pricing": "", "customization_options": {"Flavor": [{"value": "Honey/Oat", "image": None}]}},
        {**base, "asin": "B000000001", "name": "Duplicate", "small_description": [], "pricing": "$1.00",
         "customization_options": None},
        {**base, "asin": "nan", "name": "Bad", "small_description": [], "pricing": "$1.00",
         "customization_options": None},
        {**base, "asin": "B000000002", "name": "Nut Bar", "small_description": ["keto"],
         "pricing": "$10.00$20.00", "customization_options": None},
    ]
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps({"B000000002": {"attributes": ["keto"]}}))
    (tmp_path / "items_human_ins.json").write_text(json.dumps({"B000000001": [
        {"instruction": "i want a gluten free oat bar.", "instruction_attributes": ["gluten free"],
         "instruction_options": ["honey | oat"]},
        {"instruction": "skipped: no attributes", "instruction_attributes": [], "instruction_options": []}]}))
    (tmp_path / "reviews.json").write_text(json.dumps(
        [{"asin": "B000000001", "average_rating": 4.5, "reviews": [{"title": "ok", "stars": 4, "review": "tasty"}]}]))
    env = WebShopEnv(tmp_path)
    assert [p["asin"] for p in env.products] == ["B000000001", "B000000002"]
    oat, nut = env.products
    assert (oat["Price"], oat["pricing"], env.prices["B000000001"]) == ("$100.0", [100.0], 100.0)
    assert oat["BulletPoints"] == ["gluten free oats"] and oat["options"] == {"flavor": ["honey | oat"]}
    assert oat["Attributes"] == ["DUMMY_ATTR"] and oat["query"] == "bars"
    assert oat["Reviews"] == [{"title": "ok", "score": 4, "body": "tasty"}] and oat["Rating"] == 4.5
    assert nut["Price"] == "$10.0 to $20.0" and 10.0 <= env.prices["B000000002"] <= 20.0
    assert len(env.goals) == 1  # the goal without attributes is skipped
    # price 100 -> steps 110, 120, 130, 140; trailing "." of the instruction is stripped
    assert env.goals[0]["price_upper"] in (120.0, 130.0, 140.0)
    assert env.goals[0]["instruction_text"].startswith("i want a gluten free oat bar, and price lower than 1")
    env.reset()
    _, reward, _, _, info = buy(env, "B000000001", ["honey | oat"])
    # same query (r_type 1); "gluten free" is in the bullets; option fuzzy 100; 100 <= upper: 3/3
    assert reward == pytest.approx(1.0) and info["won"]


def test_webshop_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(WebShopDataError, match="setup.sh"):
        make_env("webshop", data_path=tmp_path / "nowhere")
    with pytest.raises(WebShopDataError, match="items_shuffle"):
        make_env("webshop", data_path=tmp_path)


# --------------------------------------------------------------------------- TextWorld
@pytest.fixture(scope="module")
def tw(tmp_path_factory):
    env = make_env("textworld", game_seeds=[1], world_size=2, nb_objects=3, quest_length=2,
                   cache_dir=tmp_path_factory.mktemp("tw_games"))
    yield env
    env.close()


@needs_textworld
def test_textworld_walkthrough_wins(tw):
    obs, info = tw.reset(seed=0)
    check_info(info, after_reset=True)
    assert info["task_type"] == "textworld" and info["task"] in obs
    plan = info["walkthrough"]
    assert plan
    for step, action in enumerate(plan):
        assert action in info["admissible_commands"]
        obs, reward, terminated, truncated, info = tw.step(action)
        assert info["invalid_action"] is False
    assert terminated and info["won"] and not truncated
    assert reward == 1.0  # the single quest's point, given on the winning step


@needs_textworld
def test_textworld_invalid_action(tw):
    tw.reset(seed=0)
    obs, reward, terminated, truncated, info = tw.step("dance wildly")
    check_info(info, after_reset=False)
    assert info["invalid_action"] is True and reward == 0.0 and not terminated and not truncated


@needs_textworld
def test_textworld_meta_commands_do_not_reach_the_interpreter(tw, tmp_path, monkeypatch):
    # Sent to the interpreter, "save"/"script" write files into the working directory, "quit" leaves
    # the game at a yes/no prompt and "restart" + "yes" restarts it (the winning step then paid 0).
    monkeypatch.chdir(tmp_path)
    obs, info = tw.reset(seed=0)
    plan = info["walkthrough"]
    for action in ["save", "SCRIPT", "look. save", "restart", "yes", "quit", "y"]:
        obs, reward, terminated, truncated, info = tw.step(action)
        assert info["invalid_action"] is True and reward == 0.0 and not terminated and not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    for action in plan:  # the game was neither restarted nor left at a prompt
        assert action in info["admissible_commands"]
        obs, reward, terminated, truncated, info = tw.step(action)
    assert terminated and info["won"] and reward == 1.0


def test_textworld_bad_arguments():
    with pytest.raises(ValueError, match="game_seeds"):
        make_env("textworld", game_seeds=[])
    with pytest.raises(ValueError, match="max_steps"):
        make_env("textworld", max_steps=0)
