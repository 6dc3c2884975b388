"""scaled.config: composed OmegaConf configs that embed the core's dataclasses; bad keys and values are named."""

import pathlib
import subprocess
import sys

import pytest

import empg
from scaled.agent import AgentConfig
from scaled.config import Config, compose_config, config_to_dict, load_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "scaled" / "configs"
SMOKE = CONFIGS / "smoke_cpu.yaml"
PAPER = sorted(p for p in CONFIGS.glob("*_qwen*.yaml"))


def test_sixteen_paper_configs_are_a_few_lines_each():
    assert len(PAPER) == 16
    for path in PAPER:
        body = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(body) <= 3, (path.name, body)


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_configs_compose_to_their_row_of_the_table(path):
    env, rest = path.stem.split("_", 1)
    method, model = rest.rsplit("_qwen", 1)  # e.g. "dapo_empg", "1.5b"
    with pytest.raises(ValueError, match=r"'env\.kwargs\.data_path' is required"):
        load_config(path)  # the paper configs never fall back to the small shipped data
    cfg = load_config(path, ["env.kwargs.data_path=/data"])
    alg = cfg.algorithm
    # the core's own dataclasses, not re-declarations
    assert type(alg.outcome) is empg.OutcomeConfig and type(alg.empg) is empg.EMPGConfig
    assert type(alg.loss) is empg.LossConfig and type(cfg.agent) is AgentConfig
    # the output folder carries env, method and model
    model_tag = {"1.5b": "qwen2.5-1.5b-instruct", "7b": "qwen2.5-7b-instruct-lora"}[model]
    assert cfg.name == path.stem and cfg.trainer.out_dir == f"runs/{env}_{method}_{model_tag}"
    assert alg.outcome.estimator == method.split("_")[0]
    assert alg.empg.variant == ("full" if method.endswith("empg") else "off")
    dapo = alg.outcome.estimator == "dapo"
    assert alg.loss.resolved_clip_high(alg.outcome) == (0.28 if dapo else 0.2)
    assert alg.outcome.max_refill_rounds == 3
    # the paper's recipe (spec §6): 16 tasks x group 8, 150 iterations, lr 1e-6, KL 0.01, 512 tokens
    assert (cfg.env.n_tasks, cfg.env.group_size, cfg.trainer.iterations) == (16, 8, 150)
    assert (cfg.optim.lr, alg.loss.kl_coef, cfg.rollout.max_new_tokens) == (1e-6, 0.01, 512)
    assert (cfg.agent.win_reward, cfg.agent.invalid_penalty, cfg.agent.history_length) == (10.0, 0.1, 2)
    assert cfg.env.name == env and cfg.agent.max_steps == {"alfworld": 50, "webshop": 15}[env]
    assert cfg.env.kwargs["max_steps"] == cfg.agent.max_steps
    assert cfg.eval.expected_tasks == {"alfworld": 134, "webshop": 500}[env]
    # held-out splits: train / validation / test, never the same
    assert (cfg.env.train_split, cfg.env.val_split, cfg.env.test_split) == {
        "alfworld": ("train", "valid_seen", "valid_unseen"), "webshop": ("train", "validation", "test")}[env]
    assert cfg.rollout.max_prompt_tokens == {"alfworld": 2048, "webshop": 4096}[env]
    assert (cfg.optim.mini_batch_size, cfg.agent.check_admissible, cfg.agent.require_think) == (256, False, True)
    assert (cfg.trainer.val_every, cfg.trainer.val_before_train, cfg.eval.temperature, cfg.eval.val_tasks) == (5, True, 0.4, 128)
    assert cfg.model.path == {"1.5b": "Qwen/Qwen2.5-1.5B-Instruct", "7b": "Qwen/Qwen2.5-7B-Instruct"}[model]
    assert (cfg.model.lora is not None) == (model == "7b") and cfg.model.reference == ("lora" if model == "7b" else "copy")


def test_overrides_reach_embedded_dataclasses_and_interpolations_follow():
    cfg = load_config(SMOKE, ["algorithm.empg.variant=scaling", "algorithm.outcome.estimator=dapo",
                              "algorithm.outcome.max_refill_rounds=1", "agent.max_steps=7", "optim.lr=1e-5",
                              "name=x", "algorithm.empg.variant=off"])
    assert cfg.algorithm.empg.variant == "off"  # the last override wins; YAML 1.1's bare `off` is the string
    assert cfg.algorithm.outcome.estimator == "dapo" and cfg.algorithm.outcome.max_refill_rounds == 1
    assert cfg.env.kwargs["max_steps"] == 7 and cfg.trainer.out_dir == "runs/alfworld_dapo_tiny"
    assert cfg.optim.lr == 1e-5  # YAML 1.1 reads 1e-5 as a string; the typed field makes it a float


def test_defaults_compose_in_order_and_self_comes_last(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "mine.yaml").write_text("env: {name: textworld, n_tasks: 3}\n")
    (tmp_path / "run.yaml").write_text("defaults: [base, env/mine, algorithm/dapo]\nenv: {n_tasks: 5}\nname: run\n")
    cfg = load_config(tmp_path / "run.yaml")
    assert cfg.env.name == "textworld" and cfg.env.n_tasks == 5  # local fragment, then the file itself
    assert cfg.algorithm.outcome.estimator == "dapo" and cfg.env.group_size == 8  # shipped fragments
    (tmp_path / "first.yaml").write_text("defaults: [_self_, base]\nenv: {n_tasks: 5}\n")
    assert load_config(tmp_path / "first.yaml").env.n_tasks == 16  # _self_ first: base overrides it


@pytest.mark.parametrize("override, message", [
    ("algorithm.not_a_key=1", r"unknown config key 'algorithm\.not_a_key'"),
    ("algorithm.empg.variant=sometimes", r"algorithm\.empg.*variant"),
    ("algorithm.empg=full", r"algorithm\.empg is a section"),
    ("agent.layout=diagonal", "layout"),
    ("optim.lr=abc", r"optim\.lr"),
    ("optim.lr", "key=value"),
    ("model.backend=sglang", r"model\.backend must be hf or vllm, got 'sglang'"),
    ("model.logprob_chunk_bytes=0", r"model\.logprob_chunk_bytes must be an int >= 1"),
    ("model.sampler_options=[1, 2]", r"model\.sampler_options is a section"),
])
def test_config_rejects_unknown_keys_and_bad_overrides(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(SMOKE, [override])


def test_config_rejects_bad_files(tmp_path):
    (tmp_path / "typo.yaml").write_text("defaults: [base]\ntrainer: {iteratons: 3}\n")
    with pytest.raises(ValueError, match=r"'trainer\.iteratons' \(from .*typo\.yaml\)"):
        load_config(tmp_path / "typo.yaml")
    (tmp_path / "missing.yaml").write_text("defaults: [env/nowhere]\n")
    with pytest.raises(FileNotFoundError, match="env/nowhere"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "loop.yaml").write_text("defaults: [loop]\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("override,name", [
    ("optim.micro_batch_size=0", "optim.micro_batch_size"),   # was: range() arg 3 must not be zero
    ("optim.mini_batch_size=0", "optim.mini_batch_size"),     # was: silently one full batch
    ("optim.lr=-1.0e-5", "optim.lr"),
    ("trainer.save_every=0", "trainer.save_every"),           # was: ZeroDivisionError after an iteration
    ("trainer.keep_checkpoints=0", "trainer.keep_checkpoints"),
    ("eval.temperature=0", "eval.temperature"),               # was: logits / 0 -> NaN probabilities
    ("algorithm.loss.agg=sum", "algorithm.loss"),             # was: only after the first rollout
    ("algorithm.empg.zeta=.nan", "algorithm.empg.zeta"),
    ("algorithm.loss.clip_high=.inf", "algorithm.loss.clip_high"),
    ("algorithm.outcome.estimator=ppo", "algorithm.outcome"),
    ("algorithm.outcome.max_refill_rounds=-1", "algorithm.outcome"),
    ("env.group_size=0", "env.group_size"),
    ("agent.max_steps=0", "agent.max_steps"),
    ("rollout.max_new_tokens=0", "rollout.max_new_tokens"),
    ("rollout.max_prompt_tokens=0", "rollout.max_prompt_tokens"),
    ("rollout.env_workers=0", "rollout.env_workers"),
    ("trainer.save_optimizer=sometimes", "trainer.save_optimizer"),
    ("trainer.val_every=-1", "trainer.val_every"),
    ("trainer.out_dir=' '", "trainer.out_dir"),
    ("eval.split=dev", "eval.split"),
    ("eval.samples=0", "eval.samples"),
    ("eval.val_tasks=0", "eval.val_tasks"),
    ("env.val_split=valid_seen", "env.train_split"),          # a split alone: training would play them all
])
def test_config_bad_values_name_the_field(override, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        load_config(SMOKE, [override])


def test_compose_config_is_the_typed_tree_and_round_trips():
    node = compose_config(SMOKE)
    assert node.trainer.out_dir is None and node.env.kwargs.max_steps == 3  # interpolation
    cfg = load_config(SMOKE)
    assert cfg.trainer.out_dir == "runs/alfworld_grpo_empg_tiny"
    assert isinstance(cfg, Config) and config_to_dict(cfg)["algorithm"]["empg"]["variant"] == "full"


def test_print_config_shows_the_composed_config():
    proc = subprocess.run([sys.executable, "-m", "scaled.train", "--config", str(CONFIGS / "webshop_dapo_qwen7b.yaml"),
                           "--print-config", "agent.max_steps=9"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import yaml

    printed = yaml.safe_load(proc.stdout)
    assert printed["name"] == "webshop_dapo_qwen7b" and printed["env"]["kwargs"]["max_steps"] == 9
    assert proc.stdout.rstrip().endswith("# required, not set: env.kwargs.data_path")
    assert printed["algorithm"]["outcome"]["estimator"] == "dapo" and printed["model"]["reference"] == "lora"
    proc = subprocess.run([sys.executable, "-m", "scaled.train", "--config", str(SMOKE), "--print-config",
                           "trainer.not_a_key=1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "trainer.not_a_key" in proc.stderr


def test_splits_must_keep_training_off_the_held_out_tasks():
    with pytest.raises(ValueError, match=r"env\.train_split 'valid_seen' must differ"):
        load_config(SMOKE, ["env.train_split=valid_seen", "env.val_split=valid_seen", "env.test_split=valid_unseen"])
    cfg = load_config(SMOKE, ["env.train_split=train", "env.val_split=valid_seen", "env.test_split=valid_unseen"])
    from scaled.config import env_kwargs

    assert env_kwargs(cfg, "train")["split"] == "train" and env_kwargs(cfg, "test")["split"] == "valid_unseen"
    assert "split" not in env_kwargs(load_config(SMOKE), "val")  # no splits: the env's whole data
    with pytest.raises(ValueError, match="split must be one of"):
        env_kwargs(cfg, "dev")


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [base]\ntrainer:\n  iterations: 3\n   save_every: [1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml'.* \(line 4, column \d+\)"):
        load_config(bad)
    frag = tmp_path / "env"
    frag.mkdir()
    (frag / "broken.yaml").write_text("env: {name: alfworld\n")
    (tmp_path / "uses.yaml").write_text("defaults: [env/broken]\n")
    with pytest.raises(ValueError, match=r"broken\.yaml'.*line 2"):  # the fragment, not the including file
        load_config(tmp_path / "uses.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"list\.yaml'.*must hold a mapping"):
        load_config(tmp_path / "list.yaml")


def test_output_folder_follows_env_method_and_model():
    from scaled.config import run_tag

    base = load_config(SMOKE)
    assert run_tag(base) == "alfworld_grpo_empg_tiny"
    assert load_config(SMOKE, ["algorithm.empg.variant=off"]).trainer.out_dir == "runs/alfworld_grpo_tiny"
    assert load_config(SMOKE, ["algorithm.empg.variant=bonus"]).trainer.out_dir == "runs/alfworld_grpo_empg-bonus_tiny"
    assert load_config(SMOKE, ["trainer.out_dir=runs/mine"]).trainer.out_dir == "runs/mine"  # explicit wins
    outs = {load_config(p, ["env.kwargs.data_path=/d"]).trainer.out_dir for p in PAPER}
    assert len(outs) == len(PAPER)  # 16 configs, 16 folders


def test_the_recipe_lives_in_base_env_and_algorithm_fragments_only():
    """One source of truth: every recipe key is set explicitly by base.yaml, env/<env>.yaml or
    algorithm/<method>.yaml (never left to a dataclass default), and no model fragment sets one."""
    from omegaconf import OmegaConf

    from scaled.config import CONFIG_DIR, RECIPE_KEYS

    def set_in(path):
        node = OmegaConf.load(path)
        return {k for k in RECIPE_KEYS if OmegaConf.select(node, k, default="<unset>", throw_on_missing=False)
                not in ("<unset>",)}

    base = set_in(CONFIG_DIR / "base.yaml")
    for env in ("alfworld", "webshop"):
        for method in ("grpo", "grpo_empg", "dapo", "dapo_empg"):
            covered = base | set_in(CONFIG_DIR / "env" / f"{env}.yaml") | set_in(CONFIG_DIR / "algorithm" / f"{method}.yaml")
            missing = set(RECIPE_KEYS) - covered
            if not method.startswith("dapo"):
                missing.discard("algorithm.outcome.max_refill_rounds")  # GRPO has no refill
            assert not missing, (env, method, sorted(missing))
    for model in (CONFIG_DIR / "model").glob("*.yaml"):
        assert set_in(model) == set(), model.name
    for path in PAPER:  # the paper configs add nothing but their fragments and a name
        assert set_in(path) == set(), path.name
