"""Fixtures of the plasticity tests: a small random backbone wrapped with adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.models.generate import Conversation
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity import AdapterConfig, GuardConfig, PlasticModel, attach
from tests.conftest import small_config

FACT = "The zorblat of Quimby is teal and purple, and it hums at dawn."
CONTROL = "A man walked slowly down the road to the harbour to watch the boats."


def make_backbone(seed: int = 1234) -> SpikingLM:
    torch.manual_seed(seed)
    return SpikingLM(small_config()).eval()


def make_plastic(
    config: AdapterConfig | None = None, *, seed: int = 1234, guards: GuardConfig | None = None
) -> PlasticModel:
    return attach(make_backbone(seed), config, guards=guards)


def weights_of(model: PlasticModel) -> dict[str, np.ndarray]:
    """Copies of every adapter's weights, keyed "adapter/site" (synced first)."""
    out = {}
    for name, adapter in model.adapters.items():
        for site, layer in adapter.layers.items():
            layer.synapses.sync()
            out[f"{name}/{site}"] = layer.weights.copy()
    return out


def assert_within_bounds(model: PlasticModel) -> None:
    for adapter in model.adapters.values():
        for layer in adapter.layers.values():
            w = layer.weights
            syn = layer.synapses
            assert np.all(np.isfinite(w))
            assert w.min() >= syn.w_min and w.max() <= syn.w_max


def chat_turn(model: PlasticModel, conv: Conversation, text: str, reply_tokens: int = 12):
    """One chat turn as the REPL runs it: observe the user text, generate, end the turn."""
    engine = model.engine
    engine.begin_turn()
    engine.observe(conv, text.encode() + b"\n\n")
    with engine.generating():
        for _ in conv.generate(reply_tokens, stop=None):
            pass
    return engine.end_turn()


@pytest.fixture
def plastic() -> PlasticModel:
    return make_plastic()
