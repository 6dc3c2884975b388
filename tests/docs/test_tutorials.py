"""Execute every tutorial notebook headless, top to bottom (issue 4).

The notebooks are jupytext ``py:percent`` files; each holds "check your understanding" cells that
assert numerical facts, so a broken library makes its tutorial fail here. Each must run in under
2 minutes on 2 cores at its default (small) ``SCALE``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
NOTEBOOKS = sorted(p for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
BUDGET_S = 120


def test_tutorials_are_numbered_consecutively():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_executes(path: Path, tmp_path: Path, monkeypatch):
    nb = jupytext.read(path)
    assert any(c.cell_type == "markdown" for c in nb.cells)
    # Any cache the notebook writes (generated games, tiny models) goes to a temp folder.
    monkeypatch.setenv("EMPG_CACHE", os.environ.get("EMPG_CACHE", str(tmp_path / "cache")))
    # Plots must come back as outputs: use the inline backend even when MPLBACKEND=Agg is exported.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=BUDGET_S * 2, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET_S * 1.5, f"{path.name} took {elapsed:.0f}s (budget {BUDGET_S}s on 2 cores)"
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no plot"
