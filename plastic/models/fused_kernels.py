"""Numba kernels for one token of a frozen `SpikingLM`: each path of a block in one compiled call.

Every kernel handles a batch of B rows, one token each, and runs a population's T timesteps
in one loop per neuron with the membrane in a register (no Python per population or per
timestep). Matrix-vector products read transposed weights `wt[in, out]` row by row and skip
zero inputs, so a product with spike counts (about 90 % zeros) costs what its spikes cost.
Arithmetic is float32 in the order the torch path uses (LIF: `beta * mem + input`, then
`- reset * threshold`), so spikes are bit-identical given the same current; the products sum
in another order than BLAS (float32 rounding, ~1e-7 relative).

Compiled once and cached on disk (`cache=True`); the LIF step is `kernels_numba.lif_math`'s,
so this package's cache is dropped when those sources change (`cache_guard`). Kernels
write into the arrays they are given and return the number of spikes they emitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

import plastic.kernels_numba
from plastic.kernels_numba.cache_guard import invalidate_stale_cache
from plastic.kernels_numba.lif_math import lif_fires, lif_membrane

invalidate_stale_cache(Path(__file__).resolve().parent, Path(plastic.kernels_numba.__file__).parent)


@njit(cache=True, nogil=True)
def rms_norm(x, weight, eps, out):
    """out = x / sqrt(mean(x^2) + eps) * weight (torch.nn.RMSNorm)."""
    acc = 0.0
    for i in range(x.shape[0]):
        acc += np.float64(x[i]) * np.float64(x[i])
    rstd = np.float32(1.0 / np.sqrt(acc / x.shape[0] + eps))
    for i in range(x.shape[0]):
        out[i] = x[i] * rstd * weight[i]


@njit(cache=True, nogil=True)
def matvec_t(wt, x, out):
    """out = x @ wt for wt [in, out], skipping rows where x is zero (spike counts)."""
    out[:] = 0.0
    n_out = wt.shape[1]
    for j in range(wt.shape[0]):
        xj = x[j]
        if xj != 0.0:
            row = wt[j]
            for o in range(n_out):
                out[o] += xj * row[o]


@njit(cache=True, nogil=True)
def lif_counts(current, beta, threshold, t_fast, spikes, counts):
    """T steps of LIF neurons from rest driven by `current` for t_fast steps (see LIFPopulation).

    spikes [T, n] and counts [n] (spikes summed over T) are written; returns total spikes.
    """
    zero = np.float32(0.0)
    one = np.float32(1.0)
    total = 0
    for i in range(current.shape[0]):
        mem = zero
        drive = current[i]
        b = beta[i]
        c = 0
        for t in range(spikes.shape[0]):
            reset = one if lif_fires(mem, threshold) else zero
            mem = lif_membrane(mem, b, drive if t < t_fast else zero, reset, threshold)
            if lif_fires(mem, threshold):
                spikes[t, i] = one
                c += 1
            else:
                spikes[t, i] = zero
        counts[i] = c
        total += c
    return total


@njit(cache=True, nogil=True)
def drive_population(x, norm_w, norm_eps, w_t, beta, threshold, t_fast, h, cur, spikes, counts):
    """A population driven by w rmsnorm(x) for one token: spikes [T, n], counts [n]; total."""
    rms_norm(x, norm_w, norm_eps, h)
    matvec_t(w_t, h, cur)
    return lif_counts(cur, beta, threshold, t_fast, spikes, counts)


@njit(cache=True, nogil=True)
def add_matvec_t(w_t, v, dx, x):
    """x += v @ w_t (the product is formed in dx first, as the torch path adds a whole path)."""
    matvec_t(w_t, v, dx)
    for i in range(x.shape[0]):
        x[i] = x[i] + dx[i]


@njit(cache=True, nogil=True)
def encoder_path(tokens, embed, beta, threshold, t_fast, w_enc_t, spikes, x, work):
    """x[b] = w_enc @ counts of the encoder population driven by embed[tokens[b]].

    Returns the total spikes, or -1 (nothing written) if a token is outside the vocabulary.
    """
    d = embed.shape[1]
    counts = work[:d]
    total = 0
    for b in range(tokens.shape[0]):
        if tokens[b] < 0 or tokens[b] >= embed.shape[0]:
            return -1
    for b in range(tokens.shape[0]):
        total += lif_counts(embed[tokens[b]], beta, threshold, t_fast, spikes[:, b], counts)
        matvec_t(w_enc_t, counts, x[b])
    return total


@njit(cache=True, nogil=True)
def mix_path(
    x,
    norm_w,
    norm_eps,
    w_in_t,
    beta,
    threshold,
    t_fast,
    w_qkvg_t,
    decay,
    k_scale,
    state_in,
    state_out,
    out_norm_w,
    out_norm_eps,
    w_out_t,
    spikes,
    work,
):
    """The token-mixing path of one block for one token per row; x += its output.

    LIF(d) <- w_in rmsnorm(x); q, k, v, g = w_qkvg counts; per head h with decay g_h:
    S' = g_h S + (k_h * k_scale)^T v_h, y_h = rmsnorm(q_h S'); x += w_out (y * silu(g)).
    """
    d = x.shape[1]
    heads = decay.shape[0]
    dh = d // heads
    h = work[:d]
    cur = work[d : 2 * d]
    counts = work[2 * d : 3 * d]
    qkvg = work[3 * d : 7 * d]
    y = work[7 * d : 8 * d]
    dx = work[8 * d : 9 * d]
    total = 0
    for b in range(x.shape[0]):
        total += drive_population(
            x[b], norm_w, norm_eps, w_in_t, beta, threshold, t_fast, h, cur, spikes[:, b], counts
        )
        matvec_t(w_qkvg_t, counts, qkvg)
        for hd in range(heads):
            g_h = decay[hd]
            s_in = state_in[b, hd]
            s_out = state_out[b, hd]
            q0 = hd * dh
            k0 = d + hd * dh
            v0 = 2 * d + hd * dh
            for i in range(dh):
                ki = qkvg[k0 + i] * k_scale
                for j in range(dh):
                    s_out[i, j] = g_h * s_in[i, j] + ki * qkvg[v0 + j]
            for j in range(dh):
                y[q0 + j] = 0.0
            for i in range(dh):
                qi = qkvg[q0 + i]
                if qi != 0.0:
                    for j in range(dh):
                        y[q0 + j] += qi * s_out[i, j]
            rms_norm(y[q0 : q0 + dh], out_norm_w, out_norm_eps, y[q0 : q0 + dh])
        for i in range(d):
            gate = qkvg[3 * d + i]
            y[i] = y[i] * (gate / (np.float32(1.0) + np.exp(-gate)))
        add_matvec_t(w_out_t, y, dx, x[b])
    return total


@njit(cache=True, nogil=True)
def ffn_path(x, norm_w, norm_eps, w_up_t, beta, threshold, t_fast, w_down_t, spikes, work):
    """The feed-forward path of one block: LIF(d_ff) <- w_up rmsnorm(x); x += w_down counts."""
    d = x.shape[1]
    n = w_up_t.shape[1]
    h = work[:d]
    dx = work[d : 2 * d]
    cur = work[2 * d : 2 * d + n]
    counts = work[2 * d + n : 2 * d + 2 * n]
    total = 0
    for b in range(x.shape[0]):
        total += drive_population(
            x[b], norm_w, norm_eps, w_up_t, beta, threshold, t_fast, h, cur, spikes[:, b], counts
        )
        add_matvec_t(w_down_t, counts, dx, x[b])
    return total
