"""CLI error paths of chat, eval and bench: one line on stderr, no traceback, exit code 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plastic.cli.main import main


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """Run the real entry point in-process; return (exit code, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("command", [["chat", "--prompt", "hi"], ["bench", "chat"]])
def test_missing_model_dir(tmp_path: Path, capsys, command: list[str]) -> None:
    code, err = run_main([*command, "--model", str(tmp_path / "nope")], capsys)
    assert_one_line_error(code, err, "nope")


def test_corrupt_checkpoint(tmp_path: Path, small_model_dir: Path, capsys) -> None:
    (small_model_dir / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    code, err = run_main(["chat", "--model", str(small_model_dir), "--prompt", "hi"], capsys)
    assert_one_line_error(code, err, "corrupt")


def test_eval_missing_and_empty_data(tmp_path: Path, small_model_dir: Path, capsys) -> None:
    code, err = run_main(
        ["eval", "--data", str(tmp_path / "none.txt"), "--model", str(small_model_dir)], capsys
    )
    assert_one_line_error(code, err, "no such file")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, err = run_main(["eval", "--data", str(empty), "--model", str(small_model_dir)], capsys)
    assert_one_line_error(code, err, "empty")


def test_chat_missing_script(tmp_path: Path, small_model_dir: Path, capsys) -> None:
    code, err = run_main(
        ["chat", "--model", str(small_model_dir), "--script", str(tmp_path / "none.txt")], capsys
    )
    assert_one_line_error(code, err, "--script")


def test_usage_errors_exit_2(capsys) -> None:
    code, _ = run_main(["chat", "--prompt", "x", "--script", "y"], capsys)
    assert code == 2
    code, _ = run_main(["chat", "--temperature", "-1", "--prompt", "x"], capsys)
    assert code == 2


def test_real_process_exit_code_and_stderr(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "plastic", "eval", "--data", str(tmp_path / "missing.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: --data {tmp_path / 'missing.txt'}: no such file"
    ]
