"""The config dataclasses that the toy and scaled configs embed (issue 9): validation and OmegaConf."""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing

import pytest

import empg

CONFIGS = (empg.EMPGConfig, empg.OutcomeConfig, empg.LossConfig)


@pytest.mark.parametrize("cls", CONFIGS)
def test_fields_use_plain_types_and_optional(cls):
    # OmegaConf structured configs need plain types; Optional[...] rather than "X | None".
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is typing.Union:
            args = typing.get_args(hint)
            assert type(None) in args and len(args) == 2, (cls.__name__, f.name, hint)
            hint = next(a for a in args if a is not type(None))
        assert hint in (str, float, int, bool), (cls.__name__, f.name, hint)
    # Every field has its docstring on the line below it (what --help and the docs show).
    lines = inspect.getsource(cls).splitlines()
    for f in dataclasses.fields(cls):
        i = next(i for i, line in enumerate(lines) if line.startswith(f"    {f.name}:"))
        assert lines[i + 1].strip().startswith('"""'), (cls.__name__, f.name)


@pytest.mark.parametrize(
    "cls, field, bad",
    [
        (empg.EMPGConfig, "k", -0.5), (empg.EMPGConfig, "k_f", math.nan), (empg.EMPGConfig, "zeta", math.inf),
        (empg.EMPGConfig, "eps", 0.0), (empg.EMPGConfig, "zeta", "0.1"), (empg.EMPGConfig, "k", True),
        (empg.OutcomeConfig, "eps", -1e-6), (empg.OutcomeConfig, "std_normalize", "yes"),
        (empg.OutcomeConfig, "max_refill_rounds", 1.5), (empg.OutcomeConfig, "estimator", "ppo"),
        (empg.LossConfig, "clip_low", -0.1), (empg.LossConfig, "clip_high", math.nan),
        (empg.LossConfig, "dual_clip", 1.0), (empg.LossConfig, "kl_coef", -0.01), (empg.LossConfig, "kind", "ppo"),
    ],
)
def test_bad_values_name_the_field(cls, field, bad):
    with pytest.raises(ValueError, match=field):
        cls(**{field: bad})


def test_optional_fields_accept_none_and_numbers():
    assert empg.LossConfig(clip_high=None, dual_clip=None).resolved_clip_high("grpo") == 0.2
    assert empg.LossConfig(clip_high=0.3, dual_clip=3.0).dual_clip == 3.0
    assert empg.EMPGConfig(k=2, k_f=0, zeta=0).modulation_kwargs() == {"k": 2, "k_f": 0, "zeta": 0, "eps": 1e-8}


def test_omegaconf_structured_configs_embed_them():
    omegaconf = pytest.importorskip("omegaconf")
    OmegaConf = omegaconf.OmegaConf

    @dataclasses.dataclass
    class Run:  # how a trainer config embeds the core's configs
        modulation: empg.EMPGConfig = dataclasses.field(default_factory=empg.EMPGConfig)
        outcome: empg.OutcomeConfig = dataclasses.field(default_factory=empg.OutcomeConfig)
        loss: empg.LossConfig = dataclasses.field(default_factory=empg.LossConfig)

    base = OmegaConf.structured(Run)
    cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(["outcome.estimator=dapo", "loss.clip_high=0.3", "modulation.zeta=0.05"]))
    run = OmegaConf.to_object(cfg)
    assert isinstance(run.loss, empg.LossConfig) and run.loss.clip_high == 0.3 and run.loss.dual_clip is None
    assert run.outcome.dynamic_sampling and run.modulation.zeta == 0.05
    assert OmegaConf.to_object(base).loss.resolved_clip_high(OmegaConf.to_object(cfg).outcome) == 0.28
    with pytest.raises(Exception, match="nope"):  # an unknown key is an error that names it
        OmegaConf.merge(base, OmegaConf.from_dotlist(["loss.nope=1"]))
    with pytest.raises(ValueError, match="variant"):  # __post_init__ validates what OmegaConf builds
        OmegaConf.to_object(OmegaConf.merge(base, OmegaConf.from_dotlist(["modulation.variant=half"])))
