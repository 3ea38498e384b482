"""The one definition of every per-synapse and per-row update, shared by CPU and CUDA kernels.

Each function is a plain Python function registered with `numba.extending.register_jitable`,
so it compiles into `@njit` CPU kernels and `@cuda.jit` CUDA kernels alike (and runs as
Python under NUMBA_ENABLE_CUDASIM=1). Row functions take `(start, stride)`: a CPU kernel
calls them with (0, 1) for a whole row, a CUDA block with (threadIdx.x, blockDim.x) so its
threads split the row. Nothing here allocates; arrays are updated in place.

Conventions (see `plastic.rules.traces` and `plastic.rules.stdp`): float32 arithmetic,
weights pre-major `w[i, j]` (pre i -> post j), `mask[mi, j]` is 1 for plastic synapses,
where `mi = i` for a full mask and `mi = 0` for the all-ones row meaning "fully connected".
`soft` is 1.0 for weight-dependent (multiplicative) STDP and 0.0 for additive STDP.
"""

from __future__ import annotations

from numba import float32
from numba.extending import register_jitable

# ----------------------------------------------------------------------------- per synapse


@register_jitable(inline="always")
def decayed_trace(trace, decay, spike):
    """Additive spike trace: x(t) = decay * x(t-1) + s(t)."""
    return trace * decay + spike


@register_jitable(inline="always")
def rate_trace(rate, gain, activity):
    """Exponential moving average: r(t) = r(t-1) + gain * (a(t) - r(t-1))."""
    return rate + gain * (activity - rate)


@register_jitable(inline="always")
def potentiation(w, x_pre, a_plus, w_max, soft):
    """LTP on a post spike: a_plus * x_pre, times (w_max - w) when weight-dependent."""
    if soft != 0.0:
        return a_plus * (w_max - w) * x_pre
    return a_plus * x_pre


@register_jitable(inline="always")
def depression(w, x_post, a_minus, w_min, soft):
    """LTD on a pre spike: a_minus * x_post, times (w - w_min) when weight-dependent."""
    if soft != 0.0:
        return a_minus * (w - w_min) * x_post
    return a_minus * x_post


@register_jitable(inline="always")
def clamp(value, low, high):
    """value limited to [low, high]."""
    if value > high:
        return high
    if value < low:
        return low
    return value


@register_jitable(inline="always")
def bounded_weight(w, dw, w_min, w_max, max_dw):
    """w + dw with |dw| capped at max_dw, then kept in [w_min, w_max]."""
    return clamp(w + clamp(dw, -max_dw, max_dw), w_min, w_max)


@register_jitable(inline="always")
def masked(new, old, flag):
    """`new` on a plastic synapse (flag 1), `old` on a masked one (flag 0).

    Written as new * m + old * (1 - m) rather than a branch so that row loops vectorise;
    exact for finite values (x * 1 + y * 0 == x).
    """
    m = float32(flag)
    return new * m + old * (float32(1.0) - m)


@register_jitable(inline="always")
def oja_increment(w, x_pre, y_post, learning_rate):
    """Oja (1982): dw = eta * y * (x - y * w)."""
    return learning_rate * y_post * (x_pre - y_post * w)


# ----------------------------------------------------------------------------- per row


@register_jitable(inline="always")
def mask_row(mask, i):
    """Row of `mask` that holds row i's flags: i for a full mask, 0 for the all-ones row."""
    if mask.shape[0] > 1:
        return i
    return i - i  # zero of i's integer type (numba must not unify signed and unsigned)


@register_jitable(inline="always")
def stdp_row_on_pre_spike(
    w,
    i,
    mask,
    mi,
    post_spikes,
    x_pre_i,
    x_post,
    a_plus,
    a_minus,
    w_min,
    w_max,
    max_dw,
    soft,
    start,
    stride,
):
    """One step of pair STDP on row i, whose pre neuron spiked this step.

    For every j: dw = LTP(w, x_pre_i) * s_post[j] - LTD(w, x_post[j]); both terms use the
    traces *after* this step's spikes, so coincident pre and post spikes give LTP - LTD.
    """
    for j in range(start, w.shape[1], stride):
        old = w[i, j]
        dw = potentiation(old, x_pre_i, a_plus, w_max, soft) * post_spikes[j] - depression(
            old, x_post[j], a_minus, w_min, soft
        )
        w[i, j] = masked(bounded_weight(old, dw, w_min, w_max, max_dw), old, mask[mi, j])


@register_jitable(inline="always")
def stdp_row_from_ring(
    w,
    i,
    mask,
    mi,
    ring_post,
    slot,
    count,
    x_pre_i,
    a_plus,
    w_min,
    w_max,
    max_dw,
    soft,
    start,
    stride,
):
    """Deferred LTP of one past step on row i: the post spikes stored in ring slot `slot`.

    Row i's pre neuron did not spike at that step, so the update is LTP only.
    """
    for k in range(start, count, stride):
        j = ring_post[slot, k]
        if mask[mi, j] != 0:
            old = w[i, j]
            w[i, j] = bounded_weight(
                old, potentiation(old, x_pre_i, a_plus, w_max, soft), w_min, w_max, max_dw
            )


@register_jitable(inline="always")
def eligibility_row_on_pre_spike(
    e,
    w,
    i,
    mask,
    mi,
    post_spikes,
    x_pre_i,
    x_post,
    row_decay,
    a_plus,
    a_minus,
    w_min,
    w_max,
    soft,
    start,
    stride,
):
    """Row i of the eligibility at a pre spike: e <- row_decay * e + STDP(this step).

    row_decay = lambda_e ** (steps since the row was last brought up to date): the lazy
    per-row decay. The STDP term is the one `stdp_row_on_pre_spike` applies to weights.
    """
    for j in range(start, e.shape[1], stride):
        old = w[i, j]
        stdp = potentiation(old, x_pre_i, a_plus, w_max, soft) * post_spikes[j] - depression(
            old, x_post[j], a_minus, w_min, soft
        )
        e[i, j] = (e[i, j] * row_decay + stdp) * float32(mask[mi, j])  # masked: stays 0


@register_jitable(inline="always")
def eligibility_row_from_ring(
    e,
    w,
    i,
    mask,
    mi,
    ring_post,
    slot,
    count,
    x_pre_i,
    factor,
    a_plus,
    w_max,
    soft,
    start,
    stride,
):
    """Deferred LTP of one past step into row i of the eligibility, decayed by `factor`."""
    if soft == 0.0:  # additive: the same increment for every synapse of the row
        increment = factor * potentiation(float32(0.0), x_pre_i, a_plus, w_max, soft)  # w unused
        for k in range(start, count, stride):
            j = ring_post[slot, k]
            if mask[mi, j] != 0:
                e[i, j] += increment
    else:
        for k in range(start, count, stride):
            j = ring_post[slot, k]
            if mask[mi, j] != 0:
                e[i, j] += factor * potentiation(w[i, j], x_pre_i, a_plus, w_max, soft)


@register_jitable(inline="always")
def scale_row(e, i, factor, start, stride):
    """e[i, :] *= factor (the lazy decay of one eligibility row)."""
    for j in range(start, e.shape[1], stride):
        e[i, j] *= factor


@register_jitable(inline="always")
def row_square_sum(e, i, start, stride):
    """Sum of e[i, j]**2 over this caller's share of the row, in float64."""
    total = 0.0
    for j in range(start, e.shape[1], stride):
        value = float(e[i, j])
        total += value * value
    return total


@register_jitable(inline="always")
def reward_row(w, e, i, mask, mi, scale, w_min, w_max, start, stride):
    """Row i of a reward: w <- clamp(w + scale * e) on plastic synapses."""
    for j in range(start, w.shape[1], stride):
        old = w[i, j]
        w[i, j] = masked(clamp(old + scale * e[i, j], w_min, w_max), old, mask[mi, j])


@register_jitable(inline="always")
def oja_row_square_sum(w, i, mask, mi, x_pre_i, y_post, learning_rate, start, stride):
    """Sum of squared Oja increments over this caller's share of row i, in float64."""
    total = 0.0
    for j in range(start, w.shape[1], stride):
        if mask[mi, j] != 0:
            dw = float(oja_increment(w[i, j], x_pre_i, y_post[j], learning_rate))
            total += dw * dw
    return total


@register_jitable(inline="always")
def oja_row(w, i, mask, mi, x_pre_i, y_post, learning_rate, scale, w_min, w_max, start, stride):
    """Row i of an Oja update: w <- clamp(w + scale * dw) on plastic synapses."""
    for j in range(start, w.shape[1], stride):
        old = w[i, j]
        new = clamp(
            old + scale * oja_increment(old, x_pre_i, y_post[j], learning_rate), w_min, w_max
        )
        w[i, j] = masked(new, old, mask[mi, j])


@register_jitable(inline="always")
def norm_cap_scale(modulation, square_sum, max_norm):
    """Factor that makes |modulation| * sqrt(square_sum) at most max_norm (a norm cap)."""
    norm = abs(modulation) * square_sum**0.5
    if norm > max_norm:
        return modulation * (max_norm / norm)
    return modulation
