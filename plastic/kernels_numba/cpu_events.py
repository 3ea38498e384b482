"""Serial Numba CPU building blocks of the event-driven kernels: traces, spike lists, rows.

The parallel kernels (`cpu_stdp`, `cpu_rstdp`) distribute rows over threads and call the
per-row functions here. Those apply the per-synapse arithmetic of `synapse_math` (shared
with the CUDA kernels), inlined with a unit stride so that LLVM vectorises the dense loops.

`coef` is the rule's record of constants (`coefficients.PairCoefficients` for pair STDP,
`EligibilityCoefficients` for the eligibility), built by the rule modules, read by name.
"""

from __future__ import annotations

from numba import float32, njit

from plastic.kernels_numba.synapse_math import (
    decayed_trace,
    eligibility_row_from_ring,
    eligibility_row_on_pre_spike,
    mask_row,
    reward_row,
    row_square_sum,
    scale_row,
    stdp_row_from_ring,
    stdp_row_on_pre_spike,
)


@njit(cache=True)
def advance_traces(trace, spikes, decay):
    """x <- decay * x + s for every neuron of a layer."""
    for k in range(trace.shape[0]):
        trace[k] = decayed_trace(trace[k], decay, spikes[k])


@njit(cache=True)
def spike_indices(spikes, out):
    """Write the indices of nonzero entries of `spikes` to `out`; return how many."""
    count = 0
    for k in range(spikes.shape[0]):
        if spikes[k] != 0:
            out[count] = k
            count += 1
    return count


@njit(cache=True)
def record_post_spikes(ring_post, ring_count, step, spikes):
    """Store this step's post spike indices in the ring slot of `step`."""
    slot = step % ring_count.shape[0]
    count = 0
    for k in range(spikes.shape[0]):
        if spikes[k] != 0:
            ring_post[slot, count] = k
            count += 1
    ring_count[slot] = count


# ----------------------------------------------------------------------------- pair STDP


@njit(cache=True)
def replay_weight_row(w, i, mask, ring_post, ring_count, x_synced, first, last, coef):
    """Apply row i's deferred LTP of steps first..last (inclusive), oldest first.

    x_synced is x_pre[i] at step first - 1; the pre neuron did not spike since, so its
    trace is recomputed by the same float32 multiplications as the reference's.
    """
    decay_pre, a_plus, w_min, w_max = coef.decay_pre, coef.a_plus, coef.w_min, coef.w_max
    max_dw, soft = coef.max_dw, coef.soft
    mi = mask_row(mask, i)
    ring = ring_count.shape[0]
    x = x_synced
    for step in range(first, last + 1):
        x = x * decay_pre
        slot = step % ring
        count = ring_count[slot]
        if count > 0:
            stdp_row_from_ring(
                w, i, mask, mi, ring_post, slot, count, x, a_plus, w_min, w_max, max_dw, soft, 0, 1
            )


@njit(cache=True)
def stdp_spiking_row(
    w,
    i,
    mask,
    post_spikes,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    step,
    coef,
):
    """Row i at a spike of pre neuron i at `step`: catch up, then apply the step's update."""
    a_plus, a_minus, w_min, w_max = coef.a_plus, coef.a_minus, coef.w_min, coef.w_max
    max_dw, soft = coef.max_dw, coef.soft
    replay_weight_row(
        w, i, mask, ring_post, ring_count, x_pre_synced[i], row_step[i] + 1, step - 1, coef
    )
    stdp_row_on_pre_spike(
        w,
        i,
        mask,
        mask_row(mask, i),
        post_spikes,
        x_pre[i],
        x_post,
        a_plus,
        a_minus,
        w_min,
        w_max,
        max_dw,
        soft,
        0,
        1,
    )
    row_step[i] = step
    x_pre_synced[i] = x_pre[i]


@njit(cache=True)
def stdp_sync_row(w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef):
    """Bring row i of the weights up to date at `step` (apply its deferred LTP)."""
    if row_step[i] != step:
        replay_weight_row(
            w, i, mask, ring_post, ring_count, x_pre_synced[i], row_step[i] + 1, step, coef
        )
        row_step[i] = step
        x_pre_synced[i] = x_pre[i]


# ----------------------------------------------------------------------------- eligibility


@njit(cache=True)
def replay_eligibility_row(
    e, w, i, mask, ring_post, ring_count, x_synced, first, last, target, coef
):
    """Add row i's deferred LTP of steps first..last to its eligibility, decayed to `target`.

    The factor lambda_e ** (target - step) is computed in float64 from the float32 decay
    the reference multiplies by, and is always <= 1.
    """
    decay_pre, a_plus, w_max = coef.decay_pre, coef.a_plus, coef.w_max
    soft, decay_elig = coef.soft, coef.decay_elig
    mi = mask_row(mask, i)
    ring = ring_count.shape[0]
    x = x_synced
    for step in range(first, last + 1):
        x = x * decay_pre
        slot = step % ring
        count = ring_count[slot]
        if count > 0:
            factor = float32(decay_elig ** (target - step))
            eligibility_row_from_ring(
                e, w, i, mask, mi, ring_post, slot, count, x, factor, a_plus, w_max, soft, 0, 1
            )


@njit(cache=True)
def eligibility_spiking_row(
    e,
    w,
    i,
    mask,
    post_spikes,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    step,
    coef,
):
    """Eligibility row i at a spike of pre neuron i: lazy decay, this step's STDP, replay."""
    a_plus, a_minus, w_min, w_max = coef.a_plus, coef.a_minus, coef.w_min, coef.w_max
    soft, decay_elig = coef.soft, coef.decay_elig
    row_decay = float32(decay_elig ** (step - row_step[i]))
    eligibility_row_on_pre_spike(
        e,
        w,
        i,
        mask,
        mask_row(mask, i),
        post_spikes,
        x_pre[i],
        x_post,
        row_decay,
        a_plus,
        a_minus,
        w_min,
        w_max,
        soft,
        0,
        1,
    )
    replay_eligibility_row(
        e, w, i, mask, ring_post, ring_count, x_pre_synced[i], row_step[i] + 1, step - 1, step, coef
    )
    row_step[i] = step
    x_pre_synced[i] = x_pre[i]


@njit(cache=True)
def eligibility_sync_row(
    e, w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
):
    """Bring eligibility row i to `step`: one lazy decay, then replay of deferred LTP."""
    if row_step[i] != step:
        decay_elig = coef.decay_elig
        scale_row(e, i, float32(decay_elig ** (step - row_step[i])), 0, 1)
        replay_eligibility_row(
            e, w, i, mask, ring_post, ring_count, x_pre_synced[i], row_step[i] + 1, step, step, coef
        )
        row_step[i] = step
        x_pre_synced[i] = x_pre[i]


@njit(cache=True, fastmath={"reassoc", "nsz"})
def square_sum(e, i):
    """Sum of e[i, :]**2 in float64 (reassociated so that it vectorises)."""
    return row_square_sum(e, i, 0, 1)


@njit(cache=True)
def reward_weight_row(w, e, i, mask, scale, w_min, w_max):
    """Row i of a reward: w <- clamp(w + scale * e) on plastic synapses."""
    reward_row(w, e, i, mask, mask_row(mask, i), scale, w_min, w_max, 0, 1)


@njit(cache=True)
def serial_sum(values):
    """Sum of a small vector, serially (inside parallel kernels `.sum()` would become a
    parallel reduction that wakes every thread for a few hundred numbers)."""
    total = 0.0
    for k in range(values.shape[0]):
        total += values[k]
    return total
