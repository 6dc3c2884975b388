"""The shared WebShop catalogue and index: one object per process, a disk cache keyed by the files and
settings, search against plain-loop references, and clear errors for damaged release files.

Catalogues are generated in the release format (scaled.envs.webshop_synth) into temporary folders,
with a temporary cache folder per test.
"""

import json
import math
import multiprocessing
import os
import random
import re

import numpy as np
import pytest

from scaled.envs import make_env
from scaled.envs import webshop_data as wd
from scaled.envs.webshop import RankBM25Search, WebShopEnv
from scaled.envs.webshop_jsonio import iter_json_dict, iter_json_list
from scaled.envs.webshop_synth import write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("release") / "data", 300, seed=3)


@pytest.fixture()
def cache(tmp_path):
    yield tmp_path / "cache"
    wd.clear_catalogues()


# --------------------------------------------------------------------------- sharing and the disk cache
def test_two_envs_share_one_catalogue(release, cache):
    a = WebShopEnv(release, cache_dir=cache)
    b = make_env("webshop", data_path=release, cache_dir=cache, goal_range=(0, 5), seed=1)
    assert a.catalogue is b.catalogue and a.search_engine is b.catalogue
    # the goals (and their prices) are computed once and shared too; b's slice is a prefix of a's
    assert b.goals == a.goals[:5] and b.goals[0] is a.goals[0]
    assert a.prices == b.prices
    # other settings -> another catalogue
    c = WebShopEnv(release, cache_dir=cache, num_products=100)
    assert c.catalogue is not a.catalogue and c.catalogue.num_products == 100
    # episodes are independent: stepping one env does not move the other
    a.reset(seed=0)
    b.reset(seed=0)
    a.step("search[shampoo]")
    assert a._page == "results" and b._page == "search"


def test_a_new_process_loads_the_cache_without_rebuilding(release, cache, monkeypatch):
    first = wd.get_catalogue(release, cache_dir=cache)
    folders = sorted(p.name for p in cache.iterdir())
    wd.clear_catalogues()  # as if in a new process

    def no_build(*args, **kwargs):
        raise AssertionError("the catalogue was rebuilt")

    monkeypatch.setattr(wd, "build", no_build)
    second = wd.get_catalogue(release, cache_dir=cache)
    assert second is not first and second.folder == first.folder
    assert sorted(p.name for p in cache.iterdir()) == folders
    assert second.search("shampoo", 10) == first.search("shampoo", 10)


def test_a_changed_file_rebuilds_the_index(tmp_path, cache):
    data = write_release(tmp_path / "data", 50, seed=1)
    env = WebShopEnv(data, cache_dir=cache)
    assert "B999999999" not in env.product_by_asin
    items = json.loads((data / "items_shuffle.json").read_text())
    new = dict(items[0], asin="B999999999", name="Zyzzyvaquux Teapot Special")
    (data / "items_shuffle.json").write_text(json.dumps(items + [new]))
    env2 = WebShopEnv(data, cache_dir=cache)
    assert env2.catalogue is not env.catalogue and env2.catalogue.folder != env.catalogue.folder
    assert env2.catalogue.num_products == 51 and env2.catalogue.search("zyzzyvaquux teapot", 5)[0] == "B999999999"
    assert env.catalogue.num_products == 50  # the old object is untouched
    # a changed goals file (same products) also gives a new catalogue
    (data / "items_human_ins.json").write_text("{}")
    with pytest.raises(ValueError, match="no goals"):
        WebShopEnv(data, cache_dir=cache)


def test_a_damaged_cache_is_rebuilt(release, cache):
    cat = wd.get_catalogue(release, cache_dir=cache)
    expected = cat.search("waterproof jacket", 20)
    (cat.folder / "offsets.npy").write_bytes(b"junk")
    wd.clear_catalogues()
    again = wd.get_catalogue(release, cache_dir=cache)
    assert again.search("waterproof jacket", 20) == expected


def _build_in_child(args):
    release, cache = args
    return str(wd.get_catalogue(release, cache_dir=cache).folder)


def test_concurrent_processes_build_once(release, cache):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        folders = pool.map(_build_in_child, [(str(release), str(cache))] * 2)
    assert folders[0] == folders[1]
    names = sorted(p.name for p in cache.iterdir())
    assert [n for n in names if "partial" in n] == [] and sum(1 for n in names if not n.endswith(".lock")) == 1


def test_an_env_pickles_without_copying_the_catalogue(release, cache):
    import pickle

    env = WebShopEnv(release, cache_dir=cache)
    env.reset(seed=3)
    blob = pickle.dumps(env)
    assert len(blob) < 200_000  # the goals travel, the products and the index do not
    clone = pickle.loads(blob)
    assert clone.catalogue is env.catalogue  # same process: the open catalogue is reused
    assert clone.goal == env.goal and clone.step("search[shampoo]")[4]["page"] == "results"


def test_data_dir_is_a_deprecated_alias(release, cache):
    with pytest.warns(DeprecationWarning, match="data_dir is deprecated, use data_path"):
        env = make_env("webshop", data_dir=release, cache_dir=cache)
    assert env.catalogue is WebShopEnv(data_path=release, cache_dir=cache).catalogue
    with pytest.raises(ValueError, match="data_path.*data_dir"):
        WebShopEnv(release, data_dir=release, cache_dir=cache)


# --------------------------------------------------------------------------- search and prices vs references
def _plain_lucene_bm25(docs, query_tokens, k1, b):
    """Lucene's BM25 with plain loops over token lists (the reference for Catalogue.scores)."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = {}
    for d in docs:
        for t in set(d):
            df[t] = df.get(t, 0) + 1
    scores = []
    for d in docs:
        s = 0.0
        for q in query_tokens:
            tf = d.count(q)
            if tf:
                idf = math.log(1 + (n - df[q] + 0.5) / (df[q] + 0.5))
                s += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
        scores.append(s)
    return scores


def test_scores_match_a_plain_loop_reference(release, cache):
    cat = wd.get_catalogue(release, cache_dir=cache, k1=1.2, b=0.6)
    docs = [wd.tokenize(wd.index_text(p)) for p in cat.iter_products()]
    rng = random.Random(0)
    queries = ["waterproof shampoo for men", "the and of", "", "nosuchword"] + [
        cat.product(rng.randrange(cat.num_products))["name"] for _ in range(5)]
    for query in queries:
        expected = np.array(_plain_lucene_bm25(docs, wd.tokenize(query), 1.2, 0.6))
        got = cat.scores(query)
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6)  # float32 index
        # hits: every product sharing a (non-stop-word) token, best first, ties by row
        order = sorted((i for i in range(len(docs)) if expected[i] > 0), key=lambda i: (-got[i], i))
        for k in (1, 7, 50, 1000):
            assert cat.search_rows(query, k).tolist() == order[:k]


def test_ties_are_broken_by_catalogue_order(tmp_path, cache):
    items = [{"asin": f"B00000000{i}", "name": "Plain Mug", "pricing": "$5.00"} for i in range(8)]
    (tmp_path / "items_shuffle.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2.json").write_text("{}")
    cat = wd.get_catalogue(tmp_path, cache_dir=cache)
    assert cat.search_rows("mug", 5).tolist() == [0, 1, 2, 3, 4]
    assert cat.search("plain mug", 3) == ["B000000000", "B000000001", "B000000002"]


def test_exact_names_find_their_product_like_the_rank_bm25_path(release, cache):
    env = WebShopEnv(release, cache_dir=cache)
    reference = RankBM25Search(env.products)
    for row in range(0, env.catalogue.num_products, 7):
        product = env.catalogue.product(row)
        assert env.catalogue.search(product["name"], 10)[0] == product["asin"]
        assert reference.search(product["name"], 10)[0] == product["asin"]


def test_rank_bm25_engine_is_kept_as_the_reference(release, cache):
    env = WebShopEnv(release, cache_dir=cache, search_engine="rank_bm25")
    assert isinstance(env.search_engine, RankBM25Search)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("search[waterproof]")
    assert info["page"] == "results" and not info["invalid_action"]


def test_prices_match_the_per_product_loop(release, cache):
    cat = wd.get_catalogue(release, cache_dir=cache)
    rng_a, rng_b = random.Random(5), random.Random(5)
    fast = wd.product_prices(cat.price_low, cat.price_high, rng_a)
    loop = [p["pricing"][0] if len(p["pricing"]) == 1 else rng_b.uniform(*p["pricing"][:2]) for p in cat.iter_products()]
    assert fast.tolist() == loop  # bit-identical
    assert rng_a.random() == rng_b.random()  # the same stream position for the goals that follow


# --------------------------------------------------------------------------- the streaming reader
@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_streaming_reader_agrees_with_json_loads(chunk, tmp_path):
    rng = random.Random(chunk)
    items = [{"asin": f"B{i}", "n": rng.random() * 10 ** rng.randrange(-3, 8), "k": rng.randrange(10 ** 9),
              "s": "ä€ \"quoted\" \\ " * rng.randrange(3), "l": [True, None, -1.5e-7]} for i in range(40)]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(items, indent=rng.choice([None, 1])), encoding="utf-8")
    assert list(iter_json_list(path, "test", chunk=chunk)) == items
    mapping = {it["asin"]: it for it in items}
    path.write_text(json.dumps(mapping), encoding="utf-8")
    assert dict(iter_json_dict(path, "test", chunk=chunk)) == mapping
    path.write_text(" [ ] ")
    assert list(iter_json_list(path, "test", chunk=chunk)) == []


# --------------------------------------------------------------------------- damaged release files
def _write(folder, products, attributes=None, human=None, reviews=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items_shuffle.json").write_text(products if isinstance(products, str) else json.dumps(products))
    (folder / "items_ins_v2.json").write_text(attributes if isinstance(attributes, str) else json.dumps(attributes or {}))
    if human is not None:
        (folder / "items_human_ins.json").write_text(human if isinstance(human, str) else json.dumps(human))
    if reviews is not None:
        (folder / "reviews.json").write_text(reviews if isinstance(reviews, str) else json.dumps(reviews))
    return folder


GOOD = {"asin": "B000000001", "name": "Oat Bar", "pricing": "$1.00", "small_description": ["oats"],
        "customization_options": {"Flavor": [{"value": "Honey", "image": None}]}}


@pytest.mark.parametrize("cut", [1, 10, 40, 90, -1])
def test_truncated_products_file(tmp_path, cache, cut):
    text = json.dumps([GOOD, dict(GOOD, asin="B000000002")])
    _write(tmp_path, text[:cut] if cut > 0 else text[:-1])
    with pytest.raises(ValueError, match=r"items_shuffle\.json.*(truncated|ends before)") as err:
        WebShopEnv(tmp_path, cache_dir=cache)
    assert "line 1" in str(err.value)
    assert not list(cache.glob("*partial*"))  # nothing half-built left behind


@pytest.mark.parametrize("products, message", [
    ("", r"items_shuffle\.json: the products file is empty"),
    ('{"asin": 1}', r"items_shuffle\.json: expected a JSON list"),
    ("[1, 2]", r"items_shuffle\.json: product #0: expected an object, got an integer"),
    ('[{"asin": "B1", "name": "x"} {"asin": "B2"}]', r"items_shuffle\.json: malformed JSON: expected one of \[',', '\]'\]"),
    ('[{"asin": "B1", "name": "x"}]]', r"items_shuffle\.json: extra data"),
    ([{"name": "no asin"}], r"items_shuffle\.json: product #0: no 'asin' field"),
    ([GOOD, {"asin": 7, "name": "x"}], r"product #1: field 'asin' must be a string, got an integer"),
    ([{"asin": "B1"}], r"product #0 \(asin B1\): no 'name' field"),
    ([dict(GOOD, name=None)], r"field 'name' must be a string, got null"),
    ([dict(GOOD, pricing=[1.0])], r"field 'pricing' must be a string"),
    ([dict(GOOD, pricing="$1.2.3")], r"field 'pricing' is not a price"),
    ([dict(GOOD, small_description=[1])], r"field 'small_description' item 0 must be a string"),
    ([dict(GOOD, customization_options=[])], r"field 'customization_options' must be an object or null"),
    ([dict(GOOD, customization_options={"Size": [{"image": None}]})], r"customization_options\['Size'\]\[0\]: no 'value' field"),
    ([], r"items_shuffle\.json: no products"),
])
def test_malformed_products_name_the_file_and_field(tmp_path, cache, products, message):
    _write(tmp_path, products)
    with pytest.raises(ValueError, match=message):
        WebShopEnv(tmp_path, cache_dir=cache)


def test_products_file_that_is_not_utf8(tmp_path, cache):
    _write(tmp_path, [GOOD])
    (tmp_path / "items_shuffle.json").write_bytes(b'[{"asin": "B1", "name": "\xff\xfe"}]')
    with pytest.raises(ValueError, match=r"items_shuffle\.json: the products file is not UTF-8"):
        WebShopEnv(tmp_path, cache_dir=cache)


@pytest.mark.parametrize("human, message", [
    ({"B000000001": [{"instruction_attributes": ["oat"]}]}, r"items_human_ins\.json: entry 'B000000001' #0: no 'instruction' field"),
    ({"B000000001": [{"instruction": 3}]}, r"entry 'B000000001' #0: field 'instruction' must be a string, got an integer"),
    ({"B000000001": {"instruction": "x"}}, r"entry 'B000000001' must be a list of instructions, got an object"),
    ({"B000000001": [{"instruction": "x", "instruction_attributes": "oat"}]}, r"field 'instruction_attributes' must be a list"),
    ('{"B000000001": [{"instruction": "x"}', r"items_human_ins\.json.*(truncated|ends before)"),
    ("[]", r"items_human_ins\.json: expected a JSON object"),
])
def test_malformed_goals_name_the_file_and_field(tmp_path, cache, human, message):
    _write(tmp_path, [GOOD], human=human)
    with pytest.raises(ValueError, match=message):
        WebShopEnv(tmp_path, cache_dir=cache)


@pytest.mark.parametrize("attributes, reviews, message", [
    ('{"B000000001": {"attributes": ["a"]', None, r"items_ins_v2\.json.*(truncated|ends before)"),
    ({"B000000001": {"attributes": "oat"}}, None, r"items_ins_v2\.json: entry 'B000000001': field 'attributes' must be a list"),
    ({"B000000001": ["oat"]}, None, r"items_ins_v2\.json: entry 'B000000001': expected an object, got a list"),
    ({}, [{"reviews": []}], r"reviews\.json: record #0: no 'asin' field"),
    ({}, [{"asin": "B000000001", "reviews": ["great"]}], r"reviews\.json: record #0 \(asin B000000001\): review 0 must be an object"),
    ({}, '[{"asin": "B000000001", "rev', r"reviews\.json.*(truncated|ends before)"),
])
def test_malformed_attributes_and_reviews(tmp_path, cache, attributes, reviews, message):
    _write(tmp_path, [GOOD], attributes=attributes, reviews=reviews)
    with pytest.raises(ValueError, match=message):
        WebShopEnv(tmp_path, cache_dir=cache)


def test_empty_and_missing_folders(tmp_path, cache):
    with pytest.raises(ValueError, match=r"items_shuffle_1000\.json, items_shuffle\.json"):
        WebShopEnv(tmp_path, cache_dir=cache)  # an empty folder: also a FileNotFoundError (WebShopDataError)
    with pytest.raises(ValueError, match="does not exist"):
        WebShopEnv(tmp_path / "nowhere", cache_dir=cache)
    _write(tmp_path, [GOOD])
    with pytest.raises(ValueError, match="no goals"):  # no human goals file
        WebShopEnv(tmp_path, cache_dir=cache)


def test_error_messages_give_the_line_of_a_multiline_file(tmp_path, cache):
    text = json.dumps([GOOD, GOOD], indent=1)
    lines = text.splitlines()
    broken = "\n".join(lines[:12] + [lines[12].replace(":", "", 1)] + lines[13:])  # a key without ':' on line 13
    _write(tmp_path, broken)
    with pytest.raises(ValueError, match=r"items_shuffle\.json: malformed (or truncated )?JSON: Expecting .:. delimiter.*line 13,"):
        WebShopEnv(tmp_path, cache_dir=cache)


def test_products_without_indexable_words(tmp_path, cache):
    _write(tmp_path, [dict(GOOD, name="!!!", small_description=[], customization_options=None)],
           human={"B000000001": [{"instruction": "a bar", "instruction_attributes": ["oat"]}]})
    env = WebShopEnv(tmp_path, cache_dir=cache)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("search[oat bar]")
    assert info["page"] == "results" and "Total results: 0" in obs


def test_skipped_asins_as_in_the_original(tmp_path, cache):
    # "nan", too long, and duplicate ASINs are skipped silently (engine.py); the rest is kept
    items = [GOOD, dict(GOOD, asin="nan"), dict(GOOD, asin="B0123456789X"), dict(GOOD, name="dup")]
    _write(tmp_path, items, human={"B000000001": [{"instruction": "oat bar", "instruction_attributes": ["oat"]}]})
    env = WebShopEnv(tmp_path, cache_dir=cache)
    assert [p["asin"] for p in env.products] == ["B000000001"] and env.products[0]["name"] == "Oat Bar"
    assert re.fullmatch(r"i?oat bar, and price lower than \d+\.00 dollars", env.goals[0]["instruction_text"])
