"""mkdocs hook: render every formula to MathML at build time, so that no page needs the network.

Browsers render MathML natively, so the site ships no math renderer and loads no script from a CDN.

* Markdown pages (and docstrings on the API page): ``pymdownx.arithmatex`` in generic mode leaves
  ``\\(...\\)`` and ``\\[...\\]`` inside elements of class ``arithmatex``.
* Tutorials (mkdocs-jupyter, i.e. nbconvert's lab template): markdown cells keep ``$...$`` and
  ``$$...$$`` inside elements of class ``jp-RenderedMarkdown``; the template also adds a MathJax
  loader and a mermaid loader that fetch from CDNs. Those loaders are removed.

Each formula goes through ``latex2mathml`` (pure Python). A formula it cannot convert, or one whose
MathML still holds a backslash (an unknown macro), is logged as a warning, which fails
``mkdocs build --strict``; so does a finished page that still loads a script, stylesheet or font
from the network (:func:`network_loads`, also used by tests/docs/test_offline_site.py).
"""

from __future__ import annotations

import html
import re
import unicodedata

from latex2mathml.converter import convert
from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("offline_math")

# --- TeX -> MathML ------------------------------------------------------------------------------

# latex2mathml takes the token after a size command (\big, \Bigl, ...) verbatim, so "\big\lVert"
# would show the text "\lVert": give it the delimiter's character instead.
_SIZED_DELIMITER = re.compile(r"(\\[bB]igg?[lrm]?)\s*(\\[a-zA-Z]+|\\[{}|])")
_DELIMITERS = {
    r"\lVert": "\u2016", r"\rVert": "\u2016", r"\Vert": "\u2016", r"\|": "\u2016",
    r"\lvert": "|", r"\rvert": "|", r"\vert": "|", r"\{": "{", r"\}": "}",
    r"\langle": "\u27e8", r"\rangle": "\u27e9", r"\lfloor": "\u230a", r"\rfloor": "\u230b",
    r"\lceil": "\u2308", r"\rceil": "\u2309",
}


def _sized_delimiter(m: re.Match) -> str:
    return f"{m.group(1)}{_DELIMITERS.get(m.group(2), m.group(2))}"


# Browsers (MathML Core) honour mathvariant="normal" only, so \mathbb{E} would show as a plain E:
# use the Unicode mathematical alphanumerics instead.
_VARIANT_NAMES = {"double-struck": "DOUBLE-STRUCK", "script": "SCRIPT", "fraktur": "FRAKTUR",
                  "bold": "BOLD", "bold-italic": "BOLD ITALIC", "sans-serif": "SANS-SERIF"}
_VARIANT_TOKEN = re.compile(r'<(mi|mn|mo|mtext) mathvariant="([a-z-]+)">([^<]*)</\1>')
_DIGITS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
# latex2mathml copies the argument of \text{...} into <mtext> verbatim: TeX escapes ("\_") stay and
# "&" or "<" are not escaped. Unescape the TeX and escape the HTML before converting. It also drops
# mathvariant="normal" from a single-letter \mathrm{d}, which would then show in italics: make it text.
_TEXT_ARG = re.compile(r"(\\(?:text|textrm|textit|textbf|texttt|textsf|mbox)\s*\{)([^{}]*)\}")
_TEX_ESCAPE = re.compile(r"\\([_#%&$])")
_MATHRM_LETTER = re.compile(r"\\mathrm\s*\{\s*([A-Za-z])\s*\}")


def _text_arg(m: re.Match) -> str:
    return m.group(1) + html.escape(_TEX_ESCAPE.sub(r"\1", m.group(2)), quote=False) + "}"


def _styled_char(char: str, variant: str) -> str:
    style = _VARIANT_NAMES[variant]
    if char.isdigit():
        names = [f"MATHEMATICAL {style} DIGIT {_DIGITS[int(char)]}"]
    elif char.isascii() and char.isalpha():
        case = "CAPITAL" if char.isupper() else "SMALL"
        # Letters that predate the math block live in "Letterlike Symbols" (e.g. SCRIPT CAPITAL B).
        names = [f"MATHEMATICAL {style} {case} {char.upper()}", f"{style} {case} {char.upper()}"]
    else:
        return char
    for name in names:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            continue
    return char


def _restyle(match: re.Match) -> str:
    tag, variant, text = match.groups()
    if variant not in _VARIANT_NAMES:
        return match.group(0)
    return f"<{tag}>{''.join(_styled_char(c, variant) for c in html.unescape(text))}</{tag}>"


class MathError(ValueError):
    """A formula that latex2mathml cannot render faithfully."""


def tex_to_mathml(tex: str, display: bool) -> str:
    """Convert one TeX formula (no delimiters) to a ``<math>`` element.

    Raises:
        MathError: latex2mathml failed, or left TeX (a backslash) in the MathML (unknown macro).
    """
    source = _SIZED_DELIMITER.sub(_sized_delimiter, tex.strip())
    source = _TEXT_ARG.sub(_text_arg, _MATHRM_LETTER.sub(r"\\text{\1}", source))
    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises assorted exception types on bad input
        raise MathError(f"latex2mathml cannot convert {tex!r}: {exc}") from exc
    mathml = _VARIANT_TOKEN.sub(_restyle, mathml)
    text = html.unescape(re.sub(r"<[^>]+>", "", mathml))
    if "\\" in text:
        raise MathError(f"unknown macro in {tex!r}: the MathML shows {text!r}")
    return mathml


# --- Finding the formulas -----------------------------------------------------------------------

_ARITHMATEX = re.compile(
    r'(<(span|div) class="arithmatex">)\s*(\\\(|\\\[)(.*?)(\\\)|\\\])\s*(</\2>)', re.DOTALL)
# nbconvert's own patterns (filters/markdown_mistune.py), applied to the cell's rendered text.
_NB_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![$\\])\$(.+?)(?<![$\\])\$", re.DOTALL)
# Whole scripts, styles and comments (their text may hold "<" and ">"), then single tags.
_TAG = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|</?[a-zA-Z][^>]*>)",
                  re.DOTALL | re.IGNORECASE)
_MATH_CELL = re.compile(r'class="[^"]*\bjp-Rendered(Markdown|Latex)\b')
_RAW_ELEMENTS = ("code", "pre", "math", "textarea")


def _render(tex: str, display: bool, where: str) -> str | None:
    try:
        return tex_to_mathml(tex, display)
    except MathError as exc:
        log.warning("%s: %s", where, exc)
        return None


def render_arithmatex(page_html: str, where: str = "page") -> str:
    """Replace the TeX inside arithmatex's spans/divs by MathML."""

    def repl(m: re.Match) -> str:
        mathml = _render(html.unescape(m.group(4)), m.group(3) == "\\[", where)
        return m.group(0) if mathml is None else f"{m.group(1)}{mathml}{m.group(6)}"

    return _ARITHMATEX.sub(repl, page_html)


def render_notebook_math(page_html: str, where: str = "page") -> str:
    """Replace ``$...$`` / ``$$...$$`` in the text of notebook markdown cells by MathML.

    Only text inside ``jp-RenderedMarkdown`` / ``jp-RenderedLatex`` elements, and outside code,
    pre, script and style elements, is touched: a dollar in code or in a cell's output stays.
    Widget outputs, for one, put scripts (with "<" in their code) on the page.
    """
    parts = _TAG.split(page_html)
    cell_depth = 0  # open <div>s since the current markdown cell started (0: not in a cell)
    raw = 0  # open code/pre/math/textarea elements
    for i, part in enumerate(parts):
        if i % 2:  # a tag, or a whole script, style or comment
            name = re.match(r"</?([a-zA-Z0-9]+)", part)
            name = name.group(1).lower() if name else ""
            closing = part.startswith("</")
            if name == "div":
                if cell_depth:
                    cell_depth += -1 if closing else 1
                elif not closing and _MATH_CELL.search(part):
                    cell_depth = 1
            elif name in _RAW_ELEMENTS and not part.endswith("/>"):
                raw = max(0, raw + (-1 if closing else 1))
            continue
        if cell_depth and not raw and "$" in part:

            def repl(m: re.Match) -> str:
                display = m.group(1) is not None
                tex = html.unescape(m.group(1) if display else m.group(2))
                mathml = _render(tex, display, where)
                return m.group(0) if mathml is None else mathml

            parts[i] = _NB_MATH.sub(repl, part).replace("\\$", "$")
    return "".join(parts)


# nbconvert's lab template: "<!-- Load mathjax -->" ... "<!-- End of mathjax configuration -->", then
# a module script that imports mermaid from a CDN when a page has a mermaid diagram, and its style,
# up to "<!-- End of mermaid configuration -->".
_NB_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
_NB_MERMAID = re.compile(
    r'<script type="module">(?:(?!</script>).)*?mermaid.*?<!-- End of mermaid configuration -->', re.DOTALL)


def strip_notebook_loaders(page_html: str) -> str:
    """Drop the MathJax and mermaid loaders that nbconvert's template puts on every notebook page."""
    return _NB_MERMAID.sub("", _NB_MATHJAX.sub("", page_html))


# --- The network check --------------------------------------------------------------------------

_REMOTE = r"(?:https?:)?//"
_ELEMENT = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTR = re.compile(r"([a-zA-Z:-]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)")
_LOADING_ATTRS = {"src", "href", "srcset", "data", "poster", "xlink:href", "background"}
_LINKS_ONLY = {"a", "area"}  # navigation, nothing is loaded
_LINK_RELS_ONLY = {"canonical", "alternate", "author", "license", "me", "next", "prev", "help"}
_CSS_REMOTE = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])" + _REMOTE + r"[^)'\"\s]*", re.IGNORECASE)
_SCRIPT_REMOTE = re.compile(
    r"(?:import\s*\(\s*|importScripts\s*\(\s*|from\s+|import\s+)['\"`]" + _REMOTE + r"[^'\"`]*"
    r"|['\"`]" + _REMOTE + r"[^'\"`\s]*\.(?:m?js|css|woff2?|ttf|otf)(?:\?[^'\"`]*)?['\"`]")
_BLOCK = re.compile(r"<(script|style)\b[^>]*>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)


def network_loads(page_html: str) -> list[str]:
    """What a page would fetch from the network: scripts, stylesheets, fonts, images, frames.

    Returns one short description per remote load (an empty list for an offline page). Looks at
    loading attributes of every element except links (``<a>``), at CSS (``url(...)``,
    ``@import``) in style elements and style attributes, and at inline scripts that import a
    remote module or name a remote script/stylesheet/font.
    """
    found = []
    for m in _ELEMENT.finditer(page_html):
        tag = m.group(1).lower()
        attrs = {k.lower(): v.strip("\"'") for k, v in _ATTR.findall(m.group(2))}
        if tag in _LINKS_ONLY:
            continue
        if tag == "link" and set(attrs.get("rel", "").lower().split()) <= _LINK_RELS_ONLY and attrs.get("rel"):
            continue
        for key, value in attrs.items():
            if key in _LOADING_ATTRS and any(re.match(_REMOTE, v.strip()) for v in value.split(",")):
                found.append(f"<{tag} {key}={value!r}>")
            elif key == "style":
                found += [f"<{tag} style> {u}" for u in _CSS_REMOTE.findall(html.unescape(value))]
    for kind, body in _BLOCK.findall(page_html):
        pattern = _CSS_REMOTE if kind.lower() == "style" else _SCRIPT_REMOTE
        found += [f"<{kind.lower()}> {u}" for u in pattern.findall(body)]
    return found


# --- mkdocs events ------------------------------------------------------------------------------


def on_page_content(content, page, config, files, **kwargs):
    where = page.file.src_uri
    content = render_arithmatex(content, where)
    if 'class="jupyter-wrapper"' in content:  # a notebook rendered by mkdocs-jupyter
        content = render_notebook_math(strip_notebook_loaders(content), where)
    return content


def on_post_page(output, page, config, **kwargs):
    for load in network_loads(output):
        log.warning("%s loads from the network: %s", page.file.src_uri, load)
    return output
