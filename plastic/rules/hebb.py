"""`hebb`: rate-based Hebbian learning with Oja's normalisation.

Paper: E. Oja (1982), "A simplified neuron model as a principal component analyzer",
J. Math. Biol. 15:267 (eq. 3). For a linear neuron y = w . x with zero-mean inputs, the
weight vector converges to the unit-norm principal eigenvector of the input correlation
matrix. This rule shows the interface is not STDP-shaped: it works on rates, not timing.

Equations (dt = 1 step; pre-major w[i, j]; a = spikes in {0, 1} or any real activity):

    r_pre  <- r_pre  + (a_pre  - r_pre)  / tau_rate         (tau_rate = 1: r = a)
    r_post <- r_post + (a_post - r_post) / tau_rate
    every update_interval steps:
        dW[i, j] = learning_rate r_post[j] (r_pre[i] - r_post[j] w[i, j])   (plastic synapses)
        dW scaled down so that ||dW||_F <= max_update_norm;  w <- clamp(w + dW, w_min, w_max)

The update is dense (Oja's decay term touches every synapse with a nonzero post rate), so it
is applied every `update_interval` steps rather than every step. No third factor: rewards
are validated and ignored.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from plastic.kernels_numba import state_io
from plastic.kernels_numba.coefficients import OjaCoefficients
from plastic.rules.backends import RuleImplementations, reward_value
from plastic.rules.params import (
    RuleParams,
    param,
    require,
    require_bounds,
    require_non_negative,
    require_positive,
)
from plastic.rules.protocol import RULE_API_VERSION
from plastic.rules.traces import rate_gain

name = "hebb"
api_version = RULE_API_VERSION
summary = "Rate-based Hebbian learning with Oja's normalisation (finds principal components)."
paper = "Oja 1982"
uses_reward = False
backends = ("torch", "numba", "cuda")
defers_weights = False  # weight updates are applied at once; flush touches traces only
IMPLEMENTATIONS = RuleImplementations(
    rule=name,
    supported=backends,
    reference="plastic.rules.reference_hebb",
    cpu="plastic.kernels_numba.cpu_hebb",
    cuda="plastic.kernels_numba.cuda_hebb",
    state=state_io.RATE,
)


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of Oja's Hebbian rule (time in steps)."""

    tau_rate: float = param(
        20.0, unit="steps", doc="averaging time of the rate estimates (1: use activity as is)"
    )
    learning_rate: float = param(1e-3, unit="1/rate^2", doc="Oja learning rate eta")
    update_interval: int = param(10, unit="steps", doc="apply the (dense) Oja update every n steps")
    w_min: float = param(-1.0, unit="weight", doc="lower weight bound (hard)")
    w_max: float = param(1.0, unit="weight", doc="upper weight bound (hard)")
    max_update_norm: float = param(
        1.0, unit="weight", doc="cap on the Frobenius norm of one update's weight change"
    )

    def __post_init__(self) -> None:
        owner = "hebb.Params"
        require_positive(owner, max_update_norm=self.max_update_norm)
        require(
            self.tau_rate >= 1.0,
            f"{owner}.tau_rate must be >= 1 step, got {self.tau_rate!r}",
        )
        require_non_negative(owner, learning_rate=self.learning_rate)
        require(
            isinstance(self.update_interval, int) and self.update_interval >= 1,
            f"{owner}.update_interval must be an integer >= 1, got {self.update_interval!r}",
        )
        require_bounds(owner, self.w_min, self.w_max)


params_from_dict = Params.from_dict  # unknown names or bad values raise RuleError


@functools.lru_cache(maxsize=64)
def kernel_coefficients(params: Params) -> OjaCoefficients:
    """The kernels' constants (see `plastic.kernels_numba.coefficients`)."""
    values = (
        rate_gain(params.tau_rate),
        params.learning_rate,
        params.w_min,
        params.w_max,
        params.max_update_norm,
    )
    return OjaCoefficients(*(np.float32(v) for v in values))


init_state = IMPLEMENTATIONS.init_state
backend_of = IMPLEMENTATIONS.backend_of


def step(pre: Any, post: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """Advance one step ([n] activities) or T steps ([T, n]); weights updated in place."""
    backend = backend_of(state)
    if backend == "torch":
        return IMPLEMENTATIONS.reference_module().run(pre, post, weights, state, params)
    kernels = IMPLEMENTATIONS.kernels(backend)
    coef = kernel_coefficients(params)
    return kernels.step(pre, post, weights, state, coef, params.update_interval), state


def apply_reward(reward: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """Oja's rule has no third factor: the reward is validated and ignored."""
    reward_value(reward)
    return weights, state


def flush(weights: Any, state: Any, params: Params, rows: Any = None) -> tuple[Any, Any]:
    """Nothing is ever deferred by this rule: returns its inputs."""
    return weights, state


state_to_dict = IMPLEMENTATIONS.state_to_dict
state_from_dict = IMPLEMENTATIONS.state_from_dict
