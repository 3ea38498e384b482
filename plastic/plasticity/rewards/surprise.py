"""`surprise`: reward observed text by how much worse it was predicted than usual (novelty).

For every *observed* token x (user turns, streams; never the model's own reply, so the
model cannot reinforce itself), with b = -log2 p(x | context) its surprise in bits:

    z = (b - mu) / max(sigma, min_std)          mu, sigma: running statistics of b
    r = scale * clip(sign * z, -clip, clip),    then r <- max(r, floor)
    mu, sigma^2 <- exponential moving averages over ~tau tokens (updated after r)

With the defaults (sign +1, floor 0) a token that was harder to predict than usual gives a
positive reward and any other token gives none: "learn what surprises you". As a repeated
fact is learnt it stops being surprising and its reward falls to zero by itself. sign -1
rewards predictable text instead; a negative floor lets easy tokens depress the weights.
No reward during the first `warmup` observed tokens (the statistics are not yet
meaningful), none for a token predicted with p > 2^-min_bits (by default 1/2: it is no
surprise in absolute terms, however hard the rest of the stream is, so learning a
repeated text stops once it is known), and a reward of exactly 0 is no reward event.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import ConfigError
from plastic.plasticity.rewards.protocol import OBSERVE, REWARD_API_VERSION, TokenEvent
from plastic.rules.params import RuleParams, param, require, require_positive

name = "surprise"
api_version = REWARD_API_VERSION
summary = "Observed tokens: reward = standardised surprise (bits vs running mean); novelty."


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of the surprise reward."""

    sign: float = param(1.0, unit="-", doc="+1 rewards surprising text, -1 predictable text")
    scale: float = param(1.0, unit="reward", doc="reward per standard deviation of surprise")
    tau: float = param(200.0, unit="tokens", doc="averaging time of the surprise statistics")
    warmup: int = param(16, unit="tokens", doc="observed tokens before the first reward")
    clip: float = param(3.0, unit="std", doc="|z| is capped here")
    floor: float = param(0.0, unit="reward", doc="rewards below are raised to it (-inf: none)")
    min_std: float = param(0.25, unit="bits", doc="lower bound of sigma (avoids huge z)")
    min_bits: float = param(
        1.0, unit="bits", doc="tokens predicted better than this (p > 2^-min_bits) give none"
    )

    def __post_init__(self) -> None:
        owner = "surprise.Params"
        require(self.sign in (1.0, -1.0), f"{owner}.sign must be +1 or -1, got {self.sign!r}")
        require_positive(owner, scale=self.scale, clip=self.clip, min_std=self.min_std)
        require(self.tau >= 1.0, f"{owner}.tau must be >= 1 token, got {self.tau!r}")
        require(self.warmup >= 0, f"{owner}.warmup must be >= 0, got {self.warmup!r}")
        require(not math.isnan(self.floor), f"{owner}.floor must be a number")
        require(
            math.isfinite(self.min_bits) and self.min_bits >= 0,
            f"{owner}.min_bits must be >= 0, got {self.min_bits!r}",
        )


class State(NamedTuple):
    """Running surprise statistics and the last reward given."""

    mean: float = 0.0  # mu, bits
    var: float = 0.0  # sigma^2, bits^2
    count: int = 0  # observed tokens seen
    last_reward: float = 0.0
    last_bits: float = 0.0


def params_from_dict(data: Mapping[str, Any]) -> Params:
    """Params from a JSON-able dict (ConfigError on unknown names or bad values)."""
    try:
        return Params.from_dict(data)  # type: ignore[return-value]
    except Exception as exc:  # RuleError from the shared helpers: a config problem here
        raise ConfigError(str(exc)) from None


def init_state(params: Params) -> State:
    return State()


def on_token(event: TokenEvent, state: State, params: Params) -> tuple[float | None, State]:
    """The reward of one token (None for generated tokens and during warm-up)."""
    if event.phase != OBSERVE or not math.isfinite(event.bits):
        return None, state
    bits = event.bits
    reward = None
    if state.count >= params.warmup and bits >= params.min_bits:
        sigma = max(math.sqrt(state.var), params.min_std)
        z = params.sign * (bits - state.mean) / sigma
        value = params.scale * min(max(z, -params.clip), params.clip)
        value = max(value, params.floor)
        reward = value if value != 0.0 else None
    count = state.count + 1
    alpha = 1.0 / min(count, params.tau)
    delta = bits - state.mean
    mean = state.mean + alpha * delta
    var = (1.0 - alpha) * (state.var + alpha * delta * delta)
    last = reward if reward is not None else 0.0
    return reward, State(mean, var, count, last, bits)


def on_feedback(value: float, state: State, params: Params) -> tuple[float | None, State]:
    """Surprise ignores /good and /bad."""
    return None, state


def baseline(state: State) -> float:
    """The running mean surprise (bits/token), for /stats."""
    return state.mean


def state_to_dict(state: State) -> dict[str, np.ndarray]:
    return {"stats": np.array(state[:2] + (float(state.count),) + state[3:], np.float64)}


def state_from_dict(data: Mapping[str, Any]) -> State:
    stats = np.asarray(data["stats"], np.float64).reshape(-1)
    if stats.shape != (5,):
        raise ConfigError(f"surprise state must hold 5 numbers, got {stats.shape}")
    mean, var, count, last_reward, last_bits = (float(v) for v in stats)
    return State(mean, var, int(count), last_reward, last_bits)
