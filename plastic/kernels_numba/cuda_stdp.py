"""Numba CUDA kernels of pair STDP: the event-driven scheme of `cpu_stdp` on the GPU.

One block per weight row, its threads splitting the row (`synapse_math` row functions with
start = threadIdx.x, stride = blockDim.x). Per step: one kernel advances the traces and
appends post spikes to the ring slot (`cuda_common.begin_step`, shared with `cuda_rstdp`);
one kernel lets the rows of spiking pre neurons replay their deferred LTP (a barrier
between replayed steps, since two steps can touch the same synapse) and apply the step's
update; rows of silent pre neurons return at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda

from plastic.kernels_numba.cuda_common import (
    BLOCK,
    begin_step,
    device_rows,
    device_spikes,
    device_weights,
    to_device,
)
from plastic.kernels_numba.state_layout import TimingState, is_synced
from plastic.kernels_numba.synapse_math import (
    mask_row,
    stdp_row_from_ring,
    stdp_row_on_pre_spike,
)

__all__ = ["flush", "step", "to_device"]


@cuda.jit(device=True)
def replay_weight_row(w, i, mask, mi, ring_post, ring_count, x_synced, first, last, coef, tid, nt):
    """Row i's deferred LTP of steps first..last, one step at a time (barrier in between)."""
    decay_pre, a_plus, w_min, w_max = coef.decay_pre, coef.a_plus, coef.w_min, coef.w_max
    max_dw, soft = coef.max_dw, coef.soft
    ring = ring_count.shape[0]
    x = x_synced
    for step in range(first, last + 1):
        x = x * decay_pre
        slot = step % ring
        stdp_row_from_ring(
            w,
            i,
            mask,
            mi,
            ring_post,
            slot,
            ring_count[slot],
            x,
            a_plus,
            w_min,
            w_max,
            max_dw,
            soft,
            tid,
            nt,
        )
        cuda.syncthreads()


@cuda.jit
def spiking_rows(
    w, pre_s, post_s, x_pre, x_post, x_pre_synced, row_step, ring_post, ring_count, mask, step, coef
):
    """Block i: if pre neuron i spiked, catch row i up and apply this step's update."""
    i = cuda.blockIdx.x
    if pre_s[i] == 0:
        return
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    a_plus, a_minus, w_min, w_max = coef.a_plus, coef.a_minus, coef.w_min, coef.w_max
    max_dw, soft = coef.max_dw, coef.soft
    mi = mask_row(mask, i)
    replay_weight_row(
        w,
        i,
        mask,
        mi,
        ring_post,
        ring_count,
        x_pre_synced[i],
        row_step[i] + 1,
        step - 1,
        coef,
        tid,
        nt,
    )
    stdp_row_on_pre_spike(
        w,
        i,
        mask,
        mi,
        post_s,
        x_pre[i],
        x_post,
        a_plus,
        a_minus,
        w_min,
        w_max,
        max_dw,
        soft,
        tid,
        nt,
    )
    cuda.syncthreads()
    if tid == 0:
        row_step[i] = step
        x_pre_synced[i] = x_pre[i]


@cuda.jit
def sync_rows(w, rows, x_pre, x_pre_synced, row_step, ring_post, ring_count, mask, step, coef):
    """Block k: apply the deferred LTP of row rows[k] (every row when rows has n_pre items)."""
    i = rows[cuda.blockIdx.x]
    if row_step[i] == step:
        return
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    replay_weight_row(
        w,
        i,
        mask,
        mask_row(mask, i),
        ring_post,
        ring_count,
        x_pre_synced[i],
        row_step[i] + 1,
        step,
        coef,
        tid,
        nt,
    )
    if tid == 0:
        row_step[i] = step
        x_pre_synced[i] = x_pre[i]


def _sync(w: Any, rows: Any, state: TimingState, coef: tuple) -> None:
    s = state
    sync_rows[rows.shape[0], BLOCK](
        w,
        rows,
        s.x_pre,
        s.x_pre_synced,
        s.row_step,
        s.ring_post,
        s.ring_count,
        s.mask,
        int(s.clock[0]),
        coef,
    )


def _all_rows(n_pre: int) -> Any:
    """Device array 0..n_pre-1 (cached): the row list of a full sync."""
    rows = _ALL_ROWS.get(n_pre)
    if rows is None:
        rows = _ALL_ROWS[n_pre] = cuda.to_device(np.arange(n_pre, dtype=np.int64))
    return rows


_ALL_ROWS: dict[int, Any] = {}


def step(pre: Any, post: Any, weights: Any, state: TimingState, coef: tuple) -> Any:
    """Run one step ([n] spikes) or T steps ([T, n]) on the device; returns the weights."""
    s = state
    n_pre, n_post = s.x_pre.shape[0], s.x_post.shape[0]
    w = device_weights(weights, n_pre, n_post)
    pre_d = device_spikes(pre, n_pre, "pre")
    post_d = device_spikes(post, n_post, "post", pre_d.shape[0])
    ring = s.ring_count.shape[0]
    for t in range(pre_d.shape[0]):
        step_no = begin_step(s, pre_d[t], post_d[t], coef)
        spiking_rows[n_pre, BLOCK](
            w,
            pre_d[t],
            post_d[t],
            s.x_pre,
            s.x_post,
            s.x_pre_synced,
            s.row_step,
            s.ring_post,
            s.ring_count,
            s.mask,
            step_no,
            coef,
        )
        if step_no - s.clock[1] >= ring:
            _sync(w, _all_rows(s.x_pre.shape[0]), s, coef)
            s.clock[1] = step_no
    return weights


def flush(weights: Any, state: TimingState, coef: tuple, rows: Any = None) -> Any:
    """Apply deferred LTP on the device (every row, or only `rows`); returns the weights."""
    s = state
    w = device_weights(weights, s.x_pre.shape[0], s.x_post.shape[0])
    if rows is not None:
        selected = device_rows(rows, s.x_pre.shape[0])
        if selected.shape[0] > 0:
            _sync(w, selected, s, coef)
    elif not is_synced(s):
        _sync(w, _all_rows(s.x_pre.shape[0]), s, coef)
        s.clock[1] = s.clock[0]
    return weights
