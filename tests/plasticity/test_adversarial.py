"""Adversarial turns never crash, never leave the weight bounds, and never break the probe."""

from __future__ import annotations

import numpy as np
import pytest

from plastic.models.generate import Conversation
from plastic.plasticity import AdapterConfig, GuardConfig
from tests.plasticity.conftest import assert_within_bounds, chat_turn, make_plastic

RNG = np.random.default_rng(0)
ATTACKS = {
    "repeated_byte": b"a" * 5000,
    "random_bytes": RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
    "one_megabyte_paste": (b"All work and no play makes Jack a dull boy. " * 24000)[: 1 << 20],
}


def _check(model) -> None:
    assert_within_bounds(model)
    engine = model.engine
    assert engine.probe_score() <= engine.probe_reference() + model.guards.drift_margin


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_adversarial_user_turns(attack: str) -> None:
    model = make_plastic(guards=GuardConfig(max_learn_tokens=2048))
    conv = Conversation(model, seed=0)
    engine = model.engine
    engine.begin_turn()
    result = engine.observe(conv, ATTACKS[attack])
    with engine.generating():
        reply = list(conv.generate(16, stop=None))
    engine.end_turn()
    assert result.tokens == len(ATTACKS[attack]) and 1 <= len(reply) <= 16
    _check(model)
    # the chat goes on afterwards
    chat_turn(model, conv, "Hello again.")
    _check(model)


def test_adversarial_turns_with_a_residual_adapter_too() -> None:
    model = make_plastic(guards=GuardConfig(max_learn_tokens_per_token=256))
    model.add_adapter("res", AdapterConfig(kind="residual", kind_params={"size": 16}))
    conv = Conversation(model, seed=0)
    for attack in ATTACKS.values():
        chat_turn(model, conv, attack[:3000].decode("latin-1"), reply_tokens=8)
        _check(model)


def test_good_spammed_a_thousand_times() -> None:
    model = make_plastic()
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, "Tell me about Quimby.", reply_tokens=24)
    engine = model.engine
    credited = 0
    for _ in range(1000):
        report = engine.feedback(+1)
        credited += report.changed
    assert credited <= 1  # a reply is credited once
    _check(model)
    assert model.adapters["default"].counters.feedback_applied == 1
