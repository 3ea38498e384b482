"""`rstdp`: reward-modulated STDP with an eligibility trace (three-factor rule).

Papers: R. V. Florian (2007), "Reinforcement learning through modulation of
spike-timing-dependent synaptic plasticity", Neural Computation 19:1468 (MSTDPET, eqs.
8-10; MSTDP is the limit tau_eligibility -> 0); N. Frémaux & W. Gerstner (2016),
"Neuromodulated spike-timing-dependent plasticity, and theory of three-factor learning
rules", Front. Neural Circuits 9:85 (the reward baseline: weights follow reward minus its
expectation, otherwise unrewarded activity drifts the weights). Izhikevich (2007), Cereb.
Cortex 17:2443, uses the same eligibility ("synaptic tag") construction.

Equations (dt = 1 step; pre-major w[i, j]; traces and STDP term exactly as `stdp`):

    x_pre  <- exp(-1/tau_pre)  x_pre  + s_pre,     x_post <- exp(-1/tau_post) x_post + s_post
    e[i,j] <- exp(-1/tau_eligibility) e[i,j] + A+(w) x_pre[i] s_post[j] - A-(w) s_pre[i] x_post[j]

and at each reward r (apply_reward; e.g. once per token or turn):

    m   = r - b                           b <- b + (r - b) / baseline_tau    (b: running mean)
    dW  = learning_rate * m * e,          scaled down so that ||dW||_F <= max_update_norm
    w  <- clamp(w + dW, w_min, w_max)     on plastic (unmasked) synapses only

The weights change only at rewards, and always exactly: `step` defers nothing in the weights
(only the eligibility decays lazily, per row, inside the event-driven kernels). With
r == b nothing changes. A reward can be a python float, numpy or torch scalar; it is read
as a plain float (no autograd graph is kept).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from plastic.kernels_numba import state_io
from plastic.kernels_numba.coefficients import EligibilityCoefficients
from plastic.rules.backends import RuleImplementations, reward_value
from plastic.rules.baseline import reward_modulation
from plastic.rules.params import (
    RuleParams,
    param,
    require_bounds,
    require_choice,
    require_non_negative,
    require_positive,
)
from plastic.rules.protocol import RULE_API_VERSION
from plastic.rules.stdp import WEIGHT_DEPENDENCE, pair_values, soft_bound
from plastic.rules.traces import decay_factor

name = "rstdp"
api_version = RULE_API_VERSION
summary = "Reward-modulated STDP with eligibility trace and reward baseline (MSTDPET)."
paper = "Florian 2007 (MSTDPET); Frémaux & Gerstner 2016 (reward baseline)"
uses_reward = True
backends = ("torch", "numba", "cuda")
defers_weights = False  # weight updates are applied at once; flush touches traces only
IMPLEMENTATIONS = RuleImplementations(
    rule=name,
    supported=backends,
    reference="plastic.rules.reference_rstdp",
    cpu="plastic.kernels_numba.cpu_rstdp",
    cuda="plastic.kernels_numba.cuda_rstdp",
    state=state_io.ELIGIBILITY,
)


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of reward-modulated STDP (time in steps; rewards are plain numbers)."""

    tau_pre: float = param(20.0, unit="steps", doc="decay time of the presynaptic trace x_pre")
    tau_post: float = param(20.0, unit="steps", doc="decay time of the postsynaptic trace x_post")
    a_plus: float = param(
        1.0, unit="elig/spike", doc="eligibility per post spike per unit of x_pre (LTP side)"
    )
    a_minus: float = param(
        1.0, unit="elig/spike", doc="eligibility per pre spike per unit of x_post (LTD side)"
    )
    tau_eligibility: float = param(
        200.0, unit="steps", doc="decay time of the eligibility e (tiny -> MSTDP)"
    )
    learning_rate: float = param(
        1e-3, unit="weight/(reward*elig)", doc="weight change per unit of (r - b) x e"
    )
    baseline_tau: float = param(
        10.0, unit="rewards", doc="averaging time of the reward baseline b (0: b stays 0)"
    )
    weight_dependence: str = param(
        "additive",
        unit="-",
        doc="additive, or multiplicative: STDP term scaled by (w_max-w) / (w-w_min)",
        choices=WEIGHT_DEPENDENCE,
    )
    w_min: float = param(-1.0, unit="weight", doc="lower weight bound (hard)")
    w_max: float = param(1.0, unit="weight", doc="upper weight bound (hard)")
    max_update_norm: float = param(
        1.0, unit="weight", doc="cap on the Frobenius norm of one reward's weight change"
    )

    def __post_init__(self) -> None:
        owner = "rstdp.Params"
        require_positive(
            owner,
            tau_pre=self.tau_pre,
            tau_post=self.tau_post,
            tau_eligibility=self.tau_eligibility,
            max_update_norm=self.max_update_norm,
        )
        require_non_negative(
            owner,
            a_plus=self.a_plus,
            a_minus=self.a_minus,
            learning_rate=self.learning_rate,
            baseline_tau=self.baseline_tau,
        )
        require_bounds(owner, self.w_min, self.w_max)
        require_choice(owner, "weight_dependence", self.weight_dependence, WEIGHT_DEPENDENCE)


params_from_dict = Params.from_dict  # unknown names or bad values raise RuleError


@functools.lru_cache(maxsize=64)
def kernel_coefficients(params: Params) -> EligibilityCoefficients:
    """The kernels' constants (see `plastic.kernels_numba.coefficients`)."""
    values = (*pair_values(params), soft_bound(params))
    # lambda_e as float64 holding exactly the float32 factor the reference multiplies by
    return EligibilityCoefficients(
        *(np.float32(v) for v in values), float(decay_factor(params.tau_eligibility))
    )


init_state = IMPLEMENTATIONS.init_state
backend_of = IMPLEMENTATIONS.backend_of


def step(pre: Any, post: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """Advance traces and eligibility one step ([n] spikes) or T steps ([T, n]).

    The weights are read (weight-dependent variant) but never changed by a step.
    """
    backend = backend_of(state)
    if backend == "torch":
        return IMPLEMENTATIONS.reference_module().run(pre, post, weights, state, params)
    return IMPLEMENTATIONS.kernels(backend).step(
        pre, post, weights, state, kernel_coefficients(params)
    ), state


def apply_reward(reward: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """w <- clamp(w + learning_rate (r - b) e), norm-capped; updates b. Weights in place."""
    value = reward_value(reward)
    backend = backend_of(state)
    if backend == "torch":
        return IMPLEMENTATIONS.reference_module().apply_reward(value, weights, state, params)
    modulation, state.baseline[0] = reward_modulation(
        value, float(state.baseline[0]), params.baseline_tau
    )
    state.baseline[1] += 1
    scale = params.learning_rate * modulation
    if scale != 0.0:
        kernels = IMPLEMENTATIONS.kernels(backend)
        kernels.apply_reward(
            scale, params.max_update_norm, weights, state, kernel_coefficients(params)
        )
    return weights, state


def flush(weights: Any, state: Any, params: Params, rows: Any = None) -> tuple[Any, Any]:
    """Bring the lazily decayed eligibility up to date (needed before `state_to_dict`).

    The weights are always exact for this rule, so `rows` (accepted for interface
    compatibility with `stdp.flush`) needs no work.
    """
    backend = backend_of(state)
    if backend == "torch" or rows is not None:
        return weights, state
    return IMPLEMENTATIONS.kernels(backend).flush(
        weights, state, kernel_coefficients(params)
    ), state


state_to_dict = IMPLEMENTATIONS.state_to_dict
state_from_dict = IMPLEMENTATIONS.state_from_dict
