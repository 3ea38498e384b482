"""The typer application objects that every command module registers on.

Command modules import `app` (or `bench_app`) from here and decorate their functions;
`plastic.cli.main` imports all command modules and runs the app. Heavy libraries
(torch, numba) are imported inside command bodies so that `plastic --help` is instant.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    name="plastic",
    help="A frozen spiking language model whose plastic adapters keep learning while it runs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="rich",
)

bench_app = typer.Typer(
    help="Benchmarks: speed and memory figures, reported as ratios measured in one run.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(bench_app, name="bench")

# Set by the global --debug option: re-raise project errors with their traceback.
DEBUG = {"on": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """plastic: talk to a spiking LM whose adapters learn as it runs."""
    DEBUG["on"] = debug


def json_line(obj: Any) -> str:
    """One line of valid JSON: non-finite floats (never valid JSON) become null."""
    return json.dumps(finite(obj), allow_nan=False) + "\n"


def emit_result(result: dict, output: Path | None, json_out: bool) -> bool:
    """A benchmark's result: written to `output` (if given, indented JSON) and to stdout as
    one JSON line with --json; True if printed (the caller then prints nothing else)."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if json_out:
        sys.stdout.write(json_line(result))
    return json_out


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: replace them by null (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
