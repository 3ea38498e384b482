"""A chat recording killed with SIGKILL mid-turn leaves a store that opens, inspects, replays
(up to the last finished turn) and can be recorded into again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plastic.replay.reader import TraceReader
from tests.plasticity.conftest import FACT
from tests.replay.conftest import save_small_model
from tests.replay.test_cli import run_ok as run_cli

ROOT = Path(__file__).resolve().parents[2]
LONG = (FACT + " ") * 5  # > 256 tokens: raster chunks reach the disk in the middle of a turn


def chat_process(model_dir: Path, store: Path, script: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "plastic.cli.main", "chat", "--model", str(model_dir)]
    argv += ["--learn", "--rule", "rstdp", "--record", str(store), "--script", str(script)]
    argv += ["--json", "--seed", "0"]
    argv += ["--max-new-tokens", "24"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def written_since_commit(store: Path) -> bool:
    """Whether raster chunks were written after the last commit marker (a torn turn)."""
    committed = (store / "zarr.json").stat().st_mtime_ns
    chunks = (store / "sites" / "site0" / "pre" / "c").rglob("*")
    return any(p.is_file() and p.stat().st_mtime_ns > committed for p in chunks)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_turn_leaves_a_usable_store(tmp_path: Path, capsys) -> None:
    model_dir = save_small_model(tmp_path / "model")
    store = tmp_path / "chat.zarr"
    script = tmp_path / "script.txt"
    lines = [LONG, "/good", LONG, LONG, "/undo"] + [LONG] * 20
    script.write_text("\n".join(lines) + "\n")
    proc = chat_process(model_dir, store, script)
    turns: list[dict] = []
    try:
        assert proc.stdout is not None
        while len(turns) < 3:  # 3 replies + /good = 4 turns: one checkpoint committed
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode() if proc.stderr else "chat ended early"
            obj = json.loads(line)
            if obj.get("type") == "turn":
                turns.append(obj)
        deadline = time.monotonic() + 60
        while not written_since_commit(store):  # the next turn has started writing
            assert time.monotonic() < deadline, "the next turn never reached the disk"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert written_since_commit(store)  # torn: chunks newer than the commit marker

    reader = TraceReader(store)
    assert reader.n_tokens == turns[-1]["position"]  # exactly up to the last finished turn
    assert reader.read("tokens/id").shape == (reader.n_tokens,)
    assert "mean rate" in run_cli(["inspect", str(store), "--rates"], capsys)
    verify = json.loads(run_cli(["replay", str(store), "--verify", "--json"], capsys))
    assert verify["max_abs_diff"] == 0.0 and verify["checkpoints"] >= 1

    # recording into the killed store continues it from its last commit
    script.write_text(FACT + "\n")
    again = chat_process(model_dir, store, script)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    reader = TraceReader(store)
    assert len(reader.sessions) == 2
    assert reader.root["sites/site0/pre"].shape[0] == reader.length("sites/site0/pre")  # trimmed
    verify = json.loads(run_cli(["replay", str(store), "--verify", "--json"], capsys))
    assert verify["max_abs_diff"] == 0.0
