"""verl plug-in tests: run only in the verl environment (`make test-verl` -> .venv-verl).

When verl is not importable, nothing in this directory is collected, so a plain `pytest` in the
main environment never fails here (the main suite also deselects the `verl` marker).
"""

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")



def _verl_importable() -> bool:
    # NB: "verl" alone is not enough: with tests/ on sys.path this directory itself is importable as
    # a namespace package called "verl". The real package has verl.protocol.
    try:
        return importlib.util.find_spec("verl.protocol") is not None
    except (ImportError, ValueError):
        return False


if not _verl_importable():
    collect_ignore_glob = ["test_*.py"]
