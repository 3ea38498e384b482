"""Event-driven Numba CPU kernels of pair STDP (`plastic.rules.stdp`), and their thin wrappers.

Per step: O(N) to advance the traces, then each pre spike brings its weight row up to date
(replaying deferred LTP from the ring of recent post spikes) and applies the step's LTD/LTP,
rows in parallel. Post spikes only append their indices to the ring. Cost per step is
O((pre spikes + post spikes) x N); see `state_layout` for why the deferral is exact.
Each row loop has a threaded and a serial twin (`cpu_threads`), picked by the work at hand.
"""

from __future__ import annotations

from typing import Any

from numba import njit, prange

from plastic.kernels_numba.arrays import row_indices, spikes_as_steps, weights_as_numpy
from plastic.kernels_numba.cpu_events import (
    advance_traces,
    record_post_spikes,
    spike_indices,
    stdp_spiking_row,
    stdp_sync_row,
)
from plastic.kernels_numba.cpu_threads import PARALLEL_MIN_WORK, parallel_and_serial
from plastic.kernels_numba.state_layout import TimingState, is_synced


def _spiking_rows(
    count,
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
    """Rows of the `count` pre neurons listed in pre_index, which spike at `step`."""
    for k in prange(count):
        stdp_spiking_row(
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
    w, x_pre, x_post, x_pre_synced, row_step, ring_post, ring_count, mask, pre_index, clock, coef
):
    """Apply every row's deferred LTP so the weights are exact at the current step."""
    step = clock[0]
    for i in prange(w.shape[0]):
        stdp_sync_row(w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef)
    clock[1] = step


def _sync_rows(
    w,
    rows,
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
    """Apply the deferred LTP of the listed rows only (e.g. the rows a forward pass reads)."""
    step = clock[0]
    for k in prange(rows.shape[0]):
        stdp_sync_row(
            w, rows[k], mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
        )


spiking_rows_parallel, spiking_rows_serial = parallel_and_serial(_spiking_rows)
sync_parallel, sync_serial = parallel_and_serial(_sync)
sync_rows_parallel, sync_rows_serial = parallel_and_serial(_sync_rows)


@njit(cache=True)
def stdp_steps(
    pre,
    post,
    w,
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
    """Advance pair STDP over the steps pre[T, n_pre], post[T, n_post] (uint8), in place."""
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
            spiking_rows_parallel(n_spiking, w, post[s], *timing, step, coef)
        else:
            spiking_rows_serial(n_spiking, w, post[s], *timing, step, coef)
        if step - clock[1] >= ring:  # the ring is full: bring every row up to date
            if n_pre * n_post >= PARALLEL_MIN_WORK:
                sync_parallel(w, *timing, clock, coef)
            else:
                sync_serial(w, *timing, clock, coef)


def step(pre: Any, post: Any, weights: Any, state: TimingState, coef: tuple) -> Any:
    """Run one step ([n] spikes) or T steps ([T, n]) in place; returns the weights."""
    n_pre, n_post = state.x_pre.shape[0], state.x_post.shape[0]
    pre_steps = spikes_as_steps(pre, n_pre, "pre")
    post_steps = spikes_as_steps(post, n_post, "post", steps=pre_steps.shape[0])
    w = weights_as_numpy(weights, n_pre, n_post)
    stdp_steps(pre_steps, post_steps, w, *state, coef)  # kernel arguments follow TimingState
    return weights


def flush(weights: Any, state: TimingState, coef: tuple, rows: Any = None) -> Any:
    """Apply deferred LTP in place (every row, or only `rows`); returns the weights."""
    n_pre, n_post = state.x_pre.shape[0], state.x_post.shape[0]
    if rows is not None:
        w = weights_as_numpy(weights, n_pre, n_post)
        selected = row_indices(rows, n_pre)
        threaded = selected.shape[0] * n_post >= PARALLEL_MIN_WORK
        sync_rows = sync_rows_parallel if threaded else sync_rows_serial
        sync_rows(w, selected, *state, coef)
    elif not is_synced(state):
        w = weights_as_numpy(weights, n_pre, n_post)
        sync = sync_parallel if n_pre * n_post >= PARALLEL_MIN_WORK else sync_serial
        sync(w, *state, coef)
    return weights
