"""`feedback`: /good and /bad credit the model's last reply through the eligibility traces.

`/good` gives r = +scale and `/bad` r = -scale, applied once to the rule's current
eligibility. This is the distal-reward problem (Izhikevich 2007, Cereb. Cortex 17:2443):
the reward arrives after the reply, and only the synapses still tagged by the eligibility
trace are credited, each in proportion to its tag. A tag decays by exp(-1/tau_eligibility)
per rule step (the readout adapter takes T + 2 steps per token), so the reply's last tokens
are credited most and tokens more than a few tau_eligibility steps back hardly at all.

A reply can be credited once: feedback arms when the model generates a token and disarms
when it is used or when observed text arrives (the next user turn). Further `/good` or
`/bad` before the next reply return None (no reward; the engine reports it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import ConfigError
from plastic.plasticity.rewards.protocol import GENERATE, REWARD_API_VERSION, TokenEvent
from plastic.rules.params import RuleParams, param, require_positive

name = "feedback"
api_version = REWARD_API_VERSION
summary = "/good (+1) and /bad (-1) credit the last reply once, through the eligibility."


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of the feedback reward."""

    scale: float = param(1.0, unit="reward", doc="reward of /good (and minus that of /bad)")

    def __post_init__(self) -> None:
        require_positive("feedback.Params", scale=self.scale)


class State(NamedTuple):
    armed: bool = False  # a reply was generated and not yet credited
    last_reward: float = 0.0
    given: int = 0  # feedback rewards applied so far


def params_from_dict(data: Mapping[str, Any]) -> Params:
    try:
        return Params.from_dict(data)  # type: ignore[return-value]
    except Exception as exc:
        raise ConfigError(str(exc)) from None


def init_state(params: Params) -> State:
    return State()


def on_token(event: TokenEvent, state: State, params: Params) -> tuple[float | None, State]:
    """Generated tokens arm the feedback; observed ones (a new user turn) disarm it."""
    armed = event.phase == GENERATE
    return None, (state if state.armed == armed else state._replace(armed=armed))


def on_feedback(value: float, state: State, params: Params) -> tuple[float | None, State]:
    """r = scale * sign(value) for the last reply, once; None if it was already credited."""
    if not state.armed or not math.isfinite(value) or value == 0.0:
        return None, state
    reward = params.scale * (1.0 if value > 0 else -1.0)
    return reward, State(False, reward, state.given + 1)


def baseline(state: State) -> float:
    return 0.0


def state_to_dict(state: State) -> dict[str, np.ndarray]:
    return {"stats": np.array([float(state.armed), state.last_reward, state.given], np.float64)}


def state_from_dict(data: Mapping[str, Any]) -> State:
    stats = np.asarray(data["stats"], np.float64).reshape(-1)
    if stats.shape != (3,):
        raise ConfigError(f"feedback state must hold 3 numbers, got {stats.shape}")
    return State(bool(stats[0]), float(stats[1]), int(stats[2]))
