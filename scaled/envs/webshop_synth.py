"""Generate a WebShop catalogue of any size in the data-release format (for benchmarks and tests).

`write_release(folder, n_products, seed=0)` writes ``items_shuffle.json`` (products),
``items_ins_v2.json`` (attributes and synthetic instructions), ``items_human_ins.json`` (human-style
goals for about 1% of the products, 2 each, capped at 6,000 products like the release's ~12k
instructions) and ``reviews.json`` (reviews for 5% of the products), with the release's fields and
types (see ``docs/webshop.md``). Text is drawn from a seeded Zipf-distributed vocabulary that
includes English stop words, so the index sees realistic term statistics; every product name
carries a unique model code (``ZB004213``), so an exact-name search has one right answer.

Files are written in file order from ``random.Random(seed)`` and ``numpy.random.default_rng(seed)``: the same arguments give
the same bytes. Never commit the output; it is ~1.4 KB per product (1.18M products: ~1.7 GB).
"""

from __future__ import annotations

import json
import os
import pathlib
import random

import numpy as np

GENERATOR_VERSION = 1

_STOP = ("the and for with a of to in is this it on that are as be by or your from at an you can will "
         "our not all its".split())
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["qu", "th", "sh", "ch", "st"]
_TYPES = ("shampoo conditioner serum lotion sneakers boots sandals jacket hoodie shirt dress jeans leggings "
          "headphones earbuds speaker charger cable lamp bulb chair desk pillow blanket towel mug bottle "
          "backpack wallet watch bracelet necklace ring tent knife pan skillet blender kettle vacuum drill "
          "brush comb razor toothbrush candle vase frame rug curtain mattress sofa shelf bars cereal coffee "
          "tea snack cookies chips sauce spice protein vitamins case cover stand mount keyboard mouse monitor").split()
_ADJ = ("premium lightweight waterproof wireless portable organic natural soft durable compact stainless "
        "adjustable ergonomic vintage classic modern slim large small heavy breathable rechargeable "
        "foldable non-slip anti-slip gluten-free sugar-free vegan eco-friendly handmade").split()
_AUDIENCE = "men women kids baby girls boys adults home office travel kitchen outdoor".split()
_COLORS = "black white red blue navy green grey pink beige brown gold silver purple".split()
_SIZES = "small medium large x-large xx-large 6 7 7.5 8 9 10 11".split()
_ATTRS = ("machine wash|long lasting|easy clean|high quality|non slip|gluten free|sugar free|dairy free|"
          "quick dry|water resistant|heavy duty|easy install|fast charging|noise cancelling|"
          "cruelty free|paraben free|sulfate free|travel size|bpa free|dishwasher safe").split("|")
_DEPARTMENTS = ("Beauty & Personal Care|Clothing, Shoes & Jewelry|Electronics|Home & Kitchen|"
                "Grocery & Gourmet Food|Sports & Outdoors|Tools & Home Improvement").split("|")


def _vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))))
    return _STOP + sorted(words - set(_STOP))


def _products(n: int, rng: random.Random, nprng: np.random.Generator):
    """Yield ``(product, attributes, audience)`` for ``n`` products."""
    vocab = np.array(_vocabulary(rng), dtype=object)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    cdf = np.cumsum(weights) / weights.sum()
    block = []
    for i in range(n):
        if not block:  # draw the text of the next 1000 products at once
            block = vocab[np.searchsorted(cdf, nprng.random((min(1000, n - i), 180)))].tolist()[::-1]
        words = block.pop()
        ptype = rng.choice(_TYPES)
        department = _DEPARTMENTS[_TYPES.index(ptype) % len(_DEPARTMENTS)]
        brand = vocab[40 + rng.randrange(3000)].capitalize()
        adjs = rng.sample(_ADJ, rng.randint(2, 4))
        code = f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}{i:06d}"
        audience = rng.choice(_AUDIENCE)
        name = f"{brand} {' '.join(adjs).title()} {ptype.title()} for {audience.title()}, {code}"
        n_desc = rng.randint(40, 120)
        desc = " ".join(words[:n_desc]).capitalize() + "."
        bullets, at = [], n_desc
        for _ in range(rng.randint(3, 6)):
            k = rng.randint(6, 10)
            bullets.append(" ".join(words[at:at + k]).capitalize())
            at += k
        options = None
        if rng.random() < 0.6:
            options = {"Color": [{"value": c, "image": None} for c in rng.sample(_COLORS, rng.randint(2, 5))]}
            if rng.random() < 0.5:
                options["Size"] = [{"value": v, "image": None} for v in rng.sample(_SIZES, rng.randint(2, 5))]
        low = rng.randrange(300, 20000) / 100
        pricing = f"${low:.2f}" if rng.random() < 0.7 else f"${low:.2f}${low * (1 + rng.random()):.2f}"
        if rng.random() < 0.02:
            pricing = ""
        yield {
            "asin": f"B{i:09d}", "name": name, "full_description": desc, "small_description": bullets,
            "pricing": pricing, "customization_options": options,
            "images": [f"https://example.invalid/img/{i}_{j}.jpg" for j in range(rng.randint(1, 3))],
            "category": department.split()[0].lower(), "query": f"{adjs[0]} {ptype}",
            "product_category": f"{department} › {ptype.title()}s › {adjs[0].title()} {ptype.title()}s",
        }, rng.sample(_ATTRS, rng.randint(2, 4)), audience


def write_release(folder: str | os.PathLike, n_products: int, *, seed: int = 0) -> pathlib.Path:
    """Write the four release files for ``n_products`` generated products into ``folder``.

    Returns:
        ``folder`` (created if needed).
    """
    if not isinstance(n_products, int) or n_products < 1:
        raise ValueError(f"n_products: expected a positive int, got {n_products!r}")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    n_human = min(max(n_products // 100, 1), 6000)
    human_every = max(n_products // n_human, 1)
    attrs, human, reviews = {}, {}, []
    with open(folder / "items_shuffle.json", "w", encoding="utf-8") as f:
        f.write("[")
        for i, (item, attributes, audience) in enumerate(_products(n_products, rng, nprng)):
            f.write(("," if i else "") + json.dumps(item, ensure_ascii=False))
            asin, query = item["asin"], item["query"]
            attrs[asin] = {"attributes": attributes, "instruction": f"i want {query} for {audience}",
                           "instruction_attributes": attributes[:2]}
            if i % human_every == 0 and len(human) < n_human:
                values = [v["value"] for vals in (item["customization_options"] or {}).values() for v in vals[:1]]
                human[asin] = [{"asin": asin, "instruction": f"i am looking for {query} that is {a}, {' '.join(values)}.",
                                "instruction_attributes": [a], "instruction_options": values}
                               for a in attributes[:2]]
            if i % 20 == 0:
                reviews.append({"asin": asin, "average_rating": round(1 + 4 * rng.random(), 1),
                                "reviews": [{"title": "good", "score": rng.randint(1, 5), "body": "works as described"}]})
        f.write("]")
    (folder / "items_ins_v2.json").write_text(json.dumps(attrs))
    (folder / "items_human_ins.json").write_text(json.dumps(human))
    (folder / "reviews.json").write_text(json.dumps(reviews))
    return folder
