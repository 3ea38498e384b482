"""`stdp`: pair-based spike-timing-dependent plasticity with exponential traces.

Papers: additive STDP, Song, Miller & Abbott (2000), "Competitive Hebbian learning through
spike-timing-dependent synaptic plasticity", Nat. Neurosci. 3:919; the trace formulation
of Morrison, Diesmann & Gerstner (2008), "Phenomenological models of synaptic plasticity
based on spike timing", Biol. Cybern. 98:459 (all-to-all pairing, eqs. 5-6); the
weight-dependent (multiplicative, soft-bound) variant of van Rossum, Bi & Turrigiano (2000)
and Rubin, Lee & Sompolinsky (2001) (Gütig et al. 2003 with mu = 1).

Equations (one step t, dt = 1 step; s in {0, 1}; weights pre-major w[i, j], pre i -> post j):

    x_pre[i]  <- exp(-1/tau_pre)  x_pre[i]  + s_pre[i]          (traces first)
    x_post[j] <- exp(-1/tau_post) x_post[j] + s_post[j]
    dw[i, j]   = A+(w) x_pre[i] s_post[j]  -  A-(w) s_pre[i] x_post[j]
    w[i, j]   <- clamp(w + clamp(dw, -max_step_update, max_step_update), w_min, w_max)

    additive:        A+ = a_plus,                 A- = a_minus
    multiplicative:  A+ = a_plus (w_max - w),     A- = a_minus (w - w_min)

Coincident spikes: both traces include the current step's spikes, so a pre and a post
spike in the same step change w[i, j] by A+ - A- (the Norse / BindsNET / SpikingJelly
convention; Brian2 instead depresses with the post trace from before the post spike).
Masked-out synapses (sparse connectivity) never change.

Update-norm cap: `max_step_update` bounds |dw| of every synapse in every step (the L-inf
norm of the step's update), which the event-driven kernels can enforce exactly.

Backends: "torch" (dense reference), "numba" (event-driven CPU: weights rows of silent pre
neurons receive their LTP when next read: call `flush` - or `flush(rows=pre)` for the rows a
spiking forward pass reads - before reading them), "cuda" (same semantics as "numba").
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from plastic.kernels_numba import state_io
from plastic.kernels_numba.coefficients import PairCoefficients
from plastic.rules.backends import RuleImplementations, reward_value
from plastic.rules.params import (
    RuleParams,
    param,
    require_bounds,
    require_choice,
    require_non_negative,
    require_positive,
)
from plastic.rules.protocol import RULE_API_VERSION
from plastic.rules.traces import decay_factor

name = "stdp"
api_version = RULE_API_VERSION
summary = "Pair STDP with exponential traces; additive or weight-dependent (soft-bound)."
paper = "Song, Miller & Abbott 2000; Morrison, Diesmann & Gerstner 2008; van Rossum et al. 2000"
uses_reward = False
backends = ("torch", "numba", "cuda")
defers_weights = True  # potentiation of a row waits until its pre neuron next spikes
IMPLEMENTATIONS = RuleImplementations(
    rule=name,
    supported=backends,
    reference="plastic.rules.reference_stdp",
    cpu="plastic.kernels_numba.cpu_stdp",
    cuda="plastic.kernels_numba.cuda_stdp",
    state=state_io.TIMING,
)

WEIGHT_DEPENDENCE = ("additive", "multiplicative")


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    """Parameters of pair STDP (time in steps; weights in the adapter's weight units)."""

    tau_pre: float = param(20.0, unit="steps", doc="decay time of the presynaptic trace x_pre")
    tau_post: float = param(20.0, unit="steps", doc="decay time of the postsynaptic trace x_post")
    a_plus: float = param(
        0.005,
        unit="weight/spike",
        doc="LTP per post spike per unit of x_pre (x (w_max-w) if mult.)",
    )
    a_minus: float = param(
        0.00525,
        unit="weight/spike",
        doc="LTD per pre spike per unit of x_post (x (w-w_min) if mult.)",
    )
    weight_dependence: str = param(
        "additive",
        unit="-",
        doc="additive: hard bounds only; multiplicative: soft bounds, updates shrink near them",
        choices=WEIGHT_DEPENDENCE,
    )
    w_min: float = param(0.0, unit="weight", doc="lower weight bound (hard)")
    w_max: float = param(1.0, unit="weight", doc="upper weight bound (hard)")
    max_step_update: float = param(
        0.05, unit="weight", doc="cap on |dw| of any synapse in one step (L-inf update norm)"
    )

    def __post_init__(self) -> None:
        owner = "stdp.Params"
        require_positive(owner, tau_pre=self.tau_pre, tau_post=self.tau_post)
        require_positive(owner, max_step_update=self.max_step_update)
        require_non_negative(owner, a_plus=self.a_plus, a_minus=self.a_minus)
        require_bounds(owner, self.w_min, self.w_max)
        require_choice(owner, "weight_dependence", self.weight_dependence, WEIGHT_DEPENDENCE)


params_from_dict = Params.from_dict  # unknown names or bad values raise RuleError


def pair_values(params: Any) -> tuple[float, ...]:
    """decay_pre, decay_post, a_plus, a_minus, w_min, w_max: the pair terms that `stdp` and
    `rstdp` share (any params with those fields)."""
    return (
        decay_factor(params.tau_pre),
        decay_factor(params.tau_post),
        params.a_plus,
        params.a_minus,
        params.w_min,
        params.w_max,
    )


def soft_bound(params: Any) -> float:
    """1.0 for the multiplicative (soft-bound) weight dependence, 0.0 for additive."""
    return 1.0 if params.weight_dependence == "multiplicative" else 0.0


@functools.lru_cache(maxsize=64)
def kernel_coefficients(params: Params) -> PairCoefficients:
    """The kernels' constants (see `plastic.kernels_numba.coefficients`)."""
    values = (*pair_values(params), params.max_step_update, soft_bound(params))
    return PairCoefficients(*(np.float32(v) for v in values))


init_state = IMPLEMENTATIONS.init_state
backend_of = IMPLEMENTATIONS.backend_of


def step(pre: Any, post: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """Advance one step (spikes [n]) or T steps ([T, n]); weights updated in place.

    Returns (weights, state): the same objects, for the functional style.
    """
    backend = backend_of(state)
    if backend == "torch":
        return IMPLEMENTATIONS.reference_module().run(pre, post, weights, state, params)
    kernels = IMPLEMENTATIONS.kernels(backend)
    return kernels.step(pre, post, weights, state, kernel_coefficients(params)), state


def apply_reward(reward: Any, weights: Any, state: Any, params: Params) -> tuple[Any, Any]:
    """Pair STDP has no third factor: the reward is validated and ignored."""
    reward_value(reward)
    return weights, state


def flush(weights: Any, state: Any, params: Params, rows: Any = None) -> tuple[Any, Any]:
    """Apply deferred LTP so weights are exact (all rows, or only `rows`: indices or a spike
    vector, e.g. the pre spikes whose rows a forward pass is about to read)."""
    backend = backend_of(state)
    if backend == "torch":
        return weights, state
    kernels = IMPLEMENTATIONS.kernels(backend)
    return kernels.flush(weights, state, kernel_coefficients(params), rows), state


state_to_dict = IMPLEMENTATIONS.state_to_dict
state_from_dict = IMPLEMENTATIONS.state_from_dict
