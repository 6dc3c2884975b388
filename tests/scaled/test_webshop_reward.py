"""WebShop reward (scaled/envs/webshop_reward.py) against hand-computed cases.

r = r_type * (n_attr + n_opt + 1[price <= upper]) / (|attrs| + |options| + 1)
"""

import pytest

from scaled.envs.webshop_reward import (
    normalize_color,
    option_matches,
    title_nouns,
    type_reward,
    webshop_reward,
)

SHAMPOO_CATEGORY = "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"


def product(**overrides):
    base = {
        "name": "Tea Tree Anti Dandruff Shampoo",
        "Title": "Tea Tree Anti Dandruff Shampoo",
        "BulletPoints": ["Tea tree oil", "Soothes itchy scalp"],
        "Description": "Shampoo that treats dandruff.",
        "Attributes": ["tea tree", "dandruff", "itchy scalp"],
        "query": "shampoo",
        "product_category": SHAMPOO_CATEGORY,
    }
    base.update(overrides)
    return base


def goal(**overrides):
    base = {
        "name": "Tea Tree Anti Dandruff Shampoo",
        "query": "shampoo",
        "product_category": SHAMPOO_CATEGORY,
        "attributes": ["tea tree", "dandruff"],
        "goal_options": ["20 fl oz"],
        "price_upper": 30.0,
    }
    base.update(overrides)
    return base


def test_perfect_purchase_scores_one():
    # attrs 2/2 (exact attribute strings), size "20 fl oz" exact, price 11.49 <= 30:
    # (2 + 1 + 1) / (2 + 1 + 1) = 1; r_type 1 (same query).
    assert webshop_reward(product(), goal(), 11.49, {"size": "20 fl oz"}) == pytest.approx(1.0)


def test_wrong_size_loses_one_part():
    # size is exact-match only: "10 fl oz" not in ["20 fl oz"] and not in title/bullets/description
    # -> n_opt = 0: (2 + 0 + 1) / 4 = 0.75
    assert webshop_reward(product(), goal(), 11.49, {"size": "10 fl oz"}) == pytest.approx(0.75)


def test_no_option_chosen_and_price_too_high():
    # n_attr 2, n_opt 0 (nothing chosen), 45 > 30 -> price 0: (2 + 0 + 0) / 4 = 0.5
    assert webshop_reward(product(), goal(), 45.0, {}) == pytest.approx(0.5)


def test_price_equal_to_limit_is_ok():
    # price <= upper (inclusive): 30 <= 30 -> (2 + 1 + 1) / 4 = 1
    assert webshop_reward(product(), goal(), 30.0, {"size": "20 fl oz"}) == pytest.approx(1.0)


def test_attribute_found_in_text_only():
    # Attributes list is the release's placeholder; "tea tree" is in the title (lower-cased),
    # "dandruff" in the description -> still 2 matches. "sulfate free" is nowhere -> 0.
    p = product(Attributes=["DUMMY_ATTR"])
    g = goal(attributes=["tea tree", "dandruff", "sulfate free"])
    # (2 + 1 + 1) / (3 + 1 + 1) = 0.8
    assert webshop_reward(p, g, 11.49, {"size": "20 fl oz"}) == pytest.approx(0.8)


def test_fuzzy_attribute_threshold():
    # token_set_ratio is 100 when one token set contains the other ("long battery life" ⊇ "battery life")
    # -> match; "water resistant" vs goal "waterproof" shares no token and is not in the text -> no match.
    p = product(Attributes=["long battery life", "water resistant"], Title="Speaker", BulletPoints=[],
                Description="", name="Speaker")
    g = goal(name="Speaker", attributes=["battery life", "waterproof"], goal_options=[])
    # (1 + 0 + 1) / (2 + 0 + 1) = 2/3
    assert webshop_reward(p, g, 10.0, {}) == pytest.approx(2 / 3)


def test_color_option_is_fuzzy_after_normalisation():
    # "heather grey" normalises to "grey" ("grey" precedes "heather" in COLOR_SET) and so does the
    # goal's "grey" -> match; size "x-large" vs goal "large": exact match fails and "x-large" is
    # not in the text -> 0.
    p = product(Title="Crew Tee", name="Crew Tee", BulletPoints=[], Description="", Attributes=["cotton"])
    chosen = {"color": "heather grey", "size": "x-large"}
    assert option_matches(p, ["grey", "large"], chosen) == 1
    g = goal(name="Crew Tee", attributes=["cotton"], goal_options=["grey", "large"])
    # (1 + 1 + 1) / (1 + 2 + 1) = 0.75
    assert webshop_reward(p, g, 10.0, chosen) == pytest.approx(0.75)
    # goal options given as a dict (synthetic goals) count the same way
    g_dict = goal(name="Crew Tee", attributes=["cotton"], goal_options={"color": "grey", "size": "large"})
    assert webshop_reward(p, g_dict, 10.0, chosen) == pytest.approx(0.75)
    # the original's quirk, kept: "navy blue" normalises to "blue" ("blue" precedes "navy"), so it
    # does not match a goal "navy" (token_set_ratio("navy", "blue") is far below 85)
    assert option_matches(p, ["navy"], {"color": "navy blue"}) == 0


def test_unmatched_option_counts_when_in_title():
    # size "16 fl oz" is not a goal option, but goal.py still counts it when it appears in the title.
    p = product(Title="Tea Tree Anti Dandruff Shampoo 16 fl oz")
    assert option_matches(p, ["20 fl oz"], {"size": "16 fl oz"}) == 1


def test_type_reward_levels():
    g = goal()  # title nouns: tea, tree, anti, dandruff, shampoo (5)
    # same query -> 1
    assert type_reward(product(), g)["r_type"] == 1.0
    other_cat = "Tools › Kitchen › Brushes"
    # different query and category; nouns {shampoo, brush, massager} ∩ goal = {shampoo}: 1/5 = 0.2,
    # not > 0.2 and not < 0.1 -> 0.5
    p = product(name="Shampoo Brush Massager", query="brushes", product_category=other_cat)
    parts = type_reward(p, g)
    assert parts["title_score"] == pytest.approx(0.2) and parts["r_type"] == 0.5
    # two category levels in common ("Beauty & Personal Care", "Hair Care") -> 1 even with title 0.2
    p = product(name="Shampoo Brush Massager", query="brushes",
                product_category="Beauty & Personal Care › Hair Care › Brushes")
    assert type_reward(p, g)["r_type"] == 1.0
    # no title noun in common -> 0 (whatever the category)
    p = product(name="Kids Bluetooth Headphones", query="headphones", product_category=SHAMPOO_CATEGORY)
    assert type_reward(p, g)["r_type"] == 0.0
    # overlap 1 of 11 nouns < 0.1 -> 0.1
    g11 = goal(name="shampoo alpha beta gamma delta epsilon zeta theta iota kappa lambda")
    p = product(name="Shampoo Brush", query="brushes", product_category=other_cat)
    assert type_reward(p, g11)["r_type"] == 0.1
    # r_type multiplies: 0.5 * (2 + 0 + 1) / 4 = 0.375 for the brush bought at 10 dollars
    p = product(name="Shampoo Brush Massager", query="brushes", product_category=other_cat)
    assert webshop_reward(p, g, 10.0, {}) == pytest.approx(0.375)


def test_title_nouns_heuristic():
    # "men" is a stop word, "s"/"t" are single letters, "cotton" a material word
    assert title_nouns("Men's Cotton Crew Neck T-Shirt") == ["crew", "neck", "shirt"]
    assert title_nouns("") == []


@pytest.mark.parametrize("value,expected", [
    ("", ""), ("black forest", "black"), ("violet lavender", "lavender"),
    ("123alabaster", "alabaster"), ("webshop", "webshop"),
])
def test_normalize_color(value, expected):
    # the first colour in COLOR_SET order that is a substring wins ("lavender" precedes "violet")
    assert normalize_color(value) == expected


def test_verbose_parts():
    reward, parts = webshop_reward(product(), goal(), 11.49, {"size": "10 fl oz"}, verbose=True)
    assert reward == pytest.approx(0.75)
    assert (parts["n_attr"], parts["n_opt"], parts["price_ok"], parts["denominator"]) == (2, 0, True, 4)
