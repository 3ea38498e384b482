"""The LIF neuron, written once for every Numba kernel that runs LIF neurons (the backbone's
fused inference path and the residual adapter's population).

The backbone's equations (snntorch `Leaky`, reset by subtraction; `models.neurons`):

    U[t] = beta U[t-1] + I[t] - S[t-1] theta,      S[t] = H(U[t] - theta)

Float32 in the order the torch path computes it (`beta * mem + input`, then
`- reset * threshold`), so spikes are bit-identical to it given the same current.
Registered with `register_jitable`: each kernel inlines them (see `cache_guard` for how
their cached machine code follows edits here).
"""

from __future__ import annotations

from numba.extending import register_jitable


@register_jitable(inline="always")
def lif_membrane(mem, beta, drive, reset, threshold):
    """U[t] = beta U[t-1] + I[t] - S[t-1] theta; `reset` is S[t-1] as 0.0 or 1.0."""
    return beta * mem + drive - reset * threshold


@register_jitable(inline="always")
def lif_fires(mem, threshold):
    """S[t] = H(U[t] - theta): True when the membrane is above threshold."""
    return mem - threshold > 0.0
