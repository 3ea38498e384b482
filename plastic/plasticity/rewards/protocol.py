"""The contract of reward sources (plugins, like learning rules) and the events they see.

A reward source turns what happens in a stream into the third factor of a learning rule.
It is a module or object with the attributes below; its functions are pure in the Norse
sense, `(event, state, params) -> (reward, state)`, over a small immutable state record:

- `on_token(event, state, params)`: called once per token of the stream whose successor
  is known (`event.token` just arrived; `event.prob` is the probability the model, adapters
  included, gave it one step earlier). `event.phase` says whether the token was *observed*
  (user text, a stream: "observe") or *generated* by the model ("generate").
- `on_feedback(value, state, params)`: called by `/good` (+1) and `/bad` (-1).

Both return a plain float, or None for "no reward event" (nothing is applied to the
weights). Rewards are never tensors: the engine converts them with `float()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from plastic.plugins import contract_problems

REWARD_API_VERSION = 1
OBSERVE, GENERATE = "observe", "generate"
PHASES = (OBSERVE, GENERATE)


class TokenHistory:
    """The most recent tokens of the stream, in a fixed ring buffer (no per-token allocation)."""

    def __init__(self, capacity: int = 256) -> None:
        self._ring = np.zeros(capacity, np.int64)
        self._count = 0

    def push(self, token: int) -> None:
        self._ring[self._count % self._ring.shape[0]] = token
        self._count += 1

    def clear(self) -> None:
        self._count = 0

    def __len__(self) -> int:
        return min(self._count, self._ring.shape[0])

    def recent(self, n: int | None = None) -> list[int]:
        """The last `n` tokens (all kept ones by default), oldest first."""
        size = self._ring.shape[0]
        n = len(self) if n is None else max(0, min(n, len(self)))
        return [int(self._ring[(self._count - n + k) % size]) for k in range(n)]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One token of the stream, as reward sources see it."""

    token: int  # the token that just arrived
    prob: float  # p(token | everything before it), under the backbone plus adapters
    bits: float  # -log2(prob): the model's surprise
    phase: str  # "observe" (user turns, streams) or "generate" (the model's own reply)
    position: int  # tokens of the stream before this one (since the last reset)
    history: TokenHistory  # the tokens before this one


@runtime_checkable
class RewardSource(Protocol):
    """Structural type of a reward source; see the module docstring for the semantics."""

    name: str
    api_version: int
    summary: str
    Params: type  # frozen dataclass deriving from plastic.rules.params.RuleParams

    def params_from_dict(self, data: Mapping[str, Any]) -> Any: ...

    def init_state(self, params: Any) -> Any: ...

    def on_token(self, event: TokenEvent, state: Any, params: Any) -> tuple[float | None, Any]: ...

    def on_feedback(self, value: float, state: Any, params: Any) -> tuple[float | None, Any]: ...

    def state_to_dict(self, state: Any) -> dict[str, np.ndarray]: ...

    def state_from_dict(self, data: Mapping[str, Any]) -> Any: ...


REQUIRED_ATTRIBUTES = (
    "name",
    "api_version",
    "summary",
    "Params",
    "params_from_dict",
    "init_state",
    "on_token",
    "on_feedback",
    "state_to_dict",
    "state_from_dict",
)


def protocol_problems(source: object) -> list[str]:
    """What keeps `source` from satisfying RewardSource (empty list when it does)."""
    return contract_problems(
        source, REQUIRED_ATTRIBUTES, REWARD_API_VERSION, REQUIRED_ATTRIBUTES[4:]
    )
