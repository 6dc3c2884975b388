"""Toy environments for EMPG (gymnasium >= 1.0). ``import toy_envs`` registers them all.

- ``toy_envs/KeyDoor-v0``: long-horizon, sparse-reward gridworld (key -> door -> goal).
- ``toy_envs/Fog-v0``: two equally long routes to the goal, one through aliased fog cells.
- ``toy_envs/Clarity-v0``: two equally long routes, one with one right move per state (a corridor), one
  with two (an open triangle); no aliasing. The case the future-clarity bonus is meant for.
- ``toy_envs/TextWorld-v0``: real TextWorld games, generated offline (``toy_envs.textworld_env``).

Next to the environments: :mod:`toy_envs.policies` (small softmax policies), :mod:`toy_envs.train`
(the toy trainer, one CleanRL-style file; console script ``empg-toy``), :mod:`toy_envs.demo` (``make
demo``) and :mod:`toy_envs.experiments` (the paper in miniature).

Registration is by entry-point string, so nothing heavy (textworld) is imported until
``gymnasium.make`` builds that environment. The gridworlds truncate themselves at their
``max_steps`` (no ``TimeLimit`` wrapper is added).
"""

from gymnasium.envs.registration import register, registry

from .gridworld import ACTION_NAMES, ClarityEnv, FogEnv, GridLayout, GridWorldEnv, KeyDoorEnv, layout_names, optimal_actions

__all__ = [
    "ACTION_NAMES",
    "ClarityEnv",
    "ENV_IDS",
    "FogEnv",
    "GridLayout",
    "GridWorldEnv",
    "KeyDoorEnv",
    "layout_names",
    "optimal_actions",
]

_ENTRY_POINTS = {
    "toy_envs/KeyDoor-v0": "toy_envs.gridworld:KeyDoorEnv",
    "toy_envs/Fog-v0": "toy_envs.gridworld:FogEnv",
    "toy_envs/Clarity-v0": "toy_envs.gridworld:ClarityEnv",
    "toy_envs/TextWorld-v0": "toy_envs.textworld_env:TextWorldEnv",
}
ENV_IDS = tuple(_ENTRY_POINTS)

for _env_id, _entry_point in _ENTRY_POINTS.items():
    if _env_id not in registry:  # re-importing (e.g. importlib.reload) must not warn about re-registration
        register(id=_env_id, entry_point=_entry_point)

from .textworld_env import register_textworld_variants  # noqa: E402  (does not import textworld)

register_textworld_variants()
