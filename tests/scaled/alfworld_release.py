"""The 7 shipped ALFWorld games laid out like the release (test helper, not collected: no ``test_`` prefix).

Used by tests/scaled/test_scaled_splits.py and tests/scaled/test_scaled_verl_launch.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scaled.envs.alfworld import SHIPPED_DATA

# The 7 shipped games spread over the release's three splits (task types differ per split on purpose).
LAYOUT = {
    "train": ["pick_and_place_simple-CellPhone-None-Bed-902", "pick_heat_then_place_in_recep-Potato-None-CounterTop-903",
              "pick_clean_then_place_in_recep-Mug-None-CoffeeMachine-905", "pick_two_obj_and_place-CreditCard-None-Safe-907"],
    "valid_seen": ["look_at_obj_in_light-Book-None-DeskLamp-904"],
    "valid_unseen": ["pick_and_place_simple-KeyChain-None-SideTable-901",
                     "pick_cool_then_place_in_recep-Apple-None-DiningTable-906"],
}


def write_release(root: Path) -> Path:
    """Copy the shipped games to ``<root>/json_2.1.1/<split>/<task>/trial_*`` (as ``alfworld-download``); returns ``root``."""
    for split, tasks in LAYOUT.items():
        for task in tasks:
            shutil.copytree(SHIPPED_DATA / task, root / "json_2.1.1" / split / task)
    return root
