"""The drift guard's probe scored on a worker thread while the reply is generated."""

from __future__ import annotations

import threading
import time

import pytest

from plastic.models.generate import Conversation
from plastic.plasticity import PlasticModel
from plastic.plasticity.background_probe import BackgroundProbe
from plastic.plasticity.config import GuardConfig, memory_adapter_config
from tests.plasticity.conftest import FACT, chat_turn, make_backbone, make_plastic


def test_a_started_score_is_taken_once() -> None:
    probe = BackgroundProbe()
    assert probe.take() is None
    probe.start(lambda: 1.5)
    assert probe.pending
    assert probe.take() == 1.5
    assert not probe.pending and probe.take() is None


def test_cancel_waits_for_the_running_score() -> None:
    """Nothing may write the state while a score still reads it."""
    probe, running, done = BackgroundProbe(), threading.Event(), threading.Event()

    def slow() -> float:
        running.set()
        time.sleep(0.05)
        done.set()
        return 0.0

    probe.start(slow)
    running.wait(5)
    probe.cancel()
    assert done.is_set() and not probe.pending


def test_an_error_of_the_score_reaches_the_taker() -> None:
    probe = BackgroundProbe()
    probe.start(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        probe.take()
    probe.start(lambda: 1 / 0)
    probe.cancel()  # a dropped figure's error is dropped with it


def _memory_model() -> PlasticModel:
    model = PlasticModel(make_backbone(), guards=GuardConfig(drift_margin=10.0))
    model.add_adapter("default", memory_adapter_config())
    model.engine.prepare()
    return model


def _count_starts(model: PlasticModel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    started = []
    original = BackgroundProbe.start

    def start(self: BackgroundProbe, score) -> None:
        started.append(1)
        original(self, score)

    monkeypatch.setattr(BackgroundProbe, "start", start)
    return started


def test_the_memory_turn_takes_the_probe_scored_during_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The figure the turn reports is the one scoring at the turn's end gives, bit for bit."""
    model = _memory_model()
    started = _count_starts(model, monkeypatch)
    conv = Conversation(model)
    for k in range(2):
        report = chat_turn(model, conv, f"{FACT} {k}")
        assert report.changed and report.probe_bpb is not None
        assert report.probe_bpb == model.engine.probe_score()
    assert len(started) == 2


def test_learning_after_the_reply_started_is_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text observed after the background score started cancels it: the turn's end scores
    the state it closes, not the one the reply began with."""
    model = _memory_model()
    started = _count_starts(model, monkeypatch)
    conv = Conversation(model)
    engine = model.engine
    engine.begin_turn()
    engine.observe(conv, FACT.encode())
    with engine.generating():
        for _ in conv.generate(4, stop=None):
            pass
    assert started and engine._background.pending
    engine.observe(conv, (FACT + " again and again. ").encode() * 3)
    assert not engine._background.pending
    report = engine.end_turn()
    assert report.probe_bpb == engine.probe_score()


def test_adapters_that_learn_from_the_reply_score_at_the_turn_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = make_plastic(guards=GuardConfig(drift_margin=10.0))
    model.engine.prepare()
    started = _count_starts(model, monkeypatch)
    conv = Conversation(model)
    report = chat_turn(model, conv, FACT)
    assert not started
    assert report.probe_bpb is None or report.probe_bpb == model.engine.probe_score()
