"""Numba CUDA kernels of reward-modulated STDP: the scheme of `cpu_rstdp` on the GPU.

One block per row. A step touches only the eligibility rows of spiking pre neurons (lazy
per-row decay, replay of deferred LTP); a reward brings every row up to date while summing
its squares (block reduction), the host turns the sum into the norm-capped scale with the
shared `norm_cap_scale`, and a second kernel adds scale * e to the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float32, float64

from plastic.kernels_numba.cuda_common import (
    BLOCK,
    begin_step,
    block_sum,
    device_spikes,
    device_weights,
    sync_device,
    to_device,
)
from plastic.kernels_numba.state_layout import EligibilityState, is_synced
from plastic.kernels_numba.synapse_math import (
    eligibility_row_from_ring,
    eligibility_row_on_pre_spike,
    mask_row,
    norm_cap_scale,
    reward_row,
    row_square_sum,
    scale_row,
)

__all__ = ["apply_reward", "flush", "step", "to_device"]


@cuda.jit(device=True)
def replay_eligibility_row(
    e, w, i, mask, mi, ring_post, ring_count, x_synced, first, last, target, coef, tid, nt
):
    """Row i's deferred LTP of steps first..last into e, decayed to `target` (barriers)."""
    decay_pre, a_plus, w_max = coef.decay_pre, coef.a_plus, coef.w_max
    soft, decay_elig = coef.soft, coef.decay_elig
    ring = ring_count.shape[0]
    x = x_synced
    for step in range(first, last + 1):
        x = x * decay_pre
        slot = step % ring
        factor = float32(decay_elig ** (target - step))
        eligibility_row_from_ring(
            e,
            w,
            i,
            mask,
            mi,
            ring_post,
            slot,
            ring_count[slot],
            x,
            factor,
            a_plus,
            w_max,
            soft,
            tid,
            nt,
        )
        cuda.syncthreads()


@cuda.jit(device=True)
def sync_row(
    e, w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef, tid, nt
):
    """Bring eligibility row i to `step` (uniform per block: every thread takes part)."""
    first = row_step[i]
    if first != step:
        mi = mask_row(mask, i)
        scale_row(e, i, float32(coef.decay_elig ** (step - first)), tid, nt)
        cuda.syncthreads()
        replay_eligibility_row(
            e,
            w,
            i,
            mask,
            mi,
            ring_post,
            ring_count,
            x_pre_synced[i],
            first + 1,
            step,
            step,
            coef,
            tid,
            nt,
        )
        if tid == 0:
            row_step[i] = step
            x_pre_synced[i] = x_pre[i]


@cuda.jit
def spiking_rows(
    e,
    w,
    pre_s,
    post_s,
    x_pre,
    x_post,
    x_pre_synced,
    row_step,
    ring_post,
    ring_count,
    mask,
    step,
    coef,
):
    """Block i: if pre neuron i spiked, bring its eligibility row to `step` (with its STDP)."""
    i = cuda.blockIdx.x
    if pre_s[i] == 0:
        return
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    a_plus, a_minus, w_min, w_max = coef.a_plus, coef.a_minus, coef.w_min, coef.w_max
    soft, decay_elig = coef.soft, coef.decay_elig
    mi = mask_row(mask, i)
    first = row_step[i]
    row_decay = float32(decay_elig ** (step - first))
    eligibility_row_on_pre_spike(
        e,
        w,
        i,
        mask,
        mi,
        post_s,
        x_pre[i],
        x_post,
        row_decay,
        a_plus,
        a_minus,
        w_min,
        w_max,
        soft,
        tid,
        nt,
    )
    cuda.syncthreads()
    replay_eligibility_row(
        e,
        w,
        i,
        mask,
        mi,
        ring_post,
        ring_count,
        x_pre_synced[i],
        first + 1,
        step - 1,
        step,
        coef,
        tid,
        nt,
    )
    if tid == 0:
        row_step[i] = step
        x_pre_synced[i] = x_pre[i]


@cuda.jit
def sync_all_rows(
    e, w, x_pre, x_pre_synced, row_step, ring_post, ring_count, mask, step, coef, row_square
):
    """Block i: bring eligibility row i to `step` and store its sum of squares."""
    i = cuda.blockIdx.x
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    sync_row(
        e, w, i, mask, x_pre, x_pre_synced, row_step, ring_post, ring_count, step, coef, tid, nt
    )
    cuda.syncthreads()
    partial = cuda.shared.array(BLOCK, float64)
    total = block_sum(partial, row_square_sum(e, i, tid, nt))
    if tid == 0:
        row_square[i] = total


@cuda.jit
def reward_rows(w, e, mask, scale, w_min, w_max):
    """Block i: w[i, :] <- clamp(w + scale * e) on plastic synapses."""
    i = cuda.blockIdx.x
    reward_row(
        w, e, i, mask, mask_row(mask, i), scale, w_min, w_max, cuda.threadIdx.x, cuda.blockDim.x
    )


def _sync_all(w: Any, state: EligibilityState, coef: tuple) -> None:
    t = state.timing
    step_no = int(t.clock[0])
    sync_all_rows[t.x_pre.shape[0], BLOCK](
        state.eligibility,
        w,
        t.x_pre,
        t.x_pre_synced,
        t.row_step,
        t.ring_post,
        t.ring_count,
        t.mask,
        step_no,
        coef,
        state.row_square,
    )
    t.clock[1] = step_no


def step(pre: Any, post: Any, weights: Any, state: EligibilityState, coef: tuple) -> Any:
    """Run one step ([n] spikes) or T steps ([T, n]) on the device; returns the weights."""
    t = state.timing
    n_pre, n_post = t.x_pre.shape[0], t.x_post.shape[0]
    w = device_weights(weights, n_pre, n_post)
    pre_d = device_spikes(pre, n_pre, "pre")
    post_d = device_spikes(post, n_post, "post", pre_d.shape[0])
    ring = t.ring_count.shape[0]
    for k in range(pre_d.shape[0]):
        step_no = begin_step(t, pre_d[k], post_d[k], coef)
        spiking_rows[n_pre, BLOCK](
            state.eligibility,
            w,
            pre_d[k],
            post_d[k],
            t.x_pre,
            t.x_post,
            t.x_pre_synced,
            t.row_step,
            t.ring_post,
            t.ring_count,
            t.mask,
            step_no,
            coef,
        )
        if step_no - t.clock[1] >= ring:
            _sync_all(w, state, coef)
    return weights


def apply_reward(
    modulation: float, max_norm: float, weights: Any, state: EligibilityState, coef: tuple
) -> Any:
    """Add modulation * eligibility (norm-capped) to the device weights; returns them."""
    t = state.timing
    w = device_weights(weights, t.x_pre.shape[0], t.x_post.shape[0])
    _sync_all(w, state, coef)
    sync_device()
    square = float(np.sum(state.row_square.copy_to_host()))
    scale = np.float32(norm_cap_scale(float(modulation), square, float(max_norm)))
    reward_rows[t.x_pre.shape[0], BLOCK](
        w, state.eligibility, t.mask, scale, coef.w_min, coef.w_max
    )
    return weights


def flush(weights: Any, state: EligibilityState, coef: tuple) -> Any:
    """Bring the eligibility up to date on the device; returns the weights (never deferred)."""
    if not is_synced(state.timing):
        t = state.timing
        _sync_all(device_weights(weights, t.x_pre.shape[0], t.x_post.shape[0]), state, coef)
    return weights
