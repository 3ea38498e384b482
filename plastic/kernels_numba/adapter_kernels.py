"""Small Numba kernels of the adapters' per-token path: spike packing, event-driven row sums,
a LIF population, and a token's surprise. Pure functions over preallocated arrays.

Spikes arrive from the backbone as float32 0/1 tensors [T, ..., n] (viewed, never copied,
through `Tensor.numpy()`); the kernels read any strides.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from plastic.kernels_numba.lif_math import lif_fires, lif_membrane


@njit(cache=True)
def pack_spikes(spikes, raster, counts, active):
    """raster[t, i] = spikes[t, i] != 0 (uint8), counts[i] = spikes of i over the T steps,
    active[:k] = indices with a spike; returns (k, total spikes). A `raster` with fewer
    than T rows is not written (only counts and active are)."""
    steps, n = spikes.shape
    write = raster.shape[0] >= steps
    k = 0
    total = 0.0
    for i in range(n):
        c = 0.0
        for t in range(steps):
            s = spikes[t, i] != 0.0
            if write:
                raster[t, i] = 1 if s else 0
            if s:
                c += 1.0
        counts[i] = c
        total += c
        if c > 0.0:
            active[k] = i
            k += 1
    return k, total


@njit(cache=True)
def sum_rows(weights, active, n_active, counts, gain, out):
    """out = gain * sum_k counts[active[k]] * weights[active[k], :] (event-driven matvec)."""
    out[:] = 0.0
    for k in range(n_active):
        i = active[k]
        c = np.float32(gain * counts[i])
        row = weights[i]
        for j in range(out.shape[0]):
            out[j] += c * row[j]


@njit(cache=True)
def sharpen(values, power, gain):
    """values <- gain * sign(v) |v|^power in place (power 1: a plain scale)."""
    if power == 1.0:
        for j in range(values.shape[0]):
            values[j] = gain * values[j]
        return
    for j in range(values.shape[0]):
        v = values[j]
        magnitude = abs(v) ** power
        values[j] = gain * (magnitude if v >= 0 else -magnitude)


@njit(cache=True)
def strongest(values, threshold, out):
    """Indices of the largest entries >= threshold, largest first, at most len(out); count."""
    k = 0
    last = np.inf
    while k < out.shape[0]:
        best, best_j = -np.inf, -1
        for j in range(values.shape[0]):
            v = values[j]
            if v >= threshold and v > best and (v < last or (v == last and _after(out, k, j))):
                best, best_j = v, j
        if best_j < 0:
            break
        out[k] = best_j
        last = best
        k += 1
    return k


@njit(cache=True)
def _after(out, k, j):
    """True if index j is not among out[:k] (ties are taken in index order)."""
    for m in range(k):  # noqa: SIM110 - a plain loop compiles in nopython mode
        if out[m] >= j:
            return False
    return True


@njit(cache=True)
def lif_population(pre, weights, beta, threshold, mem, current, post, counts, active):
    """Run `weights.shape[1]` LIF neurons over T steps driven by pre spikes [T, n_pre] (uint8).

    The backbone's equations (`lif_math`, reset by subtraction); U starts at 0 every token,
    I[t] = sum of the rows of the pre neurons spiking at t. Writes post spikes [T, n_post]
    (uint8), their counts and the indices of neurons that spiked (returned count).
    """
    steps, n_pre = pre.shape
    n_post = weights.shape[1]
    zero, one = np.float32(0.0), np.float32(1.0)
    mem[:] = 0.0
    for j in range(n_post):
        counts[j] = 0.0
    for t in range(steps):
        current[:] = 0.0
        for i in range(n_pre):
            if pre[t, i] != 0:
                row = weights[i]
                for j in range(n_post):
                    current[j] += row[j]
        for j in range(n_post):
            reset = one if (t > 0 and post[t - 1, j] != 0) else zero
            u = lif_membrane(mem[j], beta, current[j], reset, threshold)
            mem[j] = u
            spiked = lif_fires(u, threshold)
            post[t, j] = 1 if spiked else 0
            if spiked:
                counts[j] += 1.0
    k = 0
    for j in range(n_post):
        if counts[j] > 0.0:
            active[k] = j
            k += 1
    return k


@njit(cache=True)
def softmax_normaliser(logits):
    """(m, Z) with m = max(logits) and Z = sum exp(logits - m): softmax = exp(l - m) / Z."""
    m = -np.inf
    for j in range(logits.shape[0]):
        if logits[j] > m:
            m = logits[j]
    total = 0.0
    for j in range(logits.shape[0]):
        total += math.exp(float(logits[j]) - m)
    return m, total


@njit(cache=True)
def token_bits(logits, token):
    """(-log2 p(token), p(token)) under softmax(logits), computed in float64."""
    m, total = softmax_normaliser(logits)
    log_p = float(logits[token]) - m - math.log(total)
    return -log_p / math.log(2.0), math.exp(log_p)


@njit(cache=True)
def mix_cache(logits, scores, lam, confidence_power, doubt_power=0.0):
    """logits <- log((1 - l) softmax(logits) + l softmax(scores)) in place (float64 inside).

    The neural cache's interpolation (Grave et al. 2017): l = lam, times
    (max softmax(scores))^q with `confidence_power` q > 0 (the memory's confidence: ~0 when
    it recalls nothing), times (1 - max softmax(logits))^r with `doubt_power` r > 0 (the
    backbone's doubt: ~0 where it is sure). A byte keeps at least (1 - lam) of the
    backbone's probability, so the mix costs at most -log2(1 - lam) bits on text the
    memory knows nothing about. Returns l.
    """
    m1, z1 = softmax_normaliser(logits)
    m2, z2 = softmax_normaliser(scores)
    mix = mix_weight(lam, z1, z2, confidence_power, doubt_power)
    for j in range(logits.shape[0]):
        p = mixed_probability(logits[j], m1, z1, scores[j], m2, z2, mix)
        logits[j] = math.log(max(p, 1e-37))
    return mix


@njit(cache=True)
def mix_weight(lam, z1, z2, confidence_power, doubt_power):
    """The cache mix's weight l' = lam (1 / z2)^q (1 - 1 / z1)^r (see `mix_cache`)."""
    mix = lam
    if confidence_power > 0:
        mix *= (1.0 / z2) ** confidence_power
    if doubt_power > 0:
        mix *= (1.0 - 1.0 / z1) ** doubt_power
    return mix


@njit(cache=True)
def mixed_probability(logit, m1, z1, score, m2, z2, mix):
    """(1 - l') softmax(logits)_j + l' softmax(scores)_j of one entry j (see `mix_cache`)."""
    p = (1.0 - mix) * math.exp(float(logit) - m1) / z1
    p += mix * math.exp(float(score) - m2) / z2
    return p


@njit(cache=True)
def softmax_normalisers(logits, m_out, z_out):
    """`softmax_normaliser` of every row of logits [N, V] into m_out, z_out [N]."""
    for s in range(logits.shape[0]):
        m_out[s], z_out[s] = softmax_normaliser(logits[s])


@njit(cache=True)
def running_mean(rates, weight, step, values, scale):
    """rates <- a bias-corrected running mean of `values` * scale with step a; returns its
    new weight w' = w + a (1 - w) (0: empty, so the first values are taken as they are)."""
    w = weight + step * (1.0 - weight)
    k = step / w
    for i in range(rates.shape[0]):
        rates[i] += k * (values[i] * scale - rates[i])
    return w


@njit(cache=True)
def chi_distance(rates, reference, floor):
    """mean_i (rates_i - ref_i)^2 / max(ref_i (1 - ref_i), floor): how far firing rates
    lie from reference rates, each neuron measured against its own binomial spread."""
    total = 0.0
    for i in range(rates.shape[0]):
        r = reference[i]
        spread = max(r * (1.0 - r), floor)
        d = rates[i] - r
        total += d * d / spread
    return total / rates.shape[0]


def logits_bits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log2 softmax(logits)[target] per row, computed in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    picked = z[np.arange(z.shape[0]), targets.astype(np.int64)]
    return (log_norm - picked) / math.log(2.0)


def warm_up() -> None:
    """Compile (or load from cache) every kernel once, so the first token is not slow."""
    spikes = np.zeros((2, 3), np.float32)
    raster = np.zeros((2, 3), np.uint8)
    counts = np.zeros(3, np.float32)
    active = np.zeros(3, np.int64)
    pack_spikes(spikes, raster, counts, active)
    out = np.zeros(2, np.float32)
    weights = np.zeros((3, 2), np.float32)
    sum_rows(weights, active, 0, counts, np.float32(1.0), out)
    post = np.zeros((2, 2), np.uint8)
    lif_population(
        raster,
        weights,
        np.float32(0.9),
        np.float32(1.0),
        out.copy(),
        out.copy(),
        post,
        out.copy(),
        np.zeros(2, np.int64),
    )
    token_bits(np.zeros(4, np.float32), 1)
    mix_cache(np.zeros(4, np.float32), np.zeros(4, np.float32), 0.1, 1.0, 0.5)
    sharpen(out, 2.0, 1.0)
    strongest(out, np.float32(0.5), np.zeros(2, np.int64))
    rates = np.zeros(3, np.float64)
    running_mean(rates, 0.0, 0.5, counts, 0.5)  # a position's counts (float32)
    running_mean(rates, 0.5, 0.5, rates.copy(), 0.5)  # a learnt token's rates (float64)
    chi_distance(rates, rates.copy(), 1e-3)


@njit(cache=True)
def score_positions(
    logits,
    tokens,
    bos,
    counts,
    totals,
    offsets,
    active,
    weights,
    gain,
    sharpness,
    cache_mix,
    confidence_power,
    doubt_power,
    context_on,
    context_step,
    timesteps,
    signature,
    signature_weight,
    tolerance,
    floor,
    context,
    delta,
    bits,
    targets,
    norm_m,
    norm_z,
    frozen_bits,
    scratch,
):
    """A readout layer's contribution to every row of `logits` [N, V] of a text it only
    reads (no learning), in one call: per position s the steps of `ReadoutLayer.contribute`
    for a scored (not live) position, from precomputed spike counts (counts[s] [n], their
    sum totals[s], the active neurons active[offsets[s]:offsets[s + 1]]). The text's context
    (`context` [n], a scratch buffer) restarts from `signature` at every `bos` token.

    With `bits` [N] (else an empty array): `logits` are left as they are (the frozen
    backbone's) and bits[s] gets -log2 p(targets[s]) under the adapted row instead, from
    the rows' softmax normalisers (norm_m, norm_z) and their bits (frozen_bits) computed
    once: the cache mix is then evaluated at the target alone (`scratch` [V]: a buffer)."""
    weight = 0.0
    only_bits = bits.shape[0] > 0
    ln2 = math.log(2.0)
    for s in range(logits.shape[0]):
        row = logits[s]
        if only_bits:
            bits[s] = frozen_bits[s]
        if context_on:
            if tokens[s] == bos:
                context[:] = signature
                weight = 1.0 if signature_weight > 0 else 0.0
            weight = running_mean(context, weight, context_step, counts[s], 1.0 / timesteps)
        start, stop = offsets[s], offsets[s + 1]
        if stop == start:
            continue
        gate = 1.0
        if context_on and signature_weight != 0.0:
            excess = (2.0 * tolerance - chi_distance(context, signature, floor)) / tolerance
            gate = min(1.0, max(0.0, excess))
        if gate <= 0:
            continue  # a closed gate: the row stays as it is (whatever the memory holds)
        sum_rows(weights, active[start:stop], stop - start, counts[s], 1.0 / totals[s], delta)
        lam = cache_mix
        sharpen(delta, sharpness, gain)
        if cache_mix > 0:
            nonzero = False
            for j in range(delta.shape[0]):
                if delta[j] != 0.0:
                    nonzero = True
                    break
            if not (gate > 0 and nonzero):
                continue
            if not only_bits:
                mix_cache(row, delta, lam * gate, confidence_power, doubt_power)
                continue
            m2, z2 = softmax_normaliser(delta)
            mix = mix_weight(lam * gate, norm_z[s], z2, confidence_power, doubt_power)
            t = targets[s]
            p = mixed_probability(row[t], norm_m[s], norm_z[s], delta[t], m2, z2, mix)
            bits[s] = -math.log(max(p, 1e-37)) / ln2
            continue
        if gate <= 0:
            continue
        out = scratch if only_bits else row
        g32 = np.float32(gate)
        for j in range(row.shape[0]):
            out[j] = row[j] + (delta[j] if gate == 1.0 else g32 * delta[j])
        if only_bits:
            m, total = softmax_normaliser(out)
            bits[s] = (math.log(total) - (float(out[targets[s]]) - m)) / ln2
