"""mkdocs hook: list the numbered tutorials (tutorials/NN_name.py) under the "Tutorials" nav entry.

The tutorials are jupytext py:percent notebooks in ``tutorials/`` (docs/tutorials is a symlink to
it) that mkdocs-jupyter renders. New ones appear in the nav without editing mkdocs.yml: every
``tutorials/[0-9][0-9]_*.py`` is listed, in file-name order, and each page takes its title from the
notebook's first ``# Title`` heading. With no tutorial the entry is dropped (an empty section would
break the build).
"""

from __future__ import annotations

import re
from pathlib import Path

_NUMBERED = re.compile(r"^\d\d_.+\.py$")


def on_config(config, **kwargs):
    docs_dir = Path(config["docs_dir"])
    tutorials = sorted(p.name for p in (docs_dir / "tutorials").glob("*.py") if _NUMBERED.match(p.name))
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and "Tutorials" in entry:
            if tutorials:
                nav[i] = {"Tutorials": [f"tutorials/{name}" for name in tutorials]}
            else:
                del nav[i]
            break
    return config


# Inside a notebook, "[next](02_the_modulation.ipynb)" is right for a reader who converted the
# tutorials with jupytext into one folder; on the site each notebook is its own page.
_NOTEBOOK_LINK = re.compile(r'href="(\d\d_[A-Za-z0-9_]+)\.ipynb"')


def on_post_page(output, page, config, **kwargs):
    if page.file.src_uri.startswith("tutorials/"):
        return _NOTEBOOK_LINK.sub(r'href="../\1/"', output)
    return output
