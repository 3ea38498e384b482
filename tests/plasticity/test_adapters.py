"""Adapters on the frozen backbone: attach, contribute, enable/disable/reset, several at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.errors import ConfigError
from plastic.models.checkpoint import model_hash
from plastic.models.generate import Conversation
from plastic.models.tokenizer import BOS
from plastic.plasticity import AdapterConfig, PlasticModel, attach
from tests.plasticity.conftest import (
    FACT,
    assert_within_bounds,
    chat_turn,
    make_backbone,
    make_plastic,
    weights_of,
)

TOKENS = torch.tensor([[BOS, *FACT.encode()]])
RESIDUAL = AdapterConfig(kind="residual", kind_params={"size": 32}, seed=3)


def _logits(model, tokens=TOKENS) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).logits


def _teach(model: PlasticModel, turns: int = 3) -> None:
    conv = Conversation(model, seed=0)
    for _ in range(turns):
        chat_turn(model, conv, FACT)


def test_a_fresh_readout_adapter_changes_nothing() -> None:
    base = make_backbone()
    expected = _logits(base)
    model = attach(base)
    assert torch.equal(_logits(model), expected)


def test_a_fresh_residual_adapter_barely_changes_predictions() -> None:
    base = make_backbone()
    expected = _logits(base)
    model = attach(base, RESIDUAL)
    got = _logits(model)
    assert not torch.equal(got, expected)  # it is wired in ...
    assert (got - expected).abs().max() < 0.05  # ... with a tiny output at init


def test_the_backbone_is_frozen_and_never_written() -> None:
    base = make_backbone()
    before = model_hash(base)
    model = attach(base)
    model.add_adapter("res", RESIDUAL)
    assert all(not p.requires_grad for p in model.parameters())
    conv = Conversation(model, seed=0)
    for k in range(6):  # a long learning chat: turns, feedback, a paste, undo
        chat_turn(model, conv, f"{FACT} ({k})", reply_tokens=16)
        model.engine.feedback(+1 if k % 2 else -1)
    chat_turn(model, conv, (FACT * 40)[:600])
    model.engine.undo()
    with model.disable_adapter():
        chat_turn(model, conv, FACT)
    assert model_hash(base) == before
    assert model.backbone_hash == before
    assert sum(np.abs(w).sum() for w in weights_of(model).values()) > 0  # learning happened


def test_disable_adapter_gives_exactly_the_frozen_logits() -> None:
    model = make_plastic()
    _teach(model)
    frozen = _logits(make_backbone())
    assert not torch.equal(_logits(model), frozen)  # the adapter learnt something
    with model.disable_adapter():
        assert torch.equal(_logits(model), frozen)
    model.disable()
    assert torch.equal(_logits(model), frozen)
    model.enable()
    assert not torch.equal(_logits(model), frozen)


def test_a_disabled_adapter_does_not_learn() -> None:
    model = make_plastic()
    model.disable("default")
    before = weights_of(model)
    _teach(model, turns=1)
    after = weights_of(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_several_adapters_on_different_sites() -> None:
    model = make_plastic()
    model.add_adapter("res", RESIDUAL)
    model.add_adapter(
        "mix",
        AdapterConfig(kind="residual", target_sites=r"blocks\.0\.mix", kind_params={"size": 16}),
    )
    assert model.adapter_names == ["default", "res", "mix"]
    _teach(model, turns=2)
    for name in ("default", "res"):  # both learnt
        syn = model.adapters[name].layers[model.adapters[name].sites[0]].synapses
        assert syn.change_norm(syn.initial) > 0
    both = _logits(model)
    model.disable("res")
    without_res = _logits(model)
    model.disable("default")
    model.disable("mix")
    none = _logits(model)
    assert not torch.equal(both, without_res)
    assert not torch.equal(without_res, none)
    assert torch.equal(none, _logits(make_backbone()))
    assert_within_bounds(model)


def test_reset_returns_to_the_initial_weights() -> None:
    model = make_plastic(RESIDUAL)
    initial = weights_of(model)
    _teach(model, turns=2)
    assert any(not np.array_equal(initial[k], w) for k, w in weights_of(model).items())
    model.reset()
    assert all(np.array_equal(initial[k], w) for k, w in weights_of(model).items())


def test_delete_adapter_removes_its_hooks() -> None:
    model = make_plastic(RESIDUAL)
    model.delete_adapter("default")
    assert torch.equal(_logits(model), _logits(make_backbone()))
    with pytest.raises(ConfigError, match="no adapter named"):
        model.delete_adapter("default")


def test_duplicate_adapter_names_are_refused() -> None:
    model = make_plastic()
    with pytest.raises(ConfigError, match="already attached"):
        model.add_adapter("default", AdapterConfig())


def test_learning_off_changes_nothing_but_adapters_still_contribute() -> None:
    model = make_plastic()
    _teach(model, turns=2)
    model.learning = False  # before the forward below: with learning on, it would learn
    learnt = _logits(model)
    before = weights_of(model)
    rewards_before = model.adapters["default"].rewards.snapshot()
    _teach(model, turns=2)
    after = weights_of(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert model.adapters["default"].rewards.snapshot() == rewards_before
    assert torch.equal(_logits(model), learnt)
    assert not torch.equal(learnt, _logits(make_backbone()))


def test_the_wrapper_runs_a_conversation_like_the_backbone() -> None:
    model = make_plastic()
    model.learning = False
    conv = Conversation(model, seed=5)
    conv.feed(FACT)
    reference = Conversation(make_backbone(), seed=5)
    reference.feed(FACT)
    assert torch.equal(conv.next_logits, reference.next_logits)  # W = 0: no contribution
    assert model.memory_horizon() == model.base_model.memory_horizon()


def test_the_torch_reference_backend_learns_the_same() -> None:
    models = {b: make_plastic(AdapterConfig(backend=b)) for b in ("numba", "torch")}
    for model in models.values():
        _teach(model, turns=1)
    numba_w, torch_w = (weights_of(m)["default/readout"] for m in models.values())
    assert np.any(numba_w)
    np.testing.assert_allclose(numba_w, torch_w, atol=1e-5)
