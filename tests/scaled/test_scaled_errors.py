"""Every error a user can hit in the scaled trainer, its config and scaled.evaluate names the argument, file
or field at fault (issue 14, item 5). Config values are covered in test_scaled_config.py, data files in
test_env_bad_data.py / test_webshop_data.py, damaged checkpoints and run folders in test_scaled_reliability.py
and test_scaled_recipe.py; this file covers the rest, one case each."""

import pathlib

import pytest
import torch

from scaled.config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scaled" / "configs" / "smoke_cpu.yaml"


def _cfg(tmp_path, *extra):
    return load_config(SMOKE, [f"model.path={tmp_path.parent / 'tiny_errors'}", f"trainer.out_dir={tmp_path / 'run'}",
                               "env.n_tasks=1", "env.group_size=2", "agent.max_steps=1", "rollout.max_new_tokens=4",
                               "trainer.val_before_train=false", "trainer.val_every=0", *extra])


# --------------------------------------------------------------------------- command lines
@pytest.mark.parametrize("module, argv, names", [
    ("scaled.train", ["--config", "nowhere.yaml"], "config file 'nowhere.yaml' does not exist"),
    ("scaled.train", ["--config", str(SMOKE), "optim.lr"], "override 'optim.lr' must look like section.key=value"),
    ("scaled.train", ["--config", str(SMOKE), "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    ("scaled.train", ["--config", str(ROOT / "scaled/configs/alfworld_grpo_qwen1.5b.yaml")],
     "config key 'env.kwargs.data_path' is required but not set"),
    ("scaled.train", ["--config", str(SMOKE), "trainer.device=gpu"], "trainer.device must be auto, cpu or cuda"),
    ("scaled.evaluate", ["--config", str(SMOKE), "--checkpoint", "/nowhere/run"], "--checkpoint '/nowhere/run'"),
    ("scaled.evaluate", ["--config", str(SMOKE), "--samples", "0"], "--samples (eval.samples) must be an int >= 1"),
    ("scaled.evaluate", ["--config", str(SMOKE), "eval.split=dev"], "eval.split must be one of"),
])
def test_command_lines_exit_2_with_the_named_problem(module, argv, names, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and names in err and "Traceback" not in err, err


@pytest.mark.parametrize("module", ["scaled.train", "scaled.evaluate"])
@pytest.mark.parametrize("sets, names", [
    (["env.kwargs.foo=1"], "env.kwargs.foo: the alfworld environment takes no argument 'foo'"),
    (["env.name=foo"], "env.name must be one of ['alfworld', 'webshop', 'textworld'], got 'foo'"),
    (["model.tiny=false", "model.path=/nonexistent"], "model.path='/nonexistent': no such folder"),
    (["model.backend=foo"], "model.backend must be hf or vllm, got 'foo'"),
    (["model.dtype=foo"], "model.dtype must be one of ['float32', 'bfloat16', 'float16'], got 'foo'"),
    # the environments come before the model: a bad data path is named before any model is loaded (here the
    # model path is bad too, and never reached)
    (["env.kwargs.data_path=/nowhere", "model.tiny=false", "model.path=/nonexistent"],
     "env.kwargs.data_path: ALFWorld data_path '/nowhere' does not exist"),
])
def test_setting_errors_exit_2_naming_the_setting(module, sets, names, tmp_path, capsys):
    """Errors found only when the run starts (env arguments, env data, model files) are one line naming the setting."""
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(SMOKE), f"trainer.out_dir={tmp_path / 'run'}", "eval.max_tasks=1", *sets])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and names in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_a_local_model_folder_without_a_model_is_named(tmp_path):
    from scaled.trainer import check_model_path

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"model\.path='.*empty': the folder holds no config\.json"):
        check_model_path(str(tmp_path / "empty"))
    check_model_path("Qwen/Qwen2.5-1.5B-Instruct")  # a hub name: left to transformers


def test_evaluate_rejects_a_bad_split_choice(capsys):
    from scaled.evaluate import main

    with pytest.raises(SystemExit):
        main(["--config", str(SMOKE), "--split", "dev"])
    assert "--split: invalid choice: 'dev'" in capsys.readouterr().err


# --------------------------------------------------------------------------- trainer
def test_trainer_settings_that_only_fail_at_start_are_named(tmp_path):
    from scaled.trainer import Trainer, resolve_device

    with pytest.raises(ValueError, match=r"algorithm\.outcome\.eps: only the default"):
        Trainer(_cfg(tmp_path, "algorithm.outcome.eps=0.001"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"trainer\.device=cuda but CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match=r"envs: expected n_tasks \* group_size = 2 environments, got 1"):
        Trainer(_cfg(tmp_path), envs=[object()])


def test_a_checkpoint_of_another_model_is_named(tmp_path):
    from scaled.trainer import Trainer

    Trainer(_cfg(tmp_path, "trainer.iterations=1")).train()
    other = _cfg(tmp_path, "trainer.iterations=2", f"model.path={tmp_path / 'tiny_other'}",
                 "model.tiny_kwargs={vocab_size: 512, hidden_size: 32, num_layers: 2, seed: 0}")
    with pytest.raises(ValueError, match=r"model\.tiny_kwargs\.hidden_size \(64 -> 32\)"):
        Trainer(other)  # first the config check ...
    other.trainer.allow_config_change = True
    with pytest.warns(RuntimeWarning), pytest.raises(
            ValueError, match=r"checkpoint '.*step-00000001\.pt' does not match the model \(\d+ problem\(s\)\): size mismatch"):
        Trainer(other)  # ... and when overridden, the weights themselves
    from scaled.evaluate import evaluate

    with pytest.raises(ValueError, match=r"checkpoint '--checkpoint .*run' does not match the model"):
        evaluate(_cfg(tmp_path, f"model.path={tmp_path / 'tiny_other'}", "eval.max_tasks=1",
                      "model.tiny_kwargs={vocab_size: 512, hidden_size: 32, num_layers: 2, seed: 0}"), str(tmp_path / "run"))


def test_non_finite_values_stop_the_update_naming_what(tmp_path):
    from scaled.trainer import Trainer

    trainer = Trainer(_cfg(tmp_path))
    rows = trainer._layout(trainer.rollout_round(0, 0))
    rec = trainer._recompute(rows)
    adv, _ = trainer.compute_advantages(rows, rec["entropy"])
    # an overflowing backward pass: finite loss, infinite gradient
    hook = next(trainer.policy.model.parameters()).register_hook(lambda g: g * float("inf"))
    with pytest.raises(FloatingPointError, match="non-finite gradient norm (inf|nan) at iteration 0"):
        trainer._update(rows, rec["old_logp"], rec["ref_logp"], adv + 1.0)
    hook.remove()
    with torch.no_grad():
        next(trainer.policy.model.parameters()).fill_(float("inf"))  # a corrupted weight: the core's checks name it
    # caught either by the chunked log-prob path (the logits) or by the core (the log-probs)
    with pytest.raises(ValueError, match=r"logp holds \d+ NaN/inf value|non-finite logits"):
        trainer._update(rows, rec["old_logp"], rec["ref_logp"], adv + 1.0)


def test_wandb_without_the_package_is_named(tmp_path, monkeypatch):
    import builtins

    from scaled.trainer import Trainer

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    trainer = Trainer(_cfg(tmp_path, "trainer.wandb=true"))
    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(ImportError, match=r"trainer\.wandb=true needs the wandb package"):
        trainer.log({"iteration": 1})


# --------------------------------------------------------------------------- rollouts, batches, splits
def test_rollout_and_batch_arguments_are_named():
    from scaled.agent import AgentConfig, Episode, StepRecord
    from scaled.batch import concatenated_rows, step_rows
    from scaled.rollout import RolloutConfig, collect_rollouts, play_tasks

    with pytest.raises(ValueError, match="envs, seeds and groups must be non-empty and of equal length"):
        collect_rollouts(None, [object()], seeds=[0, 1], groups=[0], agent=AgentConfig(), config=RolloutConfig())
    with pytest.raises(ValueError, match=r"task_indices: expected 1 \(one per env\), got 2"):
        collect_rollouts(None, [object()], seeds=[0], groups=[0], agent=AgentConfig(), config=RolloutConfig(),
                         task_indices=[0, 1])
    with pytest.raises(ValueError, match="envs: expected at least one environment"):
        play_tasks(None, [], [0], agent=AgentConfig(), config=RolloutConfig())
    with pytest.raises(ValueError, match="episodes have no steps"):
        step_rows([Episode(task="t", task_type="x")], pad_id=0)
    with pytest.raises(ValueError, match="episodes have no steps"):
        concatenated_rows([Episode(task="t", task_type="x")], pad_id=0, eos_id=1)
    bare = StepRecord(step=0, prompt="", text="", action="", valid=True, env_invalid=False, reward=0.0, observation="",
                      admissible=[], response_ids=[5])
    with pytest.raises(ValueError, match=r"step_rows needs step-layout rollouts \(agent\.layout='step'\)"):
        step_rows([Episode(task="t", task_type="x", steps=[bare])], pad_id=0)
    with pytest.raises(ValueError, match="a step has no logprobs"):
        concatenated_rows([Episode(task="t", task_type="x", steps=[bare])], pad_id=0, eos_id=1)


def test_a_split_hidden_in_the_env_kwargs_is_refused():
    # it would give training, validation and evaluation the same tasks
    with pytest.raises(ValueError, match=r"env\.kwargs\.split='valid_unseen': set env\.train_split"):
        load_config(SMOKE, ["env.kwargs={split: valid_unseen, max_steps: 3}"])


@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_an_unknown_sampler_option_names_the_setting(backend):
    from scaled.sampling import make_sampler

    # refused before the sampler (or its engine) is built, so no policy is needed
    with pytest.raises(ValueError, match=r"model\.sampler_options: unknown option\(s\) \['bogus'\]"):
        make_sampler(backend, None, {"bogus": 1})
    with pytest.raises(ValueError, match=r"backend must be one of"):
        make_sampler("sglang", None, {})
