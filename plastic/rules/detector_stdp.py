"""`detector_stdp`: soft-bounded STDP from context detectors onto byte neurons, metaplastic.

The synapses of the context memory (`plastic.plasticity.memory`). A detector is a
conjunction neuron fed by axonal delay lines (Izhikevich 2006, "Polychronization:
computation with spikes", Neural Comput. 18:245): it fires when one particular sequence of
the last k bytes arrives. Its synapses reach the 256 byte neurons. When detector d fires
and byte y arrives next (the post neuron y spikes after it), every synapse of d steps
(soft bounds, van Rossum, Bi & Turrigiano 2000, J. Neurosci. 20:8812, eq. 2-3):

    w[d, y] <- w[d, y] + eta_d (1 - w[d, y])          (LTP, pre before post)
    w[d, j] <- w[d, j] - eta_d w[d, j],  j != y       (heterosynaptic LTD)

and a missing synapse to y grows with w = eta_d (structural plasticity: a detector that
never fired has no synapses and costs no memory). The rate is metaplastic (Abraham & Bear
1996, Trends Neurosci. 19:126): each detector keeps an activity trace n, and

    n <- decay * n;   eta_d = 1 / (n + 1);   n <- n + 1

so a detector's rate falls as it keeps firing and never falls below 1 - decay. With these
bounds the weights of a detector stay in [0, 1] and sum to 1: they are a running estimate
of P(next byte | detector fired), recent text weighted more.

Third factor (rewards): `/good` and `/bad` credit the last reply (distal reward,
Izhikevich 2007): the reply's bytes step their detectors with rate r * eta_d (r > 0: LTP as
above; r < 0: LTD of the synapse onto the byte the model produced, w <- w (1 - |r| eta_d)).
The eligibility is the reply itself (its bytes and the delay line before it).

Weights here are the memory's synapse pool (`MemoryTables`), not a dense matrix:
`pre` is the array of keys of the detectors that fired, `post` the byte that arrived.
The math lives in `plastic.kernels_numba.memory_math` (one definition for CPU and CUDA).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import RuleError
from plastic.rules.params import RuleParams, param, require
from plastic.rules.protocol import RULE_API_VERSION

name = "detector_stdp"
api_version = RULE_API_VERSION
summary = "Soft-bounded STDP of context detectors onto byte neurons, metaplastic rate."
paper = (
    "van Rossum, Bi & Turrigiano (2000) J. Neurosci. 20:8812 (soft bounds); "
    "Abraham & Bear (1996) Trends Neurosci. 19:126 (metaplasticity); "
    "Izhikevich (2006) Neural Comput. 18:245 (delay-line detectors)"
)
uses_reward = True  # /good and /bad credit the last reply
backends = ("numba", "cuda")
adapter_kinds = ("memory",)  # the context memory's rule; no other adapter kind runs it


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of detector_stdp."""

    decay: float = param(
        0.95, unit="1", doc="activity-trace decay per firing; the rate never falls below 1 - decay"
    )
    prior: float = param(
        2.0, unit="1", doc="escape weight of a detector's fan-out (Witten-Bell): caution when new"
    )
    feedback_rate: float = param(
        1.0, unit="1", doc="rate of a /good or /bad credit, times the detector's rate"
    )

    def __post_init__(self) -> None:
        require(0.0 < self.decay <= 1.0, f"decay must lie in (0, 1], got {self.decay}")
        require(0.0 < self.prior < 1e6, f"prior must lie in (0, 1e6), got {self.prior}")
        require(
            0.0 <= self.feedback_rate <= 1.0,
            f"feedback_rate must lie in [0, 1], got {self.feedback_rate}",
        )


class Eligibility(NamedTuple):
    """The last reply: the delay line before it (latest byte first) and its bytes, and the
    detectors' orders (which delay lines feed a detector)."""

    orders: np.ndarray  # int64 [K]
    context: np.ndarray  # uint8 [max order]
    known: int  # bytes of context that are real
    reply: np.ndarray  # uint8 [R]


def params_from_dict(data: Mapping[str, Any]) -> Params:
    return Params.from_dict(data)  # type: ignore[return-value]


def init_state(
    n_pre: int, n_post: int, params: Params, *, backend: str = "numba", mask: Any = None
) -> Eligibility:
    """No eligibility (nothing replied yet); detectors of every order 1..n_pre."""
    if backend not in backends:
        raise RuleError(f"detector_stdp runs on {', '.join(backends)}, not {backend!r}")
    orders = np.arange(1, n_pre + 1, dtype=np.int64)
    return Eligibility(orders, np.zeros(n_pre, np.uint8), 0, np.zeros(0, np.uint8))


def step(pre: np.ndarray, post: np.ndarray, weights: Any, state: Eligibility, params: Params):
    """Detectors with keys `pre` fired, then byte post[0] arrived: one step of each."""
    from plastic.kernels_numba.cpu_memory import detector_of, detector_step

    target = int(np.asarray(post).reshape(-1)[0])
    for key in np.asarray(pre, np.uint64):
        d = detector_of(weights, np.uint64(key), True)
        detector_step(weights, d, target, params.decay, 1.0)
    return weights, state


def apply_reward(reward: float, weights: Any, state: Eligibility, params: Params):
    """Credit the reply held in the eligibility with `reward` (see the module docstring);
    the eligibility is used up."""
    from plastic.kernels_numba.cpu_memory import credit_bytes

    if state.reply.size == 0 or reward == 0.0 or params.feedback_rate == 0.0:
        return weights, state
    modulation = max(-1.0, min(1.0, float(reward))) * params.feedback_rate
    credit_bytes(
        weights, state.orders, params.decay, state.context, state.known, state.reply, modulation
    )
    return weights, state._replace(reply=np.zeros(0, np.uint8))


def flush(weights: Any, state: Eligibility, params: Params, rows: Any = None):
    """Nothing is deferred: every step is applied at once."""
    return weights, state


def state_to_dict(state: Eligibility) -> dict[str, np.ndarray]:
    return {
        "orders": state.orders.copy(),
        "context": state.context.copy(),
        "known": np.array([state.known], np.int64),
        "reply": state.reply.copy(),
    }


def state_from_dict(data: Mapping[str, Any], *, backend: str = "numba") -> Eligibility:
    try:
        orders = np.asarray(data["orders"], np.int64)
        context = np.asarray(data["context"], np.uint8)
        known = int(np.asarray(data["known"]).reshape(-1)[0])
        reply = np.asarray(data["reply"], np.uint8)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise RuleError(f"detector_stdp state unreadable: {exc}") from None
    if not 0 <= known <= context.shape[0]:
        raise RuleError(f"detector_stdp state: {known} known bytes of {context.shape[0]}")
    if orders.ndim != 1 or orders.size == 0 or int(orders.max()) > context.shape[0]:
        raise RuleError("detector_stdp state: orders do not fit the delay line")
    return Eligibility(orders, context, known, reply)
