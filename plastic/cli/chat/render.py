"""Where chat output goes: rich text for people, or one JSON object per line for programs.

Both renderers take the same calls from the session. `RichRenderer` streams the reply
to stdout and puts notes, status lines and progress on stderr. `JsonRenderer` writes
one object per turn or command to stdout (keys: `type` = "turn" or "command", then the
turn's figures or the command's result) and notes to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from rich.console import Console

from plastic.cli.app import finite

if TYPE_CHECKING:
    from plastic.cli.chat.commands import CommandResult
    from plastic.cli.chat.session import TurnResult

Advance = Callable[[int, int], None]  # (done, total)

# How known status fields are shown; any other field shows as "name value".
STATUS_FORMATS: dict[str, Callable[[Any], str]] = {
    "tokens": lambda v: f"{v} token" + ("" if v == 1 else "s"),
    "tokens_per_s": lambda v: f"{v:.1f} tok/s",
    "sparsity": lambda v: "sparsity -" if v is None else f"sparsity {v:.1%}",
    "stop": lambda v: f"stopped: {v.replace('_', ' ')}",
    # learning (`plastic chat --learn`, see plasticity.engine.LearningEngine.status)
    "learn": lambda v: f"learn {v}",
    "reward": lambda v: "reward " + _signed(v),
    "probe_bpb": lambda v: f"probe {v:.3f} b/B",
    "guard": lambda v: f"GUARD {v}",
}


def _signed(value: Any) -> str:
    """A reward or a list of them (one per adapter), e.g. +0.42."""
    if isinstance(value, list | tuple):
        return "/".join(_signed(v) for v in value)
    return "-" if value is None else f"{value:+.3g}"


def format_status(fields: dict[str, Any]) -> str:
    """The status line: each field formatted, joined by ' · '."""
    parts = []
    for name, value in fields.items():
        fmt = STATUS_FORMATS.get(name)
        parts.append(fmt(value) if fmt else f"{name} {value}")
    return " · ".join(parts)


class Renderer(Protocol):
    """What the session calls to show things."""

    def user(self, text: str) -> None: ...
    def reply_start(self) -> None: ...
    def reply_text(self, text: str) -> None: ...
    def reply_end(self, turn: TurnResult, status: dict[str, Any]) -> None: ...
    def command(self, line: str, name: str | None, result: CommandResult) -> None: ...
    def note(self, message: str) -> None: ...
    def progress(self, label: str, total: int) -> Any: ...  # context manager -> Advance


@contextmanager
def rich_progress(console: Console, label: str, total: int) -> Iterator[Advance]:
    """A transient progress bar on `console` (nothing when it is not a terminal)."""
    if not console.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(label, total=total)
    with bar:
        yield lambda done, _total: bar.update(task, completed=done)


class RichRenderer:
    """Replies stream to stdout; notes, status lines and progress go to stderr.

    `echo_input` repeats each user line and command (for `--script` and `--prompt`,
    where no prompt showed it). Newlines at the end of a reply are held back, so the
    blank line that ends a reply is not printed.
    """

    def __init__(
        self, out: Console | None = None, err: Console | None = None, *, echo_input: bool = False
    ) -> None:
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)
        self.echo_input = echo_input
        self._held = ""
        self._started = False

    def user(self, text: str) -> None:
        if self.echo_input:
            self.out.print(f"[bold green]you>[/] {_escape(text)}")

    def reply_start(self) -> None:
        self._held, self._started = "", False

    def reply_text(self, text: str) -> None:
        text = self._held + text
        if not self._started:
            text = text.lstrip("\n")
            self._started = bool(text)
        body = text.rstrip("\n")
        self._held = text[len(body) :]
        if body:
            self.out.print(printable(body), end="", style="cyan", markup=False)

    def reply_end(self, turn: TurnResult, status: dict[str, Any]) -> None:
        self._held = ""
        if self._started:
            self.out.print()
        self._started = False
        self.out.file.flush()
        self.err.print(f"[dim]{_escape(format_status(status))}[/]")

    def command(self, line: str, name: str | None, result: CommandResult) -> None:
        if self.echo_input:
            self.out.print(f"[bold green]you>[/] {_escape(line)}")
        if not result.ok:
            self.err.print(f"[red]{_escape(result.message)}[/]")
        elif result.message:
            self.out.print(printable(result.message), markup=False)

    def note(self, message: str) -> None:
        self.err.print(f"[yellow]{_escape(message)}[/]")

    def progress(self, label: str, total: int) -> Any:
        return rich_progress(self.err, label, total)


# Characters that JSON leaves raw but many line splitters (str.splitlines, JavaScript)
# take for line breaks: escaped, so that a reply never splits its JSON line.
_LINE_BREAKS_ESCAPED = {c: f"\\u{c:04x}" for c in (0x85, 0x2028, 0x2029)}


class JsonRenderer:
    """One JSON object per turn or command on `out`; notes go to `err` as plain lines."""

    def __init__(self, out: TextIO, err: Console | None = None) -> None:
        self.out = out
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)

    def _emit(self, obj: dict[str, Any]) -> None:
        text = json.dumps(finite(obj), ensure_ascii=False, allow_nan=False)
        self.out.write(text.translate(_LINE_BREAKS_ESCAPED) + "\n")
        self.out.flush()

    def user(self, text: str) -> None:
        pass

    def reply_start(self) -> None:
        pass

    def reply_text(self, text: str) -> None:
        pass

    def reply_end(self, turn: TurnResult, status: dict[str, Any]) -> None:
        self._emit({"type": "turn", **turn.to_dict(), **status})

    def command(self, line: str, name: str | None, result: CommandResult) -> None:
        obj: dict[str, Any] = {"type": "command", "input": line, "command": name, "ok": result.ok}
        obj["error" if not result.ok else "message"] = result.message
        self._emit({**obj, **result.data})

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)

    def progress(self, label: str, total: int) -> Any:
        return rich_progress(self.err, label, total)


# C0 controls (but newline and tab) and DEL become their visible Control Pictures; C1
# controls (U+0080..U+009F, e.g. CSI) become U+FFFD: a reply can never drive the terminal.
_VISIBLE = {c: 0x2400 + c for c in range(0x20) if chr(c) not in "\n\t"}
_VISIBLE.update({0x7F: 0x2421, **{c: 0xFFFD for c in range(0x80, 0xA0)}})


def printable(text: str) -> str:
    """`text` with terminal control characters replaced by visible symbols."""
    return text.translate(_VISIBLE)


def _escape(text: str) -> str:
    """Printable text with rich markup escaped."""
    from rich.markup import escape

    return escape(printable(text))
