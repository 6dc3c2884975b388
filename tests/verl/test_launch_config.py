"""The launch (scaled.verl.launch) composed by verl 0.9.1's own Hydra config and checked by its validate_config.

The same recipe values as the single-machine trainer, read from verl's resolved config this time
(tests/scaled/recipe_equivalence.py lists them); options that work as options (DAPO from
``algorithm.empg.outcome``, the run name from the model); make_data's parquet files read back and
played by verl's agent-loop class.
"""

import importlib.util
import json
import pathlib
import shutil

import pytest

pytestmark = pytest.mark.verl
pytest.importorskip("hydra")
pytest.importorskip("verl.protocol")

from scaled.config import load_config  # noqa: E402
from scaled.verl import launch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "scaled" / "configs"
_spec = importlib.util.spec_from_file_location("recipe_equivalence", ROOT / "tests/scaled/recipe_equivalence.py")
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)


def _compose(argv):
    """verl's trainer config for a launch command, composed and resolved by Hydra (as main_ppo does)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    import scaled.verl.plugin  # noqa: F401  (resolvers; main_ppo gets them through VERL_USE_EXTERNAL_MODULES)

    i = argv.index("--config-name")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=argv[argv.index("--config-path") + 1], version_base=None):
        cfg = compose(config_name=argv[i + 1], overrides=argv[i + 2:])
    OmegaConf.resolve(cfg)
    return cfg


@pytest.mark.parametrize("name", R.PAPER_CONFIGS)
def test_verl_composes_the_recipe_and_validates_it(name):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    recipe = load_config(CONFIGS / name, allow_missing=True)
    argv, env = launch.build_command(recipe, data_dir="/data", gpus=8, nnodes=1)
    cfg = _compose(argv)
    want = R.expected_verl_values(recipe)
    R.assert_same(want, R.verl_values(lambda k: OmegaConf.select(cfg, k, throw_on_missing=True), want), name)
    try:
        validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except ValueError as err:  # LoRA makes verl check the installed vLLM, which a CPU machine lacks
        if not (recipe.model.lora and "vllm version" in str(err) and importlib.util.find_spec("vllm") is None):
            raise
    assert cfg.trainer.v1.trainer_mode == "empg_sync" and cfg.trainer.project_name == f"empg_{recipe.env.name}"
    assert pathlib.Path(cfg.trainer.default_local_dir).parent == pathlib.Path(env["TENSORBOARD_DIR"]).parent
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES == env["VERL_USE_EXTERNAL_MODULES"]
    if recipe.model.lora:
        assert cfg.actor_rollout_ref.model.lora_rank == recipe.model.lora["r"]


def test_outcome_dapo_as_a_hydra_override_turns_dapo_on():
    recipe = load_config(CONFIGS / "alfworld_grpo_empg_qwen1.5b.yaml", allow_missing=True)
    plain = _compose(launch.build_command(recipe, data_dir="/data")[0])
    assert not plain.algorithm.filter_groups.enable and plain.actor_rollout_ref.actor.clip_ratio_high == 0.2
    dapo = _compose(launch.build_command(recipe, data_dir="/data", extra=["algorithm.empg.outcome=dapo"])[0])
    assert dapo.algorithm.filter_groups.enable and dapo.actor_rollout_ref.actor.clip_ratio_high == 0.28
    assert dapo.trainer.experiment_name == "dapo_empg_qwen2.5-1.5b-instruct"
    # Dr.GRPO runs as verl outcome grpo without the std: its own run folder, not GRPO's
    dr = _compose(launch.build_command(load_config(CONFIGS / "alfworld_grpo_empg_qwen1.5b.yaml",
                                                   ["algorithm.outcome.estimator=drgrpo"], allow_missing=True),
                                       data_dir="/data")[0])
    assert not dr.algorithm.norm_adv_by_std_in_grpo and plain.trainer.experiment_name == "grpo_empg_qwen2.5-1.5b-instruct"
    assert dr.trainer.experiment_name == "drgrpo_empg_qwen2.5-1.5b-instruct" and "drgrpo_empg" in dr.trainer.default_local_dir
    mine = _compose(launch.build_command(recipe, data_dir="/data", extra=[
        "algorithm.empg.outcome=dapo", "actor_rollout_ref.actor.clip_ratio_high=0.25",
        "actor_rollout_ref.model.path=Qwen/Qwen2.5-7B-Instruct"])[0])
    assert mine.actor_rollout_ref.actor.clip_ratio_high == 0.25  # explicit wins
    assert mine.trainer.experiment_name == "dapo_empg_qwen2.5-7b-instruct"
    assert "dapo_empg_qwen2.5-7b-instruct" in mine.trainer.default_local_dir
    with pytest.raises(Exception, match="outcome"):
        _compose(launch.build_command(recipe, data_dir="/data", extra=["algorithm.empg.outcome=ppo"])[0])


def test_the_plain_trainer_config_alone_derives_dapo_too():
    """python -m verl.trainer.main_ppo --config-name empg_trainer algorithm.empg.outcome=dapo (no launcher)."""
    cfg = _compose(["--config-path", str(ROOT / "scaled/verl/config"), "--config-name", "empg_trainer",
                    "algorithm.empg.outcome=dapo"])
    assert cfg.algorithm.filter_groups.enable and cfg.actor_rollout_ref.actor.clip_ratio_high == 0.28
    assert cfg.algorithm.adv_estimator == "empg" and cfg.trainer.v1.trainer_mode == "empg_sync"
    assert cfg.trainer.experiment_name == "dapo_empg_qwen2.5-1.5b-instruct"


def test_make_data_writes_parquet_that_the_agent_loop_plays(tmp_path):
    """make_data's files read back (pyarrow) and a validation row played by verl's agent-loop class."""
    import asyncio

    import pyarrow.parquet as pq

    pytest.importorskip("alfworld")
    from scaled.tiny import build_tiny_tokenizer
    from scaled.verl import make_data

    shipped = ROOT / "scaled" / "data" / "alfworld"
    games = sorted(p.name for p in shipped.iterdir() if p.is_dir())
    for split, names in (("train", games[:4]), ("valid_seen", games[4:5]), ("valid_unseen", games[5:])):
        for g in names:
            shutil.copytree(shipped / g, tmp_path / "json_2.1.1" / split / g)
    out = tmp_path / "data"
    code = make_data.main(["--config", str(CONFIGS / "alfworld_grpo_empg_qwen1.5b.yaml"), "--out", str(out),
                           "--set", f"env.kwargs.data_path={tmp_path / 'json_2.1.1'}",
                           "--set", f"env.kwargs.game_dir={tmp_path / 'games'}", "--set", "agent.max_steps=2"])
    assert code == 0
    tables = {s: pq.read_table(out / f"{s}.parquet").to_pylist() for s in ("train", "val", "test")}
    assert len(tables["train"]) == 150 * 16 * 4 and len(tables["val"]) == 1 and len(tables["test"]) == len(games[5:])
    row = tables["val"][0]
    assert row["agent_name"] == "empg_text_env" and json.loads(row["extra_info"]["agent"])["max_steps"] == 2

    _agent_spec = importlib.util.spec_from_file_location("test_agent_loop_helpers", ROOT / "tests/verl/test_agent_loop.py")
    helpers = importlib.util.module_from_spec(_agent_spec)
    _agent_spec.loader.exec_module(helpers)
    tokenizer = build_tiny_tokenizer()
    server = helpers.ScriptedServer(tokenizer, lambda prompt: "<think>t</think><action>look</action>")

    async def run():
        return await helpers._agent_loop(tokenizer, server).run({}, extra_info=row["extra_info"])

    outputs = asyncio.run(run())
    assert len(outputs) == 2 and outputs[-1].reward_score == 0.0  # two valid turns, not won
    from scaled.envs import make_env

    held_out = make_env("alfworld", **json.loads(row["extra_info"]["env_kwargs"]))
    _, info = held_out.reset(options={"task_index": row["extra_info"]["task_index"]})
    assert info["task"] in tokenizer.decode(server.prompts[0]) and held_out.split == "valid_seen"
