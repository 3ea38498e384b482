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


def test_chat_learn_record_records_the_memory_and_replay_verifies_it(
    tmp_path: Path, small_model_dir: Path
) -> None:
    """`plastic chat --learn --record` records the default adapter (the memory); the trace
    replays exactly open loop (--verify) and closed loop."""
    script = tmp_path / "s.txt"
    script.write_text("hello there\nhello there\n/good\n")
    base = ["chat", "--model", str(small_model_dir), "--script", str(script), "--json"]
    store = tmp_path / "t.zarr"
    recorded = CliRunner().invoke(app, [*base, "--learn", "--record", str(store)])
    assert recorded.exit_code == 0, recorded.output
    from plastic.replay.reader import TraceReader

    assert [s.kind for s in TraceReader(store).sites] == ["memory"]
    for extra in (["--verify"], ["--closed-loop", "--model", str(small_model_dir)]):
        result = CliRunner().invoke(app, ["replay", str(store), "--json", *extra])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["exact"]
