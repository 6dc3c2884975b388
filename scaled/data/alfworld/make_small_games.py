"""Write the small hand-made ALFWorld games shipped with empg (ALFRED json_2.1.1 layout).

Each game is a task folder ``<task_type>-<Object>-<Mrecep>-<Parent>-<scene>/trial_<id>/`` holding

- ``initial_state.pddl``: a PDDL problem for the ALFRED domain (``alfworld.info.ALFRED_PDDL_PATH``),
  with objects named the ALFRED way (``Type_bar_<x>_bar_<y>_bar_<z>``, demangled to "type 1" by
  ``AlfredDemangler``), receptacles, locations, the initial facts and the goal;
- ``traj_data.json``: the fields the ALFWorld loader reads (``task_type``, ``pddl_params``,
  ``turk_annotations.anns[].task_desc``) plus a few more ALFRED fields for realism.

The scenes are tiny (4-7 receptacles) so that the planner solves them in well under a second, but
they use the real domain, grammar and engine. ``game.tw-pddl`` is *not* shipped: ``scaled.envs``
builds it on first use (the same JSON that ``alfworld-generate`` writes).

Run ``python scaled/data/alfworld/make_small_games.py`` to rewrite the folders next to this file.
"""

from __future__ import annotations

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

# Receptacle types that must be opened before their content can be taken or something put in.
OPENABLE = {"Drawer", "Cabinet", "Fridge", "Microwave", "Safe"}

# Object properties by type, following ALFRED's object metadata for these few types.
PROPERTIES = {
    "KeyChain": {"pickupable"},
    "CellPhone": {"pickupable"},
    "CreditCard": {"pickupable"},
    "Pen": {"pickupable"},
    "Pencil": {"pickupable"},
    "Book": {"pickupable"},
    "Pillow": {"pickupable"},
    "CD": {"pickupable"},
    "Potato": {"pickupable", "cleanable", "heatable", "coolable", "sliceable"},
    "Apple": {"pickupable", "cleanable", "heatable", "coolable", "sliceable"},
    "Bread": {"pickupable", "heatable", "coolable", "sliceable"},
    "Mug": {"pickupable", "cleanable", "heatable", "coolable", "isReceptacleObject"},
    "Plate": {"pickupable", "cleanable", "heatable", "coolable", "isReceptacleObject"},
    "Egg": {"pickupable", "heatable", "coolable", "sliceable"},
    "DeskLamp": {"toggleable"},
    "LightSwitch": {"toggleable"},
}

# Which object types a receptacle type can hold (a subset of ALFRED's table, for these types).
SMALL = ["KeyChain", "CellPhone", "CreditCard", "Pen", "Pencil", "Book", "CD"]
FOOD = ["Potato", "Apple", "Bread", "Egg", "Mug", "Plate"]
CAN_CONTAIN = {
    "ArmChair": ["KeyChain", "CellPhone", "CreditCard", "Book", "Pillow"],
    "Bed": ["CellPhone", "Book", "Pillow"],
    "Desk": SMALL + ["Mug", "DeskLamp"],
    "SideTable": SMALL + ["Mug", "DeskLamp"],
    "Drawer": SMALL,
    "Safe": ["KeyChain", "CellPhone", "CreditCard", "CD"],
    "Sofa": ["KeyChain", "CellPhone", "CreditCard", "Book", "Pillow"],
    "CounterTop": FOOD + ["CellPhone", "CreditCard", "Pen", "Book"],
    "DiningTable": FOOD + ["CellPhone", "CreditCard", "Pen", "Book"],
    "Fridge": FOOD,
    "Microwave": FOOD,
    "SinkBasin": FOOD,
    "Cabinet": ["Mug", "Plate", "Book"],
    "StoveBurner": ["Plate"],
    "CoffeeMachine": ["Mug"],
    "GarbageCan": ["Potato", "Apple", "Bread", "Egg", "Pen", "Pencil", "CD", "CreditCard"],
}

GOALS = {
    "pick_and_place_simple": """
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (inReceptacle ?o ?r)
                            (objectType ?o {obj}Type)
                            (receptacleType ?r {recep}Type)
                        )
                    )
                )""",
    "pick_heat_then_place_in_recep": """
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (heatable ?o)
                            (objectType ?o {obj}Type)
                            (receptacleType ?r {recep}Type)
                            (isHot ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )""",
    "pick_cool_then_place_in_recep": """
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (coolable ?o)
                            (objectType ?o {obj}Type)
                            (receptacleType ?r {recep}Type)
                            (isCool ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )""",
    "pick_clean_then_place_in_recep": """
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (cleanable ?o)
                            (objectType ?o {obj}Type)
                            (receptacleType ?r {recep}Type)
                            (isClean ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )""",
    "look_at_obj_in_light": """
                (exists (?ot - object ?r - receptacle ?a - agent ?l - location)
                    (and
                        (objectType ?ot {toggle}Type)
                        (toggleable ?ot)
                        (isToggled ?ot)
                        (receptacleAtLocation ?r ?l)
                        (atLocation ?a ?l)
                        (inReceptacle ?ot ?r)
                    )
                )
                (exists (?o - object ?a - agent)
                    (and
                        (objectType ?o {obj}Type)
                        (holds ?a ?o)
                    )
                )""",
    "pick_two_obj_and_place": """
                (exists (?r - receptacle)
                    (exists (?o1 - object)
                        (and
                            (objectType ?o1 {obj}Type)
                            (receptacleType ?r {recep}Type)
                            (inReceptacle ?o1 ?r)
                            (exists (?o2 - object)
                                (and
                                    (not (= ?o1 ?o2))
                                    (objectType ?o2 {obj}Type)
                                    (receptacleType ?r {recep}Type)
                                    (inReceptacle ?o2 ?r)
                                )
                            )
                        )
                    )
                )""",
}

# The games. ``receptacles`` are types (instances are numbered in order); ``objects`` are
# (type, index into receptacles). ``closed`` says the goal object starts inside a closed receptacle.
GAMES = [
    dict(
        folder="pick_and_place_simple-KeyChain-None-SideTable-901",
        trial="trial_T20261123_090100_000001",
        task_type="pick_and_place_simple",
        obj="KeyChain", parent="SideTable", toggle="",
        task_desc="Put the key chain on the side table.",
        high_descs=["Go to the arm chair.", "Pick up the key chain.", "Go to the side table.",
                    "Put the key chain on the side table."],
        receptacles=["ArmChair", "Bed", "Desk", "Drawer", "SideTable"],
        objects=[("KeyChain", 0), ("Pillow", 1), ("CellPhone", 1), ("Pen", 2), ("CreditCard", 3),
                 ("DeskLamp", 4)],
        closed=False,
    ),
    dict(
        folder="pick_and_place_simple-CellPhone-None-Bed-902",
        trial="trial_T20261123_090200_000002",
        task_type="pick_and_place_simple",
        obj="CellPhone", parent="Bed", toggle="",
        task_desc="Take the phone out of the drawer and put it on the bed.",
        high_descs=["Go to the second drawer.", "Open the drawer and take the phone.",
                    "Go to the bed.", "Put the phone on the bed."],
        receptacles=["Drawer", "Drawer", "Bed", "Desk", "GarbageCan"],
        objects=[("Pen", 0), ("CellPhone", 1), ("Pillow", 2), ("Book", 3), ("CD", 4)],
        closed=True,
    ),
    dict(
        folder="pick_heat_then_place_in_recep-Potato-None-CounterTop-903",
        trial="trial_T20261123_090300_000003",
        task_type="pick_heat_then_place_in_recep",
        obj="Potato", parent="CounterTop", toggle="",
        task_desc="Heat the potato from the fridge and put it on the counter.",
        high_descs=["Go to the fridge.", "Open the fridge and take the potato.",
                    "Go to the microwave.", "Heat the potato in the microwave.",
                    "Go to the counter.", "Put the potato on the counter."],
        receptacles=["CounterTop", "Fridge", "Microwave", "Cabinet", "SinkBasin", "StoveBurner"],
        objects=[("Bread", 0), ("Potato", 1), ("Egg", 1), ("Plate", 3), ("Mug", 4)],
        closed=True,
    ),
    dict(
        folder="look_at_obj_in_light-Book-None-DeskLamp-904",
        trial="trial_T20261123_090400_000004",
        task_type="look_at_obj_in_light",
        obj="Book", parent="", toggle="DeskLamp",
        task_desc="Pick up the book and look at it under the lamp.",
        high_descs=["Go to the bed.", "Pick up the book.", "Go to the side table.",
                    "Turn on the lamp."],
        receptacles=["Bed", "SideTable", "Desk", "Drawer"],
        objects=[("Book", 0), ("Pillow", 0), ("DeskLamp", 1), ("Pencil", 2), ("KeyChain", 3)],
        closed=False,
    ),
    dict(
        folder="pick_clean_then_place_in_recep-Mug-None-CoffeeMachine-905",
        trial="trial_T20261123_090500_000005",
        task_type="pick_clean_then_place_in_recep",
        obj="Mug", parent="CoffeeMachine", toggle="",
        task_desc="Rinse the mug and put it in the coffee maker.",
        high_descs=["Go to the cabinet.", "Open the cabinet and take the mug.", "Go to the sink.",
                    "Rinse the mug.", "Go to the coffee maker.", "Put the mug in the coffee maker."],
        receptacles=["Cabinet", "SinkBasin", "CoffeeMachine", "CounterTop"],
        objects=[("Mug", 0), ("Apple", 3), ("Plate", 3)],
        closed=True,
    ),
    dict(
        folder="pick_cool_then_place_in_recep-Apple-None-DiningTable-906",
        trial="trial_T20261123_090600_000006",
        task_type="pick_cool_then_place_in_recep",
        obj="Apple", parent="DiningTable", toggle="",
        task_desc="Chill the apple and put it on the table.",
        high_descs=["Go to the counter.", "Pick up the apple.", "Go to the fridge.",
                    "Cool the apple in the fridge.", "Go to the table.", "Put the apple on the table."],
        receptacles=["CounterTop", "Fridge", "DiningTable", "Microwave"],
        objects=[("Apple", 0), ("Bread", 0), ("Egg", 1), ("Mug", 2)],
        closed=False,
    ),
    dict(
        folder="pick_two_obj_and_place-CreditCard-None-Safe-907",
        trial="trial_T20261123_090700_000007",
        task_type="pick_two_obj_and_place",
        obj="CreditCard", parent="Safe", toggle="",
        task_desc="Put both credit cards in the safe.",
        high_descs=["Go to the sofa.", "Pick up a credit card.", "Go to the safe.",
                    "Open the safe and put the card in it.", "Go to the desk.",
                    "Pick up the other credit card.", "Go to the safe.", "Put the card in the safe."],
        receptacles=["Sofa", "Desk", "Safe", "ArmChair"],
        objects=[("CreditCard", 0), ("CreditCard", 1), ("KeyChain", 3), ("Pen", 1), ("Book", 0)],
        closed=False,
    ),
]


def _num(value: float) -> str:
    """ALFRED's mangled number: -1.25 -> '_minus_01_dot_25', 0.5 -> '_plus_00_dot_50'."""
    sign = "_minus_" if value < 0 else "_plus_"
    whole, frac = f"{abs(value):05.2f}".split(".")
    return f"{sign}{whole}_dot_{frac}"


def _mangle(kind: str, index: int, height: float) -> str:
    """A unique ALFRED-style instance name, e.g. 'Drawer_bar__minus_01_dot_16_bar__plus_00_dot_79_bar__minus_02_dot_85'."""
    x = -3.0 + 0.73 * index
    z = 2.5 - 0.41 * index
    if kind == "SinkBasin":  # ALFRED names basins after their sink: 'Sink|x|y|z|SinkBasin' -> "sinkbasin 1"
        return f"Sink_bar_{_num(x)}_bar_{_num(height)}_bar_{_num(z)}_bar_SinkBasin"
    return f"{kind}_bar_{_num(x)}_bar_{_num(height)}_bar_{_num(z)}"


def _loc(index: int) -> str:
    """An ALFRED location name, e.g. 'loc_bar__minus_3_bar_8_bar_1_bar_30'."""
    a, b, c, d = index * 2 - 7, 5 - index * 3, index % 4, (15, 30, 45, 60)[index % 4]

    def part(v):
        return f"_minus_{-v}" if v < 0 else str(v)

    return f"loc_bar_{part(a)}_bar_{part(b)}_bar_{part(c)}_bar_{part(d)}"


def problem_pddl(game: dict) -> str:
    """The PDDL problem text (ALFRED `initial_state.pddl` layout) for one game spec."""
    recs = [(_mangle(kind, i, 0.02 + 0.1 * i), kind, _loc(i)) for i, kind in enumerate(game["receptacles"])]
    objs = [(_mangle(kind, 10 + j, 0.5 + 0.05 * j), kind, recs[r]) for j, (kind, r) in enumerate(game["objects"])]
    start = _loc(len(recs))
    otypes = sorted({kind for _, kind, _ in objs} | {game["obj"]} | ({game["toggle"]} if game["toggle"] else set()))
    rtypes = sorted({kind for _, kind, _ in recs} | ({game["parent"]} if game["parent"] else set()))
    locations = sorted({loc for _, _, loc in recs} | {start})

    lines = [f"(define (problem plan_{game['trial']})", "(:domain alfred)", "(:objects", "agent1 - agent"]
    lines += [f"        {t}Type - otype" for t in otypes]
    lines += [f"        {t}Type - rtype" for t in rtypes]
    lines += [f"        {name} - object" for name, _, _ in objs]
    lines += [f"        {name} - receptacle" for name, _, _ in recs]
    lines += [f"        {loc} - location" for loc in locations]
    lines += ["        )", "", "(:init"]
    lines += [f"        (receptacleType {name} {kind}Type)" for name, kind, _ in recs]
    lines += [f"        (objectType {name} {kind}Type)" for name, kind, _ in objs]
    for rtype in rtypes:
        for otype in otypes:
            if otype in CAN_CONTAIN.get(rtype, []):
                lines.append(f"        (canContain {rtype}Type {otype}Type)")
    for name, kind, _ in objs:
        for prop in sorted(PROPERTIES[kind]):
            if prop != "sliceable":  # slicing is out of ALFWorld's text tasks
                lines.append(f"        ({prop} {name})")
    lines += [f"        (openable {name})" for name, kind, _ in recs if kind in OPENABLE]
    lines.append(f"        (atLocation agent1 {start})")
    lines += [f"        (inReceptacle {name} {rec[0]})" for name, _, rec in objs]
    lines += [f"        (receptacleAtLocation {name} {loc})" for name, _, loc in recs]
    lines += [f"        (objectAtLocation {name} {rec[2]})" for name, _, rec in objs]
    lines += ["        )", "", "    (:goal", "        (and"]
    goal = GOALS[game["task_type"]].format(obj=game["obj"], recep=game["parent"], toggle=game["toggle"])
    lines += [goal, "        )", "    )", ")", ""]
    return "\n".join(lines)


def traj_data(game: dict) -> dict:
    """The traj_data.json fields the ALFWorld loader reads, plus a few ALFRED ones for context."""
    scene_num = int(game["folder"].rsplit("-", 1)[1])
    return {
        "task_id": game["trial"],
        "task_type": game["task_type"],
        "pddl_params": {
            "object_target": game["obj"],
            "parent_target": game["parent"],
            "toggle_target": game["toggle"],
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"floor_plan": f"FloorPlan{scene_num}", "scene_num": scene_num, "random_seed": 0},
        "turk_annotations": {
            "anns": [{"assignment_id": "empg_handmade", "task_desc": game["task_desc"],
                      "high_descs": game["high_descs"], "votes": [1, 1, 1]}]
        },
        "repeat_idx": 0,
        "empg_note": "Hand-made small ALFRED-format game shipped with empg (not from the ALFRED release).",
    }


def write_games(root: pathlib.Path = HERE) -> list[pathlib.Path]:
    """Write every game under ``root``; returns the trial folders."""
    folders = []
    for game in GAMES:
        trial_dir = root / game["folder"] / game["trial"]
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "initial_state.pddl").write_text(problem_pddl(game))
        (trial_dir / "traj_data.json").write_text(json.dumps(traj_data(game), indent=1) + "\n")
        folders.append(trial_dir)
    return folders


if __name__ == "__main__":
    for folder in write_games():
        print(folder.relative_to(HERE))
