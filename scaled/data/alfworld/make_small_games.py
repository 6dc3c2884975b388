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

# Heat / cool / clean, then place: one goal shape, the transformation's property and state differ.
_TRANSFORM_GOAL = """
                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            ({able} ?o)
                            (objectType ?o {{obj}}Type)
                            (receptacleType ?r {{recep}}Type)
                            ({state} ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )"""
for _verb, _able, _state in [("heat", "heatable", "isHot"), ("cool", "coolable", "isCool"),
                             ("clean", "cleanable", "isClean")]:
    GOALS[f"pick_{_verb}_then_place_in_recep"] = _TRANSFORM_GOAL.format(able=_able, state=_state)

def _game(task_type: str, obj: str, target: str, scene: int, task_desc: str, high_descs: list[str],
          receptacles: list[str], objects: list[tuple[str, int]]) -> dict:
    """One game spec. ``target`` is the goal receptacle type, or the lamp type for ``look_at_obj_in_light``;
    ``receptacles`` are types (instances are numbered in order); ``objects`` are (type, index into
    receptacles). The folder and trial names follow ALFRED's, numbered by the scene (901, 902, ...)."""
    toggle = target if task_type == "look_at_obj_in_light" else ""
    n = scene - 900
    return dict(folder=f"{task_type}-{obj}-None-{target}-{scene}", trial=f"trial_T20261123_09{n:02d}00_{n:06d}",
                task_type=task_type, obj=obj, parent="" if toggle else target, toggle=toggle,
                task_desc=task_desc, high_descs=high_descs, receptacles=receptacles, objects=objects)


# The games (902, 903 and 905 start with the goal object inside a closed receptacle).
GAMES = [
    _game("pick_and_place_simple", "KeyChain", "SideTable", 901,
          "Put the key chain on the side table.",
          ["Go to the arm chair.", "Pick up the key chain.", "Go to the side table.",
           "Put the key chain on the side table."],
          ["ArmChair", "Bed", "Desk", "Drawer", "SideTable"],
          [("KeyChain", 0), ("Pillow", 1), ("CellPhone", 1), ("Pen", 2), ("CreditCard", 3), ("DeskLamp", 4)]),
    _game("pick_and_place_simple", "CellPhone", "Bed", 902,
          "Take the phone out of the drawer and put it on the bed.",
          ["Go to the second drawer.", "Open the drawer and take the phone.", "Go to the bed.",
           "Put the phone on the bed."],
          ["Drawer", "Drawer", "Bed", "Desk", "GarbageCan"],
          [("Pen", 0), ("CellPhone", 1), ("Pillow", 2), ("Book", 3), ("CD", 4)]),
    _game("pick_heat_then_place_in_recep", "Potato", "CounterTop", 903,
          "Heat the potato from the fridge and put it on the counter.",
          ["Go to the fridge.", "Open the fridge and take the potato.", "Go to the microwave.",
           "Heat the potato in the microwave.", "Go to the counter.", "Put the potato on the counter."],
          ["CounterTop", "Fridge", "Microwave", "Cabinet", "SinkBasin", "StoveBurner"],
          [("Bread", 0), ("Potato", 1), ("Egg", 1), ("Plate", 3), ("Mug", 4)]),
    _game("look_at_obj_in_light", "Book", "DeskLamp", 904,
          "Pick up the book and look at it under the lamp.",
          ["Go to the bed.", "Pick up the book.", "Go to the side table.", "Turn on the lamp."],
          ["Bed", "SideTable", "Desk", "Drawer"],
          [("Book", 0), ("Pillow", 0), ("DeskLamp", 1), ("Pencil", 2), ("KeyChain", 3)]),
    _game("pick_clean_then_place_in_recep", "Mug", "CoffeeMachine", 905,
          "Rinse the mug and put it in the coffee maker.",
          ["Go to the cabinet.", "Open the cabinet and take the mug.", "Go to the sink.", "Rinse the mug.",
           "Go to the coffee maker.", "Put the mug in the coffee maker."],
          ["Cabinet", "SinkBasin", "CoffeeMachine", "CounterTop"],
          [("Mug", 0), ("Apple", 3), ("Plate", 3)]),
    _game("pick_cool_then_place_in_recep", "Apple", "DiningTable", 906,
          "Chill the apple and put it on the table.",
          ["Go to the counter.", "Pick up the apple.", "Go to the fridge.", "Cool the apple in the fridge.",
           "Go to the table.", "Put the apple on the table."],
          ["CounterTop", "Fridge", "DiningTable", "Microwave"],
          [("Apple", 0), ("Bread", 0), ("Egg", 1), ("Mug", 2)]),
    _game("pick_two_obj_and_place", "CreditCard", "Safe", 907,
          "Put both credit cards in the safe.",
          ["Go to the sofa.", "Pick up a credit card.", "Go to the safe.",
           "Open the safe and put the card in it.", "Go to the desk.", "Pick up the other credit card.",
           "Go to the safe.", "Put the card in the safe."],
          ["Sofa", "Desk", "Safe", "ArmChair"],
          [("CreditCard", 0), ("CreditCard", 1), ("KeyChain", 3), ("Pen", 1), ("Book", 0)]),
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
