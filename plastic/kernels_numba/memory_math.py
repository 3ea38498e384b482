"""The one definition of the context memory's per-detector and per-synapse math (CPU and CUDA).

Plain functions registered with `numba.extending.register_jitable`, so that the fused CPU
kernel (`cpu_memory`) and the CUDA kernel (`cuda_memory`) compile the same arithmetic (and
NUMBA_ENABLE_CUDASIM=1 runs it as Python). Nothing here allocates.

Conventions: a detector's synapses form a singly linked list in a pool (`post` byte,
`weight`, `next`; -1 ends a list); weights are float32, the detector's activity trace
float32, everything else float64 arithmetic.
"""

from __future__ import annotations

from numba import float32, uint64
from numba.extending import register_jitable

N_BYTES = 256  # the memory predicts bytes; higher token ids are stream boundaries to it

HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # Fibonacci hashing (Knuth 6.4)
ORDER_SALT = 0xBF58476D1CE4E5B9  # splitmix64's first multiplier: keys of different orders differ
HASH_SEED = 0x12345


@register_jitable(inline="always")
def extend_hash(h, byte):
    """The rolling hash of one more (older) byte of the context: a delay-line tap."""
    h = (h ^ uint64(byte + 1)) * uint64(HASH_MULTIPLIER)
    return h ^ (h >> uint64(29))


@register_jitable(inline="always")
def detector_key(h, order):
    """The table key of the detector for a context of `order` bytes (never 0: 0 is empty)."""
    return (h ^ (uint64(order) * uint64(ORDER_SALT))) | uint64(1)


@register_jitable(inline="always")
def metaplastic_rate(trace, decay):
    """Learning rate and decayed trace of a detector that fires (Abraham & Bear 1996).

    The activity trace n decays by `decay` per firing and grows by 1: the rate 1/(n + 1)
    falls as the detector keeps firing (a running estimate that settles) and never falls
    below 1 - decay (recent text counts more than old text).
    """
    n = trace * decay
    return 1.0 / (n + 1.0), n


@register_jitable(inline="always")
def soft_bound_step(w, fired, rate):
    """Soft-bounded STDP toward the post spike: w + rate (1 - w) if the post neuron fired
    after the detector (LTP), w - rate w if it did not (heterosynaptic LTD)."""
    if fired:
        return w + float32(rate) * (float32(1.0) - w)
    return w - float32(rate) * w


@register_jitable(inline="always")
def step_synapse_list(head, target, rate, post, weight, nxt):
    """Step every synapse of one detector's list toward byte `target`; True if it has one."""
    found = False
    p = head
    while p >= 0:
        fired = post[p] == target
        weight[p] = soft_bound_step(weight[p], fired, rate)
        if fired:
            found = True
        p = nxt[p]
    return found


@register_jitable(inline="always")
def escape_weight(fanout, trace, prior):
    """Witten-Bell escape (Witten & Bell 1991): u * prior / (n + u * prior), the share of
    the prediction left to shorter contexts (u synapses grown, n the activity trace)."""
    mass = fanout * prior
    return mass / (trace + mass)
