"""The adapter-kind registry: built-ins, in-process registration, the contract check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from plastic.errors import ConfigError
from plastic.models.tokenizer import BOS
from plastic.plasticity import AdapterConfig, KindSpec, PlasticModel, kind_names, register_kind
from plastic.plasticity.kinds import protocol_problems, unregister_kind
from plastic.plasticity.readout import RULE_DEFAULTS, ReadoutConfig, ReadoutLayer
from tests.plasticity.conftest import make_backbone

LOUD = KindSpec(
    name="loud",
    summary="a readout adapter by another name (test kind)",
    settings=ReadoutConfig,
    default_rule="rstdp",
    default_reward=("surprise",),
    default_targets=("readout",),
    layer=lambda site, vocab_size, config, rng: ReadoutLayer(site, vocab_size, config),
    rule_defaults={"rstdp": {**RULE_DEFAULTS["rstdp"], "learning_rate": 0.5}},
)


def test_the_built_in_kinds_are_listed() -> None:
    assert {"memory", "readout", "residual"} <= set(kind_names())


def test_a_kind_registered_in_process_attaches_and_learns() -> None:
    register_kind(LOUD)
    try:
        assert AdapterConfig(kind="loud").effective_rule_params()["learning_rate"] == 0.5
        config = AdapterConfig(kind="loud", rule="stdp", reward=["feedback"])  # two-factor
        model = PlasticModel(make_backbone())
        model.add_adapter("default", config)
        with model.observing():
            model(torch.tensor([[BOS, *b"abcabcabcabc"]]))
        assert np.any(model.adapters["default"].layers["readout"].weights)
    finally:
        unregister_kind("loud")
    with pytest.raises(ConfigError, match="unknown adapter kind 'loud'"):
        AdapterConfig(kind="loud")


def test_a_built_in_kind_cannot_be_replaced_and_an_incomplete_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="built-in"):
        register_kind(LOUD, name="readout")
    incomplete = SimpleNamespace(name="half", api_version=1, summary="no layer")
    assert "missing attribute 'settings'" in protocol_problems(incomplete)
    with pytest.raises(ConfigError, match="cannot register adapter kind 'half'"):
        register_kind(incomplete)


def test_a_rule_made_for_another_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="'detector_stdp' is for memory adapters"):
        AdapterConfig(kind="readout", rule="detector_stdp", reward=["feedback"])
