"""Numba CPU kernels of the rate-based Hebbian rule with Oja's normalisation, and wrappers.

Rates are O(N) per step. Oja's decay term -y_j^2 w_ij touches every synapse whose post
rate is nonzero, so the update is dense by nature; it runs every `update_interval` steps
(two passes over rows in parallel: squared norm for the cap, then the update).
"""

from __future__ import annotations

from typing import Any

from numba import float32, njit, prange

from plastic.kernels_numba.arrays import activity_as_steps, weights_as_numpy
from plastic.kernels_numba.cpu_events import serial_sum
from plastic.kernels_numba.cpu_threads import PARALLEL_MIN_WORK, parallel_and_serial
from plastic.kernels_numba.state_layout import RateState
from plastic.kernels_numba.synapse_math import (
    mask_row,
    norm_cap_scale,
    oja_row,
    oja_row_square_sum,
    rate_trace,
)


@njit(cache=True, fastmath={"reassoc", "nsz"})
def oja_square_sum(w, i, mask, rate_pre, rate_post, learning_rate):
    """Squared norm of row i's Oja increment (reassociated so that it vectorises)."""
    return oja_row_square_sum(
        w, i, mask, mask_row(mask, i), rate_pre[i], rate_post, learning_rate, 0, 1
    )


@njit(cache=True)
def oja_weight_row(w, i, mask, rate_pre, rate_post, learning_rate, scale, w_min, w_max):
    """Row i of an Oja update, scaled by the norm cap's factor."""
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
        0,
        1,
    )


def _oja_update(w, rate_pre, rate_post, mask, row_square, coef):
    """One norm-capped Oja update of every row."""
    learning_rate, max_norm = coef.learning_rate, coef.max_norm
    w_min, w_max = coef.w_min, coef.w_max
    n_pre = w.shape[0]
    for i in prange(n_pre):
        row_square[i] = oja_square_sum(w, i, mask, rate_pre, rate_post, learning_rate)
    scale = float32(norm_cap_scale(1.0, serial_sum(row_square), max_norm))
    for i in prange(n_pre):
        oja_weight_row(w, i, mask, rate_pre, rate_post, learning_rate, scale, w_min, w_max)


oja_update_parallel, oja_update_serial = parallel_and_serial(_oja_update)


@njit(cache=True)
def hebb_steps(pre, post, w, rate_pre, rate_post, mask, row_square, clock, coef, interval):
    """Advance rates over pre[T, n_pre], post[T, n_post] (float32) and apply Oja updates."""
    gain = coef.gain
    for s in range(pre.shape[0]):
        step = clock[0] + 1
        clock[0] = step
        for i in range(rate_pre.shape[0]):
            rate_pre[i] = rate_trace(rate_pre[i], gain, pre[s, i])
        for j in range(rate_post.shape[0]):
            rate_post[j] = rate_trace(rate_post[j], gain, post[s, j])
        if step % interval == 0:
            if w.shape[0] * w.shape[1] >= PARALLEL_MIN_WORK:
                oja_update_parallel(w, rate_pre, rate_post, mask, row_square, coef)
            else:
                oja_update_serial(w, rate_pre, rate_post, mask, row_square, coef)


def step(pre: Any, post: Any, weights: Any, state: RateState, coef: tuple, interval: int) -> Any:
    """Run one step ([n] activities) or T steps ([T, n]) in place; returns the weights."""
    n_pre, n_post = state.rate_pre.shape[0], state.rate_post.shape[0]
    pre_steps = activity_as_steps(pre, n_pre, "pre")
    post_steps = activity_as_steps(post, n_post, "post", pre_steps.shape[0])
    w = weights_as_numpy(weights, n_pre, n_post)
    hebb_steps(pre_steps, post_steps, w, *state, coef, interval)  # arguments follow RateState
    return weights
