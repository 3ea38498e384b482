"""`/save` in the chat: atomic, never onto an existing file or directory unless told to, and
a failed write (a full disk) is one line that leaves the chat and its learning alive."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from plastic.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def chat_json(model_dir: Path, lines: list[str], tmp_path: Path, capsys, *extra: str) -> list:
    script = tmp_path / "script.txt"
    script.write_text("\n".join(lines) + "\n")
    argv = ["chat", "--model", str(model_dir), "--learn", "--script", str(script), "--json"]
    try:
        main([*argv, *extra])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def adapter_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_save_refuses_existing_paths_and_the_chat_goes_on(
    small_model_dir: Path, tmp_path: Path, capsys
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    target = tmp_path / "adapter"
    lines = [f"/save {a_file}", f"/save {target}", f"/save {target}", "/stats"]
    out = chat_json(small_model_dir, lines, tmp_path, capsys)
    assert [o["ok"] for o in out] == [False, True, False, True]  # the script ran to the end
    assert "already exists (a file)" in out[0]["error"] and "force" in out[0]["error"]
    assert "not empty" in out[2]["error"] and "\n" not in out[2]["error"]
    assert a_file.read_text() == "keep me"
    assert adapter_files(target) == ["adapter_config.json", "adapter_model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter.")]  # no temp


def test_save_force_and_chat_force_overwrite(small_model_dir: Path, tmp_path: Path, capsys):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "old.txt").write_text("old")
    out = chat_json(small_model_dir, [f"/save {target} force"], tmp_path, capsys)
    assert out[0]["ok"], out
    assert adapter_files(target) == ["adapter_config.json", "adapter_model.safetensors"]
    (tmp_path / "file").write_text("x")
    out = chat_json(small_model_dir, [f"/save {tmp_path / 'file'}"], tmp_path, capsys, "--force")
    assert out[0]["ok"], out
    assert (tmp_path / "file" / "adapter_config.json").is_file()


def limited_run(argv: list[str], limit: int) -> subprocess.CompletedProcess:
    """Run `argv` with files limited to `limit` bytes (a disk that fills up)."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=300, preexec_fn=limit_files
    )


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_full_disk_during_save_is_one_line_and_the_chat_goes_on(
    small_model_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "adapter"
    script = tmp_path / "script.txt"
    script.write_text(f"/save {target}\n/stats\n")
    argv = [sys.executable, "-m", "plastic.cli.main", "chat", "--model", str(small_model_dir)]
    argv += ["--learn", "--rule", "rstdp", "--script", str(script), "--json"]
    done = limited_run(argv, 16 * 1024)  # the adapter file is larger than that
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["ok"] for o in out] == [False, True]
    assert "cannot save to" in out[0]["error"] and "too large" in out[0]["error"].lower()
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter.")]
    assert "Traceback" not in done.stderr


def test_an_interactive_save_asks_before_replacing(small_model_dir: Path, tmp_path: Path):
    """At a terminal, /save onto an existing directory asks; "no" leaves it as it was."""
    import io

    from rich.console import Console

    from plastic.cli.chat.learning import attach_learning
    from plastic.cli.chat.render import JsonRenderer
    from plastic.cli.chat.session import ChatSession
    from plastic.models.checkpoint import resolve_model
    from plastic.models.generate import Conversation
    from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model

    learn = ChatLearning(build_plastic_model(resolve_model(str(small_model_dir))))
    out = io.StringIO()
    session = ChatSession(Conversation(learn.model), JsonRenderer(out, Console(file=out)))
    attach_learning(session, learn)
    questions, answers = [], [False, True]
    session.confirm = lambda question: questions.append(question) or answers.pop(0)
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "old.txt").write_text("old")
    session.handle(f"/save {target}")
    assert adapter_files(target) == ["old.txt"]
    session.handle(f"/save {target}")
    assert adapter_files(target) == ["adapter_config.json", "adapter_model.safetensors"]
    assert len(questions) == 2 and str(target) in questions[0]
    session.handle(f"/save {tmp_path / 'new'}")  # nothing there: no question
    assert len(questions) == 2 and (tmp_path / "new" / "adapter_config.json").is_file()
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "not saved" in replies[0]["message"] and replies[1]["ok"]
