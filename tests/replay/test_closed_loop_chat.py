"""Closed-loop replay of a chat recorded through the chat session itself is exact, whatever
the chat did: /score first, /good then /bad, /undo, a reply cut short by Ctrl-C."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from plastic.cli.chat.learning import attach_learning
from plastic.cli.chat.render import JsonRenderer
from plastic.cli.chat.session import ChatOptions, ChatSession
from plastic.models.checkpoint import resolve_model
from plastic.models.generate import Conversation
from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model
from plastic.replay.closed_loop import closed_loop
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from tests.plasticity.conftest import CONTROL, FACT
from tests.replay.conftest import save_small_model

EXACT = 1e-6
SCRIPT = (
    f"/score {FACT}",
    f"Remember: {FACT}",
    "/good",
    "/bad",
    f"Again: {FACT}",
    "/undo",
    "/undo",
    CONTROL,  # its reply is interrupted (Ctrl-C) after a few tokens
    f"/score {CONTROL}",
    f"Once more: {FACT}",
    "/bad",
)


class InterruptingRenderer(JsonRenderer):
    """Raises KeyboardInterrupt (Ctrl-C) on the third reply token of the armed turn."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), Console(file=io.StringIO()))
        self.armed_turn = CONTROL
        self.armed = False
        self.pieces = 0

    def user(self, text: str) -> None:
        self.armed = text == self.armed_turn
        self.pieces = 0

    def reply_text(self, text: str) -> None:
        self.pieces += 1
        if self.armed and self.pieces == 3:
            self.armed = False
            raise KeyboardInterrupt


def record_session_chat(path: Path, model_dir: Path) -> np.ndarray:
    """Run SCRIPT through a learning ChatSession recorded into `path`; the final weights."""
    with torch.no_grad():
        learn = ChatLearning(
            build_plastic_model(resolve_model(str(model_dir)), rule="rstdp"), learning=True
        )
        learn.engine.prepare()  # as `plastic chat` does before the first turn
        recorder = TraceRecorder.attach(learn.model, path, seed=5)
        renderer = InterruptingRenderer()
        session = ChatSession(
            Conversation(learn.model, seed=5), renderer, ChatOptions(max_new_tokens=12)
        )
        attach_learning(session, learn)
        session.run(SCRIPT, interactive=True)
        recorder.close()
        layer = learn.model.adapters["default"].layers["readout"]
        layer.synapses.sync()
        return layer.weights.copy()


def test_closed_loop_is_exact_on_a_chat_with_every_command(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    final = record_session_chat(tmp_path / "chat.zarr", model_dir)
    reader = TraceReader(tmp_path / "chat.zarr")
    result = closed_loop(reader, resolve_model(str(model_dir)))
    assert result.tokens == reader.n_tokens
    for entry in reader.network_sites():  # one row of backbone spike counts per token
        assert reader.network_counts(entry["site"]).shape[0] == reader.n_tokens
    assert np.any(final != 0)  # it learnt something
    assert max(result.final_diff.values()) <= EXACT
    replayed = result.weights()["default/readout"]
    assert float(np.abs(replayed.astype(np.float64) - final).max()) <= EXACT


def test_closed_loop_cli_says_where_a_replay_diverged_and_fails(tmp_path: Path, capsys) -> None:
    """A trace whose recorded weights were changed after the fact: the CLI names the first
    checkpoint that differs and exits non-zero; the untouched trace passes."""
    import zarr

    from plastic.cli.main import main
    from tests.cli.test_errors import run_main

    torch.set_num_threads(1)
    model_dir = save_small_model(tmp_path / "model")
    path = tmp_path / "chat.zarr"
    record_session_chat(path, model_dir)
    argv = ["replay", str(path), "--closed-loop", "--model", str(model_dir)]
    main(argv)  # exact: returns
    assert "verdict: exact" in capsys.readouterr().out
    reader = TraceReader(path)
    assert len(reader.checkpoints()) >= 2
    spec = reader.sites[0]
    array = zarr.open_array(str(path / spec.group / "checkpoint_weights"), mode="r+")
    tampered = np.asarray(array[1])
    tampered[0, 0] += 0.5
    array[1] = tampered
    code, err = run_main(argv, capsys)
    assert code == 1
    assert "diverged after checkpoint 0" in err and "by checkpoint 1" in err
