"""A conversation with a frozen SpikingLM: one continuous token stream, fed and sampled.

A `Conversation` owns the model's recurrent state and its position in the stream.
`feed` advances it over given tokens: a chunked parallel forward (fast prefill), or
token by token so that per-token hooks (site hooks, `on_step` observers) see every
token alone. `generate` samples a reply one token at a time and feeds each sampled
token back, so the reply is part of the stream: a conversation reads
``user text \\n\\n reply \\n\\n user text \\n\\n reply ...``.

Every advance of the state is a single assignment of an immutable `Cursor`
(state, next-token logits, position). A Ctrl-C at any moment therefore leaves the
conversation consistent: what was fed or generated before it is in the state,
nothing is half applied, and `Generation.tokens` is derived from the position.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from plastic.errors import ConfigError
from plastic.models.spiking_lm import LMOutput, LMState, SpikingLM
from plastic.models.tokenizer import BOS, EOS, PAD, SEP, ByteTokenizer

TURN_SEPARATOR = b"\n\n"  # ends a user turn and, when generated, a reply
NEWLINE = ord("\n")
DEFAULT_PREFILL_CHUNK = 1024
_NEVER_SAMPLED = (BOS, PAD, SEP)  # specials that make no sense inside a reply
_WHITESPACE = frozenset(b" \t\r\n")

StepHook = Callable[["StepEvent"], None]
StopCondition = Callable[[Sequence[int]], "str | None"]


def format_turn(text: str | bytes) -> bytes:
    """The bytes fed for one user turn: the text (raw bytes kept as they are) + a blank line."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return data.rstrip(b"\r\n") + TURN_SEPARATOR


def stop_at_line_end(tokens: Sequence[int]) -> str | None:
    """Stop at the end of the line being continued (a completion, not a reply)."""
    return "line_end" if tokens and tokens[-1] == NEWLINE else None


def stop_at_blank_line(tokens: Sequence[int]) -> str | None:
    """Stop once the reply has some text and then ends with a blank line ("\\n\\n")."""
    n = len(TURN_SEPARATOR)
    if len(tokens) <= n or tuple(tokens[-n:]) != tuple(TURN_SEPARATOR):
        return None
    has_text = any(t not in _WHITESPACE for t in tokens[:-n])  # stops at the first text byte
    return "blank_line" if has_text else None


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: temperature 0 is greedy; top_k None or 0 keeps all."""

    temperature: float = 0.8
    top_k: int | None = 40

    def validate(self) -> Sampling:
        if not self.temperature >= 0.0:  # also rejects NaN
            raise ConfigError(f"temperature must be >= 0 (got {self.temperature})")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"top-k must be >= 0 (got {self.top_k})")
        return self


def sample_next(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    """Pick the next token id from next-token `logits` [V].

    <bos>, <pad> and <sep> are never sampled (the byte model only ever saw them as
    input). Greedy decoding (temperature 0) ignores the generator.
    """
    logits = logits.detach().float().clone()
    banned = [i for i in _NEVER_SAMPLED if i < logits.shape[0]]
    if banned:
        logits[banned] = float("-inf")
    if sampling.temperature == 0.0:
        return int(torch.argmax(logits))
    logits = logits / sampling.temperature
    k = sampling.top_k
    if k and k < logits.shape[0]:
        kth = torch.topk(logits, k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


class Cursor(NamedTuple):
    """Where a conversation stands: replaced as a whole, never mutated."""

    state: LMState
    next_logits: torch.Tensor  # [V]: logits of the token after `position`
    position: int  # tokens fed since the last reset (the <bos> included)


@dataclass(frozen=True)
class StepEvent:
    """Passed to `Conversation.on_step` observers after every forward pass."""

    tokens: torch.Tensor  # [S] the token ids just processed (S == 1 token by token)
    output: LMOutput
    position: int  # the conversation position after these tokens
    phase: str  # "feed" or "generate"


@dataclass
class SiteRates:
    """Token-weighted running mean of the spike rate of every site."""

    sums: dict[str, float] = field(default_factory=dict)
    tokens: int = 0

    def add(self, rates: dict[str, torch.Tensor], n_tokens: int) -> None:
        """Add the mean rates of one forward pass over `n_tokens` tokens."""
        if not rates or n_tokens <= 0:
            return
        values = torch.stack([r.detach().float() for r in rates.values()]).tolist()
        for name, value in zip(rates, values, strict=True):
            self.sums[name] = self.sums.get(name, 0.0) + value * n_tokens
        self.tokens += n_tokens

    def mean(self) -> dict[str, float]:
        """Mean spike rate per site (fraction of neuron-timesteps with a spike)."""
        return {k: v / self.tokens for k, v in self.sums.items()} if self.tokens else {}

    def sparsity(self) -> float | None:
        """1 - the mean over sites of their spike rate; None before any token."""
        rates = self.mean()
        return 1.0 - sum(rates.values()) / len(rates) if rates else None


@dataclass(frozen=True)
class FeedResult:
    """What one `feed` call did (`tokens` < requested if it was interrupted)."""

    tokens: int
    seconds: float
    rates: SiteRates


class Conversation:
    """A model, its recurrent state and its position: one continuous token stream.

    `seed` seeds the sampling generator (None: a fresh random seed, see `.seed`).
    `token_by_token` makes `feed` run one token per forward pass by default, so
    per-token learning hooks see each token; otherwise prompts are fed in parallel
    chunks of `prefill_chunk` tokens. Observers in `on_step` are called after every
    forward pass with a `StepEvent`.
    """

    def __init__(
        self,
        model: SpikingLM,
        *,
        seed: int | None = None,
        prefill_chunk: int = DEFAULT_PREFILL_CHUNK,
        token_by_token: bool = False,
    ) -> None:
        if prefill_chunk < 1:
            raise ConfigError(f"prefill chunk must be >= 1 (got {prefill_chunk})")
        self.model = model
        self.tokenizer = ByteTokenizer()
        self.prefill_chunk = prefill_chunk
        self.token_by_token = token_by_token
        self.on_step: list[StepHook] = []
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.seed = int(self.generator.seed())
        else:
            self.seed = int(seed)
            self.generator.manual_seed(self.seed)
        self.rates = SiteRates()  # since the last reset
        self._cursor: Cursor
        self.reset()

    # -- state ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def position(self) -> int:
        return self._cursor.position

    @property
    def state(self) -> LMState:
        return self._cursor.state

    @property
    def next_logits(self) -> torch.Tensor:
        return self._cursor.next_logits

    def snapshot(self) -> Cursor:
        """The current cursor; `restore` returns to it (tensors are never modified in place)."""
        return self._cursor

    def restore(self, cursor: Cursor) -> None:
        """Go back to a cursor from `snapshot` (the sampling generator is not rewound)."""
        self._cursor = cursor

    def reset(self) -> None:
        """Forget everything: zero neuron state, then the <bos> that starts every stream."""
        state = self.model.initial_state(1)
        out = self.model.step(torch.tensor([BOS], device=self.device), state)
        self._cursor = Cursor(out.state, out.logits[0, -1], 1)
        self.rates = SiteRates()
        self.rates.add(out.rates, 1)

    # -- feeding ----------------------------------------------------------------------
    def to_ids(self, data: str | bytes | Iterable[int] | torch.Tensor) -> torch.Tensor:
        """Token ids [S] of `data`: str is UTF-8 encoded, bytes are taken as raw byte tokens."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, bytes | bytearray):
            ids = torch.frombuffer(bytearray(data), dtype=torch.uint8).long() if data else None
            ids = torch.zeros(0, dtype=torch.long) if ids is None else ids
        elif isinstance(data, torch.Tensor):
            ids = data.detach().reshape(-1).long()
        else:
            ids = torch.tensor(list(data), dtype=torch.long)
        vocab = self.model.config.vocab_size
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ConfigError(f"token ids must lie in [0, {vocab})")
        return ids.to(self.device)

    @torch.no_grad()
    def feed(
        self,
        data: str | bytes | Iterable[int] | torch.Tensor,
        *,
        token_by_token: bool | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FeedResult:
        """Advance the state over `data`; return how many tokens went in and their rates.

        `token_by_token` (default: the conversation's setting) runs one forward pass per
        token; otherwise chunks of `prefill_chunk` run in parallel. `progress(done,
        total)` is called after each chunk. On Ctrl-C the state holds every finished
        chunk and the KeyboardInterrupt propagates.

        In parallel mode an input longer than the model's memory horizon (see
        `SpikingLM.memory_horizon`) is not simulated before its last horizon tokens:
        the state is decayed over the skipped part instead, which gives the same state
        to 1e-12 (a 1 MB paste costs what ~2k tokens cost). Observers and the rates then
        see only the simulated tail.
        """
        ids = self.to_ids(data)
        per_token = self.token_by_token if token_by_token is None else token_by_token
        chunk = 1 if per_token else self.prefill_chunk
        rates = SiteRates()
        start_pos, t0 = self.position, time.perf_counter()
        first = 0
        if not per_token:
            first = max(0, ids.numel() - self.model.memory_horizon())
        if first:
            cur = self._cursor
            state = self.model.decay_state(cur.state, first)
            self._cursor = Cursor(state, cur.next_logits, cur.position + first)
        for start in range(first, ids.numel(), chunk):
            piece = ids[start : start + chunk]
            self._advance(piece, rates, "feed")
            if progress is not None:
                progress(start + piece.numel(), ids.numel())
        return FeedResult(self.position - start_pos, time.perf_counter() - t0, rates)

    def _advance(self, ids: torch.Tensor, rates: SiteRates, phase: str) -> LMOutput:
        """One forward pass over `ids` [S] from the current cursor; commit it atomically."""
        cur = self._cursor
        out = self.model(ids.view(1, -1), cur.state)
        self._cursor = Cursor(out.state, out.logits[0, -1], cur.position + ids.numel())
        rates.add(out.rates, ids.numel())
        self.rates.add(out.rates, ids.numel())
        for hook in self.on_step:
            hook(StepEvent(ids, out, self._cursor.position, phase))
        return out

    # -- generating -------------------------------------------------------------------
    def generate(
        self,
        max_new_tokens: int,
        sampling: Sampling | None = None,
        *,
        stop: StopCondition | None = stop_at_blank_line,
    ) -> Generation:
        """Return an iterator over reply token ids, sampled and fed one at a time.

        It stops after `max_new_tokens`, at <eos>, or when `stop(reply_tokens)`
        returns a reason. Every yielded token is already part of the state.
        """
        if max_new_tokens < 0:
            raise ConfigError(f"max new tokens must be >= 0 (got {max_new_tokens})")
        return Generation(self, max_new_tokens, (sampling or Sampling()).validate(), stop)


class Generation(Iterator[int]):
    """One reply being generated: iterate it for token ids; read its stats at any time."""

    def __init__(
        self,
        conversation: Conversation,
        max_new_tokens: int,
        sampling: Sampling,
        stop: StopCondition | None,
    ) -> None:
        self.conversation = conversation
        self.max_new_tokens = max_new_tokens
        self.sampling = sampling
        self.stop_condition = stop
        self.start_position = conversation.position
        self.rates = SiteRates()
        self.seconds = 0.0  # time spent sampling and stepping the model
        self.stop_reason: str | None = None
        self._sampled: list[int] = []

    @property
    def tokens(self) -> list[int]:
        """Reply tokens that are in the conversation state (a sampled token whose step
        was interrupted is not)."""
        return self._sampled[: self.conversation.position - self.start_position]

    @property
    def text(self) -> str:
        return self.conversation.tokenizer.decode(self.tokens)

    @property
    def tokens_per_s(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else 0.0

    def stop(self, reason: str = "interrupted") -> None:
        """End the reply early (e.g. on Ctrl-C); tokens so far stay in the conversation."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def __iter__(self) -> Generation:
        return self

    @torch.no_grad()
    def __next__(self) -> int:
        if self.stop_reason is not None:
            raise StopIteration
        done = self.tokens
        if len(done) >= self.max_new_tokens:
            self.stop_reason = "max_new_tokens"
            raise StopIteration
        conv = self.conversation
        t0 = time.perf_counter()
        try:
            token = sample_next(conv.next_logits, self.sampling, conv.generator)
            del self._sampled[len(done) :]  # drop a token whose step never completed
            self._sampled.append(token)
            conv._advance(torch.tensor([token], device=conv.device), self.rates, "generate")
        finally:
            self.seconds += time.perf_counter() - t0
        if token == EOS:
            self.stop_reason = "eos"
        elif self.stop_condition is not None:
            self.stop_reason = self.stop_condition(self.tokens)
        return token
