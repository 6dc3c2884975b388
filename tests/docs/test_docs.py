"""The documentation site builds in strict mode (mkdocs-material, mkdocstrings, mkdocs-jupyter).

A strict build fails on any warning: a broken link, a nav entry without a page, a docstring that
griffe cannot parse, a tutorial that mkdocs-jupyter cannot convert, a formula that cannot be turned
into MathML. The ``site`` fixture (conftest.py) builds it once.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs_build

ROOT = Path(__file__).resolve().parents[2]


def test_strict_build_renders_the_pages(site: Path):
    for page in ("index.html", "algorithm/index.html", "api/index.html", "paper_results/index.html",
                 "benchmarks/index.html"):
        assert (site / page).is_file(), page
    algorithm = (site / "algorithm" / "index.html").read_text(encoding="utf-8")
    assert "Proposition 1" in algorithm
    # Math goes through arithmatex (span/div class "arithmatex") and is MathML by the end of the build.
    assert 'class="arithmatex"' in algorithm
    assert "<math" in algorithm


def test_api_reference_comes_from_the_docstrings(site: Path):
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    import empg

    # Each public function gets a mkdocstrings heading anchored at its dotted path, and its
    # docstring's first line appears on the page.
    for name in ("modulate_advantages", "modulate_step_advantages", "token_entropy", "step_ids_from_delimiters",
                 "grpo_advantages", "clipped_policy_loss", "register_advantage"):
        assert f'id="empg.{name}"' in api, name
        summary = getattr(empg, name).__doc__.strip().splitlines()[0]
        # The whole summary line, with markup and HTML entities removed from the page text.
        text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", api)))
        plain = re.sub(r"\s+", " ", summary.replace("``", "").replace(":func:", "").replace("`", ""))
        assert plain in text, (name, plain)


def test_every_numbered_tutorial_is_a_page_in_the_nav(site: Path):
    tutorials = sorted(p.stem for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    index = (site / "index.html").read_text(encoding="utf-8")
    for stem in tutorials:
        assert (site / "tutorials" / stem / "index.html").is_file(), stem
        assert f"tutorials/{stem}/" in index, f"{stem} missing from the nav"
