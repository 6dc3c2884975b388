"""EMPG on verl 0.9.1: the estimator and trainer plug-in (:mod:`scaled.verl.plugin`), the multi-turn agent
loop (:mod:`scaled.verl.agent_loop`), the launcher reading the recipe (:mod:`scaled.verl.launch`), the
data preparation (:mod:`scaled.verl.make_data`) and the trainer config (``config/``).

Nothing here imports verl at package import time: load the plug-in and the agent loop in every verl
process with ``VERL_USE_EXTERNAL_MODULES=scaled.verl.plugin,scaled.verl.agent_loop`` (docs/verl.md).
"""
