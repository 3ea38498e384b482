"""The context memory adapter: learning, controls, guards, undo, save/load, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from plastic.errors import CheckpointError, ConfigError
from plastic.models.generate import Conversation
from plastic.plasticity import PlasticModel
from plastic.plasticity.config import AdapterConfig, GuardConfig, memory_adapter_config
from plastic.plasticity.memory import MemoryConfig, MemoryLayer
from tests.plasticity.conftest import CONTROL, FACT, chat_turn, make_backbone


def memory_model(guards: GuardConfig | None = None, **kind_params) -> PlasticModel:
    model = PlasticModel(make_backbone(), guards=guards)
    model.add_adapter("default", memory_adapter_config(kind_params=kind_params))
    return model


def layer_of(model: PlasticModel) -> MemoryLayer:
    layer = model.adapters["default"].layers["readout"]
    assert isinstance(layer, MemoryLayer)
    return layer


def read(model: PlasticModel, text: bytes) -> None:
    conv = Conversation(model)
    with model.observing():
        conv.feed(text)


def test_the_memory_learns_a_repeated_fact_and_scoring_changes_nothing() -> None:
    model = memory_model()
    before = model.score(FACT)
    read(model, (FACT + "\n\n").encode() * 4)
    layer = layer_of(model)
    tables = [a.copy() for a in layer.tables]
    after = model.score(FACT)
    assert after < 0.6 * before
    assert all(np.array_equal(a, b) for a, b in zip(tables, layer.tables, strict=True))


def test_learning_off_changes_nothing() -> None:
    model = memory_model()
    model.learning = False
    read(model, FACT.encode() * 3)
    assert int(layer_of(model).tables.sizes[0]) == 0


def test_the_gate_keeps_the_memory_out_of_unrelated_text() -> None:
    """After a text it helps on, the memory costs an unrelated text little (forgetting)."""
    model = memory_model()
    read(model, (FACT + " ").encode() * 20)
    with model.disable_adapter():
        frozen = model.score(CONTROL * 8)
    assert model.score(CONTROL * 8) <= frozen + 0.05


def test_mixer_without_teaching_does_not_move() -> None:
    model = memory_model(mixer_rate=0.0)
    start = layer_of(model).tables.mixer.copy()
    read(model, FACT.encode() * 3)
    np.testing.assert_array_equal(layer_of(model).tables.mixer, start)


def test_undo_restores_the_memory_bit_for_bit() -> None:
    model = memory_model()
    conv = Conversation(model)
    chat_turn(model, conv, FACT)
    snap = [a.copy() for a in layer_of(model).tables]
    score = model.score(FACT)
    chat_turn(model, conv, CONTROL)
    model.engine.undo()
    tables = layer_of(model).tables
    n_det, n_syn = int(tables.sizes[0]), int(tables.sizes[1])
    np.testing.assert_array_equal(tables.sizes, snap[9])
    np.testing.assert_array_equal(tables.syn_weight[:n_syn], snap[7][:n_syn])
    np.testing.assert_array_equal(tables.det_trace[:n_det], snap[3][:n_det])
    np.testing.assert_array_equal(tables.mixer, snap[10])
    assert model.score(FACT) == score


def test_the_turn_cap_bounds_the_mixer() -> None:
    model = memory_model(GuardConfig(max_turn_update=1e-3, drift_check=False), mixer_rate=0.5)
    conv = Conversation(model)
    start = layer_of(model).tables.mixer.copy()
    report = chat_turn(model, conv, FACT * 3)
    change = np.linalg.norm(layer_of(model).tables.mixer - start)
    assert change <= 1e-3 + 1e-9
    assert any(event.kind == "cap" for event in report.events)


def test_the_drift_guard_backs_off_the_memory() -> None:
    model = memory_model(GuardConfig(drift_margin=0.0, drift_backoff=1), gate_clip=5.0)
    conv = Conversation(model)
    chat_turn(model, conv, "zq" * 200)
    report = chat_turn(model, conv, "zq" * 200)
    assert (
        report.probe_bpb is None
        or report.probe_bpb <= report.probe_reference + 1e-9
        or (report.reverted)
    )


def test_feedback_credits_the_last_reply() -> None:
    model = memory_model()
    conv = Conversation(model)
    chat_turn(model, conv, FACT, reply_tokens=20)
    layer = layer_of(model)
    reply = layer.synapses.eligibility.reply.copy()
    assert reply.size > 0
    before = int(layer.tables.sizes[1])
    model.engine.feedback(+1.0)
    assert layer.synapses.eligibility.reply.size == 0  # used up
    assert int(layer.tables.sizes[1]) >= before
    again = model.engine.feedback(-1.0)
    assert "nothing to credit" in " ".join(again.messages())


def test_save_and_load_reproduce_the_memory(tmp_path: Path) -> None:
    model = memory_model()
    read(model, (FACT + "\n\n").encode() * 3)
    score = model.score(FACT)
    model.save(tmp_path / "adapter")
    other = PlasticModel.from_pretrained(make_backbone(), tmp_path / "adapter")
    assert other.score(FACT) == score
    doc = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert doc["config"]["kind"] == "memory"


def test_a_damaged_memory_is_refused_in_one_line(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = memory_model()
    read(model, FACT.encode() * 2)
    model.save(tmp_path / "a")
    path = tmp_path / "a" / "adapter_model.safetensors"
    arrays = load_file(str(path))
    arrays["sites.readout.rule.syn_next"] = arrays["sites.readout.rule.syn_next"] + 10**6
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="outside the pool"):
        PlasticModel.from_pretrained(make_backbone(), tmp_path / "a")


@pytest.mark.parametrize(
    "kind_params",
    [{"orders": [3, 1]}, {"orders": []}, {"gate_tau": 0}, {"mixer_rate": -1}, {"nope": 1}],
)
def test_bad_settings_are_config_errors(kind_params: dict) -> None:
    with pytest.raises(ConfigError):
        MemoryConfig.from_dict(kind_params)
    with pytest.raises(ConfigError):
        memory_adapter_config(kind_params=kind_params)


def test_the_memory_kind_takes_only_its_rule_and_feedback() -> None:
    with pytest.raises(ConfigError):
        AdapterConfig(kind="memory", rule="rstdp")
    with pytest.raises(ConfigError):
        replace(memory_adapter_config(), reward=("surprise",))


def test_scoring_in_one_call_equals_scoring_position_by_position() -> None:
    """The drift guard's fast path (`score_rows`) gives what `score` gives."""
    from plastic.plasticity.prequential import ScoringPass, backbone_pass, scored_bits

    model = memory_model()
    read(model, (FACT + "\n\n").encode() * 3)
    text = (FACT + " " + CONTROL).encode()
    prepared = ScoringPass.of(backbone_pass(model.base_model, text))
    fast = scored_bits(model, prepared)
    assert abs(fast.mean() - model.score(text)) < 1e-5


def test_the_state_stops_growing_at_its_limit() -> None:
    """`max_state_mb`: past it the tables no longer grow, and the memory still learns."""
    model = memory_model(max_state_mb=1.0, initial_detectors=16, initial_synapses=16)
    text = " ".join(f"word{k} is number {k}." for k in range(3000)).encode()
    read(model, text)
    layer = layer_of(model)
    assert layer.full and layer.synapses.nbytes() <= 1e6
    before = model.score(FACT)
    read(model, (FACT + "\n\n").encode() * 3)
    assert model.score(FACT) < before  # existing detectors keep learning


def test_feedback_does_not_grow_a_full_memory() -> None:
    """/good on a memory at its size limit credits in place: the tables stay as they are."""
    model = memory_model(max_state_mb=1.0, initial_detectors=16, initial_synapses=16)
    read(model, " ".join(f"word{k} is number {k}." for k in range(3000)).encode())
    conv = Conversation(model)
    chat_turn(model, conv, FACT, reply_tokens=20)
    layer = layer_of(model)
    assert layer.full
    size = layer.synapses.nbytes()
    model.engine.feedback(+1.0)
    assert layer.synapses.nbytes() == size
