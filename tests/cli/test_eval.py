"""`plastic eval`: bits per byte on stdout, or a JSON object that agrees with `bits_per_byte`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)
from plastic.models.checkpoint import load_model
from plastic.models.evaluate import bits_per_byte

runner = CliRunner()
TEXT = "It was the best of times, it was the worst of times. Ça va? \n".encode() * 12


def test_eval_json_agrees_with_bits_per_byte(tmp_path: Path, small_model_dir: Path) -> None:
    data = tmp_path / "text.txt"
    data.write_bytes(TEXT)
    result = runner.invoke(
        app, ["eval", "--data", str(data), "--model", str(small_model_dir), "--json"]
    )
    assert result.exit_code == 0, result.exception
    report = json.loads(result.stdout)
    expected = bits_per_byte(load_model(small_model_dir), TEXT)
    assert report["bytes"] == len(TEXT)
    assert report["bits_per_byte"] == pytest.approx(expected, rel=1e-6)
    assert report["bits"] == pytest.approx(expected * len(TEXT), rel=1e-6)
    assert set(report["rates"]) == {
        "encoder",
        "blocks.0.mix",
        "blocks.0.ffn",
        "blocks.1.mix",
        "blocks.1.ffn",
    }
    mean_rate = sum(report["rates"].values()) / len(report["rates"])
    assert report["sparsity"] == pytest.approx(1.0 - mean_rate)
    assert (
        report["model"] == json.loads((small_model_dir / "config.json").read_text())["content_hash"]
    )


def test_eval_max_bytes_and_plain_output(tmp_path: Path, small_model_dir: Path) -> None:
    data = tmp_path / "text.txt"
    data.write_bytes(TEXT)
    args = ["eval", "--data", str(data), "--model", str(small_model_dir), "--max-bytes", "100"]
    report = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert report["bytes"] == 100
    expected = bits_per_byte(load_model(small_model_dir), TEXT[:100])
    assert report["bits_per_byte"] == pytest.approx(expected, rel=1e-6)
    plain = runner.invoke(app, args)
    assert plain.exit_code == 0
    assert plain.stdout.startswith(f"{report['bits_per_byte']:.4f} bits/byte over 100 bytes")


def test_plain_output_lists_the_rate_of_every_site(tmp_path: Path, small_model_dir: Path) -> None:
    data = tmp_path / "text.txt"
    data.write_bytes(TEXT)
    args = ["eval", "--data", str(data), "--model", str(small_model_dir)]
    report = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    lines = runner.invoke(app, args).stdout.splitlines()
    assert lines[1].split() == ["site", "rate", "sparsity"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2 : 2 + len(report["rates"])]}
    assert set(rows) == set(report["rates"])
    for name, rate in report["rates"].items():
        assert rows[name] == [f"{rate:.2%}", f"{1 - rate:.1%}"]


def test_progress_reaches_the_whole_file(
    tmp_path: Path, small_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from plastic.cli.chat import render

    seen: list[tuple[str, int, list[int]]] = []

    @contextmanager
    def recording(console, label, total):
        assert console.stderr
        done: list[int] = []
        seen.append((label, total, done))
        yield lambda n, _total: done.append(n)

    monkeypatch.setattr(render, "rich_progress", recording)
    data = tmp_path / "text.txt"
    data.write_bytes(TEXT * 10)
    args = ["eval", "--data", str(data), "--model", str(small_model_dir), "--json"]
    assert runner.invoke(app, args).exit_code == 0
    [(label, total, done)] = seen
    assert (label, total) == ("eval", len(TEXT) * 10)
    assert len(done) > 1 and done == sorted(done) and done[-1] == total
