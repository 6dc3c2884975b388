"""Write the small WebShop catalogue shipped with empg, in the real WebShop data-release formats.

Files written next to this script (same names and fields as the release that users download):

- ``items_shuffle.json``: list of products {asin, name, full_description, small_description (list),
  pricing ("$12.99", "$10.00$20.00" or "" for $100), customization_options ({name: [{value, image}]}
  or null), images, category, query, product_category ("A › B › C")};
- ``items_ins_v2.json``: {asin: {attributes, instruction, instruction_attributes}};
- ``items_human_ins.json``: {asin: [{asin, instruction, instruction_attributes, instruction_options}]};
- ``reviews.json``: list of {asin, reviews: [{title, score, body}], average_rating}.

The 30 products are hand-written: 6 shopping queries with 5 products each, so every goal has
look-alike distractors (same query and category, different attributes or options). Prices are
written as the release does; the environment fixes one price per product from them.

Run ``python scaled/data/webshop/make_small_catalogue.py`` to rewrite the files.
"""

from __future__ import annotations

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

QUERIES = {
    # query: (category, product_category)
    "men's t-shirts": ("fashion", "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts"),
    "women's running shoes": ("fashion", "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running"),
    "shampoo": ("beauty", "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"),
    "protein bars": ("grocery", "Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars"),
    "bluetooth headphones": ("electronics", "Electronics › Headphones, Earbuds & Accessories › Headphones › Over-Ear Headphones"),
    "led desk lamp": ("garden", "Tools & Home Improvement › Lighting & Ceiling Fans › Lamps & Shades › Desk Lamps"),
}

SHIRT_SIZES = ["small", "medium", "large", "x-large"]
SHOE_SIZES = ["6", "7", "7.5", "8", "9"]

# (asin, query, name, bullets, description, pricing, options, attributes, human goals)
# human goals: (instruction, instruction_attributes, instruction_options)
PRODUCTS = [
    ("B09TSHRT01", "men's t-shirts", "Men's Cotton Crew Neck T-Shirt, Short Sleeve Classic Tee",
     ["100% cotton", "Machine wash cold", "Classic fit with crew neck"],
     "A soft everyday crew neck t-shirt made of breathable cotton. Machine wash.",
     "$12.99$18.99", {"size": SHIRT_SIZES, "color": ["black", "white", "navy blue", "heather grey"]},
     ["machine wash", "cotton", "short sleeve", "crew neck"],
     [("i need a men's short sleeve crew neck t-shirt in navy blue, size large, that i can machine wash",
       ["short sleeve", "machine wash"], ["navy blue", "large"])]),
    ("B09TSHRT02", "men's t-shirts", "Men's Moisture Wicking Performance Athletic T-Shirt, Quick Dry Gym Tee",
     ["Polyester blend", "Moisture wicking", "Quick dry fabric for workouts"],
     "Athletic t-shirt with moisture wicking quick dry fabric for the gym and running.",
     "$15.99", {"size": SHIRT_SIZES, "color": ["black", "royal blue", "red"]},
     ["moisture wicking", "quick dry", "polyester", "short sleeve"],
     [("i want a quick dry moisture wicking athletic t-shirt for men, black, medium",
       ["quick dry", "moisture wicking"], ["black", "medium"])]),
    ("B09TSHRT03", "men's t-shirts", "Men's Slim Fit V-Neck T-Shirt, Stretch Jersey Tee",
     ["Cotton spandex jersey", "Slim fit", "V-neck"],
     "A slim fit v-neck tee in stretch jersey.",
     "$9.99$14.99", {"size": SHIRT_SIZES, "color": ["white", "olive green", "charcoal"]},
     ["slim fit", "v-neck", "stretch"], []),
    ("B09TSHRT04", "men's t-shirts", "Men's Long Sleeve Henley Shirt, Waffle Knit Casual Top",
     ["Waffle knit cotton", "Button placket", "Long sleeve"],
     "A casual long sleeve henley with a three button placket. Machine wash.",
     "$19.99$24.99", {"size": SHIRT_SIZES, "color": ["oatmeal", "navy blue", "burgundy"]},
     ["long sleeve", "machine wash", "cotton"], []),
    ("B09TSHRT05", "men's t-shirts", "Men's Graphic Print T-Shirt, Vintage Mountain Tee",
     ["Cotton blend", "Screen printed graphic"],
     "Vintage graphic t-shirt with a printed mountain scene.",
     "$11.99", {"size": SHIRT_SIZES, "color": ["black", "sand"]},
     ["short sleeve", "graphic print"], []),

    ("B08RSHOE01", "women's running shoes", "Women's Lightweight Running Shoes, Breathable Mesh Road Sneakers",
     ["Breathable knit mesh upper", "Cushioned EVA midsole", "Non slip rubber outsole"],
     "Lightweight road running shoes with a breathable mesh upper and a non slip rubber sole.",
     "$39.99$54.99", {"size": SHOE_SIZES, "color": ["black white", "pink", "grey mint"]},
     ["lightweight", "non slip", "rubber sole", "breathable"],
     [("i am looking for lightweight non slip running shoes for women with a rubber sole, pink, size 7.5",
       ["lightweight", "non slip", "rubber sole"], ["pink", "7.5"])]),
    ("B08RSHOE02", "women's running shoes", "Women's Trail Running Shoes, Waterproof Hiking Sneakers",
     ["Waterproof membrane", "Rugged lug outsole", "Rubber toe cap"],
     "Waterproof trail running shoes with a rugged rubber sole for hiking.",
     "$59.99$74.99", {"size": SHOE_SIZES, "color": ["grey", "olive"]},
     ["waterproof", "rubber sole", "trail"],
     [("i need waterproof trail running shoes for women, grey, size 8", ["waterproof"], ["grey", "8"])]),
    ("B08RSHOE03", "women's running shoes", "Women's Slip On Walking Shoes, Memory Foam Sock Sneakers",
     ["Slip on knit", "Memory foam insole"],
     "Easy slip on walking sneakers with a memory foam insole.",
     "$29.99", {"size": SHOE_SIZES, "color": ["black", "white", "blue"]},
     ["slip on", "memory foam", "lightweight"], []),
    ("B08RSHOE04", "women's running shoes", "Women's Stability Running Shoes, Arch Support Cushioned Trainers",
     ["Arch support", "Wide toe box", "Rubber sole"],
     "Stability trainers with arch support for long runs.",
     "$69.99$89.99", {"size": SHOE_SIZES + ["10"], "color": ["white", "navy"]},
     ["arch support", "rubber sole", "wide toe box"], []),
    ("B08RSHOE05", "women's running shoes", "Women's Racing Flats, Ultra Light Track Spikes",
     ["Ultra light", "Removable spikes"],
     "Racing flats for the track with removable spikes.",
     "", {"size": SHOE_SIZES}, ["ultra light"], []),

    ("B07SHAMP01", "shampoo", "Sulfate Free Argan Oil Shampoo for Dry Damaged Hair",
     ["Sulfate free and paraben free", "With argan oil", "For dry and damaged hair"],
     "A gentle sulfate free shampoo with moroccan argan oil for dry damaged hair.",
     "$14.99$22.99", {"size": ["8 fl oz (pack of 1)", "16 fl oz (pack of 1)", "16 fl oz (pack of 2)"]},
     ["sulfate free", "paraben free", "argan oil", "dry hair"],
     [("i'm looking for a sulfate free shampoo with argan oil for dry hair, 16 fl oz (pack of 1)",
       ["sulfate free", "argan oil", "dry hair"], ["16 fl oz (pack of 1)"])]),
    ("B07SHAMP02", "shampoo", "Tea Tree Anti Dandruff Shampoo, Itchy Scalp Treatment",
     ["Tea tree oil", "Anti dandruff", "Soothes itchy scalp"],
     "Tea tree shampoo that treats dandruff and soothes an itchy dry scalp.",
     "$11.49", {"size": ["10 fl oz", "20 fl oz"]},
     ["tea tree", "dandruff", "itchy scalp"],
     [("i want a tea tree shampoo for dandruff, 20 fl oz", ["tea tree", "dandruff"], ["20 fl oz"])]),
    ("B07SHAMP03", "shampoo", "Volumizing Biotin Shampoo for Thinning Hair",
     ["Biotin and collagen", "Adds volume", "Sulfate free"],
     "Biotin shampoo that adds volume to fine thinning hair. Sulfate free.",
     "$16.99", {"size": ["8 fl oz", "16 fl oz"]}, ["sulfate free", "biotin", "hair growth"], []),
    ("B07SHAMP04", "shampoo", "Clarifying Shampoo for Oily Hair, Deep Cleansing",
     ["Removes buildup", "For oily hair"], "Deep cleansing clarifying shampoo for oily hair.",
     "$8.99$12.99", {"size": ["12 fl oz", "24 fl oz"]}, ["oily hair", "clarifying"], []),
    ("B07SHAMP05", "shampoo", "Kids 2 in 1 Shampoo and Conditioner, Tear Free Berry",
     ["Tear free", "2 in 1 shampoo and conditioner"], "Tear free berry scented 2 in 1 for kids.",
     "$7.49", None, ["tear free", "kids"], []),

    ("B06PROBR01", "protein bars", "Gluten Free Protein Bars, 20g Protein, Low Sugar Snack Bars",
     ["20g protein per bar", "Gluten free", "Low sugar, 1g"],
     "High protein snack bars, gluten free and low sugar.",
     "$19.99$34.99", {"flavor name": ["chocolate peanut butter", "cookies and cream", "salted caramel"],
                      "size": ["12 count (pack of 1)", "24 count (pack of 1)"]},
     ["gluten free", "low sugar", "high protein"],
     [("i want gluten free low sugar protein bars, chocolate peanut butter, 12 count (pack of 1)",
       ["gluten free", "low sugar"], ["chocolate peanut butter", "12 count (pack of 1)"])]),
    ("B06PROBR02", "protein bars", "Keto Nut Bars, Low Carb Plant Based Snack Bars",
     ["Low carb, keto friendly", "Plant based", "Non GMO"],
     "Keto friendly low carb nut bars made from plant based ingredients.",
     "$24.99", {"flavor name": ["almond coconut", "dark chocolate sea salt"], "size": ["12 count", "18 count"]},
     ["keto friendly", "low carb", "plant based", "non gmo"],
     [("i need keto friendly low carb nut bars, dark chocolate sea salt, 12 count",
       ["keto friendly", "low carb"], ["dark chocolate sea salt", "12 count"])]),
    ("B06PROBR03", "protein bars", "Whey Protein Crisp Bars, 15g Protein, Peanut Butter",
     ["15g whey protein", "Crispy texture"], "Crispy whey protein bars with peanut butter.",
     "$17.99", {"size": ["12 count", "24 count"]}, ["high protein", "whey"], []),
    ("B06PROBR04", "protein bars", "Vegan Protein Bars, Gluten Free Oat Bars",
     ["Vegan", "Gluten free oats", "10g plant protein"], "Vegan oat bars, gluten free.",
     "$21.49$27.49", {"flavor name": ["blueberry", "chocolate chip"], "size": ["12 count"]},
     ["vegan", "gluten free", "plant based"], []),
    ("B06PROBR05", "protein bars", "Energy Granola Bars, Honey Oat, Family Pack",
     ["Whole grain oats", "Sweetened with honey"], "Honey oat granola bars for snacking.",
     "$6.99", {"size": ["36 count"]}, ["whole grain"], []),

    ("B05HEADP01", "bluetooth headphones", "Wireless Bluetooth Over Ear Headphones with Active Noise Cancelling, 40H Playtime",
     ["Active noise cancelling", "40 hour battery life", "Bluetooth 5.3 wireless"],
     "Over ear wireless headphones with active noise cancelling and a 40 hour battery.",
     "$59.99$79.99", {"color": ["black", "silver", "midnight blue"]},
     ["noise cancelling", "wireless bluetooth", "long battery life", "over ear"],
     [("i am looking for wireless bluetooth over ear headphones with noise cancelling, in silver",
       ["noise cancelling", "wireless bluetooth"], ["silver"])]),
    ("B05HEADP02", "bluetooth headphones", "Kids Bluetooth Headphones, Volume Limited Foldable On Ear",
     ["85dB volume limit", "Foldable", "Wireless bluetooth"],
     "Foldable on ear wireless bluetooth headphones for kids with a volume limit.",
     "$25.99", {"color": ["pink", "blue", "purple"]}, ["wireless bluetooth", "foldable", "kids"],
     [("i need foldable wireless bluetooth headphones for kids, purple", ["foldable", "wireless bluetooth"],
       ["purple"])]),
    ("B05HEADP03", "bluetooth headphones", "Wired Studio Monitor Headphones, Closed Back Over Ear",
     ["Wired 3.5mm", "Closed back", "Detachable cable"], "Studio monitor headphones with a closed back.",
     "$49.00", None, ["over ear", "wired", "studio"], []),
    ("B05HEADP04", "bluetooth headphones", "Sport Bluetooth Headphones, Sweatproof Neckband Earbuds",
     ["Sweatproof IPX5", "Magnetic earbuds", "Wireless bluetooth"], "Sweatproof neckband earbuds for sports.",
     "$19.99", {"color": ["black", "red"]}, ["wireless bluetooth", "sweatproof"], []),
    ("B05HEADP05", "bluetooth headphones", "Hybrid Noise Cancelling Headphones, Wireless Over Ear, Hi-Res Audio",
     ["Hybrid noise cancelling", "Hi-res audio", "30 hour battery"],
     "Hybrid active noise cancelling over ear headphones with hi-res audio.",
     "$89.99$119.99", {"color": ["black", "white"]}, ["noise cancelling", "over ear", "hi-res audio"], []),

    ("B04DLAMP01", "led desk lamp", "LED Desk Lamp with Wireless Charger, Dimmable Eye Caring Table Lamp",
     ["Wireless charging pad", "5 color modes, dimmable", "Eye caring flicker free light"],
     "A dimmable led desk lamp with a wireless charger and usb port, eye caring.",
     "$29.99$39.99", {"color": ["black", "white"]}, ["dimmable", "wireless charging", "eye caring", "usb port"],
     [("i want a dimmable led desk lamp with wireless charging, white", ["dimmable", "wireless charging"],
       ["white"])]),
    ("B04DLAMP02", "led desk lamp", "Architect Swing Arm Desk Lamp, Metal Clamp Lamp",
     ["Metal swing arm", "Clamp mount"], "Architect style swing arm lamp with a clamp.",
     "$27.99", {"color": ["black", "silver"]}, ["swing arm", "clamp"], []),
    ("B04DLAMP03", "led desk lamp", "Rechargeable LED Desk Lamp, Cordless Battery Operated Reading Light",
     ["Rechargeable battery", "Touch control", "Cordless"], "Cordless rechargeable led lamp for reading.",
     "$18.99$22.99", {"color": ["white", "pink", "green"]}, ["rechargeable", "cordless", "touch control"],
     [("i need a rechargeable cordless led desk lamp with touch control, green",
       ["rechargeable", "cordless", "touch control"], ["green"])]),
    ("B04DLAMP04", "led desk lamp", "Smart LED Desk Lamp, Voice Control, Works with Alexa",
     ["Voice control", "Dimmable"], "Smart desk lamp that works with alexa, dimmable.",
     "$45.99", None, ["voice control", "dimmable", "smart"], []),
    ("B04DLAMP05", "led desk lamp", "Banker's Lamp, Green Glass Shade, Brass Finish",
     ["Green glass shade", "Pull chain switch"], "Traditional bankers lamp with a green glass shade.",
     "$52.00$64.00", None, ["glass shade", "brass"], []),
]

REVIEW_TEXTS = [
    ("Great value", 5, "Exactly as described, would buy again."),
    ("Good", 4, "Works well, arrived on time."),
    ("Okay", 3, "Fine for the price."),
]


def build() -> dict[str, object]:
    """The four data files as Python objects (keys are the file names)."""
    items, attributes, human, reviews = [], {}, {}, []
    for i, (asin, query, name, bullets, description, pricing, options, attrs, goals) in enumerate(PRODUCTS):
        category, product_category = QUERIES[query]
        customization = None
        if options:
            customization = {oname.title() if oname != "flavor name" else "Flavor Name":
                             [{"value": v, "image": None} for v in values] for oname, values in options.items()}
        items.append({
            "asin": asin, "name": name, "full_description": description, "small_description": bullets,
            "pricing": pricing, "customization_options": customization,
            "images": [f"https://example.invalid/webshop/{asin}.jpg"],
            "category": category, "query": query, "product_category": product_category,
        })
        synthetic = goals[0][0] if goals else f"i want {name.lower()}"
        attributes[asin] = {"attributes": attrs, "instruction": synthetic,
                            "instruction_attributes": goals[0][1] if goals else attrs[:2]}
        if goals:
            human[asin] = [{"asin": asin, "instruction": text, "instruction_attributes": ins_attrs,
                            "instruction_options": ins_opts} for text, ins_attrs, ins_opts in goals]
        chosen = [REVIEW_TEXTS[(i + k) % len(REVIEW_TEXTS)] for k in range(2)]
        reviews.append({"asin": asin, "average_rating": round(sum(s for _, s, _ in chosen) / 2, 1),
                        "reviews": [{"title": t, "score": s, "body": b} for t, s, b in chosen]})
    return {"items_shuffle.json": items, "items_ins_v2.json": attributes,
            "items_human_ins.json": human, "reviews.json": reviews}


def write(root: pathlib.Path = HERE) -> list[pathlib.Path]:
    """Write the files under ``root``; returns their paths."""
    paths = []
    for filename, data in build().items():
        path = root / filename
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for path in write():
        print(path.name, path.stat().st_size, "bytes")
