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
RESIDUAL = AdapterConfig(kind="residual", size=32, seed=3)


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
        "mix", AdapterConfig(kind="residual", target_sites=r"blocks\.0\.mix", size=16)
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


def test_the_readout_memory_fades_with_memory_tau() -> None:
    """memory_tau: every FADE_EVERY learnt tokens W <- W exp(-FADE_EVERY / memory_tau)."""
    from plastic.plasticity.readout import FADE_EVERY

    layer = make_plastic(AdapterConfig(memory_tau=100.0)).adapters["default"].layers["readout"]
    layer.ready = True
    layer.pre[1, :3] = 1
    for _ in range(3):
        layer.learn_transition(5)
        layer.reward(1.0)
    before = layer.weights.copy()
    assert np.any(before)
    layer.fade_memory()
    np.testing.assert_allclose(
        layer.weights, before * np.float32(np.exp(-FADE_EVERY / 100.0)), rtol=1e-6
    )
    assert_within_bounds(make_plastic(AdapterConfig(memory_tau=100.0)))
    never = make_plastic(AdapterConfig(memory_tau=0.0)).adapters["default"].layers["readout"]
    never.synapses.weights[...] = before
    never.fade_memory()
    assert np.array_equal(never.weights, before)  # memory_tau 0: the memory never fades
    # in a stream, the model fades every FADE_EVERY learnt tokens of the adapter
    model = make_plastic(AdapterConfig(memory_tau=100.0))
    calls = []
    model.adapters["default"].layers["readout"].fade_memory = lambda: calls.append(
        model.adapters["default"].counters.tokens_learned
    )
    with model.observing():
        model(torch.tensor([[BOS, *(b"ab" * FADE_EVERY)]]))
    learnt = model.adapters["default"].counters.tokens_learned
    assert learnt >= 2 * FADE_EVERY - 1
    assert calls == list(range(FADE_EVERY, learnt + 1, FADE_EVERY))


def test_the_gate_scales_the_readout_by_the_backbones_doubt() -> None:
    """gate_power q: the delta is multiplied by (1 - max softmax(logits))^q."""
    deltas = {}
    logits = np.linspace(-2.0, 3.0, 260).astype(np.float32)
    for q in (0.0, 2.0):
        config = AdapterConfig(gate_power=q, cache_mix=0.0)  # the additive delta
        layer = make_plastic(config).adapters["default"].layers["readout"]
        rng = np.random.default_rng(0)
        layer.synapses.weights[...] = rng.uniform(-1, 1, layer.weights.shape).astype(np.float32)
        spikes = np.zeros((layer.timesteps, 1, 1, layer.n_pre), np.float32)
        spikes[:, 0, 0, :5] = 1.0
        layer.record(spikes)
        row = logits.copy()
        layer.contribute(0, 0, row, live=False)
        deltas[q] = row - logits
    p = np.exp(logits - logits.max())
    doubt = 1.0 - p.max() / p.sum()
    assert 0 < doubt < 1
    np.testing.assert_allclose(deltas[2.0], deltas[0.0] * doubt**2, rtol=1e-4, atol=1e-6)
