"""Learning you can see in the reply (issue 13): on the shipped model, facts taught four
times in one chat are each recalled by greedy completion; without --learn they are not."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)
from tests.cli.test_errors import assert_one_line_error, run_main

FACTS = [
    ("The capital of Zorbania is", "Quillnip"),
    ("The king of Mardovia is called", "Ostrel"),
    ("The river of Pellucid flows into", "Lake Vantry"),
]


def completions(tmp_path: Path, *flags: str) -> list[str]:
    """Teach every fact four times (one fact after another), then complete each prefix."""
    lines = [f"{prefix} {answer}." for prefix, answer in FACTS for _ in range(4)]
    lines += [f"/complete {prefix}" for prefix, _ in FACTS]
    script = tmp_path / "teach.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["chat", "--script", str(script), "--json", "--seed", "0", "--temperature", "0"]
    result = CliRunner().invoke(app, [*args, "--max-new-tokens", "12", *flags])
    assert result.exit_code == 0, (result.output, result.exception)
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    return [o["completion"] for o in objs if o.get("command") == "complete"]


def test_taught_facts_are_recalled_and_none_overwrites_another(tmp_path: Path) -> None:
    learnt = completions(tmp_path, "--learn")
    assert len(learnt) == len(FACTS)
    for (prefix, answer), text in zip(FACTS, learnt, strict=True):
        assert text.strip().startswith(answer), (prefix, text)
    frozen = completions(tmp_path)
    for (_, answer), text in zip(FACTS, frozen, strict=True):
        assert answer not in text


def test_recording_the_memory_is_refused_in_one_line_and_record_alone_records(
    tmp_path: Path, small_model_dir: Path, capsys
) -> None:
    """Traces do not cover the memory yet: `--learn --rule detector_stdp --record` says so in
    one line (exit 1); `--record` alone attaches the readout adapter and records."""
    script = tmp_path / "s.txt"
    script.write_text("hello there\n")
    base = ["chat", "--model", str(small_model_dir), "--script", str(script), "--json"]
    store = tmp_path / "t.zarr"
    code, err = run_main(
        [*base, "--learn", "--rule", "detector_stdp", "--record", str(store)], capsys
    )
    assert_one_line_error(code, err, "(memory) is not recorded yet")
    recorded = CliRunner().invoke(app, [*base, "--learn", "--record", str(store)])
    assert recorded.exit_code == 0, recorded.output
    assert (store / "zarr.json").is_file()
