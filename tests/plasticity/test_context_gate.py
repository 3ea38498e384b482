"""The readout memory's context gate: it recalls in text like what it learnt, not elsewhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from plastic.errors import CheckpointError, ConfigError
from plastic.kernels_numba.adapter_kernels import chi_distance, running_mean
from plastic.models.generate import Conversation
from plastic.models.tokenizer import BOS
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.adapter_io import WEIGHTS_FILE
from plastic.plasticity.context_gate import VARIANCE_FLOOR, ContextGate
from plastic.plasticity.readout import ReadoutLayer
from tests.plasticity.conftest import CONTROL, FACT, chat_turn, make_backbone, make_plastic

RECALLED = 7  # the token the hand-set memory recalls


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


def test_running_mean_takes_the_first_values_then_averages() -> None:
    rates = np.zeros(3)
    weight = running_mean(rates, 0.0, 0.25, np.array([4.0, 0.0, 8.0], np.float32), 0.5)
    assert weight == pytest.approx(0.25)
    np.testing.assert_allclose(rates, [2.0, 0.0, 4.0])  # empty: the first values as they are
    weight = running_mean(rates, weight, 0.25, np.zeros(3, np.float32), 0.5)
    w2 = 0.25 + 0.25 * 0.75
    assert weight == pytest.approx(w2)
    np.testing.assert_allclose(rates, np.array([2.0, 0.0, 4.0]) * (1 - 0.25 / w2))


def test_chi_distance_weighs_each_neuron_by_its_spread() -> None:
    rates = np.array([0.5, 0.1, 0.0, 1.0])
    ref = np.array([0.4, 0.1, 0.0, 0.9])
    spread = np.maximum(ref * (1 - ref), VARIANCE_FLOOR)
    expected = np.mean((rates - ref) ** 2 / spread)
    assert chi_distance(rates, ref, VARIANCE_FLOOR) == pytest.approx(expected)
    assert chi_distance(ref, ref, VARIANCE_FLOOR) == 0.0


def _text(layer: ReadoutLayer, neurons: slice, length: int) -> np.ndarray:
    """Spikes [T, 1, length, n] of a text whose tokens all fire `neurons` at every step."""
    spikes = np.zeros((layer.timesteps, 1, length, layer.n_pre), np.float32)
    spikes[:, 0, :, neurons] = 1.0
    return spikes


A, B = slice(0, 10), slice(10, 20)  # the learnt text's neurons; another text's


def _taught_layer(context_tau: float) -> ReadoutLayer:
    """A readout whose memory recalls RECALLED from both A's and B's neurons, and whose
    signature was learnt on text A."""
    model = make_plastic(
        AdapterConfig(kind_params={"context_tau": context_tau, "context_signature_tau": 50.0})
    )
    layer = model.adapters["default"].layers["readout"]
    layer.weights[:20, RECALLED] = 1.0
    raster = np.zeros((layer.timesteps, layer.n_pre), np.uint8)
    raster[:, A] = 1
    for _ in range(100):
        layer.context.learn(raster)
    return layer


def _recall_probabilities(layer: ReadoutLayer, spikes: np.ndarray) -> np.ndarray:
    """p(RECALLED) at every position of a scored text (from <bos>, on uniform logits)."""
    layer.record(spikes)
    out = []
    for s in range(spikes.shape[2]):
        row = np.zeros(layer.n_post, np.float32)
        layer.contribute(0, s, row, live=False, token=BOS if s == 0 else 65)
        out.append(_softmax(row)[RECALLED])
    layer.release()
    return np.array(out)


def test_the_memory_recalls_in_the_learnt_context_and_keeps_quiet_in_another() -> None:
    layer = _taught_layer(context_tau=20.0)
    uniform = 1.0 / layer.n_post
    in_context = _recall_probabilities(layer, _text(layer, A, 30))
    elsewhere = _recall_probabilities(layer, _text(layer, B, 30))
    # recalled all along text A, from its first token on (a scored text's context starts
    # at the signature, so a short probe of the taught text gets the memory)
    assert np.all(in_context > 10 * uniform)
    assert np.allclose(elsewhere, uniform)  # B's first token shows it is another text
    # without the gate the same memory recalls in B as well: the gate is what keeps it quiet
    ungated = _recall_probabilities(_taught_layer(context_tau=0.0), _text(layer, B, 30))
    assert np.all(ungated > 10 * uniform)


def test_learning_moves_the_signature_to_the_new_text() -> None:
    """The signature follows what the memory learns from, so after learning on B the memory
    speaks in B (and no longer in A)."""
    layer = _taught_layer(context_tau=20.0)
    raster = np.zeros((layer.timesteps, layer.n_pre), np.uint8)
    raster[:, B] = 1
    for _ in range(300):
        layer.context.learn(raster)
    uniform = 1.0 / layer.n_post
    assert np.all(_recall_probabilities(layer, _text(layer, B, 30)) > 10 * uniform)
    assert np.allclose(_recall_probabilities(layer, _text(layer, A, 30))[3:], uniform)


def test_a_layer_that_learnt_nothing_is_not_gated() -> None:
    gate = ContextGate(4, tau=10.0, signature_tau=10.0, tolerance=0.001)
    context = gate.context(0, live=False)
    gate.read(context, np.ones(4, np.float32), 1)
    assert gate.gate(context) == 1.0  # no signature: weights set by hand are not muted
    assert ContextGate(4, tau=0.0, signature_tau=10.0, tolerance=0.001).gate(context) == 1.0


def _learnt_model() -> PlasticModel:
    model = make_plastic()
    conv = Conversation(model, seed=0)
    for _ in range(2):
        chat_turn(model, conv, FACT)
    return model


def test_the_signature_is_learnt_saved_snapshotted_and_reset(tmp_path: Path) -> None:
    model = _learnt_model()
    adapter = model.adapters["default"]
    gate = adapter.layers["readout"].context
    assert gate.signature.weight > 0 and gate.signature.rates.any()
    snap = adapter.snapshot()
    saved = gate.state_arrays()
    chat_turn(model, Conversation(model, seed=1), CONTROL)
    assert not np.array_equal(gate.signature.rates, saved["signature"])
    adapter.restore(snap)  # /undo
    np.testing.assert_array_equal(gate.signature.rates, saved["signature"])
    model.save(tmp_path / "a")
    loaded = PlasticModel.from_pretrained(make_backbone(), tmp_path / "a")
    other = loaded.adapters["default"].layers["readout"].context
    np.testing.assert_array_equal(other.signature.rates, saved["signature"])
    assert other.signature.weight == gate.signature.weight
    assert loaded.engine.score(FACT) == model.engine.score(FACT)
    adapter.reset()
    assert gate.signature.weight == 0.0 and not gate.signature.rates.any()


def test_scoring_leaves_the_conversations_context_alone() -> None:
    model = _learnt_model()
    gate = model.adapters["default"].layers["readout"].context
    live = gate.live.rates.copy(), gate.live.weight
    first = model.engine.score(CONTROL)
    assert model.engine.score(CONTROL) == first  # each scored text starts afresh
    np.testing.assert_array_equal(gate.live.rates, live[0])
    assert gate.live.weight == live[1]


def test_learning_off_leaves_the_signature_alone() -> None:
    model = _learnt_model()
    gate = model.adapters["default"].layers["readout"].context
    before = gate.signature.rates.copy()
    model.learning = False
    chat_turn(model, Conversation(model, seed=2), CONTROL)
    np.testing.assert_array_equal(gate.signature.rates, before)


def test_an_adapter_saved_before_the_context_gate_recalls_everywhere(tmp_path: Path) -> None:
    from tests.plasticity.test_adapter_io import saved_as_v1

    out = saved_as_v1(_learnt_model(), tmp_path / "old", drop=("context_tau",))
    loaded = PlasticModel.from_pretrained(make_backbone(), out)
    assert loaded.adapters["default"].config.settings.context_tau == 0.0
    assert not loaded.adapters["default"].layers["readout"].context.enabled


def test_a_gated_adapter_without_its_signature_is_a_checkpoint_error(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = _learnt_model()
    out = tmp_path / "cut"
    model.save(out)
    path = next(out.rglob(WEIGHTS_FILE))
    arrays = {k: v for k, v in load_file(str(path)).items() if ".context." not in k}
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="missing array .*context.signature"):
        PlasticModel.from_pretrained(make_backbone(), out)


def test_a_signature_out_of_range_is_a_checkpoint_error(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = _learnt_model()
    out = tmp_path / "bad"
    model.save(out)
    path = next(out.rglob(WEIGHTS_FILE))
    arrays = load_file(str(path))
    key = next(k for k in arrays if k.endswith("context.signature"))
    arrays[key] = arrays[key] + 2.0
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="must lie in"):
        PlasticModel.from_pretrained(make_backbone(), out)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("context_tau", -1.0),
        ("context_tau", 0.5),
        ("context_tau", math.inf),
        ("context_signature_tau", 0.0),
        ("context_tolerance", 0.0),
        ("context_tolerance", math.nan),
    ],
)
def test_bad_context_settings_are_config_errors(name: str, bad: float) -> None:
    with pytest.raises(ConfigError, match="context_"):
        AdapterConfig(kind_params={name: bad})
