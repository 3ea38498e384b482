"""Traces of the context memory (issue 13): a chat learning with the memory, recorded
through the chat session itself (/score, taught turns, /good, /bad, /undo, a reply cut by
Ctrl-C, the cap and the drift guard firing, /reset), replays exactly open loop and closed
loop; a counterfactual that changes a setting changes the outcome; `inspect` says what the
memory read and how it grew; a half-written trace reads as it was at its last commit."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from plastic.cli.chat.learning import attach_learning
from plastic.cli.chat.session import ChatOptions, ChatSession
from plastic.models.checkpoint import resolve_model
from plastic.models.generate import Conversation
from plastic.plasticity import GuardConfig
from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model
from plastic.replay import schema as S
from plastic.replay.closed_loop import closed_loop
from plastic.replay.memory_state import max_abs_diff
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from plastic.replay.replay import OpenLoopReplay, ReplayOptions
from tests.cli.test_errors import assert_one_line_error, run_main
from tests.plasticity.conftest import CONTROL, FACT, chat_turn
from tests.replay.conftest import save_small_model
from tests.replay.test_closed_loop_chat import SCRIPT as CLOSED_LOOP_SCRIPT
from tests.replay.test_closed_loop_chat import InterruptingRenderer
from tests.replay.test_faults import chunk_of, damage, run_all

# The probe repeats "xzy": a turn that teaches "xyz" makes the memory mispredict every byte
# of it, so the drift guard backs that turn off or reverts it; FACT turns stay within it.
GUARDS = GuardConfig(
    max_turn_update=0.05, drift_margin=0.01, drift_backoff=2, probe_text="xzy" * 30
)
# The closed-loop chat's script (/score first, /good, /bad, /undo twice, Ctrl-C), with a turn
# that trips the drift guard after the feedback, and ending /good, /reset (the neuron state:
# a stream boundary for the memory), then the fact again.
SCRIPT = (
    *CLOSED_LOOP_SCRIPT[:4],
    "xyz" * 30,  # the drift guard fires
    *CLOSED_LOOP_SCRIPT[4:-1],
    "/good",
    "/reset",
    FACT,
)
KEY = "default/readout"


@dataclass
class Recorded:
    path: Path
    model_dir: Path
    final: dict[str, np.ndarray]  # the memory's state when the chat ended
    events: list[str]  # the guards' and commands' messages


def record_memory_chat(path: Path, model_dir: Path) -> Recorded:
    """Run SCRIPT through a ChatSession with the default adapter (the memory), recorded."""
    with torch.no_grad():
        plastic = build_plastic_model(resolve_model(str(model_dir)), guards=GUARDS)
        learn = ChatLearning(plastic, learning=True)
        learn.engine.prepare()
        recorder = TraceRecorder.attach(plastic, path, seed=5, checkpoint_every=2)
        renderer = InterruptingRenderer()
        renderer.armed_turn = CONTROL
        session = ChatSession(Conversation(plastic, seed=5), renderer, ChatOptions(12))
        attach_learning(session, learn)
        session.run(SCRIPT, interactive=True)
        recorder.close()
        layer = plastic.adapters["default"].layers["readout"]
        output = renderer.out.getvalue()  # type: ignore[attr-defined]
    events = [m for line in output.splitlines() for m in _messages(line)]
    return Recorded(path, model_dir, layer.synapses.state_arrays(), events)


def _messages(line: str) -> list[str]:
    try:
        obj = json.loads(line)
    except ValueError:
        return []
    found = [str(obj.get("message", ""))] + [str(m) for m in obj.get("events", []) or []]
    status = obj.get("status") or {}
    if isinstance(status, dict) and status.get("guard"):
        found.append(str(status["guard"]))
    return [m for m in found if m]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("memory-trace")
    model_dir = save_small_model(root / "model")
    return record_memory_chat(root / "chat.zarr", model_dir)


def test_the_trace_holds_the_memory_and_what_the_chat_did(recorded: Recorded) -> None:
    reader = TraceReader(recorded.path)
    (spec,) = reader.sites
    assert spec.kind == "memory" and spec.key == KEY
    kinds = reader.read("events/kind")
    for kind in (S.MEMORY_READ, S.FORGET, S.REWARD, S.SNAPSHOT, S.RESTORE, S.CAP, S.BLEND):
        assert (kinds == kind).any(), S.EVENT_NAMES[kind]
    # every live token was read by the memory, with the logits the backbone gave it
    assert reader.length(f"{spec.group}/read_id") == reader.n_tokens
    np.testing.assert_array_equal(reader.read(f"{spec.group}/read_id"), reader.read("tokens/id"))
    # the last checkpoint is the memory as the chat left it, bit for bit
    last = reader.checkpoints()[-1].index
    assert max_abs_diff(reader.memory_checkpoint(spec, last), recorded.final) == 0.0
    assert int(recorded.final["sizes"][0]) > 0  # it learnt something after the reset


def test_open_loop_replay_reproduces_every_checkpoint_bit_for_bit(recorded: Recorded) -> None:
    reader = TraceReader(recorded.path)
    result = OpenLoopReplay(reader, ReplayOptions(verify=True)).run()
    assert result.exact and len(result.checkpoint_diffs) == len(reader.checkpoints()) >= 4
    assert result.max_abs_diff == 0.0
    state = result.synapses[KEY].state_arrays()
    assert max_abs_diff(state, recorded.final) == 0.0


def test_closed_loop_replay_is_exact(recorded: Recorded) -> None:
    reader = TraceReader(recorded.path)
    with torch.no_grad():
        result = closed_loop(reader, resolve_model(str(recorded.model_dir)))
    try:
        assert not result.counterfactual and result.exact, result.divergence_message()
        assert result.max_abs_diff == 0.0
        layer = result.model.adapters["default"].layers["readout"]
        assert max_abs_diff(layer.synapses.state_arrays(), recorded.final) == 0.0
    finally:
        result.release()


def run_json(argv: list[str], capsys) -> dict:
    """The CLI in-process with --json; its one JSON object (exit code 0 asserted)."""
    code, out, err = run_all([*argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_cli_verify_and_closed_loop_pass(recorded: Recorded, capsys) -> None:
    report = run_json(["replay", str(recorded.path), "--verify"], capsys)
    assert report["exact"] and report["max_abs_diff"] == 0.0
    assert report["verdict"].startswith("reproduces the recorded weights")
    argv = ["replay", str(recorded.path), "--closed-loop", "--model", str(recorded.model_dir)]
    report = run_json(argv, capsys)
    assert report["exact"] and report["verdict"].startswith("exact: all")


def counterfactual(recorded: Recorded, capsys, *sets: str, closed: bool = False) -> dict:
    argv = ["replay", str(recorded.path), "--model", str(recorded.model_dir)]
    argv += [item for s in sets for item in ("--set", s)]
    return run_json([*argv, "--closed-loop"] if closed else argv, capsys)


@pytest.mark.parametrize(
    "setting", ["adapter.mixer_rate=0.05", "decay=0.5", "adapter.orders=[1,2,3]"]
)
def test_a_counterfactual_setting_changes_the_outcome(recorded: Recorded, capsys, setting) -> None:
    """Open loop with another memory setting (its own, its rule's, or one that changes the
    tables' layout): the replay learns something else, and the recorded user text is
    scored under the replayed state, the recorded one and the frozen backbone."""
    report = counterfactual(recorded, capsys, setting)
    assert report["counterfactual"] and not report["exact"]
    text = report["text"]
    assert text["bytes"] > 100
    assert text["replayed_bits_per_byte"] != pytest.approx(text["recorded_bits_per_byte"], abs=1e-4)
    assert text["recorded_bits_per_byte"] < text["frozen_bits_per_byte"]
    assert report["weights"][KEY]["distance_to_recorded"] > 0.0


def test_the_recorded_settings_give_the_recorded_outcome(recorded: Recorded, capsys) -> None:
    """--set with the recorded values is a counterfactual that learns what was recorded."""
    report = counterfactual(recorded, capsys, "adapter.mixer_rate=0.001", "decay=0.95")
    assert report["weights"][KEY]["distance_to_recorded"] == 0.0
    text = report["text"]
    assert text["replayed_bits_per_byte"] == text["recorded_bits_per_byte"]


def test_closed_loop_counterfactual_changes_the_outcome(recorded: Recorded, capsys) -> None:
    report = counterfactual(recorded, capsys, "adapter.gate_tau=5", closed=True)
    assert report["counterfactual"]
    assert report["weights"][KEY]["distance_to_recorded"] > 0.0


def test_another_rule_for_the_memory_is_one_line(recorded: Recorded, capsys) -> None:
    code, err = run_main(["replay", str(recorded.path), "--rule", "rstdp"], capsys)
    assert_one_line_error(code, err, "learns with 'detector_stdp' only")


def test_replay_out_writes_the_replayed_memory(recorded: Recorded, tmp_path: Path, capsys):
    from plastic.plasticity import PlasticModel

    out = tmp_path / "adapter"
    argv = ["replay", str(recorded.path), "--out", str(out), "--model", str(recorded.model_dir)]
    code, _, err = run_all(argv, capsys)
    assert code == 0, err
    with torch.no_grad():
        model = PlasticModel.from_pretrained(resolve_model(str(recorded.model_dir)), out)
    state = model.adapters["default"].layers["readout"].synapses.state_arrays()
    assert max_abs_diff(state, recorded.final) == 0.0


def test_inspect_shows_what_the_memory_read_and_how_it_grew(recorded: Recorded, capsys):
    report = run_json(["inspect", str(recorded.path), "--weights"], capsys)
    site = report["overview"]["sites"][KEY]
    assert site["kind"] == "memory"
    reader = TraceReader(recorded.path)
    observed = (reader.read("tokens/flags") & S.GENERATED) == 0
    learning = (reader.read("tokens/flags") & S.LEARNING) != 0
    assert 0 < site["bytes_learnt"] <= int((observed & learning).sum())
    assert site["bytes_of_replies"] > 0 and site["credits"] >= 2 and site["boundaries"] >= 2
    assert site["drift_blends"] >= 1 and site["caps"] >= 1 and site["undo_restores"] >= 2
    last = site["checkpoints"][-1]
    assert last["detectors"] == int(recorded.final["sizes"][0])
    assert last["synapses"] == int(recorded.final["sizes"][1])
    turns = report["weights"][KEY]["turns"]
    assert turns and any(t["norm"] > 0 for t in turns)
    code, text, err = run_all(["inspect", str(recorded.path)], capsys)
    assert code == 0, err
    assert f"{KEY} (memory): read {site['bytes_learnt']:,} bytes learnt from" in text
    assert f"{last['detectors']:,} detectors" in text


# -- a half-written trace --------------------------------------------------------------
def test_a_half_written_trace_reads_to_its_last_commit_and_records_on(tmp_path: Path):
    """The writer dies in the middle of a turn after the memory's reads, a saved state and
    a checkpoint reached the disk: readers clip to the commit marker (verify exact), a new
    session continues the store, and the whole store still replays exactly."""
    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    path = tmp_path / "torn.zarr"
    with torch.no_grad():
        plastic = build_plastic_model(resolve_model(str(model_dir)), guards=GUARDS)
        recorder = TraceRecorder.attach(plastic, path, checkpoint_every=1)
        conv = Conversation(plastic, seed=0)
        chat_turn(plastic, conv, FACT, reply_tokens=6)
        committed = dict(recorder.committed)
        engine = plastic.engine
        engine.begin_turn()
        engine.observe(conv, (FACT * 4).encode())
        for tap in recorder.taps:  # what a killed writer leaves: data past the marker
            tap.flush_steps()
        recorder._save_states()
        recorder._checkpoint()
        recorder.writer.close()  # no commit
        recorder._lock.release()
    spec = TraceReader(path).sites[0]
    import zarr

    blob = zarr.open_array(str(path / spec.group / "checkpoint_blob"), mode="r")
    assert blob.shape[0] > committed["sites"]["site0"]["checkpoint_bytes"]  # torn
    reader = TraceReader(path)
    assert reader.committed == committed
    result = OpenLoopReplay(reader, ReplayOptions(verify=True)).run()
    assert result.max_abs_diff == 0.0
    reader.check()

    with torch.no_grad():  # a new chat records on into the store
        plastic = build_plastic_model(resolve_model(str(model_dir)), guards=GUARDS)
        with TraceRecorder.attach(plastic, path, checkpoint_every=1):
            conv = Conversation(plastic, seed=1)
            chat_turn(plastic, conv, CONTROL, reply_tokens=6)
        final = plastic.adapters["default"].layers["readout"].synapses.state_arrays()
    reader = TraceReader(path)
    assert len(reader.sessions) == 2
    reader.check()
    result = OpenLoopReplay(reader, ReplayOptions(verify=True)).run()
    assert result.max_abs_diff == 0.0
    assert max_abs_diff(result.synapses[KEY].state_arrays(), final) == 0.0


@pytest.mark.parametrize("array", ["read_logits", "state_blob", "checkpoint_blob"])
def test_a_damaged_memory_chunk_is_one_line(recorded: Recorded, tmp_path: Path, capsys, array):
    store = tmp_path / "copy.zarr"
    shutil.copytree(recorded.path, store)
    damage(chunk_of(store, f"sites/site0/{array}"), "flip")
    code, err = run_main(["replay", str(store), "--verify"], capsys)
    assert_one_line_error(code, err, "trace damaged at", array)
    code, err = run_main(["inspect", str(store), "--check"], capsys)
    assert_one_line_error(code, err, "trace damaged at", array)


def test_inspect_rates_say_how_the_memory_predicted_the_user_text(recorded: Recorded, capsys):
    """`inspect --rates` replays the memory's reads token by token (exactly: it ends at the
    last checkpoint) and reports, over the learnt bytes, per-order detector hit rates (a
    longer context's detector exists only where the shorter ones do), the gate, and the
    memory's bits/byte against the backbone's on the text it was taught (FACT, repeated)."""
    reading = run_json(["inspect", str(recorded.path), "--rates"], capsys)["rates"][KEY]["reading"]
    assert reading["exact"] is True
    assert reading["orders"] == [1, 2, 3, 4, 5, 6, 8, 12, 16]
    rates = reading["hit_rate"]
    assert all(0.0 <= r <= 1.0 for r in rates) and rates[0] > 0.5
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert 0.0 < reading["gate_mean"] < 1.0 and reading["gate_sparkline"]
    bits = reading["bits_per_byte"]
    assert bits["memory"] < bits["backbone"]
    reader = TraceReader(recorded.path)
    flags = reader.read("tokens/flags")
    learnt = int((((flags & S.GENERATED) == 0) & ((flags & S.LEARNING) != 0)).sum())
    assert 0 < reading["learnt_bytes"] <= learnt
    code, text, err = run_all(["inspect", str(recorded.path), "--rates"], capsys)
    assert code == 0, err
    assert f"(memory) on the {reading['learnt_bytes']:,} learnt bytes:" in text


@pytest.mark.parametrize(
    "setting, needle",
    [("adapter.bogus=1", "unknown memory setting"), ("decay=7", "decay must lie in")],
)
def test_a_bad_memory_setting_is_one_line(recorded: Recorded, capsys, setting, needle) -> None:
    code, err = run_main(["replay", str(recorded.path), "--set", setting], capsys)
    assert_one_line_error(code, err, needle)


def test_a_long_turn_reaches_the_writer_before_it_ends(tmp_path: Path, monkeypatch) -> None:
    """Reads are handed to the writer every FLUSH_ROWS rows (not held until the turn ends),
    and the trace still replays exactly."""
    import plastic.replay.memory_tap as tap_module

    monkeypatch.setattr(tap_module, "FLUSH_ROWS", 32)
    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    path = tmp_path / "long.zarr"
    with torch.no_grad():
        plastic = build_plastic_model(resolve_model(str(model_dir)), guards=GUARDS)
        recorder = TraceRecorder.attach(plastic, path)
        (tap,) = recorder.taps
        handed: list[int] = []
        real = tap.flush_steps

        def counting() -> None:
            handed.append(tap._buffered)
            real()

        tap.flush_steps = counting  # type: ignore[method-assign]
        conv = Conversation(plastic, seed=0)
        engine = plastic.engine
        engine.begin_turn()
        engine.observe(conv, (FACT * 3).encode())
        assert any(n >= 32 for n in handed)  # handed over inside the turn
        engine.end_turn()
        recorder.close()
    result = OpenLoopReplay(TraceReader(path), ReplayOptions(verify=True)).run()
    assert result.max_abs_diff == 0.0


def test_recording_attached_mid_turn_replays_exactly(tmp_path: Path) -> None:
    """Attached after the turn began, the recorder never saw the turn's snapshot: the cap,
    the drift guard's back-off and its revert against it are logged as saved states
    (`load`), with the back-off's begin weights set in the current tables; replay is exact."""
    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    path = tmp_path / "mid.zarr"
    with torch.no_grad():
        plastic = build_plastic_model(resolve_model(str(model_dir)), guards=GUARDS)
        conv = Conversation(plastic, seed=0)
        chat_turn(plastic, conv, FACT, reply_tokens=4)
        engine = plastic.engine
        engine.begin_turn()
        recorder = TraceRecorder.attach(plastic, path, checkpoint_every=1)
        engine.observe(conv, ("xyz" * 30).encode())
        report = engine.end_turn()
        recorder.close()
        final = plastic.adapters["default"].layers["readout"].synapses.state_arrays()
    assert any("drift guard" in m for m in report.messages())
    reader = TraceReader(path)
    assert (reader.read("events/kind") == S.LOAD).any()
    result = OpenLoopReplay(reader, ReplayOptions(verify=True)).run()
    assert result.max_abs_diff == 0.0
    assert max_abs_diff(result.synapses[KEY].state_arrays(), final) == 0.0


def test_readout_recording_attached_mid_turn_replays_exactly(tmp_path: Path, harm_reward):
    """The same for the readout adapter: the drift guard's back-off against a turn
    snapshot the recorder never saw (its begin weights saved and loaded, then marked)."""
    from plastic.plasticity import AdapterConfig, PlasticModel
    from tests.replay.conftest import ADAPTER, HARM
    from tests.replay.conftest import GUARDS as READOUT_GUARDS

    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    path = tmp_path / "mid.zarr"
    with torch.no_grad():
        guards = dataclasses.replace(
            READOUT_GUARDS, drift_margin=0.0, drift_backoff=1, max_turn_update=1e6
        )
        plastic = PlasticModel(resolve_model(str(model_dir)), guards=guards)
        plastic.add_adapter("default", AdapterConfig(rule="rstdp", **ADAPTER))
        conv = Conversation(plastic, seed=0)
        chat_turn(plastic, conv, FACT, reply_tokens=4)
        engine = plastic.engine
        engine.begin_turn()
        recorder = TraceRecorder.attach(plastic, path, checkpoint_every=1)
        HARM["on"] = True
        try:
            engine.observe(conv, ("z" * 200).encode())
        finally:
            HARM["on"] = False
        report = engine.end_turn()
        recorder.close()
        layer = plastic.adapters["default"].layers["readout"]
        layer.synapses.sync()
        final = layer.weights.copy()
    assert any("drift guard" in m for m in report.messages()), report.messages()
    result = OpenLoopReplay(TraceReader(path), ReplayOptions(verify=True)).run()
    assert result.max_abs_diff == 0.0
    np.testing.assert_array_equal(result.weights()[KEY], final)
