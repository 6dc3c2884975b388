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

Data: the release files are read once into a cache folder and shared by every env instance over the
same files and settings (`scaled.envs.webshop_data.get_catalogue`); an env holds only its episode.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import random
import re
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from scaled.envs.base import TextEnv, resolve_data_path
from scaled.envs.webshop_data import (  # noqa: F401  (re-exported)
    DOWNLOAD_HELP,
    Catalogue,
    WebShopDataError,
    get_catalogue,
    parse_pricing,
    price_upper,
)
from scaled.envs.webshop_reward import webshop_reward

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
SPLITS = {"test": (0, 500), "validation": (500, 1500), "train": (1500, None)}
"""The original's goal splits (web_agent_site/envs/web_agent_text_env.py, ``SimServer``): slices of the goal
list shuffled with seed 233."""
SEARCH_ENGINES = ("bm25", "rank_bm25", "pyserini")

_ACTION_RE = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.S | re.I)
_TOKEN_RE = re.compile(r"\w+")


def parse_action(action: str) -> tuple[str | None, str | None]:
    """``"click[Buy Now]"`` -> ``("click", "buy now")``; anything else -> ``(None, None)``."""
    match = _ACTION_RE.match(str(action))
    if match is None:
        return None, None
    return match.group(1).lower(), match.group(2).strip().lower()


def load_catalogue(data_path: str | os.PathLike | None = None, **kwargs: Any) -> list[dict]:
    """Every normalised product of a release folder as a list (engine.py::load_products).

    Decodes all products: fine for the 1000-item files, slow for the full release (there, use the
    shared `get_catalogue` and its ``product(row)``). ``kwargs`` go to `get_catalogue`.
    """
    return list(get_catalogue(data_path, **kwargs).iter_products())


class _ByAsin(Mapping):
    """Read-only ``{asin: value}`` view of a `Catalogue`: keys in file order, values from `_value(row)`."""

    def __init__(self, catalogue: Catalogue):
        self._cat = catalogue

    def _value(self, row: int):
        raise NotImplementedError

    def __getitem__(self, asin: str):
        row = self._cat.row_of(asin)
        if row < 0:
            raise KeyError(asin)
        return self._value(row)

    def __contains__(self, asin: object) -> bool:
        return self._cat.row_of(asin) >= 0

    def __iter__(self) -> Iterator[str]:
        return (p["asin"] for p in self._cat.iter_products())

    def __len__(self) -> int:
        return self._cat.num_products


class ProductLookup(_ByAsin):
    """Read-only ``{asin: product}`` view of a `Catalogue`; products are decoded on access."""

    def _value(self, row: int) -> dict:
        return self._cat.product(row)


class ProductList(Sequence):
    """Read-only list view of a `Catalogue`'s products in file order (decoded on access)."""

    def __init__(self, catalogue: Catalogue):
        self._cat = catalogue

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._cat.product(r) for r in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._cat.product(i)

    def __len__(self) -> int:
        return self._cat.num_products


class PriceLookup(_ByAsin):
    """Read-only ``{asin: fixed price}`` view over a per-row price array."""

    def __init__(self, catalogue: Catalogue, prices: np.ndarray):
        super().__init__(catalogue)
        self._prices = prices

    def _value(self, row: int) -> float:
        return float(self._prices[row])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PriceLookup):
            return self._cat is other._cat and np.array_equal(self._prices, other._prices)
        return Mapping.__eq__(self, other)

    __hash__ = None


class RankBM25Search:
    """The former search path, kept as the benchmark's reference: ``rank_bm25.BM25Okapi`` (k1 = 1.5,
    b = 0.75) over the lower-cased ``\\w+`` tokens of title, description, all bullets and option
    values, built in memory per env instance. Any product sharing a query token is a hit."""

    def __init__(self, products: Sequence[dict]):
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


BM25Search = RankBM25Search
"""Former name of `RankBM25Search`."""


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

    Every instance over the same files and settings shares one read-only `Catalogue` (products,
    prices, goals and search index; see `scaled.envs.webshop_data`): the first instance in a
    process opens it (or builds it once into the cache folder), later ones take it in
    milliseconds. An instance holds only its episode state, so a pool of envs is cheap.

    Args:
        data_path: folder with the release files; ``None`` = the small shipped catalogue.
        human_goals: use the human instructions (``items_human_ins.json``) as in the paper; else the
            synthetic instruction of ``items_ins_v2`` with every option combination.
        goal_range: ``(start, stop)`` slice of the shuffled goal list (the original shuffles with seed 233
            and uses goals[0:500] as test, [500:1500] as validation, [1500:] as train).
        split: ``"train"``, ``"validation"`` or ``"test"``: the original's slice (`SPLITS`) of the shuffled
            goals; exclusive with ``goal_range``. ``None``: every goal.
        num_products: keep the first n products of the (pre-shuffled) products file.
        max_steps: steps before truncation (verl-agent uses 15 for WebShop).
        price_seed: seeds the per-product prices and the goals' price limits.
        show_attrs: add the ``Attributes`` button on item pages (off in the original by default).
        search_engine: ``"bm25"`` (the shared bm25s index, Lucene's BM25), ``"rank_bm25"`` (the former
            in-memory path, one index per instance: slow, a reference) or ``"pyserini"`` (``index_path``).
        index_path: Lucene index for ``search_engine="pyserini"``.
        seed: seeds the goal choice when ``reset`` gets no seed.
        products_file, attributes_file, human_goals_file, reviews_file: file names inside ``data_path``
            (default: the release names, the 1000-item files first).
        cache_dir: where the built catalogue and index are kept (default ``$EMPG_CACHE/webshop`` or
            ``~/.cache/empg/webshop``).
        bm25_k1, bm25_b: BM25 parameters of the index (pyserini's defaults 0.9 and 0.4).
        data_dir: deprecated name of ``data_path``.
    """

    name = "webshop"
    concurrent_steps = True  # episode state per instance; the shared catalogue and index are read-only

    def __init__(self, data_path: str | os.PathLike | None = None, *, human_goals: bool = True,
                 goal_range: tuple[int, int] | None = None, num_products: int | None = None,
                 max_steps: int = 15, price_seed: int = 0, show_attrs: bool = False,
                 search_engine: str = "bm25", index_path: str | None = None, seed: int | None = None,
                 products_file: str | None = None, attributes_file: str | None = None,
                 human_goals_file: str | None = None, reviews_file: str | None = None,
                 cache_dir: str | os.PathLike | None = None, bm25_k1: float = 0.9, bm25_b: float = 0.4,
                 data_dir: str | os.PathLike | None = None, split: str | None = None):
        data_path = resolve_data_path(data_path, data_dir, "WebShopEnv")
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
            if goal_range is not None:
                raise ValueError(f"WebShopEnv: pass split or goal_range, not both (got split={split!r}, "
                                 f"goal_range={goal_range!r})")
            goal_range = SPLITS[split]
        self.split = split
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
        if search_engine not in SEARCH_ENGINES:
            raise ValueError(f"search_engine: expected one of {list(SEARCH_ENGINES)}, got {search_engine!r}")
        if search_engine == "pyserini" and index_path is None:
            raise ValueError("index_path: required with search_engine='pyserini'")
        self.catalogue = get_catalogue(data_path, products_file=products_file, attributes_file=attributes_file,
                                       human_goals_file=human_goals_file, reviews_file=reviews_file,
                                       num_products=num_products, k1=bm25_k1, b=bm25_b, cache_dir=cache_dir)
        self.products = ProductList(self.catalogue)
        self.product_by_asin = ProductLookup(self.catalogue)
        # engine.py::generate_product_prices then goal.py, both drawing from one seeded stream.
        prices, goals = self.catalogue.goal_set(human_goals, price_seed)
        self.prices = PriceLookup(self.catalogue, prices)
        n_all = len(goals)
        if goal_range is not None:
            start, stop = goal_range
            goals = goals[start:stop]
        if not goals:
            where = "the shipped catalogue" if data_path is None else repr(str(data_path))
            raise ValueError(f"WebShopEnv: no goals in {where} for human_goals={human_goals}, split={split!r}, "
                             f"goal_range={goal_range} ({n_all} goals in all; this range needs more than "
                             f"{goal_range[0] if goal_range else 0}); check items_human_ins.json / "
                             f"items_ins_v2.json")
        self.goals = goals
        if search_engine == "pyserini":
            self.search_engine = PyseriniSearch(index_path)
        elif search_engine == "rank_bm25":
            self.search_engine = RankBM25Search(self.products)
        else:
            self.search_engine = self.catalogue
        self.max_steps = max_steps
        self.show_attrs = show_attrs
        self._rng = random.Random(seed)
        self.goal: dict | None = None
        self._done = False
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

    @property
    def num_tasks(self) -> int:
        """Number of goals (``reset(options={"task_index": i})`` plays ``goals[i]``)."""
        return len(self.goals)

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
        self._check_running(self.goal is not None, self._done)
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
        truncated = self._count_step(self._done)
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
