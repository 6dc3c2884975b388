"""Text environments for the scaled path, behind one interface (`TextEnv`, `make_env`).

- ``make_env("alfworld", data_path=...)``: the real ALFWorld text engine (PDDL + TextWorld), on the
  downloaded data or on the small games shipped in ``scaled/data/alfworld``.
- ``make_env("webshop", data_dir=...)``: a WebShop text environment on the real data-release files
  (or the small shipped catalogue), BM25 search and the original reward (see ``docs/webshop.md``).
- ``make_env("textworld", seed=..., world_size=...)``: the `toy_envs` TextWorld games as text, for
  fast CPU tests.

The environment modules import their heavy dependencies lazily, so ``import scaled.envs`` is cheap.
"""

from scaled.envs.base import ENV_NAMES, INFO_KEYS, TextEnv, make_env

__all__ = ["ENV_NAMES", "INFO_KEYS", "TextEnv", "make_env"]
