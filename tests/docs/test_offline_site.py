"""The built site works offline: no page loads anything from the network, and the math is MathML.

Formulas are converted at build time by docs/hooks/offline_math.py (latex2mathml), which also strips
the MathJax and mermaid loaders that mkdocs-jupyter's template puts on every tutorial page. The
network check itself (``network_loads``) is first shown to catch each kind of remote load, then run
on every page the build wrote, and on every stylesheet it shipped.
"""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs_build

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))


def _load_hook():
    spec = importlib.util.spec_from_file_location("offline_math", ROOT / "docs" / "hooks" / "offline_math.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10, pages  # every docs page and tutorial, plus 404.html
    return pages


# Prose only: the text a reader sees outside code, scripts, styles and (already rendered) math.
# "clipboard-copy-txt" holds a hidden copy of each notebook code cell for the copy button.
_NOT_PROSE = re.compile(
    r"<(script|style|pre|code|math|textarea)\b.*?</\1\s*>|<div class=\"clipboard-copy-txt\"[^>]*>.*?</div>",
    re.DOTALL | re.IGNORECASE)


def _prose(page_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", _NOT_PROSE.sub(" ", page_html)))


# --- the network check catches what it must, and only that --------------------------------------

REMOTE_LOADS = [
    '<script src="https://unpkg.com/mathjax@3/es5/tex-mml-chtml.js"></script>',
    "<script src='//cdn.example.org/require.min.js'></script>",
    '<script type="module">const m = (await import("https://cdn.example.org/mermaid.esm.min.mjs")).default;</script>',
    '<script type="module">import x from "https://esm.sh/katex";</script>',
    '<script>const url = "https://cdn.example.org/lib.js"; load(url);</script>',
    '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">',
    '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>',
    '<link rel="icon" href="http://example.org/favicon.png">',
    '<style>@import url(https://fonts.googleapis.com/css2?family=Inter);</style>',
    "<style>@import 'https://example.org/theme.css';</style>",
    '<style>@font-face { font-family: X; src: url("https://example.org/x.woff2"); }</style>',
    '<div style="background: url(https://example.org/bg.png)">x</div>',
    '<img src="https://img.shields.io/badge/x-y-green">',
    '<iframe src="https://www.youtube.com/embed/x"></iframe>',
]
OFFLINE = [
    '<a href="https://arxiv.org/abs/2509.09265">paper</a>',
    '<script src="../assets/javascripts/bundle.js"></script>',
    '<link rel="stylesheet" href="../stylesheets/math.css">',
    '<link rel="canonical" href="https://example.org/empg/">',
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M0"/></svg>',
    '<math xmlns="http://www.w3.org/1998/Math/MathML"><mi>x</mi></math>',
    "<p>See https://example.org/lib.js for the script.</p>",
    '<pre><code>curl -O https://example.org/lib.js</code></pre>',
]


@pytest.mark.parametrize("snippet", REMOTE_LOADS)
def test_network_check_flags_remote_loads(snippet):
    assert hook.network_loads(f"<html><body>{snippet}</body></html>"), snippet


@pytest.mark.parametrize("snippet", OFFLINE)
def test_network_check_ignores_links_and_local_files(snippet):
    assert hook.network_loads(f"<html><body>{snippet}</body></html>") == [], snippet


def test_notebook_template_loaders_are_found_then_stripped():
    # What mkdocs-jupyter makes of a tutorial before the hook runs: it holds the CDN loaders.
    from mkdocs_jupyter.convert import nb2html

    raw = nb2html(str(TUTORIALS[0]), execute=False)
    assert any("mermaid" in load for load in hook.network_loads(raw)), "template changed: update the hook and this test"
    assert "$" in raw
    cleaned = hook.render_notebook_math(hook.strip_notebook_loaders(raw))
    assert hook.network_loads(cleaned) == []
    assert "MathJax" not in cleaned
    assert "<math" in cleaned


# --- the built site ------------------------------------------------------------------------------


def test_no_page_loads_anything_from_the_network(site: Path):
    offending = {}
    for page in _pages(site):
        loads = hook.network_loads(page.read_text(encoding="utf-8"))
        if loads:
            offending[str(page.relative_to(site))] = loads
    assert offending == {}


def test_no_shipped_stylesheet_loads_from_the_network(site: Path):
    remote = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"]?)(?:https?:)?//", re.IGNORECASE)
    sheets = sorted(site.rglob("*.css"))
    assert sheets
    assert [str(p.relative_to(site)) for p in sheets if remote.search(p.read_text(encoding="utf-8"))] == []


def test_no_page_needs_the_themes_cdn_fallbacks(site: Path):
    # The theme's bundle fetches mermaid from a CDN when a page holds a mermaid diagram: none may.
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        assert 'class="mermaid"' not in text and "jp-Mermaid" not in text, page


def _math_elements(page_html: str) -> list[str]:
    return re.findall(r"<math\b.*?</math>", page_html, re.DOTALL)


@pytest.mark.parametrize(
    "page", ["algorithm/index.html", "toys/index.html", "webshop/index.html", "index.html"]
    + [f"tutorials/{p.stem}/index.html" for p in TUTORIALS])
def test_pages_with_formulas_show_mathml(site: Path, page: str):
    text = (site / page).read_text(encoding="utf-8")
    maths = _math_elements(text)
    assert maths, f"{page}: no <math> element"
    for m in maths:
        assert "<merror" not in m, m
        shown = html.unescape(re.sub(r"<[^>]+>", "", m))
        assert "\\" not in shown, f"{page}: TeX left in the MathML: {shown!r}"


def test_every_arithmatex_formula_was_converted(site: Path):
    # Each arithmatex span/div must hold exactly one <math> and no TeX delimiters.
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        for inner in re.findall(r'<(?:span|div) class="arithmatex">(.*?)</(?:span|div)>', text, re.DOTALL):
            assert inner.count("<math") == 1 and "\\(" not in inner and "\\[" not in inner, (page, inner[:200])


def test_no_raw_tex_left_in_the_prose(site: Path):
    raw_tex = re.compile(r"\\\(|\\\[|\$\$|\$[^$\n]{0,200}?\\[a-zA-Z]+[^$\n]{0,200}?\$")
    leftovers = {}
    for page in _pages(site):
        found = raw_tex.findall(_prose(page.read_text(encoding="utf-8")))
        if found:
            leftovers[str(page.relative_to(site))] = found[:3]
    assert leftovers == {}


def test_tutorial_math_count_matches_the_notebook(site: Path):
    # Every $...$ / $$...$$ of a tutorial's markdown cells becomes one <math> on its page.
    jupytext = pytest.importorskip("jupytext")
    pattern = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![$\\])\$(.+?)(?<![$\\])\$", re.DOTALL)
    for path in TUTORIALS:
        nb = jupytext.read(path)
        markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        markdown = re.sub(r"`[^`\n]*`", "", markdown)  # inline code keeps its dollars
        expected = len(pattern.findall(markdown))
        page = (site / "tutorials" / path.stem / "index.html").read_text(encoding="utf-8")
        assert len(_math_elements(page)) == expected, path.name


# --- TeX the converter must handle ---------------------------------------------------------------


@pytest.mark.parametrize(("tex", "must_show"), [
    (r"\big\lVert \nabla_z \log \pi(a) \big\rVert^2", "\u2016"),  # latex2mathml alone prints "\lVert"
    (r"\text{has\_key} + \text{door\_open}", "has_key"),           # TeX escapes inside \text
    (r"\mathbb{E}_{a \sim \pi}", "\U0001d53c"),                     # double-struck E, not a plain E
    (r"w \sim \mathcal N(0, 1)", "\U0001d4a9"),                     # script N (browsers ignore mathvariant)
    (r"\mathbb{1}[\text{price}\le u]", "\U0001d7d9"),
    (r"\log(\#\text{commands})", "#commands"),
    (r"\text{a\&b}", "a&b"),
])
def test_tex_to_mathml_handles_the_macros_we_use(tex, must_show):
    mathml = hook.tex_to_mathml(tex, display=False)
    assert mathml.startswith("<math") and 'display="inline"' in mathml
    shown = html.unescape(re.sub(r"<[^>]+>", "", mathml))
    assert must_show in shown and "\\" not in shown, shown


def test_notebook_math_only_in_markdown_cells():
    # A widget loader (a script with "<" in its code) comes first, as on an executed notebook page;
    # dollars in inline code, in code cells and in outputs are not math.
    page = (
        "<script>if (v < 2 || !ok) { load(); }</script>\n"
        '<div class="jp-Cell"><div class="jp-RenderedHTMLCommon jp-RenderedMarkdown" data-mime-type="text/markdown">'
        "<p>Entropy $H = -\\sum_a \\pi_a \\log \\pi_a$, costs \\$5, <code>echo $HOME$</code></p>"
        "<div><p>$$\\frac{1}{2}$$</p></div></div></div>\n"
        '<div class="jp-RenderedText"><pre>price $3 and $4</pre></div>'
        '<div class="highlight"><pre>x = "$a$"</pre></div>'
    )
    out = hook.render_notebook_math(page)
    assert out.count("<math") == 2 and 'display="block"' in out
    assert "costs $5" in out and "<code>echo $HOME$</code>" in out
    assert "<pre>price $3 and $4</pre>" in out and '<pre>x = "$a$"</pre>' in out
    assert "<script>if (v < 2 || !ok) { load(); }</script>" in out


def test_tex_to_mathml_rejects_unknown_macros():
    with pytest.raises(hook.MathError, match="unknown macro"):
        hook.tex_to_mathml(r"\notamacro x", display=True)


# --- no page says it is unfinished --------------------------------------------------------------

UNFINISHED = re.compile(
    r"\b(?:TODO|FIXME|TBD|XXX)\b"
    r"|(?i:\bnot\s+yet\s+implemented\b|\bnot\s+implemented\s+yet\b|\bcoming\s+soon\b|\bbeing\s+written\b"
    r"|\bwork\s+in\s+progress\b|\bunder\s+construction\b|\bto\s+be\s+(?:written|done|added)\b"
    r"|\bnot\s+yet\s+(?:written|supported|available)\b|\bwill\s+be\s+added\b"
    r"|\bunfinished\b(?!\s+(?:steps?|episodes?|trajector(?:y|ies)|turns?|games?)\b))")

def _page_params():
    params = []
    for md in sorted((ROOT / "docs").glob("*.md")):
        built = "index.html" if md.name == "index.md" else f"{md.stem}/index.html"
        params.append(pytest.param(built, id=md.name))
    params += [pytest.param(f"tutorials/{p.stem}/index.html", id=p.name) for p in TUTORIALS]
    return params


def test_unfinished_pattern_matches_what_it_must():
    for text in ("TODO: write this", "Work in progress", "not yet implemented", "This page is being written.",
                 "Coming soon!", "This section is unfinished."):
        assert UNFINISHED.search(text), text
    # A documented limitation ("X is not implemented", "not supported") is not an unfinished page.
    for text in ("todo = range(n)", "an unfinished step is dropped", "NotImplementedError",
                 "the search shortcuts are not implemented"):
        assert not UNFINISHED.search(text), text


@pytest.mark.parametrize("page", _page_params())
def test_no_page_says_it_is_unfinished(site: Path, page: str):
    prose = re.sub(r"\s+", " ", _prose((site / page).read_text(encoding="utf-8")))
    hits = [prose[max(0, m.start() - 60): m.end() + 60] for m in UNFINISHED.finditer(prose)]
    assert hits == [], hits
