"""verl plug-in tests: run only in the verl environment (`make test-verl` -> .venv-verl).

When verl is not importable, nothing in this directory is collected, so a plain `pytest` in the
main environment never fails here (the main suite also deselects the `verl` marker).
"""

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

if importlib.util.find_spec("verl") is None:
    collect_ignore_glob = ["test_*.py"]
