"""The core package's shape (issue 9): tensors in, tensors out, torch + numpy + stdlib only, small files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "empg"
MODULES = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")

_PROBE = r"""
import importlib, json, sys
import numpy, torch  # what the core may use, with everything they load themselves
loaded = {}
for name in sys.argv[1:]:  # "empg" first, then each submodule; what each one adds
    before = set(sys.modules)
    importlib.import_module(name)
    loaded[name] = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps(loaded))
"""


def test_the_core_modules_are_found():
    assert {"modulation", "_steps", "_kernels", "_delimiters", "registry", "io", "metrics", "reference"} <= set(MODULES)


def test_core_imports_only_torch_numpy_and_the_standard_library():
    names = ["empg"] + [f"empg.{m}" for m in MODULES]
    proc = subprocess.run([sys.executable, "-c", _PROBE, *names], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(loaded) == names
    allowed = {"empg", "torch", "numpy"} | set(sys.stdlib_module_names)
    outside = {name: [m for m in mods if m not in allowed and not m.startswith("_")] for name, mods in loaded.items()}
    assert all(v == [] for v in outside.values()), f"modules outside torch, numpy and the standard library: {outside}"


@pytest.mark.parametrize("name", MODULES + ["__init__"])
def test_no_core_file_over_400_lines(name):
    lines = (CORE / f"{name}.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"empg/{name}.py has {lines} lines"
