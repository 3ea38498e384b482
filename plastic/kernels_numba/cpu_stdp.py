"""Event-driven Numba CPU kernels of pair STDP (`plastic.rules.stdp`), and their thin wrappers.

Per step: O(N) to advance the traces, then each pre spike brings its weight row up to date
(replaying deferred LTP from the ring of recent post spikes) and applies the step's LTD/LTP,
rows in parallel. Post spikes only append their indices to the ring. Cost per step is
O((pre spikes + post spikes) x N); see `state_layout` for why the deferral is exact.
"""

from __future__ import annotations

from typing import Any

from numba import njit, prange

from plastic.kernels_numba.cpu_events import (
    advance_traces,
    record_post_spikes,
    spike_indices,
    stdp_spiking_row,
    stdp_sync_row,
)
from plastic.kernels_numba.state_layout import TimingState, is_synced
from plastic.rules.backends import row_indices, spikes_as_steps, weights_as_numpy

# Below this many synapse updates, rows are processed serially: waking threads costs more.
PARALLEL_MIN_WORK = 1 << 16


@njit(parallel=True, cache=True)
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
    decay_pre, decay_post = coef[0], coef[1]
    ring = ring_count.shape[0]
    n_pre, n_post = w.shape
    for s in range(pre.shape[0]):
        step = clock[0] + 1
        clock[0] = step
        advance_traces(x_pre, pre[s], decay_pre)
        advance_traces(x_post, post[s], decay_post)
        record_post_spikes(ring_post, ring_count, step, post[s])
        n_spiking = spike_indices(pre[s], pre_index)
        if n_spiking * n_post >= PARALLEL_MIN_WORK:
            for k in prange(n_spiking):
                stdp_spiking_row(
                    w,
                    pre_index[k],
                    mask,
                    post[s],
                    x_pre,
                    x_post,
                    x_pre_synced,
                    row_step,
                    ring_post,
                    ring_count,
                    step,
                    coef,
                )
        else:
            for k in range(n_spiking):
                stdp_spiking_row(
                    w,
                    pre_index[k],
                    mask,
                    post[s],
                    x_pre,
                    x_post,
                    x_pre_synced,
                    row_step,
                    ring_post,
                    ring_count,
                    step,
                    coef,
                )
        if step - clock[1] >= ring:  # the ring is full: bring every row up to date
            stdp_sync(
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
            )


@njit(parallel=True, cache=True)
def stdp_sync(
    w, x_pre, x_post, x_pre_synced, row_step, ring_post, ring_count, mask, pre_index, clock, coef
):
    """Apply every row's deferred LTP so the weights are exact at the current step."""
    step = clock[0]
    n_pre, n_post = w.shape
    if n_pre * n_post >= PARALLEL_MIN_WORK:
        for i in prange(n_pre):
            stdp_sync_row(
                w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
            )
    else:
        for i in range(n_pre):
            stdp_sync_row(
                w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
            )
    clock[1] = step


def step(pre: Any, post: Any, weights: Any, state: TimingState, coef: tuple) -> Any:
    """Run one step ([n] spikes) or T steps ([T, n]) in place; returns the weights."""
    n_pre, n_post = state.x_pre.shape[0], state.x_post.shape[0]
    pre_steps = spikes_as_steps(pre, n_pre, "pre")
    post_steps = spikes_as_steps(post, n_post, "post", steps=pre_steps.shape[0])
    w = weights_as_numpy(weights, n_pre, n_post)
    stdp_steps(pre_steps, post_steps, w, *state, coef)  # kernel arguments follow TimingState
    return weights


@njit(parallel=True, cache=True)
def stdp_sync_rows(
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
    if rows.shape[0] * w.shape[1] >= PARALLEL_MIN_WORK:
        for k in prange(rows.shape[0]):
            stdp_sync_row(
                w, rows[k], mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
            )
    else:
        for k in range(rows.shape[0]):
            stdp_sync_row(
                w, rows[k], mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef
            )


def flush(weights: Any, state: TimingState, coef: tuple, rows: Any = None) -> Any:
    """Apply deferred LTP in place (every row, or only `rows`); returns the weights."""
    n_pre, n_post = state.x_pre.shape[0], state.x_post.shape[0]
    if rows is not None:
        w = weights_as_numpy(weights, n_pre, n_post)
        stdp_sync_rows(w, row_indices(rows, n_pre), *state, coef)
    elif not is_synced(state):
        w = weights_as_numpy(weights, n_pre, n_post)
        stdp_sync(w, *state, coef)
    return weights
