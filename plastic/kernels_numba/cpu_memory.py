"""Fused CPU kernels of the context memory: one compiled call reads a whole chunk.

Per position s of a chunk (token ids[s], the backbone's logits row [V] for it), in order:

1. learn   - the pending prediction of position s - 1 meets its byte y = ids[s]: the
             gate's running advantage moves (always: it belongs to the text); when learning,
             every detector that was active steps its synapses toward y (`detector_step`),
             and the mixer takes its delta-rule step;
2. shift   - y enters the delay line (a token id >= 256 empties it: a stream boundary);
3. predict - the detectors of the delay line's last k bytes (k in `orders`) are looked up;
             each one present refines the chain p_k = e p_(k-1) + (1 - e) w_k from the
             backbone's p_0 up (Witten-Bell escape e); the mixer, its weight set chosen by
             the longest order present and its confidence, mixes log p_0..p_K geometrically
             into q; the gate g mixes q with the backbone; the logits row is overwritten
             with the log of that prediction (special tokens keep the backbone's mass).

Event-driven: the work per byte grows with the number of orders, not with the number of
detectors; a detector that never fired has no synapses. Capacity is checked before each
position: the kernel stops early (returns s) when a position could overflow the tables,
the caller grows them and calls again from there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from plastic.kernels_numba.memory_math import (
    HASH_SEED,
    N_BYTES,
    detector_key,
    escape_weight,
    extend_hash,
    metaplastic_rate,
    step_synapse_list,
)

LOG_FLOOR = 1e-12  # probabilities below this count as this in the mixer's inputs
LOG_FLOOR_LN = math.log(LOG_FLOOR)
EMPTY = uint64(0)


@njit(cache=True)
def find_slot(keys, key):
    """The slot holding `key`, or the empty slot where it would go (linear probing)."""
    mask = uint64(keys.shape[0] - 1)
    idx = key & mask
    while keys[idx] != EMPTY and keys[idx] != key:
        idx = (idx + uint64(1)) & mask
    return idx


@njit(cache=True)
def fill_table(keys, ids, det_key, n_det):
    """Insert the first `n_det` detector keys into an empty table."""
    for d in range(n_det):
        slot = find_slot(keys, det_key[d])
        keys[slot] = det_key[d]
        ids[slot] = d


@njit(cache=True)
def detector_of(tables, key, create):
    """The detector id of `key`; -1 if absent and not `create`d (or the tables are full)."""
    slot = find_slot(tables.table_keys, key)
    if tables.table_keys[slot] == key:
        return tables.table_ids[slot]
    if not create or tables.sizes[0] >= tables.det_key.shape[0]:
        return -1
    d = tables.sizes[0]
    tables.sizes[0] = d + 1
    tables.table_keys[slot] = key
    tables.table_ids[slot] = d
    tables.det_key[d] = key
    return d


@njit(cache=True)
def detector_step(tables, d, target, decay, modulation):
    """Soft-bounded STDP of detector d's synapses toward byte `target`, at the metaplastic
    rate times `modulation` (1 for observed text; a reward's sign and size for feedback).
    A missing synapse to `target` grows on potentiation (while the pool has room)."""
    rate, trace = metaplastic_rate(tables.det_trace[d], decay)
    rate *= modulation
    if rate < 0.0:  # depression only: step away from target, never below 0
        rate = -rate
        p = tables.det_head[d]
        while p >= 0:
            if tables.syn_post[p] == target:
                tables.syn_weight[p] -= np.float32(rate) * tables.syn_weight[p]
            p = tables.syn_next[p]
        return
    found = step_synapse_list(
        tables.det_head[d], target, rate, tables.syn_post, tables.syn_weight, tables.syn_next
    )
    if not found and tables.sizes[1] < tables.syn_post.shape[0]:
        p = tables.sizes[1]
        tables.sizes[1] = p + 1
        tables.syn_post[p] = target
        tables.syn_weight[p] = np.float32(rate)
        tables.syn_next[p] = tables.det_head[d]
        tables.det_head[d] = p
        tables.det_fanout[d] += 1
    tables.det_trace[d] = np.float32(trace + modulation)


@njit(cache=True)
def mixer_step(mixer, active, logs, expect, target, rate):
    """Delta rule of the mixing synapses of set `active` (`plastic.rules.delta_mixer`)."""
    for i in range(logs.shape[0]):
        mixer[active, i] += rate * (logs[i, target] - expect[i])


@njit(cache=True)
def context_keys(history, known, orders, keys):
    """keys[j] = the key of the detector of the last orders[j] bytes of the delay line
    `history` (latest byte first, `known` of them real); EMPTY where fewer are known."""
    h = uint64(HASH_SEED)
    depth = 0
    for j in range(orders.shape[0]):
        order = orders[j]
        if order > known:
            keys[j] = EMPTY
            continue
        while depth < order:
            h = extend_hash(h, history[depth])
            depth += 1
        keys[j] = detector_key(h, order)


@njit(cache=True)
def learn_pending(tables, reading, params, y, teacher, learn):
    """Step 1 of the module docstring for the pending prediction and its byte y; the
    mixer's teaching signal is byte `teacher` (y itself but in `bench adapt`'s sham)."""
    if reading.meta[1] == 0:
        return
    reading.meta[1] = 0
    if y >= N_BYTES:
        return
    q = reading.pending_mix[y]
    pb = reading.pending_backbone[y]
    advantage = math.log2(max(q, 1e-300)) - math.log2(max(pb, 1e-300))
    gate = reading.gate[0] + (advantage - reading.gate[0]) / params.gate_tau
    reading.gate[0] = min(max(gate, -params.gate_clip), params.gate_clip)
    if not learn:
        return
    if teacher < N_BYTES:
        mixer_step(
            tables.mixer,
            reading.meta[2],
            reading.pending_logs,
            reading.pending_expect,
            teacher,
            params.mixer_rate,
        )
    for j in range(reading.pending_keys.shape[0]):
        key = reading.pending_keys[j]
        if key == EMPTY:
            break
        d = detector_of(tables, key, True)
        if d >= 0:
            detector_step(tables, d, y, params.decay, 1.0)


@njit(cache=True)
def shift_history(reading, token):
    """Step 2: `token` enters the delay line (an id >= 256 empties it)."""
    history = reading.history
    if token >= N_BYTES:
        reading.meta[0] = 0
        return
    for i in range(history.shape[0] - 1, 0, -1):
        history[i] = history[i - 1]
    history[0] = token
    reading.meta[0] = min(reading.meta[0] + 1, history.shape[0])


@njit(cache=True)
def exp_shifted(source, out, n):
    """out[:n] = exp(source[:n] - max); returns (max, sum of out[:n]). `out` may be `source`."""
    top = -1e300
    for b in range(n):
        top = max(top, source[b])
    total = 0.0
    for b in range(n):
        out[b] = math.exp(source[b] - top)
        total += out[b]
    return top, total


@njit(cache=True)
def backbone_bytes(row, p_full, pb, log_pb):
    """The backbone's part of step 3 for one logits row [V]: p_full = softmax(row), pb = its
    distribution renormalised over the 256 bytes, log_pb = log pb (floored); returns the
    bytes' share of the mass (the rest belongs to special tokens)."""
    v = row.shape[0]
    top, total = exp_shifted(row, p_full, v)
    for b in range(N_BYTES, v):
        p_full[b] /= total
    byte_mass = 0.0
    for b in range(N_BYTES):
        p_full[b] /= total
        byte_mass += p_full[b]
    log_norm = top + math.log(total) + math.log(byte_mass)  # log pb = row - log_norm
    for b in range(N_BYTES):
        pb[b] = p_full[b] / byte_mass
        log_pb[b] = max(row[b] - log_norm, LOG_FLOOR_LN)
    return byte_mass


@njit(cache=True)
def mix_detectors(tables, reading, params):
    """The memory's part of step 3: the chain from the backbone's `pending_backbone` up
    through the detectors present (their logs into `pending_logs`), mixed by the mixer into
    `pending_mix` (normalised); returns the mixer set used."""
    pb = reading.pending_backbone
    logs = reading.pending_logs
    orders = params.orders
    k_max = orders.shape[0]
    chain = reading.pending_mix  # scratch until the mixture is written into it
    for b in range(N_BYTES):
        chain[b] = pb[b]
    keys = reading.pending_keys
    context_keys(reading.history, reading.meta[0], orders, keys)
    longest = -1
    confidence = 0.0
    for j in range(k_max):
        d = detector_of(tables, keys[j], False) if keys[j] != EMPTY else -1
        if d >= 0 and tables.det_trace[d] > 0:
            e = escape_weight(tables.det_fanout[d], tables.det_trace[d], params.prior)
            # log(e * p) = log e + log p: a real log only for the bytes the detector reaches
            log_e = math.log(e) if e > 0.0 else -1e300
            for b in range(N_BYTES):
                chain[b] *= e
                logs[j + 1, b] = max(logs[j, b] + log_e, LOG_FLOOR_LN)
            p = tables.det_head[d]
            while p >= 0:
                b = tables.syn_post[p]
                chain[b] += (1.0 - e) * tables.syn_weight[p]
                logs[j + 1, b] = math.log(max(chain[b], LOG_FLOOR))
                p = tables.syn_next[p]
            longest = j
            confidence = 1.0 - e
        else:
            for b in range(N_BYTES):
                logs[j + 1, b] = logs[j, b]
    buckets = params.confidence_buckets
    bucket = (longest + 1) * buckets + min(int(confidence * buckets), buckets - 1)
    weights = tables.mixer[bucket]
    q = chain
    for b in range(N_BYTES):  # loops run along rows of `logs` (contiguous, vectorised)
        q[b] = weights[0] * logs[0, b]
    for i in range(1, k_max + 1):
        w = weights[i]
        for b in range(N_BYTES):
            q[b] += w * logs[i, b]
    total = exp_shifted(q, q, N_BYTES)[1]
    for b in range(N_BYTES):
        q[b] /= total
    reading.meta[1] = 1
    reading.meta[2] = bucket
    return bucket


@njit(cache=True)
def gate_open(reading, params):
    """The gate g in [0, 1]: how much of the prediction the memory's mixture gets."""
    return 1.0 / (1.0 + math.exp(-reading.gate[0] / params.gate_scale))


@njit(cache=True)
def predict(tables, reading, params, row, p_full):
    """Step 3 for one logits row [V] (overwritten); `p_full` [V] is scratch."""
    pb = reading.pending_backbone
    logs = reading.pending_logs
    byte_mass = backbone_bytes(row, p_full, pb, logs[0])
    mix_detectors(tables, reading, params)
    q = reading.pending_mix
    expect = reading.pending_expect  # what the mixer's delta rule needs
    for i in range(params.orders.shape[0] + 1):
        acc = 0.0
        for b in range(N_BYTES):
            acc += q[b] * logs[i, b]
        expect[i] = acc
    g = gate_open(reading, params)
    for b in range(N_BYTES):
        p = (1.0 - g) * pb[b] + g * q[b]
        row[b] = math.log(max(p * byte_mass, 1e-30))
    for b in range(N_BYTES, row.shape[0]):
        row[b] = math.log(max(p_full[b], 1e-30))


@njit(cache=True)
def read_chunk(tables, reading, params, ids, teachers, logits, learn, grow):
    """Steps 1-3 for every position of `ids` [S] / `logits` [S, V] (rows overwritten);
    `teachers` [S]: the mixer's teaching byte at each position (normally `ids`).

    Returns the number of positions done: with `grow`, less than S when the tables could
    overflow at the next one (grow them and call again with the rest); without, the tables
    are at their size limit: no detector or synapse is added, the existing ones learn on.
    """
    k_max = params.orders.shape[0]
    p_full = np.empty(logits.shape[1], np.float64)
    for s in range(ids.shape[0]):
        if (
            learn
            and grow
            and (
                tables.sizes[0] + k_max > tables.det_key.shape[0]
                or tables.sizes[1] + k_max > tables.syn_post.shape[0]
            )
        ):
            return s
        learn_pending(tables, reading, params, ids[s], teachers[s], learn)
        shift_history(reading, ids[s])
        predict(tables, reading, params, logits[s], p_full)
    return ids.shape[0]


@njit(cache=True)
def credit_bytes(tables, orders, decay, context, known, data, modulation):
    """Distal reward: step the detectors of every byte of `data` (read after the delay line
    `context` [max order] of `known` bytes, latest first) toward that byte with
    `modulation` (+: LTP, -: LTD). The tables must have room for len(data) * K more
    detectors and synapses."""
    history = context.copy()
    keys = np.empty(orders.shape[0], np.uint64)
    for t in range(data.shape[0]):
        y = data[t]
        context_keys(history, known, orders, keys)
        for j in range(orders.shape[0]):
            if keys[j] == EMPTY:
                break
            d = detector_of(tables, keys[j], modulation > 0)
            if d >= 0:
                detector_step(tables, d, y, decay, modulation)
        for i in range(history.shape[0] - 1, 0, -1):
            history[i] = history[i - 1]
        history[0] = y
        known = min(known + 1, history.shape[0])


@njit(cache=True)
def backbone_table(logits, targets, pbs, logs0, scale):
    """The backbone's part of step 3 for every row of `logits` [S, V], once per text that
    is scored again and again (the backbone is frozen): pbs [S, 256] and logs0 [S, 256] as
    `backbone_bytes` gives them, scale[s] the mass that turns a byte distribution into the
    full one at targets[s] (the bytes' share; for a special token, its own probability)."""
    p_full = np.empty(logits.shape[1], np.float64)
    for s in range(logits.shape[0]):
        byte_mass = backbone_bytes(logits[s], p_full, pbs[s], logs0[s])
        y = targets[s]
        scale[s] = byte_mass if y < N_BYTES else p_full[y]


@njit(cache=True, nogil=True)  # the drift guard runs it beside the reply's generation
def score_chunk(tables, reading, params, ids, pbs, logs0, scale, targets, bits):
    """Steps 2-3 (and the gate's part of step 1) for every position of `ids` [S], nothing
    learning, from the backbone's part precomputed by `backbone_table`: bits[s] = -log2 of
    the prediction of byte targets[s] at position s. What `read_chunk` then `logits_bits`
    give (to the float32 rounding of rewritten rows), without what only learning needs."""
    pb = reading.pending_backbone
    logs = reading.pending_logs
    q = reading.pending_mix
    for s in range(ids.shape[0]):
        learn_pending(tables, reading, params, ids[s], ids[s], False)
        shift_history(reading, ids[s])
        for b in range(N_BYTES):
            pb[b] = pbs[s, b]
            logs[0, b] = logs0[s, b]
        mix_detectors(tables, reading, params)
        y = targets[s]
        if y < N_BYTES:
            g = gate_open(reading, params)
            p = ((1.0 - g) * pb[y] + g * q[y]) * scale[s]
        else:
            p = scale[s]
        bits[s] = -math.log2(max(p, 1e-30))
