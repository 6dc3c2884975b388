"""The WebShop catalogue and search index, built once on disk and shared by every env in a process.

`get_catalogue(...)` returns the one `Catalogue` of a data folder and settings. The first call in
any process builds it into the cache folder (``$EMPG_CACHE/webshop/<key>``, default
``~/.cache/empg/webshop/<key>``); later calls in the same process return the same object, and later
processes open the files in about a second. The key hashes the data files' paths, sizes and
modification times and the settings, so a changed release file builds a new catalogue.

On disk (all written once, read-only afterwards):

- ``products.jsonl`` + ``offsets.npy``: one normalised product per line and the byte offset of each
  line. A product is decoded (about 20 microseconds) only when a page or the reward needs it, so
  1.18M products cost no Python objects; ``asins.npy`` / ``asin_rows.npy`` (sorted ASINs and their
  rows) answer ASIN lookups by binary search.
- ``price_low.npy`` / ``price_high.npy``: the price bounds (NaN high bound for a fixed price).
- ``human_goals.json``: the human instructions (about 12k in the full release) with the fields goals
  need; ``has_instruction.npy`` marks the products with a synthetic instruction.
- ``index/``: a ``bm25s`` index (sparse BM25 scores in CSC layout) that `Catalogue` memory-maps.

Search (`Catalogue.search`) follows WebShop's Lucene index where ``bm25s`` can: the indexed text is
the original's (``search_engine/convert_product_file_format.py``: title, description, first bullet
point, options, lower-cased), the scoring is Lucene's BM25 (``method="lucene"``) with pyserini's
defaults k1 = 0.9, b = 0.4, and Lucene's English stop words are dropped. Tokens are ``\\w+`` with
no stemming (Lucene's analyzer stems with Porter). Every product sharing a token with the query is
a hit; the top ``k`` come back best first, ties by catalogue order. ``docs/webshop.md`` measures the
difference to the rank_bm25 path.
"""

from __future__ import annotations

import array
import collections
import fcntl
import functools
import hashlib
import json
import logging
import mmap
import os
import pathlib
import random
import re
import shutil
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Sequence

import numpy as np

from scaled.envs.webshop_jsonio import check_field, iter_json_dict, iter_json_list, type_name

FORMAT_VERSION = 1
"""Bumped whenever the on-disk layout or the normalisation changes (part of the cache key)."""

LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split())
"""Lucene's English stop words (``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``), dropped from the index."""

DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
"""pyserini's ``LuceneSearcher`` defaults, which WebShop's search engine uses."""

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = ("items_ins_v2_1000.json", "items_ins_v2.json")
HUMAN_GOAL_FILES = ("items_human_ins.json",)
REVIEW_FILES = ("reviews.json",)

DOWNLOAD_HELP = (
    "Get the WebShop data release with the original repository's setup script "
    "(https://github.com/princeton-nlp/WebShop, `./setup.sh -d all` downloads items_shuffle.json, "
    "items_ins_v2.json, items_human_ins.json and reviews.json; `-d small` gets the 1000-item files "
    "items_shuffle_1000.json and items_ins_v2_1000.json) and pass data_path=<its data folder>. "
    "For an offline smoke run use data_path=None, the small catalogue in scaled/data/webshop."
)

_TOKEN_RE = re.compile(r"\w+")


class WebShopDataError(FileNotFoundError, ValueError):
    """A WebShop data file or folder is missing (the message says how to get it)."""


def default_cache_dir() -> pathlib.Path:
    """``$EMPG_CACHE/webshop``, else ``~/.cache/empg/webshop``."""
    root = os.environ.get("EMPG_CACHE")
    return (pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "empg") / "webshop"


def tokenize(text: str) -> list[str]:
    """Index and query tokens: lower-cased ``\\w+`` runs without `LUCENE_STOPWORDS`."""
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in LUCENE_STOPWORDS]


def index_text(product: dict) -> str:
    """The text WebShop indexes for a product (convert_product_file_format.py): title, description,
    first bullet point and ``"name: v1, v2, and name2: ..."`` options, lower-cased."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product["options"].items())
    bullets = product["BulletPoints"]
    return " ".join([product["Title"], product["Description"], bullets[0] if bullets else "", option_text]).lower()


# --------------------------------------------------------------------------- release records
def parse_pricing(pricing: Any, where: str) -> tuple[list[float], str]:
    """Release pricing string -> (bounds, price tag), as engine.py::load_products ("" means $100)."""
    if pricing is None or pricing == "":
        return [100.0], "$100.0"
    if not isinstance(pricing, str):
        raise ValueError(f"{where}: field 'pricing' must be a string such as '$12.99', got {type_name(pricing)} {pricing!r:.40}")
    try:
        bounds = [float(Decimal(re.sub(r"[^\d.]", "", p))) for p in pricing.split("$")[1:] if re.sub(r"[^\d.]", "", p)]
    except InvalidOperation:
        raise ValueError(f"{where}: field 'pricing' is not a price or price range: {pricing!r:.40}") from None
    if not bounds:
        return [100.0], "$100.0"
    if len(bounds) == 1:
        return bounds, f"${bounds[0]}"
    return bounds[:2], f"${bounds[0]} to ${bounds[1]}"


def _str_list(record: dict, key: str, where: str) -> list[str]:
    values = check_field(record, key, (list, type(None)), where, required=False) or []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ValueError(f"{where}: field {key!r} item {i} must be a string, got {type_name(v)}")
    return values


def normalise_product(item: Any, where: str, attributes: dict, reviews: dict, human: dict) -> dict | None:
    """One release product -> the normalised record (engine.py::load_products), or None to skip it.

    Products whose ASIN is "nan" or longer than 10 characters are skipped, as in the original.

    Raises:
        ValueError: a missing ``asin`` or ``name``, or a field of the wrong type (``where`` names it).
    """
    asin = check_field(item, "asin", (str,), where)
    if asin == "nan" or len(asin) > 10:
        return None
    where = f"{where} (asin {asin})"
    name = check_field(item, "name", (str,), where)
    small = check_field(item, "small_description", (list, str, type(None)), where, required=False) or []
    bullets = [small] if isinstance(small, str) else _str_list(item, "small_description", where)
    options = {}
    for option_name, contents in (check_field(item, "customization_options", (dict, type(None)), where,
                                              required=False) or {}).items():
        if contents is None:
            continue
        if not isinstance(contents, list):
            raise ValueError(f"{where}: customization_options[{option_name!r}] must be a list, got {type_name(contents)}")
        values = []
        for i, c in enumerate(contents):
            value = check_field(c, "value", (str,), f"{where}: customization_options[{option_name!r}][{i}]")
            values.append(value.strip().replace("/", " | ").lower())
        options[option_name.lower()] = values
    pricing, price_tag = parse_pricing(item.get("pricing"), where)
    attrs = attributes.get(asin, {})
    record = {
        "asin": asin, "name": name, "Title": name,
        "Description": check_field(item, "full_description", (str, type(None)), where, required=False) or "",
        "BulletPoints": bullets, "pricing": pricing, "Price": price_tag, "options": options,
        "Attributes": attrs.get("attributes") or ["DUMMY_ATTR"],
        "Reviews": reviews.get(asin, ([], "N.A."))[0], "Rating": reviews.get(asin, ([], "N.A."))[1],
        "query": (check_field(item, "query", (str, type(None)), where, required=False) or "").lower().strip(),
        "category": check_field(item, "category", (str, type(None)), where, required=False) or "",
        "product_category": check_field(item, "product_category", (str, type(None)), where, required=False) or "",
        "instruction_text": attrs.get("instruction"),
        "instruction_attributes": attrs.get("instruction_attributes"),
    }
    if asin in human:
        record["instructions"] = human[asin]
    return record


def read_attributes(path: pathlib.Path) -> dict[str, dict]:
    """``items_ins_v2*.json`` -> {asin: {attributes, instruction, instruction_attributes}} (checked)."""
    out = {}
    for asin, entry in iter_json_dict(path, "attributes"):
        where = f"{path}: entry {asin!r}"
        out[asin] = {"attributes": _str_list(entry, "attributes", where),
                     "instruction": check_field(entry, "instruction", (str, type(None)), where, required=False),
                     "instruction_attributes": _str_list(entry, "instruction_attributes", where) or None}
    return out


def read_human_goals(path: pathlib.Path) -> dict[str, list[dict]]:
    """``items_human_ins.json`` -> {asin: [{instruction, instruction_attributes, instruction_options}]}."""
    out = {}
    for asin, entries in iter_json_dict(path, "human goals"):
        if not isinstance(entries, list):
            raise ValueError(f"{path}: entry {asin!r} must be a list of instructions, got {type_name(entries)}")
        goals = []
        for i, entry in enumerate(entries):
            where = f"{path}: entry {asin!r} #{i}"
            goals.append({"instruction": check_field(entry, "instruction", (str,), where),
                          "instruction_attributes": _str_list(entry, "instruction_attributes", where),
                          "instruction_options": _str_list(entry, "instruction_options", where)})
        out[asin] = goals
    return out


def read_reviews(path: pathlib.Path) -> dict[str, tuple[list[dict], Any]]:
    """``reviews.json`` -> {asin: (reviews [{title, score, body}], average rating)}."""
    out = {}
    for i, entry in enumerate(iter_json_list(path, "reviews")):
        where = f"{path}: record #{i}"
        asin = check_field(entry, "asin", (str,), where)
        reviews = []
        for j, r in enumerate(check_field(entry, "reviews", (list, type(None)), where, required=False) or []):
            if not isinstance(r, dict):
                raise ValueError(f"{where} (asin {asin}): review {j} must be an object, got {type_name(r)}")
            reviews.append({"title": r.get("title", ""), "score": r.get("score", r.get("stars")),
                            "body": r.get("body", r.get("review", ""))})
        out[asin] = (reviews, entry.get("average_rating", "N.A."))
    return out


# --------------------------------------------------------------------------- sources and key
def find_sources(data_path: pathlib.Path, products_file=None, attributes_file=None, human_goals_file=None,
                 reviews_file=None) -> dict[str, pathlib.Path | None]:
    """The release files of ``data_path`` (explicit names, else the 1000-item files first)."""
    if not data_path.is_dir():
        raise WebShopDataError(f"WebShop data_path {str(data_path)!r} does not exist. {DOWNLOAD_HELP}")

    def pick(explicit, names, what, required):
        if explicit:
            path = data_path / explicit
            if not path.exists():
                raise WebShopDataError(f"WebShop {what} file {str(path)!r} not found. {DOWNLOAD_HELP}")
            return path
        for name in names:
            if (data_path / name).exists():
                return data_path / name
        if required:
            raise WebShopDataError(f"WebShop {what} file not found in {str(data_path)!r} "
                                   f"(looked for {', '.join(names)}). {DOWNLOAD_HELP}")
        return None

    return {"products": pick(products_file, PRODUCT_FILES, "products", True),
            "attributes": pick(attributes_file, ATTRIBUTE_FILES, "attributes", True),
            "human_goals": pick(human_goals_file, HUMAN_GOAL_FILES, "human goals", False),
            "reviews": pick(reviews_file, REVIEW_FILES, "reviews", False)}


def cache_key(sources: dict, settings: dict) -> str:
    """Hash of the files' paths, sizes and modification times, and the settings."""
    files = {}
    for role, path in sorted(sources.items()):
        if path is not None:
            st = path.stat()
            files[role] = [str(path.resolve()), st.st_size, st.st_mtime_ns]
    blob = json.dumps({"files": files, "settings": settings, "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- build
def _import_bm25s():
    try:
        import bm25s
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("WebShop search needs `pip install bm25s` (in the empg[scaled] extra).") from exc
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


def build(sources: dict, settings: dict, out: pathlib.Path, *, progress: bool = False) -> None:
    """Read the release files once and write the catalogue files and the index into ``out``."""
    bm25s = _import_bm25s()
    t0 = time.perf_counter()
    attributes = read_attributes(sources["attributes"])
    human = read_human_goals(sources["human_goals"]) if sources["human_goals"] else {}
    reviews = read_reviews(sources["reviews"]) if sources["reviews"] else {}
    offsets = array.array("q", [0])
    asins, low, high, has_ins, human_rows = [], array.array("d"), array.array("d"), array.array("b"), []
    corpus, vocab = [], collections.defaultdict()
    vocab.default_factory = vocab.__len__  # a new token gets the next id
    seen = set()
    limit = settings["num_products"]
    products_path = sources["products"]
    with open(out / "products.jsonl", "wb") as blob:
        for i, item in enumerate(iter_json_list(products_path, "products")):
            if limit is not None and i >= limit:
                break
            record = normalise_product(item, f"{products_path}: product #{i}", attributes, reviews, human)
            if record is None or record["asin"] in seen:
                continue
            seen.add(record["asin"])
            row = len(asins)
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            blob.write(line)
            offsets.append(offsets[-1] + len(line))
            asins.append(record["asin"])
            low.append(record["pricing"][0])
            high.append(record["pricing"][1] if len(record["pricing"]) > 1 else float("nan"))
            has_ins.append(bool(record["instruction_text"] and record["instruction_attributes"]))
            if "instructions" in record:
                human_rows.append({k: record[k] for k in ("asin", "category", "query", "name", "product_category",
                                                          "instructions")})
            corpus.append(array.array("i", [vocab[t] for t in _TOKEN_RE.findall(index_text(record))
                                            if t not in LUCENE_STOPWORDS]))
            if progress and row % 100_000 == 0 and row:
                print(f"  webshop catalogue: {row} products read ({time.perf_counter() - t0:.0f} s)", flush=True)
    if not asins:
        raise ValueError(f"{products_path}: no products (the products file holds no usable product)")
    del attributes, reviews, seen
    np.save(out / "offsets.npy", np.frombuffer(offsets, dtype=np.int64))
    asin_arr = np.array(asins, dtype="U10")
    order = np.argsort(asin_arr, kind="stable")
    np.save(out / "row_asins.npy", asin_arr)
    np.save(out / "asins.npy", asin_arr[order])
    np.save(out / "asin_rows.npy", order.astype(np.int32))
    np.save(out / "price_low.npy", np.frombuffer(low, dtype=np.float64))
    np.save(out / "price_high.npy", np.frombuffer(high, dtype=np.float64))
    np.save(out / "has_instruction.npy", np.frombuffer(has_ins, dtype=np.int8).astype(bool))
    (out / "human_goals.json").write_text(json.dumps(human_rows, ensure_ascii=False))
    del asins, asin_arr, order
    t_read = time.perf_counter() - t0
    if progress:
        print(f"  webshop catalogue: {len(corpus)} products read in {t_read:.0f} s; building the BM25 index", flush=True)
    if not vocab:  # no product has an indexable word: keep the index well-formed (every search is empty)
        corpus[0] = array.array("i", [vocab["\x00"]])
    retriever = bm25s.BM25(k1=settings["k1"], b=settings["b"], method="lucene")
    retriever.index((corpus, dict(vocab)), show_progress=False)
    del corpus
    retriever.save(str(out / "index"), show_progress=False)
    meta = {"format": FORMAT_VERSION, "settings": settings, "num_products": len(offsets) - 1,
            "sources": {k: str(v) if v else None for k, v in sources.items()},
            "read_seconds": round(t_read, 2), "build_seconds": round(time.perf_counter() - t0, 2)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks a complete build


# --------------------------------------------------------------------------- the shared catalogue
class Catalogue:
    """A built catalogue, opened read-only (memory-mapped); share one per process (`get_catalogue`).

    Attributes:
        folder: the cache folder it was opened from; ``num_products``; ``meta`` (build information).
    """

    def __init__(self, folder: str | os.PathLike):
        bm25s = _import_bm25s()
        self.folder = pathlib.Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.num_products = int(self.meta["num_products"])
        self._offsets = np.load(self.folder / "offsets.npy", mmap_mode="r")
        self._asins = np.load(self.folder / "asins.npy", mmap_mode="r")
        self._asin_rows = np.load(self.folder / "asin_rows.npy", mmap_mode="r")
        self._row_asins = np.load(self.folder / "row_asins.npy", mmap_mode="r")
        self.price_low = np.load(self.folder / "price_low.npy")
        self.price_high = np.load(self.folder / "price_high.npy")
        self.has_instruction = np.load(self.folder / "has_instruction.npy", mmap_mode="r")
        with open(self.folder / "products.jsonl", "rb") as f:
            self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._bm25 = bm25s.BM25.load(str(self.folder / "index"), mmap=True, show_progress=False)
        self._vocab = self._bm25.vocab_dict
        index = self._bm25.scores
        self._data, self._indices, self._indptr = index["data"], index["indices"], index["indptr"]
        if self._offsets.shape[0] != self.num_products + 1 or int(index["num_docs"]) != self.num_products:
            raise ValueError(f"{self.folder}: the catalogue files disagree on the number of products")
        self._product = functools.lru_cache(maxsize=4096)(self._decode)
        self._goal_sets: dict = {}
        self._lock = threading.Lock()

    def __reduce__(self):
        """Pickle as the cache folder: the receiving process reopens (or reuses) it, no copy of the data."""
        return _open_folder, (str(self.folder),)

    # ---------------------------------------------------------------- products
    def _decode(self, row: int) -> dict:
        return json.loads(self._blob[int(self._offsets[row]):int(self._offsets[row + 1])])

    def product(self, row: int) -> dict:
        """The normalised product at ``row`` (decoded on demand; treat it as read-only)."""
        if not 0 <= row < self.num_products:
            raise IndexError(f"product row {row} out of range [0, {self.num_products})")
        return self._product(int(row))

    def row_of(self, asin: str) -> int:
        """Row of ``asin`` (upper case), or -1."""
        if not isinstance(asin, str) or len(asin) > 10:
            return -1
        i = int(np.searchsorted(self._asins, asin))
        return int(self._asin_rows[i]) if i < self.num_products and self._asins[i] == asin else -1

    def asin(self, row: int) -> str:
        """ASIN of the product at ``row``."""
        return str(self._row_asins[row])

    def iter_products(self) -> Iterator[dict]:
        """Every product in catalogue order (decodes all of them: slow for the full release)."""
        for row in range(self.num_products):
            yield self._decode(row)

    # ---------------------------------------------------------------- search
    def _columns(self, query: str) -> list[tuple[int, int]]:
        """``(start, end)`` of the index column of each query token in the vocabulary, in query order."""
        spans = []
        for token in tokenize(query):
            t = self._vocab.get(token)
            if t is not None:
                spans.append((int(self._indptr[t]), int(self._indptr[t + 1])))
        return spans

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every product for ``query`` (float32, one per row; 0 = no shared token).

        The sum over the query tokens, in query order (a repeated token counts each time).
        """
        scores = np.zeros(self.num_products, dtype=np.float32)
        for start, end in self._columns(query):
            scores[self._indices[start:end]] += self._data[start:end]  # rows are unique within a column
        return scores

    def search_rows(self, query: str, k: int) -> np.ndarray:
        """Rows of the (at most) ``k`` best products sharing a query token; best first, ties by row.

        Equals sorting every hit by ``(-score, row)`` and keeping ``k``, without sorting the hits: the
        ``k``-th best score among the products of the rarest tokens is a lower bound of the ``k``-th
        best overall, so only the products at or above it are sorted.
        """
        spans = self._columns(query)
        if not spans or k < 1:
            return np.zeros(0, dtype=np.int64)
        scores = np.zeros(self.num_products, dtype=np.float32)
        for start, end in spans:
            scores[self._indices[start:end]] += self._data[start:end]
        threshold = np.float32(0)
        lengths = [end - start for start, end in spans]
        if max(lengths) >= k:  # the rarest column with >= k products: its k-th best is a lower bound
            start, end = min((span for span, n in zip(spans, lengths) if n >= k), key=lambda sp: sp[1] - sp[0])
            sample = scores[self._indices[start:end]]  # distinct rows
            threshold = np.partition(sample, sample.size - k)[sample.size - k]
        hits = np.flatnonzero(scores >= threshold) if threshold > 0 else np.flatnonzero(scores > 0)
        order = np.lexsort((hits, -scores[hits]))
        return hits[order[:k]]

    def search(self, query: str, k: int) -> list[str]:
        """ASINs of the (at most) ``k`` best products for ``query``."""
        return [str(a) for a in self._row_asins[self.search_rows(query, k)]]

    # ---------------------------------------------------------------- prices and goals
    def goal_set(self, human_goals: bool, price_seed: int) -> tuple[np.ndarray, list[dict]]:
        """``(prices per row, goals)`` for these settings, computed once per catalogue (see `make_goals`)."""
        key = (bool(human_goals), int(price_seed))
        with self._lock:
            if key not in self._goal_sets:
                self._goal_sets[key] = make_goals(self, human_goals=human_goals, price_seed=price_seed)
            return self._goal_sets[key]


def product_prices(low: np.ndarray, high: np.ndarray, rng: random.Random) -> np.ndarray:
    """engine.py::generate_product_prices: a fixed price, else ``rng.uniform(low, high)`` in row order.

    ``random.uniform(a, b)`` is ``a + (b - a) * random()``; the same float64 arithmetic in numpy.
    """
    ranged = ~np.isnan(high)
    draws = np.array([rng.random() for _ in range(int(ranged.sum()))], dtype=np.float64)
    prices = low.copy()
    prices[ranged] = low[ranged] + (high[ranged] - low[ranged]) * draws
    return prices


def price_upper(price: float, rng: random.Random) -> tuple[float, str]:
    """goal.py: the larger of two distinct draws among the first four 10-dollar steps above ``price``."""
    from scaled.envs.webshop_reward import PRICE_RANGE

    steps = [p for p in PRICE_RANGE if p > price][:4]
    if len(steps) >= 2:
        _, upper = sorted(rng.sample(steps, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return 1000000.0, ""


def make_goals(catalogue: Catalogue, *, human_goals: bool, price_seed: int) -> tuple[np.ndarray, list[dict]]:
    """Prices and goals (goal.py::get_human_goals / get_synthetic_goals), shuffled with seed 233.

    One ``random.Random(price_seed)`` draws the product prices in row order, then the goals' price
    limits (one per human instruction; one per product for synthetic goals, shared by its option
    combinations). Goals without attributes are skipped, as in the original.
    """
    rng = random.Random(price_seed)
    prices = product_prices(catalogue.price_low, catalogue.price_high, rng)

    def goal(source, instruction, attrs, options, upper):
        return {"asin": source["asin"], "category": source.get("category", ""), "query": source["query"],
                "name": source["name"], "product_category": source.get("product_category", ""),
                "instruction_text": instruction, "attributes": list(attrs), "price_upper": upper,
                "goal_options": options}

    goals = []
    if human_goals:
        for source in json.loads((catalogue.folder / "human_goals.json").read_text()):
            price = prices[catalogue.row_of(source["asin"])]
            for ins in source["instructions"]:
                if not ins["instruction_attributes"]:
                    continue
                upper, text = price_upper(price, rng)
                goals.append(goal(source, ins["instruction"].strip(".") + text, ins["instruction_attributes"],
                                  ins["instruction_options"], upper))
    else:
        for row in np.flatnonzero(catalogue.has_instruction):
            product = catalogue.product(int(row))
            combos = [[]]
            for name in sorted(product["options"]):
                combos = [c + [(name, v)] for c in combos for v in product["options"][name]]
            upper, text = price_upper(prices[row], rng)
            for combo in combos:
                opts = ", and ".join(f"{k}: {v}" for k, v in combo)
                goals.append(goal(product, product["instruction_text"] + (" with " + opts if opts else "") + text,
                                  product["instruction_attributes"], dict(combo), upper))
    random.Random(233).shuffle(goals)  # SimServer: random.seed(233); random.shuffle(goals)
    return prices, goals


_CATALOGUES: dict[str, Catalogue] = {}
_REGISTRY_LOCK = threading.Lock()


def get_catalogue(data_path: str | os.PathLike | None, *, products_file: str | None = None,
                  attributes_file: str | None = None, human_goals_file: str | None = None,
                  reviews_file: str | None = None, num_products: int | None = None,
                  k1: float = DEFAULT_K1, b: float = DEFAULT_B, cache_dir: str | os.PathLike | None = None,
                  progress: bool | None = None) -> Catalogue:
    """The shared `Catalogue` of these release files and settings (built on first use, then cached).

    Args:
        data_path: folder with the release files; ``None`` = the small shipped catalogue.
        products_file, attributes_file, human_goals_file, reviews_file: file names inside ``data_path``.
        num_products: keep only the first n products of the products file.
        k1, b: BM25 parameters of the index.
        cache_dir: where built catalogues live (default `default_cache_dir`).
        progress: print build progress (default: when the products file is over 100 MB).

    Returns:
        The same object for the same files (size and mtime) and settings, in this process.
    """
    from scaled.envs.webshop import SHIPPED_DATA

    data_path = pathlib.Path(data_path).expanduser() if data_path is not None else SHIPPED_DATA
    sources = find_sources(data_path, products_file, attributes_file, human_goals_file, reviews_file)
    if num_products is not None and (not isinstance(num_products, int) or num_products < 1):
        raise ValueError(f"num_products: expected a positive int or None, got {num_products!r}")
    settings = {"num_products": num_products, "k1": float(k1), "b": float(b), "method": "lucene",
                "tokens": "lower \\w+ minus lucene stop words", "fields": "title description bullet0 options",
                "bm25s": _import_bm25s().__version__.split(".")[0]}
    key = cache_key(sources, settings)
    cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    with _REGISTRY_LOCK:
        if (cat := _CATALOGUES.get(f"{cache_dir.resolve()}/{key}")) is not None:
            return cat
        if progress is None:
            progress = sources["products"].stat().st_size > 100_000_000
        folder = _build_once(sources, settings, cache_dir, key, progress)
        try:
            cat = Catalogue(folder)
        except (OSError, ValueError, KeyError):  # a damaged cache: build it again
            shutil.rmtree(folder, ignore_errors=True)
            folder = _build_once(sources, settings, cache_dir, key, progress)
            cat = Catalogue(folder)
        _CATALOGUES[f"{cache_dir.resolve()}/{key}"] = cat
        return cat


def _build_once(sources: dict, settings: dict, cache_dir: pathlib.Path, key: str, progress: bool) -> pathlib.Path:
    """Build ``cache_dir/key`` unless it is complete; a file lock keeps concurrent processes to one build."""
    folder = cache_dir / key
    if (folder / "meta.json").exists():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "meta.json").exists():  # another process built it while we waited
            return folder
        if progress:
            print(f"Building the WebShop catalogue and index for {sources['products']} into {folder} "
                  "(once; later runs load it in seconds)", flush=True)
        partial = cache_dir / f"{key}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            build(sources, settings, partial, progress=progress)
            shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder left by a killed build
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return folder


def _open_folder(folder: str) -> Catalogue:
    """The open catalogue of ``folder`` in this process, else a new one (used by unpickling)."""
    with _REGISTRY_LOCK:
        for cat in _CATALOGUES.values():
            if str(cat.folder) == folder:
                return cat
        cat = Catalogue(folder)
        _CATALOGUES[f"{pathlib.Path(folder).parent.resolve()}/{pathlib.Path(folder).name}"] = cat
        return cat


def clear_catalogues() -> None:
    """Forget the catalogues opened in this process (the cache folders stay on disk)."""
    with _REGISTRY_LOCK:
        _CATALOGUES.clear()


def open_catalogues() -> Sequence[Catalogue]:
    """The catalogues this process holds (one per data folder and settings)."""
    return list(_CATALOGUES.values())
