"""Trace conventions shared by every rule and every backend.

Time is discrete: one step is one simulation timestep (dt = 1 step), and every time
constant is given in steps. A spike trace is *additive* ("all-to-all" pairing, BindsNET's
`traces_additive=True`):

    x(t) = lambda * x(t-1) + s(t),    lambda = exp(-1 / tau),    s(t) in {0, 1}

so a lone spike leaves a trace of height 1 that decays by exp(-1/tau) per step. Traces are
updated *before* the weights within a step, so a pre- and a postsynaptic spike in the same
step see each other (see `plastic.rules.stdp` for the coincidence convention).

Mapping to other libraries (same spikes, same weights, to float32 rounding):
- Norse `stdp_step_linear` integrates t <- t + dt/tau_n (-t + a z) (Euler), i.e.
  lambda = 1 - dt/tau_n and its trace equals ours times a*dt/tau_n; use
  `tau_from_euler(tau_n, dt)` and scale the learning rates by a*dt/tau_n.
- SpikingJelly decays traces by (1 - 1/tau): use `tau_from_euler(tau, 1)`.

Decay factors are rounded to float32 once, here, so that the torch reference and the
Numba kernels multiply by the very same number.
"""

from __future__ import annotations

import math

import numpy as np


def decay_factor(tau: float) -> float:
    """lambda = exp(-1/tau) for a time constant in steps, rounded to float32."""
    return float(np.float32(math.exp(-1.0 / tau)))


def tau_from_euler(tau: float, dt: float = 1.0) -> float:
    """The tau (steps) whose decay factor equals an Euler step's 1 - dt/tau (needs dt < tau)."""
    return -1.0 / math.log1p(-dt / tau)


def rate_gain(tau: float) -> float:
    """alpha = 1/tau for a rate trace r <- r + alpha (s - r), rounded to float32."""
    return float(np.float32(1.0 / tau))
