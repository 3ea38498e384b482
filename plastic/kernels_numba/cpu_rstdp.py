"""Event-driven Numba CPU kernels of reward-modulated STDP (`plastic.rules.rstdp`), and wrappers.

A step only touches the eligibility rows of spiking pre neurons (lazy per-row decay, with
deferred LTP replayed from the ring of recent post spikes): O((pre + post spikes) x N).
A reward changes every synapse with nonzero eligibility, so it is a dense pass by nature:
first every row is brought up to date and its squared norm taken (for the update-norm
cap), then w <- clamp(w + eta * (r - b) * cap_factor * e), rows in parallel.
Each row loop has a threaded and a serial twin (`cpu_threads`), picked by the work at hand.
"""

from __future__ import annotations

from typing import Any

from numba import float32, njit, prange

from plastic.kernels_numba.arrays import spikes_as_steps, weights_as_numpy
from plastic.kernels_numba.cpu_events import (
    advance_traces,
    eligibility_spiking_row,
    eligibility_sync_row,
    record_post_spikes,
    reward_weight_row,
    serial_sum,
    spike_indices,
    square_sum,
)
from plastic.kernels_numba.cpu_threads import PARALLEL_MIN_WORK, parallel_and_serial
from plastic.kernels_numba.state_layout import EligibilityState, is_synced
from plastic.kernels_numba.synapse_math import norm_cap_scale


def _spiking_rows(
    count,
    e,
    w,
    post_spikes,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    mask,
    pre_index,
    step,
    coef,
):
    """Eligibility rows of the `count` pre neurons listed in pre_index, which spike at `step`."""
    for k in prange(count):
        eligibility_spiking_row(
            e,
            w,
            pre_index[k],
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
        )


def _sync(
    w, e, x_pre, x_post, x_pre_synced, row_step, ring_post, ring_count, mask, pre_index, clock, coef
):
    """Bring every eligibility row to the current step (lazy decay + deferred LTP)."""
    step = clock[0]
    for i in prange(w.shape[0]):
        eligibility_sync_row(
            e, w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
        )
    clock[1] = step


def _reward(
    w,
    e,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    mask,
    pre_index,
    clock,
    row_square,
    coef,
    modulation,
    max_norm,
):
    """w <- clamp(w + s * e) with s = modulation, shrunk so that ||s * e||_F <= max_norm."""
    step = clock[0]
    n_pre = w.shape[0]
    w_min, w_max = coef.w_min, coef.w_max
    for i in prange(n_pre):
        eligibility_sync_row(
            e, w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
        )
        row_square[i] = square_sum(e, i)
    clock[1] = step
    scale = float32(norm_cap_scale(modulation, serial_sum(row_square), max_norm))
    for i in prange(n_pre):
        reward_weight_row(w, e, i, mask, scale, w_min, w_max)


spiking_rows_parallel, spiking_rows_serial = parallel_and_serial(_spiking_rows)
sync_parallel, sync_serial = parallel_and_serial(_sync)
reward_parallel, reward_serial = parallel_and_serial(_reward)


@njit(cache=True)
def eligibility_steps(
    pre,
    post,
    w,
    e,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    mask,
    pre_index,
    clock,
    coef,
):
    """Advance traces and eligibility over pre[T, n_pre], post[T, n_post] (uint8), in place."""
    decay_pre, decay_post = coef.decay_pre, coef.decay_post
    ring = ring_count.shape[0]
    n_pre, n_post = w.shape
    # the TimingState fields but the clock, in order (the twins' shared arguments)
    timing = (x_pre, x_post, x_pre_synced, row_step, ring_post, ring_count, mask, pre_index)
    for s in range(pre.shape[0]):
        step = clock[0] + 1
        clock[0] = step
        advance_traces(x_pre, pre[s], decay_pre)
        advance_traces(x_post, post[s], decay_post)
        record_post_spikes(ring_post, ring_count, step, post[s])
        n_spiking = spike_indices(pre[s], pre_index)
        if n_spiking * n_post >= PARALLEL_MIN_WORK:
            spiking_rows_parallel(n_spiking, e, w, post[s], *timing, step, coef)
        else:
            spiking_rows_serial(n_spiking, e, w, post[s], *timing, step, coef)
        if step - clock[1] >= ring:  # the ring is full: bring every row up to date
            if n_pre * n_post >= PARALLEL_MIN_WORK:
                sync_parallel(w, e, *timing, clock, coef)
            else:
                sync_serial(w, e, *timing, clock, coef)


def step(pre: Any, post: Any, weights: Any, state: EligibilityState, coef: tuple) -> Any:
    """Run one step ([n] spikes) or T steps ([T, n]) in place; returns the weights (unchanged)."""
    t = state.timing
    n_pre, n_post = t.x_pre.shape[0], t.x_post.shape[0]
    pre_steps = spikes_as_steps(pre, n_pre, "pre")
    post_steps = spikes_as_steps(post, n_post, "post", steps=pre_steps.shape[0])
    w = weights_as_numpy(weights, n_pre, n_post)
    # kernel arguments follow EligibilityState: eligibility, then the TimingState fields
    eligibility_steps(pre_steps, post_steps, w, state.eligibility, *t, coef)
    return weights


def apply_reward(
    modulation: float, max_norm: float, weights: Any, state: EligibilityState, coef: tuple
) -> Any:
    """Add modulation * eligibility (norm-capped) to the weights in place; returns them."""
    t = state.timing
    w = weights_as_numpy(weights, t.x_pre.shape[0], t.x_post.shape[0])
    reward = reward_parallel if w.size >= PARALLEL_MIN_WORK else reward_serial
    reward(w, state.eligibility, *t, state.row_square, coef, float(modulation), float(max_norm))
    return weights


def flush(weights: Any, state: EligibilityState, coef: tuple) -> Any:
    """Bring the eligibility up to date (weights never hold deferred work); returns weights."""
    t = state.timing
    if not is_synced(t):
        w = weights_as_numpy(weights, t.x_pre.shape[0], t.x_post.shape[0])
        sync = sync_parallel if w.size >= PARALLEL_MIN_WORK else sync_serial
        sync(w, state.eligibility, *t, coef)
    return weights
