"""WebShop (Yao et al., 2022) as a `TextEnv`, on the real data-release files, without a web server.

Pages and buttons follow the original text mode (``web_agent_site/envs/web_agent_text_env.py``,
observations joined with `` [SEP] ``):

- search page: a search bar; action ``search[query]``;
- results page: ``Back to Search``, ``< Prev`` / ``Next >`` (10 of the top 50 BM25 hits per page),
  one clickable per product (its ASIN, lower case);
- item page: ``Back to Search``, ``< Prev`` (to the results), the option values, ``Description``,
  ``Features``, ``Reviews`` (and ``Attributes`` when ``show_attrs``), ``Buy Now``;
- Description / Features / Reviews / Attributes sub-pages: ``Back to Search``, ``< Prev`` (to the item).

Actions are ``search[...]`` (only where there is a search bar) and ``click[...]`` (a clickable of the
current page, case-insensitive); anything else is an invalid action: the page does not change and
``info["invalid_action"]`` is ``True``. ``Buy Now`` ends the episode with the WebShop score
(`scaled.envs.webshop_reward.webshop_reward`) as reward; ``info["won"]`` is ``score == 1``.

``info["admissible_commands"]`` lists ``"search[<query>]"`` (a template) on the search page and
``"click[<clickable>]"`` for every clickable, like verl-agent's WebShop wrapper.

Prices are fixed once per product (uniform in its range, seeded by ``price_seed``); a goal's
``price_upper`` is drawn from the 10-dollar steps above the price, and its instruction ends with
", and price lower than X dollars" (goal.py). Differences from the original are listed in
``docs/webshop.md``.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import random
import re
from decimal import Decimal
from typing import Any

from scaled.envs.base import TextEnv
from scaled.envs.webshop_reward import PRICE_RANGE, webshop_reward

SHIPPED_DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "webshop"
"""The small catalogue shipped with empg (30 products, real file formats)."""

SEARCH_RETURN_N = 50
PRODUCT_WINDOW = 10
END_BUTTON = "buy now"
NEXT_PAGE = "next >"
PREV_PAGE = "< prev"
BACK_TO_SEARCH = "back to search"
SUB_PAGES = ("description", "features", "reviews", "attributes")
SEARCH_TEMPLATE = "search[<query>]"

DOWNLOAD_HELP = (
    "Get the WebShop data release with the original repository's setup script "
    "(https://github.com/princeton-nlp/WebShop, `./setup.sh -d all` downloads items_shuffle.json, "
    "items_ins_v2.json, items_human_ins.json and reviews.json; `-d small` gets the 1000-item files "
    "items_shuffle_1000.json and items_ins_v2_1000.json) and pass data_dir=<its data folder>. "
    "For an offline smoke run use data_dir=None, the small catalogue in scaled/data/webshop."
)

_ACTION_RE = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.S | re.I)
_TOKEN_RE = re.compile(r"\w+")


class WebShopDataError(FileNotFoundError):
    """A WebShop data file is missing (the message says how to get it)."""


def parse_action(action: str) -> tuple[str | None, str | None]:
    """``"click[Buy Now]"`` -> ``("click", "buy now")``; anything else -> ``(None, None)``."""
    match = _ACTION_RE.match(str(action))
    if match is None:
        return None, None
    return match.group(1).lower(), match.group(2).strip().lower()


def _first_existing(data_dir: pathlib.Path, names: tuple[str, ...], what: str, required: bool = True):
    for name in names:
        if (data_dir / name).exists():
            return data_dir / name
    if required:
        raise WebShopDataError(f"WebShop {what} file not found in {str(data_dir)!r} "
                               f"(looked for {', '.join(names)}). {DOWNLOAD_HELP}")
    return None


def _parse_pricing(pricing: str | None) -> tuple[list[float], str]:
    """Release pricing string -> (bounds, price tag), as engine.py::load_products."""
    if not pricing:
        return [100.0], "$100.0"
    bounds = [float(Decimal(re.sub(r"[^\d.]", "", p))) for p in pricing.split("$")[1:] if re.sub(r"[^\d.]", "", p)]
    if not bounds:
        return [100.0], "$100.0"
    if len(bounds) == 1:
        return bounds, f"${bounds[0]}"
    return bounds[:2], f"${bounds[0]} to ${bounds[1]}"


def load_catalogue(data_dir: str | os.PathLike | None = None, *, products_file: str | None = None,
                   attributes_file: str | None = None, human_goals_file: str | None = None,
                   reviews_file: str | None = None, num_products: int | None = None) -> list[dict]:
    """Read and normalise the release's products (engine.py::load_products).

    Returns:
        Products with the release fields plus ``Title``, ``Description``, ``BulletPoints``,
        ``pricing`` (bounds), ``Price`` (tag), ``options`` ({name: [values]}), ``Attributes``,
        ``Reviews``, ``Rating`` and, when present, ``instructions`` (human goals) and
        ``instruction_text`` / ``instruction_attributes`` (synthetic goals).
    """
    data_dir = pathlib.Path(data_dir) if data_dir is not None else SHIPPED_DATA
    if not data_dir.is_dir():
        raise WebShopDataError(f"WebShop data_dir {str(data_dir)!r} does not exist. {DOWNLOAD_HELP}")
    products_path = data_dir / products_file if products_file else _first_existing(
        data_dir, ("items_shuffle_1000.json", "items_shuffle.json"), "products")
    attrs_path = data_dir / attributes_file if attributes_file else _first_existing(
        data_dir, ("items_ins_v2_1000.json", "items_ins_v2.json"), "attributes")
    human_path = data_dir / human_goals_file if human_goals_file else _first_existing(
        data_dir, ("items_human_ins.json",), "human goals", required=False)
    reviews_path = data_dir / reviews_file if reviews_file else _first_existing(
        data_dir, ("reviews.json",), "reviews", required=False)
    for path in (products_path, attrs_path):
        if not path.exists():
            raise WebShopDataError(f"WebShop file {str(path)!r} not found. {DOWNLOAD_HELP}")

    raw = json.loads(products_path.read_text())
    attributes = json.loads(attrs_path.read_text())
    human = json.loads(human_path.read_text()) if human_path and human_path.exists() else {}
    all_reviews, ratings = {}, {}
    if reviews_path and reviews_path.exists():
        for entry in json.loads(reviews_path.read_text()):
            all_reviews[entry["asin"]] = entry.get("reviews", [])
            ratings[entry["asin"]] = entry.get("average_rating", "N.A.")
    if num_products is not None:
        raw = raw[:num_products]

    products, seen = [], set()
    for item in raw:
        asin = item["asin"]
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        product = dict(item)
        product["Title"] = item["name"]
        product["Description"] = item.get("full_description") or ""
        small = item.get("small_description") or []
        product["BulletPoints"] = small if isinstance(small, list) else [small]
        product["pricing"], product["Price"] = _parse_pricing(item.get("pricing"))
        options = {}
        for option_name, contents in (item.get("customization_options") or {}).items():
            if contents is None:
                continue
            options[option_name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
        product["options"] = options
        product["Attributes"] = attributes.get(asin, {}).get("attributes") or ["DUMMY_ATTR"]
        product["Reviews"] = [
            {"title": r.get("title", ""), "score": r.get("score", r.get("stars")),
             "body": r.get("body", r.get("review", ""))} for r in all_reviews.get(asin, [])]
        product["Rating"] = ratings.get(asin, "N.A.")
        product["query"] = (item.get("query") or "").lower().strip()
        if asin in human:
            product["instructions"] = human[asin]
        product["instruction_text"] = attributes.get(asin, {}).get("instruction")
        product["instruction_attributes"] = attributes.get(asin, {}).get("instruction_attributes")
        products.append(product)
    return products


def _price_upper(price: float, rng: random.Random) -> tuple[float, str]:
    """goal.py: the larger of two distinct draws among the first four 10-dollar steps above ``price``."""
    steps = [p for p in PRICE_RANGE if p > price][:4]
    if len(steps) >= 2:
        _, upper = sorted(rng.sample(steps, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return 1000000.0, ""


def make_goals(products: list[dict], prices: dict[str, float], rng: random.Random, *, human_goals: bool = True) -> list[dict]:
    """Goals from human instructions (goal.py::get_human_goals) or synthetic ones (get_synthetic_goals)."""
    goals = []
    for product in products:
        asin = product["asin"]
        if human_goals:
            entries = [(ins["instruction"], ins.get("instruction_attributes") or [],
                        ins.get("instruction_options") or []) for ins in product.get("instructions", [])]
        elif product.get("instruction_text") and product.get("instruction_attributes"):
            names = sorted(product["options"])
            combos = [[]]
            for name in names:
                combos = [c + [(name, v)] for c in combos for v in product["options"][name]]
            entries = []
            for combo in combos:
                text = ", and ".join(f"{k}: {v}" for k, v in combo)
                entries.append((product["instruction_text"] + (" with " + text if text else ""),
                                product["instruction_attributes"], dict(combo)))
        else:
            entries = []
        if not human_goals and entries:  # get_synthetic_goals: one limit per product, shared by its goals
            upper, price_text = _price_upper(prices[asin], rng)
        for instruction, attrs, options in entries:
            if not attrs:  # goal.py skips goals without attributes
                continue
            if human_goals:  # get_human_goals: one limit per instruction
                upper, price_text = _price_upper(prices[asin], rng)
            goals.append({
                "asin": asin, "category": product.get("category", ""), "query": product["query"],
                "name": product["name"], "product_category": product.get("product_category", ""),
                "instruction_text": instruction.strip(".") + price_text if human_goals else instruction + price_text,
                "attributes": list(attrs), "price_upper": upper, "goal_options": options,
            })
    return goals


class BM25Search:
    """Top-k product search with BM25 (``rank_bm25.BM25Okapi``) over title, description, bullets, options."""

    def __init__(self, products: list[dict]):
        from rank_bm25 import BM25Okapi

        self.asins = [p["asin"] for p in products]
        docs = []
        for p in products:
            text = " ".join([p["Title"], p["Description"], " ".join(p["BulletPoints"]),
                             " ".join(v for values in p["options"].values() for v in values)])
            docs.append(_TOKEN_RE.findall(text.lower()))
        self._doc_tokens = [set(d) for d in docs]
        self._bm25 = BM25Okapi(docs)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        """ASINs of the (at most) ``k`` best products that contain a query token, best first."""
        tokens = _TOKEN_RE.findall(query.lower())
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        hits = [i for i in range(len(self.asins)) if self._doc_tokens[i] & set(tokens)]
        hits.sort(key=lambda i: (-scores[i], i))
        return [self.asins[i] for i in hits[:k]]


class PyseriniSearch:  # pragma: no cover - optional, needs Java and a Lucene index
    """The original's Lucene index via pyserini (``index_path`` = WebShop's ``search_engine/indexes*``)."""

    def __init__(self, index_path: str):
        from pyserini.search.lucene import LuceneSearcher

        self._searcher = LuceneSearcher(str(index_path))

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        hits = self._searcher.search(query, k=k)
        return [json.loads(self._searcher.doc(h.docid).raw())["id"] for h in hits]


class WebShopEnv(TextEnv):
    """WebShop text environment (search -> results -> item -> Buy Now) on the release files.

    Args:
        data_dir: folder with the release files; ``None`` = the small shipped catalogue.
        human_goals: use the human instructions (``items_human_ins.json``) as in the paper; else the
            synthetic instruction of ``items_ins_v2`` with every option combination.
        goal_range: ``(start, stop)`` slice of the shuffled goal list (the original shuffles with seed 233
            and uses goals[0:500] as test, [500:1500] as validation, [1500:] as train).
        num_products: keep the first n products of the (pre-shuffled) products file.
        max_steps: steps before truncation (verl-agent uses 15 for WebShop).
        price_seed: seeds the per-product prices and the goals' price limits.
        show_attrs: add the ``Attributes`` button on item pages (off in the original by default).
        search_engine: ``"bm25"`` (rank_bm25) or ``"pyserini"`` (needs ``index_path``).
        index_path: Lucene index for ``search_engine="pyserini"``.
        seed: seeds the goal choice when ``reset`` gets no seed.
        products_file, attributes_file, human_goals_file, reviews_file: file names inside ``data_dir``
            (default: the release names, the 1000-item files first).
    """

    name = "webshop"

    def __init__(self, data_dir: str | os.PathLike | None = None, *, human_goals: bool = True,
                 goal_range: tuple[int, int] | None = None, num_products: int | None = None,
                 max_steps: int = 15, price_seed: int = 0, show_attrs: bool = False,
                 search_engine: str = "bm25", index_path: str | None = None, seed: int | None = None,
                 products_file: str | None = None, attributes_file: str | None = None,
                 human_goals_file: str | None = None, reviews_file: str | None = None):
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
        if search_engine not in ("bm25", "pyserini"):
            raise ValueError(f"search_engine: expected 'bm25' or 'pyserini', got {search_engine!r}")
        self.products = load_catalogue(data_dir, products_file=products_file, attributes_file=attributes_file,
                                       human_goals_file=human_goals_file, reviews_file=reviews_file,
                                       num_products=num_products)
        self.product_by_asin = {p["asin"]: p for p in self.products}
        # engine.py::generate_product_prices then goal.py, both drawing from one seeded stream.
        rng = random.Random(price_seed)
        self.prices = {p["asin"]: (p["pricing"][0] if len(p["pricing"]) == 1 else rng.uniform(*p["pricing"][:2]))
                       for p in self.products}
        goals = make_goals(self.products, self.prices, rng, human_goals=human_goals)
        random.Random(233).shuffle(goals)  # SimServer: random.seed(233); random.shuffle(goals)
        if goal_range is not None:
            start, stop = goal_range
            goals = goals[start:stop]
        if not goals:
            raise ValueError(f"WebShopEnv: no goals (human_goals={human_goals}, goal_range={goal_range}); "
                             "check items_human_ins.json / items_ins_v2.json")
        self.goals = goals
        if search_engine == "pyserini":
            if index_path is None:
                raise ValueError("index_path: required with search_engine='pyserini'")
            self.search_engine = PyseriniSearch(index_path)
        else:
            self.search_engine = BM25Search(self.products)
        self.max_steps = max_steps
        self.show_attrs = show_attrs
        self._rng = random.Random(seed)
        self.goal: dict | None = None
        self._page = "search"

    # ------------------------------------------------------------------ pages
    def _clickables(self) -> list[str]:
        """Lower-case clickables of the current page (web_agent_text_env.get_available_actions)."""
        page = self._page
        if page in ("search", "done"):
            return []
        if page == "results":
            buttons = [BACK_TO_SEARCH]
            if self._results_page > 1:
                buttons.append(PREV_PAGE)
            if self._results_page * PRODUCT_WINDOW < len(self._hits):
                buttons.append(NEXT_PAGE)
            return buttons + [a.lower() for a in self._page_hits()]
        if page == "item":
            product = self.product_by_asin[self._asin]
            values = [v for vals in product["options"].values() for v in vals]
            subs = [s for s in SUB_PAGES if s != "attributes" or self.show_attrs]
            return [BACK_TO_SEARCH, PREV_PAGE] + values + subs + [END_BUTTON]
        return [BACK_TO_SEARCH, PREV_PAGE]  # sub-pages

    def _page_hits(self) -> list[str]:
        start = (self._results_page - 1) * PRODUCT_WINDOW
        return self._hits[start:start + PRODUCT_WINDOW]

    def _observation(self) -> str:
        head = ["Instruction:", self.goal["instruction_text"]]
        page = self._page
        if page == "done":
            return f"Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] {self._score:.2f}"
        if page == "search":
            return " [SEP] ".join(["WebShop"] + head + ["Search"])
        parts = ["Back to Search"]
        if page == "results":
            if self._results_page > 1:
                parts.append("< Prev")
            parts.append(f"Page {self._results_page} (Total results: {len(self._hits)})")
            if self._results_page * PRODUCT_WINDOW < len(self._hits):
                parts.append("Next >")
            for asin in self._page_hits():
                p = self.product_by_asin[asin]
                parts += [asin, p["Title"], p["Price"]]
            return " [SEP] ".join(head + parts)
        parts.append("< Prev")
        product = self.product_by_asin[self._asin]
        if page == "item":
            for name, values in product["options"].items():
                parts.append(name)
                for v in values:
                    chosen = self._options.get(name) == v
                    parts.append(f"{v} (selected)" if chosen else v)
            parts += [product["Title"], f"Price: {product['Price']}", f"Rating: {product['Rating']}"]
            parts += [s.title() for s in SUB_PAGES if s != "attributes" or self.show_attrs] + ["Buy Now"]
        elif page == "description":
            parts.append(product["Description"] or "N.A.")
        elif page == "features":
            parts += product["BulletPoints"] or ["N.A."]
        elif page == "reviews":
            for r in product["Reviews"]:
                parts += [r["title"], str(r["score"]), r["body"]]
            if not product["Reviews"]:
                parts.append("N.A.")
        elif page == "attributes":
            parts += product["Attributes"]
        return " [SEP] ".join(head + parts)

    def _admissible(self) -> list[str]:
        commands = [SEARCH_TEMPLATE] if self._page == "search" else []
        return commands + [f"click[{c}]" for c in self._clickables()]

    def _info(self, invalid: bool) -> dict[str, Any]:
        return {"admissible_commands": self._admissible(), "won": self._won, "invalid_action": invalid,
                "task": self.goal["instruction_text"], "task_type": "webshop", "page": self._page,
                "score": self._score, "step": self._steps}

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        """Start at the search page with a goal: ``options={"goal_index": i}``, else by ``seed``."""
        self.goal = self.goals[self._episode_index(len(self.goals), seed, options, "goal_index")]
        self._page = "search"
        self._hits: list[str] = []
        self._results_page = 1
        self._asin: str | None = None
        self._options: dict[str, str] = {}
        self._steps = 0
        self._done = False
        self._won = False
        self._score = 0.0
        self.last_reward_parts: dict | None = None
        return self._observation(), self._info(invalid=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply ``search[...]`` or ``click[...]``; invalid actions leave the page unchanged."""
        if self.goal is None:
            raise RuntimeError("WebShopEnv.step called before reset")
        if self._done or self._steps >= self.max_steps:
            raise RuntimeError("WebShopEnv.step called after the episode ended; call reset")
        self._steps += 1
        kind, arg = parse_action(action)
        reward, invalid = 0.0, False
        if kind == "search" and self._page == "search" and arg:
            # engine.py keeps only hits in the loaded catalogue (an index may hold more products)
            self._hits = [a for a in self.search_engine.search(arg, SEARCH_RETURN_N) if a in self.product_by_asin]
            self._results_page = 1
            self._page = "results"
        elif kind == "click" and arg in self._clickables():
            reward = self._click(arg)
        else:
            invalid = True
        truncated = not self._done and self._steps >= self.max_steps
        return self._observation(), reward, self._done, truncated, self._info(invalid)

    def _click(self, button: str) -> float:
        page = self._page
        if button == BACK_TO_SEARCH:
            self._page, self._asin, self._options = "search", None, {}
        elif button == NEXT_PAGE:
            self._results_page += 1
        elif button == PREV_PAGE:
            if page == "results":
                self._results_page -= 1
            elif page == "item":
                self._page, self._asin, self._options = "results", None, {}
            else:
                self._page = "item"
        elif page == "results":
            self._asin = button.upper()
            self._options = {}
            self._page = "item"
        elif button == END_BUTTON:
            return self._buy()
        elif button in SUB_PAGES:
            self._page = button
        else:  # an option value: set it for its option name (first name that has it)
            product = self.product_by_asin[self._asin]
            for name, values in product["options"].items():
                if button in values:
                    self._options[name] = button
                    break
        return 0.0

    def _buy(self) -> float:
        product = self.product_by_asin[self._asin]
        score, parts = webshop_reward(product, self.goal, self.prices[self._asin], self._options, verbose=True)
        self.last_reward_parts = {**parts, "asin": self._asin, "options": dict(self._options)}
        self._score = float(score)
        self._won = math.isclose(self._score, 1.0)
        self._done = True
        self._page = "done"
        return self._score
