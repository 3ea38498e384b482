"""`delta_mixer`: the context memory's mixer, a three-factor delta rule on mixing synapses.

The memory's experts (the backbone's prediction p_0 and the detector chains p_1..p_K) drive
the byte neurons through mixing synapses a_i; the prediction is their geometric mixture
(product of experts, Hinton 2002; in compression, PAQ's mixer, Mahoney 2005, and its
multi-symbol form, Mattern 2013 "Mixing strategies in data compression"):

    q(b) = exp(sum_i a_i log p_i(b)) / Z

One weight set is active per byte, chosen by a context (the longest detector present and
its confidence). When byte y arrives, the active set learns by the delta rule (Widrow &
Hoff 1960), a local three-factor product: presynaptic activity log p_i(b) at each byte
neuron b, times the error of that neuron, 1[b = y] - q(b), the teaching signal (third
factor) that the arriving byte gives:

    a_i <- a_i + rate * sum_b (1[b = y] - q(b)) log p_i(b)
         = a_i + rate * (log p_i(y) - E_q[log p_i])

which is gradient descent on -log q(y). Without the teaching signal (rate 0) the mixture
stays at its initial trust; with a teaching signal that comes from another byte (a
shuffled teacher, `plastic bench adapt`'s sham) it learns the wrong trust.

`pre` is (inputs [n, 256] log probabilities, their expectations [n] under q, the set),
`post` the byte that arrived; weights are float64 [sets, n].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import RuleError
from plastic.rules.params import RuleParams, param, require
from plastic.rules.protocol import RULE_API_VERSION

name = "delta_mixer"
api_version = RULE_API_VERSION
summary = "Delta rule on mixing synapses: input at the arriving byte minus its expectation."
paper = (
    "Widrow & Hoff (1960) IRE WESCON 4:96 (delta rule); Mahoney (2005) Florida Tech "
    "CS-2005-16 (PAQ mixing); Mattern (2013) DCC (geometric mixing of many symbols)"
)
uses_reward = False  # its third factor is the teaching signal in `step`, not a reward
backends = ("numba",)
adapter_kinds = ("memory",)  # the context memory's rule; no other adapter kind runs it


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of delta_mixer."""

    rate: float = param(0.001, unit="1/nat", doc="learning rate of the mixing synapses")
    init_top: float = param(
        0.8, unit="1", doc="initial weight of the longest chain (the backbone gets 1 - this)"
    )

    def __post_init__(self) -> None:
        require(0.0 <= self.rate <= 1.0, f"rate must lie in [0, 1], got {self.rate}")
        require(0.0 <= self.init_top <= 1.0, f"init_top must lie in [0, 1], got {self.init_top}")


class MixerState(NamedTuple):
    """Nothing beyond the weights: steps are counted for /stats."""

    steps: int = 0


def params_from_dict(data: Mapping[str, Any]) -> Params:
    return Params.from_dict(data)  # type: ignore[return-value]


def init_state(
    n_pre: int, n_post: int, params: Params, *, backend: str = "numba", mask: Any = None
) -> MixerState:
    if backend not in backends:
        raise RuleError(f"delta_mixer runs on {', '.join(backends)}, not {backend!r}")
    return MixerState()


def initial_weights(sets: int, inputs: int, params: Params) -> np.ndarray:
    """Every set trusts the longest chain `init_top` and the backbone the rest."""
    weights = np.zeros((sets, inputs), np.float64)
    weights[:, 0] = 1.0 - params.init_top
    weights[:, inputs - 1] = params.init_top
    return weights


def step(pre: tuple, post: np.ndarray, weights: np.ndarray, state: MixerState, params: Params):
    """One delta-rule step of the set pre[2] for inputs pre[0], expectations pre[1]."""
    from plastic.kernels_numba.cpu_memory import mixer_step

    logs, expect, active = pre
    target = int(np.asarray(post).reshape(-1)[0])
    mixer_step(weights, int(active), logs, expect, target, params.rate)
    return weights, state._replace(steps=state.steps + 1)


def apply_reward(reward: float, weights: np.ndarray, state: MixerState, params: Params):
    """Scalar rewards do not reach the mixer (its third factor is the teaching signal)."""
    return weights, state


def flush(weights: np.ndarray, state: MixerState, params: Params, rows: Any = None):
    return weights, state


def state_to_dict(state: MixerState) -> dict[str, np.ndarray]:
    return {"steps": np.array([state.steps], np.int64)}


def state_from_dict(data: Mapping[str, Any], *, backend: str = "numba") -> MixerState:
    try:
        return MixerState(int(np.asarray(data["steps"]).reshape(-1)[0]))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise RuleError(f"delta_mixer state unreadable: {exc}") from None
