"""The chat session: turns user lines into commands or model turns, and reports each.

`ChatSession.handle(line)` is the whole REPL step, shared by the interactive prompt,
`--script` and `--prompt`: a slash command is dispatched, an empty line is ignored
with a note, anything else is one turn (fed as the user's bytes + a blank line, then
a reply generated until a blank line or `max_new_tokens`). Ctrl-C during a turn
stops it; what was fed and generated so far stays in the conversation.

Extension points for later features (learning, rewards, adapters):
- `session.commands.register(name, func)` or a `SlashCommands` subclass adds commands;
- `session.status_fields` (callables `turn -> dict`) add fields to the status line
  and to each `--json` turn object;
- `session.on_reset` callables run after `/reset`;
- `session.conversation.on_step` observers see every forward pass, and
  `conversation.token_by_token = True` feeds prompts one token per pass;
- `session.learner` (a `TurnLearner`, e.g. `plastic chat --learn`'s ChatLearning) is told
  when a turn begins and ends, reads the user's bytes in place of `conversation.feed`,
  and wraps the reply's generation. Its `end_turn` runs even when Ctrl-C ends the turn,
  with further Ctrl-C held back until it returns, so the guards always close a turn.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from plastic.cli.chat.commands import PREFIX, SlashCommands, is_command
from plastic.cli.chat.render import Renderer
from plastic.errors import PlasticError, one_line
from plastic.models.generate import (
    Conversation,
    Generation,
    Sampling,
    StopCondition,
    format_turn,
    stop_at_blank_line,
    stop_at_line_end,
)

USER_ECHO_CHARS = 1000  # longer user lines are shortened in reports (the model gets all)
PROGRESS_MIN_TOKENS = 8192  # show a prefill progress bar for prompts at least this long

StatusField = Callable[["TurnResult"], dict[str, Any]]
Advance = Callable[[int, int], None]


class TurnLearner(Protocol):
    """What learns from a chat's turns (see `plastic.plasticity.chat_learning.ChatLearning`)."""

    def begin_turn(self) -> None: ...
    def observe(
        self, conversation: Conversation, data: bytes, *, progress: Advance | None
    ) -> Any: ...
    def generating(self) -> AbstractContextManager[None]: ...
    def end_turn(self) -> Any: ...


@dataclass(frozen=True)
class ChatOptions:
    """How replies are generated."""

    max_new_tokens: int = 200
    sampling: Sampling = field(default_factory=Sampling)
    stop: StopCondition | None = stop_at_blank_line


@dataclass(frozen=True)
class TurnResult:
    """One user turn and its reply, with the figures of the status line."""

    index: int  # 1-based turn number
    user: str  # the user's text (shortened past USER_ECHO_CHARS)
    user_bytes: int
    reply: str  # without the blank line that ended it
    tokens: int  # reply tokens generated (all are in the conversation)
    tokens_per_s: float  # reply tokens per second of generation
    seconds: float  # generation time
    prompt_tokens: int  # tokens fed for the user turn
    prefill_seconds: float
    sparsity: float | None  # 1 - mean spike rate over sites, over this turn's tokens
    rates: dict[str, float]  # mean spike rate per site over this turn's tokens
    stop: str  # blank_line, max_new_tokens, eos or interrupted
    position: int  # conversation position after the turn

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shorten(text: str, limit: int = USER_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


class ChatSession:
    """A conversation, the options of its replies, its commands and where output goes."""

    def __init__(
        self, conversation: Conversation, renderer: Renderer, options: ChatOptions | None = None
    ) -> None:
        self.conversation = conversation
        self.renderer = renderer
        self.options = options or ChatOptions()
        self.commands = SlashCommands(self)
        self.status_fields: list[StatusField] = []
        self.on_reset: list[Callable[[], None]] = []
        self.learner: TurnLearner | None = None
        # asks the user a yes/no question (an interactive prompt only; None: never ask)
        self.confirm: Callable[[str], bool] | None = None
        self.quit_requested = False
        self.turns = 0
        self.last_turn: TurnResult | None = None

    # -- the REPL step ----------------------------------------------------------------
    def run(self, lines: Iterable[bytes | str], *, interactive: bool = False) -> None:
        """Handle lines until they run out or a command asks to quit.

        Interactive sessions survive a Ctrl-C anywhere (a reply always does).
        """
        for line in lines:
            try:
                self.handle(line)
            except KeyboardInterrupt:
                if not interactive:
                    raise
                self.renderer.note("interrupted")
            except (OSError, PlasticError) as exc:  # a full disk, a bad path: the chat goes on
                self.renderer.note(f"error: {one_line(exc)}")
            if self.quit_requested:
                break

    def handle(self, line: bytes | str) -> TurnResult | None:
        """Handle one input line: a command, an empty line, or a turn (returned)."""
        raw = line.encode("utf-8", errors="replace") if isinstance(line, str) else bytes(line)
        raw = raw.rstrip(b"\r\n")
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            self.renderer.note("empty line: nothing sent (type /help for commands)")
            return None
        if is_command(text):
            name, result = self.commands.dispatch(text)
            self.renderer.command(shorten(text), name, result)
            return None
        if text.startswith(PREFIX * 2):
            raw = raw[len(PREFIX) :]
        return self.turn(raw)

    def turn(self, user: bytes, *, complete: bool = False) -> TurnResult:
        """Feed one user turn, stream the reply, report it; Ctrl-C ends it early.

        `complete`: the text is continued as it stands (no turn break; `/complete`), and
        the continuation stops at the end of its line.
        """
        conv = self.conversation
        text = user.decode("utf-8", errors="replace")
        self.renderer.user(shorten(text))
        data = bytes(user) if complete else format_turn(user)
        stop = stop_at_line_end if complete else self.options.stop
        start, gen, feed_s = conv.position, None, 0.0
        rates_before = dict(conv.rates.sums), conv.rates.tokens
        learner = self.learner
        if learner is not None:
            learner.begin_turn()
        try:
            feed_s = self._feed(data)
            gen = conv.generate(self.options.max_new_tokens, self.options.sampling, stop=stop)
            with learner.generating() if learner is not None else nullcontext():
                self._stream(gen)
        except KeyboardInterrupt:
            if gen is not None:
                gen.stop("interrupted")
        finally:
            if learner is not None:
                with interrupts_deferred():
                    learner.end_turn()
        result = self._result(text, len(user), start, gen, feed_s, rates_before)
        self.turns += 1
        self.last_turn = result
        self.renderer.reply_end(result, self.status(result))
        return result

    def _feed(self, data: bytes) -> float:
        """Feed the turn's bytes (with a progress bar when long); return seconds taken."""
        if len(data) < PROGRESS_MIN_TOKENS:
            return self._read(data, None)
        with self.renderer.progress("reading", len(data)) as advance:
            return self._read(data, advance)

    def _read(self, data: bytes, progress: Advance | None) -> float:
        """The user's bytes into the conversation: through the learner when there is one."""
        if self.learner is not None:
            return self.learner.observe(self.conversation, data, progress=progress).seconds
        return self.conversation.feed(data, progress=progress).seconds

    def _stream(self, gen: Generation) -> None:
        """Print the reply as it is generated (incomplete UTF-8 is held back)."""
        decoder = self.conversation.tokenizer.stream_decoder()
        self.renderer.reply_start()
        for token in gen:
            piece = decoder.push(token)
            if piece:
                self.renderer.reply_text(piece)
        tail = decoder.flush()
        if tail:
            self.renderer.reply_text(tail)

    def _result(
        self,
        text: str,
        user_bytes: int,
        start: int,
        gen: Generation | None,
        feed_s: float,
        rates_before: tuple[dict[str, float], int],
    ) -> TurnResult:
        conv = self.conversation
        reply_tokens = len(gen.tokens) if gen is not None else 0
        # the turn's rates: what the conversation accumulated since the turn began
        sums, tokens = rates_before
        n = conv.rates.tokens - tokens
        rates = {k: (v - sums.get(k, 0.0)) / n for k, v in conv.rates.sums.items()} if n else {}
        return TurnResult(
            index=self.turns + 1,
            user=shorten(text),
            user_bytes=user_bytes,
            reply=gen.text.strip("\n") if gen is not None else "",
            tokens=reply_tokens,
            tokens_per_s=gen.tokens_per_s if gen is not None else 0.0,
            seconds=gen.seconds if gen is not None else 0.0,
            prompt_tokens=conv.position - start - reply_tokens,
            prefill_seconds=feed_s,
            sparsity=1.0 - sum(rates.values()) / len(rates) if rates else None,
            rates=rates,
            stop=(gen.stop_reason if gen is not None else None) or "interrupted",
            position=conv.position,
        )

    # -- state and figures ------------------------------------------------------------
    def reset(self) -> None:
        """Reset the neuron state (the sampling generator goes on) and tell observers."""
        self.conversation.reset()
        for hook in self.on_reset:
            hook()

    def status(self, turn: TurnResult) -> dict[str, Any]:
        """Status-line fields of a turn: tokens, tokens/s, sparsity, then extension fields."""
        fields: dict[str, Any] = {
            "tokens": turn.tokens,
            "tokens_per_s": turn.tokens_per_s,
            "sparsity": turn.sparsity,
        }
        if turn.stop not in ("blank_line", "line_end", "eos"):
            fields["stop"] = turn.stop
        for provider in self.status_fields:
            fields.update(provider(turn))
        return fields

    def stats(self) -> dict[str, Any]:
        """Spike rates per site: last turn and whole conversation (since the last reset)."""
        conv = self.conversation
        last = self.last_turn
        return {
            "position": conv.position,
            "turns": self.turns,
            "last_turn_rates": last.rates if last else {},
            "last_turn_sparsity": last.sparsity if last else None,
            "conversation_rates": conv.rates.mean(),
            "conversation_sparsity": conv.rates.sparsity(),
        }


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C back while the block runs (so it cannot stop half way), then raise it.

    Only the main thread can set signal handlers; elsewhere the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
