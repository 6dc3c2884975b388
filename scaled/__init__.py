"""Scaled path: EMPG on transformer LLM agents in multi-turn text environments (ALFWorld, WebShop, TextWorld).

``scaled.envs`` holds the text environments behind one interface (``scaled.envs.make_env``);
``scaled.agent`` defines the agent's episode (prompt, projection, validity, reward), which the
single-machine trainer (``scaled.rollout`` → ``scaled.batch`` → ``scaled.trainer``, entry points
``scaled.train`` / ``scaled.evaluate``, configs in ``scaled.config``) and the verl integration
(``scaled.verl``) both play. Everything builds on the ``empg`` core; nothing in ``empg/`` imports this package.
"""
