"""Text environments for the scaled path, behind one interface (`TextEnv`, `make_env`).

- ``make_env("alfworld", data_path=...)``: the real ALFWorld text engine (PDDL + TextWorld), on the
  downloaded data or on the small games shipped in ``scaled/data/alfworld``.
- ``make_env("webshop", data_path=...)``: a WebShop text environment on the real data-release files
  (or the small shipped catalogue), BM25 search and the original reward (see ``docs/webshop.md``).
  Every instance over the same files shares one catalogue and index (built once into a cache folder).
- ``make_env("textworld", game_seeds=..., world_size=...)``: the `toy_envs` TextWorld games as text,
  for fast CPU tests (or ``data_path=<folder of compiled games>``).

Every environment takes its data location as ``data_path`` (``data_dir`` is a deprecated alias).

The environment modules import their heavy dependencies lazily, so ``import scaled.envs`` is cheap.
"""

from scaled.envs.base import ENV_NAMES, INFO_KEYS, TextEnv, make_env

__all__ = ["ENV_NAMES", "INFO_KEYS", "TextEnv", "make_env"]
