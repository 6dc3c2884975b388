"""WebShop's purchase reward (Yao et al., 2022, `web_agent_site/engine/goal.py`), without spaCy.

The score of buying ``product`` with ``options`` at ``price`` for a goal is (paper Eq. in §3.1)

    r = r_type * (n_attr_matched + n_option_matched + 1[price <= price_upper]) / (|goal attributes| + |goal options| + 1)

- an attribute matches when ``token_set_ratio(product attribute, goal attribute) > 85`` for one of the
  product's attributes, or when it is a substring of the title, the bullet points or the description
  (lower-cased);
- a purchased option matches exactly (after colour normalisation) when its name is ``size``, and
  fuzzily (``token_set_ratio > 85``) against any goal option otherwise; failing that, when its value
  is a substring of the title, bullets or description;
- ``r_type`` is 1, 0.5, 0.1 or 0 from the product type: it is 1 when the search query of the bought
  product equals the goal's, or at least two category levels match, or the title overlap > 0.2; 0.5
  otherwise; 0.1 when the title overlap < 0.1; 0 when it is 0.

**Deviation (documented in docs/webshop.md):** the original takes the title "nouns" from spaCy's
``en_core_web_lg`` POS tags (NOUN/PROPN). spaCy models are not installable here, so `title_nouns`
keeps the lower-cased alphabetic tokens of length >= 2 that are not in `STOPWORDS` (function words,
common adjectives of size/colour/material and marketing words). On titles such as "Men's Cotton
Crew Neck T-Shirt" both keep {cotton, crew, neck, shirt}-like content words; the heuristic keeps some
adjectives spaCy would drop, which can only raise ``title_score`` for products of a different type
sharing those adjectives.

Fuzzy scores use ``rapidfuzz.fuzz.token_set_ratio`` (same definition as ``thefuzz``'s, 0-100).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from rapidfuzz.fuzz import token_set_ratio

EXACT_MATCH_OPTS = ("size",)
"""Option names that must match exactly (goal.py::EXACT_MATCH_OPTS)."""

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
"""Candidate price limits for goals: 10, 20, ..., 990 dollars (goal.py::PRICE_RANGE)."""

FUZZY_THRESHOLD = 85
"""``token_set_ratio`` must exceed this for a fuzzy attribute/option match (goal.py)."""

# web_agent_site/engine/normalize.py::COLOR_SET (order matters: the first colour found wins).
COLOR_SET = [
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue",
    "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral",
    "cranberry", "cream", "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia",
    "gold", "granite", "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo",
    "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta",
    "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard",
    "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple",
    "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull",
    "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal", "tiger", "turquoise",
    "violet", "walnut", "wheat", "white", "wine", "yellow",
]

# Replacement for spaCy's noun filter: words that are (almost) never the product-type noun.
STOPWORDS = frozenset("""
a an the and or of for with without in on at to from by as is are be it its this that these those
x pack packs count set piece pieces pcs pc ct oz fl lb lbs inch inches ft cm mm ml kg g
men mens women womens woman man kids kid boys girls unisex adult adults baby
new best premium quality high great perfect ideal easy soft lightweight light heavy durable classic
small medium large extra big mini long short slim regular fit plus size sizes
black white blue red green yellow pink purple grey gray brown beige navy silver gold orange
cotton leather plastic metal steel wood wooden natural organic free
""".split())

_TOKEN_RE = re.compile(r"[a-z][a-z]+")


def normalize_color(value: str) -> str:
    """First colour of `COLOR_SET` contained in ``value``, else ``value`` (normalize.py)."""
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def title_nouns(title: str) -> list[str]:
    """Stand-in for spaCy's NOUN/PROPN tokens of a title: lower-cased content words (see module doc)."""
    return [t for t in _TOKEN_RE.findall(title.lower()) if t not in STOPWORDS]


def type_reward(product: Mapping[str, Any], goal: Mapping[str, Any]) -> dict[str, Any]:
    """``r_type`` in {1, 0.5, 0.1, 0} and its parts (goal.py::get_type_reward).

    Args:
        product: the bought product, with ``query``, ``product_category`` ("A › B › C") and ``name``.
        goal: the goal, with the same three fields (those of the target product).

    Returns:
        ``{"r_type", "query_match", "category_match", "title_score"}``.
    """
    query_match = product["query"] == goal["query"]
    product_levels = {x.strip() for x in product["product_category"].split("›")}
    goal_levels = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(product_levels & goal_levels) >= 2
    bought, wanted = title_nouns(product["name"]), title_nouns(goal["name"])
    title_score = 0.2 if not wanted else len(set(bought) & set(wanted)) / len(wanted)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def _in_text(value: str, product: Mapping[str, Any]) -> bool:
    return (value in product["Title"].lower() or value in " ".join(product["BulletPoints"]).lower()
            or value in product["Description"].lower())


def attribute_matches(product: Mapping[str, Any], goal_attributes: Sequence[str]) -> int:
    """Number of goal attributes the product has (fuzzy on its attributes, else a text substring)."""
    matches = 0
    for goal_attr in goal_attributes:
        if any(token_set_ratio(p_attr, goal_attr) > FUZZY_THRESHOLD for p_attr in product["Attributes"]):
            matches += 1
        elif _in_text(goal_attr, product):
            matches += 1
    return matches


def option_matches(product: Mapping[str, Any], goal_options: Sequence[str],
                   purchased_options: Mapping[str, str]) -> int:
    """Number of purchased options that match a goal option (goal.py::get_option_reward).

    ``size`` must match exactly (after colour normalisation), other options fuzzily; an unmatched
    option value still counts when it appears in the title, bullets or description.
    """
    goal_values = [normalize_color(o) for o in goal_options]
    matches = 0
    for name, value in purchased_options.items():
        value = normalize_color(value)
        if name.lower() in EXACT_MATCH_OPTS:
            matched = value in goal_values
        else:
            matched = any(token_set_ratio(g, value) > FUZZY_THRESHOLD for g in goal_values)
        if matched or _in_text(value, product):
            matches += 1
    return matches


def webshop_reward(product: Mapping[str, Any], goal: Mapping[str, Any], price: float,
                   purchased_options: Mapping[str, str], *, verbose: bool = False):
    """WebShop's score for buying ``product`` at ``price`` with ``purchased_options`` (goal.py::get_reward).

    r = r_type * (n_attr + n_opt + 1[price <= price_upper]) / (|attributes| + |options| + 1)

    Args:
        product: normalised product (``name``, ``Title``, ``BulletPoints``, ``Description``,
            ``Attributes``, ``query``, ``product_category``).
        goal: ``attributes`` (list), ``goal_options`` (list or dict of values), ``price_upper``,
            ``query``, ``product_category``, ``name``.
        price: the product's fixed price.
        purchased_options: ``{option name: chosen value}``.
        verbose: also return the parts.

    Returns:
        The reward in [0, 1] (a float), or ``(reward, parts)`` when ``verbose``.
    """
    goal_options = goal["goal_options"]
    goal_options = list(goal_options.values()) if isinstance(goal_options, Mapping) else list(goal_options)
    r_type = type_reward(product, goal)
    price_ok = float(price <= goal["price_upper"])
    n_attr = attribute_matches(product, goal["attributes"])
    n_opt = option_matches(product, goal_options, purchased_options)
    denominator = len(goal["attributes"]) + len(goal_options) + 1
    reward = r_type["r_type"] * (n_attr + n_opt + price_ok) / denominator
    if verbose:
        return reward, {**r_type, "n_attr": n_attr, "n_opt": n_opt, "price_ok": bool(price_ok),
                        "denominator": denominator}
    return reward
