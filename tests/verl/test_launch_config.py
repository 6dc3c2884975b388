"""The launch scripts' overrides compose with verl 0.9.1's real Hydra config (no training)."""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.verl
pytest.importorskip("hydra")
pytest.importorskip("verl.protocol")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("outcome", ["grpo", "dapo"])
def test_alfworld_overrides_compose(outcome):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    env = dict(os.environ, OUTCOME=outcome)
    cmd = 'source scaled/verl/common.sh; echo $(common_args alfworld /d 2048) "${OUTCOME_ARGS[@]}"'
    overrides = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                               check=True).stdout.split()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "scaled/verl/config"), version_base=None):
        cfg = compose(config_name="empg_trainer", overrides=overrides)
    assert cfg.algorithm.adv_estimator == "empg" and cfg.algorithm.empg.outcome == outcome
    assert cfg.algorithm.empg.zeta == 0.1 and cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.actor.clip_ratio_high == (0.28 if outcome == "dapo" else 0.2)
    assert cfg.algorithm.filter_groups.enable == (outcome == "dapo")
    from scaled.verl.plugin import options_from_config

    assert options_from_config(cfg.algorithm).outcome == outcome
