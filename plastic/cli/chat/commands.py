"""Slash commands of the chat REPL: a dispatcher with prefix matching, and the built-ins.

A command is a method `cmd_<name>(self, args: str) -> CommandResult` of a
`SlashCommands` subclass, or a function registered with `SlashCommands.register`;
the first line of its docstring is its `/help` text. A typed name may be any
unambiguous prefix (`/st` runs `/stats`); an exact name always wins. An unknown or
ambiguous command is an error reported to the user, never text sent to the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plastic.cli.chat.session import ChatSession

PREFIX = "/"
CommandFunc = Callable[[str], "CommandResult"]


@dataclass
class CommandResult:
    """What a command reports: a message for people and data for `--json` (merged in)."""

    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


class CommandError(Exception):
    """An unknown or ambiguous command name (shown to the user; the REPL goes on)."""


def is_command(line: str) -> bool:
    """True for `/name ...`; `//text` is an escape that sends `/text` to the model."""
    return line.startswith(PREFIX) and not line.startswith(PREFIX * 2)


def summary(func: Callable[..., Any]) -> str:
    """First line of a command's docstring: its one-line help."""
    doc = inspect.getdoc(func) or ""
    return doc.splitlines()[0] if doc else ""


class SlashCommands:
    """The REPL's command set: built-ins below, more by subclassing or `register`."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self._extra: dict[str, CommandFunc] = {}

    # -- registry ---------------------------------------------------------------------
    def register(self, name: str, func: CommandFunc) -> None:
        """Add (or replace) the command `/name`; `func(args)` returns a CommandResult."""
        self._extra[name.lstrip(PREFIX)] = func

    def commands(self) -> dict[str, CommandFunc]:
        """Every command by name (without the slash), in alphabetical order."""
        found: dict[str, CommandFunc] = {
            attr[4:]: getattr(self, attr) for attr in dir(self) if attr.startswith("cmd_")
        }
        found.update(self._extra)
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        """Command names with their slash, for completion and help."""
        return [PREFIX + name for name in self.commands()]

    def resolve(self, typed: str) -> str:
        """The command a typed name (without slash) means; CommandError if none or several."""
        commands = self.commands()
        if typed in commands:
            return typed
        matches = [name for name in commands if name.startswith(typed)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise CommandError(f"unknown command {PREFIX}{typed} (type /help for the list)")
        options = ", ".join(PREFIX + m for m in matches)
        raise CommandError(f"ambiguous command {PREFIX}{typed}: it could be {options}")

    def dispatch(self, line: str) -> tuple[str | None, CommandResult]:
        """Run the command on `line` (`/name args`); return its resolved name and result."""
        typed, _, args = line[len(PREFIX) :].strip().partition(" ")
        try:
            name = self.resolve(typed)
        except CommandError as exc:
            return None, CommandResult(str(exc), ok=False)
        return name, self.commands()[name](args.strip())

    # -- built-ins --------------------------------------------------------------------
    def cmd_help(self, args: str) -> CommandResult:
        """Show the commands (any unambiguous prefix works: /st = /stats)."""
        helps = {PREFIX + name: summary(func) for name, func in self.commands().items()}
        width = max(map(len, helps))
        lines = [f"{name:<{width}}  {text}" for name, text in helps.items()]
        lines.append("Anything else is sent to the model; start a line with // to send a '/'.")
        lines.append("Ctrl-C stops a reply, Ctrl-D (or /quit) leaves.")
        return CommandResult("\n".join(lines), {"commands": helps})

    def cmd_reset(self, args: str) -> CommandResult:
        """Reset the neuron state: the model forgets the conversation."""
        self.session.reset()
        pos = self.session.conversation.position
        return CommandResult(f"neuron state reset (position {pos})", {"position": pos})

    def cmd_stats(self, args: str) -> CommandResult:
        """Show spike rates per site for the last turn and the conversation so far."""
        stats = self.session.stats()
        last, total = stats["last_turn_rates"], stats["conversation_rates"]
        width = max([len("sparsity"), *map(len, total)])
        lines = [f"{'site':<{width}}  {'last turn':>9}  {'conversation':>12}"]
        for site, rate in total.items():
            turn = f"{last[site]:.4f}" if site in last else "-"
            lines.append(f"{site:<{width}}  {turn:>9}  {rate:>12.4f}")
        turn_sp, total_sp = stats["last_turn_sparsity"], stats["conversation_sparsity"]
        turn_text = f"{turn_sp:.1%}" if turn_sp is not None else "-"
        total_text = f"{total_sp:.1%}" if total_sp is not None else "-"
        lines.append(f"{'sparsity':<{width}}  {turn_text:>9}  {total_text:>12}")
        lines.append(f"position {stats['position']} tokens since the last reset")
        return CommandResult("\n".join(lines), stats)

    def cmd_complete(self, args: str) -> CommandResult:
        """Continue TEXT as it stands, to the end of its line: /complete The capital of X is"""
        if not args:
            return CommandResult("usage: /complete TEXT (the model continues TEXT)", ok=False)
        turn = self.session.turn(args.encode("utf-8"), complete=True)
        return CommandResult("", {"completion": turn.reply})

    def cmd_quit(self, args: str) -> CommandResult:
        """Leave the chat (Ctrl-D does the same)."""
        self.session.quit_requested = True
        return CommandResult("bye")
