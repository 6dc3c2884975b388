"""Scaled path: EMPG on transformer LLM agents in multi-turn text environments (ALFWorld, WebShop, TextWorld).

`scaled.envs` holds the text environments behind one interface (`scaled.envs.make_env`); the agent,
rollout and trainer build on it and on the `empg` core. Nothing in `empg/` imports this package.
"""
