"""Learning you can see in the reply (issue 13): on the shipped model, facts taught four
times in one chat are each recalled by greedy completion; without --learn they are not."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)

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
