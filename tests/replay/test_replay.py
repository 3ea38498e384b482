"""Open-loop replay reproduces the recorded weights exactly; counterfactual, epochs, closed loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plastic.errors import TraceError
from plastic.replay import schema as S
from plastic.replay.closed_loop import closed_loop
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from plastic.replay.replay import ReplayOptions, replay
from tests.plasticity.conftest import weights_of
from tests.replay.conftest import record_plain


def test_the_recording_saw_every_guard(recorded) -> None:
    text = " | ".join(recorded.events)
    assert "update cap" in text
    assert "drift guard" in text
    assert "credited the last reply" in text
    assert "undid turn" in text
    kinds = set(TraceReader(recorded.path).read("events/kind").tolist())
    assert {S.CAP, S.BLEND, S.RESTORE, S.RESET, S.SNAPSHOT, S.REWARD, S.STEP} <= kinds


def test_open_loop_replay_reproduces_every_checkpoint_exactly(recorded) -> None:
    reader = TraceReader(recorded.path)
    result = replay(reader, ReplayOptions(verify=True))
    assert result.exact
    assert len(result.checkpoint_diffs) == int(reader.committed["checkpoints"]) >= 4
    assert result.max_abs_diff == 0.0
    live = weights_of(recorded.model)
    for key, weights in result.weights().items():
        assert np.array_equal(weights, live[key])
        assert np.abs(weights).max() > 0  # something was learnt


def test_torch_reference_replay_agrees_with_numba(recorded) -> None:
    result = replay(TraceReader(recorded.path), ReplayOptions(verify=True, backend="torch"))
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-6


def test_counterfactual_rule_and_params_change_the_outcome(recorded) -> None:
    reader = TraceReader(recorded.path)
    base = replay(reader).weights()["default/readout"]
    slower = replay(reader, ReplayOptions(params={"learning_rate": 0.01})).weights()
    hebb = replay(reader, ReplayOptions(rule="hebb")).weights()
    assert not replay(reader, ReplayOptions(rule="hebb")).exact
    assert np.linalg.norm(slower["default/readout"]) < np.linalg.norm(base)
    assert not np.array_equal(hebb["default/readout"], base)
    # this chat ends with a reset and one turn: a second epoch replays the reset too
    twice = replay(reader, ReplayOptions(epochs=2)).weights()["default/readout"]
    assert np.array_equal(twice, base)


def test_epochs_consolidate(tmp_path, recorded) -> None:
    path = tmp_path / "plain.zarr"
    record_plain(path, recorded.model_dir, turns=2)
    reader = TraceReader(path)
    once = replay(reader).weights()["default/readout"]
    twice = replay(reader, ReplayOptions(epochs=2))
    assert twice.tokens == 2 * reader.n_tokens
    assert not np.array_equal(twice.weights()["default/readout"], once)


def test_bad_counterfactual_is_a_trace_error(recorded) -> None:
    with pytest.raises(TraceError, match="cannot replay"):
        replay(TraceReader(recorded.path), ReplayOptions(rule="no-such-rule"))
    with pytest.raises(TraceError, match="epochs"):
        replay(TraceReader(recorded.path), ReplayOptions(epochs=0))


def test_closed_loop_with_the_recorded_rule_comes_back_to_the_recorded_weights(recorded) -> None:
    from plastic.models.checkpoint import resolve_model

    reader = TraceReader(recorded.path)
    result = closed_loop(reader, resolve_model(str(recorded.model_dir)))
    assert result.tokens == reader.n_tokens
    assert max(result.final_diff.values()) < 1e-4


def test_closed_loop_needs_the_recorded_backbone(recorded) -> None:
    import torch

    from plastic.models.spiking_lm import SpikingLM
    from tests.conftest import small_config

    torch.manual_seed(99)
    other = SpikingLM(small_config()).eval()
    with pytest.raises(TraceError, match="recorded with backbone"):
        closed_loop(TraceReader(recorded.path), other)


def test_closed_loop_from_a_loaded_adapter_comes_back_to_the_recorded_weights(
    recorded, tmp_path: Path
) -> None:
    """A session that starts from a saved adapter starts from its learnt context signature
    (the readout's context gate reads it) and its reward sources' running statistics (the
    surprise baseline): the trace keeps both with the session's start state, and closed-loop
    replay starts from them (without the reward state it ended 0.23 away in ||W||)."""
    from plastic.models.checkpoint import resolve_model
    from plastic.models.generate import Conversation
    from plastic.plasticity import PlasticModel
    from plastic.replay.closed_loop import build_model
    from tests.plasticity.conftest import FACT, chat_turn

    taught = record_plain(tmp_path / "first.zarr", recorded.model_dir, turns=2)
    taught.save(tmp_path / "adapter")
    signature = taught.adapters["default"].layers["readout"].context.state_arrays()
    assert signature["signature_weight"][0] > 0
    path = tmp_path / "second.zarr"
    with torch.no_grad():
        model = PlasticModel.from_pretrained(
            resolve_model(str(recorded.model_dir)), tmp_path / "adapter"
        )
        rewards = model.adapters["default"].rewards.state_arrays()
        with TraceRecorder.attach(model, path):
            conv = Conversation(model, seed=3)
            for _ in range(2):
                chat_turn(model, conv, FACT, reply_tokens=8)
    reader = TraceReader(path)
    start = int(reader.sessions[0]["state"])
    saved = reader.context_state(reader.sites[0], start)
    assert saved is not None
    np.testing.assert_array_equal(saved["signature"], signature["signature"])
    rebuilt = build_model(reader, resolve_model(str(recorded.model_dir)))
    context = rebuilt.adapters["default"].layers["readout"].context
    np.testing.assert_array_equal(context.signature.rates, signature["signature"])
    assert context.signature.weight == signature["signature_weight"][0]
    restored = rebuilt.adapters["default"].rewards.state_arrays()
    assert restored.keys() == rewards.keys()
    for key, value in rewards.items():
        np.testing.assert_array_equal(restored[key], value)
    result = closed_loop(reader, resolve_model(str(recorded.model_dir)))
    assert max(result.final_diff.values()) < 1e-4
