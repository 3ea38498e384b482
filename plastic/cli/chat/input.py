"""Where chat input lines come from: a terminal prompt, a script file, or a pipe.

Lines from files and pipes are raw bytes (the model is byte-level, so bytes that are
not UTF-8 are fed as they are). The terminal prompt is prompt_toolkit's
`PromptSession` with a slash-command completer and a history file under the user's
data directory; an unwritable home falls back to in-memory history. Ctrl-C at the
prompt clears the line; Ctrl-D ends the input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from plastic.errors import ConfigError

PROMPT = "you> "
HISTORY_MAX_CHARS = 10_000  # longer entries (pastes) are not written to the history file


def script_lines(path: Path) -> Iterator[bytes]:
    """The lines of a script file as raw bytes; a missing file is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"--script {path}: no such file")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"--script {path}: {exc.strerror or exc}") from None
    return _lines_of(handle, close=True)


def _lines_of(handle: BinaryIO, *, close: bool) -> Iterator[bytes]:
    try:
        yield from handle
    finally:
        if close:
            handle.close()


def stream_lines(stream: object) -> Iterator[bytes]:
    """Raw byte lines of a text or binary stream (stdin when it is not a terminal)."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        yield from binary
        return
    for line in stream:  # type: ignore[attr-defined]
        yield line if isinstance(line, bytes) else line.encode("utf-8", errors="replace")


def history_file() -> Path | None:
    """`$XDG_DATA_HOME/plastic/chat_history` (default ~/.local/share), if it can be written."""
    try:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "plastic" / "chat_history"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except (OSError, RuntimeError):  # read-only or missing home
        return None
    return path


def make_history(path: Path | None):  # -> prompt_toolkit History
    """A file history that never fails the chat (falls back to memory, skips huge pastes)."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    class SafeFileHistory(FileHistory):
        def load_history_strings(self) -> Iterable[str]:
            try:
                return list(super().load_history_strings())
            except OSError:
                return []

        def store_string(self, string: str) -> None:
            if len(string) > HISTORY_MAX_CHARS:
                return
            with contextlib.suppress(OSError):
                super().store_string(string)

    return SafeFileHistory(str(path)) if path is not None else InMemoryHistory()


def slash_completer(names: Callable[[], list[str]]):  # -> prompt_toolkit Completer
    """Completes `/na` to the command names from `names()` (read on every keystroke)."""
    from prompt_toolkit.completion import Completer, Completion

    class SlashCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if not text.startswith("/") or " " in text:
                return
            for name in names():
                if name.startswith(text):
                    yield Completion(name, start_position=-len(text))

    return SlashCompleter()


def terminal_lines(command_names: Callable[[], list[str]]) -> Iterator[str]:
    """Lines typed at an interactive prompt, until Ctrl-D."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session = PromptSession(
        history=make_history(history_file()),
        completer=slash_completer(command_names),
        complete_while_typing=True,
    )
    while True:
        try:
            with patch_stdout(raw=True):
                line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return
        yield line


def terminal_confirm(question: str) -> bool:
    """Ask a yes/no question at the terminal; no (and Ctrl-C, Ctrl-D) unless "y"."""
    from prompt_toolkit.shortcuts import confirm

    try:
        return bool(confirm(question))
    except (KeyboardInterrupt, EOFError):
        return False
