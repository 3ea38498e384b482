"""`callback_reward(fn)`: a reward source made from a Python callable, for programmatic use.

    def reward(token: int, prob: float, event: TokenEvent) -> float | None: ...
    register_reward(callback_reward(reward))              # name "callback"
    AdapterConfig(reward=("callback",))

`fn(token, prob, event)` is called for every token whose phase is in `phases` (observed
tokens only by default) and returns a reward or None (no reward event). Its result is
read as a plain float (a tensor is detached; NaN or infinity is an error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import ConfigError
from plastic.plasticity.rewards.protocol import OBSERVE, PHASES, REWARD_API_VERSION, TokenEvent
from plastic.rules.backends import reward_value
from plastic.rules.params import RuleParams

RewardFunction = Callable[[int, float, TokenEvent], Any]


@dataclasses.dataclass(frozen=True)
class CallbackParams(RuleParams):
    """A callback reward has no parameters of its own (the callable is the parameter)."""


class CallbackState(NamedTuple):
    last_reward: float = 0.0
    calls: int = 0


class CallbackReward:
    """A reward source whose reward is `fn(token, prob, event)`; see the module docstring."""

    api_version = REWARD_API_VERSION
    Params = CallbackParams

    def __init__(
        self,
        fn: RewardFunction,
        *,
        name: str = "callback",
        phases: tuple[str, ...] = (OBSERVE,),
        summary: str = "",
    ) -> None:
        if not callable(fn):
            raise ConfigError("callback_reward needs a callable fn(token, prob, event)")
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ConfigError(f"unknown phases {unknown}; choose from {', '.join(PHASES)}")
        self.fn = fn
        self.name = name
        self.phases = tuple(phases)
        self.summary = summary or f"Python callback {getattr(fn, '__name__', 'fn')}()"

    def params_from_dict(self, data: Mapping[str, Any]) -> CallbackParams:
        if data:
            raise ConfigError(f"reward {self.name!r} takes no parameters, got {sorted(data)}")
        return CallbackParams()

    def init_state(self, params: CallbackParams) -> CallbackState:
        return CallbackState()

    def on_token(
        self, event: TokenEvent, state: CallbackState, params: CallbackParams
    ) -> tuple[float | None, CallbackState]:
        if event.phase not in self.phases:
            return None, state
        result = self.fn(event.token, event.prob, event)
        if result is None:
            return None, state._replace(calls=state.calls + 1)
        try:
            value = reward_value(result)
        except Exception as exc:
            raise ConfigError(f"reward callback {self.name!r} returned {result!r}: {exc}") from None
        return value, CallbackState(value, state.calls + 1)

    def on_feedback(
        self, value: float, state: CallbackState, params: CallbackParams
    ) -> tuple[float | None, CallbackState]:
        return None, state

    def baseline(self, state: CallbackState) -> float:
        return 0.0

    def state_to_dict(self, state: CallbackState) -> dict[str, np.ndarray]:
        return {"stats": np.array([state.last_reward, state.calls], np.float64)}

    def state_from_dict(self, data: Mapping[str, Any]) -> CallbackState:
        stats = np.asarray(data["stats"], np.float64).reshape(-1)
        if stats.shape != (2,):
            raise ConfigError(f"callback state must hold 2 numbers, got {stats.shape}")
        return CallbackState(float(stats[0]), int(stats[1]))


def callback_reward(
    fn: RewardFunction, *, name: str = "callback", phases: tuple[str, ...] = (OBSERVE,)
) -> CallbackReward:
    """A reward source calling `fn(token, prob, event)`; register it with `register_reward`."""
    return CallbackReward(fn, name=name, phases=phases)
