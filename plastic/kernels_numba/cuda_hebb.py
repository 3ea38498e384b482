"""Numba CUDA kernels of Oja's Hebbian rule: the scheme of `cpu_hebb` on the GPU.

Rates: one thread per neuron. Every `update_interval` steps, one block per row sums the
squared Oja increments (block reduction), the host turns the total into the norm cap's
factor with the shared `norm_cap_scale`, and a second kernel applies the scaled update.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64

from plastic.kernels_numba.cuda_common import (
    BLOCK,
    block_sum,
    device_activity,
    device_weights,
    grid_for,
    sync_device,
    to_device,
)
from plastic.kernels_numba.state_layout import RateState
from plastic.kernels_numba.synapse_math import (
    mask_row,
    norm_cap_scale,
    oja_row,
    oja_row_square_sum,
    rate_trace,
)

__all__ = ["step", "to_device"]


@cuda.jit
def advance_rates(pre_s, post_s, rate_pre, rate_post, gain):
    """r <- r + gain (a - r) for both layers."""
    k = cuda.grid(1)
    if k < rate_pre.shape[0]:
        rate_pre[k] = rate_trace(rate_pre[k], gain, pre_s[k])
    if k < rate_post.shape[0]:
        rate_post[k] = rate_trace(rate_post[k], gain, post_s[k])


@cuda.jit
def oja_square_rows(w, mask, rate_pre, rate_post, learning_rate, row_square):
    """Block i: sum of squared Oja increments of row i."""
    i = cuda.blockIdx.x
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    partial = cuda.shared.array(BLOCK, float64)
    value = oja_row_square_sum(
        w, i, mask, mask_row(mask, i), rate_pre[i], rate_post, learning_rate, tid, nt
    )
    total = block_sum(partial, value)
    if tid == 0:
        row_square[i] = total


@cuda.jit
def oja_rows(w, mask, rate_pre, rate_post, learning_rate, scale, w_min, w_max):
    """Block i: w[i, :] <- clamp(w + scale * Oja increment) on plastic synapses."""
    i = cuda.blockIdx.x
    oja_row(
        w,
        i,
        mask,
        mask_row(mask, i),
        rate_pre[i],
        rate_post,
        learning_rate,
        scale,
        w_min,
        w_max,
        cuda.threadIdx.x,
        cuda.blockDim.x,
    )


def step(pre: Any, post: Any, weights: Any, state: RateState, coef: tuple, interval: int) -> Any:
    """Run one step ([n] activities) or T steps ([T, n]) on the device; returns the weights."""
    s = state
    n_pre, n_post = s.rate_pre.shape[0], s.rate_post.shape[0]
    w = device_weights(weights, n_pre, n_post)
    pre_d = device_activity(pre, n_pre, "pre")
    post_d = device_activity(post, n_post, "post", pre_d.shape[0])
    gain, learning_rate, max_norm = coef.gain, coef.learning_rate, coef.max_norm
    w_min, w_max = coef.w_min, coef.w_max
    for k in range(pre_d.shape[0]):
        s.clock[0] += 1
        advance_rates[grid_for(max(n_pre, n_post)), BLOCK](
            pre_d[k], post_d[k], s.rate_pre, s.rate_post, gain
        )
        if s.clock[0] % interval == 0:
            oja_square_rows[n_pre, BLOCK](
                w, s.mask, s.rate_pre, s.rate_post, learning_rate, s.row_square
            )
            sync_device()
            square = float(np.sum(s.row_square.copy_to_host()))
            scale = np.float32(norm_cap_scale(1.0, square, float(max_norm)))
            oja_rows[n_pre, BLOCK](
                w, s.mask, s.rate_pre, s.rate_post, learning_rate, scale, w_min, w_max
            )
    return weights
